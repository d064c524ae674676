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
import pickle
import re
import shlex
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from data_prep import PrepConfig
from data_prep.atomic import write_text
from data_prep.cli import as_dict, from_dict
from search.config import SearchConfig, SearchConfigError
from search.storage import Location
from search.trust import check_trusted

CONFIG_FILE = "qatune_config.json"
LOCK_FILE = ".qatune.lock"
PARTIAL_FILE = "PARTIAL"
# Written first, under the lock, by the search that creates the directory: a directory is
# a qatune experiment when it holds this marker (or, from before the marker, Ray's state
# beside the saved settings) and nothing qatune or Ray would not have written.
MARKER_FILE = ".qatune_experiment.json"
MARKER_KIND = "qatune experiment"

# Everything a search (its driver, Ray Tune, its trials) writes at the top of an experiment.
# Anything else is the user's: never adopted, never deleted.
OWN_FILES = (CONFIG_FILE, LOCK_FILE, PARTIAL_FILE, MARKER_FILE, "tuner.pkl", "trainable.pkl",
             "leaderboard.md", "leaderboard.csv", "report.md", "trials.csv", "final.csv",
             "anytime.png", "importance.png", "best_model", "best_ensemble", "baseline",
             "tensorboard", "pretrained", ".final-staging")  # fmt: skip
OWN_PATTERNS = (
    r"experiment_state-[\w.-]+\.json",  # Ray Tune's state, then its searcher's
    r"basic-variant-state-[\w.-]+\.json",
    r"search_gen_state-[\w.-]+\.json",
    r"searcher-state-[\w.-]+\.pkl",
    r"callback-states-[\w.-]+\.pkl",
    r"\.validate_storage_marker",  # Ray Tune's check of storage_path
    r"events\.out\.tfevents\.[\w.-]+",
    r"\.replaced-[\w.-]+",  # search/publish.py
    r"\.qatune-shared-[0-9a-f]+",  # search/cluster.py
    r"\.qatune-probe-[0-9a-f]+",  # search/storage.py
    r"\.[\w.-]+\.\d+-[0-9a-f]{8}\.tmp",  # atomic writes, interrupted (TEMPORARY below)
    r"[a-z0-9_]+_[0-9a-f]{5,10}(_\d{5})?",  # trial directories: <arch>_<Ray's trial id>
)
OWN_NAMES = re.compile("|".join([*map(re.escape, OWN_FILES), *OWN_PATTERNS]))


def foreign_entries(path: Path) -> list[str]:
    """The entries of `path` that no search writes."""
    return sorted(e.name for e in path.iterdir() if not OWN_NAMES.fullmatch(e.name))


def has_marker(path: Path) -> bool:
    try:
        return json.loads((path / MARKER_FILE).read_text()).get("kind") == MARKER_KIND
    except (OSError, ValueError, AttributeError):
        return False


def started(path: Path) -> bool:
    """Ray has run (some of) its trials there: it can be resumed, not reused."""
    return any((path / name).exists() for name in ("tuner.pkl", "leaderboard.md"))


def is_experiment(path: Path) -> bool:
    """A qatune experiment: its marker (or, before markers, saved settings beside Ray's
    state), and nothing foreign beside them."""
    if not path.is_dir() or foreign_entries(path):
        return False
    return has_marker(path) or ((path / CONFIG_FILE).is_file() and started(path))


def not_started(path: Path) -> bool:
    """A qatune experiment stopped before its trials began (a signal or an error during data
    preparation, pretraining or a check): the same command may start it again."""
    return is_experiment(path) and not started(path)


