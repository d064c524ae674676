"""Dropout modules whose rate is a buffer: stacked with their model (torch.func), each member
of a fused group draws at its own rate (qamodels/fused.py). No branch on the rate: vmap runs
one program for all members."""

from __future__ import annotations

import torch
from torch import nn

from qamodels.embedding import WordDropout
from qamodels.layers import SpatialDropout


class MemberDropout(nn.Module):
    """Dropout whose rate is a buffer, so each member of a stack has its own (no branch on
    the rate: vmap runs one program for all)."""

    def __init__(self, p: float, channels: bool = False):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))
        self.channels = channels  # SpatialDropout: the same channels at every position

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        shape = (x.shape[0], 1, x.shape[2]) if self.channels else x.shape
        keep = torch.rand(shape, device=x.device) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p).to(x.dtype)


class MemberWordDropout(nn.Module):
    """WordDropout with its rate as a buffer: drops whole tokens, each item keeps one."""

    def __init__(self, p: float):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return mask
        kept = mask & (torch.rand(mask.shape, device=mask.device) >= self.p)
        return torch.where(kept.any(1)[:, None], kept, mask)


def member_dropouts(model: nn.Module) -> nn.Module:
    """The model with each dropout module swapped for its stackable form (in place)."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.Dropout):
                setattr(parent, name, MemberDropout(child.p))
            elif isinstance(child, SpatialDropout):
                setattr(parent, name, MemberDropout(child.p, channels=True))
            elif isinstance(child, WordDropout):
                setattr(parent, name, MemberWordDropout(child.p))
    return model
