"""Joining a Ray cluster, and checks for searches on a multi-node one.

Since Ray 2.7 nothing is synced to the head node: each trial writes its checkpoints and
results to `storage_path` from the node it runs on. A path that only the driver's node can
see would silently lose every result of the other nodes, so it is refused before any trial.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from search.config import SearchConfigError


@ray.remote(num_cpus=0)
def _sees(path: str, token: str) -> bool:
    marker = Path(path)
    return marker.is_file() and marker.read_text() == token


def check_shared_storage(storage_path: str, timeout_s: float = 120) -> None:
    """Refuse a local storage_path that some alive node of the cluster cannot see."""
    if "://" in storage_path:  # cloud storage: every node reaches it by URI
        return
    nodes = [n for n in ray.nodes() if n["Alive"]]
    if len(nodes) < 2:
        return
    token = uuid.uuid4().hex
    marker = Path(storage_path) / f".qatune-shared-{token}"
    marker.write_text(token)
    try:
        checks = [
            _sees.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote(str(marker), token)
            for n in nodes
        ]
        seen = ray.get(checks, timeout=timeout_s)
    finally:
        marker.unlink(missing_ok=True)
    blind = [n["NodeManagerAddress"] for n, ok in zip(nodes, seen, strict=True) if not ok]
    if blind:
        raise SearchConfigError(
            f"storage_path={storage_path} is not visible from node(s) {', '.join(blind)}: "
            "results and checkpoints of trials there would be lost (Ray does not sync them "
            "to the head). Use a directory every node shares (NFS) or a cloud URI (s3://...)"
        )


CONNECT_TIMEOUT_S = 10.0


def connect(address: str, ray_cpus: int) -> bool:
    """Start a local Ray (no address) or join a running cluster, with a one-line error when
    none answers: Ray itself retries an unreachable head every few seconds, for minutes.
    False when this process was connected already (a caller's Ray, left to the caller)."""
    if ray.is_initialized():
        return False
    if address and address != "auto" and not address.startswith("ray://"):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), CONNECT_TIMEOUT_S).close()
        except (OSError, ValueError) as err:
            raise SearchConfigError(
                f"address={address}: no Ray cluster answers there ({err}); start one with "
                "`ray start --head` (or `ray up cluster.yaml`), or leave address empty for a "
                "local Ray"
            ) from None
    try:
        ray.init(
            address=address or None,
            num_cpus=None if address else (ray_cpus or None),
            log_to_driver=False,  # trials print nothing a user needs; their errors are reported
        )
    except (ConnectionError, RuntimeError) as err:
        raise SearchConfigError(
            f"address={address}: could not join a Ray cluster ({str(err).splitlines()[0][:160]})"
            "; start one with `ray start --head`, or leave address empty for a local Ray"
        ) from None
    return True
