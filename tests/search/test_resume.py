"""A search whose driver is killed mid-way resumes with resume=true: finished trials are not
rerun, the interrupted one continues from its checkpoint, and every trial is listed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from tests.conftest import REPO, SHARED_DATA

MAX_EPOCHS, TRIALS = 3, 4


def kill_session(session_id: int) -> None:
    """SIGKILL the driver and every Ray process it started (they share its session)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session_id:
                    os.kill(int(entry.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def finished_trials(experiment: Path) -> dict[str, bytes]:
    done = {}
    for progress in experiment.glob("*_*/progress.csv"):
        if len(pd.read_csv(progress)) >= MAX_EPOCHS:
            done[progress.parent.name] = progress.read_bytes()
    return done


def snapshotted_second_checkpoint(experiment: Path) -> Path | None:
    """The running trial's directory once its second checkpoint is in Ray's experiment
    snapshot (the snapshot file is newer than the checkpoint), else None."""
    snapshots = [p.stat().st_mtime for p in experiment.glob("experiment_state-*.json")]
    for checkpoint in experiment.glob("*_*/checkpoint_000001"):
        trial = checkpoint.parent
        if trial.name not in finished_trials(experiment) and snapshots:
            if max(snapshots) > checkpoint.stat().st_mtime:
                return trial
    return None


def start_search(prepared_sample, tmp_path: Path, name: str, *keys: str):
    """`python -m search.run` on the sample in its own session, stderr to driver.log; with
    a short private Ray temp dir (Ray's socket paths must stay under the AF_UNIX limit)."""
    data_dir = Path(prepared_sample.path).parents[1]
    args = [sys.executable, "-m", "search.run", *keys, "max_concurrent=1",
            f"raw_dir={SHARED_DATA}", "categories=all", "valid_size=0.1", "train_size=0.6",
            f"data_dir={data_dir}", f"storage_path={tmp_path}", f"name={name}", "ray_cpus=2",
            "embeddings=random", "pretrain=false"]  # fmt: skip
    ray_tmp = tempfile.mkdtemp(prefix="qr", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    driver = subprocess.Popen(
        args,
        cwd=REPO,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "driver.log", "w"),
    )
    return driver, env, ray_tmp


def test_killed_search_resumes(prepared_sample, tmp_path):
    keys = ["arch=dan,cnn_parallel", f"num_samples={TRIALS}", f"max_epochs={MAX_EPOCHS}",
            "trial_scheduler=none", "max_train_rows=3000"]  # fmt: skip
    driver, env, ray_tmp = start_search(prepared_sample, tmp_path, "resumable", *keys)
    experiment = tmp_path / "resumable"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            log = (tmp_path / "driver.log").read_text()[-2000:]
            assert driver.poll() is None, f"the search ended before the interruption:\n{log}"
            running = snapshotted_second_checkpoint(experiment)
            if len(finished_trials(experiment)) >= 2 and running:
                break
            time.sleep(0.05)
    finally:
        kill_session(driver.pid)
        driver.wait()
    before = finished_trials(experiment)
    assert 2 <= len(before) < TRIALS
    # What Ray does when the third checkpoint arrives (num_to_keep=2), before its next
    # snapshot: delete the first. The snapshot still lists it; the resume must not stumble.
    shutil.rmtree(running / "checkpoint_000000", ignore_errors=True)

    # resume=<experiment dir> alone: the data config comes from the experiment.
    resumed = subprocess.run(
        [sys.executable, "-m", "search.run", f"resume={experiment}", "ray_cpus=2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # A SIGKILLed driver must leave nothing Ray has to complain about on restore.
    assert "Error handling checkpoint" not in resumed.stderr + resumed.stdout, resumed.stderr[
        -3000:
    ]
    assert "Traceback" not in resumed.stderr + resumed.stdout, resumed.stderr[-3000:]
    refilled = [p for p in experiment.glob("*/checkpoint_*") if not any(p.iterdir())]
    assert not refilled, "the refilled checkpoint directories must be gone after the search"
    after = finished_trials(experiment)
    for name, content in before.items():
        assert after[name] == content, f"{name} was rerun"
    trials = pd.read_csv(experiment / "trials.csv")
    assert len(trials) == TRIALS and (trials["status"] == "ok").all()
    assert (trials["epochs"] == MAX_EPOCHS).all()
    for progress in experiment.glob("*_*/progress.csv"):
        epochs = pd.read_csv(progress)["epoch"].tolist()
        assert epochs == list(range(1, MAX_EPOCHS + 1)), f"{progress.parent.name}: {epochs}"


def test_interrupted_search_says_so_and_writes_nothing_final(prepared_sample, tmp_path):
    """Ctrl-C: a non-zero exit, a message that says how to resume, a PARTIAL leaderboard."""
    keys = ["arch=dan", "num_samples=6", "max_epochs=2", "max_train_rows=2000"]
    driver, _env, ray_tmp = start_search(prepared_sample, tmp_path, "stopped", *keys)
    experiment = tmp_path / "stopped"
    log = tmp_path / "driver.log"
    try:
        deadline = time.time() + 300
        while not list(experiment.glob("*_*/progress.csv")) and time.time() < deadline:
            assert driver.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        driver.send_signal(signal.SIGINT)
        code = driver.wait(timeout=120)
    finally:
        kill_session(driver.pid)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert code != 0
    last = log.read_text().strip().splitlines()[-1]
    assert "search interrupted after" in last and f"resume={experiment}" in last
    assert "PARTIAL" in (experiment / "leaderboard.md").read_text()
    assert (experiment / "PARTIAL").is_file() and not (experiment / "best_model").exists()
