"""The DAN's wide path: a linear model over TF-IDF (or plain) word and word-pair features
(with `chars`, the words' character n-grams too: qamodels/subwords.py), inside the network
(Cheng et al. 2016's wide and deep), and its fit as the baseline's linear model (LinearSVC,
qamodels/baseline.py) for `wide_first=1`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
from torch import nn

from data_prep.store import Split
from qamodels.linear import fit_svm
from qamodels.subwords import CharGrams

PAIR_PRIME = 1_000_003  # mixes the first id so (a, b) and (b, a) land apart


def hashed_pairs(ids, buckets: int):
    """The hash bucket of each pair of neighbouring ids (a tensor or a numpy array)."""
    return (ids[:, :-1] * PAIR_PRIME + ids[:, 1:]) % buckets


def pair_hashing(vocab: int, buckets: int) -> tuple[int, int]:
    """(multiplier, modulus) of the wide path's pair keys, `(a * multiplier + b) % modulus`:
    with no `buckets`, a * vocab + b, one key per pair (TfidfVectorizer's bigrams); else the
    hash bucket, as models saved before exact pairs had."""
    return (vocab, max(vocab * vocab, 1)) if buckets == 0 else (PAIR_PRIME, buckets)


def pair_keys(ids, hashing):
    """The key of each pair of neighbouring ids (a tensor or a numpy array) under `hashing`,
    (multiplier, modulus): ints, or a tensor of both on the ids' device."""
    return (ids[:, :-1] * hashing[0] + ids[:, 1:]) % hashing[1]


def kept_terms(ids: np.ndarray, mask: np.ndarray, hashing) -> tuple[np.ndarray, ...]:
    """The words `mask` keeps and the keys of the pairs of two kept neighbours, each with its
    row: (word rows, words, pair rows, pair keys), flat arrays."""
    ids, keep = np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool)
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
    both = keep[:, :-1] & keep[:, 1:]
    return rows[keep], ids[keep], rows[:, :-1][both], pair_keys(ids, hashing)[both]


def document_frequency(term_rows: np.ndarray, terms: np.ndarray, width: int) -> np.ndarray:
    """In how many rows each term (0 .. width - 1) occurs."""
    return np.bincount(np.unique(term_rows * width + terms) % width, minlength=width)


