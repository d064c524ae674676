"""The TF-IDF + linear baseline: trained on train, chosen on valid, scored on test."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from data_prep.cli import ConfigError
from qamodels.baseline import (
    BASELINE_ARRAYS,
    BASELINE_FILE,
    PICKLED_BASELINE,
    fit_baseline,
    load_baseline,
)
from qamodels.metrics import softmax_temperature
from tests.conftest import PlantedPickle


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
    model, temperature = load_baseline(baseline.save(tmp_path).parent)
    texts = prepared_sample.texts("test")[:200]
    probs = softmax_temperature(model.decision_function(texts), temperature)
    assert np.allclose(probs, baseline.probabilities["test"][:200])
    assert not list(tmp_path.glob("*.joblib")) and not list(tmp_path.glob("*.pkl"))


def test_a_planted_pickle_is_never_loaded(tmp_path):
    marker = tmp_path / "payload_ran"
    planted = tmp_path / "member"
    planted.mkdir()
    with open(planted / PICKLED_BASELINE, "wb") as file:
        pickle.dump(PlantedPickle(marker), file)
    with pytest.raises(ConfigError, match="pickled baseline.joblib, which qatune never loads"):
        load_baseline(planted)
    np.save(planted / "x.npy", np.array([PlantedPickle(marker)], dtype=object), allow_pickle=True)
    (planted / BASELINE_ARRAYS).write_bytes((planted / "x.npy").read_bytes())  # a pickle in npz
    (planted / BASELINE_FILE).write_text('{"vocabulary": [], "temperature": 1}')
    with pytest.raises(ConfigError, match="damaged baseline") as err:
        load_baseline(planted)
    assert len(str(err.value).splitlines()) == 1
    assert not marker.exists()


def test_baseline_trains_on_the_trials_subset(baseline, prepared_sample):
    small = fit_baseline(prepared_sample, max_train_rows=300, seed=0)
    words = len(small.pipeline.named_steps["tfidf"].vocabulary_)
    assert words < len(baseline.pipeline.named_steps["tfidf"].vocabulary_) / 5  # 300 rows
    assert small.valid["accuracy"] < baseline.valid["accuracy"]
