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

# Trial ids Ray Tune ended because of a signal (it marks them TERMINATED like trials that
# ended on their own). Module state, not the callback's: Ray pickles the callback with the
# experiment and a resumed search runs the unpickled copy.
STOPPED_BY_SIGNAL: set[str] = set()


class StoppedTrials(Callback):
    """Records the trials that complete after a signal arrived (or the wait for nodes ended:
    search/nodes.py)."""

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        if GUARD.received is not None or WAITED_OUT:
            STOPPED_BY_SIGNAL.add(trial.trial_id)


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
    STOPPED_BY_SIGNAL.clear()  # a search run again in the same process counts afresh
    WAITED_OUT.clear()
    tune_logger, advice = logging.getLogger("ray.tune.tune"), _NoRestoreAdvice()
    tune_logger.addFilter(advice)
    try:
        with GUARD.graceful(stop_tune):
            yield
    finally:
        tune_logger.removeFilter(advice)
