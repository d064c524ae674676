"""The TF-IDF + linear baseline: trained on train, chosen on valid, scored on test."""

from __future__ import annotations

import numpy as np
import pytest

from qamodels.baseline import fit_baseline, load_baseline
from qamodels.metrics import softmax_temperature


@pytest.fixture(scope="module")
def baseline(prepared_sample):
    return fit_baseline(prepared_sample)


def test_baseline_is_trained_and_scored_on_every_split(baseline, prepared_sample):
    chance = np.bincount(prepared_sample.valid.label).max() / len(prepared_sample.valid)
    assert baseline.valid["accuracy"] > chance + 0.2
    assert abs(baseline.test["accuracy"] - baseline.valid["accuracy"]) < 0.05
    for split in ("valid", "test"):
        probs = baseline.probabilities[split]
        assert probs.shape == (len(getattr(prepared_sample, split)), len(prepared_sample.labels))
        assert np.allclose(probs.sum(1), 1)
        labels = getattr(prepared_sample, split).label
        assert (probs.argmax(1) == labels).mean() == pytest.approx(
            getattr(baseline, split)["accuracy"]
        )


def test_saved_baseline_predicts_what_was_scored(baseline, prepared_sample, tmp_path):
    pipeline, temperature = load_baseline(baseline.save(tmp_path).parent)
    texts = prepared_sample.texts("test")[:200]
    probs = softmax_temperature(pipeline.decision_function(texts), temperature)
    assert np.allclose(probs, baseline.probabilities["test"][:200])


def test_baseline_trains_on_the_trials_subset(baseline, prepared_sample):
    small = fit_baseline(prepared_sample, max_train_rows=300, seed=0)
    words = len(small.pipeline.named_steps["tfidf"].vocabulary_)
    assert words < len(baseline.pipeline.named_steps["tfidf"].vocabulary_) / 5  # 300 rows
    assert small.valid["accuracy"] < baseline.valid["accuracy"]
