"""Deep averaging network: embedding -> masked mean -> norm -> MLP.

With `ngrams=2` the average also takes hashed word pairs, each with its own vector (the
bigram trick of fastText, Joulin et al. 2017): order where it matters most in a short
question ("fit in" vs "in fit") at the cost of one more embedding table.

With `wide=1` a linear model over the words and word pairs adds its logits to the MLP's (the
wide and deep model of Cheng et al. 2016): what the TF-IDF baseline does well, rare words
that name a category, reaches the output directly (BENCHMARKS.md, "What moves the best
single model"). `wide=2` weighs its terms as the baseline does: each word and word pair by
its inverse document frequency on the training split, the row L2-normalised (a linear
model on TF-IDF features, inside the network). With `wide_first=1` that path starts as the
baseline's LinearSVC on the same features and the MLP, starting from zero, learns what the
linear model misses (qamodels/wide.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from data_prep.cli import arg
from data_prep.store import Split
from qamodels.embedding import WordDropout
from qamodels.layers import NORMS, ClassifierHead
from qamodels.wide import Wide, hashed_pairs


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
    wide: int = arg(0, "1: add a linear path from words and word pairs to the logits; 2: "
                    "the same on TF-IDF weights (idf of the training split)",
                    choices=(0, 1, 2))  # fmt: skip
    wide_buckets: int = arg(0, "0: each word pair of the training split its own weight in the "
                            "wide path (TfidfVectorizer's bigrams); N: pairs hashed into N "
                            "buckets (models saved before exact pairs)", min=0)  # fmt: skip
    wide_first: int = arg(0, "1: fit the wide path first as the baseline's linear model "
                          "(LinearSVC, C chosen on valid), then the MLP on top of it, starting "
                          "from zero", choices=(0, 1))  # fmt: skip
    wide_chars: int = arg(0, "1: the wide path also takes each word's character 2- to 5-grams "
                          "(TfidfVectorizer's char_wb), their own TF-IDF block: rare and related "
                          "words share weights (qamodels/subwords.py)", choices=(0, 1))  # fmt: skip
    wide_lr: float = arg(1.0, "the wide path's learning rate as a multiple of lr (alone, a "
                         "linear model converges later than the MLP overfits)", min=0)  # fmt: skip


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
        self._wide_lr, self._wide_first = p.wide_lr, bool(p.wide and p.wide_first)
        if self._wide_first:  # the MLP adds nothing until it learns: the start is the linear fit
            last = self.head.net[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        # Built last: the other layers draw the same initial weights with or without it.
        self.wide = Wide(embedding.num_embeddings, p.wide_buckets, classes, idf=p.wide == 2,
                         chars=bool(p.wide_chars)) if p.wide else None  # fmt: skip

    def lr_scales(self) -> dict[int, float]:
        """Learning-rate multiples of parameters (by id) for qamodels/optim.py."""
        if self.wide is None or self._wide_lr == 1.0:
            return {}
        return {id(p): self._wide_lr for p in self.wide.parameters()}

    @torch.no_grad()
    def fit_linear(self, train: Split, valid: Split) -> None:
        """With wide_first, before the epochs: the wide path fitted as the baseline's linear
        model (qamodels/wide.py), its intercepts in the last layer's bias; the MLP's output
        is zero, so the epochs start from that model."""
        if self._wide_first:
            bias = self.wide.fit_linear(train, valid)
            self.head.net[-1].bias.copy_(torch.from_numpy(bias))

    def fit_statistics(
        self, ids: np.ndarray, mask: np.ndarray, vocab: list[str] | None = None
    ) -> None:
        """What the model takes from the training split before training: the wide path's
        terms (their idf with wide=2, the word pairs its table holds, and with wide_chars the
        character n-grams of the `vocab` words)."""
        if self.wide is not None:
            self.wide.fit(ids, mask, vocab)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask = self.word_dropout(mask).unsqueeze(-1).float()
        total, count = bag(ids, mask, self.embedding, self.pairs)
        logits = self.head(total / count.clamp(min=1))
        return logits if self.wide is None else logits + self.wide(ids, mask)


def bag(
    ids: torch.Tensor, mask: torch.Tensor, words: nn.Embedding, pairs: nn.Embedding | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The sum of the vectors of the words `mask` keeps ((b, t, 1) floats) and, with a
    `pairs` table, of the hashed pairs of two kept neighbours; and how many terms, (b, 1)."""
    total = (words(ids) * mask).sum(1)
    count = mask.sum(1)
    if pairs is not None and ids.shape[1] > 1:
        pair_ids = hashed_pairs(ids, pairs.num_embeddings)
        pair_mask = mask[:, :-1] * mask[:, 1:]  # both words there (and not dropped)
        total = total + (pairs(pair_ids) * pair_mask).sum(1)
        count = count + pair_mask.sum(1)
    return total, count
