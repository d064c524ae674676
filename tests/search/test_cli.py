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
        (["max_epochs=-1"], "max_epochs=-1: must be >= 1"),
        (["num_samples=0"], "num_samples=0: must be >= 1"),
        (["max_concurrent=-1"], "max_concurrent=-1: must be >= 0"),
        (["metric=nonsense"], "metric='nonsense': use one of valid_accuracy, valid_macro_f1"),
        (["embeddings=random,bogus"], "embeddings='bogus': use one of random, frozen"),
        (["lr=-1"], "lr=-1.0: must be > 0"),
        (["grad_clip=abc"], "grad_clip='abc': expected float"),
        (["amp=maybe"], "amp='maybe': expected a bool (true/false)"),
        (["valid_size=-2"], "valid_size=-2.0: must be >= 0"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path, capsys):
    import torch

    if "gpus_per_trial=0.5" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    if not any(a.startswith("storage_path") for a in args):
        args = [*args, f"storage_path={tmp_path}"]
    code, _out, err = main_of(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not list(tmp_path.glob("*/tuner.pkl"))  # nothing started


def main_of(args: list[str], capsys) -> tuple[int, str, str]:
    """search.run's own main in this process (a subprocess per case only adds imports)."""
    from search.run import main

    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unwritable_storage_path(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    code, _out, err = main_of([f"storage_path={blocker / 'results'}"], capsys)
    assert code == 2
    assert "is not writable" in err and "choose a directory" in err


def test_help_lists_every_key_with_its_default():
    out = run_cli("--help")  # the real command once: the module docstring and every table
    assert out.returncode == 0
    for key in ("num_samples", "grace_period", "gpus_per_trial", "storage_path", "categories"):
        assert key in out.stdout
    assert "categories=all \\\n" in out.stdout  # the docstring's line continuation


def test_data_errors_are_reported_before_ray_starts(tmp_path, shared_data, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "single_qa_Appliances.json.gz").symlink_to(shared_data / "single_qa_Appliances.json.gz")
    args = [f"raw_dir={raw}", "categories=all", f"data_dir={tmp_path}", f"storage_path={tmp_path}"]
    code, _out, err = main_of(args, capsys)
    assert code == 1
    assert "1 classes (found: appliances" in err and "categories=all" in err


def test_an_existing_experiment_is_refused_unless_resumed_or_overwritten(tmp_path, capsys):
    experiment = tmp_path / "taken"
    experiment.mkdir()
    (experiment / "qatune_config.json").write_text("{}")
    code, _out, err = main_of([f"storage_path={tmp_path}", "name=taken"], capsys)
    assert code == 2
    assert "already holds an experiment: resume=true to continue it, overwrite=true" in err
    assert (experiment / "qatune_config.json").read_text() == "{}"  # untouched


def test_a_running_experiment_is_locked(tmp_path):
    from search.config import SearchConfigError
    from search.experiment import claim

    with claim(tmp_path / "busy"):
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from pathlib import Path; "
             "from search.experiment import claim; "
             "claim(Path(sys.argv[1])).__enter__()", str(tmp_path / "busy")],
            capture_output=True, text=True, cwd=REPO,
        )  # fmt: skip
        assert child.returncode != 0 and "is being run by another search (pid" in child.stderr
    with claim(tmp_path / "busy"):  # released: free again
        pass
    assert issubclass(SearchConfigError, ValueError)


def test_training_keys_of_the_command_line_fix_every_trial(tmp_path):
    from search.run import parse_args
    from search.trainable import train_config

    _prep, search = parse_args(["grad_clip=0.5", "amp=false", "bucket=false", "patience=5",
                                f"storage_path={tmp_path}", "embeddings=random"])  # fmt: skip
    trial = train_config(search, "dan", {"lr": 0.003, "batch_size": 64}, use_gpu=False)
    assert (trial.grad_clip, trial.amp, trial.bucket, trial.patience) == (0.5, False, False, 5)
    assert (trial.lr, trial.batch_size, trial.arch, trial.epochs) == (0.003, 64, "dan", 15)
