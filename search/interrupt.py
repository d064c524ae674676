"""Signals while Ray Tune runs the trials (data_prep/interrupt.py for the rest).

A signal during `fit()` asks Ray Tune to stop the way its own Ctrl-C does (SIGUSR1: it saves
the experiment state one last time and returns); then the driver marks the experiment
PARTIAL and prints the resume command. Ray's own SIGINT handler stays off
(TUNE_DISABLE_SIGINT_HANDLER), so it cannot outlive `fit()`; the driver installs its
handlers again after `ray.init`, which replaces Ray's C++ handler that dumped a stack trace
on SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator

from ray.tune import Callback

from data_prep.interrupt import GUARD
from search.nodes import WAITED_OUT

# Trial ids that ended on their own (finished, stopped by the scheduler, failed): Ray marks
# the ones a stop ended TERMINATED too, without telling its callbacks. Module state, not the
# callback's: Ray pickles the callback with the experiment and a resumed search runs the
# unpickled copy.
ENDED: set[str] = set()


class EndedTrials(Callback):
    """Records the trials that ended on their own: those that had ended before a resumed
    search started, and those that end while no signal (or end of the wait for nodes:
    search/nodes.py) is stopping the search."""

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        # Also a resumed search's trials that ended in an earlier run (no callback for them).
        if GUARD.received is None and not WAITED_OUT:
            ENDED.update(t.trial_id for t in trials if t.status in ("TERMINATED", "ERROR"))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trial)

    def _ended(self, trial) -> None:
        if GUARD.received is None and not WAITED_OUT:
            ENDED.add(trial.trial_id)


def stop_tune() -> None:
    """Ray Tune's graceful stop (its SIGUSR1 handler, installed while `fit()` runs)."""
    if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
        GUARD.check()  # fit() has not installed it yet: nothing runs, stop here
    os.kill(os.getpid(), signal.SIGUSR1)


class _NoRestoreAdvice(logging.Filter):
    """Ray Tune's `Tuner.restore(path=..., trainable=...)` advice after a stop: the driver
    prints the command a user runs instead (`python -m search.run resume=...`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


@contextlib.contextmanager
def tune_phase() -> Iterator[None]:
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    ENDED.clear()  # a search run again in the same process counts afresh
    WAITED_OUT.clear()
    tune_logger, advice = logging.getLogger("ray.tune.tune"), _NoRestoreAdvice()
    tune_logger.addFilter(advice)
    try:
        with GUARD.graceful(stop_tune):
            yield
    finally:
        tune_logger.removeFilter(advice)