class Wide(nn.Module):
    """A linear model over the words and word pairs (Cheng et al. 2016's wide part): one
    weight per class for each, summed and scaled as the L2-normalized TF-IDF rows of the
    baseline are. A rare word that names a category moves the logits directly, not through
    an average of all the words and an MLP. Starts at zero, a plain DAN, unless `fit_linear`
    starts it as the baseline's SVM.

    Each term has a weight: its inverse document frequency on the training split with `idf`
    (smoothed as scikit-learn's TfidfVectorizer does), else 1; the row is divided by the L2
    norm of its terms' weights. Fitted on the training split (`fit`), the pair table holds
    one row per pair that split has (row 0: every other pair, weight 0, never trained), as
    TfidfVectorizer's bigram vocabulary: a term never seen weighs nothing. Pairs are exact
    (`buckets` 0); hashed into 2**17 buckets, as before, a third of AG News' pairs shared a
    weight and its SVM start scored 1.2 points lower on valid (BENCHMARKS.md)."""

    def __init__(
        self, vocab: int, buckets: int, classes: int, idf: bool = False, chars: bool = False
    ):
        super().__init__()
        self.words = nn.Embedding(vocab, classes)
        self.pairs = nn.Embedding(1, classes)  # until `fit`: no pair known
        nn.init.zeros_(self.words.weight)
        nn.init.zeros_(self.pairs.weight)
        self.idf = idf
        # Saved with the model: predict weighs and finds terms as training did.
        self.register_buffer("word_weight", torch.ones(vocab))
        self.register_buffer("pair_keys", torch.zeros(0, dtype=torch.long))  # sorted
        self.register_buffer("pair_weight", torch.zeros(1))  # per row of `pairs`
        self.register_buffer("pair_hashing", torch.tensor(pair_hashing(vocab, buckets)))
        self.register_load_state_dict_pre_hook(Wide._take_saved_shape)
        # Built last: a path without it draws the same initial weights as before it existed.
        self.chars = CharGrams(vocab, classes, idf) if chars else None

    def fit(self, ids: np.ndarray, mask: np.ndarray, vocab: list[str] | None = None) -> None:
        """The terms of the training split `ids`: their weights (idf = 1 + ln((1 + n) /
        (1 + df)) or 1; 0 for a word never seen) and a pair table of the pairs seen; with the
        subword block, its n-grams of the `vocab` words."""
        if self.chars is not None:
            if vocab is None:
                raise ValueError("the wide path's character n-grams need the vocabulary")
            self.chars.fit(ids, mask, vocab)
        hashing = self.pair_hashing.tolist()
        word_rows, words, pair_rows, keys = kept_terms(ids, mask, hashing)
        known, pair_terms = np.unique(keys, return_inverse=True)
        vocab, device = self.word_weight.numel(), self.word_weight.device
        word_df = document_frequency(word_rows, words, vocab)
        pair_df = document_frequency(pair_rows, pair_terms, len(known))
        word_weight, pair_weight = (
            1 + np.log((1 + len(ids)) / (1 + df)) if self.idf else np.ones(len(df))
            for df in (word_df, pair_df)
        )
        self.word_weight.copy_(torch.from_numpy(np.where(word_df > 0, word_weight, 0.0)))
        self.pair_keys = torch.from_numpy(known).to(device)
        self.pair_weight = torch.from_numpy(np.r_[0.0, pair_weight]).float().to(device)
        self.pairs = nn.Embedding(len(known) + 1, self.pairs.embedding_dim).to(device)
        nn.init.zeros_(self.pairs.weight)

    def pair_rows(self, keys):
        """The row of `pairs` of each key (a tensor or a numpy array): 0 where not in it."""
        if isinstance(keys, np.ndarray):
            known = self.pair_keys.cpu().numpy()
            found = np.minimum(np.searchsorted(known, keys), max(len(known) - 1, 0))
            return np.where(known[found] == keys, found + 1, 0) if len(known) else 0 * keys
        if not len(self.pair_keys):
            return torch.zeros_like(keys)
        found = torch.searchsorted(self.pair_keys, keys).clamp(max=len(self.pair_keys) - 1)
        return torch.where(self.pair_keys[found] == keys, found + 1, 0)

    def features(self, ids: np.ndarray, mask: np.ndarray) -> scipy.sparse.csr_matrix:
        """The rows as this path sees them, a sparse matrix: the words' columns, then the pair
        table's rows', each term at its weight (a term twice in a row: its weights add) and
        each row divided by the root of its terms' squared weights, as `forward` does."""
        word_rows, words, pair_rows, keys = kept_terms(ids, mask, self.pair_hashing.tolist())
        rows = self.pair_rows(keys)
        word_weight, pair_weight = self.word_weight.cpu().numpy(), self.pair_weight.cpu().numpy()
        vocab = len(word_weight)
        values = np.concatenate([word_weight[words], pair_weight[rows]])
        term_rows = np.concatenate([word_rows, pair_rows])
        columns = np.concatenate([words, vocab + rows])
        norms = np.sqrt(np.bincount(term_rows, weights=values**2, minlength=len(ids)))
        values = values / np.maximum(norms, 1e-12)[term_rows]
        shape = (len(ids), vocab + self.pairs.num_embeddings)
        words = scipy.sparse.csr_matrix((values, (term_rows, columns)), shape=shape)
        if self.chars is None:
            return words
        return scipy.sparse.hstack([words, self.chars.features(ids, mask)], format="csr")

    @torch.no_grad()
    def fit_linear(self, train: Split, valid: Split) -> np.ndarray:
        """This path's weights as the baseline's linear model: LinearSVC on the same features,
        C chosen on valid from its grid (on at most SELECT_ROWS rows, then fitted on all), its
        scores scaled by the temperature of the lowest log loss on valid so they are logits
        (qamodels/linear.py's fit_svm: fitted once per process for the same features).
        Returns each class's intercept."""
        fit = fit_svm(
            self.features(train.ids, train.mask),
            train.label,
            self.features(valid.ids, valid.mask),
            valid.label,
        )
        coef, intercept = fit.coef, fit.intercept
        if len(fit.classes) == 2:  # one margin for the second class: logits (0, margin)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
        weights = np.zeros((self.words.embedding_dim, coef.shape[1]))
        weights[fit.classes] = coef  # a class train lacks keeps zero weights
        bias = np.zeros(self.words.embedding_dim)
        bias[fit.classes] = intercept
        weights = torch.from_numpy(weights.T).float()
        vocab, pairs = self.words.num_embeddings, self.pairs.num_embeddings
        self.words.weight.copy_(weights[:vocab])
        self.pairs.weight.copy_(weights[vocab : vocab + pairs])
        if self.chars is not None:
            self.chars.grams.weight.copy_(weights[vocab + pairs :])
        return bias

    def _take_saved_shape(self, state: dict, prefix: str, *args) -> None:
        """A fitted model's pair table is as long as its training split needed. Models saved
        before exact pairs load as they scored: their hash buckets become the keys (idf
        buffers named word_idf/pair_idf; a table row per bucket, or a bucket -> row map)."""
        for old, new in (("word_idf", "word_weight"), ("pair_idf", "pair_weight")):
            if prefix + old in state:
                state[prefix + new] = state.pop(prefix + old)
        if prefix + "pairs.weight" not in state:
            return  # a state without this path (load_state_dict(strict=False))
        if prefix + "pair_keys" not in state:
            self._from_buckets(state, prefix)
        for name in ("pair_keys", "pair_weight"):
            setattr(
                self, name, torch.empty_like(state[prefix + name], device=self.word_weight.device)
            )
        rows = state[prefix + "pairs.weight"]
        if rows.shape != self.pairs.weight.shape:
            self.pairs = nn.Embedding(*rows.shape).to(self.pairs.weight.device)

    @staticmethod
    def _from_buckets(state: dict, prefix: str) -> None:
        """A hashed pair table's state as keys: the buckets the table holds, in row order."""
        table = state[prefix + "pairs.weight"]
        weight = state.get(prefix + "pair_weight", torch.ones(len(table)))
        row_of_bucket = state.pop(prefix + "pair_row", None)
        if row_of_bucket is None:  # a row per bucket: bucket b is row b + 1 after row 0
            buckets = torch.arange(len(table))
            table = torch.cat([torch.zeros_like(table[:1]), table])
        else:  # rows 1.. in bucket order (Wide.fit numbered them so); row 0 for the rest
            buckets = torch.nonzero(row_of_bucket).squeeze(1)
        state[prefix + "pairs.weight"] = table
        state[prefix + "pair_keys"] = buckets
        state[prefix + "pair_weight"] = torch.cat([torch.zeros(1), weight[buckets].float()])
        state[prefix + "pair_hashing"] = torch.tensor([PAIR_PRIME, len(weight)])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weight = self.word_weight[ids].unsqueeze(-1) * mask  # (b, t, 1)
        total = (self.words(ids) * weight).sum(1)
        squares = (weight * weight).sum(1)
        if ids.shape[1] > 1:
            rows = self.pair_rows(pair_keys(ids, self.pair_hashing))
            pair_weight = self.pair_weight[rows].unsqueeze(-1) * mask[:, :-1] * mask[:, 1:]
            total = total + (self.pairs(rows) * pair_weight).sum(1)
            squares = squares + (pair_weight * pair_weight).sum(1)
        logits = total * squares.clamp(min=1e-12).rsqrt()
        return logits if self.chars is None else logits + self.chars(ids, mask)
