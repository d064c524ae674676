"""What a user watching a long search sees: a line per ended trial and, every 30 seconds, one
progress line; lines when nodes join or leave come from search/nodes.py. Ray's own table
(its scheduler's internals, 40 lines every 30 s) only with `progress_table=true`.

    trial 7/40 ended: dan_3f0dffce valid_accuracy 0.8712 after 6 epochs (stopped by ASHA)
    progress: 12/40 ended, 4 running, 2 waiting to start; 3 nodes up; best valid_accuracy
      0.8765 (dan), baseline 0.8541; 6m12s elapsed, about 9m left
"""

from __future__ import annotations

import time
from pathlib import Path

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial

from search.nodes import alive_nodes
from search.searcher import FINISHED

EVERY_S = 30.0
# The baseline's ObjectRef while it fits beside the trials (search/baseline.py); module
# state: Ray pickles callbacks with the experiment, and a reference does not outlive a run.
BASELINE: list = []


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def baseline_valid() -> float | None:
    """The baseline's valid accuracy once it has been fitted (never waits for it)."""
    if not BASELINE or BASELINE[0] is None or not ray.wait(BASELINE[:1], timeout=0)[0]:
        return None
    try:
        return float(ray.get(BASELINE[0]).valid["accuracy"])
    except ray.exceptions.RayError:
        return None


def last_error(trial: Trial) -> str:
    """The last line of a trial's error (Ray keeps the whole traceback in its error.txt)."""
    try:
        lines = Path(trial.error_file).read_text(errors="replace").strip().splitlines()
    except (OSError, TypeError):
        return "see its error.txt"
    return lines[-1][:240] if lines else "see its error.txt"


class Console(Callback):
    """The search's own console lines (Ray's table stays off unless asked for)."""

    def __init__(self, num_samples: int, metric: str, mode: str) -> None:
        self._num_samples, self._metric, self._mode = num_samples, metric, mode
        self._start: float | None = None
        self._printed = 0.0
        self._ended = 0
        self._best: tuple[float, str] | None = None

    def get_state(self) -> dict:  # a resumed search counts on from where it stopped
        return {"ended": self._ended, "best": self._best}

    def set_state(self, state: dict) -> None:
        self._ended, self._best = state["ended"], state["best"]

    def _better(self, value: float) -> bool:
        if self._best is None:
            return True
        return value > self._best[0] if self._mode == "max" else value < self._best[0]

    def on_trial_result(self, iteration: int, trials: list, trial: Trial, result: dict, **info):
        value = result.get(self._metric)
        if value is not None and self._better(value):
            self._best = (value, str(trial.config.get("arch", "")))

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info) -> None:
        self._ended_line(trial, failed=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info) -> None:
        self._ended_line(trial, failed=True)

    def on_trial_recover(self, iteration: int, trials: list, trial: Trial, **info) -> None:
        print(f"trial {trial} failed, restarting from its last checkpoint: {last_error(trial)}",
              flush=True)  # fmt: skip

    def _ended_line(self, trial: Trial, failed: bool) -> None:
        self._ended += 1
        last = trial.last_result or {}
        value, epochs = last.get(self._metric), last.get("epoch", 0)
        how = f"failed: {last_error(trial)}" if failed else (
            "finished" if last.get(FINISHED) else "stopped early")  # fmt: skip
        score = f" {self._metric} {value:.4f}" if value is not None else ""
        print(f"trial {self._ended}/{self._num_samples} ended: {trial}{score} after {epochs} "
              f"epochs ({how})", flush=True)  # fmt: skip

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start, self._printed = now, now
        if now - self._printed < EVERY_S:
            return
        self._printed = now
        print(self.progress(trials, now - self._start), flush=True)

    def progress(self, trials: list[Trial], elapsed: float) -> str:
        running = sum(t.status == Trial.RUNNING for t in trials)
        waiting = sum(t.status == Trial.PENDING for t in trials)
        nodes = len(alive_nodes())
        parts = [f"progress: {self._ended}/{self._num_samples} ended, {running} running"]
        if waiting:
            parts[0] += f", {waiting} waiting to start (for resources or a node)"
        parts.append(f"{nodes} node{'s' if nodes != 1 else ''} up")
        if self._best is not None:
            best = f"best {self._metric} {self._best[0]:.4f} ({self._best[1]})"
            bar = baseline_valid()
            parts.append(best + (f", baseline {bar:.4f}" if bar is not None else ""))
        left = ""
        if self._ended:
            remaining = elapsed / self._ended * (self._num_samples - self._ended)
            left = f", about {duration(remaining)} left"
        parts.append(f"{duration(elapsed)} elapsed{left}")
        return "; ".join(parts)
