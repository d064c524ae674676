"""Where the trials run: a GPU share per architecture when the Ray cluster has GPUs, else
CPU cores; and how many run at once. Decided once, from what the cluster reports.

    gpus_per_trial=auto   # the default: GPU_SHARE per architecture if there are GPUs, else 0
    gpus_per_trial=0      # CPUs only, on any cluster
    gpus_per_trial=0.25   # every architecture takes a quarter of a GPU (4 trials per GPU)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from search.config import SearchConfig, SearchConfigError, parse_gpus_per_trial

# The GPU share of each architecture's trials under gpus_per_trial=auto: a single trial of a
# small model leaves a large GPU mostly idle (its steps are kernel launches), so four share
# one; the BiLSTM and the Transformer, whose steps are heavier (issue 16's ceilings on an
# H200: 161k and 244k samples/s at batch 2048 against the DAN's 713k), take half. Provisional:
# bench/gpu_check.sh measures 1, 2 and 4 trials per GPU; BENCHMARKS.md holds the figures.
GPU_SHARE = {
    "dan": 0.25,
    "cnn_parallel": 0.25,
    "cnn_stacked": 0.25,
    "cnn_residual": 0.25,
    "bilstm": 0.5,
    "transformer": 0.5,
}
CPU_CONCURRENT = 2  # trials at once on CPUs when max_concurrent=0 (auto)


@dataclass(frozen=True)
class Placement:
    """The resources of each architecture's trials and the number running at once."""

    gpu_share: dict[str, float]  # arch -> its trials' GPU share; 0: the CPU
    cpus_per_trial: float
    max_concurrent: int

    @property
    def on_gpu(self) -> bool:
        return any(share > 0 for share in self.gpu_share.values())

    def resources(self, config: dict):
        """Ray Tune's per-trial request (tune.with_resources takes this callable)."""
        from ray.tune import PlacementGroupFactory

        gpu = self.gpu_share.get(config.get("arch", ""), 0.0)
        return PlacementGroupFactory([{"CPU": self.cpus_per_trial, "GPU": gpu}])

    def describe(self) -> str:
        """One console line: where the trials run."""
        if not self.on_gpu:
            return (
                f"trials run on CPUs: {self.max_concurrent} at once, "
                f"{self.cpus_per_trial:g} CPU each"
            )
        shares = ", ".join(f"{a} {s:g}" for a, s in self.gpu_share.items())
        return (
            f"trials run on GPUs: up to {self.max_concurrent} at once; GPU share per trial: "
            f"{shares}"
        )


def place(search: SearchConfig, cluster: dict[str, float]) -> Placement:
    """The placement of `search` on a cluster with these resources (ray.cluster_resources())."""
    gpus, cpus = cluster.get("GPU", 0.0), cluster.get("CPU", 0.0)
    if search.cpus_per_trial > cpus:
        raise SearchConfigError(
            f"cpus_per_trial={search.cpus_per_trial:g} but the Ray cluster has {cpus:g} CPUs: "
            f"set cpus_per_trial={max(1, int(cpus))} or less"
        )
    requested = parse_gpus_per_trial(search.gpus_per_trial)
    if requested is None:
        share = {a: GPU_SHARE[a] if gpus >= 1 else 0.0 for a in search.archs}
    elif requested > 0 and gpus == 0:
        raise SearchConfigError(
            f"gpus_per_trial={search.gpus_per_trial} but the Ray cluster has no GPU: set "
            "gpus_per_trial=auto or 0, or address= a Ray cluster with GPU nodes"
        )
    elif requested > max(gpus, 1):
        raise SearchConfigError(
            f"gpus_per_trial={search.gpus_per_trial}: the Ray cluster has {gpus:g} GPUs"
        )
    else:
        share = {a: requested for a in search.archs}
    by_cpus = max(1, int(cpus // search.cpus_per_trial))
    smallest = min((s for s in share.values() if s > 0), default=0.0)
    if search.max_concurrent:
        concurrent = search.max_concurrent
    elif smallest:  # as many as the GPUs hold of the smallest share, CPUs allowing
        concurrent = min(by_cpus, max(1, math.floor(gpus / smallest + 1e-9)))
    else:
        concurrent = min(by_cpus, CPU_CONCURRENT)
    return Placement(share, search.cpus_per_trial, concurrent)
