"""Search spaces, one per architecture, next to the registry: Optuna define-by-run functions.

Each function asks only its own architecture's parameters, named `<arch>/<param>` (`nested`
turns them into `config[arch]`), and the shared training parameters under
`train/<key>` (TrainConfig fields). `decode` turns a trial config back into TrainConfig
overrides and model parameters.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
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
    # Word pairs (fastText's bigrams): what the TF-IDF baseline has and a plain average
    # lacks. They cost 0.7 points on the sample's valid split and beat nothing there, but
    # where the baseline beat the DAN (short technical titles, issue 18) word pairs are the
    # difference, so the search decides per dataset.
    trial.suggest_categorical("dan/ngrams", [1, 2])
    # A linear path from words and word pairs to the logits (wide and deep): the baseline's
    # strength, rare words that name a category, without the average diluting them; 2: on
    # TF-IDF weights. Its own learning rate: trained with the MLP at one rate, early stopping
    # (set by the MLP) ended it before it had learned what the baseline has (BENCHMARKS.md,
    # "A path that reaches the linear model").
    if trial.suggest_categorical("dan/wide", [0, 1, 2]):
        trial.suggest_float("dan/wide_lr", 1.0, 10.0, log=True)
        # The wide path fitted first as the baseline's LinearSVC, the MLP then trained on top:
        # at or above the baseline on the suite's sets, below the joint fit on the sample.
        trial.suggest_categorical("dan/wide_first", [0, 1])
        # Not searched: the words' character n-grams (dan/wide_chars, qamodels/subwords.py)
        # doubled a DAN trial's cost on CLINC150 (the SVM start on 10x the nonzeros, a dense
        # n-gram table trained) for no clear test gain, and the family's share then bound on
        # the family that wins there (BENCHMARKS.md, "Subword features in the wide path").


def bilstm(trial: optuna.Trial, shape: bool = True) -> None:
    if shape:  # else the pretrained encoder's (qamodels.lm)
        trial.suggest_int("bilstm/hidden", 32, 256, log=True)
        if trial.suggest_int("bilstm/layers", 1, 2) > 1:
            trial.suggest_float("bilstm/lstm_dropout", 0.0, 0.4)
    trial.suggest_float("bilstm/spatial_dropout", 0.0, 0.4)
    trial.suggest_categorical("bilstm/pooling", ["mean", "max", "meanmax", "last", "concat"])
    trial.suggest_float("bilstm/dropout", 0.0, 0.5)


def _cnn_head(trial: optuna.Trial, arch: str) -> None:
    trial.suggest_int(f"{arch}/filters", 32, 256, log=True)
    trial.suggest_float(f"{arch}/spatial_dropout", 0.0, 0.4)
    trial.suggest_categorical(f"{arch}/pooling", ["mean", "max", "meanmax"])
    trial.suggest_int(f"{arch}/hidden_layers", 0, 1)
    trial.suggest_float(f"{arch}/dropout", 0.0, 0.5)
    trial.suggest_categorical(f"{arch}/norm", ["none", "batch", "layer"])


def cnn_parallel(trial: optuna.Trial) -> None:
    trial.suggest_categorical(
        "cnn_parallel/windows", ["1,2,3", "2,3,4", "3,4,5", "2,3,4,5", "3,5,7"]
    )
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


def transformer(trial: optuna.Trial, shape: bool = True) -> None:
    if shape:  # else the pretrained encoder's (qamodels.mlm)
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


# Architectures whose whole encoder a language model pretrains (qamodels.lm, qamodels.mlm):
# their lm_* trials take the encoder's shape from the checkpoint, so it is not sampled.
TRANSFERRED_SHAPE = ("bilstm", "transformer")


def embedding(trial: optuna.Trial, embeddings: Sequence[str], fixed: Mapping[str, Any] = {}) -> str:
    mode = trial.suggest_categorical("train/embedding", list(embeddings))
    if mode == "random" and "embedding_dim" not in fixed:
        trial.suggest_categorical("train/embedding_dim", [64, 128, 256])
    if mode == "finetune" and "embedding_lr" not in fixed:
        trial.suggest_float("train/embedding_lr", 1e-5, 3e-3, log=True)
    return mode


# Batch sizes by device: small ones on CPU cores; on a GPU, batches that fill it (a batch of
# 64 kept an H200 at ~9k samples/s, 2048 at ~540k: issue 16).
CPU_BATCHES = (64, 128, 256, 512)
GPU_BATCHES = (256, 512, 1024, 2048)
LR_RANGE = (3e-4, 1e-2)  # at REFERENCE_BATCH: the CPU space's range at every batch size
REFERENCE_BATCH = 64
GPU_RECIPE_BATCH = 512


def scaled_lr(lr: float, batch_size: int) -> float:
    """The learning rate for `batch_size` of one tuned at REFERENCE_BATCH: the square-root
    rule for adaptive optimizers (Adam's gradient noise falls with the square root of the
    batch; Malladi et al. 2022, Granziol et al. 2022), not the linear rule of SGD."""
    return lr * math.sqrt(batch_size / REFERENCE_BATCH)


def training(
    trial: optuna.Trial, transfer: bool, gpu: bool = False, fixed: Mapping[str, Any] = {}
) -> None:
    """The shared training choices; with a pretrained LM encoder, ULMFiT's: discriminative
    rates (lr_decay), slanted triangular rates (onecycle) and gradual unfreezing. On a GPU,
    the GPU's batch sizes, each with the learning-rate range scaled to it (scaled_lr). A key
    in `fixed` (set for the whole search, e.g. batch_size=1024) is not searched."""

    def categorical(name: str, choices: list) -> Any:
        return fixed[name] if name in fixed else trial.suggest_categorical(f"train/{name}", choices)

    def log_uniform(name: str, low: float, high: float) -> None:
        if name not in fixed:
            trial.suggest_float(f"train/{name}", low, high, log=True)

    if gpu:
        batch_size = categorical("batch_size", list(GPU_BATCHES))
        log_uniform("lr", *(scaled_lr(lr, batch_size) for lr in LR_RANGE))
    else:
        log_uniform("lr", *LR_RANGE)
        categorical("batch_size", list(CPU_BATCHES))
    categorical("optimizer", ["adam", "adamw"])
    log_uniform("weight_decay", 1e-6, 1e-1)
    categorical("scheduler", ["none", "cosine", "onecycle", "warmup"])
    if transfer:
        categorical("lr_decay", [1.0, 2.6])
        categorical("gradual_unfreeze", [False, True])


# Known-good starting points, one per architecture, enqueued as the first trials of every
# search over it (so a search never ends below them). Keys are the search space's names.
RECIPES: dict[str, dict[str, Any]] = {
    # Iyyer et al. 2015 (DAN): averaged fine-tuned word vectors, word dropout 0.3, layers of 300.
    "dan": {"dan/hidden": 300, "dan/hidden_layers": 2, "dan/dropout": 0.2,
            "dan/word_dropout": 0.3, "dan/norm": "none", "dan/ngrams": 1, "dan/wide": 0,
            "train/lr": 5e-3},
    # Kim 2014 (CNN-non-static): windows 3,4,5, 100 filters each, max pooling, dropout 0.5.
    "cnn_parallel": {"cnn_parallel/windows": "3,4,5", "cnn_parallel/filters": 100,
                     "cnn_parallel/spatial_dropout": 0.0, "cnn_parallel/pooling": "max",
                     "cnn_parallel/hidden_layers": 0, "cnn_parallel/dropout": 0.5,
                     "cnn_parallel/norm": "none", "train/lr": 1e-3},
    # ULMFiT's classifier shape without the LM: BiLSTM, concat (mean+max) pooling, dropouts.
    "bilstm": {"bilstm/hidden": 128, "bilstm/layers": 1, "bilstm/spatial_dropout": 0.3,
               "bilstm/pooling": "meanmax", "bilstm/dropout": 0.4, "train/lr": 2e-3},
    # A small VGG-style stack: two width-3 convolutions, max pooling.
    "cnn_stacked": {"cnn_stacked/window": 3, "cnn_stacked/layers": 2, "cnn_stacked/filters": 128,
                    "cnn_stacked/spatial_dropout": 0.1, "cnn_stacked/pooling": "max",
                    "cnn_stacked/hidden_layers": 0, "cnn_stacked/dropout": 0.5,
                    "cnn_stacked/norm": "none", "train/lr": 1e-3},
    # Two pre-norm residual blocks of width-3 convolutions (ResNet-style, kept shallow).
    "cnn_residual": {"cnn_residual/windows": "3", "cnn_residual/blocks": 2,
                     "cnn_residual/block_norm": "layer", "cnn_residual/filters": 128,
                     "cnn_residual/spatial_dropout": 0.1, "cnn_residual/pooling": "max",
                     "cnn_residual/hidden_layers": 0, "cnn_residual/dropout": 0.5,
                     "cnn_residual/norm": "none", "train/lr": 1e-3},
    # A small encoder (Vaswani et al. 2017 base recipe scaled down): warm-up, dropout 0.1.
    "transformer": {"transformer/d_model": 128, "transformer/heads": 4, "transformer/layers": 2,
                    "transformer/ff_mult": 4, "transformer/attn_dropout": 0.1,
                    "transformer/pooling": "mean", "transformer/dropout": 0.1,
                    "train/lr": 5e-4, "train/scheduler": "warmup"},
}  # fmt: skip
assert set(RECIPES) == set(ARCHITECTURES), "every architecture needs a recipe"
# Changes of a recipe that also start every search over its architecture, right after it:
# where the sample could not tell two starting points apart on valid, each data set's valid
# split decides. The wide DAN, aimed at where the DAN lost to TF-IDF, in its TF-IDF form at
# 3x the learning rate, its wide path starting as the baseline's LinearSVC (wide_first=1):
# of the variants measured on the suite's three sets (seed 0), the only one at or above the
# baseline on every set (BENCHMARKS.md, "A path that reaches the linear model").
RECIPE_VARIANTS: dict[str, list[dict[str, Any]]] = {
    "dan": [{"dan/wide": 2, "dan/wide_lr": 3.0, "dan/wide_first": 1}]
}
RECIPE_TRAINING = {"train/batch_size": 64, "train/optimizer": "adamw",
                   "train/weight_decay": 1e-4, "train/scheduler": "onecycle"}  # fmt: skip


# Averaging needs wide vectors (Iyyer et al. used 300d GloVe): where the only pretrained
# vectors are narrow (the bundled GloVe is 50d), the DAN recipe learns a 256-wide embedding.
RECIPE_EMBEDDING = {"dan": {"train/embedding": "random", "train/embedding_dim": 256}}
FINETUNE = {"train/embedding": "finetune", "train/embedding_lr": 1e-3}


def recipe_embedding(arch: str, embeddings: Sequence[str]) -> dict[str, Any]:
    """The recipe's embedding where the search offers it; else fine-tuned vectors (the
    papers' choice), else the first mode searched."""
    preferred = RECIPE_EMBEDDING.get(arch, FINETUNE)
    if preferred["train/embedding"] in embeddings:
        return preferred
    if "finetune" in embeddings:
        return FINETUNE
    chosen: dict[str, Any] = {"train/embedding": embeddings[0]}
    if embeddings[0] == "random":
        chosen["train/embedding_dim"] = 128
    if embeddings[0] == "finetune":
        chosen["train/embedding_lr"] = 1e-3
    return chosen


