"""A real local Ray (2 CPUs) for the search tests, shut down after them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def local_ray():
    import ray

    import search.run  # noqa: F401  (sets the logger environment before Ray starts)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
