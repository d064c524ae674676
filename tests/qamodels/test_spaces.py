"""The define-by-run spaces: conditional on the architecture, and every sample builds."""

from __future__ import annotations

import math

import optuna
import pytest
import torch

from qamodels.config import TrainConfig
from qamodels.embedding import make_embedding
from qamodels.registry import ARCHITECTURES, build_model
from qamodels.spaces import (
    CPU_BATCHES,
    GPU_BATCHES,
    GPU_RECIPE_BATCH,
    LR_RANGE,
    REFERENCE_BATCH,
    decode,
    define_space,
    fixed_training,
    nested,
    recipes,
)


def test_samples_hold_only_their_architecture_and_all_build():
    space = define_space(list(ARCHITECTURES), ["random", "frozen", "finetune"])
    torch.manual_seed(0)  # the told values: a fixed run, not one that may skip an arch
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    seen = set()
    ids = torch.randint(2, 50, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.bool)
    for step in range(300):  # past TPE's random start-up trials, until every arch came
        if step >= 60 and seen == set(ARCHITECTURES):
            break
        trial = study.ask()
        space(trial)
        config = nested(trial.params)
        arch, params, train = decode(config)
        seen.add(arch)
        assert set(config) == {"arch", arch, "train"}
        assert ("embedding_lr" in train) == (train["embedding"] == "finetune")
        model = build_model(arch, make_embedding(50, 64, "random"), 3, params).eval()
        assert model(ids, mask).shape == (3, 3)
        study.tell(trial, float(torch.rand(())))
    assert seen == set(ARCHITECTURES)


def test_lm_trials_do_not_sample_the_shape_the_checkpoint_sets():
    """bilstm / transformer trials on a pretrained encoder take its shape: the space must not
    sample what would be overridden; ULMFiT's steps are searched only where they apply."""
    space = define_space(["bilstm", "transformer", "dan"], ["random", "lm_frozen", "lm_finetune"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        space(trial)
        config = nested(trial.params)
        arch, mode = config["arch"], config["train"]["embedding"]
        seen.add((arch, mode))
        sampled = set(config.get(arch, {}))
        shape = {"bilstm": {"hidden", "layers"}, "transformer": {"d_model", "heads", "layers"}}
        if arch in shape:
            assert bool(sampled & shape[arch]) == (mode == "random"), (arch, mode, sampled)
        ulmfit = {"lr_decay", "gradual_unfreeze"} & set(config["train"])
        assert bool(ulmfit) == (mode == "lm_finetune" and arch != "dan"), (arch, mode)
        study.tell(trial, 0.0)
    assert {("bilstm", "lm_finetune"), ("transformer", "lm_frozen"), ("dan", "random")} <= seen


@pytest.mark.parametrize("gpu", [False, True])
def test_batch_sizes_fit_the_device_and_lr_follows_the_square_root_rule(gpu):
    """On a GPU the space offers large batches, each with the CPU's learning-rate range scaled
    by sqrt(batch / 64); on the CPU the space is as it was (the same range at every batch).
    TPE past its start-up trials keeps within the range of the batch it drew."""
    space = define_space(["dan"], ["random"], gpu=gpu)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    batches = set()
    for _ in range(40):
        trial = study.ask()
        space(trial)
        train = nested(trial.params)["train"]
        batch, lr = train["batch_size"], train["lr"]
        batches.add(batch)
        scale = math.sqrt(batch / REFERENCE_BATCH) if gpu else 1.0
        low, high = LR_RANGE
        assert low * scale * (1 - 1e-9) <= lr <= high * scale * (1 + 1e-9), (batch, lr)
        study.tell(trial, lr)  # TPE is pulled towards the range's top: it must stay inside
    assert batches <= set(GPU_BATCHES if gpu else CPU_BATCHES) and len(batches) >= 3


def test_gpu_recipes_run_at_the_gpu_batch_with_a_scaled_rate():
    cpu = {p["arch"]: p for p in recipes(list(ARCHITECTURES), ["random", "finetune"])}
    gpu = {p["arch"]: p for p in recipes(list(ARCHITECTURES), ["random", "finetune"], gpu=True)}
    for arch, point in gpu.items():
        assert point["train/batch_size"] == GPU_RECIPE_BATCH
        ratio = math.sqrt(GPU_RECIPE_BATCH / cpu[arch]["train/batch_size"])
        assert point["train/lr"] == pytest.approx(cpu[arch]["train/lr"] * ratio)
        assert {k: v for k, v in point.items() if k not in ("train/batch_size", "train/lr")} == {
            k: v for k, v in cpu[arch].items() if k not in ("train/batch_size", "train/lr")
        }


def test_training_keys_a_search_fixes_are_never_sampled():
    """`search.run batch_size=1024 optimizer=sgd` holds for every trial, recipes included."""
    train = TrainConfig(batch_size=1024, optimizer="sgd", grad_clip=0.5)
    fixed = fixed_training(train, ["batch_size", "optimizer", "grad_clip"])
    assert fixed == {"batch_size": 1024, "optimizer": "sgd"}  # grad_clip is never searched
    space = define_space(["dan"], ["random"], gpu=True, fixed=fixed)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        trial = study.ask()
        space(trial)
        train = nested(trial.params)["train"]
        assert not {"batch_size", "optimizer"} & set(train)
        scale = math.sqrt(1024 / REFERENCE_BATCH)  # the range follows the fixed batch
        assert LR_RANGE[0] * scale * (1 - 1e-9) <= train["lr"] <= LR_RANGE[1] * scale * (1 + 1e-9)
        study.tell(trial, 0.0)
    for point in recipes(["dan", "bilstm"], ["random"], gpu=True, fixed=fixed):
        assert "train/batch_size" not in point and "train/optimizer" not in point