# Fine-tuning the pretrained BiLSTM encoder (qamodels.lm), as bench/transfer_bench.py
# measured it on this task: ULMFiT's concat pooling and slanted triangular rates, every layer
# at one rate of 1e-2 (ULMFiT's peak); its discriminative rates and gradual unfreezing cost
# 3-10 points within a few epochs here, so they are left to the search (train/lr_decay,
# train/gradual_unfreeze).
TRANSFER = {"arch": "bilstm", "train/embedding": "lm_finetune", "bilstm/pooling": "concat",
            "bilstm/spatial_dropout": 0.2, "bilstm/dropout": 0.3, "train/lr": 1e-2,
            "train/lr_decay": 1.0, "train/gradual_unfreeze": False, **RECIPE_TRAINING}  # fmt: skip


def at_batch(point: dict[str, Any], batch_size: int) -> dict[str, Any]:
    """A recipe at another batch size, its learning rate scaled to it (scaled_lr)."""
    ratio = scaled_lr(1.0, batch_size) / scaled_lr(1.0, point["train/batch_size"])
    return {**point, "train/batch_size": batch_size, "train/lr": point["train/lr"] * ratio}


def recipes(
    archs: Sequence[str],
    embeddings: Sequence[str],
    gpu: bool = False,
    fixed: Mapping[str, Any] = {},
) -> list[dict[str, Any]]:
    """The recipe of each searched architecture (and its RECIPE_VARIANTS), as first points
    of the search; and the transfer recipe where a pretrained BiLSTM encoder is offered. At
    the batch the search fixes, else on a GPU at GPU_RECIPE_BATCH, the rate scaled to it;
    without the training keys the search fixes."""
    points = []
    for arch in archs:
        recipe = {"arch": arch, **RECIPE_TRAINING, **recipe_embedding(arch, embeddings),
                  **RECIPES[arch]}  # fmt: skip
        points += [recipe] + [{**recipe, **change} for change in RECIPE_VARIANTS.get(arch, [])]
    if "bilstm" in archs and "lm_finetune" in embeddings:
        points.append(TRANSFER)
    batch = fixed.get("batch_size") or (GPU_RECIPE_BATCH if gpu else None)
    points = [at_batch(p, batch) for p in points] if batch else points
    return [{k: v for k, v in p.items() if k.removeprefix("train/") not in fixed} for p in points]


