"""A real two-node Ray cluster on one machine.

Best: two network namespaces joined by a veth pair, so that head and worker are two hosts
with their own addresses (needs root and iproute2). Where namespaces are unavailable (or with
QATUNE_CLUSTER_MODE=loopback): two nodes on loopback with separate temp dirs, and the test
output says so. Every process a test starts is killed through its namespace or temp dir, so
nothing is left behind and no other Ray on the machine is touched.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO, SHARED_DATA

pytestmark = pytest.mark.e2e  # whole searches (python -m pytest -m "not e2e": the fast tier)

SUFFIX = os.getpid() % 10000
SUBNET = f"10.{77 + SUFFIX % 100}.0"
# The ray command of this interpreter (on PATH or not: a --target install has no scripts).
RAY_CLI = (sys.executable, "-m", "ray.scripts.scripts")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=check)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def namespaces_available() -> str | None:
    """None when network namespaces work here, else why not."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "needs root and iproute2"
    if os.environ.get("QATUNE_CLUSTER_MODE") == "loopback":
        return "QATUNE_CLUSTER_MODE=loopback"
    probe = sh("ip", "netns", "add", f"qa{SUFFIX}p", check=False)
    if probe.returncode != 0:
        return probe.stderr.strip()
    sh("ip", "netns", "del", f"qa{SUFFIX}p")
    return None


