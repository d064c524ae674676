"""Ensemble selection on valid probabilities: gains from diversity, holds on unseen rows."""

from __future__ import annotations

import numpy as np

from search.ensemble import combine, greedy, select


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


def test_ensemble_gains_from_diversity():
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


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_a_small_valid_split_keeps_the_best_model_when_the_others_add_only_noise():
    """One model and eight noisy copies of it (no new information): on 300 valid rows plain
    greedy selection adds copies that fit valid's noise and loses on held-out rows; the
    selection keeps the best model alone, so it does not fall below it on average."""
    rng = np.random.default_rng(0)
    greedy_loss, select_loss = [], []
    for draw in range(12):
        labels = rng.integers(0, 6, 3300)
        logits = rng.normal(size=(3300, 6))
        logits[np.arange(3300), labels] += 1.6
        noise = [rng.normal(scale=1.5, size=logits.shape) for _ in range(8)]
        models = [softmax(logits)] + [softmax(logits + n) for n in noise]
        valid, held_out = slice(0, 300), slice(300, None)
        best = max(models, key=lambda m: accuracy(m[valid], labels[valid]))[held_out]
        for loss, weights in (
            (greedy_loss, greedy(np.stack([m[valid] for m in models]), labels[valid])),
            (select_loss, select([m[valid] for m in models], labels[valid], seed=draw)),
        ):
            ensemble = combine([m[held_out] for m in models], weights)
            loss.append(accuracy(best, labels[held_out]) - accuracy(ensemble, labels[held_out]))
    assert np.mean(greedy_loss) > 0.003  # the 2004 procedure alone overfits here
    assert np.mean(select_loss) <= 0.0005


def test_models_valid_cannot_rank_are_averaged_and_a_clearly_weaker_one_is_left_out():
    """Where no way of weighing wins out of fold (here two models that agree on every row),
    the close ones share the weight rather than one of them winning a tie; a model far
    below them on valid gets none."""
    labels = np.random.default_rng(0).integers(0, 3, 200)
    strong, weak = noisy_models(labels, 3, [1.5, 0.1], seed=3)
    sharper = softmax(np.log(strong) * 1.3)  # same ranking of the classes on every row
    weights = select([strong, weak, sharper], labels)
    assert weights.tolist() == [0.5, 0.0, 0.5]


def confident(labels: np.ndarray, predicted: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Probabilities that put `confidence` on `predicted` and share the rest (3 classes)."""
    probs = np.repeat(((1 - confidence) / 2)[:, None], 3, axis=1)
    probs[np.arange(len(labels)), predicted] = confidence
    return probs


def test_the_best_model_alone_must_beat_the_close_average_by_more_than_valid_can_tell():
    """Two models valid cannot rank: the better one is wrong on 4 rows the other gets right
    with confidence, and right on 10 where the other is confidently wrong. Their average is 6
    rows below the better one out of fold: within the noise of 14 disagreeing rows (2
    standard deviations: 7.5), so the two are averaged, not the better one kept on luck."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    wrong = (labels + 1) % 3
    first_only, second_only = np.arange(10), np.arange(10, 14)  # the rows only one gets
    first, second = labels.copy(), labels.copy()
    first[second_only], second[first_only] = wrong[second_only], wrong[first_only]
    both_wrong = np.arange(300, 400)  # and rows neither gets, to make it a realistic split
    first[both_wrong] = second[both_wrong] = wrong[both_wrong]
    sure = np.zeros(400, bool)
    sure[:14] = True  # the second model is sure exactly where the two disagree
    models = [confident(labels, first, np.full(400, 0.6)),
              confident(labels, second, np.where(sure, 0.9, 0.5))]  # fmt: skip
    average = combine(models, np.array([0.5, 0.5]))
    assert ((models[0].argmax(1) == labels).sum() - (average.argmax(1) == labels).sum()) == 6
    assert select(models, labels).tolist() == [0.5, 0.5]