def search_space(
    trial: optuna.Trial,
    archs: Sequence[str],
    embeddings: Sequence[str],
    gpu: bool = False,
    fixed: Mapping[str, Any] = {},
) -> dict:
    """Architecture first, then only that architecture's parameters, then training ones."""
    arch = trial.suggest_categorical("arch", list(archs))
    mode = embedding(trial, embeddings, fixed)
    transfer = mode == "lm_finetune" and arch in TRANSFERRED_SHAPE
    if arch in TRANSFERRED_SHAPE:
        SPACES[arch](trial, shape=not mode.startswith("lm_"))
    else:
        SPACES[arch](trial)
    training(trial, transfer, gpu, fixed)
    return {}


def define_space(
    archs: Sequence[str],
    embeddings: Sequence[str],
    gpu: bool = False,
    fixed: Mapping[str, Any] = {},
) -> Callable[[Any], dict]:
    """The define-by-run function of a search over `archs`, with the GPU's batch sizes when
    its trials run on GPUs, never sampling the training keys in `fixed` (picklable: the
    searcher's state is saved for resume)."""
    return functools.partial(
        search_space, archs=tuple(archs), embeddings=tuple(embeddings), gpu=gpu,
        fixed=dict(fixed),
    )  # fmt: skip


SEARCHED_TRAINING = ("lr", "batch_size", "optimizer", "weight_decay", "scheduler", "lr_decay",
                     "gradual_unfreeze", "embedding_dim", "embedding_lr")  # fmt: skip


def fixed_training(train: Any, keys: Sequence[str]) -> dict[str, Any]:
    """The searched training keys a search sets for all its trials, with their values: the
    ones the user typed (`search.run batch_size=1024`, or batch_size=256, its default: typed
    is fixed), never guessed from a value that differs from the default."""
    return {k: getattr(train, k) for k in keys if k in SEARCHED_TRAINING}


def nested(flat: dict) -> dict:
    """{"dan/hidden": 256} -> {"dan": {"hidden": 256}}: a trial's config from Optuna's names."""
    config: dict = {}
    for key, value in flat.items():
        *groups, name = key.split("/")
        level = config
        for group in groups:
            level = level.setdefault(group, {})
        level[name] = value
    return config


def decode(config: dict) -> tuple[str, dict, dict]:
    """(arch, model params, TrainConfig overrides) from a trial config."""
    arch = config["arch"]
    params = dict(config.get(arch, {}))
    for key in ("windows",):
        if isinstance(params.get(key), str):
            params[key] = _windows(params[key])
    return arch, check_params(arch, params), dict(config.get("train", {}))
