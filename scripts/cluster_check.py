r"""Before a search on a real cluster: what the search will plan there, and why.

    ray up cluster.yaml
    ray exec cluster.yaml 'cd ~/qatune && python scripts/cluster_check.py address=auto'
    python scripts/cluster_check.py address=auto gpus_per_trial=0.5 cpus_per_trial=2

Run it where the driver will run (the head, as `ray job submit` does). It joins the cluster
and prints, starting nothing: the nodes up now, whether the cluster has an autoscaler and the
node types it may launch (and where they were read), the placement a search would take (GPU
share, CPUs, trials at once), or the one-line refusal a search would give. Then how to watch
the autoscaler decide: `ray status` (nodes, pending demands, failed launches) and
`monitor.log` / `monitor.err` under the head's /tmp/ray/session_latest/logs.
What `ray up` needs for the plan: each worker type's `resources:` in the cluster's YAML
(cluster.yaml states {CPU: 8, GPU: 1}); without them the search cannot plan before a worker
is up and says so.
"""

from __future__ import annotations

import sys

import ray

from data_prep.cli import fail, parse_overrides
from data_prep.errors import QatuneError
from search.autoscaler import autoscaling, has_autoscaler
from search.cluster import connect
from search.config import SearchConfig
from search.nodes import alive_nodes, describe_node
from search.resources import place


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        config = parse_overrides(SearchConfig, argv or ["address=auto"])
        connect(config.address, config.ray_cpus)
        nodes = alive_nodes()
        print(f"nodes up: {len(nodes)}")
        for node in nodes.values():
            print(f"  {describe_node(node)}")
        scaling = autoscaling() if config.address else None
        if scaling is not None:
            print(f"autoscaler: node types from {scaling.source}: {scaling.describe()}, at most "
                  f"{scaling.max_workers} workers")  # fmt: skip
        elif has_autoscaler():
            print("autoscaler: present, but its node types could not be read here")
        else:
            print("autoscaler: none (a fixed cluster: the search plans from the nodes up)")
        print(place(config, ray.cluster_resources(), scaling).describe())
    except QatuneError as err:
        return fail(err)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    print("watch the autoscaler: `ray status`; its log: monitor.log on the head")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
