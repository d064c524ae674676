"""The experiment directory <storage_path>/<name>: one driver at a time, never mixed.

A new search refuses a directory that already holds an experiment (resume=true continues
it, overwrite=true replaces it); the settings are saved with it so a resume trains on the
same data and settings; a lock file keeps a second driver out while one runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from data_prep import PrepConfig
from data_prep.cli import as_dict, from_dict
from search.config import SearchConfig, SearchConfigError

CONFIG_FILE = "qatune_config.json"
LOCK_FILE = ".qatune.lock"
PARTIAL_FILE = "PARTIAL"


OWN_FILES = {CONFIG_FILE, LOCK_FILE, PARTIAL_FILE}  # what a search writes before Ray does


def started(path: Path) -> bool:
    """Ray has run (some of) its trials there: it can be resumed, not reused."""
    return any((path / name).exists() for name in ("tuner.pkl", "leaderboard.md"))


def not_started(path: Path) -> bool:
    """A qatune experiment stopped before its trials began (a signal or an error during data
    preparation, pretraining or a check): the same command may start it again."""
    return (path / CONFIG_FILE).is_file() and not started(path)


def check_new(config: SearchConfig, overwrite: bool) -> None:
    """A new search never writes into an existing experiment unless told to replace it, and
    never deletes a directory qatune did not create."""
    path = config.experiment_path
    if config.resuming:
        if not (started(path) or not_started(path)):
            raise SearchConfigError(
                f"resume: {path} holds no experiment to restore: check storage_path= and name="
            )
        return
    if not path.is_dir() or not_started(path):
        return
    ours = (path / CONFIG_FILE).is_file()
    if not ours and {p.name for p in path.iterdir()} - OWN_FILES:
        raise SearchConfigError(
            f"{path} exists and is not a qatune experiment (no {CONFIG_FILE}): qatune neither "
            "writes into nor deletes it; choose another name="
        )
    if not ours:
        return
    if not overwrite:
        raise SearchConfigError(
            f"{path} already holds an experiment: resume=true to continue it, "
            "overwrite=true to replace it, or another name="
        )
    with claim(path):  # not while another driver runs it
        pass
    shutil.rmtree(path)


@contextlib.contextmanager
def claim(path: Path) -> Iterator[None]:
    """Hold the experiment's lock while a driver runs it; a second driver is refused."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / LOCK_FILE, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise SearchConfigError(
                f"{path} is being run by another search (pid {lock.read().strip() or '?'}); "
                "wait for it, or choose another name="
            ) from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def resume_command(experiment_dir: Path) -> str:
    return f"python -m search.run resume={experiment_dir}"


def mark_partial(experiment_dir: Path) -> None:
    """Until a search's end is published (search/publish.py), it is PARTIAL."""
    if (experiment_dir / CONFIG_FILE).is_file():
        (experiment_dir / PARTIAL_FILE).write_text("stopped before the end: resume=true\n")


def experiment_configs(config: SearchConfig, prep: PrepConfig) -> tuple[SearchConfig, PrepConfig]:
    """Saved with a new experiment, read back on resume: a resumed search runs with the same
    data and settings whatever keys the resuming command repeats (only where Ray runs may
    change: address, ray_cpus; and where the experiment is now)."""
    saved = config.experiment_path / CONFIG_FILE
    if not config.resuming:
        config.experiment_path.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps({"search": as_dict(config), "data": as_dict(prep)}, indent=1))
        return config, prep
    if not saved.is_file():
        return config, prep
    # Stopped before its trials began: nothing to restore, so it starts with its settings.
    resume = "true" if started(config.experiment_path) else ""

    configs = json.loads(saved.read_text())
    original = dataclasses.replace(
        from_dict(SearchConfig, configs["search"]),
        resume=resume,
        storage_path=config.storage_path,  # where the experiment is now, if it moved
        name=config.name,
        address=config.address,
        ray_cpus=config.ray_cpus,
    )
    return original, from_dict(PrepConfig, configs["data"])


CHECKPOINT_PREFIX = "checkpoint_"


def refill_deleted_checkpoints(path: Path) -> list[Path]:
    """Before a resume: an empty directory for each checkpoint Ray deleted after its last
    snapshot of the experiment.

    Why: Ray keeps `num_to_keep` checkpoints per trial and deletes the older ones as new ones
    arrive, but snapshots the experiment only every `num_to_keep` checkpoints. A driver killed
    in between leaves a snapshot that still lists a deleted checkpoint; on resume Ray tries to
    delete it again, `_delete_fs_path` raises "Path not found" and Ray logs "Error handling
    checkpoint" with a traceback, skipping its own bookkeeping of that checkpoint (index, state).
    With the directory back, the deletion succeeds. Only gaps below a trial's newest
    checkpoint are refilled: Ray restores from the newest, which it never deletes."""
    made = []
    for trial_dir in [d for d in path.iterdir() if d.is_dir()] if path.is_dir() else []:
        indices = {
            int(p.name[len(CHECKPOINT_PREFIX) :])
            for p in trial_dir.glob(f"{CHECKPOINT_PREFIX}*")
            if p.is_dir() and p.name[len(CHECKPOINT_PREFIX) :].isdigit()
        }
        for index in set(range(max(indices, default=0))) - indices:
            placeholder = trial_dir / f"{CHECKPOINT_PREFIX}{index:06d}"
            placeholder.mkdir()
            made.append(placeholder)
    return made


def remove_empty_checkpoints(path: Path) -> None:
    """After a search: the refilled directories Ray's last snapshot no longer listed (a real
    checkpoint is never empty)."""
    for placeholder in path.glob(f"*/{CHECKPOINT_PREFIX}*"):
        if placeholder.is_dir() and not any(placeholder.iterdir()):
            placeholder.rmdir()
