"""Language-model pretraining inside the search: once, before any trial, as a Ray task (on a
GPU when the cluster has one), cached under the prepared data.

The task writes the checkpoint once, into the experiment directory (the storage every node of
a cluster sees), where the trials read it; it is then linked (or, across filesystems, copied)
into a cache under the prepared data, keyed by that data and the pretraining config, so a
repeated search reuses it and a resumed one finds its own. The BiLSTM language model
(qamodels.lm) is pretrained for any search (its embedding serves every architecture); the
masked LM (qamodels.mlm) too when the transformer is searched. Then lm_frozen / lm_finetune
join the embedding modes, and the transfer recipe the first trials (qamodels.spaces).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from data_prep.atomic import link_or_copy
from data_prep.store import PreparedData
from qamodels.lm import LMConfig
from qamodels.mlm import MLMConfig
from qamodels.pretrain import PretrainConfig
from search.cluster import wait_for
from search.config import SearchConfig, SearchConfigError

log = logging.getLogger(__name__)

# pretrain=auto pretrains when the unlabeled split holds at least this many tokens
# (questions and answers). bench/transfer_bench.py measured, with 0.24M and 0.83M tokens, a
# fine-tuned LM encoder within about a point of random init: not worth its minutes of
# pretraining on a CPU. ULMFiT's gains came with far more text.
AUTO_MIN_TOKENS = 1_000_000
PRETRAINED_DIR = "pretrained"


def unlabeled_tokens(data: PreparedData) -> int:
    unlabeled = data.unlabeled
    return int(np.sum(unlabeled.length)) + int(np.sum(unlabeled.extra["answer_length"]))


def wants_pretraining(config: SearchConfig, data: PreparedData) -> bool:
    if config.pretrain == "false" or config.train.lm_checkpoint:  # off, or the user's own
        return False
    if config.pretrain == "true" and len(data.unlabeled) == 0:
        raise SearchConfigError(
            "pretrain=true but the unlabeled split is empty: prepare with train_size below "
            "what remains after valid and test (e.g. train_size=0.6), so unlabeled text is left"
        )
    return config.pretrain == "true" or unlabeled_tokens(data) >= AUTO_MIN_TOKENS


def pretrain_configs(config: SearchConfig) -> dict[str, PretrainConfig]:
    """kind (the architecture whose encoder it pretrains) -> its config."""
    shared = {"epochs": config.pretrain_epochs, "max_rows": config.pretrain_rows,
              "seed": config.seed}  # fmt: skip
    configs: dict[str, PretrainConfig] = {"bilstm": LMConfig(**shared)}
    if "transformer" in config.archs:
        configs["transformer"] = MLMConfig(**shared)
    return configs


def cache_path(data: PreparedData, kind: str, config: PretrainConfig) -> Path:
    """Under the prepared data (its directory is its key), named by the pretraining config."""
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k not in ("out", "device")}
    digest = hashlib.sha256(json.dumps([kind, settings], sort_keys=True).encode()).hexdigest()
    return Path(data.path) / PRETRAINED_DIR / f"{kind}-{digest[:12]}.pt"


def _pretrain_task(kind: str, config: PretrainConfig, data: PreparedData, threads: int,
                   out: str) -> str:  # fmt: skip
    """Runs on whichever node Ray picks and writes the checkpoint once, to `out` in the
    experiment directory (the storage every node sees); returns that path."""
    import torch

    from data_prep.cli import configure_logging

    configure_logging()  # its epochs' perplexities reach the driver's console (Ray relays)

    from qamodels.lm import pretrain as pretrain_lm
    from qamodels.mlm import pretrain as pretrain_mlm

    torch.set_num_threads(threads)
    pretrain = pretrain_lm if kind == "bilstm" else pretrain_mlm
    pretrain(data, dataclasses.replace(config, out=out, device="auto"))  # written atomically
    return out


def pretrain_once(config: SearchConfig, data: PreparedData) -> list[Path]:
    """The experiment's checkpoint of each language model the search needs: from the cache
    when it holds one (a repeated search), else pretrained (one Ray task each, a GPU if the
    cluster has one) straight into the experiment and then linked into the cache."""
    import ray

    resources = ray.cluster_resources()
    gpus = 1 if resources.get("GPU", 0) >= 1 else 0
    cpus = max(1, min(8, int(ray.available_resources().get("CPU", 1))))
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_pretrain_task)
    data_ref = None
    paths = []
    for kind, lm_config in pretrain_configs(config).items():
        cache = cache_path(data, kind, lm_config)
        target = config.experiment_path / PRETRAINED_DIR / cache.name
        if target.is_file() or cache.is_file():
            log.info("pretrained %s language model: reusing %s", kind, cache)
            if not target.is_file():
                link_or_copy(cache, target)
        else:
            if data_ref is None:  # sent to the object store once, when a task needs it
                data_ref = ray.put(data.without_test())
            where = "a GPU" if gpus else f"{cpus} CPUs"
            log.info("pretraining the %s language model (%d epochs on %s) ...", kind,
                     lm_config.epochs, where)  # fmt: skip
            target.parent.mkdir(parents=True, exist_ok=True)
            ref = task.remote(kind, lm_config, data_ref, cpus, str(target))
            wait_for(ref, f"pretraining the {kind} language model")
            link_or_copy(target, cache)
            log.info("pretrained %s language model: %s", kind, target)
        paths.append(target)
    return paths


def with_pretrained_lm(config: SearchConfig, data: PreparedData) -> SearchConfig:
    """The search with its trials pointed at the pretrained checkpoints in the experiment
    directory, when it pretrains; else unchanged."""
    if not wants_pretraining(config, data):
        return config
    paths = ",".join(str(path) for path in pretrain_once(config, data))
    train = dataclasses.replace(config.train, lm_checkpoint=paths)
    return dataclasses.replace(config, train=train)
