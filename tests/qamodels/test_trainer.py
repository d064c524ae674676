"""The trainer's run directory, best-epoch restore, resume, and the train CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from qamodels.checkpoint import load_model
from qamodels.config import TrainConfig
from qamodels.trainer import Trainer
from tests.conftest import REPO, SHARED_DATA, first_rows


def quick(**overrides) -> TrainConfig:
    values = dict(
        arch="cnn_parallel",
        epochs=3,
        max_train_rows=1500,
        batch_size=64,
        device="cpu",
        progress=False,
    )
    return TrainConfig(**{**values, **overrides})


def test_run_directory_and_best_epoch_restore(prepared_sample, tmp_path):
    trainer = Trainer(quick(patience=5, lr=3e-3), prepared_sample, {"filters": 16})
    seen = []
    result = trainer.fit(on_epoch=lambda end: seen.append(end.metrics["epoch"]))
    assert seen == [1, 2, 3] and len(result.history) == 3
    metrics, _ = trainer.evaluate()
    assert metrics["valid_accuracy"] == result.best["valid_accuracy"]  # best weights restored
    assert result.best["valid_accuracy"] == max(h["valid_accuracy"] for h in result.history)
    run = trainer.save_run(tmp_path / "run", result)
    for name in ("loss_iterations.png", "loss_epochs.png", "metrics.png", "confusion.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((run / "iteration_loss.csv").read_text().split()) == 3 * 24  # 1500 rows / 64
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["best"]["epoch"] == result.best["epoch"]
    checkpoint = torch.load(run / "model.pt", weights_only=True)
    assert checkpoint["labels"] == prepared_sample.labels
    model, _ = load_model(run)
    batch = first_rows(prepared_sample.valid, 64)
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            model(batch.ids, batch.mask), trainer.model(batch.ids, batch.mask)
        )


def test_resume_from_saved_state_equals_an_uninterrupted_run(prepared_sample, tmp_path):
    straight = Trainer(quick(epochs=2, patience=5), prepared_sample, {"filters": 16}).fit()
    first = Trainer(quick(epochs=2, patience=5), prepared_sample, {"filters": 16})
    first.fit(on_epoch=lambda end: end.save_state(tmp_path) if end.metrics["epoch"] == 1 else None)
    resumed = Trainer(quick(epochs=2, patience=5), prepared_sample, {"filters": 16})
    resumed.restore(tmp_path)
    assert len(resumed.history) == 1
    result = resumed.fit()
    assert [h["valid_loss"] for h in result.history] == pytest.approx(
        [h["valid_loss"] for h in straight.history], rel=1e-5
    )


def test_early_stopping_with_patience(prepared_sample):
    # lr 0 with a constant schedule and no batch norm (whose running statistics would
    # still move): nothing improves after the first epoch.
    config = quick(epochs=6, patience=2, lr=0.0, scheduler="none")
    result = Trainer(config, prepared_sample, {"filters": 8, "norm": "none"}).fit()
    assert len(result.history) == 3
    assert result.stopped == "early stop: no better valid_accuracy for 2 epochs"


def test_train_cli_rejects_unknown_parameter_and_trains(tmp_path):
    base = [
        sys.executable,
        "-m",
        "qamodels.train",
        f"raw_dir={SHARED_DATA}",
        "categories=all",
        "valid_size=0.1",
        "train_size=0.6",
        f"data_dir={tmp_path}",
    ]
    bad = subprocess.run(base + ["arch=dan", "windows=3"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2
    assert "arch dan has no parameter(s) windows; its parameters: hidden" in bad.stderr
    good = subprocess.run(
        base
        + [
            "arch=dan",
            "epochs=1",
            "max_train_rows=500",
            "hidden=32",
            f"out_dir={tmp_path / 'run'}",
            "progress=false",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["params"]["hidden"] == 32
