"""The one way qatune writes a file that others read: beside it, then renamed onto it.

A reader (a resumed search, another process, a user) sees the old file or the new one,
never half of one: an interrupted write leaves only a hidden temporary file, removed here on
any error. Used by model exports, pretrained checkpoints, embedding caches and downloads;
whole directories appear at once through a staging directory (data_prep/store.py,
search/publish.py).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` to write; renamed onto `target` when the block ends
    without an error, removed when it does not."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> Path:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return target


def link_or_copy(source: str | Path, target: str | Path) -> Path:
    """`target` as a hard link to `source` (no second copy on disk; qatune's files are never
    written in place: writers replace them, as atomic_path does) where both share a
    filesystem, else a copy; written beside and renamed, so a half file never looks finished.
    shutil's copy_function signature."""
    with atomic_path(Path(target)) as partial:
        try:
            os.link(source, partial)
        except OSError:  # another filesystem, or one without hard links
            shutil.copyfile(source, partial)
    return Path(target)
