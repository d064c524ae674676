"""The search's console: the progress line from real Tune trials' states."""

from __future__ import annotations

from ray.tune.experiment import Trial

from search.console import Console, duration


def trial(status: str, arch: str = "dan") -> Trial:
    made = Trial("qatune", config={"arch": arch}, stub=True)
    made.set_status(status)
    return made


def test_the_progress_line_says_what_runs_what_waits_and_the_best(local_ray):
    console = Console(num_samples=10, metric="valid_accuracy", mode="max")
    done = trial(Trial.TERMINATED)
    console.on_trial_result(0, [], done, {"valid_accuracy": 0.81})
    console.on_trial_result(0, [], trial(Trial.RUNNING, "bilstm"), {"valid_accuracy": 0.79})
    console.on_trial_complete(0, [], done)
    trials = [done, trial(Trial.RUNNING), trial(Trial.PENDING), trial(Trial.PENDING)]
    line = console.progress(trials, elapsed=120)
    assert line.startswith(
        "progress: 1/10 ended, 1 running, 2 waiting to start (for resources or a node); 1 node up"
    )
    assert "best valid_accuracy 0.8100 (dan)" in line
    assert line.endswith("2m00s elapsed, about 18m00s left")


def test_a_resumed_console_counts_on():
    console = Console(num_samples=10, metric="valid_loss", mode="min")
    console.on_trial_result(0, [], trial(Trial.RUNNING), {"valid_loss": 0.5})
    resumed = Console(num_samples=10, metric="valid_loss", mode="min")
    resumed.set_state(console.get_state())
    resumed.on_trial_result(0, [], trial(Trial.RUNNING), {"valid_loss": 0.7})
    assert resumed.get_state()["best"] == (0.5, "dan")
    assert duration(3725) == "1h02m"
