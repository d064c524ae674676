"""Search spaces, one per architecture, next to the registry: Optuna define-by-run functions.

Each function asks only its own architecture's parameters, named `<arch>/<param>` (Ray's
OptunaSearch unflattens them into `config[arch]`), and the shared training parameters under
`train/<key>` (TrainConfig fields). `decode` turns a trial config back into TrainConfig
overrides and model parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import optuna

from qamodels.registry import ARCHITECTURES, check_params

Suggest = Callable[[optuna.Trial], None]


def _windows(text: str) -> tuple[int, ...]:
    return tuple(int(w) for w in text.split(","))


def dan(trial: optuna.Trial) -> None:
    trial.suggest_int("dan/hidden", 64, 512, log=True)
    trial.suggest_int("dan/hidden_layers", 0, 2)
    trial.suggest_float("dan/dropout", 0.0, 0.5)
    trial.suggest_float("dan/word_dropout", 0.0, 0.3)
    trial.suggest_categorical("dan/norm", ["none", "batch", "layer"])


def bilstm(trial: optuna.Trial) -> None:
    trial.suggest_int("bilstm/hidden", 32, 256, log=True)
    layers = trial.suggest_int("bilstm/layers", 1, 2)
    trial.suggest_float("bilstm/spatial_dropout", 0.0, 0.4)
    if layers > 1:
        trial.suggest_float("bilstm/lstm_dropout", 0.0, 0.4)
    trial.suggest_categorical("bilstm/pooling", ["mean", "max", "meanmax", "last"])
    trial.suggest_float("bilstm/dropout", 0.0, 0.5)


def _cnn_head(trial: optuna.Trial, arch: str) -> None:
    trial.suggest_int(f"{arch}/filters", 32, 256, log=True)
    trial.suggest_float(f"{arch}/spatial_dropout", 0.0, 0.4)
    trial.suggest_categorical(f"{arch}/pooling", ["mean", "max", "meanmax"])
    trial.suggest_int(f"{arch}/hidden_layers", 0, 1)
    trial.suggest_float(f"{arch}/dropout", 0.0, 0.5)
    trial.suggest_categorical(f"{arch}/norm", ["none", "batch", "layer"])


def cnn_parallel(trial: optuna.Trial) -> None:
    trial.suggest_categorical("cnn_parallel/windows", ["1,2,3", "2,3,4", "2,3,4,5", "3,5,7"])
    _cnn_head(trial, "cnn_parallel")


def cnn_stacked(trial: optuna.Trial) -> None:
    trial.suggest_int("cnn_stacked/window", 2, 5)
    trial.suggest_int("cnn_stacked/layers", 1, 4)
    _cnn_head(trial, "cnn_stacked")


def cnn_residual(trial: optuna.Trial) -> None:
    trial.suggest_categorical("cnn_residual/windows", ["3", "3,5", "2,3,4", "3,5,7"])
    trial.suggest_int("cnn_residual/blocks", 1, 4)
    trial.suggest_categorical("cnn_residual/block_norm", ["none", "layer"])
    _cnn_head(trial, "cnn_residual")


def transformer(trial: optuna.Trial) -> None:
    trial.suggest_categorical("transformer/d_model", [64, 128, 256])
    trial.suggest_categorical("transformer/heads", [2, 4, 8])
    trial.suggest_int("transformer/layers", 1, 4)
    trial.suggest_categorical("transformer/ff_mult", [2, 4])
    trial.suggest_float("transformer/attn_dropout", 0.0, 0.3)
    trial.suggest_categorical("transformer/pooling", ["mean", "max", "meanmax"])
    trial.suggest_float("transformer/dropout", 0.0, 0.4)


SPACES: dict[str, Suggest] = {
    "dan": dan,
    "bilstm": bilstm,
    "cnn_parallel": cnn_parallel,
    "cnn_stacked": cnn_stacked,
    "cnn_residual": cnn_residual,
    "transformer": transformer,
}
assert set(SPACES) == set(ARCHITECTURES), "every architecture needs a search space"


def training(trial: optuna.Trial, embeddings: Sequence[str]) -> None:
    """The shared training choices; learning rates per group (head/body vs embedding)."""
    trial.suggest_float("train/lr", 3e-4, 1e-2, log=True)
    trial.suggest_categorical("train/batch_size", [64, 128, 256, 512])
    trial.suggest_categorical("train/optimizer", ["adam", "adamw"])
    trial.suggest_float("train/weight_decay", 1e-6, 1e-1, log=True)
    trial.suggest_categorical("train/scheduler", ["none", "cosine", "onecycle", "warmup"])
    mode = trial.suggest_categorical("train/embedding", list(embeddings))
    if mode == "random":
        trial.suggest_categorical("train/embedding_dim", [64, 128, 256])
    if mode.endswith("finetune"):
        trial.suggest_float("train/embedding_lr", 1e-5, 3e-3, log=True)


def search_space(trial: optuna.Trial, archs: Sequence[str], embeddings: Sequence[str]) -> dict:
    """Architecture first, then only that architecture's parameters, then training ones."""
    arch = trial.suggest_categorical("arch", list(archs))
    SPACES[arch](trial)
    training(trial, embeddings)
    return {}


def define_space(archs: Sequence[str], embeddings: Sequence[str]) -> Callable[[Any], dict]:
    """The define-by-run function of a search over `archs` (picklable: the searcher's state
    is saved with the experiment for resume)."""
    return functools.partial(search_space, archs=tuple(archs), embeddings=tuple(embeddings))


def decode(config: dict) -> tuple[str, dict, dict]:
    """(arch, model params, TrainConfig overrides) from a trial config."""
    arch = config["arch"]
    params = dict(config.get(arch, {}))
    for key in ("windows",):
        if isinstance(params.get(key), str):
            params[key] = _windows(params[key])
    return arch, check_params(arch, params), dict(config.get("train", {}))
