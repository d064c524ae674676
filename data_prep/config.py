"""The data preparation config: plain values, overridable as `key=value` on every command."""

from __future__ import annotations

import codecs
import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from data_prep.catalog import BASE_URL, DEFAULT_CATEGORIES
from data_prep.cli import arg

# Fields that only say where things are or how to fetch them: they do not change the prepared
# tensors, so they stay out of the cache key.
_LOCATION_FIELDS = {"data_dir", "raw_dir", "base_url", "retries", "backoff", "timeout"}


# Split sizes of 0 mean these: counts for the full Amazon QA data, fractions for your own
# file, where train_size=0 takes every row not in valid or test (a user's labels all train;
# an unlabeled share only when train_size= asks for less).
AMAZON_SIZES = {"valid_size": 50_000, "train_size": 250_000}
SOURCE_SIZES = {"valid_size": 0.1, "train_size": 0.8}
SIZE_HELP = (
    "; a count, or a fraction of all rows when below 1; "
    "0: {amazon:,} for Amazon QA, {own} with source="
)
SOURCE_HELP = {"valid_size": "0.1 of the rows", "train_size": "every row not in valid or test"}


def _size(name: str, what: str) -> float:
    help_ = what + SIZE_HELP.format(amazon=AMAZON_SIZES[name], own=SOURCE_HELP[name])
    return arg(0.0, help_, min=0)


