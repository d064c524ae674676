"""A cluster shaped like cluster.yaml on one machine: Ray's fake multinode autoscaler, a head
with no CPUs and a GPU worker type (logical GPUs) that the autoscaler starts from zero.

Isolated from every other Ray of the machine: its own temp dir and ports, its processes in
one process group of their own (the autoscaler's workers included), killed at the end; never
`ray stop`. Ray's pip wheel lacks the provider's example.yaml, so the config is written here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

RAY_CLI = (sys.executable, "-m", "ray.scripts.scripts")
HEAD_TYPE = "ray.head.default"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_env() -> dict[str, str]:
    """Loopback only (search/cluster.py local_only), no token: the test's own cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="disabled", RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
               RAY_FAKE_CLUSTER="1")  # fmt: skip
    return env


def autoscaling_config(
    gcs_port: int, worker: dict, max_workers: int, idle_minutes: float = 0.2
) -> dict:
    return {
        "cluster_name": f"qatune_fake_{gcs_port}",
        "max_workers": max_workers,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True,
                     "gcs_address": f"127.0.0.1:{gcs_port}"},  # fmt: skip
        "available_node_types": {
            HEAD_TYPE: {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "gpu_worker": {"resources": worker, "node_config": {}, "min_workers": 0,
                           "max_workers": max_workers},  # fmt: skip
        },
        "head_node_type": HEAD_TYPE,
        "auth": {}, "docker": {}, "upscaling_speed": 1.0,
        "idle_timeout_minutes": idle_minutes,
        **{key: [] for key in ("initialization_commands", "setup_commands",
                               "head_setup_commands", "worker_setup_commands",
                               "head_start_ray_commands", "worker_start_ray_commands",
                               "cluster_synced_files", "rsync_exclude", "rsync_filter")},
        "file_mounts": {}, "file_mounts_sync_continuously": False,
    }  # fmt: skip


@contextlib.contextmanager
def fake_autoscaling_cluster(
    worker: dict | None = None,
    max_workers: int = 2,
    workers_reach_gcs: bool = True,
    dashboard_port: int = 0,
    idle_minutes: float = 0.2,
) -> Iterator[str]:
    """The cluster's address (127.0.0.1:port) while the block runs. `workers_reach_gcs`
    False: the workers the autoscaler launches never join (a node type that cannot start).
    `dashboard_port`: the head's dashboard, and so Ray's job API, on that port (needs
    ray[default]). A fake node removed when idle takes the session's runtime files with it
    (all nodes share one machine): keep `idle_minutes` above a job's length."""
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="qfc", dir="/tmp"))  # short: Unix socket paths
    config = autoscaling_config(port if workers_reach_gcs else free_port(),
                                worker or {"CPU": 2, "GPU": 1}, max_workers,
                                idle_minutes)  # fmt: skip
    dashboard = (["--include-dashboard=true", f"--dashboard-port={dashboard_port}",
                  "--dashboard-host=127.0.0.1"] if dashboard_port
                 else ["--include-dashboard=false", f"--dashboard-port={free_port()}"])  # fmt: skip
    (root / "cluster.yaml").write_text(yaml.safe_dump(config))
    head = subprocess.Popen(
        [*RAY_CLI, "start", "--head", "--num-cpus=0", "--num-gpus=0", f"--port={port}",
         f"--temp-dir={root / 'ray'}", f"--autoscaling-config={root / 'cluster.yaml'}",
         "--node-ip-address=127.0.0.1", *dashboard, f"--ray-client-server-port={free_port()}",
         f"--dashboard-agent-listen-port={free_port()}"],
        env=cluster_env(), start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = head.communicate(timeout=120)
        if head.returncode != 0:
            raise RuntimeError(f"the fake cluster's head did not start:\n{output[-3000:]}")
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # the head's and the workers' processes
        shutil.rmtree(root, ignore_errors=True)


def wait_for_port(port: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the fake cluster's GCS did not answer on port {port}")
