"""refit=true: the best single model of a family that gains from it trained again on train +
valid for the epochs its trial chose; best_model/, final.csv's test score, the report and the
last line all say so; the others are exported as their trials trained them."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from data_prep.store import subset_index
from qamodels.baseline import tokenizer
from qamodels.batches import DeviceSplit
from qamodels.checkpoint import load_model
from qamodels.config import TrainConfig
from qamodels.trainer import TrainResult, predict_logits, subset
from search.config import SearchConfig
from search.refit import REFIT_ARCHS, refit_best, train_on_train_and_valid, with_valid_in_train
from search.trainable import RESOLVED_CONFIG

TRAIN = TrainConfig(max_train_rows=600, bucket=False, amp=False, seed=1)


@pytest.fixture(scope="module")
def refit_search(local_ray, prepared_sample, tmp_path_factory):
    from search.run import run_search

    config = SearchConfig(arch="cnn_stacked", num_samples=1, max_epochs=2, grace_period=1,
                          train=TRAIN, storage_path=str(tmp_path_factory.mktemp("refit")),
                          name="refit", embeddings=("random",), pretrain="false",
                          gpus_per_trial="0")  # fmt: skip
    _results, board = run_search(config, prepared_sample)
    return config, board


def test_valid_joins_the_rows_a_trial_trained_on(prepared_sample):
    merged = with_valid_in_train(prepared_sample, rows=500, seed=1).train
    trained = subset(prepared_sample.train, 500, 1)
    assert len(merged) == 500 + len(prepared_sample.valid)
    assert np.array_equal(merged.ids[:500], trained.ids)
    assert np.array_equal(merged.label[500:], prepared_sample.valid.label)


@pytest.mark.e2e
def test_the_best_cnn_is_refit_and_its_test_score_is_the_refits(refit_search, prepared_sample):
    config, board = refit_search
    experiment = config.experiment_path
    trial_dir = next(experiment.glob(f"cnn_stacked_{board.iloc[0]['trial']}"))
    chosen = json.loads((trial_dir / "best_model" / "metrics.json").read_text())
    final = pd.read_csv(experiment / "final.csv")
    best = final[final["model"] == "best of arch"].iloc[0]
    assert best["refit"] == f"train+valid, {chosen['best']['epoch']} epochs"
    refit, _ = load_model(experiment / "best_model")
    trial_model, _ = load_model(trial_dir / "best_model")
    assert any(not torch.equal(a, b) for a, b in zip(refit.state_dict().values(),
                                                      trial_model.state_dict().values(),
                                                      strict=True))  # fmt: skip
    test = DeviceSplit.from_split(prepared_sample.test, "cpu")
    predicted = predict_logits(refit, test).argmax(-1).numpy()
    assert best["test_accuracy"] == pytest.approx((predicted == prepared_sample.test.label).mean())
    # The export is the configuration trained again on train + valid (the same seeds).
    resolved = json.loads((trial_dir / RESOLVED_CONFIG).read_text())
    result = TrainResult(chosen["best"], chosen["history"], "refit")
    threads = torch.get_num_threads()
    try:
        files = train_on_train_and_valid(resolved, config, prepared_sample, result, None)
    finally:  # the task sets its trial's thread count
        torch.set_num_threads(threads)
    again = torch.load(io.BytesIO(files["model.pt"]), weights_only=True)
    exported = torch.load(experiment / "best_model" / "model.pt", weights_only=True)
    for name, value in exported["state_dict"].items():
        torch.testing.assert_close(again["state_dict"][name], value)
    report = (experiment / "report.md").read_text()
    assert f"refit on train+valid, {chosen['best']['epoch']} epochs" in report
    assert (experiment / "best_model" / "confusion.png").is_file()


@pytest.mark.e2e
def test_the_refit_model_is_measured_against_the_baseline_refit_alike(refit_search,
                                                                      prepared_sample):  # fmt: skip
    """Valid's rows lift the linear model too: the refit model's lift is counted against
    the baseline's own configuration fitted on the same train subset + valid."""
    config, _board = refit_search
    final = pd.read_csv(config.experiment_path / "final.csv").set_index("model")
    rows = subset_index(len(prepared_sample.train), TRAIN.max_train_rows, TRAIN.seed)
    train = prepared_sample.texts("train")
    texts = [train[i] for i in rows] + prepared_sample.texts("valid")
    labels = np.concatenate([prepared_sample.train.label[rows], prepared_sample.valid.label])
    features = TfidfVectorizer(tokenizer=tokenizer, token_pattern=None, lowercase=False,
                               ngram_range=(1, 2), sublinear_tf=True).fit(texts)  # fmt: skip
    name = final.loc["baseline", "arch"]  # e.g. "tfidf+linearsvc C=1"
    c = float(name.split("C=")[1])
    model = LinearSVC(C=c) if "linearsvc" in name else LogisticRegression(C=c, max_iter=2000)
    model.fit(features.transform(texts), labels)
    predicted = model.predict(features.transform(prepared_sample.texts("test")))
    expected = (predicted == prepared_sample.test.label).mean()
    refit_row = final.loc["baseline refit"]
    assert refit_row["test_accuracy"] == pytest.approx(expected)
    best = final.loc["best of arch"]
    best = best.iloc[0] if best.ndim > 1 else best
    assert best["test_lift"] == pytest.approx(best["test_accuracy"] - expected)
    assert final.loc["baseline", "test_lift"] == 0
    events = EventAccumulator(str(config.experiment_path / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert "final/baseline_refit/valid_accuracy" not in tags  # it trained on valid
    (point,) = events.Scalars("final/baseline_refit/test_accuracy")
    assert point.value == pytest.approx(expected)


def test_a_family_that_does_not_gain_is_exported_as_trained(tmp_path, prepared_sample):
    """The DAN (and with refit=false, any family): no refit, so no Ray task either."""
    board = pd.DataFrame({"arch": ["dan"], "trial": ["x"]})
    rows = pd.DataFrame({"trial": ["x"], "path": [str(tmp_path)]})
    config = SearchConfig(arch="dan")
    assert "dan" not in REFIT_ARCHS
    assert refit_best(board, rows, config, prepared_sample, None, tmp_path / "out") is None
    cnn = board.assign(arch=["cnn_stacked"])
    off = SearchConfig(arch="cnn_stacked", refit=False)
    assert refit_best(cnn, rows, off, prepared_sample, None, tmp_path / "out") is None
    assert not (tmp_path / "out").exists()


def test_the_last_line_names_the_refit(refit_search):
    from search.conclude import headline

    config, _board = refit_search
    final = pd.read_csv(Path(config.experiment_path) / "final.csv").fillna("")
    line = headline(final)
    assert "best single (cnn_stacked, refit)" in line
    refit_baseline = final.set_index("model").loc["baseline refit", "test_accuracy"]
    assert line.endswith(f"(refit on train+valid {refit_baseline:.4f})")
