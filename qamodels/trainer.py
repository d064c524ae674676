"""One trainer for every architecture: batches from tensors, metrics, early stopping, plots.

The search reports to Ray Tune through the `on_epoch` hook; the trainer knows nothing of Ray.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from data_prep.store import PreparedData, Split, subset_index
from qamodels.averaging import WeightAverage
from qamodels.batches import DeviceSplit, iterate
from qamodels.classifier import build_classifier
from qamodels.config import TrainConfig
from qamodels.device import autocast, compiled, resolve_device, rng_state, set_rng_state
from qamodels.metrics import confusion_matrix, scores
from qamodels.optim import apply_unfreezing, make_optimizer, make_scheduler
from qamodels.runs import write_run


@dataclass
class EpochEnd:
    """What the trainer tells its epoch hook (the search reports it to Ray Tune)."""

    metrics: dict
    improved: bool  # a new best epoch: the weights the trainer will keep
    last: bool  # the trainer stops after this epoch (all epochs done, or early stopping)
    save_state: Callable[[Path], None]  # writes everything needed to resume into a directory


EpochHook = Callable[[EpochEnd], None]
STATE_FILE = "trainer.pt"
# Steps between reads of the losses from the device: a run with a non-finite loss stops at
# the next read (its best epoch's weights are kept), without a host sync on every step.
CHECK_EVERY = 50


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class TrainResult:
    best: dict  # the metrics of the best epoch
    history: list[dict]
    stopped: str  # why training ended


def subset(split: Split, rows: int, seed: int) -> Split:
    if not rows or rows >= len(split):
        return split
    index = subset_index(len(split), rows, seed)
    return Split(split.ids[index], split.mask[index], split.length[index], split.label[index])


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, split: DeviceSplit, batch_size: int = 1024, autocast=nullcontext
) -> torch.Tensor:
    """(n, classes) float logits of a split, in its row order (eval mode, trimmed batches)."""
    model.eval()
    outputs = []
    for batch in iterate(split, batch_size, trim=True):
        with autocast():
            outputs.append(model(batch.ids, batch.mask).float())
    return torch.cat(outputs)


def is_better(value: float, best: float | None, mode: str) -> bool:
    """A new best epoch: `value` beats `best` (none yet: any) in `mode` (min or max)."""
    return best is None or (value < best if mode == "min" else value > best)


def fit_to_data(model: torch.nn.Module, train: Split, valid: Split, vocab: list[str]) -> None:
    """What a model takes from the data before its epochs: the wide DAN's idf, pair table
    (and n-gram table of the `vocab` words) from `train`, and with wide_first its SVM start
    (C chosen on `valid`)."""
    if hasattr(model, "fit_statistics"):
        model.fit_statistics(train.ids, train.mask, vocab)
    if hasattr(model, "fit_linear"):
        model.fit_linear(train, valid)


class Trainer:
    def __init__(self, config: TrainConfig, data: PreparedData, params: dict | None = None):
        self.config, self.data = config, data
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        model, self.params, self.transferred = build_classifier(config, data, params or {})
        train = subset(data.train, config.max_train_rows, config.seed)
        fit_to_data(model, train, data.valid, data.vocab)
        self.model = model.to(self.device)
        # What the training steps call: the model itself, or its compiled form (same weights).
        self.step_model = compiled(self.model, self.device) if config.compile else self.model
        self.train_split = DeviceSplit.from_split(train, self.device)
        self.valid_split = DeviceSplit.from_split(data.valid, self.device)
        self.steps_per_epoch = math.ceil(len(train) / config.batch_size)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.optimizer = make_optimizer(self.model, config)
        self.scheduler = make_scheduler(
            self.optimizer, config, self.steps_per_epoch * config.epochs
        )
        self.average = (
            WeightAverage(self.model, self.steps_per_epoch, config.ema_epochs)
            if config.ema_epochs
            else None
        )
        self.history: list[dict] = []
        self.iteration_loss: list[float] = []
        self._epoch_start = 0  # where the current epoch's losses begin in iteration_loss
        self.best: dict | None = None
        self.best_state: dict | None = None
        self.best_confusion: np.ndarray | None = None
        self.stale_epochs = 0

    @property
    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def _autocast(self):
        return autocast(self.device, self.config.amp)

    def train_epoch(self, epoch: int) -> float:
        self.model.train()
        apply_unfreezing(self.model, epoch, self.config, self.optimizer)
        self._epoch_start = len(self.iteration_loss)
        batches = iterate(
            self.train_split,
            self.config.batch_size,
            shuffle=True,
            bucket=self.config.bucket,
            trim=self.config.trim,
            generator=self.generator,
        )
        bar = tqdm(
            batches,
            total=self.steps_per_epoch,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            leave=False,
            disable=None if self.config.progress else True,  # None: only on a terminal
            mininterval=1,
        )
        losses: list[torch.Tensor] = []  # on the device: read back every CHECK_EVERY steps
        for step, batch in enumerate(bar, 1):
            with self._autocast():
                logits = self.step_model(batch.ids, batch.mask).float()
                loss = F.cross_entropy(
                    logits, batch.label, label_smoothing=self.config.label_smoothing
                )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            if self.average is not None:
                self.average.update(self.model)
            if self.config.scheduler != "plateau":
                self.scheduler.step()
            losses.append(loss.detach())
            if step % CHECK_EVERY == 0:
                self._check_losses(losses, epoch, bar)
        self._check_losses(losses, epoch, bar)
        epoch_losses = self.iteration_loss[-len(losses) :] if losses else []
        return sum(epoch_losses) / max(1, len(epoch_losses))

    def _check_losses(self, losses: list[torch.Tensor], epoch: int, bar) -> None:
        """Read the losses since the last check back in one sync: log them, show the mean of
        the last 500 on the bar, and stop the run at a non-finite one."""
        start = len(self.iteration_loss) - self._epoch_start
        new = torch.stack(losses[start:]).float().tolist() if len(losses) > start else []
        self.iteration_loss.extend(new)
        bad = next((i for i, v in enumerate(new) if not math.isfinite(v)), None)
        if bad is not None:
            raise NonFiniteLoss(
                f"non-finite training loss ({new[bad]}) at epoch {epoch + 1} step "
                f"{start + bad + 1}: lower lr (now {self.config.lr:g}) or set grad_clip"
            )
        recent = self.iteration_loss[-500:]
        if recent:
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")

    @property
    def scored_model(self) -> torch.nn.Module:
        """The weights that are scored, kept as the best and saved: the moving average of the
        weights when there is one (qamodels/averaging.py), else the model's own."""
        return self.model if self.average is None else self.average.scored(self.model)

    def evaluate(self, name: str = "valid") -> tuple[dict, np.ndarray]:
        """Scores of the split `name` (valid, test), named after it, and its confusion matrix."""
        split = self.valid_split if name == "valid" else self._split(name)
        logits = predict_logits(
            self.scored_model, split, 2 * self.config.batch_size, self._autocast
        )
        probabilities = torch.softmax(logits.float(), -1).cpu().numpy()
        if not np.isfinite(probabilities).all():  # diverged weights; their loss, taken before
            raise NonFiniteLoss(  # the last update, may still have been finite
                f"non-finite outputs on {name} after epoch {len(self.history) + 1}: lower lr "
                f"(now {self.config.lr:g}) or set grad_clip"
            )
        labels, classes = split.label.cpu().numpy(), len(self.data.labels)
        metrics = {f"{name}_{k}": v for k, v in scores(probabilities, labels, classes).items()}
        return metrics, confusion_matrix(labels, probabilities.argmax(1), classes)

    def _split(self, name: str) -> DeviceSplit:
        return DeviceSplit.from_split(getattr(self.data, name), self.device)

    def _improved(self, value: float) -> bool:
        best = None if self.best is None else self.best[self.config.metric]
        return is_better(value, best, self.config.mode)

    def fit(self, on_epoch: EpochHook | None = None) -> TrainResult:
        stopped = f"completed {self.config.epochs} epochs"
        start = time.perf_counter()
        for epoch in range(len(self.history), self.config.epochs):
            try:
                train_loss = self.train_epoch(epoch)
                metrics, confusion = self.evaluate()
            except NonFiniteLoss as err:  # the best epoch so far stays the best
                stopped = str(err)
                break
            metrics = {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                **metrics,
                "lr": self.optimizer.param_groups[-1]["lr"],
                "seconds": time.perf_counter() - start,
            }
            self.history.append(metrics)
            if self.config.scheduler == "plateau":
                self.scheduler.step(metrics[self.config.metric])
            improved = self._improved(metrics[self.config.metric])
            if improved:
                self.best, self.best_confusion = metrics, confusion
                self.best_state = copy.deepcopy(self.scored_model.state_dict())
                self.stale_epochs = 0
            else:
                self.stale_epochs += 1
            early = self.stale_epochs >= self.config.patience
            if on_epoch is not None:
                last = early or epoch + 1 == self.config.epochs
                on_epoch(EpochEnd(metrics, improved, last, self.save_state))
            if early:
                stopped = (
                    f"early stop: no better {self.config.metric} for {self.stale_epochs} epochs"
                )
                break
        return self.result(stopped)

    def result(self, stopped: str) -> TrainResult:
        """The run so far with the best epoch's weights in the model (also after an
        interruption between or inside epochs)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
            if self.average is not None:  # what is scored and saved from here on
                self.average.model.load_state_dict(self.best_state)
        return TrainResult(self.best or {}, self.history, stopped)

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "average": None if self.average is None else self.average.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": self.history,
            "iteration_loss": self.iteration_loss,
            "best": self.best,
            # On a new best epoch the best weights are the scored ones: not stored twice.
            "best_state": None if self._best_is_current() else self.best_state,
            "best_confusion": None if self.best_confusion is None else self.best_confusion.tolist(),
            "stale_epochs": self.stale_epochs,
            "generator": self.generator.get_state(),
            "rng": rng_state(self.device),
        }

    def _best_is_current(self) -> bool:
        return bool(self.history) and self.best is not None and self.best is self.history[-1]

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.history, self.iteration_loss = state["history"], state["iteration_loss"]
        self.best, self.best_state = state["best"], state["best_state"]
        if self.best_state is None and self.best is not None:
            self.best_state = copy.deepcopy(self.scored_model.state_dict())
        confusion = state["best_confusion"]
        self.best_confusion = None if confusion is None else np.array(confusion)
        self.stale_epochs = state["stale_epochs"]
        self.generator.set_state(state["generator"])
        set_rng_state(state["rng"], self.device)

    def save_state(self, directory: Path) -> None:
        """Everything needed to resume (the search's per-epoch checkpoint)."""
        torch.save(self.state_dict(), Path(directory) / STATE_FILE)

    def restore(self, directory: Path) -> None:
        # Loaded to the CPU: the random states must stay CPU tensors; load_state_dict moves
        # the weights and the optimizer's state to the model's device.
        path = Path(directory) / STATE_FILE
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))

    def save_run(self, run_dir: Path, result: TrainResult, plot: bool = True) -> Path:
        """The run's files in `run_dir` (write_run), from the scored weights."""
        return write_run(run_dir, self.scored_model, self.config, self.params, self.data,
                         result, self.best_confusion, self.iteration_loss, plot)  # fmt: skip
