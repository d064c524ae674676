"""Deep averaging network: embedding -> masked mean -> norm -> MLP."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from data_prep.cli import arg
from qamodels.embedding import WordDropout
from qamodels.layers import NORMS, ClassifierHead, masked_mean


@dataclass(frozen=True)
class DANConfig:
    hidden: int = arg(256, "width of each hidden layer", min=1)
    hidden_layers: int = arg(1, "hidden layers after the average", min=0)
    dropout: float = arg(0.2, "dropout before each layer", min=0)
    word_dropout: float = arg(0.0, "share of tokens dropped from the average while training", min=0)
    norm: str = arg("layer", "normalization of the average and hidden layers", choices=NORMS)


class DAN(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = DANConfig(**params)
        self.embedding = embedding
        self.word_dropout = WordDropout(p.word_dropout)
        self.head = ClassifierHead(
            embedding.embedding_dim,
            classes,
            p.hidden,
            p.hidden_layers,
            p.dropout,
            p.norm,
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(masked_mean(self.embedding(ids), self.word_dropout(mask)))
