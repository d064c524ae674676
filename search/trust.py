"""Whose experiment a resume may load: Ray Tune restores a search by unpickling its state
(tuner.pkl, the searcher's and schedulers' state, the trials in experiment_state-*.json), and
unpickling runs whatever code the file names. So a resume loads only what the user running it
could have written alone: every file and directory of the experiment owned by that user, and
writable by no one else (a group of the user alone, the usual user-private group, counts as
the user). An experiment copied from someone else, or on storage others can write, is refused
in one line: check it, then take it over (`chown -R`, `chmod -R go-w`) to resume it.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

from search.config import SearchConfigError


def private_group(gid: int, uid: int) -> bool:
    """The user's own group: named after the user, with no other member."""
    try:
        group, user = grp.getgrgid(gid), pwd.getpwuid(uid)
    except KeyError:
        return False
    return group.gr_name == user.pw_name and set(group.gr_mem) <= {user.pw_name}


def untrusted_reason(path: Path, uid: int) -> str:
    """Why this one file or directory could hold someone else's code ("" if it cannot)."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if info.st_uid != uid:
        return f"belongs to uid {info.st_uid}, not to you (uid {uid})"
    if info.st_mode & stat.S_IWOTH:
        return "is writable by every user"
    if info.st_mode & stat.S_IWGRP and not private_group(info.st_gid, uid):
        return f"is writable by group {info.st_gid}"
    return ""


def check_trusted(experiment: Path) -> None:
    """Refuse to resume an experiment that someone other than this user could have written."""
    uid = os.getuid()
    for root, dirs, files in os.walk(experiment):
        for name in [""] + dirs + files if root == str(experiment) else dirs + files:
            path = Path(root) / name
            reason = untrusted_reason(path, uid)
            if reason:
                raise SearchConfigError(
                    f"resume: {path} {reason}; resuming unpickles the experiment's state, "
                    "which runs code, so qatune resumes only experiments you alone could "
                    "have written: check it, then `chown -R` / `chmod -R go-w` it, or start "
                    "a new experiment"
                )
