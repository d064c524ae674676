"""time_budget=: the trials' phase of a search in a wall-clock budget, as Ray Tune's
time_budget_s, AutoGluon's time_limit and Optuna's timeout offer, but ending well:

- no trial starts after the budget (the searcher says it has finished);
- a running trial ends at its next epoch's report, keeping its best model (saved on every new
  best epoch), rather than being killed mid-epoch as Ray's time_budget_s does;
- the end (ensemble, held-out scores, exports) still runs and is complete, not PARTIAL; the
  report and the console say the budget ended the search and how many trials ran.

The budget counts from the start of this run's trials (a resumed search gets it afresh).

    python -m search.run arch=all time_budget=90m     # or 2h, 45s, 5400 (seconds)
"""

from __future__ import annotations

import re
import time

from ray.tune.stopper import Stopper

from data_prep.cli import ConfigError

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}
# This run's deadline (time.time()), and whether the budget stopped anything. Module state:
# Ray pickles the stopper and the searcher with the experiment.
DEADLINE: list[float] = []
ENDED: list[bool] = []


def parse_duration(text: str) -> float:
    """Seconds of '90m', '2h', '45s', '5400'; 0 for '' (no budget)."""
    if not text.strip():
        return 0.0
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if not found or float(found[1]) <= 0:
        raise ConfigError(
            f"time_budget={text}: use a positive duration such as 90m, 2h, 45s or 5400 "
            "(seconds), or leave it empty for none"
        )
    return float(found[1]) * UNITS[found[2]]


def start(seconds: float) -> None:
    """The budget of this run's trials starts now."""
    DEADLINE[:] = [time.time() + seconds] if seconds else []
    ENDED.clear()


def over() -> bool:
    """The budget has run out (and from here on, says so to the end of the search)."""
    if DEADLINE and time.time() >= DEADLINE[0]:
        ENDED[:] = [True]
        return True
    return False


def ended() -> bool:
    return bool(ENDED)


class BudgetStopper(Stopper):
    """Ends each running trial at its first report after the budget; never all at once."""

    def __call__(self, trial_id: str, result: dict) -> bool:
        return over()

    def stop_all(self) -> bool:
        return False
