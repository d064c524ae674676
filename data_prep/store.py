"""Steps 5 and 6: write a prepared dataset as Arrow IPC files, and open it memory-mapped.

A prepared dataset is one directory `<data_dir>/prepared/<key>/`:
    train.arrow valid.arrow test.arrow unlabeled.arrow  ids, mask, length, label, text
    vocab.txt labels.json meta.json          vocabulary, class names, counts/stats/config
It is written under a temporary name and renamed when complete, so an interrupted prep never
leaves a directory that looks complete. Opening it maps the files: the token ids are numpy
views of the mapped Arrow buffers (zero-copy), small enough to ship through Ray's object store.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from data_prep.errors import DataError

SPLITS = ("train", "valid", "test", "unlabeled")


def fixed_list(matrix: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1)), matrix.shape[1])


def write_split(path: Path, columns: dict[str, np.ndarray | list]) -> None:
    arrays = {
        name: fixed_list(v) if isinstance(v, np.ndarray) and v.ndim == 2 else pa.array(v)
        for name, v in columns.items()
    }
    table = pa.table(arrays)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=max(1, table.num_rows))  # one chunk: zero-copy


def write_dataset(
    final_dir: Path,
    splits: dict[str, dict[str, np.ndarray | list]],
    vocab: list[str],
    labels: list[str],
    meta: dict,
) -> Path:
    """Write everything into a temporary directory, then rename it into place atomically."""
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = final_dir.with_name(f"{final_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    for name, columns in splits.items():
        write_split(tmp / f"{name}.arrow", columns)
    (tmp / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (tmp / "labels.json").write_text(json.dumps(labels, indent=1), encoding="utf-8")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    if final_dir.exists() and not is_complete(final_dir):
        shutil.rmtree(final_dir)  # a damaged leftover (files deleted by hand): replace it
    try:
        tmp.rename(final_dir)
    except OSError:  # another process finished the same key first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return final_dir


def is_complete(path: Path) -> bool:
    """Every file there, and each split file holds the rows meta.json promises (a truncated
    or deleted file makes the dataset incomplete, so it is rebuilt rather than reused)."""
    names = ["meta.json", "vocab.txt", "labels.json", *(f"{s}.arrow" for s in SPLITS)]
    if not all((path / name).is_file() for name in names):
        return False
    try:
        rows = json.loads((path / "meta.json").read_text())["rows"]
        return all(
            pa.ipc.open_file(pa.memory_map(str(path / f"{s}.arrow"))).read_all().num_rows == rows[s]
            for s in SPLITS
        )
    except (OSError, ValueError, KeyError, pa.ArrowInvalid):
        return False


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    width = column.type.list_size
    if column.num_chunks == 0:
        return np.zeros((0, width), dtype=column.type.value_type.to_pandas_dtype())
    chunk = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return chunk.flatten().to_numpy(zero_copy_only=True).reshape(-1, width)


def _vector(column: pa.ChunkedArray) -> np.ndarray:
    if column.num_chunks == 0:  # an empty split is written with no record batch
        return np.zeros(0, dtype=column.type.to_pandas_dtype())
    chunk = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return chunk.to_numpy(zero_copy_only=True)


@dataclass
class Split:
    """Fixed-length token ids of one split as numpy arrays (memory-mapped when opened)."""

    ids: np.ndarray  # (n, L) int32
    mask: np.ndarray  # (n, L) uint8
    length: np.ndarray  # (n,) int32
    label: np.ndarray  # (n,) int32
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. answer_ids

    def __len__(self) -> int:
        return len(self.label)

    def tensors(self) -> dict[str, torch.Tensor]:
        """Torch views of the arrays (no copy; read-only memory, so do not write into them)."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "non-writable array"
            return {
                "ids": torch.from_numpy(self.ids),
                "mask": torch.from_numpy(self.mask),
                "length": torch.from_numpy(self.length),
                "label": torch.from_numpy(self.label),
            }


def read_split(path: Path) -> Split:
    table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    numeric = {
        name: _matrix(table[name])
        if pa.types.is_fixed_size_list(table.schema.field(name).type)
        else _vector(table[name])
        for name in table.column_names
        if not pa.types.is_string(table.schema.field(name).type)
        and not pa.types.is_large_string(table.schema.field(name).type)
    }
    base = {k: numeric.pop(k) for k in ("ids", "mask", "length", "label")}
    return Split(**base, extra=numeric)


def read_texts(path: Path, column: str = "question") -> list[str]:
    table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    return table[column].to_pylist()


@dataclass
class PreparedData:
    """A prepared dataset: what every trial receives (object store) or maps (shared path)."""

    path: str
    vocab: list[str]
    labels: list[str]
    meta: dict
    train: Split
    valid: Split
    test: Split | None  # None in what trials receive: the held-out split never reaches them
    unlabeled: Split

    @property
    def max_length(self) -> int:
        return int(self.train.ids.shape[1])

    @property
    def expand_vocab(self) -> str:
        """The vectors whose nearest words stand in for words outside the vocabulary
        (data_prep/expansion.py); empty where none do (and in data prepared before them)."""
        return str(self.meta.get("config", {}).get("expand_vocab", ""))

    def without_test(self) -> PreparedData:
        """What trials, pretraining and early stopping get: everything but the test split."""
        return dataclasses.replace(self, test=None)

    def texts(self, split: str, column: str = "question") -> list[str]:
        return read_texts(Path(self.path) / f"{split}.arrow", column)


def load(path: str | os.PathLike) -> PreparedData:
    path = Path(path)
    if not is_complete(path):
        raise DataError(
            f"{path} is not a complete prepared dataset (no meta.json or split files); "
            "prepare it with `python -m data_prep all ...`"
        )
    vocab = (path / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return PreparedData(
        path=str(path),
        vocab=vocab,
        labels=json.loads((path / "labels.json").read_text(encoding="utf-8")),
        meta=json.loads((path / "meta.json").read_text(encoding="utf-8")),
        **{s: read_split(path / f"{s}.arrow") for s in SPLITS},
    )


def subset_index(total: int, rows: int, seed: int) -> np.ndarray:
    """The seeded rows of a `max_train_rows` subset (all rows when 0 or more than there are)."""
    if not rows or rows >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).permutation(total)[:rows])
