"""A real local Ray (2 CPUs and one GPU resource) for the search tests, shut down after them.

The GPU is a resource Ray schedules, not a card: on a machine without CUDA the trials that
get a share still train on the CPU, which tests the placement logic (search/resources.py).
Tests that need the CPU placement say gpus_per_trial="0"."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def local_ray():
    import ray

    import search.run  # noqa: F401  (sets the logger environment before Ray starts)

    # address="local": a Ray of this process alone, even beside another test worker's
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
