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
from pathlib import Path

from ray.tune import Callback

from data_prep.interrupt import GUARD
from search.storage import Location

# Why the search stopped itself (no node came, the storage is full): a line each. Module
# state, as ENDED below.
STOPPED_FOR: list[str] = []
# Trial ids that ended on their own (finished, stopped by the scheduler, failed) while no
# signal was stopping the search, and those still open at the last step before one: Ray
# marks the trials a stop ends TERMINATED too, without telling its callbacks. Module state,
# not the callback's: Ray pickles the callback with the experiment and a resumed search runs
# the unpickled copy.
ENDED: set[str] = set()
OPEN: set[str] = set()


class EndedTrials(Callback):
    """Tells the trials that ended on their own from those a stop ended (ended_trials)."""

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        if GUARD.received is None and not STOPPED_FOR:
            OPEN.clear()
            OPEN.update(t.trial_id for t in trials if t.status not in ("TERMINATED", "ERROR"))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trial)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trial)

    def _ended(self, trial) -> None:
        if GUARD.received is None and not STOPPED_FOR:
            ENDED.add(trial.trial_id)


def ended_trials(trials: list) -> int:
    """Of a search's trials (Ray's, with their status), those that ended on their own: also
    the ones that had ended before a resume, not the ones a signal (or a stop of the search's
    own) found running or waiting."""
    stopped = OPEN - ENDED
    return sum(t.status in ("TERMINATED", "ERROR") and t.trial_id not in stopped for t in trials)


class StorageWatch(Callback):
    """A trial failed and the experiment's filesystem takes no more writes (full, made
    read-only): every trial would fail the same way, so the search stops (resumable once it
    can be written again) with one line saying so."""

    def __init__(self, location: Location) -> None:
        self._location = location

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        self._check(trial)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._check(trial)

    def _check(self, trial) -> None:
        if STOPPED_FOR or GUARD.received is not None:
            return
        try:
            said = Path(trial.error_file).read_text(errors="replace")[-2000:]
        except (OSError, TypeError):
            said = ""
        # The probe writes a MiB: a trial's larger write may have found the disk full first.
        full = "full (no space left on device)" if "No space left on device" in said else None
        why = self._location.unwritable() or full
        if why:
            STOPPED_FOR.append(f"{self._location} is {why}; make room there (or writable), "
                               "then resume")  # fmt: skip
            stop_tune()


def stop_tune() -> None:
    """Ray Tune's graceful stop (its SIGUSR1 handler, installed while `fit()` runs)."""
    if signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):
        GUARD.check()  # fit() has not installed it yet: nothing runs, stop here
    os.kill(os.getpid(), signal.SIGUSR1)


class _QuietStop(logging.Filter):
    """Ray Tune's `Tuner.restore(path=..., trainable=...)` advice after a stop (the driver
    prints the command a user runs instead: `python -m search.run resume=...`); and when the
    search stopped itself (STOPPED_FOR), Ray's "Stop signal received (e.g. via SIGINT)" and
    its tracebacks of the state it could not save to a full disk: the driver's line says so."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "Tuner.restore(" in message:
            return False
        if STOPPED_FOR and ("Stop signal received" in message or record.exc_info):
            return False
        return True


QUIETED = ("ray.tune.tune", "ray.tune.execution.experiment_state")


@contextlib.contextmanager
def tune_phase() -> Iterator[None]:
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    ENDED.clear()  # a search run again in the same process counts afresh
    OPEN.clear()
    STOPPED_FOR.clear()
    quiet = _QuietStop()
    for name in QUIETED:
        logging.getLogger(name).addFilter(quiet)
    try:
        with GUARD.graceful(stop_tune):
            yield
    finally:
        for name in QUIETED:
            logging.getLogger(name).removeFilter(quiet)
