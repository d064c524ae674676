"""Classification metrics from a confusion matrix computed on the device."""

from __future__ import annotations

import numpy as np
import torch


def confusion_matrix(truth: torch.Tensor, predicted: torch.Tensor, classes: int) -> torch.Tensor:
    """(classes, classes) counts: rows are true classes, columns predictions."""
    flat = truth.long() * classes + predicted.long()
    return torch.bincount(flat, minlength=classes * classes).reshape(classes, classes)


def scores(confusion: torch.Tensor) -> dict[str, float]:
    confusion = confusion.double()
    true_pos = confusion.diag()
    predicted = confusion.sum(0)
    actual = confusion.sum(1)
    precision = true_pos / predicted.clamp(min=1)
    recall = true_pos / actual.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    present = actual > 0
    accuracy = float(true_pos.sum() / confusion.sum().clamp(min=1))
    return {
        "accuracy": accuracy,
        # Single-label multi-class: micro-F1 equals accuracy; reported under its own name.
        "micro_f1": accuracy,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
    }


def split_scores(probabilities, labels, classes: int) -> dict[str, float]:
    """accuracy, micro/macro-F1 and log loss of (n, classes) probabilities (numpy or torch)."""
    probs = torch.as_tensor(probabilities, dtype=torch.float64)
    truth = torch.from_numpy(np.array(labels, dtype=np.int64))  # a copy: labels may be read-only
    confusion = confusion_matrix(truth, probs.argmax(-1), classes)
    picked = probs[torch.arange(len(truth)), truth].clamp(min=1e-12)
    return {**scores(confusion), "loss": float(-picked.log().mean())}


def softmax_temperature(scores_: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of `temperature * scores` (numpy, numerically stable)."""
    z = np.asarray(scores_, dtype=np.float64) * temperature
    if z.ndim == 1:  # a binary linear model gives one score: the second class's margin
        z = np.stack([np.zeros_like(z), z], axis=1)
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)
