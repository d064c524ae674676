"""The trials' resumable states in an experiment (Ray Tune's `checkpoint_*/`): gaps refilled
before a resume, and removed once the search has ended."""

from __future__ import annotations

import shutil
from pathlib import Path

from search.experiment import OWN_NAMES
from search.storage import Location

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


def remove_resumable_states(location: Location) -> int:
    """After a search has ended and published its outputs: every trial's checkpoint_*/ (the
    state a failed or interrupted trial restarts from, ~5x its model), which nothing can use
    once every trial has ended. The trials' best_model/ stay (the ensemble's members and
    best_model/ link them). Returns the bytes freed."""
    if location.remote:
        return location.delete_checkpoints()
    freed = 0
    for checkpoint in location.local.glob(f"*/{CHECKPOINT_PREFIX}*"):
        if checkpoint.is_dir() and OWN_NAMES.fullmatch(checkpoint.parent.name):
            freed += sum(f.stat().st_size for f in checkpoint.rglob("*") if f.is_file())
            shutil.rmtree(checkpoint)
    return freed


def remove_empty_checkpoints(path: Path) -> None:
    """After a search: the refilled directories Ray's last snapshot no longer listed (a real
    checkpoint is never empty)."""
    for placeholder in path.glob(f"*/{CHECKPOINT_PREFIX}*"):
        if placeholder.is_dir() and not any(placeholder.iterdir()):
            placeholder.rmdir()
