"""Where trials run: a GPU share when the cluster has GPUs, else CPUs; and a
real search on a local Ray that has a GPU resource (scheduled on this CPU-only machine)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from qamodels.config import TrainConfig
from qamodels.spaces import LR_RANGE, REFERENCE_BATCH
from search.autoscaler import Autoscaling, NodeType, from_yaml
from search.config import SearchConfig, SearchConfigError
from search.resources import AUTO_GPU_SHARE, CPU_CONCURRENT, place
from tests.conftest import REPO

GPU_NODE = {"CPU": 16.0, "GPU": 1.0}
CPU_NODE = {"CPU": 2.0}


def test_auto_gives_every_trial_one_share_of_the_gpus():
    """One request shape for every architecture: Ray Tune keeps an idle actor per shape for
    reuse, and a cached half-GPU actor starved the quarter-GPU trials on an H100."""
    placement = place(SearchConfig(arch="all", gpus_per_trial="auto"), GPU_NODE)
    assert placement.on_gpu and placement.resources == {"CPU": 1.0, "GPU": AUTO_GPU_SHARE}
    assert placement.max_concurrent == int(1 / AUTO_GPU_SHARE)
    assert "4 at once, 0.25 GPU and 1 CPU each" in placement.describe()


def test_auto_on_cpus_behaves_as_before():
    placement = place(SearchConfig(), CPU_NODE)
    assert not placement.on_gpu and placement.max_concurrent == CPU_CONCURRENT
    assert placement.resources == {"CPU": 1.0, "GPU": 0.0}


@pytest.mark.parametrize(
    ("keys", "cluster", "share", "concurrent"),
    [
        ({"gpus_per_trial": "0"}, GPU_NODE, 0.0, CPU_CONCURRENT),  # 0 keeps the CPU
        ({"gpus_per_trial": "0.5"}, {"CPU": 16.0, "GPU": 4.0}, 0.5, 8),
        ({"gpus_per_trial": "0.25", "max_concurrent": 3}, GPU_NODE, 0.25, 3),
        ({"gpus_per_trial": "0.25", "cpus_per_trial": 4.0}, GPU_NODE, 0.25, 4),  # CPUs bound
    ],
)
def test_explicit_shares_and_concurrency(keys, cluster, share, concurrent):
    placement = place(SearchConfig(arch="dan,cnn_parallel", **keys), cluster)
    assert placement.gpu_share == share
    assert placement.max_concurrent == concurrent


@pytest.mark.parametrize(
    ("keys", "cluster", "message"),
    [
        ({"gpus_per_trial": "0.5"}, CPU_NODE, "gpus_per_trial=0.5 but the Ray cluster has no GPU"),
        ({"gpus_per_trial": "2"}, GPU_NODE, "gpus_per_trial=2: the Ray cluster has 1 GPUs"),
        ({"cpus_per_trial": 100.0}, CPU_NODE, "cpus_per_trial=100 but the Ray cluster has 2 CPUs"),
        ({"gpus_per_trial": "half"}, GPU_NODE, "gpus_per_trial=half: use auto, 0"),
    ],
)
def test_impossible_placements_are_refused_before_any_trial(keys, cluster, message):
    with pytest.raises(SearchConfigError, match=message):
        place(SearchConfig(**keys), cluster)


@pytest.mark.e2e
def test_search_on_gpu_shares_uses_the_gpu_space(local_ray, prepared_sample, tmp_path, capsys):
    """The local Ray has one GPU resource (tests/search/conftest.py): `auto` gives each DAN
    trial a quarter of it and the GPU space (here with the batch size fixed for the search,
    so only the rate is searched, scaled to that batch); with no CUDA here, the trials train
    on the CPU, which checks the resource logic, not the card."""
    from search.run import run_search

    config = SearchConfig(
        arch="dan",
        num_samples=3,
        max_epochs=1,
        grace_period=1,
        train=TrainConfig(max_train_rows=600, seed=1, batch_size=1024),
        fixed_keys=("batch_size",),  # as `search.run batch_size=1024` sets it
        storage_path=str(tmp_path),
        name="gpu_shares",
        embeddings=("random",),
        pretrain="false",
        baseline=False,
    )
    results, _board = run_search(config, prepared_sample)
    assert len(results) == 3 and not results.errors
    out = capsys.readouterr().out
    assert "trials run on GPUs" in out and "Result logdir" not in out  # the console's lines
    scale = math.sqrt(1024 / REFERENCE_BATCH)
    for result in results:
        assert "batch_size" not in result.config["train"]  # fixed, not searched
        assert LR_RANGE[0] * scale * 0.999 <= result.config["train"]["lr"] <= LR_RANGE[1] * scale
        assert result.metrics["resources"] == {"CPU": 1.0, "GPU": AUTO_GPU_SHARE}
    cpu_only = dataclasses.replace(config, gpus_per_trial="0")
    assert not place(cpu_only, local_ray.cluster_resources()).on_gpu


CLUSTER_YAML = REPO / "cluster.yaml"


def test_cluster_yaml_is_planned_from_its_node_types_before_any_worker_is_up():
    """cluster.yaml: a head with 0 CPUs, up to 8 GPU workers of 8 CPUs from zero. With only the
    head up, the search once refused to start ("the Ray cluster has 0 CPUs")."""
    scaling = from_yaml(CLUSTER_YAML)
    placement = place(SearchConfig(), {"memory": 1e9}, scaling)  # the head alone is up
    assert placement.gpu_share == AUTO_GPU_SHARE and placement.cpus_per_trial == 1
    assert placement.max_concurrent == 8 * 4  # 8 workers, 4 quarter-GPU trials each
    assert "gpu_worker (8 CPU, 1 GPU, up to 8)" in placement.describe()


@pytest.mark.parametrize(
    ("keys", "share", "concurrent"),
    [
        ({}, AUTO_GPU_SHARE, 2 * 2),  # GPU trials: the GPU type alone, its 2 CPUs bind
        ({"gpus_per_trial": "0"}, 0.0, 2 * 2 + 3 * 4),  # CPU trials fit both types
        ({"gpus_per_trial": "0", "cpus_per_trial": 3.0}, 0.0, 3 * 1),
        ({"max_concurrent": 5}, AUTO_GPU_SHARE, 5),
    ],
)
def test_autoscaling_capacity_is_what_the_largest_allowed_cluster_holds(keys, share, concurrent):
    scaling = Autoscaling(
        (NodeType("head", 0, 0, 1, head=True), NodeType("gpu", 2, 1, 2), NodeType("cpu", 4, 0, 3)),
        max_workers=5,
        source="test",
    )
    placement = place(SearchConfig(**keys), {}, scaling)
    assert (placement.gpu_share, placement.max_concurrent) == (share, concurrent)


def test_the_clusters_max_workers_caps_the_node_types():
    scaling = Autoscaling((NodeType("gpu", 8, 1, 10), NodeType("cpu", 4, 0, 10)), 3, "test")
    assert scaling.capacity(1, 0) == 3 * 8  # the roomiest type first, 3 nodes in all


def test_a_trial_no_node_type_can_hold_is_refused_naming_the_types(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text(
        "max_workers: 2\nhead_node_type: head\navailable_node_types:\n"
        "  head: {resources: {CPU: 0}, max_workers: 0}\n"
        "  small: {resources: {CPU: 2, GPU: 1}, min_workers: 0, max_workers: 2}\n"
    )
    with pytest.raises(
        SearchConfigError,
        match=r"no node type of the cluster can hold a trial "
        r"of 4 CPU and 0.25 GPU \(node types: small \(2 CPU, 1 GPU, up to 2\)",
    ):
        place(SearchConfig(cpus_per_trial=4.0), {}, from_yaml(config))


def test_a_node_type_without_resources_is_one_line_naming_it(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text(
        "max_workers: 2\nhead_node_type: head\navailable_node_types:\n"
        "  head: {resources: {CPU: 0}, max_workers: 0}\n  gpu: {resources: {}, max_workers: 2}\n"
    )
    with pytest.raises(SearchConfigError, match="node type gpu declares no resources") as err:
        from_yaml(config)
    assert len(str(err.value).splitlines()) == 1


def test_without_an_autoscaler_zero_cpus_says_to_start_workers():
    with pytest.raises(SearchConfigError, match="has 0 CPUs up and no autoscaler's node types "
                       "to plan from: start worker"):  # fmt: skip
        place(SearchConfig(), {"memory": 1e9})
