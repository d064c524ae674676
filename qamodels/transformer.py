"""A small Transformer encoder with a key padding mask and masked pooling.

The encoder stack (embedding, positions, layers) is its own module so that the masked
language model (qamodels.mlm) pretrains exactly what the classifier starts from.
"""

from __future__ import annotations

import torch
from torch import nn

from qamodels.layers import ClassifierHead, pool, pooled_width

DEFAULTS = dict(
    d_model=128,
    heads=4,
    layers=2,
    ff_mult=2,
    attn_dropout=0.1,
    pooling="mean",
    head_hidden=128,
    head_layers=0,
    dropout=0.1,
    norm="layer",
    max_positions=512,
)
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
        p = {**DEFAULTS, **params}
        self.embedding = embedding
        self.encoder = TransformerEncoder(embedding, **{k: p[k] for k in ENCODER_KEYS})
        self.pooling = p["pooling"]
        self.head = ClassifierHead(
            pooled_width(p["d_model"], self.pooling),
            classes,
            p["head_hidden"],
            p["head_layers"],
            p["dropout"],
            p["norm"],
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(pool(self.encoder(ids, mask), mask, self.pooling))
