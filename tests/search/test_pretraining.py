"""pretrain=true: the language model is pretrained once (a Ray task), cached under the
prepared data, reused by a repeated search; lm_* trials run on the real encoder shape."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from qamodels.checkpoint import load_model
from qamodels.config import TrainConfig
from search.config import SearchConfig
from search.pretraining import PRETRAINED_DIR, cache_path, pretrain_configs, with_pretrained_lm
from search.trainable import resolved_config


def search_config(storage: Path, name: str) -> SearchConfig:
    return SearchConfig(
        arch="bilstm",
        num_samples=2,  # the BiLSTM recipe (random init), then the transfer recipe (lm_finetune)
        max_epochs=1,
        max_concurrent=2,
        trial_scheduler="none",
        train=TrainConfig(max_train_rows=300, seed=1),
        storage_path=str(storage),
        name=name,
        embeddings=("random",),
        baseline=False,
        pretrain="true",
        gpus_per_trial="0",
        pretrain_epochs=1,
        pretrain_rows=800,
    )


def session_hparams(trial_dir: Path) -> dict:
    events = EventAccumulator(str(trial_dir / "tensorboard"))
    events.Reload()
    content = events.SummaryMetadata("_hparams_/session_start_info").plugin_data.content
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.number_value or v.string_value for k, v in start.hparams.items()}


@pytest.mark.e2e
def test_pretrained_once_reused_and_shown_as_it_ran(local_ray, prepared_sample, tmp_path, caplog):
    from search.run import run_search

    caplog.set_level(logging.INFO, logger="search")
    first = search_config(tmp_path, "first")
    lm_config = pretrain_configs(first)["bilstm"]
    cache = cache_path(prepared_sample, "bilstm", lm_config)
    cache.unlink(missing_ok=True)
    results, _board = run_search(first, prepared_sample)
    assert "pretraining the bilstm language model" in caplog.text
    caplog.clear()
    assert cache.is_file() and not results.errors
    written = cache.stat().st_mtime_ns
    pretrained = torch.load(cache, weights_only=True)
    assert pretrained["encoder_params"] == {"hidden": lm_config.hidden, "layers": lm_config.layers}

    lm_trials = [r for r in results if r.config["train"]["embedding"] == "lm_finetune"]
    assert len(lm_trials) == 1 and len(results) == 2
    trial = lm_trials[0]
    # The encoder's shape is not sampled; the trial's records show the checkpoint's.
    assert not {"hidden", "layers"} & set(trial.config["bilstm"])
    ran = resolved_config(trial.path, trial.config)  # written by the trial, once
    assert ran["bilstm"]["hidden"] == lm_config.hidden and "hidden" not in trial.config["bilstm"]
    shown = session_hparams(Path(trial.path))
    assert shown["bilstm/hidden"] == lm_config.hidden
    assert shown["bilstm/layers"] == lm_config.layers
    model, checkpoint = load_model(Path(trial.path) / "best_model")
    assert checkpoint["params"]["hidden"] == lm_config.hidden
    assert model.encoder.forward_lstm.hidden_size == lm_config.hidden
    copy = first.experiment_path / PRETRAINED_DIR / cache.name
    assert copy.read_bytes() == cache.read_bytes()
    assert copy.stat().st_ino == cache.stat().st_ino  # written once: the cache is a hard link

    # A repeated search (another experiment, same data and pretraining) or a resumed one
    # (the same experiment) reuses the cache: what run_search does before its trials.
    for name in ("second", "first"):
        again = with_pretrained_lm(search_config(tmp_path, name), prepared_sample)
        out, _ = caplog.text, caplog.clear()
        assert f"reusing {cache}" in out and "pretraining the" not in out
        assert again.train.lm_checkpoint == str(again.experiment_path / PRETRAINED_DIR / cache.name)
        assert cache.stat().st_mtime_ns == written
