"""A real two-node Ray cluster on one machine: two network namespaces joined by a veth pair,
so that head and worker are two hosts with their own addresses. Needs root and iproute2;
where namespaces are unavailable the tests skip and say why."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, SHARED_DATA

SUFFIX = os.getpid() % 10000
SUBNET = f"10.{77 + SUFFIX % 100}.0"
HEAD_IP, WORKER_IP, PORT = f"{SUBNET}.1", f"{SUBNET}.2", 6379


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check)


class TwoNodes:
    """Head in one namespace, worker in another; every process is found and killed through
    its namespace, so nothing is left behind (and no other Ray on the machine is touched)."""

    def __init__(self, auth_mode: str, private_dir: Path | None = None):
        self.head, self.worker = f"qa{SUFFIX}h", f"qa{SUFFIX}w"
        self.tmp = Path(tempfile.mkdtemp(prefix="qc", dir="/tmp"))  # short: socket paths
        self.env = {**os.environ, "RAY_AUTH_MODE": auth_mode}
        if auth_mode == "token":
            self.env["RAY_AUTH_TOKEN"] = secrets.token_hex(16)
        self.private_dir = private_dir

    def start(self) -> None:
        sh("ip", "netns", "add", self.head)
        sh("ip", "netns", "add", self.worker)
        sh("ip", "link", "add", f"{self.head}v", "type", "veth", "peer", "name", f"{self.worker}v")
        for ns, ip in ((self.head, HEAD_IP), (self.worker, WORKER_IP)):
            sh("ip", "link", "set", f"{ns}v", "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", f"{ns}v")
            sh("ip", "-n", ns, "link", "set", f"{ns}v", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        common = ["--include-dashboard=false", "--disable-usage-stats"]
        self.in_ns(
            self.head,
            "ray",
            "start",
            "--head",
            f"--node-ip-address={HEAD_IP}",
            f"--port={PORT}",
            "--num-cpus=1",
            f"--temp-dir={self.tmp}/h",
            *common,
        )
        worker = [
            "ray",
            "start",
            f"--address={HEAD_IP}:{PORT}",
            f"--node-ip-address={WORKER_IP}",
            "--num-cpus=2",
            f"--temp-dir={self.tmp}/w",
            "--disable-usage-stats",
        ]
        if self.private_dir is not None:  # the worker sees its own empty dir there
            script = f"mount -t tmpfs none {self.private_dir} && exec {' '.join(worker)}"
            worker = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        self.in_ns(self.worker, *worker)
        deadline = time.time() + 60
        while self.alive_nodes() < 2:
            assert time.time() < deadline, "the worker never joined the head"
            time.sleep(1)

    def in_ns(self, ns: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=kwargs.pop("check", True),
            **kwargs,
        )

    def alive_nodes(self) -> int:
        code = "import ray; ray.init(address='auto'); print(sum(n['Alive'] for n in ray.nodes()))"
        env_address = {"RAY_ADDRESS": f"{HEAD_IP}:{PORT}"}
        out = subprocess.run(
            ["ip", "netns", "exec", self.head, sys.executable, "-c", code],
            env={**self.env, **env_address},
            capture_output=True,
            text=True,
        )
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else 0

    def search(self, storage: Path, *extra: str) -> subprocess.Popen:
        args = [
            "ip",
            "netns",
            "exec",
            self.head,
            sys.executable,
            "-m",
            "search.run",
            f"address={HEAD_IP}:{PORT}",
            f"storage_path={storage}",
            f"raw_dir={SHARED_DATA}",
            "categories=all",
            "valid_size=0.1",
            "train_size=0.6",
            f"data_dir={self.tmp}/data",
            "embeddings=random",
            *extra,
        ]
        log = open(self.tmp / "driver.log", "w")  # noqa: SIM115 (closed with the process)
        return subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self, ns: str) -> None:
        pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        for ns in (self.worker, self.head):
            self.kill(ns)
            sh("ip", "netns", "del", ns, check=False)
        if self.private_dir is None:
            shutil.rmtree(self.tmp, ignore_errors=True)


def two_nodes(auth_mode: str, private_dir: Path | None = None):
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("two-node test needs root and iproute2 for network namespaces")
    probe = sh("ip", "netns", "add", f"qa{SUFFIX}p", check=False)
    if probe.returncode != 0:
        pytest.skip(f"network namespaces unavailable here: {probe.stderr.strip()}")
    sh("ip", "netns", "del", f"qa{SUFFIX}p")
    cluster = TwoNodes(auth_mode, private_dir)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def progress(storage: Path) -> dict[str, pd.DataFrame]:
    return {p.parent.name: pd.read_csv(p) for p in storage.glob("*/run_trial_*/progress.csv")}


def test_trials_spread_over_nodes_and_survive_a_dead_worker(tmp_path):
    cluster = two_nodes("token")
    try:
        driver = cluster.search(
            tmp_path,
            "arch=dan",
            "num_samples=4",
            "max_concurrent=3",
            "max_epochs=4",
            "max_train_rows=3000",
            "scheduler=none",
            "name=spread",
        )
        deadline = time.time() + 240
        while not any((t["node_ip"] == WORKER_IP).any() for t in progress(tmp_path).values()):
            assert driver.poll() is None, (cluster.tmp / "driver.log").read_text()[-3000:]
            assert time.time() < deadline, "no trial reported from the worker node"
            time.sleep(0.3)
        cluster.kill(cluster.worker)  # the worker node dies mid-search
        assert driver.wait(timeout=400) == 0, (cluster.tmp / "driver.log").read_text()[-3000:]
    finally:
        cluster.stop()
    trials = pd.read_csv(tmp_path / "spread" / "trials.csv")
    assert len(trials) == 4 and (trials["status"] == "ok").all() and (trials["epochs"] == 4).all()
    histories = progress(tmp_path).values()
    nodes = {ip for t in histories for ip in t["node_ip"]}
    assert nodes == {HEAD_IP, WORKER_IP}
    moved = [t for t in histories if t["node_ip"].nunique() == 2]
    assert moved, "no trial was retried on the head after the worker died"
    for trial in moved:  # resumed from its checkpoint, not from the start
        assert trial["epoch"].tolist() == [1, 2, 3, 4]
        assert trial["node_ip"].iloc[0] == WORKER_IP and trial["node_ip"].iloc[-1] == HEAD_IP
    assert (tmp_path / "spread" / "best_model" / "model.pt").is_file()


def test_node_local_storage_path_is_refused(tmp_path):
    storage = Path(tempfile.mkdtemp(prefix="qs", dir="/tmp"))
    cluster = two_nodes("disabled", private_dir=storage)
    try:
        driver = cluster.search(storage, "arch=dan", "num_samples=1", "name=local")
        assert driver.wait(timeout=200) == 2
        log = (cluster.tmp / "driver.log").read_text()
    finally:
        cluster.stop()
        shutil.rmtree(cluster.tmp, ignore_errors=True)
        shutil.rmtree(storage, ignore_errors=True)
    assert f"is not visible from node(s) {WORKER_IP}" in log
    assert not (storage / "local").exists()
