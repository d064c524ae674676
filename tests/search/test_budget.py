"""time_budget=: no trial after it, running ones end at their next report, and the end of
the search still runs, complete."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from data_prep.cli import ConfigError
from search.budget import parse_duration
from tests.conftest import REPO, synthetic_questions


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("2h", 7200), ("45s", 45), ("5400", 5400), ("", 0)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "0", "1d", "m"])
def test_a_bad_duration_is_one_line(text):
    with pytest.raises(ConfigError, match=f"time_budget={text}: use a positive duration"):
        parse_duration(text)


@pytest.mark.e2e
def test_a_budget_ends_the_search_complete_with_fewer_trials(tmp_path):
    source = tmp_path / "questions.csv"
    synthetic_questions(600).to_csv(source, index=False)
    args = ["arch=dan", "num_samples=40", "max_epochs=1000", "patience=1000",
            "trial_scheduler=none",
            "time_budget=10s", f"source={source}", f"data_dir={tmp_path / 'data'}",
            "embeddings=random", "pretrain=false", "recipes=false", "ray_cpus=2",
            f"storage_path={tmp_path / 'results'}", "name=budget"]  # fmt: skip
    run = subprocess.run([sys.executable, "-m", "search.run", *args], capture_output=True,
                         text=True, cwd=REPO, timeout=400)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    experiment = tmp_path / "results" / "budget"
    assert not (experiment / "PARTIAL").exists() and (experiment / "best_model").is_dir()
    trials = pd.read_csv(experiment / "trials.csv")
    assert 1 <= len(trials) < 40
    # No trial could reach 1000 epochs in 10 s: each ended at a report after the budget.
    assert (trials["epochs"] < 1000).all() and (trials["status"] == "ok").all()
    line = f"time_budget=10s ended the search: {len(trials)} of 40 trials ran"
    assert line in run.stdout
    assert (
        f"The time budget (time_budget=10s) ended the search: {len(trials)} of 40"
        in (experiment / "report.md").read_text()
    )
    assert run.stdout.strip().splitlines()[-1].startswith("test accuracy: ensemble")
