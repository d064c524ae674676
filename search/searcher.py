"""The searcher: Optuna's TPE told the right values, with the known-good recipes first.

A Ray Tune `Searcher` over an Optuna study through the public APIs of both: Tune asks for a
config (`suggest`: Optuna's `ask`, the define-by-run space, the recipes enqueued first),
reports each epoch (`on_trial_result`: `Trial.report`, once per epoch), and ends the trial
(`on_trial_complete`: `Study.tell`). A trial is COMPLETE only when its trainer finished it
(max_epochs or its own early stopping: the last report carries `trial_finished`), with its
best epoch's value (the weights it keeps); a trial the scheduler stopped is PRUNED, with its
per-epoch values as intermediate values, so TPE never learns an epoch-2 score as final.

An architecture past its share of the trials (`family_cap`) gets more only while its trials
cost no more than the average trial: TPE follows the family that leads on valid, with no eye
on its cost, and on every search of the suite it gave one family 22 to 25 of 40 trials. Where
that family was cheap (the DAN on CLINC150) its later trials paid (+0.57 test points); where
it was the slowest (BiLSTMs on AG News, 71-75% of the trial time) they moved its best by
-0.39 and +0.40 points and made the search 19-21 minutes long. A trial the sampler draws for
a family at its cap is declined (told FAIL, which TPE ignores) and goes to the family with
the best trial so far among those it may go to, its other parameters sampled by TPE.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search import Searcher

from qamodels.fused import VARYING_PARAMS, VARYING_TRAIN
from qamodels.spaces import define_space, fixed_training, nested, recipes
from search import budget
from search.config import SearchConfig
from search.pickled import PickledState

log = logging.getLogger(__name__)
FINISHED = "trial_finished"  # set in a trial's last report when its trainer stopped it
SIBLING = "fused_sibling_of"  # an enqueued trial of another's shape (fuse=N)
DECLINED = "declined_at_family_cap"  # drawn for a family at its cap; never trained
SECONDS = "seconds"  # a finished trial's training time, for what its family's trials cost
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.FAIL)


def varies(name: str) -> bool:
    """An Optuna parameter (`train/lr`, `dan/dropout`) that members of a fused group may set
    apart (qamodels/fused.py)."""
    group, _, key = name.rpartition("/")
    return key in (VARYING_TRAIN if group == "train" else VARYING_PARAMS)


class OptunaSearcher(PickledState, Searcher):
    """Optuna's ask/tell behind Ray Tune's Searcher interface."""

    def __init__(
        self,
        space: Callable[[optuna.Trial], dict],
        metric: str,
        mode: str,
        sampler: optuna.samplers.BaseSampler,
        points_to_evaluate: Sequence[dict] = (),
        fuse: int = 0,
        family_cap: int = 0,
    ):
        super().__init__(metric=metric, mode=mode)
        self._space = space
        direction = "maximize" if mode == "max" else "minimize"
        self.study = optuna.create_study(sampler=sampler, direction=direction)
        # Enqueued one at a time, when nothing else waits: a fused trial's siblings come
        # right after it, before the next recipe.
        self._points = list(points_to_evaluate)
        self._fuse = fuse
        self._family_cap = family_cap  # trials per architecture at most; 0: no cap
        self._trials: dict[str, optuna.Trial] = {}  # running, by Tune's trial id
        self._best: dict[str, float] = {}
        self._reported: dict[str, set[int]] = {}  # the epochs Optuna was told, per trial

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return metric in (None, self.metric) and mode in (None, self.mode)

    def suggest(self, trial_id: str) -> dict | str:
        if budget.over():  # time_budget= has run out: no new trial (search/budget.py)
            return Searcher.FINISHED
        waiting = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        points = getattr(self, "_points", [])  # (a searcher saved before it had them: none)
        sampled = not points and not waiting  # else an enqueued point: a recipe, a sibling
        if points and not waiting:
            self.study.enqueue_trial(points.pop(0))
        trial = self.study.ask()
        constants = self._space(trial) or {}
        if sampled and (family := self._open_family(trial)) is not None:
            self._say_capped(trial.params["arch"])
            trial.set_user_attr(DECLINED, True)
            self.study.tell(trial, state=TrialState.FAIL)
            self.study.enqueue_trial({"arch": family})
            trial = self.study.ask()
            constants = self._space(trial) or {}
        self._trials[trial_id] = trial
        if getattr(self, "_fuse", 0) > 1 and SIBLING not in trial.user_attrs:
            self._enqueue_siblings(trial)
        return nested({**trial.params, **constants})

    def _open_family(self, trial: optuna.Trial) -> str | None:
        """Where `trial`'s family is past its cap and its trials cost more than the average
        trial, the family to give the trial instead: the one with the best trial so far among
        those below their cap or no costlier than the average (None: keep it, also when no
        family may have it)."""
        cap = getattr(self, "_family_cap", 0)  # (a searcher saved before it had one: none)
        if not cap:
            return None
        trials = [t for t in self.study.get_trials(deepcopy=False, states=TAKEN)
                  if not t.user_attrs.get(DECLINED)]  # fmt: skip
        taken, seconds, finished = Counter(), Counter(), Counter()
        best: dict[str, float] = {}  # each family's best value so far, higher is better
        sign = 1 if self.mode == "max" else -1
        for t in trials:  # this trial is among them (RUNNING)
            arch = t.params.get("arch")
            taken[arch] += 1
            if SECONDS in t.user_attrs:
                seconds[arch] += t.user_attrs[SECONDS]
                finished[arch] += 1
            if t.state == TrialState.COMPLETE:
                best[arch] = max(best.get(arch, -math.inf), sign * t.value)
        average = sum(seconds.values()) / max(sum(finished.values()), 1)

        def costly(family: str) -> bool:
            return finished[family] > 0 and seconds[family] / finished[family] > average

        drawn = trial.params.get("arch")
        if taken[drawn] <= cap or not costly(drawn):
            return None
        families = getattr(trial.distributions.get("arch"), "choices", ())
        open_ = [f for f in families if f != drawn and (taken[f] < cap or not costly(f))]
        return max(open_, key=lambda f: (best.get(f, -math.inf), -taken[f]), default=None)

    def _say_capped(self, family: str) -> None:
        """One line, the first time a family's draw is declined."""
        said = self.__dict__.setdefault("_capped", set())
        if family not in said:
            said.add(family)
            log.info("%s has had its share of the trials (%d) and its trials cost more than the "
                     "average: TPE's further draws for it go to other families (family_share=)",
                     family, self._family_cap)  # fmt: skip

    def _enqueue_siblings(self, trial: optuna.Trial) -> None:
        """fuse=N: N-1 trials of this one's shape (search/fused_trials.py), the keys a fused
        group's members may set apart sampled by the sampler."""
        shape = {name: value for name, value in trial.params.items() if not varies(name)}
        for _ in range(self._fuse - 1):
            self.study.enqueue_trial(shape, user_attrs={SIBLING: trial.number})

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        trial, value = self._trials.get(trial_id), result.get(self.metric)
        step = result.get(TRAINING_ITERATION)
        if trial is None or value is None or not math.isfinite(value) or step is None:
            return
        reported = self._reported.setdefault(trial_id, set())
        if step not in reported:  # Ray may hand the last result twice (here and at the end)
            trial.report(value, step)
            reported.add(step)
        best = self._best.get(trial_id)
        if best is None or (value > best if self.mode == "max" else value < best):
            self._best[trial_id] = value

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        if trial_id not in self._trials:
            return
        if result and not error:
            self.on_trial_result(trial_id, result)
        trial = self._trials.pop(trial_id)
        if result and result.get("time_total_s") is not None:
            trial.set_user_attr(SECONDS, float(result["time_total_s"]))
        self._reported.pop(trial_id, None)
        best = self._best.pop(trial_id, None)
        if error or best is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif result and result.get(FINISHED):
            self.study.tell(trial, best, state=optuna.trial.TrialState.COMPLETE)
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    @classmethod
    def from_dir(cls, experiment_dir: str) -> OptunaSearcher:
        """The searcher as Ray saved it with an experiment (Searcher.restore_from_dir)."""
        searcher = cls.__new__(cls)
        searcher.restore_from_dir(experiment_dir)
        return searcher


