"""The linear model the baseline and the wide DAN share (qamodels/linear.py)."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from sklearn.svm import LinearSVC

from qamodels.linear import SVC_C, fit_svm


def features(rows: int, seed: int) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = scipy.sparse.random(rows, 40, density=0.2, format="csr", random_state=seed)
    labels = (np.asarray(x[:, :3].argmax(1)).ravel() + rng.integers(0, 2, rows) % 2) % 3
    return x, labels.astype(np.int64)


def test_the_svm_fit_is_the_svm_chosen_on_valid_and_comes_once_per_process_for_the_same_rows():
    """The fit predicts as LinearSVC with the C of the best valid accuracy; the same features
    again (other arrays, equal bytes) return that fit without refitting; other rows refit."""
    (x_train, y_train), (x_valid, y_valid) = features(300, 0), features(100, 1)
    fit = fit_svm(x_train, y_train, x_valid, y_valid)
    svm = max((LinearSVC(C=c, random_state=0).fit(x_train, y_train) for c in SVC_C),
              key=lambda m: (m.predict(x_valid) == y_valid).mean())  # fmt: skip
    logits = x_valid @ fit.coef.T + fit.intercept
    assert np.array_equal(fit.classes[logits.argmax(1)], svm.predict(x_valid))

    again = fit_svm(x_train.copy(), y_train.copy(), x_valid.copy(), y_valid.copy())
    assert again is fit
    changed = y_train.copy()
    changed[0] = (changed[0] + 1) % 3
    other = fit_svm(x_train, changed, x_valid, y_valid)
    assert other is not fit and not np.array_equal(other.coef, fit.coef)
