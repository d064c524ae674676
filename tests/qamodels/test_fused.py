"""Fused trials: a group's members score what the same trials score apart, stop alone, and
draw their own dropout."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from qamodels.config import TrainConfig
from qamodels.fused import FusedGroup, NotFusable, group_key
from qamodels.layers import SpatialDropout
from qamodels.member_dropout import MemberDropout, member_dropouts
from qamodels.trainer import Trainer
from tests.conftest import test_device

ROWS = 1500
NO_DROPOUT = {
    "dan": {"dropout": 0.0, "word_dropout": 0.0, "hidden": 64, "ngrams": 2, "buckets": 5000},
    "cnn_parallel": {
        "dropout": 0.0,
        "spatial_dropout": 0.0,
        "filters": 16,
        "hidden": 32,
        "windows": (2, 3),
        "norm": "layer",
    },  # fmt: skip
    "cnn_stacked": {
        "dropout": 0.0,
        "spatial_dropout": 0.0,
        "filters": 16,
        "hidden": 32,
        "layers": 2,
        "norm": "batch",
    },  # fmt: skip
}
# Each member its own rate, decay, smoothing, clipping, weight average and schedule warm-up.
VARIED = [
    {"lr": 2e-3, "weight_decay": 0.01, "label_smoothing": 0.0, "ema_epochs": 1.0},
    {
        "lr": 5e-3,
        "weight_decay": 0.1,
        "label_smoothing": 0.1,
        "ema_epochs": 0.0,
        "grad_clip": 0.0,
        "warmup_fraction": 0.3,
    },  # fmt: skip
    {
        "lr": 1e-3,
        "weight_decay": 0.0,
        "label_smoothing": 0.05,
        "ema_epochs": 0.5,
        "grad_clip": 0.1,
    },  # fmt: skip
]


def configs(arch: str, epochs: int = 2, **fixed) -> list[TrainConfig]:
    base = TrainConfig(arch=arch, epochs=epochs, batch_size=64, max_train_rows=ROWS,
                       embedding_dim=32, device=test_device(), progress=False, **fixed)  # fmt: skip
    return [dataclasses.replace(base, **varied) for varied in VARIED]


# The wide DAN that starts as the baseline's SVM: each member gets that start as Trainer does.
WIDE_FIRST = {"dropout": 0.0, "word_dropout": 0.0, "hidden": 64, "wide": 2, "wide_first": 1,
              "wide_lr": 3.0}  # fmt: skip
CASES = [(arch, params) for arch, params in sorted(NO_DROPOUT.items())] + [("dan", WIDE_FIRST)]


@pytest.mark.parametrize(("arch", "shape"), CASES)
def test_a_fused_group_scores_what_its_trials_score_apart(arch, shape, prepared_sample):
    group_configs = configs(arch)
    params = [shape] * len(group_configs)
    fused = FusedGroup(group_configs, prepared_sample, params).fit()
    for config, together in zip(group_configs, fused, strict=True):
        apart = Trainer(config, prepared_sample, shape).fit()
        assert len(together.history) == len(apart.history) == config.epochs
        for mine, theirs in zip(together.history, apart.history, strict=True):
            for key in ("train_loss", "valid_loss", "lr"):
                assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
            assert abs(mine["valid_accuracy"] - theirs["valid_accuracy"]) <= 2e-3  # a row
    rates = [run.history[-1]["valid_loss"] for run in fused]
    assert len(set(rates)) == len(rates)  # the members did train apart from each other


def test_a_member_stopped_by_the_caller_leaves_the_others_as_they_were(prepared_sample):
    group_configs = configs("dan", epochs=3)
    params = [NO_DROPOUT["dan"]] * len(group_configs)
    alone = FusedGroup(group_configs, prepared_sample, params).fit()
    group = FusedGroup(group_configs, prepared_sample, params)

    def stop_the_first_after_one_epoch(index, end):
        if index == 0 and end.metrics["epoch"] == 1:
            group.stop(0, "stopped by the scheduler")

    stopped = group.fit(stop_the_first_after_one_epoch)
    assert len(stopped[0].history) == 1 and stopped[0].stopped == "stopped by the scheduler"
    for index in (1, 2):
        assert len(stopped[index].history) == 3
        for mine, theirs in zip(stopped[index].history, alone[index].history, strict=True):
            assert mine["valid_loss"] == pytest.approx(theirs["valid_loss"], rel=1e-4)
    assert group.live == []
    best = group.members[1].best_state
    assert all(torch.isfinite(t).all() for t in best.values() if t.is_floating_point())


def test_each_member_drops_at_its_own_rate():
    model = member_dropouts(torch.nn.Sequential(torch.nn.Dropout(0.5), SpatialDropout(0.2)))
    assert [type(m) for m in model] == [MemberDropout, MemberDropout]
    stacked, buffers = torch.func.stack_module_state([model, member_dropouts(
        torch.nn.Sequential(torch.nn.Dropout(0.1), SpatialDropout(0.0)))])  # fmt: skip
    base = model.to("meta").train()

    def run(p, b, x):
        return torch.func.functional_call(base, (p, b), (x,))

    x = torch.ones(64, 50, 40)
    out = torch.vmap(run, in_dims=(0, 0, None), randomness="different")(stacked, buffers, x)
    kept = (out != 0).float().mean((1, 2, 3))
    assert kept[0].item() == pytest.approx(0.5 * 0.8, abs=0.02)
    assert kept[1].item() == pytest.approx(0.9, abs=0.02)
    assert out[0][out[0] != 0].unique().tolist() == pytest.approx([1 / (0.5 * 0.8)])
    whole_channels = (out[0] != 0).float().mean(1)  # spatial: a channel dropped at every step
    assert ((whole_channels == 0) | (whole_channels > 0.2)).all()


def test_configs_that_differ_in_shape_are_not_one_group():
    config = TrainConfig(arch="dan")
    assert group_key(config, {"hidden": 64, "dropout": 0.1}) == group_key(
        dataclasses.replace(config, lr=0.1), {"hidden": 64, "dropout": 0.4}
    )
    assert group_key(config, {"hidden": 64}) != group_key(config, {"hidden": 128})
    assert group_key(config, {}) != group_key(dataclasses.replace(config, batch_size=7), {})
    with pytest.raises(NotFusable, match="optimizer=sgd"):
        group_key(dataclasses.replace(config, optimizer="sgd"), {})
