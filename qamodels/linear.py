"""What the baseline and the DAN's wide path share as linear models: LinearSVC's grid of C
(chosen on valid) and the temperature that turns its decision scores into probabilities."""

from __future__ import annotations

import numpy as np

from qamodels.metrics import scores, softmax_temperature

SVC_C = (0.1, 0.3, 1.0, 3.0)
SELECT_ROWS = 50_000  # C is chosen on at most this many training rows, then refitted on all


def fit_temperature(decisions: np.ndarray, labels: np.ndarray) -> float:
    """The scale of the decision scores that gives the lowest log loss on valid (a grid:
    one parameter, no optimizer needed), so the linear model's probabilities can be
    averaged with the neural models' in an ensemble. Temperature scaling, not scikit-learn's
    CalibratedClassifierCV: that refits the model per fold and calibrates each class apart
    (sigmoid or isotonic); one temperature keeps the model and its predictions as they are."""
    best_nll, best_t = np.inf, 1.0
    for t in np.exp(np.linspace(np.log(0.1), np.log(100), 61)):
        probs = softmax_temperature(decisions, t)
        nll = scores(probs, labels, probs.shape[1])["loss"]
        if nll < best_nll:
            best_nll, best_t = nll, float(t)
    return best_t
