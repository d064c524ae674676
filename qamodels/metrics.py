"""The one scoring function: trials, the baseline, the ensemble, `search.evaluate` and the
report all score with `scores` (scikit-learn's metrics), so their numbers compare.

Accuracy decides (the search's metric), macro-F1 weighs every class alike (over the classes
present in the labels), log loss scores the probabilities. Micro-F1 is not reported: for
single-label classes it is accuracy under another name.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as sk


def scores(probabilities, labels, classes: int) -> dict[str, float]:
    """accuracy, macro_f1 and loss of (n, classes) class probabilities (numpy or torch)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    # Not in place: the array may be read-only (the baseline's come from Ray's object store).
    probabilities = probabilities / probabilities.sum(1, keepdims=True)  # float32 rows drift
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probabilities.argmax(1)
    return {
        "accuracy": float(sk.accuracy_score(labels, predicted)),
        "macro_f1": float(
            sk.f1_score(
                labels, predicted, labels=np.unique(labels), average="macro", zero_division=0
            )  # fmt: skip
        ),
        "loss": float(sk.log_loss(labels, probabilities, labels=range(classes))),
    }


def confusion_matrix(labels, predicted, classes: int) -> np.ndarray:
    """(classes, classes) counts: rows are true classes, columns predictions."""
    return sk.confusion_matrix(np.asarray(labels), np.asarray(predicted), labels=range(classes))


def softmax_temperature(scores_: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of `temperature * scores` (numpy, numerically stable)."""
    z = np.asarray(scores_, dtype=np.float64) * temperature
    if z.ndim == 1:  # a binary linear model gives one score: the second class's margin
        z = np.stack([np.zeros_like(z), z], axis=1)
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