def family_cap(num_samples: int, archs: Sequence[str], share: float) -> int:
    """The trials one architecture may take whatever they cost: `share` of the budget, never
    below an even split (so the cap never leaves trials with nowhere to go); 0: no cap."""
    cap = max(math.ceil(share * num_samples), math.ceil(num_samples / max(len(archs), 1)))
    return cap if cap < num_samples else 0


def startup_trials(num_samples: int, archs: Sequence[str]) -> int:
    """Random start-up trials of TPE: enough to see each architecture at least once, and a
    fifth of the budget, so a small search still leaves most trials to TPE."""
    return max(len(archs), num_samples // 5, 2)


def make_searcher(config: SearchConfig, gpu: bool = False) -> OptunaSearcher:
    """TPE (or random) over the search's space; `gpu`: the GPU's batch sizes (spaces.py)."""
    archs, modes = config.archs, config.embedding_modes()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" lines
    if config.searcher == "optuna":
        # multivariate, group and constant_liar are chosen on purpose: Optuna's warning that
        # they are experimental tells a user nothing to act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                seed=config.seed,
                n_startup_trials=startup_trials(config.num_samples, archs),
                multivariate=True,
                group=True,  # conditional spaces: one model per architecture's parameter group
                constant_liar=True,  # concurrent trials: running ones count as bad, not unknown
            )
    else:
        sampler = optuna.samplers.RandomSampler(seed=config.seed)
    fixed = fixed_training(config.train, config.fixed_keys)
    first = recipes(archs, modes, gpu, fixed) if config.recipes else []
    return OptunaSearcher(
        space=define_space(archs, modes, gpu, fixed),
        metric=config.metric,
        mode=config.mode,
        sampler=sampler,
        points_to_evaluate=first[: config.num_samples],
        fuse=config.fuse,
        family_cap=family_cap(config.num_samples, archs, config.family_share),
    )
