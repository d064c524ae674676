"""Both cluster configs validate against the schema shipped inside the ray package."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO


@pytest.fixture(params=["cluster.yaml", "cluster-local.yaml"])
def cluster_config(request) -> dict:
    return yaml.safe_load((REPO / request.param).read_text())


def test_config_validates_after_ray_fills_its_defaults(cluster_config):
    prepared = prepare_config(copy.deepcopy(cluster_config))
    validate_config(prepared)
    commands = " ".join(prepared["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in commands and "--dashboard-host=127.0.0.1" in commands
    assert all("RAY_AUTH_MODE=token" in c for c in prepared["worker_start_ray_commands"][1:])
    installs = " ".join(
        prepared["setup_commands"]
        + prepared.get("head_setup_commands", [])
        + prepared.get("worker_setup_commands", [])
    )
    assert "torch==2.13.0" in installs and "pip install" in installs
    # The default search reads GloVe on every node: the data's unseen words at prep (the
    # head), the frozen / fine-tuned embeddings in the trials (the workers).
    project = [c for c in installs.split("&&") if "-e ~/qatune" in c]
    assert project and all("glove" in c for c in project)


def test_a_misspelled_key_is_rejected(cluster_config):
    broken = prepare_config(copy.deepcopy(cluster_config))
    broken["max_wrokers"] = 3
    with pytest.raises(jsonschema.ValidationError, match="max_wrokers"):
        validate_config(broken)


def test_aws_config_has_autoscaling_gpu_workers():
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["min_workers"] == 0 and workers["max_workers"] > 0
    assert config["available_node_types"]["head"]["resources"] == {"CPU": 0}
