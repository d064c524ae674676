r"""parse -> split -> tokenize (words outside train's vocabulary read as their nearest
vocabulary word in GloVe: data_prep/expansion.py) -> write, cached by a key of the sources
and the config.

    python -m data_prep prepare raw_dir=../shared/data/amazon_qa categories=all \
        valid_size=0.1 train_size=0.6

The key is a hash of the source files' sha256 and of every config field that changes the
tensors: the same sources and config reuse the prepared directory, anything else rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import tokenize as tok
from data_prep.config import PrepConfig
from data_prep.download import sha256_of
from data_prep.errors import DataError
from data_prep.expansion import nearest_known, substitute
from data_prep.parse import find_files, parse, select_files
from data_prep.sources import read_source
from data_prep.split import split
from data_prep.store import PreparedData, is_complete, load, write_dataset

log = logging.getLogger(__name__)
FORMAT_VERSION = 2  # 2: a held-out test split


UNK_WARNING = 0.5  # a valid split mostly unknown to the vocabulary is not text (e.g. ids)


def source_files(config: PrepConfig) -> list[Path]:
    test = [Path(config.test_source).expanduser().absolute()] if config.test_source else []
    if config.source:
        return [Path(config.source).expanduser().absolute(), *test]
    return select_files(find_files(config.raw_path), config.categories) + test


def dataset_key(config: PrepConfig) -> tuple[str, dict[str, str]]:
    checksums = {p.name: sha256_of(p) for p in source_files(config)}
    blob = json.dumps(
        {"format": FORMAT_VERSION, "sources": checksums, "config": config.key_fields()},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16], checksums


def load_rows(config: PrepConfig) -> pd.DataFrame:
    if config.source:
        return read_source(config)
    rows, _report = parse(config)
    return rows


def load_test_rows(config: PrepConfig, known: set[str]) -> pd.DataFrame | None:
    """The official test set of test_source=, whose labels must all be known classes."""
    if not config.test_source:
        return None
    rows = read_source(config, config.test_source)
    unknown = sorted(set(rows["category"]) - known)
    if unknown:
        raise DataError(
            f"test_source={config.test_source}: labels {unknown[:10]} are not in source= "
            f"(classes: {sorted(known)[:20]}); a model cannot predict a class it never saw"
        )
    return rows


def _encode_split(rows: pd.DataFrame, tokens: list, vocab: list, max_len: int, labels: dict):
    encoded = tok.encode(tokens, vocab, max_len)
    columns = {
        "ids": encoded.ids,
        "mask": encoded.mask,
        "length": encoded.length,
        "label": rows["category"].map(labels).to_numpy(np.int32),
        "question": rows["question"].tolist(),
        "answer": rows["answer"].tolist(),
    }
    return columns, encoded


def ensure_raw_files(config: PrepConfig) -> None:
    """Download the original files when the raw directory holds none of them (a first run);
    a directory with some files is taken as the user's choice and left alone."""
    if config.source or any(config.raw_path.glob("*_*.json.gz")):
        return
    if config.raw_dir and not config.raw_path.is_dir():  # a typo must not start a download
        raise DataError(
            f"raw_dir={config.raw_dir}: no such directory; check the path, or leave raw_dir "
            "empty to download the original files into <data_dir>/raw"
        )
    from data_prep.download import download

    download(config)


def prepared_data(config: PrepConfig) -> PreparedData:
    """What every command starts with: download when needed, prepare (cached), open."""
    config.check_paths()
    ensure_raw_files(config)
    return load(prepare(config))


def warn_repeated_questions(parts: dict[str, pd.DataFrame], config: PrepConfig) -> None:
    """Held-out rows whose question repeats a training question word for word: a score on
    them says how well train was memorised, not how new questions fare (a test_source= that
    repeated the training rows once scored 0.9967 without a word)."""
    seen = set(parts["train"]["question"])
    for name in ("valid", "test"):
        if name not in parts or not len(parts[name]):
            continue
        repeated = int(parts[name]["question"].isin(seen).sum())
        if repeated and repeated >= 0.01 * len(parts[name]):
            where = f" ({config.test_source})" if name == "test" and config.test_source else ""
            log.warning(
                "%d of %d %s rows%s repeat a training question exactly (%.0f%%): their scores "
                "overstate how new questions fare; remove the duplicates from the files",
                repeated, len(parts[name]), name, where, 100 * repeated / len(parts[name]),
            )  # fmt: skip


