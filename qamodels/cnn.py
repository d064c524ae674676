"""Convolutional classifiers with masked convolutions and masked mean/max pooling.

cnn_parallel: Conv1d branches of different windows side by side, each pooled, concatenated.
cnn_stacked:  Conv1d layers one after another.
cnn_residual: blocks x + conv(x) cycling through the windows, LayerNorm inside the block.
Pads are zeroed before every convolution (MaskedConv1d), so nothing leaks into real tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from data_prep.cli import arg
from qamodels.layers import (
    NORMS,
    POOLINGS,
    ClassifierHead,
    MaskedConv1d,
    SpatialDropout,
    make_norm,
    pool,
    pooled_width,
)


@dataclass(frozen=True)
class CNNSharedConfig:
    """What every CNN shares: pooling over time and the classifier head."""

    filters: int = arg(128, "channels of each convolution", min=1)
    spatial_dropout: float = arg(0.1, "drops whole embedding channels", min=0, below=1)
    pooling: str = arg("meanmax", "over time", choices=POOLINGS)
    hidden: int = arg(256, "width of the head's hidden layers", min=1)
    hidden_layers: int = arg(1, "hidden layers of the head", min=0)
    dropout: float = arg(0.3, "dropout in the head", min=0, below=1)
    norm: str = arg("batch", "normalization in the head", choices=NORMS)


@dataclass(frozen=True)
class ParallelCNNConfig(CNNSharedConfig):
    windows: tuple[int, ...] = arg((2, 3, 4, 5), "one convolution per window, side by side", min=1)


@dataclass(frozen=True)
class StackedCNNConfig(CNNSharedConfig):
    window: int = arg(3, "window of every convolution", min=1)
    layers: int = arg(2, "convolutions one after another", min=1)


@dataclass(frozen=True)
class ResidualCNNConfig(CNNSharedConfig):
    windows: tuple[int, ...] = arg((3, 5), "windows the blocks cycle through", min=1)
    blocks: int = arg(3, "residual blocks", min=1)
    block_norm: str = arg("layer", "normalization inside each block", choices=("none", "layer"))


def _head(width: int, classes: int, p: CNNSharedConfig) -> ClassifierHead:
    return ClassifierHead(
        pooled_width(width, p.pooling),
        classes,
        p.hidden,
        p.hidden_layers,
        p.dropout,
        p.norm,
    )


class ParallelCNN(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = ParallelCNNConfig(**params)
        self.pooling = p.pooling
        self.embedding = embedding
        self.dropout = SpatialDropout(p.spatial_dropout)
        dim = embedding.embedding_dim
        self.branches = nn.ModuleList(MaskedConv1d(dim, p.filters, w) for w in p.windows)
        self.head = _head(p.filters * len(p.windows), classes, p)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.dropout(self.embedding(ids))
        pooled = [pool(torch.relu(conv(x, mask)), mask, self.pooling) for conv in self.branches]
        return self.head(torch.cat(pooled, dim=-1))


class StackedCNN(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = StackedCNNConfig(**params)
        self.pooling = p.pooling
        self.embedding = embedding
        self.dropout = SpatialDropout(p.spatial_dropout)
        widths = [embedding.embedding_dim] + [p.filters] * p.layers
        self.convs = nn.ModuleList(
            MaskedConv1d(a, b, p.window) for a, b in zip(widths, widths[1:], strict=False)
        )
        self.head = _head(p.filters, classes, p)

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
        p = ResidualCNNConfig(**params)
        self.pooling = p.pooling
        self.embedding = embedding
        self.dropout = SpatialDropout(p.spatial_dropout)
        self.project = nn.Linear(embedding.embedding_dim, p.filters)
        windows = p.windows
        self.blocks = nn.ModuleList(
            ResidualBlock(p.filters, windows[i % len(windows)], p.block_norm)
            for i in range(p.blocks)
        )
        self.head = _head(p.filters, classes, p)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.project(self.dropout(self.embedding(ids)))
        for block in self.blocks:
            x = block(x, mask)
        return self.head(pool(x, mask, self.pooling))
