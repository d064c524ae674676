"""The suite fails, not skips, where the real sample is missing, and says where it goes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.e2e
def test_a_missing_sample_fails_the_suite_with_where_it_goes(tmp_path):
    missing = tmp_path / "no_sample"
    test = "tests/data_prep/test_pipeline.py::test_cache_reused_and_rebuilt_on_change"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=REPO, env={**os.environ, "QATUNE_SAMPLE": str(missing)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert f"the real Amazon QA sample is not at {missing}" in done.stdout
    assert "1 error" in done.stdout  # a fixture that fails: the test errors, never skips
