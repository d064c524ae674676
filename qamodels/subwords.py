"""The wide path's subword block: each word's character 2- to 5-grams, TF-IDF weighted.

A word seen once in train ("chargers", "pyplot", "iphone6") has one weight of its own in the
word block; its character n-grams share weights with every word that has them. scikit-learn's
TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)) beside the baseline's words and word
pairs scored +0.4 to +1.6 test points above the baseline on every set of the suite, and most
of that (+0.9 to +1.1) with the n-grams of train's words only, which is what a table over the
vocabulary holds (BENCHMARKS.md, "Subword features in the wide path").

The n-grams of each vocabulary word are a table built from the vocabulary when the model
takes its statistics from train (`fit`); the n-gram weights and the table are saved with the
model, so predict needs nothing else. The block is its own L2-normalised row, added to the
word block's logits (as sklearn's FeatureUnion of two normalised vectorizers).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
import torch.nn.functional as F
from torch import nn

from data_prep.tokenize import SPECIALS

GRAM_SIZES = range(2, 6)  # char_wb's ngram_range=(2, 5)
MAX_GRAMS = 48  # per word; a word of 12 characters has 46, longer ones keep their first 48
DF_CHUNK = 20_000  # rows per step of the document frequencies (a row has ~10-40 n-grams a word)


def word_grams(word: str) -> list[str]:
    """The word's character n-grams as char_wb makes them: the word padded with a space on each
    side, every n-gram of each size; the padded word once where it is no longer than a size."""
    padded = f" {word} "
    grams = []
    for n in GRAM_SIZES:
        grams += [padded[i : i + n] for i in range(max(1, len(padded) - n + 1))]
        if len(padded) <= n:
            break
    return grams[:MAX_GRAMS]


def gram_table(vocab: list[str]) -> tuple[np.ndarray, int]:
    """Each vocabulary word's n-grams as ids 1.. (0: none), a (len(vocab), width) int32 table
    as wide as the longest word needs, and how many n-grams there are; the special tokens
    have none."""
    ids: dict[str, int] = {}
    rows = [[] if word in SPECIALS else [ids.setdefault(g, len(ids) + 1) for g in word_grams(word)]
            for word in vocab]  # fmt: skip
    table = np.zeros((len(vocab), max(1, max(map(len, rows), default=1))), np.int32)
    for row, grams in zip(table, rows, strict=True):
        row[: len(grams)] = grams
    return table, len(ids)


def word_gram_matrix(table: np.ndarray, columns: int) -> scipy.sparse.csr_matrix:
    """(words, n-grams) counts of each n-gram in each word (column 0: padding, dropped)."""
    rows = np.repeat(np.arange(len(table)), table.shape[1])
    grams = table.ravel()
    used = grams > 0
    return scipy.sparse.csr_matrix((np.ones(int(used.sum())), (rows[used], grams[used])),
                                   shape=(len(table), columns))  # fmt: skip


def word_counts(ids: np.ndarray, mask: np.ndarray, vocab: int) -> scipy.sparse.csr_matrix:
    """(rows, words) how often each word the mask keeps occurs in each row."""
    ids, keep = np.asarray(ids, np.int64), np.asarray(mask, bool)
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)[keep]
    return scipy.sparse.csr_matrix((np.ones(len(rows)), (rows, ids[keep])),
                                   shape=(len(ids), vocab))  # fmt: skip


class CharGrams(nn.Module):
    """A linear block over the character n-grams of the words: one weight per class for each
    n-gram of train's vocabulary, each n-gram weighted by its idf on train (or 1), the row
    divided by the root of its occurrences' squared weights. Starts at zero."""

    def __init__(self, vocab: int, classes: int, idf: bool = False):
        super().__init__()
        self.idf = idf
        self.grams = nn.Embedding(1, classes)  # until `fit`: no n-gram known
        nn.init.zeros_(self.grams.weight)
        self.register_buffer("table", torch.zeros(vocab, 1, dtype=torch.int32))
        self.register_buffer("gram_weight", torch.zeros(1))  # per row of `grams`
        self.register_load_state_dict_pre_hook(CharGrams._take_saved_shape)

    def fit(self, ids: np.ndarray, mask: np.ndarray, vocab: list[str]) -> None:
        """The n-gram table of `vocab` and each n-gram's weight from the training rows."""
        table, count = gram_table(vocab)
        weight = np.ones(count + 1)
        if self.idf:  # in how many rows an n-gram occurs, smoothed as TfidfVectorizer does
            grams, df = word_gram_matrix(table, count + 1), np.zeros(count + 1)
            for start in range(0, len(ids), DF_CHUNK):  # memory bounded by the chunk's rows
                rows = slice(start, start + DF_CHUNK)
                present = word_counts(ids[rows], mask[rows], len(vocab)) @ grams
                df += np.bincount(present.indices, minlength=count + 1)
            weight = 1 + np.log((1 + len(ids)) / (1 + df))
        weight[0] = 0.0
        device = self.table.device
        self.table = torch.from_numpy(table).to(device)
        self.gram_weight = torch.from_numpy(weight).float().to(device)
        self.grams = nn.Embedding(count + 1, self.grams.embedding_dim).to(device)
        nn.init.zeros_(self.grams.weight)

    def features(self, ids: np.ndarray, mask: np.ndarray) -> scipy.sparse.csr_matrix:
        """The rows as this block sees them (one column per row of `grams`), as `forward`."""
        table, weight = self.table.cpu().numpy(), self.gram_weight.cpu().numpy()
        per_word = word_gram_matrix(table, len(weight)) @ scipy.sparse.diags(weight)
        counts = word_counts(ids, mask, len(table))
        squares = counts @ np.asarray(per_word.multiply(per_word).sum(1)).ravel()
        rows = counts @ per_word
        return scipy.sparse.diags(1 / np.sqrt(np.maximum(squares, 1e-24))) @ rows

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(b, classes) from ids (b, t) and mask (b, t, 1) floats."""
        grams = self.table[ids].flatten(0, 1)  # (b * t, width)
        weight = self.gram_weight[grams]
        per_word = F.embedding_bag(grams, self.grams.weight, per_sample_weights=weight,
                                   mode="sum")  # fmt: skip
        per_word = per_word.view(*ids.shape, -1) * mask
        squares = ((weight * weight).sum(1).view(*ids.shape, 1) * mask).sum(1)
        return per_word.sum(1) * squares.clamp(min=1e-12).rsqrt()

    def _take_saved_shape(self, state: dict, prefix: str, *args) -> None:
        """A fitted block's table and n-grams are as large as its vocabulary needed."""
        if prefix + "table" not in state:
            return
        self.table = torch.empty_like(state[prefix + "table"], device=self.table.device)
        self.gram_weight = torch.empty_like(state[prefix + "gram_weight"],
                                            device=self.table.device)  # fmt: skip
        rows = state[prefix + "grams.weight"]
        if rows.shape != self.grams.weight.shape:
            self.grams = nn.Embedding(*rows.shape).to(self.table.device)
