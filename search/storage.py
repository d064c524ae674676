"""Where experiments live: a directory, or a URI of a filesystem pyarrow knows (`s3://`,
`gs://`, with pyarrow's query parameters such as `endpoint_override=` and `scheme=`), behind
one interface.

    python -m search.run storage_path='s3://bucket/results?endpoint_override=host:9000&scheme=http'

Ray Tune writes trials, checkpoints and its own state through `filesystem()`. The driver
works in a local copy of the experiment (`Location.local`): the experiment directory itself
for a path; for a URI a cache directory it fills with `pull_*` and sends back with `push`.
Writes to a local experiment go through `AtomicLocalFiles`: a full disk leaves the last good
file, never half of one (Ray copies its state and checkpoints with plain writes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import os
import posixpath
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.fs as pafs

from data_prep.atomic import atomic_path
from data_prep.cli import ConfigError
from search.atomic_fs import AtomicLocalFiles

SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
CACHE = Path(os.environ.get("QATUNE_CACHE", "~/.cache/qatune")).expanduser()
CHECKPOINT = re.compile(r"(^|/)checkpoint_\d+(/|$)")


class StorageError(ConfigError):
    """A storage_path, resume= or model= URI that cannot be used; the message says which."""


def is_uri(location: str) -> bool:
    return bool(SCHEME.match(location))


def write_failure(err: BaseException) -> str | None:
    """What a failed write says of its filesystem: full, read-only, not ours to write; None
    for any other failure (pyarrow says it in words, not errno)."""
    code, text = getattr(err, "errno", None), str(err)
    if code == errno.ENOSPC or "No space left on device" in text:
        return "full (no space left on device)"
    if code == errno.EROFS or "Read-only file system" in text:
        return "read-only"
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return "not writable (permission denied)"
    return None


@dataclasses.dataclass(frozen=True)
class Location:
    """An experiment: `<storage_path>/<name>`, and the local directory the driver works in."""

    storage_path: str
    name: str
    key: str = dataclasses.field(default="storage_path", compare=False)  # named in errors

    @property
    def remote(self) -> bool:
        return is_uri(self.storage_path)

    @functools.cached_property
    def _filesystem(self) -> tuple[pafs.FileSystem, str]:
        return filesystem(self.storage_path, self.key)

    @property
    def fs(self) -> pafs.FileSystem:
        return self._filesystem[0]

    @property
    def root(self) -> str:
        """The storage_path in `fs` (what Ray Tune takes as storage_path beside `fs`)."""
        return self._filesystem[1]

    @property
    def fs_path(self) -> str:
        return posixpath.join(self.root, self.name)

    @property
    def local(self) -> Path:
        """The experiment directory, or for a URI its local copy (one per URI and name)."""
        if not self.remote:
            return Path(os.path.expanduser(self.storage_path)) / self.name
        digest = hashlib.sha256(self.storage_path.encode()).hexdigest()[:16]
        return CACHE / "experiments" / digest / self.name

    def __str__(self) -> str:
        return self.uri()

    def uri(self, relative: str = "") -> str:
        """As a user gives it back (resume=, model=): the path, or the URI with its query."""
        if not self.remote:
            return str(self.local / relative) if relative else str(self.local)
        parts = urlsplit(self.storage_path)
        path = posixpath.join(parts.path or "/", self.name, relative).rstrip("/")
        return urlunsplit(parts._replace(path=path))

    # The local copy of a URI's experiment (every one a no-op for a directory).
    def pull_top(self) -> None:
        """The experiment's own files (settings, marker, Ray's state) into the local copy, and
        a directory for each of its directories (the checks read only their names)."""
        if not self.remote:
            return
        self.local.mkdir(parents=True, exist_ok=True)
        for info in self._listing(recursive=False):
            name = posixpath.basename(info.path)
            if info.type == pafs.FileType.Directory:
                (self.local / name).mkdir(exist_ok=True)
            else:
                self._download(info.path, self.local / name)

    def pull_trials(self) -> None:
        """Every file of the experiment but the trials' resumable states (the end reads the
        trials' results, events and best models)."""
        if not self.remote:
            return
        for info in self._listing(recursive=True):
            relative = posixpath.relpath(info.path, self.fs_path)
            if info.type == pafs.FileType.File and not CHECKPOINT.search(relative):
                self._download(info.path, self.local / relative)

    def push(self, relative_paths: list[str]) -> None:
        """Files and directories of the local copy to the URI (each replaces what is there)."""
        if not self.remote:
            return
        for relative in relative_paths:
            source, target = self.local / relative, posixpath.join(self.fs_path, relative)
            if source.is_dir():
                self.delete([relative])
                self.fs.create_dir(target, recursive=True)
                pafs.copy_files(str(source), target, destination_filesystem=self.fs)
            elif source.is_file():
                pafs.copy_files(str(source), target, destination_filesystem=self.fs)

    def delete(self, relative_paths: list[str]) -> None:
        """Entries of the experiment at the URI (the local copy is the caller's)."""
        if not self.remote:
            return
        for relative in relative_paths:
            path = posixpath.join(self.fs_path, relative)
            kind = self.fs.get_file_info(path).type
            if kind == pafs.FileType.Directory:
                self.fs.delete_dir(path)
            elif kind == pafs.FileType.File:
                self.fs.delete_file(path)

    def read_text(self, relative: str) -> str | None:
        """A small file of the experiment (a path or at the URI), or None where there is none."""
        path = posixpath.join(self.fs_path, relative)
        if self.fs.get_file_info(path).type != pafs.FileType.File:
            return None
        with self.fs.open_input_stream(path) as stream:
            return stream.read().decode()

    def unwritable(self) -> str | None:
        """Why the experiment's filesystem takes no more MiB now ("full (no space left on
        device)", "read-only", ...), or None; object storage is taken as writable."""
        if self.remote:
            return None
        probe = self.local / f".qatune-probe-{uuid.uuid4().hex}"
        try:
            with open(probe, "wb") as out:
                out.write(bytes(1 << 20))
                out.flush()
                os.fsync(out.fileno())
        except OSError as err:
            return write_failure(err)
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        return None

    def delete_checkpoints(self) -> int:
        """The trials' resumable states at the URI; the bytes they held."""
        listing = self._listing(recursive=True)
        states = [i.path for i in listing if i.type == pafs.FileType.Directory
                  and CHECKPOINT.fullmatch(f"/{i.base_name}/")]  # fmt: skip
        freed = sum(i.size or 0 for i in listing
                    if i.type == pafs.FileType.File and CHECKPOINT.search(i.path))  # fmt: skip
        for path in states:
            self.fs.delete_dir(path)
        return freed

    def _listing(self, recursive: bool) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self.fs_path, allow_not_found=True, recursive=recursive)
        return self.fs.get_file_info(selector)

    def _download(self, fs_path: str, target: Path) -> None:
        with atomic_path(target) as partial, self.fs.open_input_stream(fs_path) as stream:
            with open(partial, "wb") as out:
                while chunk := stream.read(1 << 22):
                    out.write(chunk)


