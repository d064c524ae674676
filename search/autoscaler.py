"""What an autoscaling Ray cluster can become: the node types its autoscaler may launch.

On a cluster like cluster.yaml's (a head with no CPUs, GPU workers from zero), what is up at
the start is the head alone: a search planned from `ray.cluster_resources()` would find no CPU
and no GPU and refuse to start, and no trial would ever ask the autoscaler for a worker. So
the search plans from the node types (search/resources.py), and its trials' requests are what
makes the autoscaler start workers.

Where the node types come from, first found:
1. Ray's own record of the cluster's config (autoscaler v2 reports it to the GCS);
2. the autoscaling config of the running autoscaler (autoscaler v1, Ray's default): the file
   its monitor was started with, read on the head, where `ray job submit` runs the driver;
3. `~/ray_bootstrap_config.yaml`, which `ray up` writes on the head.
Without an autoscaler (its status is absent from the GCS), None: a fixed cluster.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

STATUS_KEY = "__autoscaling_status"  # what Ray's autoscaler monitor writes each update
BOOTSTRAP_CONFIG = Path("~/ray_bootstrap_config.yaml")


@dataclass(frozen=True)
class NodeType:
    """One kind of node the cluster may hold, and how many of it at most."""

    name: str
    cpus: float
    gpus: float
    max_count: int  # the head: 1, and not one of the cluster's max_workers
    head: bool = False

    def holds(self, cpus: float, gpus: float) -> int:
        """Trials of this request that one node of this type runs at once."""
        by_cpu = int(self.cpus // cpus + 1e-9) if cpus > 0 else 1 << 30
        by_gpu = int(self.gpus // gpus + 1e-9) if gpus > 0 else 1 << 30
        return min(by_cpu, by_gpu)

    def describe(self) -> str:
        gpus = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{self.name} ({self.cpus:g} CPU{gpus}, up to {self.max_count})"


@dataclass(frozen=True)
class Autoscaling:
    """The node types of an autoscaling cluster, and the most worker nodes it may hold."""

    node_types: tuple[NodeType, ...]
    max_workers: int  # all worker types together
    source: str  # where the types were read

    @property
    def gpus_per_node(self) -> float:
        return max((t.gpus for t in self.node_types), default=0.0)

    def capacity(self, cpus: float, gpus: float) -> int:
        """Trials of this request the largest allowed cluster runs at once: the roomiest node
        types first, within the cluster's max_workers."""
        nodes_left, total = self.max_workers, 0
        for node_type in sorted(self.node_types, key=lambda t: -t.holds(cpus, gpus)):
            count = node_type.max_count if node_type.head else min(node_type.max_count, nodes_left)
            total += node_type.holds(cpus, gpus) * count
            nodes_left -= 0 if node_type.head else count
        return total

    def describe(self) -> str:
        return ", ".join(t.describe() for t in self.node_types if not t.head)


def has_autoscaler() -> bool:
    return autoscaler_status() is not None


def autoscaler_status() -> dict | None:
    from ray.experimental.internal_kv import _internal_kv_get, _internal_kv_initialized

    if not _internal_kv_initialized():
        return None
    raw = _internal_kv_get(STATUS_KEY)
    return json.loads(raw) if raw else None


def autoscaling() -> Autoscaling | None:
    """The node types of this process's Ray cluster, if it has an autoscaler; None if not."""
    from_ray = from_cluster_config()
    if from_ray is not None:
        return from_ray
    status = autoscaler_status()
    if status is None:
        return None
    for path in (monitor_config_path(status.get("monitor_pid")), BOOTSTRAP_CONFIG.expanduser()):
        if path is not None and path.is_file():
            return from_yaml(path)
    log.warning(
        "the Ray cluster has an autoscaler, but its node types could not be read here (run "
        "the search on the head, e.g. with `ray job submit`): planning from the nodes up now"
    )
    return None


def from_cluster_config() -> Autoscaling | None:
    from ray._private.state import state

    try:
        config = state.get_cluster_config()
    except Exception:  # noqa: BLE001 - an older GCS without the record: read it elsewhere
        return None
    if config is None or not config.node_group_configs:
        return None
    types = tuple(
        NodeType(g.name, float(g.resources.get("CPU", 0)), float(g.resources.get("GPU", 0)),
                 g.max_count if g.max_count >= 0 else 1 << 20)
        for g in config.node_group_configs
    )  # fmt: skip
    return Autoscaling(types, sum(t.max_count for t in types), "Ray's cluster config")


def monitor_config_path(pid: object) -> Path | None:
    """The --autoscaling-config of the autoscaler's monitor, when it runs on this machine."""
    try:
        argv = Path(f"/proc/{int(pid)}/cmdline").read_bytes().split(b"\0")
    except (OSError, TypeError, ValueError):
        return None
    for arg in argv:
        text = arg.decode(errors="replace")
        if text.startswith("--autoscaling-config="):
            return Path(text.split("=", 1)[1]).expanduser()
    return None


def from_yaml(path: Path) -> Autoscaling:
    """The worker node types of an autoscaling config (cluster.yaml's format)."""
    from search.config import SearchConfigError

    try:
        config = yaml.safe_load(path.read_text())
        head = config.get("head_node_type")
        types = []
        for name, spec in config["available_node_types"].items():
            count = 1 if name == head else int(spec.get("max_workers", config["max_workers"]))
            resources = spec.get("resources") or {}
            if count and name != head and not resources:
                raise ValueError(
                    f"node type {name} declares no resources: add e.g. resources: "
                    "{CPU: 8, GPU: 1} (what one node of it has)"
                )
            types.append(NodeType(name, float(resources.get("CPU", 0)),
                                  float(resources.get("GPU", 0)), count, name == head))  # fmt: skip
        max_workers = int(config.get("max_workers", sum(t.max_count for t in types)))
        if not any(t.cpus for t in types if t.max_count):
            raise ValueError("no node type has CPUs to run trials on")
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as err:
        raise SearchConfigError(
            f"{path}: the cluster's autoscaling config cannot be planned from ("
            f"{str(err).splitlines()[0][:200]})"
        ) from None
    return Autoscaling(tuple(t for t in types if t.max_count), max_workers, str(path))
