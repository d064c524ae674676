"""Classification metrics from a confusion matrix computed on the device."""

from __future__ import annotations

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
