"""The DAN's wide path: a linear model over TF-IDF (or plain) word and word-pair features,
inside the network (Cheng et al. 2016's wide and deep), and its fit as the baseline's
linear model (LinearSVC, qamodels/baseline.py) for `wide_first=1`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import torch
from sklearn.svm import LinearSVC
from torch import nn

from data_prep.store import Split, subset_index
from qamodels.linear import SELECT_ROWS, SVC_C, fit_temperature

PAIR_PRIME = 1_000_003  # mixes the first id so (a, b) and (b, a) land apart


def hashed_pairs(ids, buckets: int):
    """The hash bucket of each pair of neighbouring ids (a tensor or a numpy array)."""
    return (ids[:, :-1] * PAIR_PRIME + ids[:, 1:]) % buckets


def kept_terms(ids: np.ndarray, mask: np.ndarray, buckets: int) -> tuple[np.ndarray, ...]:
    """The words `mask` keeps and the hash buckets of the pairs of two kept neighbours, each
    with its row: (word rows, words, pair rows, pair buckets), flat arrays."""
    ids, keep = np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=bool)
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
    both = keep[:, :-1] & keep[:, 1:]
    return rows[keep], ids[keep], rows[:, :-1][both], hashed_pairs(ids, buckets)[both]


class Wide(nn.Module):
    """A linear model over the words and hashed word pairs (Cheng et al. 2016's wide part):
    one weight per class for each, summed and scaled as the L2-normalized TF-IDF rows of the
    baseline are. A rare word that names a category moves the logits directly, not through
    an average of all the words and an MLP. Starts at zero, a plain DAN, unless `fit_linear`
    starts it as the baseline's SVM.

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
        self.register_load_state_dict_pre_hook(Wide._take_saved_shape)

    def fit(self, ids: np.ndarray, mask: np.ndarray) -> None:
        """The terms of the training split `ids`: their weights (idf = 1 + ln((1 + n) /
        (1 + df)) or 1; 0 for a term never seen) and a pair table of the buckets seen."""
        word_rows, words, pair_rows, buckets = kept_terms(ids, mask, self.buckets)
        for table, term_rows, found in ((self.word_weight, word_rows, words),
                                        (self.pair_weight, pair_rows, buckets)):  # fmt: skip
            width = table.numel()
            seen = np.unique(term_rows * width + found) % width  # once per row
            df = np.bincount(seen, minlength=width)
            weight = 1 + np.log((1 + len(ids)) / (1 + df)) if self.idf else np.ones(width)
            table.copy_(torch.from_numpy(np.where(df > 0, weight, 0.0)))
        seen_buckets = torch.nonzero(self.pair_weight > 0).squeeze(1)
        self.pair_row.zero_()  # row 0: every bucket never seen (its weight 0: never trained)
        self.pair_row[seen_buckets] = torch.arange(1, len(seen_buckets) + 1)
        self.pairs = nn.Embedding(len(seen_buckets) + 1, self.pairs.embedding_dim)
        nn.init.zeros_(self.pairs.weight)

    def features(self, ids: np.ndarray, mask: np.ndarray) -> scipy.sparse.csr_matrix:
        """The rows as this path sees them, a sparse matrix: the words' columns, then the pair
        table's rows', each term at its weight (a term twice in a row: its weights add) and
        each row divided by the root of its terms' squared weights, as `forward` does."""
        word_rows, words, pair_rows, buckets = kept_terms(ids, mask, self.buckets)
        word_weight, pair_weight = self.word_weight.cpu().numpy(), self.pair_weight.cpu().numpy()
        vocab = len(word_weight)
        values = np.concatenate([word_weight[words], pair_weight[buckets]])
        term_rows = np.concatenate([word_rows, pair_rows])
        columns = np.concatenate([words, vocab + self.pair_row.cpu().numpy()[buckets]])
        norms = np.sqrt(np.bincount(term_rows, weights=values**2, minlength=len(ids)))
        values = values / np.maximum(norms, 1e-12)[term_rows]
        shape = (len(ids), vocab + self.pairs.num_embeddings)
        return scipy.sparse.csr_matrix((values, (term_rows, columns)), shape=shape)

    @torch.no_grad()
    def fit_linear(self, train: Split, valid: Split) -> np.ndarray:
        """This path's weights as the baseline's linear model: LinearSVC on the same features,
        C chosen on valid from its grid (on at most SELECT_ROWS rows, then fitted on all), its
        scores scaled by the temperature of the lowest log loss on valid so they are logits.
        Returns each class's intercept."""
        x_train = self.features(train.ids, train.mask)
        x_valid = self.features(valid.ids, valid.mask)
        select = subset_index(len(train), SELECT_ROWS, seed=0)  # as the baseline chooses C
        best = None
        for c in SVC_C:
            model = LinearSVC(C=c, random_state=0).fit(x_train[select], train.label[select])
            accuracy = float((model.predict(x_valid) == valid.label).mean())
            if best is None or accuracy > best[0]:
                best = (accuracy, model)
        model = best[1]
        if len(select) < len(train):
            model = LinearSVC(C=model.C, random_state=0).fit(x_train, train.label)
        temperature = fit_temperature(model.decision_function(x_valid), valid.label)
        coef = np.asarray(model.coef_, dtype=np.float64) * temperature
        intercept = np.atleast_1d(model.intercept_) * temperature
        if len(model.classes_) == 2:  # one margin for the second class: logits (0, margin)
            coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
        weights = np.zeros((self.words.embedding_dim, coef.shape[1]))
        weights[model.classes_] = coef  # a class train lacks keeps zero weights
        bias = np.zeros(self.words.embedding_dim)
        bias[model.classes_] = intercept
        weights = torch.from_numpy(weights.T).float()
        vocab = self.words.num_embeddings
        self.words.weight.copy_(weights[:vocab])
        self.pairs.weight.copy_(weights[vocab:])
        return bias

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
