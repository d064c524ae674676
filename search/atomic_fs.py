"""pyarrow's local filesystem with atomic writes: what Ray Tune writes into a local
experiment (its state, the trials' checkpoints) appears whole or not at all.

Ray copies those files into storage_path with plain writes; a disk that filled up midway
left them cut short, and the resume after could not read them. Through this handler each
file is written beside its target and renamed onto it; a failed write leaves the old file.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import pyarrow as pa
import pyarrow.fs as pafs


class _AtomicWriter:
    """A file written beside its target and renamed onto it when closed after no failed
    write; a failed write (a full disk) discards it, so the old file stays."""

    def __init__(self, path: str) -> None:
        head, tail = os.path.split(path)
        self._path = path
        self._temporary = os.path.join(head, f".{tail}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
        self._file = open(self._temporary, "wb")  # noqa: SIM115 (closed in close())

    closed = property(lambda self: self._file.closed)

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._file.tell()

    def write(self, data) -> int:
        try:
            return self._file.write(data)
        except BaseException:
            self._discard()  # pyarrow may never call close() on a stream that failed
            raise

    def flush(self) -> None:
        try:
            self._file.flush()
        except BaseException:
            self._discard()
            raise

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())  # a rename of unwritten data is no safer
        except BaseException:
            self._discard()
            raise
        self._file.close()
        os.replace(self._temporary, self._path)

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._temporary)


class AtomicLocalFiles(pafs.FileSystemHandler):
    """pyarrow's local filesystem whose written files appear whole or not at all."""

    def __init__(self) -> None:
        self._fs = pafs.LocalFileSystem()

    def __eq__(self, other) -> bool:
        return isinstance(other, AtomicLocalFiles)

    def __ne__(self, other) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "qatune-local"

    def normalize_path(self, path):
        return self._fs.normalize_path(path)

    def get_file_info(self, paths):
        return self._fs.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self._fs.get_file_info(selector)

    def create_dir(self, path, recursive):
        self._fs.create_dir(path, recursive=recursive)

    def delete_dir(self, path):
        self._fs.delete_dir(path)

    def delete_dir_contents(self, path, missing_dir_ok=False):
        self._fs.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self):
        raise OSError("qatune never empties a filesystem's root")

    def delete_file(self, path):
        self._fs.delete_file(path)

    def move(self, src, dest):
        self._fs.move(src, dest)

    def copy_file(self, src, dest):
        self._fs.copy_file(src, dest)

    def open_input_stream(self, path):
        return self._fs.open_input_stream(path)

    def open_input_file(self, path):
        return self._fs.open_input_file(path)

    def open_output_stream(self, path, metadata):
        return pa.PythonFile(_AtomicWriter(path), mode="w")

    def open_append_stream(self, path, metadata):
        return self._fs.open_append_stream(path)
