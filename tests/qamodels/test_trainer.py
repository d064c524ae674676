"""The trainer's run directory, best-epoch restore, resume, and the train CLI."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qamodels.averaging import WeightAverage
from qamodels.checkpoint import load_model
from qamodels.config import TrainConfig
from qamodels.trainer import STATE_FILE, Trainer
from tests.conftest import REPO, SHARED_DATA, first_rows, test_device


def quick(**overrides) -> TrainConfig:
    values = dict(
        arch="cnn_parallel",
        epochs=3,
        max_train_rows=1500,
        batch_size=64,
        device=test_device(),
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
    test, confusion = trainer.evaluate("test")  # named after the split it scored
    assert set(test) == {"test_accuracy", "test_macro_f1", "test_loss"}
    assert confusion.sum() == len(prepared_sample.test)
    assert test["test_accuracy"] == confusion.trace() / confusion.sum()
    assert result.best["valid_accuracy"] == max(h["valid_accuracy"] for h in result.history)
    run = trainer.save_run(tmp_path / "run", result)
    for name in ("loss_iterations.png", "loss_epochs.png", "metrics.png", "confusion.png"):
        assert (run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((run / "iteration_loss.csv").read_text().split()) == 3 * 24  # 1500 rows / 64
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["best"]["epoch"] == result.best["epoch"]
    checkpoint = torch.load(run / "model.pt", weights_only=True)
    assert checkpoint["labels"] == prepared_sample.labels
    model, _ = load_model(run, test_device())
    batch = first_rows(prepared_sample.valid, 64)
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            model(batch.ids, batch.mask), trainer.model(batch.ids, batch.mask)
        )


@pytest.mark.parametrize("ema_epochs", [0.0, 1.0])
def test_resume_from_saved_state_equals_an_uninterrupted_run(prepared_sample, tmp_path, ema_epochs):
    config = quick(epochs=2, patience=5, ema_epochs=ema_epochs)
    straight = Trainer(config, prepared_sample, {"filters": 16}).fit()
    first = Trainer(config, prepared_sample, {"filters": 16})
    first.fit(on_epoch=lambda end: end.save_state(tmp_path) if end.metrics["epoch"] == 1 else None)
    resumed = Trainer(config, prepared_sample, {"filters": 16})
    resumed.restore(tmp_path)
    assert len(resumed.history) == 1
    result = resumed.fit()
    assert [h["valid_loss"] for h in result.history] == pytest.approx(
        [h["valid_loss"] for h in straight.history], rel=1e-5
    )


@pytest.mark.parametrize("ema_epochs", [0.0, 1.0])
def test_saved_state_holds_the_best_weights_once(prepared_sample, tmp_path, ema_epochs):
    """On a new best epoch the best weights are the scored ones (the model's, or their moving
    average): the state stores them once, and a restore still knows them."""
    config = quick(epochs=2, patience=5, ema_epochs=ema_epochs)
    trainer = Trainer(config, prepared_sample, {"filters": 16})
    bests = {}

    def save(end):
        directory = tmp_path / str(end.metrics["epoch"])
        directory.mkdir()
        end.save_state(directory)
        bests[end.metrics["epoch"]] = end.improved

    trainer.fit(on_epoch=save)
    assert bests[1]
    state = torch.load(tmp_path / "1" / STATE_FILE, weights_only=True)
    assert state["best_state"] is None
    restored = Trainer(config, prepared_sample, {"filters": 16})
    restored.restore(tmp_path / "1")
    scored = state["average"]["model"] if ema_epochs else state["model"]
    for name, tensor in restored.best_state.items():
        assert torch.equal(tensor, scored[name].to(tensor.device)), name
    if ema_epochs:  # the average is not the model's last weights
        assert not torch.equal(scored["head.net.5.weight"], state["model"]["head.net.5.weight"])


@pytest.mark.gpu
def test_state_saved_on_the_gpu_resumes_on_the_cpu_and_back(prepared_sample, tmp_path):
    """A trial retried on another node may land on another device type."""
    for saved_on, resumed_on in (("cuda", "cpu"), ("cpu", "cuda")):
        config = quick(epochs=2, patience=5, device=saved_on)
        first = Trainer(config, prepared_sample, {"filters": 16})
        directory = tmp_path / saved_on
        directory.mkdir()
        first.fit(
            on_epoch=lambda end, d=directory: (
                end.save_state(d) if end.metrics["epoch"] == 1 else None
            )
        )
        resumed = Trainer(
            quick(epochs=2, patience=5, device=resumed_on), prepared_sample, {"filters": 16}
        )
        resumed.restore(directory)
        result = resumed.fit()
        assert len(result.history) == 2 and math.isfinite(result.history[-1]["valid_loss"])


def test_early_stopping_with_patience(prepared_sample):
    # lr 0 with a constant schedule and no batch norm (whose running statistics would
    # still move): nothing improves after the first epoch.
    config = quick(epochs=6, patience=2, lr=0.0, scheduler="none")
    result = Trainer(config, prepared_sample, {"filters": 8, "norm": "none"}).fit()
    assert len(result.history) == 3
    assert result.stopped == "early stop: no better valid_accuracy for 2 epochs"


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_train_cli_keeps_the_finished_epochs_on_sigint(prepared_sample, tmp_path):
    """Ctrl-C after some epochs: exit 130, the run directory holds the best of them."""
    data_dir = Path(prepared_sample.path).parents[1]
    run = tmp_path / "run"
    driver = subprocess.Popen(
        [sys.executable, "-m", "qamodels.train", f"raw_dir={SHARED_DATA}", "categories=all",
         "valid_size=0.1", "train_size=0.6", f"data_dir={data_dir}", "arch=dan", "epochs=500",
         "max_train_rows=300", "patience=500", "hidden=16", f"out_dir={run}",
         f"device={test_device()}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert "parameters on" in driver.stdout.readline()  # training has begun
    time.sleep(4)  # epochs of 300 rows take well under a second
    driver.send_signal(signal.SIGINT)
    out, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert out.strip().splitlines()[-1] == f"run directory: {run}"
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["stopped"] == "stopped by SIGINT" and 1 <= len(summary["history"]) < 500
    assert (run / "model.pt").is_file() and (run / "history.csv").is_file()


def test_the_weight_average_follows_its_recurrence():
    """Start: the model's weights; each step moves a share 1 - min(decay, (1+t)/(10+t)) of
    the way to the new weights (the growing window first, then the epochs' time constant)."""
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    average = WeightAverage(model, steps_per_epoch=10, ema_epochs=2.0)  # decay 1 - 1/20
    expected = 0.0
    with torch.no_grad():
        for step in range(1, 301):
            model.weight.fill_(float(step % 7))
            average.update(model)
            rate = 1 - min(0.95, (1 + step) / (10 + step))
            expected += rate * (step % 7 - expected)
    assert average.model.weight.item() == pytest.approx(expected, rel=1e-5)
    assert average.rate() == pytest.approx(0.05)  # the window has reached 2 epochs of 10 steps
    assert model.weight.requires_grad and not average.model.weight.requires_grad


@pytest.mark.slow  # torch.compile builds its kernels first (tens of seconds on 2 cores)
def test_compiled_training_steps_train_as_the_model_itself(prepared_sample):
    runs = []
    for compile_steps in (False, True):
        config = TrainConfig(arch="dan", epochs=1, max_train_rows=1200, compile=compile_steps,
                             device=test_device(), progress=False)  # fmt: skip
        trainer = Trainer(config, prepared_sample, {"dropout": 0.0, "hidden": 64})
        runs.append(trainer.fit())
        assert (trainer.step_model is trainer.model) is not compile_steps
    eager, compiled = (run.history[0] for run in runs)
    for key in ("train_loss", "valid_loss"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-3), key
