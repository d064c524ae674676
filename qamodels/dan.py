"""Deep averaging network: embedding -> masked mean -> norm -> MLP.

With `ngrams=2` the average also takes hashed word pairs, each with its own vector (the
bigram trick of fastText, Joulin et al. 2017): order where it matters most in a short
question ("fit in" vs "in fit") at the cost of one more embedding table.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from data_prep.cli import arg
from qamodels.embedding import WordDropout
from qamodels.layers import NORMS, ClassifierHead

PAIR_PRIME = 1_000_003  # mixes the first id so (a, b) and (b, a) land apart


@dataclass(frozen=True)
class DANConfig:
    hidden: int = arg(256, "width of each hidden layer", min=1)
    hidden_layers: int = arg(1, "hidden layers after the average", min=0)
    dropout: float = arg(0.2, "dropout before each layer", min=0, below=1)
    word_dropout: float = arg(
        0.0, "share of tokens dropped from the average while training", min=0, below=1
    )
    norm: str = arg("layer", "normalization of the average and hidden layers", choices=NORMS)
    ngrams: int = arg(1, "1: words; 2: words and hashed word pairs (fastText)", choices=(1, 2))
    buckets: int = arg(20_000, "hash buckets of the word pairs (ngrams=2)", min=1)


class DAN(nn.Module):
    def __init__(self, embedding: nn.Embedding, classes: int, **params):
        super().__init__()
        p = DANConfig(**params)
        self.embedding = embedding
        self.word_dropout = WordDropout(p.word_dropout)
        self.pairs = None
        if p.ngrams == 2:
            self.pairs = nn.Embedding(p.buckets, embedding.embedding_dim)
            nn.init.normal_(self.pairs.weight, std=embedding.embedding_dim**-0.5 / 4)
        self.head = ClassifierHead(
            embedding.embedding_dim,
            classes,
            p.hidden,
            p.hidden_layers,
            p.dropout,
            p.norm,
        )

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask = self.word_dropout(mask).unsqueeze(-1).float()
        total = (self.embedding(ids) * mask).sum(1)
        count = mask.sum(1)
        if self.pairs is not None and ids.shape[1] > 1:
            pair_ids = (ids[:, :-1] * PAIR_PRIME + ids[:, 1:]) % self.pairs.num_embeddings
            pair_mask = mask[:, :-1] * mask[:, 1:]  # both words there (and not dropped)
            total = total + (self.pairs(pair_ids) * pair_mask).sum(1)
            count = count + pair_mask.sum(1)
        return self.head(total / count.clamp(min=1))
