"""A search on a cluster shaped like cluster.yaml (a head with no CPUs, GPU workers the
autoscaler starts from zero), on Ray's fake multinode autoscaler: tests/search/fake_cluster.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, SHARED_DATA, synthetic_questions
from tests.search.fake_cluster import cluster_env, fake_autoscaling_cluster

pytestmark = pytest.mark.e2e  # a cluster of its own and a search in subprocesses


def search(address: str, tmp_path, *keys: str) -> subprocess.CompletedProcess:
    source = tmp_path / "questions.csv"
    synthetic_questions(600).to_csv(source, index=False)
    args = [f"address={address}", "arch=dan", "num_samples=3", "max_epochs=2", "grace_period=1",
            f"source={source}", f"data_dir={tmp_path / 'data'}", "embeddings=random",
            "pretrain=false", f"storage_path={tmp_path / 'results'}", *keys]  # fmt: skip
    return subprocess.run([sys.executable, "-m", "search.run", *args], capture_output=True,
                          text=True, cwd=REPO, env=cluster_env(), timeout=400)  # fmt: skip


def test_a_search_starts_from_zero_workers_and_the_autoscaler_brings_them(tmp_path):
    with fake_autoscaling_cluster() as address:
        check = subprocess.run([sys.executable, "scripts/cluster_check.py", f"address={address}"],
                               capture_output=True, text=True, cwd=REPO, env=cluster_env(),
                               timeout=120)  # fmt: skip
        run = search(address, tmp_path)
    assert check.returncode == 0, check.stderr[-2000:]
    assert "nodes up: 1" in check.stdout and "autoscaler: node types from" in check.stdout
    assert "gpu_worker (2 CPU, 1 GPU, up to 2), at most 2 workers" in check.stdout
    assert "0.25 GPU and 1 CPU each" in check.stdout
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "on the nodes the autoscaler starts: gpu_worker (2 CPU, 1 GPU, up to 2)" in out
    assert "0.25 GPU and 1 CPU each" in out  # the share planned from the node type
    assert "node joined: 127.0.0.1 (2 CPU, 1 GPU)" in out  # the head has no CPU: on workers
    assert run.stdout.strip().splitlines()[-1].startswith("test accuracy: ensemble")
    # The console: a line per ended trial, none of Ray's scheduler internals.
    assert "trial 3/3 ended: dan_" in run.stdout and "Bracket:" not in out
    trials = pd.read_csv(tmp_path / "results" / "qatune" / "trials.csv")
    assert len(trials) == 3 and trials["epochs"].min() >= 1


@pytest.mark.slow  # 33 s on the 2-core VM: run with -m slow (bench/ and before a release)
def test_trials_that_wait_for_nodes_that_never_come_end_in_one_line(tmp_path):
    with fake_autoscaling_cluster(workers_reach_gcs=False) as address:
        run = search(address, tmp_path, "node_wait=15")
    experiment = tmp_path / "results" / "qatune"
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "trial(s) waited 15 s for a node with 1 CPU, 0.25 GPU and none came" in last, last
    assert "Resume: python -m search.run resume=" in last
    assert (experiment / "PARTIAL").is_file()


def worker_raylets(address: str) -> list[int]:
    """PIDs of the raylets of the cluster's worker nodes (the head's is the oldest)."""
    port = address.rsplit(":", 1)[1]
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (
                argv
                and argv[0].endswith(b"/raylet")
                and any(a.endswith(f":{port}".encode()) for a in argv)
            ):
                found.append(int(entry.name))
    return sorted(found)[1:]


@pytest.mark.slow  # 50 s on the 2-core VM: run with -m slow
def test_a_worker_lost_mid_search_and_every_trial_still_ends_once(tmp_path, prepared_sample):
    data_dir = Path(prepared_sample.path).parents[1]
    keys = [f"raw_dir={SHARED_DATA}", "categories=all", "valid_size=0.1", "train_size=0.6",
            f"data_dir={data_dir}", "arch=dan", "num_samples=3", "max_epochs=6",
            "trial_scheduler=none", "patience=100", "max_train_rows=4000", "embeddings=random",
            "pretrain=false", "baseline=false", "max_concurrent=2",
            f"storage_path={tmp_path / 'results'}"]  # fmt: skip
    experiment = tmp_path / "results" / "qatune"
    with fake_autoscaling_cluster() as address:
        driver = subprocess.Popen([sys.executable, "-m", "search.run", f"address={address}",
                                   *keys], cwd=REPO, env=cluster_env(), text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.time() + 300
        while not any(p.stat().st_size for p in experiment.glob("*/checkpoint_*/trainer.pt")):
            assert driver.poll() is None and time.time() < deadline, driver.stdout.read()[-3000:]
            time.sleep(0.2)
        lost = worker_raylets(address)[0]
        os.kill(lost, signal.SIGKILL)  # a node gone: its trials fail and are retried
        out, _ = driver.communicate(timeout=400)
        deadline = time.time() + 120  # then the idle workers go (idle timeout 12 s)
        while worker_raylets(address) and time.time() < deadline:
            time.sleep(2)
        assert not worker_raylets(address), "the autoscaler kept its idle workers"
    assert driver.returncode == 0, out[-3000:]
    assert (experiment / "best_model").is_dir() and not (experiment / "PARTIAL").exists()
    assert "node left:" in out
    trials = pd.read_csv(experiment / "trials.csv")
    assert len(trials) == 3 and (trials["status"] == "ok").all(), trials
    assert (trials["epochs"] == 6).all()  # none counted twice
    state = json.loads(sorted(experiment.glob("experiment_state-*.json"))[-1].read_text())
    failures = [json.loads(meta)["num_failures"] for _trial, meta in state["trial_data"]]
    assert sum(failures) >= 1, "the lost node held no trial: nothing was retried"
    for progress in experiment.glob("*_*/progress.csv"):
        epochs = pd.read_csv(progress)["epoch"].tolist()
        assert sorted(set(epochs)) == list(range(1, 7)), f"{progress.parent.name}: {epochs}"


def ray_job(dashboard: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ray.scripts.scripts", "job", args[0],
                           "--address", f"http://127.0.0.1:{dashboard}", *args[1:]],
                          capture_output=True, text=True, cwd=REPO, env=cluster_env(),
                          timeout=timeout)  # fmt: skip


def job_status(dashboard: int, job: str) -> str:
    out = ray_job(dashboard, "status", job).stdout
    found = re.search(r"Job '[^']+' (?:has )?(?:succeeded|failed|was stopped|is running|is "
                      r"currently pending)", out)  # fmt: skip
    return found[0].split("' ", 1)[1] if found else out[-300:]


def wait_for_job(dashboard: int, job: str, done: tuple[str, ...], timeout_s: float = 300) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = job_status(dashboard, job)
        if any(word in status for word in done):
            return status
        time.sleep(2)
    raise AssertionError(f"job {job}: still {status}")


@pytest.mark.slow  # about 2-3 minutes; needs ray[default] (the dashboard's job API)
def test_the_readme_job_flow_stop_then_resume_as_a_new_job(tmp_path):
    pytest.importorskip("aiohttp", reason="the job API needs ray[default] (.[cluster])")
    from tests.search.fake_cluster import free_port

    source = tmp_path / "questions.csv"
    synthetic_questions(600).to_csv(source, index=False)
    keys = ["address=auto", "arch=dan", "num_samples=4", "max_epochs=30", "patience=100",
            "trial_scheduler=none", f"source={source}", f"data_dir={tmp_path / 'data'}",
            "embeddings=random", "pretrain=false", "baseline=false",
            f"storage_path={tmp_path / 'results'}"]  # fmt: skip
    experiment = tmp_path / "results" / "qatune"
    dashboard = free_port()
    with fake_autoscaling_cluster(dashboard_port=dashboard, idle_minutes=10):
        submitted = ray_job(
            dashboard,
            "submit",
            "--no-wait",
            "--submission-id",
            "first",
            "--working-dir",
            ".",
            "--",
            "python",
            "-m",
            "search.run",
            *keys,
        )
        assert submitted.returncode == 0, submitted.stderr[-2000:]
        deadline = time.time() + 240
        while not list(experiment.glob("*_*/progress.csv")):  # a trial has reported
            assert time.time() < deadline, ray_job(dashboard, "logs", "first").stdout[-3000:]
            time.sleep(1)
        ray_job(dashboard, "stop", "first")  # SIGTERM to the driver, then Ray's SIGKILL
        wait_for_job(dashboard, "first", ("stopped", "failed", "succeeded"))
        logs = ray_job(dashboard, "logs", "first").stdout
        assert "resume: python -m search.run resume=" in logs, logs[-3000:]
        assert (experiment / "PARTIAL").is_file() and not (experiment / "best_model").exists()

        resumed = ray_job(dashboard, "submit", "--submission-id", "second", "--working-dir",
                          ".", "--", "python", "-m", "search.run", "address=auto",
                          f"resume={experiment}", timeout=400)  # fmt: skip
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
        assert "test accuracy: ensemble" in resumed.stdout
    trials = pd.read_csv(experiment / "trials.csv")
    assert len(trials) == 4 and (trials["status"] == "ok").all()
    assert not (experiment / "PARTIAL").exists() and (experiment / "best_model").is_dir()
