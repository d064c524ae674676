"""The define-by-run spaces: conditional on the architecture, and every sample builds."""

from __future__ import annotations

import optuna
import torch

from qamodels.embedding import make_embedding
from qamodels.registry import ARCHITECTURES, build_model
from qamodels.spaces import decode, define_space


def unflatten(params: dict) -> dict:
    """As Ray's OptunaSearch does: 'arch/param' keys become nested dicts."""
    nested: dict = {}
    for key, value in params.items():
        *parents, leaf = key.split("/")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def test_samples_hold_only_their_architecture_and_all_build():
    space = define_space(list(ARCHITECTURES), ["random", "frozen", "finetune"])
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    seen = set()
    ids = torch.randint(2, 50, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.bool)
    for _ in range(60):  # past TPE's random start-up trials
        trial = study.ask()
        space(trial)
        config = unflatten(trial.params)
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
        config = unflatten(trial.params)
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
