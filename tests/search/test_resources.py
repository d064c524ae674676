"""Where trials run: a GPU share when the cluster has GPUs, else CPUs; and a
real search on a local Ray that has a GPU resource (scheduled on this CPU-only machine)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from qamodels.config import TrainConfig
from qamodels.spaces import LR_RANGE, REFERENCE_BATCH
from search.config import SearchConfig, SearchConfigError
from search.resources import AUTO_GPU_SHARE, CPU_CONCURRENT, place

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
