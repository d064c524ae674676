"""Bad input to `python -m search.run`: a one-line error before Ray or any trial starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "search.run", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["arch=dan,lstm"], "unknown arch lstm: use all or some of dan, bilstm"),
        (["num_trials=3"], "unknown key or not key=value: 'num_trials=3'; valid keys: data_dir"),
        (["max_epochs=two"], "max_epochs='two': expected int"),
        (["storage_path=results"], "storage_path=results is relative: Ray needs an absolute path"),
        (["gpus_per_trial=0.5"], "gpus_per_trial=0.5 but this machine has no GPU"),
        (["resume=true", "name=never_ran"], "holds no experiment to restore"),
        (["vectors=/no/such.vec"], "vectors=/no/such.vec: no such file"),
        (["lm_checkpoint=/no/lm.pt"], "lm_checkpoint=/no/lm.pt: no such file"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    if "gpus_per_trial=0.5" in args:
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
    if not any(a.startswith("storage_path") for a in args):
        args = [*args, f"storage_path={tmp_path}"]
    out = run_cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not list(tmp_path.glob("*/tuner.pkl"))  # nothing started


def test_unwritable_storage_path(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = run_cli(f"storage_path={blocker / 'results'}")
    assert out.returncode == 2
    assert "is not writable" in out.stderr and "choose a directory" in out.stderr


def test_help_lists_every_key_with_its_default():
    out = run_cli("--help")
    assert out.returncode == 0
    for key in ("num_samples", "grace_period", "gpus_per_trial", "storage_path", "categories"):
        assert key in out.stdout


def test_data_errors_are_reported_before_ray_starts(tmp_path, shared_data):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "single_qa_Appliances.json.gz").symlink_to(shared_data / "single_qa_Appliances.json.gz")
    out = run_cli(
        f"raw_dir={raw}", "categories=all", f"data_dir={tmp_path}", f"storage_path={tmp_path}"
    )
    assert out.returncode == 1
    assert "1 classes (found: appliances" in out.stderr and "categories=all" in out.stderr
