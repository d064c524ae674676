"""Convolutional classifiers with masked convolutions and masked mean/max pooling.

cnn_parallel: Conv1d branches of different windows side by side, each pooled, concatenated.
cnn_stacked:  Conv1d layers one after another.
cnn_residual: blocks x + conv(x) cycling through the windows, LayerNorm inside the block.
Pads are zeroed before every convolution (MaskedConv1d), so nothing leaks into real tokens.
"""

from __future__ import annotations

import torch
from torch import nn

from qamodels.layers import (
    ClassifierHead,
    MaskedConv1d,
    SpatialDropout,
    make_norm,
    pool,
    pooled_width,
)

_HEAD = dict(hidden=256, hidden_layers=1, dropout=0.3, norm="batch", pooling="meanmax")
PARALLEL_DEFAULTS = dict(windows=(2, 3, 4, 5), filters=128, spatial_dropout=0.1, **_HEAD)
STACKED_DEFAULTS = dict(window=3, layers=2, filters=128, spatial_dropout=0.1, **_HEAD)
RESIDUAL_DEFAULTS = dict(
    windows=(3, 5), blocks=3, filters=128, spatial_dropout=0.1, block_norm="layer", **_HEAD
)


def _head(width: int, classes: int, p: dict) -> ClassifierHead:
    return ClassifierHead(
        pooled_width(width, p["pooling"]),
        classes,
        p["hidden"],
        p["hidden_layers"],
        p["dropout"],
        p["norm"],
    )


class ParallelCNN(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = {**PARALLEL_DEFAULTS, **params}
        self.pooling = p["pooling"]
        self.embedding = embedding
        self.dropout = SpatialDropout(p["spatial_dropout"])
        dim = embedding.embedding_dim
        self.branches = nn.ModuleList(MaskedConv1d(dim, p["filters"], w) for w in p["windows"])
        self.head = _head(p["filters"] * len(p["windows"]), classes, p)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(ids))
        pooled = [pool(torch.relu(conv(x, mask)), mask, self.pooling) for conv in self.branches]
        return self.head(torch.cat(pooled, dim=-1))


class StackedCNN(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = {**STACKED_DEFAULTS, **params}
        self.pooling = p["pooling"]
        self.embedding = embedding
        self.dropout = SpatialDropout(p["spatial_dropout"])
        widths = [embedding.embedding_dim] + [p["filters"]] * p["layers"]
        self.convs = nn.ModuleList(
            MaskedConv1d(a, b, p["window"]) for a, b in zip(widths, widths[1:], strict=False)
        )
        self.head = _head(p["filters"], classes, p)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(ids))
        for conv in self.convs:
            x = torch.relu(conv(x, mask))
        return self.head(pool(x, mask, self.pooling))


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, window: int, norm: str):
        super().__init__()
        self.norm = make_norm("layer" if norm == "layer" else "none", channels)
        self.conv = MaskedConv1d(channels, channels, window)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.conv(self.norm(x), mask))


class ResidualCNN(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = {**RESIDUAL_DEFAULTS, **params}
        self.pooling = p["pooling"]
        self.embedding = embedding
        self.dropout = SpatialDropout(p["spatial_dropout"])
        self.project = nn.Linear(embedding.embedding_dim, p["filters"])
        windows = p["windows"]
        self.blocks = nn.ModuleList(
            ResidualBlock(p["filters"], windows[i % len(windows)], p["block_norm"])
            for i in range(p["blocks"])
        )
        self.head = _head(p["filters"], classes, p)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.project(self.dropout(self.embedding(ids)))
        for block in self.blocks:
            x = block(x, mask)
        return self.head(pool(x, mask, self.pooling))
