"""Early stopping that does not starve slow starters: the first rung within each architecture.

    python -m search.run trial_scheduler=asha_by_arch   # the default
    python -m search.run trial_scheduler=asha           # one ASHA over every trial

One ASHA over all architectures compares a BiLSTM at epoch 2 with a DAN at epoch 2: the fast
starter wins the rung and the families that need a few epochs (CNNs on fine-tuned vectors,
BiLSTMs, Transformers in warm-up) are stopped before they show what they reach (on the
sample: 5-6 points below the DAN). `asha_by_arch` makes the first rung's decision among each
architecture's own trials, so each family's best early trials reach the second rung (epoch 6
by default), and every later rung among all trials, so the budget still goes to the best.
A separate ASHA per architecture at every rung was measured too: it ran 2.8x as long on the
sample (the Transformer's trials ran to the end) for at most 1 point more per family
(BENCHMARKS.md, "Slow starters").
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ray.tune import Callback
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler


class SchedulerState(Callback):
    """The trial scheduler's state, saved with the experiment and restored on resume.

    Ray Tune saves the searcher and the callbacks with each snapshot of the experiment, not
    the scheduler: a resumed ASHA started with empty rungs, so it kept trials that an
    uninterrupted search would have stopped (each rung's first arrivals pass an empty rung)
    and its decisions differed. This callback carries the scheduler's state (its rungs, the
    trials' brackets, the counts) in the callbacks' snapshot; the scheduler it holds is the
    search's own, restored with it from tuner.pkl (one pickle keeps them one object)."""

    def __init__(self, scheduler: TrialScheduler) -> None:
        self._scheduler = scheduler

    def get_state(self) -> dict | None:
        return {"scheduler": dict(self._scheduler.__dict__)}

    def set_state(self, state: dict) -> None:
        self._scheduler.__dict__.update(state["scheduler"])


def arch_of(trial: Trial) -> str:
    return str(trial.config.get("arch", ""))


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
        arch = arch_of(trial)
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


class FirstRungByArchitecture(FIFOScheduler):
    """ASHA whose first rung (grace_period) compares a trial with its own architecture's
    trials only; from grace_period * reduction_factor on, with every trial. Each
    architecture's first trial (its recipe, spaces.py) is never stopped: it trains to its
    own end, so every family has one fully trained model to compare and to ensemble. At the
    second rung the DAN's fast start stopped every other family's recipe on the sample and
    on CLINC150 at epoch 6 while it was still improving (its best epoch the last)."""

    def __init__(self, max_t: int, grace_period: int, reduction_factor: int):
        super().__init__()
        asha = functools.partial(ASHAScheduler, time_attr="training_iteration", max_t=max_t,
                                 reduction_factor=reduction_factor)  # fmt: skip
        self._switch = grace_period * reduction_factor
        self._first = ByArchitecture(functools.partial(asha, grace_period=grace_period))
        self._later = asha(grace_period=min(self._switch, max_t))
        self._first_trial: dict[str, str] = {}  # architecture -> its first trial's id

    @property
    def _both(self) -> tuple[TrialScheduler, TrialScheduler]:
        return self._first, self._later

    def set_search_properties(self, metric: str | None, mode: str | None, **spec) -> bool:
        return all([s.set_search_properties(metric, mode, **spec) for s in self._both])

    def on_trial_add(self, tune_controller, trial: Trial) -> None:
        if not hasattr(self, "_first_trial"):  # a scheduler saved before it had them
            self._first_trial = {}
        self._first_trial.setdefault(arch_of(trial), trial.trial_id)
        for scheduler in self._both:
            scheduler.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial: Trial) -> None:
        for scheduler in self._both:
            scheduler.on_trial_error(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial: Trial, result: dict) -> str:
        # Both record every result (their rungs fill); the epoch decides whose answer counts.
        first, later = (s.on_trial_result(tune_controller, trial, result) for s in self._both)
        if getattr(self, "_first_trial", {}).get(arch_of(trial)) == trial.trial_id:
            return TrialScheduler.CONTINUE  # the architecture's first trial trains to its end
        return first if result.get("training_iteration", 0) < self._switch else later

    def on_trial_complete(self, tune_controller, trial: Trial, result: dict) -> None:
        for scheduler in self._both:
            scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial: Trial) -> None:
        for scheduler in self._both:
            scheduler.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return f"first rung, by architecture:\n{self._first.debug_string()}\nlater rungs, " \
               f"all trials:\n{self._later.debug_string()}"  # fmt: skip
