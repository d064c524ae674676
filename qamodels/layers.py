"""Building blocks shared by the architectures; every one of them respects the mask.

Shapes: x is (batch, time, channels), mask is (batch, time) bool, True on real tokens.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

# Even windows with padding="same" pad asymmetrically, which is what we want; PyTorch warns.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")

POOLINGS = ("mean", "max", "meanmax")
NORMS = ("none", "batch", "layer")


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(x.dtype)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x.masked_fill(~mask.unsqueeze(-1), torch.finfo(x.dtype).min).max(1).values


def pool(x: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """'mean', 'max' or 'meanmax' (both concatenated) over the real positions."""
    if how == "mean":
        return masked_mean(x, mask)
    if how == "max":
        return masked_max(x, mask)
    if how == "meanmax":
        return torch.cat([masked_mean(x, mask), masked_max(x, mask)], dim=-1)
    raise ValueError(f"pooling={how!r}: use mean, max or meanmax")


def pooled_width(channels: int, how: str) -> int:
    return 2 * channels if how == "meanmax" else channels


def zero_pads(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x * mask.unsqueeze(-1).to(x.dtype)


class SpatialDropout(nn.Module):
    """Drops whole embedding channels of a sequence (the same channels at every position)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.empty(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype)
        keep.bernoulli_(1 - self.p).div_(1 - self.p)
        return x * keep


class MaskedConv1d(nn.Module):
    """Conv1d over time with 'same' padding; pads are zeroed before the convolution, so a
    real token sees exactly what it would see in the unpadded sequence."""

    def __init__(self, in_channels: int, out_channels: int, window: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, window, padding="same")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = zero_pads(x, mask)
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


def make_norm(kind: str, width: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "layer":
        return nn.LayerNorm(width)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm={kind!r}: use none, batch or layer")


class ClassifierHead(nn.Module):
    """Pooled features -> norm -> (Linear, ReLU, dropout) x hidden_layers -> logits."""

    def __init__(
        self, width: int, classes: int, hidden: int, hidden_layers: int, dropout: float, norm: str
    ):
        super().__init__()
        layers: list[nn.Module] = [make_norm(norm, width), nn.Dropout(dropout)]
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)
