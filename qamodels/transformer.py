"""A small Transformer encoder with a key padding mask and masked pooling.

The encoder stack (embedding, positions, layers) is its own module so that the masked
language model (qamodels.mlm) pretrains exactly what the classifier starts from. Attention is
`torch.nn.functional.scaled_dot_product_attention` with the padding as a boolean key mask
broadcast over heads and queries, the form its fused kernels take on CUDA (the memory-
efficient kernel; nn.TransformerEncoder's path with a key padding mask ran the Transformer at
about half of its ceiling). The layers keep nn.TransformerEncoderLayer's parameter names and
its pre-norm arithmetic, so models saved before load unchanged (tests/qamodels/test_masking.py
checks the two agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
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


class SelfAttention(nn.Module):
    """Multi-head self-attention over the non-pad keys (nn.MultiheadAttention's parameters:
    `in_proj_weight`, `in_proj_bias`, `out_proj`)."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model={d_model} is not a multiple of heads={heads}")
        self.heads, self.dropout = heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """x (b, t, d); keep (b, 1, 1, t): True where a key is a token."""
        b, t, d = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        dropout = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=dropout)
        return self.out_proj(attended.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Pre-norm: x + attention(norm1(x)), then x + feed-forward(norm2(x)); ReLU, dropout after
    each sublayer and inside the feed-forward (as nn.TransformerEncoderLayer, norm_first)."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.self_attn = SelfAttention(d_model, heads, dropout)
        self.linear1, self.linear2 = nn.Linear(d_model, ff), nn.Linear(ff, d_model)
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.dropout, self.dropout1, self.dropout2 = (nn.Dropout(dropout) for _ in range(3))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout1(self.self_attn(self.norm1(x), keep))
        hidden = self.dropout(F.relu(self.linear1(self.norm2(x))))
        return x + self.dropout2(self.linear2(hidden))


class EncoderStack(nn.Module):
    """`layers` EncoderLayers (state-dict keys `layers.<i>.` as nn.TransformerEncoder's)."""

    def __init__(self, layer_args: tuple[int, int, int, float], count: int):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(*layer_args) for _ in range(count))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask[:, None, None, :]  # one row per sequence, broadcast over heads and queries
        for layer in self.layers:
            x = layer(x, keep)
        return x


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
        self.layers = EncoderStack((d_model, heads, ff_mult * d_model, attn_dropout), layers)
        self.final_norm = nn.LayerNorm(d_model)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.project(self.embedding(ids)) + self.positions(positions)
        return self.final_norm(self.layers(x, mask))


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
