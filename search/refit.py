"""AutoGluon's refit_full for the best single model: after selection, its configuration
trained again on train + valid for the epochs its trial chose on valid, where that pays.

Measured on the suite (BENCHMARKS.md, "Refit on train + valid"): the CNNs gain from valid's
rows, the DAN does not (its wide TF-IDF path and its average already see every word of
train), so only the families of REFIT_ARCHS are refit. The refit runs as a Ray task with a
trial's resources (a GPU share where the trials had one), not on the driver, which on a
cluster is a head without GPUs. The ensemble keeps its members as chosen: refitting them
too (its weights kept, AutoGluon's way) took AG News' ensemble lift from +0.79 to +0.53
against the baseline refit alike, and 1.6 to 3.3 minutes the budget does not have
(BENCHMARKS.md, "Refit the ensemble's members too?"; bench/ensemble_refit_bench.py).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from data_prep.store import PreparedData, Split
from qamodels.spaces import decode
from qamodels.trainer import Trainer, TrainResult, subset
from search.config import SearchConfig
from search.resources import Placement
from search.trainable import BEST_MODEL_DIR, RESOLVED_CONFIG, train_config

REFIT_ARCHS = ("cnn_parallel", "cnn_stacked", "cnn_residual")


@dataclasses.dataclass(frozen=True)
class Refit:
    """The best single model trained on train + valid: its run directory and epoch count."""

    trial: str
    epochs: int
    run_dir: Path

    def describe(self) -> str:
        return f"refit on train + valid for {self.epochs} epochs (trial {self.trial})"


def with_valid_in_train(data: PreparedData, rows: int = 0, seed: int = 0) -> PreparedData:
    """The same data with valid's rows added to train (to the `rows` subset of train that
    max_train_rows gives a trial, with its seed); valid stays, it is not chosen on."""
    train, valid = subset(data.train, rows, seed), data.valid
    merged = Split(*(np.concatenate([getattr(train, k), getattr(valid, k)])
                     for k in ("ids", "mask", "length", "label")))  # fmt: skip
    return dataclasses.replace(data, train=merged)


def trained_on_train_and_valid(
    resolved: dict, config: SearchConfig, data: PreparedData, epochs: int, use_gpu: bool
) -> Trainer:
    """A trial's configuration trained on train + valid for `epochs` (its schedule over
    those epochs, no early stop: nothing is held out), in this process."""
    arch, params, overrides = decode(resolved)
    train = train_config(config, arch, overrides, use_gpu)
    merged = with_valid_in_train(data, train.max_train_rows, train.seed)
    train = dataclasses.replace(train, epochs=epochs, max_train_rows=0, progress=False)
    trainer = Trainer(train, merged, params)
    for epoch in range(epochs):
        trainer.train_epoch(epoch)
    return trainer


def train_on_train_and_valid(
    resolved: dict, config: SearchConfig, data: PreparedData, chosen: TrainResult,
    confusion: list | None,
) -> dict[str, bytes]:  # fmt: skip
    """In a Ray task: a trial's configuration trained on train + valid for the epochs of
    its best epoch; the files of its run, written from the scored weights as a trial's
    best model is, with the trial's `chosen` epoch, history and valid confusion matrix."""
    import ray
    import torch

    use_gpu = bool(ray.get_gpu_ids()) and torch.cuda.is_available()  # a share was granted
    torch.set_num_threads(max(1, int(config.cpus_per_trial)))  # as its trial trained
    trainer = trained_on_train_and_valid(resolved, config, data, int(chosen.best["epoch"]),
                                         use_gpu)  # fmt: skip
    trainer.best_confusion = None if confusion is None else np.array(confusion)
    with tempfile.TemporaryDirectory() as directory:
        run_dir = trainer.save_run(Path(directory) / "run", chosen, plot=False)
        return {path.name: path.read_bytes() for path in run_dir.iterdir() if path.is_file()}


def refit_best(board, rows, config: SearchConfig, data: PreparedData, placement: Placement,
               target: Path) -> Refit | None:  # fmt: skip
    """The best trial's model refit into `target` when its family gains from it and the
    search asks for it (refit=true); None otherwise."""
    if not config.refit or board.empty or board.iloc[0]["arch"] not in REFIT_ARCHS:
        return None
    import ray

    trial = board.iloc[0]["trial"]
    trial_dir = Path(rows.set_index("trial").loc[trial, "path"])
    chosen = json.loads((trial_dir / BEST_MODEL_DIR / "metrics.json").read_text())
    refit = Refit(str(trial), int(chosen["best"]["epoch"]), target)
    resolved = json.loads((trial_dir / RESOLVED_CONFIG).read_text())
    task = ray.remote(max_retries=0)(train_on_train_and_valid).options(
        num_cpus=placement.cpus_per_trial, num_gpus=placement.gpu_share
    )
    result = TrainResult(chosen["best"], chosen["history"], refit.describe())
    print(f"best single model {board.iloc[0]['arch']}: {refit.describe()}; refit=false skips it",
          flush=True)  # fmt: skip
    files = ray.get(
        task.remote(resolved, config, data.without_test(), result, chosen.get("confusion"))
    )
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    return refit
