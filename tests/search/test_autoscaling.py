"""A search on a cluster shaped like cluster.yaml (a head with no CPUs, GPU workers the
autoscaler starts from zero), on Ray's fake multinode autoscaler: tests/search/fake_cluster.py."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from tests.conftest import REPO, synthetic_questions
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
        run = search(address, tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "on the nodes the autoscaler starts: gpu_worker (2 CPU, 1 GPU, up to 2)" in out
    assert "0.25 GPU and 1 CPU each" in out  # the share planned from the node type
    assert "node joined: 127.0.0.1 (2 CPU, 1 GPU)" in out  # the head has no CPU: on workers
    assert run.stdout.strip().splitlines()[-1].startswith("test accuracy: ensemble")
    trials = pd.read_csv(tmp_path / "results" / "qatune" / "trials.csv")
    assert len(trials) == 3 and trials["epochs"].min() >= 1


def test_trials_that_wait_for_nodes_that_never_come_end_in_one_line(tmp_path):
    with fake_autoscaling_cluster(workers_reach_gcs=False) as address:
        run = search(address, tmp_path, "node_wait=15")
    experiment = tmp_path / "results" / "qatune"
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "trial(s) waited 15 s for a node with 1 CPU, 0.25 GPU and none came" in last, last
    assert "Resume: python -m search.run resume=" in last
    assert (experiment / "PARTIAL").is_file()