def filesystem(storage_path: str, key: str = "storage_path") -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path of a storage_path (one line when it is not one)."""
    if not is_uri(storage_path):
        path = os.path.abspath(os.path.expanduser(storage_path))
        return pafs.PyFileSystem(AtomicLocalFiles()), path
    try:
        fs, path = pafs.FileSystem.from_uri(storage_path)
    except (pa.ArrowInvalid, ValueError, OSError) as err:
        raise StorageError(
            f"{key}={storage_path}: not a storage URI pyarrow can open "
            f"({str(err).splitlines()[0][:160]}); e.g. s3://bucket/prefix or gs://bucket/prefix"
        ) from None
    return fs, path.rstrip("/")


def local_model(model: str) -> Path:
    """model=<dir> as it is; model=<URI> (an exported best_model/ or best_ensemble/) copied
    into the cache first, whole or not at all, and that copy."""
    if not is_uri(model):
        return Path(model).expanduser()
    storage_path, name = split_experiment_uri(model)
    location = Location(storage_path, name, key="model")
    target = CACHE / "models" / hashlib.sha256(model.encode()).hexdigest()[:16] / name
    try:
        if location.fs.get_file_info(location.fs_path).type != pafs.FileType.Directory:
            raise StorageError(f"model={model}: no such directory at that URI")
        staging = target.with_name(f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        try:
            staging.mkdir(parents=True)
            pafs.copy_files(location.fs_path, str(staging), source_filesystem=location.fs)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as err:
        raise StorageError(
            f"model={model}: cannot copy it here ({str(err).splitlines()[0][:200]}); check "
            "the URI, its credentials and endpoint_override="
        ) from None
    return target


def model_location(model: str) -> Location:
    """model=<a directory or URI> as a Location (its parent and name)."""
    if is_uri(model):
        return Location(*split_experiment_uri(model), key="model")
    path = Path(model).expanduser().absolute()
    return Location(str(path.parent), path.name, key="model")


def split_experiment_uri(uri: str) -> tuple[str, str]:
    """resume=<URI of an experiment>: its storage_path (with the query) and name."""
    parts = urlsplit(uri)
    head, name = posixpath.split(parts.path.rstrip("/"))
    if not name or not parts.netloc:
        raise StorageError(f"{uri}: name a directory in the bucket, e.g. s3://bucket/prefix/name")
    return urlunsplit(parts._replace(path=head)), name


def check_reachable(location: Location) -> None:
    """Before anything runs: the URI's storage answers and takes a file (one line if not)."""
    if not location.remote:
        return
    probe = posixpath.join(location.root, f".qatune-probe-{uuid.uuid4().hex}")
    try:
        location.fs.create_dir(location.root, recursive=True)
        with location.fs.open_output_stream(probe) as out:
            out.write(b"qatune")
        location.fs.delete_file(probe)
    except (OSError, pa.ArrowInvalid) as err:
        raise StorageError(
            f"storage_path={location.storage_path}: cannot write there "
            f"({str(err).splitlines()[0][:200]}); check the bucket, its credentials and "
            "endpoint_override="
        ) from None
