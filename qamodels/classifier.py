"""The classifier a config asks for, in its embedding mode: random, pretrained vectors, or
a language model's embedding or whole encoder (transfer)."""

from __future__ import annotations

import torch

from data_prep.cli import ConfigError
from data_prep.embeddings import load_embeddings
from data_prep.store import PreparedData
from qamodels.config import TrainConfig
from qamodels.embedding import LM_MODES, PRETRAINED_MODES, make_embedding
from qamodels.pretrain import load_lm
from qamodels.registry import build_model, check_params


def build_classifier(
    config: TrainConfig, data: PreparedData, params: dict
) -> tuple[torch.nn.Module, dict, dict]:
    """(model, its full parameters, those the LM checkpoint set). With LM checkpoints the
    architecture one was pretrained for (bilstm: qamodels.lm, transformer: qamodels.mlm)
    takes its whole encoder, shape included (lm_frozen: frozen, only the head learns);
    others take the first one's embedding."""
    weights, lm, transferred = None, None, {}
    if config.embedding in PRETRAINED_MODES:
        weights = torch.from_numpy(load_embeddings(data, config.vectors).matrix)
    elif config.embedding in LM_MODES:
        lm = choose_lm(config, data.vocab)
        weights = lm["encoder"]["embedding.weight"]
        if lm["kind"] == config.arch:  # the same encoder: the classifier takes all of it
            transferred = dict(lm["encoder_params"])
            params = {**params, **transferred}
    embedding = make_embedding(len(data.vocab), config.embedding_dim, config.embedding, weights)
    model = build_model(config.arch, embedding, len(data.labels), params)
    if lm is not None and lm["kind"] == config.arch:
        model.encoder.load_state_dict(lm["encoder"])
        model.encoder.requires_grad_(config.embedding == "lm_finetune")
    return model, check_params(config.arch, params), transferred


def choose_lm(config: TrainConfig, vocab: list[str]) -> dict:
    """Of the lm_checkpoint paths (comma-separated), the one pretrained for this arch, else
    the first (its embedding serves any architecture)."""
    paths = [p for p in config.lm_checkpoint.split(",") if p]
    if not paths:
        raise ConfigError(f"embedding={config.embedding} needs lm_checkpoint=<path> (or a "
                          "search with pretrain=true)")  # fmt: skip
    checkpoints = [load_lm(path, vocab) for path in paths]
    return next((c for c in checkpoints if c["kind"] == config.arch), checkpoints[0])