def descendants_of(marker: str) -> set[int]:
    """Processes whose command line holds `marker`, and all their children."""
    parents: dict[int, int] = {}
    roots = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            )
            parents[int(entry.name)] = int(
                (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
            )
        except (OSError, IndexError, ValueError):
            continue
        if marker in cmdline:
            roots.add(int(entry.name))
    found, grew = set(roots), True
    while grew:
        children = {p for p, parent in parents.items() if parent in found} - found
        found |= children
        grew = bool(children)
    return found


class TwoNodes:
    """A head (1 CPU) and a worker (2 CPUs), in namespaces or on loopback."""

    def __init__(self, auth_mode: str, private_dir: Path | None = None):
        why_not = namespaces_available()
        self.netns = why_not is None
        if not self.netns:
            warnings.warn(
                f"network namespaces unavailable ({why_not}): two Ray nodes on loopback with "
                "separate temp dirs instead",
                stacklevel=2,
            )
        self.head_ns, self.worker_ns = f"qa{SUFFIX}h", f"qa{SUFFIX}w"
        self.head_ip = f"{SUBNET}.1" if self.netns else "127.0.0.1"
        self.worker_ip = f"{SUBNET}.2" if self.netns else "127.0.0.1"
        self.port = 6379 if self.netns else free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix="qc", dir="/tmp"))  # short: socket paths
        self.env = {**os.environ, "RAY_AUTH_MODE": auth_mode}
        if auth_mode == "token":
            self.env["RAY_AUTH_TOKEN"] = secrets.token_hex(16)
        self.private_dir = private_dir
        self.worker_node_id = ""

    def on_head(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.head_ns, *args] if self.netns else list(args)

    def on_worker(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.worker_ns, *args] if self.netns else list(args)

    def start(self) -> None:
        if self.netns:
            self._make_namespaces()
        subprocess.run(
            self.on_head(
                *RAY_CLI,
                "start",
                "--head",
                f"--node-ip-address={self.head_ip}",
                f"--port={self.port}",
                "--num-cpus=1",
                f"--temp-dir={self.tmp}/h",
                "--include-dashboard=false",
                "--disable-usage-stats",
            ),
            env=self.env,
            capture_output=True,
            check=True,
        )
        worker = [
            *RAY_CLI,
            "start",
            f"--address={self.head_ip}:{self.port}",
            f"--node-ip-address={self.worker_ip}",
            "--num-cpus=2",
            f"--temp-dir={self.tmp}/w",
            "--disable-usage-stats",
        ]
        if self.private_dir is not None:  # the worker sees its own empty dir there
            script = f"mount -t tmpfs none {self.private_dir} && exec {' '.join(worker)}"
            worker = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        subprocess.run(self.on_worker(*worker), env=self.env, capture_output=True, check=True)
        deadline = time.time() + 60
        while not self.worker_node_id:
            assert time.time() < deadline, "the worker never joined the head"
            time.sleep(1)
            self.worker_node_id = self._node_with_two_cpus()

    def _make_namespaces(self) -> None:
        sh("ip", "netns", "add", self.head_ns)
        sh("ip", "netns", "add", self.worker_ns)
        sh(
            "ip",
            "link",
            "add",
            f"{self.head_ns}v",
            "type",
            "veth",
            "peer",
            "name",
            f"{self.worker_ns}v",
        )
        for ns, ip in ((self.head_ns, self.head_ip), (self.worker_ns, self.worker_ip)):
            sh("ip", "link", "set", f"{ns}v", "netns", ns)
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", f"{ns}v")
            sh("ip", "-n", ns, "link", "set", f"{ns}v", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def _node_with_two_cpus(self) -> str:
        code = (
            "import ray; ray.init(); print([n['NodeID'] for n in ray.nodes() "
            "if n['Alive'] and n['Resources'].get('CPU') == 2.0])"
        )
        env = {**self.env, "RAY_ADDRESS": f"{self.head_ip}:{self.port}"}
        out = subprocess.run(
            self.on_head(sys.executable, "-c", code), env=env, capture_output=True, text=True
        )
        ids = last_printed_list(out.stdout) if out.returncode == 0 else []
        return ids[0] if ids else ""

    def search(self, storage: Path, *extra: str) -> subprocess.Popen:
        args = self.on_head(
            sys.executable,
            "-m",
            "search.run",
            f"address={self.head_ip}:{self.port}",
            f"storage_path={storage}",
            f"raw_dir={SHARED_DATA}",
            "categories=all",
            "valid_size=0.1",
            "train_size=0.6",
            f"data_dir={self.tmp}/data",
            "embeddings=random",
            "pretrain=false",
            *extra,
        )
        log = open(self.tmp / "driver.log", "w")  # noqa: SIM115 (lives as long as the driver)
        return subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return (self.tmp / "driver.log").read_text()[-3000:]

    def kill_worker(self) -> None:
        if self.netns:
            pids = {
                int(p)
                for p in sh("ip", "netns", "pids", self.worker_ns, check=False).stdout.split()
            }
        else:
            pids = descendants_of(f"{self.tmp}/w")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        self.kill_worker()
        if self.netns:
            for pid in sh("ip", "netns", "pids", self.head_ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            for ns in (self.worker_ns, self.head_ns):
                sh("ip", "netns", "del", ns, check=False)
        else:
            for pid in descendants_of(f"{self.tmp}/h"):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def last_printed_list(text: str) -> list[str]:
    import ast

    lines = [line for line in text.strip().splitlines() if line.startswith("[")]
    return ast.literal_eval(lines[-1]) if lines else []


def two_nodes(auth_mode: str, private_dir: Path | None = None) -> TwoNodes:
    cluster = TwoNodes(auth_mode, private_dir)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def progress(storage: Path) -> list[pd.DataFrame]:
    return [pd.read_csv(p) for p in storage.glob("*/*_*/progress.csv")]


@pytest.mark.slow  # ~60 s; CI runs the autoscaling cluster's search (test_autoscaling.py)
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
            "trial_scheduler=none",
            "name=spread",
        )
        deadline = time.time() + 240
        while not any((t["node_id"] == cluster.worker_node_id).any() for t in progress(tmp_path)):
            assert driver.poll() is None, cluster.log()
            assert time.time() < deadline, "no trial reported from the worker node"
            time.sleep(0.3)
        cluster.kill_worker()  # the worker node dies mid-search
        assert driver.wait(timeout=400) == 0, cluster.log()
        worker = cluster.worker_node_id
    finally:
        cluster.stop()
    trials = pd.read_csv(tmp_path / "spread" / "trials.csv")
    assert len(trials) == 4 and (trials["status"] == "ok").all() and (trials["epochs"] == 4).all()
    histories = progress(tmp_path)
    assert len({node for t in histories for node in t["node_id"]}) == 2  # both nodes ran trials
    moved = [t for t in histories if t["node_id"].nunique() == 2]
    assert moved, "no trial was retried on the head after the worker died"
    for trial in moved:  # resumed from its checkpoint, not from the start
        assert trial["epoch"].tolist() == [1, 2, 3, 4]
        assert trial["node_id"].iloc[0] == worker and trial["node_id"].iloc[-1] != worker
    assert (tmp_path / "spread" / "best_model" / "model.pt").is_file()


@pytest.mark.slow  # a second node in its own mount namespace, ~30 s
def test_node_local_storage_path_is_refused():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a worker with its own view of the storage path needs root and unshare")
    storage = Path(tempfile.mkdtemp(prefix="qs", dir="/tmp"))
    cluster = two_nodes("disabled", private_dir=storage)
    try:
        driver = cluster.search(storage, "arch=dan", "num_samples=1", "name=local")
        assert driver.wait(timeout=200) == 2, cluster.log()
        log = cluster.log()
    finally:
        cluster.stop()
        shutil.rmtree(storage, ignore_errors=True)
    # Exactly one node (the worker) is blind; on loopback its address is the machine's.
    blind = re.search(r"is not visible from node\(s\) ([\d., ]+): results", log)
    assert blind is not None, log
    if cluster.netns:
        assert blind.group(1) == cluster.worker_ip
    else:
        assert "," not in blind.group(1)
    assert "local" not in [p.name for p in storage.glob("*")]
