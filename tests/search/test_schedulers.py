"""The first rung within each architecture: a slow starter competes with its own kind, not
with the DAN; later rungs with every trial."""

from __future__ import annotations

import functools

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from search.schedulers import ByArchitecture, FirstRungByArchitecture

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


def test_first_rung_by_architecture_then_every_trial():
    hybrid = functools.partial(FirstRungByArchitecture, max_t=18, grace_period=2,
                               reduction_factor=3)  # fmt: skip
    answers = decisions(hybrid(), REPORTS)
    assert answers[3] == TrialScheduler.CONTINUE and answers[4] == TrialScheduler.STOP
    # At epoch 6 (the second rung) the BiLSTM meets the DAN trials: stopped.
    assert decisions(hybrid(), REPORTS, epoch=6)[3] == TrialScheduler.STOP
    assert decisions(ByArchitecture(ASHA), REPORTS, epoch=6)[3] == TrialScheduler.CONTINUE


def test_the_schedulers_state_survives_save_and_restore(tmp_path):
    """A resumed search's scheduler remembers its rungs: the restored one stops the same."""
    hybrid = functools.partial(FirstRungByArchitecture, max_t=18, grace_period=2,
                               reduction_factor=3)  # fmt: skip
    scheduler = hybrid()
    decisions(scheduler, REPORTS[:3])  # three DAN trials recorded at epoch 2
    scheduler.save(str(tmp_path / "state.pkl"))
    restored = hybrid()
    restored.restore(str(tmp_path / "state.pkl"))
    assert decisions(restored, [("dan", 0.80)]) == [TrialScheduler.STOP]
    assert decisions(hybrid(), [("dan", 0.80)]) == [TrialScheduler.CONTINUE]  # a fresh one
