"""Greedy ensemble selection (Caruana et al. 2004) on valid probabilities."""

from __future__ import annotations

import numpy as np

from search.ensemble import combine, select


def noisy_models(labels: np.ndarray, classes: int, skills: list[float], seed: int):
    """Probabilities of models that know the right class with the given skill, each with its
    own independent errors."""
    rng = np.random.default_rng(seed)
    models = []
    for skill in skills:
        logits = rng.normal(size=(len(labels), classes))
        logits[np.arange(len(labels)), labels] += skill
        e = np.exp(logits - logits.max(1, keepdims=True))
        models.append(e / e.sum(1, keepdims=True))
    return models


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == labels).mean())


def test_ensemble_never_below_its_best_member_and_gains_from_diversity():
    labels = np.random.default_rng(0).integers(0, 5, 2000)
    models = noisy_models(labels, 5, [1.0, 1.1, 1.2, 0.2], seed=1)
    weights = select(models, labels)
    assert np.isclose(weights.sum(), 1) and (weights >= 0).all()
    best_member = max(accuracy(m, labels) for m in models)
    assert accuracy(combine(models, weights), labels) > best_member + 0.02
    assert weights[3] < weights[2]  # the weak model earns little or no weight


def test_one_model_library_is_that_model():
    labels = np.random.default_rng(0).integers(0, 3, 300)
    models = noisy_models(labels, 3, [1.0], seed=2)
    assert select(models, labels).tolist() == [1.0]
