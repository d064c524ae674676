"""Shared by the bench scripts: the offline Amazon QA sample, prepared as the tests do."""

from __future__ import annotations

import os
from pathlib import Path

from data_prep import PreparedData, PrepConfig, load, prepare
from data_prep.cli import parse_overrides

REPO = Path(__file__).resolve().parents[1]
# QATUNE_SAMPLE: where a machine without ../shared keeps the sample (bench/gpu_check.sh).
SHARED_DATA = Path(os.environ.get("QATUNE_SAMPLE", REPO.parent / "shared" / "data" / "amazon_qa"))


def sample_config(data_dir: str, raw_dir: str | Path = SHARED_DATA) -> PrepConfig:
    return parse_overrides(
        PrepConfig,
        [
            f"raw_dir={raw_dir}",
            f"data_dir={data_dir}",
            "categories=all",
            "valid_size=0.1",
            "train_size=0.6",
        ],
    )


SUITE = Path(os.environ.get("QATUNE_SUITE", REPO.parent / "shared" / "data" / "suite"))
# The development suite (../shared/data/suite/README.md) as the main command's data keys.
SUITE_SETS = {
    "sample": [f"raw_dir={SHARED_DATA}", "categories=all", "valid_size=0.1", "train_size=0.6"],
    "clinc150": [
        f"source={SUITE / 'clinc150' / 'train.csv'}",
        f"test_source={SUITE / 'clinc150' / 'test.csv'}",
        "text_column=text",
        "label_column=intent",
    ],  # fmt: skip
    "ag_news": [
        f"source={SUITE / 'ag_news' / 'news.csv'}",
        "text_column=text",
        "label_column=topic",
    ],  # fmt: skip
}


def suite_config(name: str, data_dir: str) -> PrepConfig:
    """A set of the suite (or the sample) as a PrepConfig, prepared under `data_dir`."""
    return parse_overrides(PrepConfig, [*SUITE_SETS[name], f"data_dir={data_dir}"])


def prepared_sample(data_dir: str, raw_dir: str | Path = SHARED_DATA) -> PreparedData:
    return load(prepare(sample_config(data_dir, raw_dir)))
