"""The TF-IDF + linear baseline, fitted as a Ray task beside the trials instead of before
them: on a GPU machine the card would sit idle while it fits (minutes at 250k rows).

It is started first and takes one CPU the trials leave free where there is one (a GPU
node's trials need few); it runs on the driver's node, which holds the prepared files it
reads (on a head that offers Ray no CPU, as cluster.yaml's, it asks for none and runs on the
head's own cores); its row joins the leaderboard, ensemble and report when the trials have
ended. A baseline that fails is reported in one line; the search goes on without it.
"""

from __future__ import annotations

import logging
import sys

from data_prep.store import PreparedData
from qamodels.baseline import BaselineResult, fit_baseline
from search.config import SearchConfig

log = logging.getLogger(__name__)


def start_baseline(config: SearchConfig, data: PreparedData):
    """The Ray ObjectRef of the fitted baseline, or None when the search runs without one."""
    if not config.baseline:
        return None
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    node = next(n for n in ray.nodes() if n["NodeID"] == here)
    cpus = 1 if node["Resources"].get("CPU", 0) >= 1 else 0
    task = ray.remote(num_cpus=cpus, max_retries=0)(fit_baseline).options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)
    )
    return task.remote(data, config.train.max_train_rows, config.seed)


def baseline_result(ref) -> BaselineResult | None:
    """Wait for the baseline (it has usually ended long before the trials) and say its score."""
    if ref is None:
        return None
    import ray

    from search.cluster import wait_for

    try:
        baseline = wait_for(ref, "fitting the baseline")
    except ray.exceptions.RayError as err:
        message = str(err).strip().splitlines()[-1][:200]
        print(f"the baseline failed ({message}): the search goes on without it", file=sys.stderr)
        return None
    log.info(
        "baseline %s: valid accuracy %.4f (fitted in %.0f s beside the trials)",
        baseline.name, baseline.valid["accuracy"], baseline.seconds,
    )  # fmt: skip
    return baseline


def cancel_baseline(ref) -> None:
    if ref is not None:
        import ray

        ray.cancel(ref, force=True)