def check_new(config: SearchConfig, overwrite: bool) -> None:
    """Before anything is written: a new search never writes into an existing experiment
    unless told to replace it, and never into (or deletes) a directory qatune did not create."""
    path = config.experiment_path
    if path.exists() and not path.is_dir():
        raise SearchConfigError(f"{path} is a file, not an experiment directory: another name=")
    if config.resuming:
        if not is_experiment(path):
            raise SearchConfigError(
                f"resume: {path} holds no experiment to restore"
                f"{describe_foreign(path)}: check storage_path= and name="
            )
        return
    if not path.is_dir() or not {e.name for e in path.iterdir()} - {LOCK_FILE} or not_started(path):
        return  # new, or just claimed by this driver, or never started
    if not is_experiment(path):
        raise SearchConfigError(
            f"{path} exists and is not a qatune experiment{describe_foreign(path)}: qatune "
            "neither writes into nor deletes it; choose another name="
        )
    if not overwrite:
        raise SearchConfigError(
            f"{path} already holds an experiment: resume=true to continue it, "
            "overwrite=true to replace it, or another name="
        )


def describe_foreign(path: Path) -> str:
    foreign = foreign_entries(path) if path.is_dir() else []
    if not foreign:
        return ""
    more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
    return f" (it holds {', '.join(foreign[:3])}{more}, which no search writes)"


