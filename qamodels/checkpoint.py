"""The exported model: weights + everything needed to rebuild it and read its output.

`model.pt` loads with `torch.load(path, weights_only=True)`: only tensors and plain values.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from data_prep.cli import ConfigError
from qamodels.embedding import make_embedding
from qamodels.registry import build_model

MODEL_FILE = "model.pt"


def save_model(
    path: Path,
    model: nn.Module,
    arch: str,
    params: dict,
    train_config: dict,
    vocab: list[str],
    labels: list[str],
    max_length: int,
    metrics: dict,
    expand_vocab: str = "",
) -> Path:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(
        {
            "state_dict": state,
            "arch": arch,
            "params": params,
            "train_config": train_config,
            "vocab": vocab,
            "labels": labels,
            "max_length": max_length,
            "expand_vocab": expand_vocab,
            "metrics": metrics,
        },
        path,
    )
    return path


def load_model(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """The model (eval mode) and its checkpoint dict, from model.pt or a directory holding it."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path}: no exported model (expected {MODEL_FILE}); point model= at a "
            "best_model/ or best_ensemble/ of a search, or a qamodels.train run directory"
        )
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise ConfigError(
            f"{path}: damaged or truncated model file ({str(err).splitlines()[0][:120]}); "
            "export it again (rerun the search or qamodels.train)"
        ) from None
    weights = checkpoint["state_dict"]["embedding.weight"]
    embedding = make_embedding(weights.shape[0], weights.shape[1], "random")
    model = build_model(
        checkpoint["arch"], embedding, len(checkpoint["labels"]), checkpoint["params"]
    )
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval(), checkpoint
