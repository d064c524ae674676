"""Shared fixtures: the device the tests run on, the real Amazon QA sample (read in place)
and a prepared copy of it.

The device is chosen here and only here: `--device=cuda` (or QATUNE_TEST_DEVICE=cuda);
the CPU by default, as CI needs. Tests marked `gpu` skip without CUDA.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# QATUNE_SAMPLE: where a machine without ../shared keeps the sample (bench/gpu_check.sh).
SHARED_DATA = Path(os.environ.get("QATUNE_SAMPLE", REPO.parent / "shared" / "data" / "amazon_qa"))


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--device",
        default=os.environ.get("QATUNE_TEST_DEVICE", "cpu"),
        help="the device every test trains on: cpu (default) or cuda (QATUNE_TEST_DEVICE)",
    )


def pytest_configure(config) -> None:
    os.environ["QATUNE_TEST_DEVICE"] = config.getoption("--device")  # subprocesses too


def pytest_collection_modifyitems(config, items) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


class PlantedPickle:
    """Unpickling this writes `marker`: what a hostile pickle planted in a model or
    experiment directory would do (tests check that the marker never appears)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def test_device() -> str:
    """The device the tests train on (`--device`); usable outside fixtures."""
    return os.environ.get("QATUNE_TEST_DEVICE", "cpu")


test_device.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def device() -> str:
    return test_device()


def synthetic_questions(rows: int = 120):
    """Made-up labeled questions, three topics: the fast tier's data, for tests of mechanics
    (sources, caching, damage) that real questions would only make slower."""
    import numpy as np
    import pandas as pd

    labels = np.array(["pets", "tents", "phones"])[np.arange(rows) % 3]
    return pd.DataFrame({"text": [f"question {i} about {y}" for i, y in enumerate(labels)],
                         "label": labels})  # fmt: skip


def synthetic_config(data_dir: Path, rows: int = 300, **overrides):
    """A prepared-data config of `synthetic_questions` written as a CSV under `data_dir`."""
    from data_prep import PrepConfig

    path = Path(data_dir) / f"synthetic_{rows}.csv"
    if not path.is_file():
        synthetic_questions(rows).to_csv(path, index=False)
    return PrepConfig(source=str(path), data_dir=str(data_dir), **overrides)


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
    # A failure, not a skip: a suite that skips its real-data tests looks green and tests
    # nothing (CI included).
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"the real Amazon QA sample is not at {SHARED_DATA}: put its four .json.gz files "
            "there (../shared/data/amazon_qa beside the checkout) or set QATUNE_SAMPLE=<dir>",
            pytrace=False,
        )
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
    config = LMConfig(embedding_dim=32, hidden=32, layers=2, epochs=1, max_rows=600, out=str(out),
                      device=test_device())  # fmt: skip
    pretrain(prepared_sample, config)
    return str(out)


def first_rows(split, rows: int):
    """The first `rows` items of a prepared split as one untrimmed batch (ids, mask, label),
    built the way the trainer builds batches, on the tests' device."""
    import torch

    from qamodels.batches import DeviceSplit

    device_split = DeviceSplit.from_split(split, test_device())
    return device_split.batch(torch.arange(rows), device_split.width(torch.arange(rows), False))
