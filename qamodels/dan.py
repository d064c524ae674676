"""Deep averaging network: embedding -> masked mean -> norm -> MLP.

With `ngrams=2` the average also takes hashed word pairs, each with its own vector (the
bigram trick of fastText, Joulin et al. 2017): order where it matters most in a short
question ("fit in" vs "in fit") at the cost of one more embedding table.

With `wide=1` a linear model over the words and word pairs adds its logits to the MLP's (the
wide and deep model of Cheng et al. 2016): what the TF-IDF baseline does well, rare words
that name a category, reaches the output directly (BENCHMARKS.md, "What moves the best
single model"). `wide=2` weighs its terms as the baseline does: each word and word pair by
its inverse document frequency on the training split, the row L2-normalised (a linear
model on TF-IDF features, inside the network).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    wide: int = arg(0, "1: add a linear path from words and word pairs to the logits; 2: "
                    "the same on TF-IDF weights (idf of the training split)",
                    choices=(0, 1, 2))  # fmt: skip
    wide_buckets: int = arg(2**17, "hash buckets of the wide path's word pairs", min=1)
    wide_first: int = arg(0, "1: fit the wide path alone first (a linear model, early-stopped "
                          "on valid), then the MLP on top of it, starting from zero",
                          choices=(0, 1))  # fmt: skip
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
        self.wide = (
            Wide(embedding.num_embeddings, p.wide_buckets, classes, idf=p.wide == 2)
            if p.wide
            else None
        )

    def lr_scales(self) -> dict[int, float]:
        """Learning-rate multiples of parameters (by id) for qamodels/optim.py."""
        if self.wide is None or self._wide_lr == 1.0:
            return {}
        return {id(p): self._wide_lr for p in self.wide.parameters()}

    def linear_part(self) -> tuple[list[nn.Parameter], float]:
        """With wide_first: the parameters the trainer fits alone before the rest (while the
        MLP's output is zero the model is the linear model), and their learning-rate multiple."""
        if not self._wide_first:
            return [], 1.0
        return list(self.wide.parameters()), self._wide_lr

    def fit_statistics(self, ids: np.ndarray, mask: np.ndarray) -> None:
        """What the model takes from the training split before training: the wide path's
        terms (their idf with wide=2, and the word pairs its table holds)."""
        if self.wide is not None:
            self.wide.fit(ids, mask)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mask = self.word_dropout(mask).unsqueeze(-1).float()
        total, count = bag(ids, mask, self.embedding, self.pairs)
        logits = self.head(total / count.clamp(min=1))
        return logits if self.wide is None else logits + self.wide(ids, mask)


def hashed_pairs(ids, buckets: int):
    """The hash bucket of each pair of neighbouring ids (a tensor or a numpy array)."""
    return (ids[:, :-1] * PAIR_PRIME + ids[:, 1:]) % buckets


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


class Wide(nn.Module):
    """A linear model over the words and hashed word pairs (Cheng et al. 2016's wide part):
    one weight per class for each, summed and scaled as the L2-normalized TF-IDF rows of the
    baseline are. A rare word that names a category moves the logits directly, not through
    an average of all the words and an MLP. Starts at zero: a plain DAN.

    Each term has a weight: its inverse document frequency on the training split with `idf`
    (smoothed as scikit-learn's TfidfVectorizer does), else 1; the row is divided by the L2
    norm of its terms' weights. Fitted on the training split (`fit`), the pair table keeps
    one row per pair bucket that split has, and a term it never had weighs nothing, as
    TfidfVectorizer drops words outside its vocabulary: with 150 classes the unfitted table
    of 2**17 buckets made each step update 20M weights, the fitted one of CLINC150 3M."""

    def __init__(self, vocab: int, buckets: int, classes: int, idf: bool = False):
        super().__init__()
        self.words = nn.Embedding(vocab, classes)
        self.pairs = nn.Embedding(buckets, classes)
        nn.init.zeros_(self.words.weight)
        nn.init.zeros_(self.pairs.weight)
        self.idf, self.buckets = idf, buckets
        # Saved with the model: predict weighs and finds terms as training did.
        self.register_buffer("word_weight", torch.ones(vocab))
        self.register_buffer("pair_weight", torch.ones(buckets))
        self.register_buffer("pair_row", torch.arange(buckets))  # bucket -> row of `pairs`
        self._register_load_state_dict_pre_hook(self._take_saved_shape)

    def fit(self, ids: np.ndarray, mask: np.ndarray) -> None:
        """The terms of the training split `ids`: their weights (idf = 1 + ln((1 + n) /
        (1 + df)) or 1; 0 for a term never seen) and a pair table of the buckets seen."""
        ids, keep = np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool)
        rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
        pair_ids = hashed_pairs(ids, self.buckets)
        for table, terms, kept, term_rows in (
            (self.word_weight, ids, keep, rows),
            (self.pair_weight, pair_ids, keep[:, :-1] & keep[:, 1:], rows[:, :-1]),
        ):
            width = table.numel()
            seen = np.unique(term_rows[kept] * width + terms[kept]) % width  # once per row
            df = np.bincount(seen, minlength=width)
            weight = 1 + np.log((1 + len(ids)) / (1 + df)) if self.idf else np.ones(width)
            table.copy_(torch.from_numpy(np.where(df > 0, weight, 0.0)))
        seen_buckets = torch.nonzero(self.pair_weight > 0).squeeze(1)
        self.pair_row.zero_()  # row 0: every bucket never seen (its weight 0: never trained)
        self.pair_row[seen_buckets] = torch.arange(1, len(seen_buckets) + 1)
        self.pairs = nn.Embedding(len(seen_buckets) + 1, self.pairs.embedding_dim)
        nn.init.zeros_(self.pairs.weight)

    def _take_saved_shape(self, state: dict, prefix: str, *args) -> None:
        """A fitted model's pair table is as long as its training split needed; models saved
        before the fitted table (idf buffers named word_idf/pair_idf, no pair_row) still load."""
        for old, new in (("word_idf", "word_weight"), ("pair_idf", "pair_weight")):
            if prefix + old in state:
                state[prefix + new] = state.pop(prefix + old)
        every_bucket = torch.arange(self.buckets, device=self.pair_row.device)
        unfitted = {"word_weight": torch.ones_like(self.word_weight),  # all terms, weight 1
                    "pair_weight": torch.ones_like(self.pair_weight),
                    "pair_row": every_bucket}  # fmt: skip
        for name, default in unfitted.items():
            state.setdefault(prefix + name, default)
        rows = state.get(prefix + "pairs.weight")
        if rows is not None and rows.shape != self.pairs.weight.shape:
            self.pairs = nn.Embedding(*rows.shape).to(self.pairs.weight.device)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weight = self.word_weight[ids].unsqueeze(-1) * mask  # (b, t, 1)
        total = (self.words(ids) * weight).sum(1)
        squares = (weight * weight).sum(1)
        if ids.shape[1] > 1:
            buckets = hashed_pairs(ids, self.buckets)
            pair_weight = self.pair_weight[buckets].unsqueeze(-1) * mask[:, :-1] * mask[:, 1:]
            total = total + (self.pairs(self.pair_row[buckets]) * pair_weight).sum(1)
            squares = squares + (pair_weight * pair_weight).sum(1)
        return total * squares.clamp(min=1e-12).rsqrt()
