"""A small Transformer encoder with a key padding mask and masked pooling.

The encoder stack (embedding, positions, layers) is its own module so that the masked
language model (qamodels.mlm) pretrains exactly what the classifier starts from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from data_prep.cli import arg
from qamodels.layers import NORMS, POOLINGS, ClassifierHead, pool, pooled_width


@dataclass(frozen=True)
class TransformerConfig:
    d_model: int = arg(128, "width of the encoder", min=1)
    heads: int = arg(4, "attention heads (divide d_model)", min=1)
    layers: int = arg(2, "encoder layers", min=1)
    ff_mult: int = arg(2, "feed-forward width as a multiple of d_model", min=1)
    attn_dropout: float = arg(0.1, "dropout inside the encoder", min=0, below=1)
    pooling: str = arg("mean", "over tokens", choices=POOLINGS)
    head_hidden: int = arg(128, "width of the head's hidden layers", min=1)
    head_layers: int = arg(0, "hidden layers of the head", min=0)
    dropout: float = arg(0.1, "dropout in the head", min=0, below=1)
    norm: str = arg("layer", "normalization in the head", choices=NORMS)
    max_positions: int = arg(512, "longest sequence the position table holds", min=1)


ENCODER_KEYS = ("d_model", "heads", "layers", "ff_mult", "attn_dropout", "max_positions")


class TransformerEncoder(nn.Module):
    """Token ids -> contextual states (b, t, d_model); pads are keys no token attends to."""

    def __init__(
        self,
        embedding: nn.Embedding,
        d_model: int,
        heads: int,
        layers: int,
        ff_mult: int,
        attn_dropout: float,
        max_positions: int,
    ):
        super().__init__()
        self.embedding = embedding
        dim = embedding.embedding_dim
        self.project = nn.Linear(dim, d_model) if dim != d_model else nn.Identity()
        self.positions = nn.Embedding(max_positions, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff_mult * d_model, attn_dropout, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.project(self.embedding(ids)) + self.positions(positions)
        return self.final_norm(self.layers(x, src_key_padding_mask=~mask))


class TransformerClassifier(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = TransformerConfig(**params)
        self.embedding = embedding
        self.encoder = TransformerEncoder(embedding, **{k: getattr(p, k) for k in ENCODER_KEYS})
        self.pooling = p.pooling
        self.head = ClassifierHead(
            pooled_width(p.d_model, self.pooling),
            classes,
            p.head_hidden,
            p.head_layers,
            p.dropout,
            p.norm,
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(pool(self.encoder(ids, mask), mask, self.pooling))
