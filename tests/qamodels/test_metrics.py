"""The one scoring function: macro-F1 over the classes present, log loss of the label."""

from __future__ import annotations

import numpy as np
import pytest

from qamodels.metrics import confusion_matrix, scores


def test_scores_of_a_case_worked_by_hand():
    # Labels use classes 0 and 1 of 3; one item of class 1 is predicted as class 2.
    labels = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.8, 0.1, 0.1], [0.6, 0.2, 0.2], [0.1, 0.7, 0.2], [0.1, 0.3, 0.6]])
    found = scores(probabilities, labels, classes=3)
    assert found["accuracy"] == 0.75
    # class 0: precision 1, recall 1 -> F1 1; class 1: precision 1, recall 1/2 -> F1 2/3;
    # class 2 has no item, so it does not drag the mean down.
    assert found["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert found["loss"] == pytest.approx(-np.log([0.8, 0.6, 0.7, 0.3]).mean())
    assert confusion_matrix(labels, probabilities.argmax(1), 3).tolist() == [
        [2, 0, 0],
        [0, 1, 1],
        [0, 0, 0],
    ]


def test_scores_take_read_only_arrays():
    """As Ray's object store hands the baseline's probabilities back: read-only."""
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8]], dtype=np.float32)
    labels = np.array([0, 1])
    probabilities.flags.writeable = labels.flags.writeable = False
    assert scores(probabilities, labels, classes=2)["accuracy"] == 1.0