def remove_own_entries(location: Location) -> None:
    """overwrite=true: delete what a search wrote, keeping the lock this driver holds and the
    marker; anything foreign (none, by check_new, unless added since) stays."""
    removed = []
    for entry in location.local.iterdir():
        if entry.name in (LOCK_FILE, MARKER_FILE) or not OWN_NAMES.fullmatch(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        removed.append(entry.name)
    location.delete(removed)


@contextlib.contextmanager
def open_experiment(
    config: SearchConfig, prep: PrepConfig
) -> Iterator[tuple[SearchConfig, PrepConfig]]:
    """The experiment directory, held by this driver from before its first write to the end:
    checked, locked, emptied of the old run (overwrite=true), marked and its settings saved
    (or, on resume, read back). A second driver is refused before it writes anything. At a
    URI the checks read a local copy of the experiment's own files."""
    location = config.location
    if not location.remote:
        check_new(config, config.overwrite)
    with claim(location.local):
        if location.remote:
            refresh_copy(location)
            print(f"{location}: object storage has no lock qatune can take; one driver per "
                  "experiment there (a second one on this machine is refused)",
                  file=sys.stderr)  # fmt: skip
        check_new(config, config.overwrite)  # again, under the lock: another driver may have
        if config.resuming and not location.remote:  # finished or started meanwhile
            check_trusted(config.experiment_path)  # before anything of it is unpickled
            remove_temporaries(config.experiment_path)
        if config.resuming:
            check_saved_state(config.experiment_path, str(location))
        elif config.overwrite and not config.resuming:
            remove_own_entries(location)
        mark(config.experiment_path)
        configs = experiment_configs(config, prep)
        location.push([MARKER_FILE, CONFIG_FILE])
        yield configs


TEMPORARY = re.compile(r"\.[\w.-]+\.\d+-[0-9a-f]{8}\.tmp")


def remove_temporaries(path: Path) -> None:
    """Files half-written by a driver that was killed or ran out of space (its atomic writes:
    data_prep/atomic.py, search/storage.py); under the lock, no writer is left."""
    for entry in path.iterdir():
        if TEMPORARY.fullmatch(entry.name) and entry.is_file():
            entry.unlink()


# Ray Tune's state files; the newest of each kind is what a resume reads.
STATE_FILES = (
    "experiment_state-*.json",
    "search_gen_state-*.json",
    "searcher-state-*.pkl",
    "callback-states-*.pkl",
)


def check_saved_state(path: Path, where: str) -> None:
    """Before Ray Tune restores: the newest state of each kind reads back. A damaged one
    (a copy cut short, a disk that filled before qatune wrote atomically) once made Ray Tune
    restart the experiment in place, or wait idle for ever; now it is one line."""
    for pattern in STATE_FILES if started(path) else ():
        found = sorted(path.glob(pattern))
        if not found:
            continue
        try:
            with open(found[-1], "rb") as file:
                # experiment_state is JSON; the rest are pickles (search_gen_state's name aside)
                json.load(file) if pattern.startswith("experiment_") else pickle.load(file)  # noqa: S301
        except Exception as err:  # noqa: BLE001 - any failure to read it back is damage
            raise SearchConfigError(
                f"resume={where}: its saved search state {found[-1].name} is damaged "
                f"({type(err).__name__}: {str(err)[:100]}); restore the experiment from a "
                "copy, or start a new one (another name=)"
            ) from None


def mark(path: Path) -> None:
    if not has_marker(path):
        write_text(path / MARKER_FILE, json.dumps({"kind": MARKER_KIND, "id": uuid.uuid4().hex}))


def refresh_copy(location: Location) -> None:
    """The local copy of a URI's experiment as the store holds it now (the copy is qatune's
    own cache: what the store no longer holds goes)."""
    for entry in location.local.iterdir():
        if entry.name != LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    location.pull_top()


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


def resume_command(location: Location | Path) -> str:
    """Quoted for a shell: a path with spaces (or a URI's &) is pasted as it is printed."""
    return f"python -m search.run {shlex.quote(f'resume={location}')}"


def mark_partial(location: Location) -> None:
    """Until a search's end is published (search/publish.py), it is PARTIAL."""
    if (location.local / CONFIG_FILE).is_file():
        (location.local / PARTIAL_FILE).write_text("stopped before the end: resume=true\n")
        location.push([PARTIAL_FILE])


def experiment_configs(config: SearchConfig, prep: PrepConfig) -> tuple[SearchConfig, PrepConfig]:
    """Saved with a new experiment, read back on resume: a resumed search runs with the same
    data and settings whatever keys the resuming command repeats (only where Ray runs may
    change: address, ray_cpus; and where the experiment is now)."""
    saved = config.experiment_path / CONFIG_FILE
    if not config.resuming:
        config.experiment_path.mkdir(parents=True, exist_ok=True)
        write_text(saved, json.dumps({"search": as_dict(config), "data": as_dict(prep)}, indent=1))
        return config, prep
    if not saved.is_file():  # stopped before it saved its settings: a fresh start
        return dataclasses.replace(config, resume=""), prep
    # Stopped before its trials began: nothing to restore, so it starts with its settings.
    resume = "true" if started(config.experiment_path) else ""

    try:
        configs = json.loads(saved.read_text())
        original = dataclasses.replace(
            from_dict(SearchConfig, configs["search"]),
            resume=resume,
            storage_path=config.storage_path,  # where the experiment is now, if it moved
            name=config.name,
            address=config.address,
            ray_cpus=config.ray_cpus,
        )
        # Saved before expand_vocab= existed: its data read unseen words as UNK, and so on.
        data = {"expand_vocab": "", **configs["data"]}
        return original, from_dict(PrepConfig, data)
    except (ValueError, KeyError, TypeError) as err:  # ConfigError is a ValueError too
        raise SearchConfigError(
            f"{saved}: the experiment's saved settings are damaged ({str(err)[:120]}); "
            "restore the file from a copy, or start a new experiment (another name=)"
        ) from None


# What a resume may change: where the experiment is, where Ray runs, how to wait for it.
RESUME_KEYS = {"resume", "storage_path", "name", "address", "ray_cpus", "overwrite", "node_wait"}


def ignored_on_resume(
    typed: set[str], given: tuple[PrepConfig, SearchConfig], saved: tuple[PrepConfig, SearchConfig]
) -> list[str]:
    """The keys a resuming command typed that differ from the experiment's saved settings
    (which the resume keeps), as `key=typed (the experiment's: saved)`."""
    ignored = []
    for key in sorted(typed - RESUME_KEYS):
        for new, old in ((given[1], saved[1]), (given[1].train, saved[1].train),
                         (given[0], saved[0])):  # fmt: skip
            if hasattr(new, key) and key != "train":
                if getattr(new, key) != getattr(old, key):
                    ignored.append(f"{key}={getattr(new, key)} (it has {getattr(old, key)})")
                break
    return ignored
