"""Deep averaging network: embedding -> masked mean -> norm -> MLP."""

from __future__ import annotations

import torch
from torch import nn

from qamodels.embedding import WordDropout
from qamodels.layers import ClassifierHead, masked_mean

DEFAULTS = dict(hidden=256, hidden_layers=1, dropout=0.2, word_dropout=0.0, norm="layer")


class DAN(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = {**DEFAULTS, **params}
        self.embedding = embedding
        self.word_dropout = WordDropout(p["word_dropout"])
        self.head = ClassifierHead(
            embedding.embedding_dim,
            classes,
            p["hidden"],
            p["hidden_layers"],
            p["dropout"],
            p["norm"],
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(masked_mean(self.embedding(ids), self.word_dropout(mask)))