def prepare(config: PrepConfig) -> Path:
    """The prepared dataset directory for this config, built unless already present."""
    config.check_paths()
    key, checksums = dataset_key(config)
    target = config.data_path / "prepared" / key
    if is_complete(target):
        log.info("reusing prepared dataset %s", target)
        return target
    start = time.perf_counter()
    rows = load_rows(config)
    parts = split(rows, config, load_test_rows(config, set(rows["category"])))
    warn_repeated_questions(parts, config)
    tokens = {name: tok.tokenize_all(frame["question"], name) for name, frame in parts.items()}
    vocab_sources = [tokens["train"]] + (
        [tokens["unlabeled"]] if config.vocab_from == "train+unlabeled" else []
    )
    vocab = tok.build_vocab(
        (t for source in vocab_sources for t in source), config.min_freq, config.max_size
    )
    # The language model also reads the unlabeled answers: their own ids, same vocabulary.
    answer_tokens = tok.tokenize_all(parts["unlabeled"]["answer"], "answers")
    everything = (t for source in [*tokens.values(), answer_tokens] for ts in source for t in ts)
    substitutes = nearest_known(everything, vocab, config.expand_vocab)
    tokens = {name: substitute(source, substitutes) for name, source in tokens.items()}
    answer_tokens = substitute(answer_tokens, substitutes)
    train_lengths = np.array([len(t) for t in tokens["train"]])
    max_len = tok.choose_max_length(train_lengths, config.max_length, config.length_percentile)
    labels = sorted(set().union(*(set(frame["category"]) for frame in parts.values())))
    label_index = {name: i for i, name in enumerate(labels)}
    columns, unk = {}, {}
    for name, frame in parts.items():
        columns[name], encoded = _encode_split(frame, tokens[name], vocab, max_len, label_index)
        unk[name] = encoded.unk_tokens / max(1, encoded.total_tokens)
    if unk.get("valid", 0) > UNK_WARNING:
        column = f"text_column={config.text_column}" if config.source else "the questions"
        log.warning(
            "%.0f%% of the valid split's tokens are not in the vocabulary built from train: "
            "%s may hold ids or numbers rather than text; check text_column=",
            100 * unk["valid"], column,
        )  # fmt: skip
    answer_len = np.array([len(t) for t in answer_tokens] or [1])
    answer_max = tok.choose_max_length(answer_len, 0, config.length_percentile)
    answers = tok.encode(answer_tokens, vocab, answer_max)
    columns["unlabeled"]["answer_ids"] = answers.ids
    columns["unlabeled"]["answer_length"] = answers.length
    meta = {
        "key": key,
        "format": FORMAT_VERSION,
        "config": config.key_fields(),
        "sources": checksums,
        "rows": {name: len(frame) for name, frame in parts.items()},
        "class_counts": {
            name: frame["category"].value_counts().sort_index().to_dict()
            for name, frame in parts.items()
        },
        "vocab_size": len(vocab),
        "length_stats": tok.length_stats(train_lengths, max_len),
        "answer_max_length": answer_max,
        "unk_share": unk,
        "substituted_words": len(substitutes),
        "prep_seconds": time.perf_counter() - start,
    }
    write_dataset(target, columns, vocab, labels, meta)
    log.info("prepared %s in %.1fs: %s", target, meta["prep_seconds"], meta["rows"])
    return target


def describe(path: Path) -> str:
    meta = json.loads((path / "meta.json").read_text())
    stats = meta["length_stats"]
    rows = meta["rows"]
    spare = rows.get("unlabeled", 0)
    held = f"; {spare:,} labeled rows held out as unlabeled text (train_size=)" if spare else ""
    return (
        f"prepared dataset {path}\n"
        f"  rows: {rows.get('train', 0):,} train, {rows.get('valid', 0):,} valid, "
        f"{rows.get('test', 0):,} test{held}\n"
        f"  classes (train): {meta['class_counts']['train']}\n"
        f"  vocabulary: {meta['vocab_size']} tokens; UNK share of tokens: "
        + ", ".join(f"{k} {v:.2%}" for k, v in meta["unk_share"].items())
        + (
            f" (after {meta['substituted_words']:,} words outside it were read as their "
            f"nearest word in {meta['config']['expand_vocab']})"
            if meta.get("substituted_words")
            else ""
        )  # fmt: skip
        + f"\n  train lengths: mean {stats['mean']:.1f}, p50 {stats['p50']:.0f}, "
        f"p95 {stats['p95']:.0f}, max {stats['max']}; max_length {stats['max_length']} "
        f"truncates {stats['truncated_share']:.1%}"
    )
