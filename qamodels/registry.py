"""The one registry of architectures: name -> model class and its typed config (one frozen
dataclass per architecture, as nanoGPT's GPTConfig, declared beside the model)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import nn

from data_prep.cli import ConfigError, as_dict, check_fields, parse_overrides
from qamodels import bilstm, cnn, dan, transformer


@dataclass(frozen=True)
class Architecture:
    model: type[nn.Module]
    config: type  # the architecture's parameters: a frozen dataclass of `arg` fields

    @property
    def defaults(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config())


ARCHITECTURES: dict[str, Architecture] = {
    "dan": Architecture(dan.DAN, dan.DANConfig),
    "bilstm": Architecture(bilstm.BiLSTM, bilstm.BiLSTMConfig),
    "cnn_parallel": Architecture(cnn.ParallelCNN, cnn.ParallelCNNConfig),
    "cnn_stacked": Architecture(cnn.StackedCNN, cnn.StackedCNNConfig),
    "cnn_residual": Architecture(cnn.ResidualCNN, cnn.ResidualCNNConfig),
    "transformer": Architecture(transformer.TransformerClassifier, transformer.TransformerConfig),
}

# The families from the least use of word order and depth to the most (a bag of words, one
# layer of windows, stacked and residual windows, whole sequences; attention last, quadratic
# in length): cheaper to serve and fewer ways to fit valid's noise. Among models valid cannot
# tell apart, the search calls the first of this order its best single model.
SIMPLEST_FIRST = ("dan", "cnn_parallel", "cnn_stacked", "cnn_residual", "bilstm", "transformer")


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ConfigError(f"arch={name}: use one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def _known(name: str, keys: Any) -> type:
    """The architecture's config class; an error naming the keys it does not have."""
    config = architecture(name).config
    fields = [f.name for f in dataclasses.fields(config)]
    unknown = sorted(set(keys) - set(fields))
    if unknown:
        raise ConfigError(
            f"arch {name} has no parameter(s) {', '.join(unknown)}; its parameters: "
            + ", ".join(fields)
        )
    return config


def check_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The full, checked parameter set of `name`: its defaults overridden by `params`."""
    return as_dict(check_fields(_known(name, params)(**params)))


def build_model(name: str, embedding: nn.Embedding, classes: int, params: dict) -> nn.Module:
    return architecture(name).model(embedding, classes, **check_params(name, params))


def parse_params(name: str, args: list[str]) -> dict[str, Any]:
    """An architecture's own `key=value` arguments, typed and checked by its config."""
    config = _known(name, [a.split("=", 1)[0] for a in args])
    return as_dict(parse_overrides(config, args))
