"""A search whose driver is killed mid-way resumes with resume=true: finished trials are not
rerun, the interrupted one continues from its checkpoint, and every trial is listed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from search.publish import STAGING_DIR
from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.e2e  # whole searches (python -m pytest -m "not e2e": the fast tier)

MAX_EPOCHS, TRIALS = 3, 4


def session_processes(session_id: int) -> list[int]:
    """The processes of a session: a driver started in its own and every Ray process it
    started (they share it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == session_id:
                    found.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                pass
    return found


def kill_session(session_id: int) -> None:
    """SIGKILL the driver and every Ray process it started."""
    for pid in session_processes(session_id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def finished_trials(experiment: Path) -> dict[str, bytes]:
    done = {}
    for progress in experiment.glob("*_*/progress.csv"):
        try:
            epochs = len(pd.read_csv(progress))
        except pd.errors.EmptyDataError:  # Ray has created the file, not yet written it
            continue
        if epochs >= MAX_EPOCHS:
            done[progress.parent.name] = progress.read_bytes()
    return done


def snapshotted_second_checkpoint(experiment: Path) -> Path | None:
    """The running trial's directory once its second checkpoint is in Ray's experiment
    snapshot (the snapshot file is newer than the checkpoint), else None."""
    snapshots = [p.stat().st_mtime for p in experiment.glob("experiment_state-*.json")]
    for checkpoint in experiment.glob("*_*/checkpoint_000001"):
        trial = checkpoint.parent
        try:  # Ray removes a trial's older checkpoint (num_to_keep=1) as the next one lands
            written = checkpoint.stat().st_mtime
        except FileNotFoundError:
            continue
        if trial.name not in finished_trials(experiment) and snapshots:
            if max(snapshots) > written:
                return trial
    return None


def search_args(prepared_sample, tmp_path: Path, name: str, *keys: str) -> list[str]:
    """`python -m search.run` on the sample; `keys` last, so they win."""
    data_dir = Path(prepared_sample.path).parents[1]
    return [sys.executable, "-m", "search.run", "max_concurrent=1",
            f"raw_dir={SHARED_DATA}", "categories=all", "valid_size=0.1", "train_size=0.6",
            f"data_dir={data_dir}", f"storage_path={tmp_path}", f"name={name}", "ray_cpus=2",
            "embeddings=random", "pretrain=false", *keys]  # fmt: skip


def start_search(prepared_sample, tmp_path: Path, name: str, *keys: str):
    """The search in its own session, stderr to driver.log; with a short private Ray temp
    dir (Ray's socket paths must stay under the AF_UNIX limit)."""
    args = search_args(prepared_sample, tmp_path, name, *keys)
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
    keys = [
        "arch=dan,cnn_parallel",
        f"num_samples={TRIALS}",
        f"max_epochs={MAX_EPOCHS}",
        "trial_scheduler=none",
        "max_train_rows=3000",
        "keep_checkpoints=true",
    ]  # fmt: skip  (so the refilled ones can be checked)
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


def signal_when(driver, ready, signals: list[int], log: Path, timeout: float = 300,
                again_when=None) -> int:  # fmt: skip
    """Send `signals` (0.3 s apart) once `ready()` holds; with `again_when`, the first signal
    again once that holds too (if the driver still runs); the driver's exit code."""
    deadline = time.time() + timeout
    while not ready():
        assert driver.poll() is None, f"ended before the signal:\n{log.read_text()[-2000:]}"
        assert time.time() < deadline, "never ready"
        time.sleep(0.02)
    for signum in signals:
        driver.send_signal(signum)
        time.sleep(0.3)
    while again_when is not None and driver.poll() is None:
        if again_when():
            driver.send_signal(signals[0])
            break
        time.sleep(0.02)
    return driver.wait(timeout=120)


def assert_stopped_truthfully(log: Path, experiment: Path, signum: int, code: int) -> None:
    """Exit 128 + signal, one line saying so, the resume command last, no traceback or stack
    dump, and nothing final published."""
    assert code == 128 + signum, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text and "SIGTERM received" not in text, text[-3000:]
    lines = text.strip().splitlines()
    if lines[-1] == f"{signal.Signals(signum).name} again: stopping now":
        lines.pop()  # a second signal after the stop: the process ended at once
    assert lines[-1] == f"resume: python -m search.run resume={experiment}"
    assert lines[-2].startswith(f"stopped by {signal.Signals(signum).name}")
    assert (experiment / "PARTIAL").is_file()
    for final in ("best_model", "best_ensemble", "report.md", "final.csv"):
        assert not (experiment / final).exists(), final


def resume(experiment: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "search.run", f"resume={experiment}",
                           "ray_cpus=2"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=400)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def assert_complete(experiment: Path, trials: int) -> None:
    """Every trial listed once, no directory left from before a signal, nothing partial."""
    listed = pd.read_csv(experiment / "trials.csv")
    assert len(listed) == trials and (listed["status"] == "ok").all()
    on_disk = {p.parent.name for p in experiment.glob("*_*/params.json")}
    named = {f"{a}_{t}" for a, t in zip(listed["arch"], listed["trial"], strict=True)}
    assert on_disk == named, "orphan trial directories"
    assert not (experiment / "PARTIAL").exists() and (experiment / "best_model").is_dir()


@pytest.mark.parametrize(
    ("signals", "keys"),
    [
        # and SIGINT again once it said so, while it stops Ray (Python had restored SIG_DFL
        # there, so the second one killed the driver: exit -2, seen on a fast GPU machine)
        ([signal.SIGINT], ["num_samples=6", "max_epochs=2"]),
        # every trial already created (Tune once counted the ones it stopped as ended);
        # baseline=false where a case is not about it (its Ray task costs seconds of CPU)
        ([signal.SIGTERM], ["num_samples=2", "max_concurrent=2", "max_epochs=4", "baseline=false"]),
        # two at once
        ([signal.SIGINT, signal.SIGINT], ["num_samples=6", "max_epochs=2", "baseline=false"]),
    ],
)
def test_a_signal_while_trials_run_stops_the_search_truthfully(
    prepared_sample, tmp_path, signals, keys
):
    keys = ["arch=dan", "max_train_rows=2000", "trial_scheduler=none", *keys]
    driver, env, ray_tmp = start_search(prepared_sample, tmp_path, "stopped", *keys)
    experiment, log = tmp_path / "stopped", tmp_path / "driver.log"
    try:
        trial_started = lambda: bool(list(experiment.glob("*_*/progress.csv")))  # noqa: E731
        said_so = lambda: "resume: " in log.read_text()  # noqa: E731
        again = said_so if signals == [signal.SIGINT] else None
        code = signal_when(driver, trial_started, signals, log, again_when=again)
    finally:
        kill_session(driver.pid)
    if len(signals) == 2:  # the second one: at once, one line, no traceback
        assert code == 130 and "SIGINT again: stopping now" in log.read_text()
        assert "Traceback" not in log.read_text()
        shutil.rmtree(ray_tmp, ignore_errors=True)
        return
    assert_stopped_truthfully(log, experiment, signals[0], code)
    assert "PARTIAL" in (experiment / "leaderboard.md").read_text()
    if signals == [signal.SIGTERM]:
        resume(experiment, env)
        assert_complete(experiment, trials=2)
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_signal_before_the_trials_leaves_a_directory_the_same_command_reuses(
    prepared_sample, tmp_path
):
    """SIGINT while the data is prepared (a fresh data_dir): then the same command starts;
    SIGTERM once that one has said its result, while it stops Ray: it ends at once, quietly."""
    keys = ["arch=dan", "num_samples=1", "max_epochs=1", "grace_period=1", "max_train_rows=500",
            f"data_dir={tmp_path / 'data'}", "baseline=false"]  # fmt: skip
    driver, env, ray_tmp = start_search(prepared_sample, tmp_path, "early", *keys)
    experiment, log = tmp_path / "early", tmp_path / "driver.log"
    try:
        configured = (experiment / "qatune_config.json").is_file
        code = signal_when(driver, configured, [signal.SIGINT], log)
    finally:
        kill_session(driver.pid)
    assert_stopped_truthfully(log, experiment, signal.SIGINT, code)
    out = tmp_path / "again.out"
    again = subprocess.Popen(search_args(prepared_sample, tmp_path, "early", *keys), cwd=REPO,
                             env={**env, "PYTHONUNBUFFERED": "1"}, stdout=open(out, "w"),
                             stderr=open(log, "w"))  # fmt: skip
    said_result = lambda: "test accuracy:" in out.read_text()  # noqa: E731
    code = signal_when(again, said_result, [signal.SIGTERM], log)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    # 143: ended by the guard while Ray stopped; 0 or -SIGTERM: it had already stopped Ray
    # and returned from main (the process's own handlers are back: SIG_DFL for SIGTERM)
    assert code in (0, 143, -signal.SIGTERM), log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert out.read_text().strip().splitlines()[-1].startswith("test accuracy:")
    assert_complete(experiment, trials=1)


def test_a_signal_in_the_final_phase_publishes_nothing_and_resume_finishes(
    prepared_sample, tmp_path
):
    keys = ["arch=dan", "num_samples=2", "max_epochs=1", "grace_period=1", "baseline=false",
            "max_train_rows=500"]  # fmt: skip
    driver, env, ray_tmp = start_search(prepared_sample, tmp_path, "ending", *keys)
    experiment, log = tmp_path / "ending", tmp_path / "driver.log"
    try:
        code = signal_when(driver, (experiment / STAGING_DIR).is_dir, [signal.SIGINT], log)
    finally:
        kill_session(driver.pid)
    assert_stopped_truthfully(log, experiment, signal.SIGINT, code)
    resume(experiment, env)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert_complete(experiment, trials=2)
    assert not (experiment / STAGING_DIR).exists()
