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


def prepared_sample(data_dir: str, raw_dir: str | Path = SHARED_DATA) -> PreparedData:
    return load(prepare(sample_config(data_dir, raw_dir)))
