"""The one registry of architectures: name -> model class and its default hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from qamodels import bilstm, cnn, dan, transformer


@dataclass(frozen=True)
class Architecture:
    model: type[nn.Module]
    defaults: dict[str, Any]


ARCHITECTURES: dict[str, Architecture] = {
    "dan": Architecture(dan.DAN, dan.DEFAULTS),
    "bilstm": Architecture(bilstm.BiLSTM, bilstm.DEFAULTS),
    "cnn_parallel": Architecture(cnn.ParallelCNN, cnn.PARALLEL_DEFAULTS),
    "cnn_stacked": Architecture(cnn.StackedCNN, cnn.STACKED_DEFAULTS),
    "cnn_residual": Architecture(cnn.ResidualCNN, cnn.RESIDUAL_DEFAULTS),
    "transformer": Architecture(transformer.TransformerClassifier, transformer.DEFAULTS),
}


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown arch {name!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The full parameter set of `name`: its defaults overridden by `params` (known keys only)."""
    defaults = architecture(name).defaults
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(
            f"arch {name} has no parameter(s) {', '.join(unknown)}; "
            f"its parameters: {', '.join(defaults)}"
        )
    return {**defaults, **params}


def build_model(name: str, embedding: nn.Embedding, classes: int, params: dict) -> nn.Module:
    return architecture(name).model(embedding, classes, **check_params(name, params))


def parse_params(name: str, args: list[str]) -> dict[str, Any]:
    """`key=value` strings typed by the architecture's defaults (tuples are comma lists)."""
    defaults = architecture(name).defaults
    params: dict[str, Any] = {}
    for arg in args:
        key, _, raw = arg.partition("=")
        if key not in defaults:
            check_params(name, {key: None})  # raises with the list of valid parameters
        default = defaults[key]
        try:
            if isinstance(default, bool):
                params[key] = raw.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, tuple):
                params[key] = tuple(type(default[0])(v) for v in raw.split(",") if v)
            else:
                params[key] = type(default)(raw)
        except ValueError:
            raise ValueError(
                f"{key}={raw!r}: expected {type(default).__name__} like {default!r}"
            ) from None
    return params
