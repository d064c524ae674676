"""The best single model: the simplest of the architectures' best that valid cannot tell
from the best on valid, or the best where it leads clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from search.choice import simplest_close
from search.ensemble import Candidate
from search.held_out import best_single
from tests.search.test_ensemble import noisy_models


def candidate(name: str, arch: str, valid: np.ndarray) -> Candidate:
    return Candidate(name, arch, Path("unused"), {"valid": valid})


def right_on(probabilities: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The probabilities with `rows` made right (the label's probability raised to 0.99)."""
    fixed = probabilities.copy()
    fixed[rows] = 0.01 / (fixed.shape[1] - 1)
    fixed[rows, labels[rows]] = 0.99
    return fixed


def models(seed: int = 0):
    labels = np.random.default_rng(seed).integers(0, 4, 600)
    dan, cnn = noisy_models(labels, 4, [1.5, 1.4], seed=seed + 1)
    return labels, dan, cnn


def test_a_lead_valid_cannot_tell_from_noise_goes_to_the_simplest_family():
    labels, dan, _ = models()
    wrong = np.flatnonzero(dan.argmax(1) != labels)
    transformer = right_on(dan, labels, wrong[:3])  # three rows ahead of the DAN
    cands = [candidate("t1", "transformer", transformer), candidate("d1", "dan", dan)]
    choice = simplest_close(cands, labels)
    assert choice.chosen.name == "d1" and choice.best_on_valid.name == "t1"
    assert choice.close == 2 and "transformer, trial t1" in choice.describe()


def test_a_clear_lead_keeps_the_best_on_valid():
    labels, dan, cnn = models(1)
    wrong = np.flatnonzero(cnn.argmax(1) != labels)
    cnn = right_on(cnn, labels, wrong[: len(wrong) // 2])  # far ahead of the DAN
    cands = [candidate("c1", "cnn_residual", cnn), candidate("d1", "dan", dan)]
    choice = simplest_close(cands, labels)
    assert choice.chosen.name == "c1" and choice.close == 1 and choice.describe() == ""


def test_among_close_families_the_simplest_wins_not_the_first_listed():
    labels, dan, _ = models(2)
    wrong = np.flatnonzero(dan.argmax(1) != labels)
    bilstm = right_on(dan, labels, wrong[:2])
    cnn = right_on(dan, labels, wrong[2:3])
    cands = [candidate("b", "bilstm", bilstm), candidate("c", "cnn_stacked", cnn),
             candidate("p", "cnn_parallel", dan)]  # fmt: skip
    assert simplest_close(cands, labels).chosen.name == "p"


def test_another_metric_keeps_the_boards_best():
    labels, dan, _ = models(3)
    wrong = np.flatnonzero(dan.argmax(1) != labels)
    transformer = right_on(dan, labels, wrong[:3])
    cands = [candidate("t1", "transformer", transformer), candidate("d1", "dan", dan)]
    assert best_single(cands, labels, "valid_macro_f1").chosen.name == "t1"
    assert best_single(cands, labels, "valid_accuracy").chosen.name == "d1"
    assert best_single([], labels, "valid_accuracy") is None