@dataclass(frozen=True)
class PrepConfig:
    data_dir: str = arg("~/.qatune/data", "prepared datasets land in <data_dir>/prepared/<key>")
    raw_dir: str = arg(
        "", "the original .json.gz files (default <data_dir>/raw); must exist when given"
    )
    base_url: str = arg(BASE_URL, "where the 38 original files are downloaded from")
    retries: int = arg(3, "download attempts per file", min=1)
    backoff: float = arg(1.0, "seconds before the first download retry, doubled each time", min=0)
    timeout: float = arg(30.0, "seconds a download may wait for the server", above=0)
    source: str = arg(
        "", "your own labeled data instead of Amazon QA: a .csv, .jsonl or .parquet file"
    )
    text_column: str = arg("text", "source= column holding the question text")
    label_column: str = arg("label", "source= column holding the class")
    answer_column: str = arg("", "optional source= column of second text, kept for LM pretraining")
    encoding: str = arg("utf-8", "text encoding of a source= CSV/JSONL file (e.g. latin-1)")
    categories: tuple[str, ...] = arg(
        DEFAULT_CATEGORIES, 'Amazon QA categories: all, or names such as "baby,office products"'
    )
    min_chars: int = arg(5, "shortest question and answer kept (characters)", min=0)
    max_chars: int = arg(512, "longest question and answer kept (characters)", min=1)
    strict: bool = arg(False, "a malformed line is an error instead of being counted and skipped")
    valid_size: float = _size("valid_size", "rows for model choice and early stopping")
    test_size: float = arg(
        0.0, "held-out rows only the final scores read; a count or fraction; 0: as valid_size",
        min=0,
    )  # fmt: skip
    train_size: float = _size("train_size", "labeled rows to train on (the rest is unlabeled)")
    test_source: str = arg(
        "", "a file with an official test set (same columns as source=); replaces test_size"
    )
    split_seed: int = arg(0, "seed of the stratified split", min=0)
    vocab_from: str = arg(
        "train", "which text builds the vocabulary", choices=("train", "train+unlabeled")
    )
    expand_vocab: str = arg(
        "glove-6b-50d",
        "words outside the vocabulary encoded as the vocabulary word nearest in these "
        "pretrained vectors (data_prep/expansion.py; a .vec/.txt path or glove-6b-50d); "
        "empty: they stay UNK",
    )
    min_freq: int = arg(1, "fewest occurrences for a token to enter the vocabulary", min=1)
    max_size: int = arg(100_000, "most frequent tokens kept (PAD and UNK not counted)", min=1)
    max_length: int = arg(
        0, "tokens kept per question; 0: the length_percentile of train lengths", min=0
    )
    length_percentile: float = arg(
        99.0, "percentile of train lengths used when max_length=0", min=1, max=100
    )

    def __post_init__(self) -> None:
        """Checks that need no file: an invalid config cannot be built (one-line errors)."""
        from data_prep.cli import ConfigError

        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise ConfigError(
                f"encoding={self.encoding}: unknown encoding; use e.g. utf-8, latin-1 or cp1252"
            ) from None
        if self.min_chars > self.max_chars:
            raise ConfigError(
                f"min_chars={self.min_chars} is above max_chars={self.max_chars}: no question "
                "would be kept; lower min_chars or raise max_chars"
            )
        default = type(self).__dataclass_fields__
        lengths = [k for k in ("min_chars", "max_chars") if getattr(self, k) != default[k].default]
        if self.source and lengths:
            raise ConfigError(
                f"{lengths[0]}={getattr(self, lengths[0])}: the length filters apply to the "
                "Amazon files only; with source= your file's rows are all kept (filter the file)"
            )
        for name in ("valid_size", "test_size", "train_size"):
            value = getattr(self, name)
            if value >= 1 and value != int(value):
                raise ConfigError(
                    f"{name}={value:g}: must be a whole count >= 1 or a fraction in (0, 1)"
                )

    def check_paths(self) -> None:
        """Before any work: the sources are files, and data_dir is a directory that can be
        written (one-line errors naming the key)."""
        from data_prep.cli import ConfigError

        for key in ("source", "test_source"):
            value = getattr(self, key)
            path = Path(os.path.expanduser(value)) if value else None
            if path is not None and not path.is_file():
                what = "a directory" if path.is_dir() else "no such file"
                raise ConfigError(
                    f"{key}={value}: {what}; give a .csv, .jsonl or .parquet file of labeled "
                    "questions"
                )
        self.check_expansion_vectors()
        try:
            (self.data_path / "prepared").mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.data_path / "prepared").close()
        except OSError as err:
            raise ConfigError(
                f"data_dir={self.data_dir}: not a writable directory ({err.strerror}); choose "
                "a directory you can write to"
            ) from None

    def check_expansion_vectors(self) -> None:
        """expand_vocab= names vectors that are there (a one-line error naming the key)."""
        from data_prep.cli import ConfigError
        from data_prep.embeddings import vectors_missing

        if self.expand_vocab and (why := vectors_missing(self.expand_vocab)):
            raise ConfigError(
                f"expand_vocab={self.expand_vocab}: {why}; or expand_vocab= (empty) to leave "
                "unknown words UNK"
            )

    def size(self, name: str) -> float:
        """valid_size / test_size / train_size with 0 (automatic) resolved: counts for the
        Amazon data, fractions for source=; the test split as large as valid."""
        value = getattr(self, name)
        if value or name == "test_size":
            return value or self.size("valid_size")
        return (SOURCE_SIZES if self.source else AMAZON_SIZES)[name]

    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir)).absolute()

    @property
    def raw_path(self) -> Path:
        if self.raw_dir:
            return Path(os.path.expanduser(self.raw_dir)).absolute()
        return self.data_path / "raw"

    def with_absolute_paths(self) -> PrepConfig:
        """The same data from any working directory (a resumed search reads its saved copy)."""
        paths = {k: str(Path(os.path.expanduser(v)).absolute())
                 for k in ("raw_dir", "data_dir", "source", "test_source")
                 if (v := getattr(self, k))}  # fmt: skip
        from data_prep.embeddings import GLOVE_PACKAGE

        if self.expand_vocab and self.expand_vocab != GLOVE_PACKAGE:
            paths["expand_vocab"] = str(Path(os.path.expanduser(self.expand_vocab)).absolute())
        return dataclasses.replace(self, **paths)

    def key_fields(self) -> dict[str, object]:
        """The fields that define the prepared tensors (part of the cache key)."""
        from data_prep.cli import as_dict

        return {k: v for k, v in as_dict(self).items() if k not in _LOCATION_FIELDS}
