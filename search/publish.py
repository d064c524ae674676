"""The final phase's outputs appear all at once, or not at all.

The final phase (test scores, ensemble, leaderboard, report, best model, the TensorBoard
experiment) writes into a staging directory inside the experiment; `publish` then moves each
entry into place with renames while SIGINT and SIGTERM are held off. A signal, a crash or a
full disk before that leaves the experiment as it was (still PARTIAL), never half of a new
best_model/ beside an old report.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

from search.experiment import PARTIAL_FILE
from search.storage import Location

STAGING_DIR = ".final-staging"
HELD_SIGNALS = {signal.SIGINT, signal.SIGTERM}
# The experiments whose end this process has published (and sent to their URI): a signal
# after that (while the result is printed, Ray stops) finds the experiment complete, not
# PARTIAL (search/run.py `stopped`). Module state, as search/budget.py's.
PUBLISHED: set[Path] = set()


@contextlib.contextmanager
def staged(experiment_dir: Path, location: Location | None = None) -> Iterator[Path]:
    """A fresh staging directory; published into `experiment_dir` when the block ends, and
    for an experiment at a URI sent there after, its PARTIAL removed last."""
    staging = experiment_dir / STAGING_DIR
    shutil.rmtree(staging, ignore_errors=True)  # a staging left by an interrupted end
    staging.mkdir()
    yield staging
    names = sorted(entry.name for entry in staging.iterdir())
    publish(staging, experiment_dir)
    if location is not None and location.remote:
        location.push(names)
        location.delete([PARTIAL_FILE])
    PUBLISHED.add(experiment_dir)


def publish(staging: Path, target: Path) -> None:
    """Move every entry of `staging` into `target`, replacing what is there; then the
    experiment is no longer PARTIAL."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        for entry in sorted(staging.iterdir()):
            destination = target / entry.name
            if destination.is_dir() and not destination.is_symlink():
                old = target / f".replaced-{entry.name}"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(destination, old)
                os.replace(entry, destination)
                shutil.rmtree(old)
            else:
                os.replace(entry, destination)
        staging.rmdir()
        (target / PARTIAL_FILE).unlink(missing_ok=True)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
