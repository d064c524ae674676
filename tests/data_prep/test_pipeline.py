"""Split, tokenize, write and load: round trip, zero-copy, cache keys, atomic writes."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nltk.tokenize import wordpunct_tokenize

from data_prep import load, prepare
from data_prep.config import PrepConfig
from data_prep.errors import DataError
from data_prep.expansion import nearest_known
from data_prep.split import SplitError, split
from data_prep.store import is_complete
from data_prep.tokenize import UNK
from tests.conftest import sample_config, synthetic_config


def test_round_trip_equals_retokenizing(prepared_sample):
    index = {tok: i for i, tok in enumerate(prepared_sample.vocab)}
    length = prepared_sample.max_length
    for name in ("train", "valid", "test", "unlabeled"):
        split_ = getattr(prepared_sample, name)
        texts = prepared_sample.texts(name)
        assert len(texts) == len(split_)
        rows = np.random.default_rng(0).choice(len(texts), 200, replace=False)
        tokens = {row: wordpunct_tokenize(texts[row]) for row in rows}
        # Words outside the vocabulary read as their nearest vocabulary word (expand_vocab=)
        unknown = (t for words in tokens.values() for t in words if t not in index)
        nearest = nearest_known(unknown, prepared_sample.vocab, prepared_sample.expand_vocab)
        for row in rows:
            ids = [index.get(nearest.get(t, t), UNK) for t in tokens[row]][:length]
            n = int(split_.length[row])
            assert split_.ids[row, :n].tolist() == ids
            assert (split_.ids[row, n:] == 0).all()
            assert split_.mask[row].tolist() == [1] * n + [0] * (length - n)


def test_arrays_are_memory_mapped_views(prepared_sample):
    ids = prepared_sample.train.ids
    assert ids.dtype == np.int32 and not ids.flags["OWNDATA"] and not ids.flags["WRITEABLE"]
    tensors = prepared_sample.train.tensors()
    assert tensors["ids"].data_ptr() == ids.__array_interface__["data"][0]


def test_split_is_stratified_and_exact(prepared_sample):
    meta = prepared_sample.meta
    total = sum(meta["rows"].values())
    assert meta["rows"]["valid"] == round(0.1 * total)
    assert meta["rows"]["train"] == round(0.6 * total)
    assert meta["rows"]["test"] == round(0.1 * total)
    for name in ("valid", "test", "train"):
        share = {c: n / meta["rows"][name] for c, n in meta["class_counts"][name].items()}
        overall = {c: sum(meta["class_counts"][s][c] for s in meta["rows"]) / total for c in share}
        assert all(abs(share[c] - overall[c]) < 0.002 for c in share)
    assert prepared_sample.labels == sorted(meta["class_counts"]["train"])
    assert set(np.unique(prepared_sample.valid.label)) == set(range(len(prepared_sample.labels)))


def test_split_too_small_says_so():
    rows = pd.DataFrame({"question": list("abcdefghij"), "category": ["x", "y"] * 5})
    with pytest.raises(SplitError, match="only 10 rows remain.*never shrunk silently"):
        split(rows, PrepConfig())


def test_meta_reports_lengths_and_unk(prepared_sample):
    meta = prepared_sample.meta
    stats = meta["length_stats"]
    assert stats["max_length"] == prepared_sample.max_length
    lengths = prepared_sample.train.length
    assert (lengths <= stats["max_length"]).all()
    assert 0.005 < stats["truncated_share"] < 0.02  # the 99th percentile truncates ~1%
    assert meta["unk_share"]["train"] == 0.0  # the vocabulary comes from train
    assert 0 < meta["unk_share"]["valid"] < 0.1
    assert meta["vocab_size"] == len(prepared_sample.vocab)
    assert prepared_sample.vocab[:2] == ["<pad>", "<unk>"]


def test_cache_reused_and_rebuilt_on_change(shared_data, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("single_qa_Appliances.json.gz", "single_qa_Video_Games.json.gz"):
        shutil.copy(shared_data / name, raw / name)
    config = sample_config(tmp_path, raw_dir=str(raw))
    first = prepare(config)
    stamp = (first / "meta.json").stat().st_mtime_ns
    assert prepare(config) == first
    assert (first / "meta.json").stat().st_mtime_ns == stamp
    changed_config = prepare(sample_config(tmp_path, raw_dir=str(raw), min_freq=2))
    assert changed_config != first and len(load(changed_config).vocab) < len(load(first).vocab)
    appliances = raw / "single_qa_Appliances.json.gz"
    lines = gzip.decompress(appliances.read_bytes())
    appliances.write_bytes(gzip.compress(lines[: len(lines) // 2].rsplit(b"\n", 1)[0] + b"\n"))
    changed_source = prepare(config)
    assert changed_source not in (first, changed_config)
    assert sum(load(changed_source).meta["rows"].values()) < sum(load(first).meta["rows"].values())


def test_incomplete_directory_is_never_used(tmp_path):
    config = synthetic_config(tmp_path)
    target = prepare(config)
    (target / "meta.json").unlink()  # as if an interrupted writer had left it
    assert not is_complete(target)
    with pytest.raises(DataError, match="not a complete prepared dataset"):
        load(target)
    assert prepare(config) == target and is_complete(target)
    assert not list(target.parent.glob("*.tmp-*"))


def test_own_csv_goes_through_the_same_steps(tmp_path):
    words = ["phone", "case", "dog", "leash", "tent", "stove"]
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    texts = [f"does this {words[2 * y]} fit my {words[2 * y + 1]} ?" for y in labels]
    path = tmp_path / "mine.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    data = load(
        prepare(PrepConfig(source=str(path), data_dir=str(tmp_path), valid_size=50, train_size=150))
    )
    assert data.labels == ["0", "1", "2"]
    sizes = (len(data.valid), len(data.test), len(data.train), len(data.unlabeled))
    assert sizes == (50, 50, 150, 50)  # the test split as large as valid by default
    assert data.max_length == 7


def test_test_split_is_held_out_from_every_other_split(prepared_sample):
    test = set(prepared_sample.texts("test"))
    assert len(test) == len(prepared_sample.test) > 0
    for name in ("train", "valid", "unlabeled"):
        assert not test & set(prepared_sample.texts(name)), name
    assert prepared_sample.without_test().test is None
    assert prepared_sample.without_test().train is prepared_sample.train


def _topics_csv(path, rows: int, seed: int, labels=("pets", "tents", "phones")):
    rng = np.random.default_rng(seed)
    picked = rng.integers(0, len(labels), rows)
    texts = [f"question {seed} {i} about {labels[y]} ?" for i, y in enumerate(picked)]
    pd.DataFrame({"text": texts, "label": [labels[y] for y in picked]}).to_csv(path, index=False)
    return path


def test_official_test_set_from_test_source(tmp_path):
    source = _topics_csv(tmp_path / "train.csv", 200, 0)
    official = _topics_csv(tmp_path / "test.csv", 40, 1)
    config = PrepConfig(
        source=str(source), test_source=str(official), data_dir=str(tmp_path),
        valid_size=0.2, train_size=0.8,
    )  # fmt: skip
    data = load(prepare(config))
    assert (len(data.valid), len(data.train), len(data.unlabeled)) == (40, 160, 0)
    assert data.texts("test") == pd.read_csv(official)["text"].str.lower().tolist()
    assert len(data.unlabeled.ids) == 0  # an empty split round-trips


def test_test_source_with_unknown_labels_is_refused(tmp_path):
    source = _topics_csv(tmp_path / "train.csv", 100, 0)
    official = _topics_csv(tmp_path / "test.csv", 20, 1, labels=("pets", "boats"))
    config = PrepConfig(source=str(source), test_source=str(official), data_dir=str(tmp_path),
                        valid_size=0.2, train_size=0.6)  # fmt: skip
    with pytest.raises(ValueError, match=r"test_source=.*test.csv: labels \['boats'\]"):
        prepare(config)


def test_sizes_that_are_neither_counts_nor_fractions_are_refused():
    """1.5 cannot even be built (a bad value: exit 2); a negative one fails the split."""
    from data_prep.cli import ConfigError

    with pytest.raises(ConfigError, match="valid_size=1.5: must be a whole count"):
        PrepConfig(valid_size=1.5, train_size=0.5)
    rows = pd.DataFrame({"question": list("abcdefghij") * 10, "category": ["x", "y"] * 50})
    with pytest.raises(SplitError, match="valid_size=-0.1: must be a whole count"):
        split(rows, PrepConfig(valid_size=-0.1, train_size=0.5))


def test_the_summary_says_how_many_labeled_rows_train(prepared_sample):
    from data_prep.pipeline import describe

    text = describe(Path(prepared_sample.path))
    assert f"{len(prepared_sample.train):,} train, {len(prepared_sample.valid):,} valid" in text
    assert f"{len(prepared_sample.unlabeled):,} labeled rows held out as unlabeled" in text
