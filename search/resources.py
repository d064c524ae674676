"""Where the trials run: a share of a GPU when the Ray cluster has GPUs, else CPU cores;
and how many run at once. Decided once, from what the cluster reports, or, on an autoscaling
cluster, from the node types its autoscaler may launch (search/autoscaler.py).

    gpus_per_trial=auto   # the default: AUTO_GPU_SHARE if there are GPUs, else 0
    gpus_per_trial=0      # CPUs only, on any cluster
    gpus_per_trial=0.25   # every architecture takes a quarter of a GPU (4 trials per GPU)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from search.autoscaler import Autoscaling
from search.config import SearchConfig, SearchConfigError, parse_gpus_per_trial

# The GPU share of every trial under gpus_per_trial=auto: a single trial of these small
# models leaves a large GPU mostly idle (its steps are kernel launches), so four share one.
# One share for every architecture, not one per architecture: Ray Tune keeps an idle actor
# of each resource shape for reuse (reuse_actors), and on an H100 an idle half-GPU actor of a
# BiLSTM trial held its half while quarter-GPU trials waited: 2 trials ran where 4 fit
# (BENCHMARKS.md, "GPU readiness"). The heavier models time-share the GPU instead.
AUTO_GPU_SHARE = 0.25
CPU_CONCURRENT = 2  # trials at once on CPUs when max_concurrent=0 (auto)


@dataclass(frozen=True)
class Placement:
    """The resources of every trial and the number running at once."""

    gpu_share: float  # each trial's GPU share; 0: the CPU
    cpus_per_trial: float
    max_concurrent: int
    scaling: Autoscaling | None = None  # the node types it was planned from, if autoscaling

    @property
    def on_gpu(self) -> bool:
        return self.gpu_share > 0

    @property
    def resources(self) -> dict[str, float]:
        """Ray Tune's request for each trial (tune.with_resources)."""
        return {"CPU": self.cpus_per_trial, "GPU": self.gpu_share}

    def describe(self) -> str:
        """One console line: where the trials run."""
        if not self.on_gpu:
            where = (
                f"trials run on CPUs: {self.max_concurrent} at once, "
                f"{self.cpus_per_trial:g} CPU each"
            )
        else:
            where = (
                f"trials run on GPUs: up to {self.max_concurrent} at once, "
                f"{self.gpu_share:g} GPU and {self.cpus_per_trial:g} CPU each"
            )
        if self.scaling is None:
            return where
        return f"{where}, on the nodes the autoscaler starts: {self.scaling.describe()}"


def place(
    config: SearchConfig, cluster: dict[str, float], scaling: Autoscaling | None = None
) -> Placement:
    """The placement of a search on a cluster with these resources (ray.cluster_resources()),
    or, with an autoscaler, on the largest cluster its node types make."""
    if scaling is not None:
        return place_autoscaling(config, scaling)
    gpus, cpus = cluster.get("GPU", 0.0), cluster.get("CPU", 0.0)
    if config.cpus_per_trial > cpus:
        advice = (
            f"set cpus_per_trial={max(1, int(cpus))} or less"
            if cpus >= 1
            else "start worker nodes (`ray start --address=...` on each), run the search on "
            "the head of an autoscaling cluster (`ray job submit`), give the head CPUs, or "
            "leave address= empty for a local Ray"
        )
        raise SearchConfigError(
            f"cpus_per_trial={config.cpus_per_trial:g} but the Ray cluster has {cpus:g} CPUs "
            f"up and no autoscaler's node types to plan from: {advice}"
        )
    requested = parse_gpus_per_trial(config.gpus_per_trial)
    if requested is None:
        share = AUTO_GPU_SHARE if gpus >= 1 else 0.0
    elif requested > 0 and gpus == 0:
        raise SearchConfigError(
            f"gpus_per_trial={config.gpus_per_trial} but the Ray cluster has no GPU: set "
            "gpus_per_trial=auto or 0, or address= a Ray cluster with GPU nodes"
        )
    elif requested > max(gpus, 1):
        raise SearchConfigError(
            f"gpus_per_trial={config.gpus_per_trial}: the Ray cluster has {gpus:g} GPUs"
        )
    else:
        share = requested
    by_cpus = max(1, int(cpus // config.cpus_per_trial))
    if config.max_concurrent:
        concurrent = config.max_concurrent
    elif share:  # as many as the GPUs hold, CPUs allowing
        concurrent = min(by_cpus, max(1, math.floor(gpus / share + 1e-9)))
    else:
        concurrent = min(by_cpus, CPU_CONCURRENT)
    return Placement(share, config.cpus_per_trial, concurrent)


def place_autoscaling(config: SearchConfig, scaling: Autoscaling) -> Placement:
    """A GPU share when a node type has GPUs; as many at once as the largest allowed cluster
    holds; refused when no node type can ever hold a trial."""
    requested = parse_gpus_per_trial(config.gpus_per_trial)
    if requested is None:
        share = AUTO_GPU_SHARE if scaling.gpus_per_node >= 1 else 0.0
    else:
        share = requested
    capacity = scaling.capacity(config.cpus_per_trial, share)
    if capacity == 0:
        raise SearchConfigError(
            f"no node type of the cluster can hold a trial of {config.cpus_per_trial:g} CPU"
            f"{f' and {share:g} GPU' if share else ''} (node types: {scaling.describe()}, from "
            f"{scaling.source}): lower cpus_per_trial= / gpus_per_trial=, or add a node type "
            "that holds one"
        )
    concurrent = config.max_concurrent or capacity
    return Placement(share, config.cpus_per_trial, concurrent, scaling)
