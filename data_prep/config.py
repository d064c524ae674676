"""The data preparation config: plain values, overridable as `key=value` on every command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from data_prep.catalog import BASE_URL, DEFAULT_CATEGORIES

# Fields that only say where things are or how to fetch them: they do not change the prepared
# tensors, so they stay out of the cache key.
_LOCATION_FIELDS = {"data_dir", "raw_dir", "base_url", "retries", "backoff", "timeout", "strict"}


@dataclass(frozen=True)
class PrepConfig:
    data_dir: str = "~/.qatune/data"  # prepared datasets land in <data_dir>/prepared/<key>
    raw_dir: str = ""  # the original .json.gz files; default <data_dir>/raw
    base_url: str = BASE_URL
    retries: int = 3
    backoff: float = 1.0  # seconds before the first retry, doubled each time
    timeout: float = 30.0
    # Your own data instead of Amazon QA: a .csv, .jsonl or .parquet file.
    source: str = ""
    text_column: str = "text"
    label_column: str = "label"
    answer_column: str = ""  # optional second text kept for language-model pretraining
    # Parsing (Amazon QA): "all", or category names such as "baby,office products".
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    min_chars: int = 5
    max_chars: int = 512
    strict: bool = False  # a malformed line is an error instead of being counted and skipped
    # Split: counts, or fractions of all rows when below 1; the rest is unlabeled.
    valid_size: float = 50_000
    train_size: float = 250_000
    # The held-out test split: no trial, scheduler, searcher or early stopping sees it; only
    # the final scores of the chosen models. A count or a fraction, like the sizes above.
    test_size: float = 0.1
    # A file with an official test set instead (same columns as source=); test_size is unused.
    test_source: str = ""
    split_seed: int = 0
    # Tokenization and vocabulary.
    vocab_from: str = "train"  # or "train+unlabeled"
    min_freq: int = 1
    max_size: int = 100_000  # most frequent tokens kept, PAD and UNK not counted
    max_length: int = 0  # 0: the length_percentile of train lengths
    length_percentile: float = 95.0

    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir)).absolute()

    @property
    def raw_path(self) -> Path:
        if self.raw_dir:
            return Path(os.path.expanduser(self.raw_dir)).absolute()
        return self.data_path / "raw"

    def key_fields(self) -> dict[str, object]:
        """The fields that define the prepared tensors (part of the cache key)."""
        from data_prep.cli import as_dict

        return {k: v for k, v in as_dict(self).items() if k not in _LOCATION_FIELDS}
