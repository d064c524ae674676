"""Early stopping among comparable trials: one ASHA per architecture.

    python -m search.run trial_scheduler=asha_by_arch   # each architecture its own ASHA
    python -m search.run trial_scheduler=asha           # one ASHA over every trial

One ASHA over all architectures compares a BiLSTM at epoch 2 with a DAN at epoch 2: the fast
starter wins the rung and the families that need a few epochs (CNNs on fine-tuned vectors,
BiLSTMs, Transformers in warm-up) are stopped before they show what they reach. Here each
architecture's trials compete only with each other, so every architecture keeps its best
trials running; the ensemble and the leaderboard then draw on every family.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler


class ByArchitecture(FIFOScheduler):
    """Ray Tune scheduler that routes each trial to the scheduler of its architecture
    (`config["arch"]`), made by `make` when that architecture's first trial arrives."""

    def __init__(self, make: Callable[[], TrialScheduler]):
        super().__init__()
        self._make = make
        self._by_arch: dict[str, TrialScheduler] = {}
        self._properties: dict = {}

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        self._properties = {"metric": metric, "mode": mode, **spec}
        return all(s.set_search_properties(metric, mode, **spec) for s in self._by_arch.values())

    def _of(self, trial: Trial) -> TrialScheduler:
        arch = str(trial.config.get("arch", ""))
        if arch not in self._by_arch:
            scheduler = self._make()
            scheduler.set_search_properties(**self._properties)
            self._by_arch[arch] = scheduler
        return self._by_arch[arch]

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        self._of(trial).on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        self._of(trial).on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "\n".join(f"{arch}: {s.debug_string()}" for arch, s in self._by_arch.items())

    # Saved and restored whole, as Ray's own ASHA does (its brackets are plain objects).
    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))  # noqa: S301 - our own checkpoint
