"""One ASHA per architecture: a slow starter competes with its own kind, not with the DAN."""

from __future__ import annotations

import functools

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from search.schedulers import ByArchitecture

ASHA = functools.partial(
    ASHAScheduler, time_attr="training_iteration", max_t=18, grace_period=2, reduction_factor=3
)


def decisions(scheduler: TrialScheduler, reports: list[tuple[str, float]]) -> list[str]:
    """Each (arch, valid accuracy at epoch 2) as a new trial's first rung; Tune's answers."""
    scheduler.set_search_properties("valid_accuracy", "max")
    answers = []
    for arch, accuracy in reports:
        trial = Trial("qatune", config={"arch": arch}, stub=True)
        scheduler.on_trial_add(None, trial)
        result = {"training_iteration": 2, "valid_accuracy": accuracy}
        answers.append(scheduler.on_trial_result(None, trial, result))
    return answers


# Three DAN trials start fast; the BiLSTM is slower at epoch 2, and its second trial worse.
REPORTS = [("dan", 0.90), ("dan", 0.91), ("dan", 0.92), ("bilstm", 0.60), ("bilstm", 0.50)]


def test_one_asha_stops_the_slow_starter_at_its_first_rung():
    assert decisions(ASHA(), REPORTS)[3:] == [TrialScheduler.STOP, TrialScheduler.STOP]


def test_by_architecture_compares_each_trial_with_its_own_kind():
    answers = decisions(ByArchitecture(ASHA), REPORTS)
    assert answers[3] == TrialScheduler.CONTINUE  # the BiLSTM's best so far runs on
    assert answers[4] == TrialScheduler.STOP  # and a worse BiLSTM is still stopped
    assert answers[2] == TrialScheduler.CONTINUE
