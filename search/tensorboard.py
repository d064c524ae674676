"""TensorBoard for comparing trials: scalars, the HParams dashboard, confusion matrices.

Each trial writes its own event file in its trial directory: scalars every epoch, its
hyperparameters as an HParams session, and the confusion matrix of its best epoch. The
experiment's HParams summary (the columns of the dashboard) is written once at the root with
the union of every trial's hyperparameters: Ray's own logger writes one per trial, and
TensorBoard then shows only the first trial's columns when the space is conditional.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams

from search.markdown import markdown_table

SCALARS = ("train_loss", "valid_loss", "valid_accuracy", "valid_macro_f1", "lr")
EVENTS_DIR = "tensorboard"


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, tuple | list):
            flat[name] = ",".join(map(str, value))
        else:
            flat[name] = value
    return flat


class TrialWriter:
    """The one event file of a trial (a restored trial continues in a second one). Flushed
    after every write: tensorboardX writes from a background thread, and ASHA may end the
    trial right after a report, so what was reported is on disk before the report."""

    def __init__(self, trial_dir: Path, config: dict):
        self.directory = str(Path(trial_dir) / EVENTS_DIR)
        self.hparams = flatten(config)
        self._writer: SummaryWriter | None = None

    @property
    def writer(self) -> SummaryWriter:
        if self._writer is None:
            self._writer = SummaryWriter(self.directory)
        return self._writer

    def start(self) -> None:
        _experiment, session_start, _end = hparams(self.hparams, {m: 0 for m in SCALARS})
        self.writer.file_writer.add_summary(session_start)
        self.writer.flush()

    def epoch(self, metrics: dict, step: int, confusion_image=None) -> None:
        for name in SCALARS:
            if name in metrics:
                self.writer.add_scalar(name, metrics[name], step)
        if confusion_image is not None:  # (3, H, W), plots.confusion_image
            self.writer.add_image("confusion_matrix/best_epoch", confusion_image, step)
        self.writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_experiment(experiment_dir: Path, configs: list[dict], final=None) -> None:
    """The HParams experiment at the root: every hyperparameter any trial has; and the final
    held-out scores (baseline, each architecture's best, ensemble) as `final/` scalars and
    a text table."""
    union: dict[str, Any] = {}
    for config in configs:
        for key, value in flatten(config).items():
            union.setdefault(key, value)
    experiment, _start, _end = hparams(union, {m: 0 for m in SCALARS})
    with SummaryWriter(str(experiment_dir / EVENTS_DIR)) as writer:
        writer.file_writer.add_summary(experiment)
        if final is None or final.empty:
            return
        for row in final.itertuples(index=False):
            # the baselines ("baseline", "baseline refit") have no trial
            name = row.model.replace(" ", "_") if row.trial == "-" else f"{row.model}/{row.trial}"
            for column in ("valid_accuracy", "test_accuracy", "test_macro_f1"):
                if pd.notna(getattr(row, column)):  # a refit baseline has no valid score
                    writer.add_scalar(f"final/{name}/{column}", getattr(row, column), 0)
        writer.add_text("final", markdown_table(final), 0)
