"""The searcher: Optuna's TPE told the right values, with the known-good recipes first.

Ray's OptunaSearch tells Optuna that a trial ASHA stopped after its first epoch is COMPLETE
with its epoch-1 score, so TPE learns low-fidelity values as if they were final. Here a trial
is COMPLETE only when its trainer finished it (max_epochs or its own early stopping: the last
report carries `trial_finished`), with its best epoch's value (the weights it keeps); a trial
the scheduler stopped is PRUNED, with its per-epoch values as intermediate values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import optuna
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from qamodels.spaces import define_space, fixed_training, recipes
from search.config import SearchConfig

FINISHED = "trial_finished"  # set in a trial's last report when its trainer stopped it


class PrunedAwareOptunaSearch(OptunaSearch):
    """OptunaSearch that tells scheduler-stopped trials as PRUNED, finished ones COMPLETE
    with their best value."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._best_values: dict[str, float] = {}
        self._reported: dict[str, set[int]] = {}  # the steps Optuna was told, per trial

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        super().on_trial_result(trial_id, result)
        self._reported.setdefault(trial_id, set()).add(result.get(TRAINING_ITERATION))
        self._keep_best(trial_id, result)

    def _keep_best(self, trial_id: str, result: dict) -> None:
        value = result.get(self.metric)
        if value is not None and math.isfinite(value):
            best = self._best_values.get(trial_id)
            better = best is None or (value > best if self.mode == "max" else value < best)
            self._best_values[trial_id] = value if better else best

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return super().on_trial_complete(trial_id, result, error)
        trial = self._ot_trials[trial_id]
        step = (result or {}).get(TRAINING_ITERATION)
        reported = self._reported.pop(trial_id, set())
        if result and not error and result.get(self.metric) is not None and step not in reported:
            # Ray may hand the result that ended a trial to on_trial_complete only: record it
            # (once: Optuna refuses a step twice).
            trial.report(result[self.metric], step)
            self._keep_best(trial_id, result)
        best = self._best_values.pop(trial_id, None)
        if error or best is None:
            state, value = optuna.trial.TrialState.FAIL, None
        elif result and result.get(FINISHED):
            state, value = optuna.trial.TrialState.COMPLETE, best
        else:
            state, value = optuna.trial.TrialState.PRUNED, None
        self._ot_study.tell(trial, value, state=state)
        self._completed_trials.add(trial_id)

    @property
    def study(self) -> optuna.Study:
        return self._ot_study


def startup_trials(num_samples: int, archs: Sequence[str]) -> int:
    """Random start-up trials of TPE: enough to see each architecture at least once, and a
    fifth of the budget, so a small search still leaves most trials to TPE."""
    return max(len(archs), num_samples // 5, 2)


def make_searcher(search: SearchConfig, gpu: bool = False) -> PrunedAwareOptunaSearch:
    """TPE (or random) over the search's space; `gpu`: the GPU's batch sizes (spaces.py)."""
    archs, modes = search.archs, search.embedding_modes()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines
    if search.searcher == "optuna":
        # multivariate, group and constant_liar are chosen on purpose: Optuna's warning that
        # they are experimental tells a user nothing to act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                seed=search.seed,
                n_startup_trials=startup_trials(search.num_samples, archs),
                multivariate=True,
                group=True,  # conditional spaces: one model per architecture's parameter group
                constant_liar=True,  # concurrent trials: running ones count as bad, not unknown
            )
    else:
        sampler = optuna.samplers.RandomSampler(seed=search.seed)
    fixed = fixed_training(search.train)
    first = recipes(archs, modes, gpu, fixed) if search.recipes else []
    return PrunedAwareOptunaSearch(
        space=define_space(archs, modes, gpu, fixed),
        metric=search.metric,
        mode=search.mode,
        sampler=sampler,
        points_to_evaluate=first[: search.num_samples] or None,
    )
