"""Shared fixtures: the real Amazon QA sample (read in place) and a prepared copy of it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "amazon_qa"


def sample_config(data_dir: Path, **overrides):
    from data_prep import PrepConfig

    values = dict(
        raw_dir=str(SHARED_DATA),
        data_dir=str(data_dir),
        categories=("all",),
        valid_size=0.1,
        train_size=0.6,
    )
    values.update(overrides)
    return PrepConfig(**values)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Amazon QA sample not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prepared_sample(shared_data, tmp_path_factory):
    """The whole shared sample (categories=all), prepared once per test session."""
    from data_prep import load, prepare

    return load(prepare(sample_config(tmp_path_factory.mktemp("prepared"))))


@pytest.fixture(scope="session")
def lm_checkpoint(prepared_sample, tmp_path_factory) -> str:
    """A small bidirectional LM pretrained on the sample's unlabeled text (1 epoch)."""
    from qamodels.lm import LMConfig, pretrain

    out = tmp_path_factory.mktemp("lm") / "lm.pt"
    config = LMConfig(embedding_dim=32, hidden=32, layers=2, epochs=1, max_rows=600, out=str(out))
    pretrain(prepared_sample, config)
    return str(out)


def first_rows(split, rows: int):
    """The first `rows` items of a prepared split as one untrimmed batch (ids, mask, label),
    built the way the trainer builds batches."""
    import torch

    from qamodels.batches import DeviceSplit

    return DeviceSplit.from_split(split, "cpu").batch(torch.arange(rows), trim=False)
