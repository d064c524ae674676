"""A small Transformer encoder with a key padding mask and masked pooling."""

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


class TransformerClassifier(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = {**DEFAULTS, **params}
        self.embedding = embedding
        dim = embedding.embedding_dim
        self.project = nn.Linear(dim, p["d_model"]) if dim != p["d_model"] else nn.Identity()
        self.positions = nn.Embedding(p["max_positions"], p["d_model"])
        layer = nn.TransformerEncoderLayer(
            p["d_model"],
            p["heads"],
            p["ff_mult"] * p["d_model"],
            p["attn_dropout"],
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, p["layers"], enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(p["d_model"])
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
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.project(self.embedding(ids)) + self.positions(positions)
        x = self.final_norm(self.encoder(x, src_key_padding_mask=~mask))
        return self.head(pool(x, mask, self.pooling))
