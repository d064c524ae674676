"""The first rung within each architecture: a slow starter competes with its own kind, not
with the DAN; later rungs with every trial."""

from __future__ import annotations

import functools
import pickle

import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from search.schedulers import ByArchitecture, FirstRungByArchitecture, SchedulerState

ASHA = functools.partial(
    ASHAScheduler, time_attr="training_iteration", max_t=18, grace_period=2, reduction_factor=3
)


def decisions(scheduler: TrialScheduler, reports: list[tuple[str, float]], epoch: int = 2):
    """Each (arch, valid accuracy) as a new trial's report at `epoch` (with the same value at
    every earlier epoch); Tune's answer to the last."""
    scheduler.set_search_properties("valid_accuracy", "max")
    answers = []
    for arch, accuracy in reports:
        trial = Trial("qatune", config={"arch": arch}, stub=True)
        scheduler.on_trial_add(None, trial)
        for step in range(1, epoch + 1):
            result = {"training_iteration": step, "valid_accuracy": accuracy}
            answer = scheduler.on_trial_result(None, trial, result)
        answers.append(answer)
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


HYBRID = functools.partial(FirstRungByArchitecture, max_t=18, grace_period=2, reduction_factor=3)


def test_first_rung_by_architecture_then_every_trial():
    answers = decisions(HYBRID(), REPORTS)
    assert answers[3] == TrialScheduler.CONTINUE and answers[4] == TrialScheduler.STOP
    # At epoch 6 (the second rung) a BiLSTM better than the first meets the DAN trials:
    # stopped, where an ASHA per architecture lets it on.
    better_second = [*REPORTS[:4], ("bilstm", 0.65)]
    assert decisions(HYBRID(), better_second, epoch=6)[4] == TrialScheduler.STOP
    assert decisions(ByArchitecture(ASHA), better_second, epoch=6)[4] == TrialScheduler.CONTINUE


def test_each_architectures_first_trial_trains_to_its_end():
    """The recipe of a slow starter is not stopped at the second rung by the DAN's fast start;
    one ASHA over all trials stops it; with no DAN ahead, the first trial continues anyway."""
    weaker_first = [*REPORTS[:3], ("bilstm", 0.40), ("dan", 0.30)]
    assert decisions(HYBRID(), weaker_first, epoch=6)[3] == TrialScheduler.CONTINUE
    assert decisions(ASHA(), weaker_first, epoch=6)[3] == TrialScheduler.STOP
    assert decisions(HYBRID(), weaker_first, epoch=6)[4] == TrialScheduler.STOP  # not the first


@pytest.mark.parametrize("trial_scheduler", ["asha_by_arch", "asha"])
def test_a_resumed_scheduler_decides_as_the_uninterrupted_one(trial_scheduler):
    """Ray Tune does not save schedulers: a resumed ASHA once started with empty rungs and
    let through trials the uninterrupted search stopped."""
    make = {
        "asha_by_arch": HYBRID,
        "asha": ASHA,
    }[trial_scheduler]
    before, after = REPORTS[:3], [("dan", 0.85), ("dan", 0.95), ("bilstm", 0.6), ("dan", 0.80)]
    uninterrupted = make()
    decisions(uninterrupted, before)
    saved = pickle.dumps(SchedulerState(uninterrupted).get_state())  # as Ray saves callbacks
    resumed = make()
    SchedulerState(resumed).set_state(pickle.loads(saved))
    expected = decisions(uninterrupted, after)
    assert decisions(resumed, after) == expected
    assert expected != decisions(make(), after)  # an empty scheduler decides otherwise
