"""Every architecture and embedding mode learns; frozen stays frozen; own learning rates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qamodels.classifier import build_classifier
from qamodels.config import TrainConfig
from qamodels.embedding import MODES
from qamodels.optim import make_optimizer
from qamodels.registry import ARCHITECTURES
from qamodels.trainer import Trainer, predict_logits
from tests.conftest import first_rows, test_device
from tests.qamodels.test_masking import SMALL


def small_batch(data, rows: int = 32):
    batch = first_rows(data.train, rows)
    return batch.ids, batch.mask, batch.label


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_every_architecture_and_embedding_mode_overfits(prepared_sample, lm_checkpoint, arch, mode):
    config = TrainConfig(
        arch=arch,
        embedding=mode,
        embedding_dim=32,
        lm_checkpoint=lm_checkpoint,
        # On the frozen encoder of its own LM (bilstm/lm_frozen) only the head learns.
        lr=1e-2 if (arch, mode) == ("bilstm", "lm_frozen") else 3e-3,
        embedding_lr=3e-3,
        weight_decay=0.0,
        optimizer="adam",
        device=test_device(),
    )
    params = dict(SMALL[arch], dropout=0.0)
    torch.manual_seed(0)
    model = build_classifier(config, prepared_sample, params)[0].to(config.device)
    optimizer = make_optimizer(model, config)
    ids, mask, label = small_batch(prepared_sample)
    model.train()
    for _ in range(150):
        loss = F.cross_entropy(model(ids, mask), label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(ids, mask).argmax(-1) == label).float().mean().item()
    # Only the head learns on the frozen encoder of its own LM (bilstm/lm_frozen): on an H100
    # (cuDNN's LSTM) it reached 31 of 32 items, so that case needs most, not all, of them.
    needed = 0.9 if (arch, mode) == ("bilstm", "lm_frozen") else 1.0
    assert accuracy >= needed, f"{arch}/{mode} reached {accuracy:.2f} on 32 items (loss {loss:.3f})"


def test_frozen_embeddings_stay_unchanged(prepared_sample):
    config = TrainConfig(
        arch="dan",
        embedding="frozen",
        epochs=1,
        max_train_rows=512,
        device=test_device(),
        progress=False,
    )
    trainer = Trainer(config, prepared_sample)
    before = trainer.model.embedding.weight.detach().clone()
    head_before = [p.detach().clone() for p in trainer.model.head.parameters()]
    trainer.fit()
    assert torch.equal(trainer.model.embedding.weight, before)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(head_before, trainer.model.head.parameters(), strict=False)
    )


def test_joint_finetuning_uses_its_own_learning_rate(prepared_sample):
    """Adam's first step moves every parameter by about its group's lr: the embedding by
    embedding_lr, the rest by lr."""
    config = TrainConfig(
        arch="dan",
        embedding="finetune",
        lr=1e-2,
        embedding_lr=1e-4,
        weight_decay=0.0,
        optimizer="adam",
        scheduler="none",
        device=test_device(),
    )
    model = build_classifier(config, prepared_sample, dict(dropout=0.0))[0].to(config.device)
    optimizer = make_optimizer(model, config)
    ids, mask, label = small_batch(prepared_sample)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    F.cross_entropy(model(ids, mask), label).backward()
    optimizer.step()
    moved = {n: (p.detach() - before[n]).abs().max().item() for n, p in model.named_parameters()}
    assert moved["embedding.weight"] == pytest.approx(1e-4, rel=0.05)
    assert moved["head.net.2.weight"] == pytest.approx(1e-2, rel=0.05)


def test_non_finite_loss_stops_with_a_reason(prepared_sample):
    config = TrainConfig(
        arch="dan", epochs=2, max_train_rows=256, device=test_device(), progress=False
    )
    trainer = Trainer(config, prepared_sample)
    with torch.no_grad():
        trainer.model.head.net[-1].bias.fill_(float("nan"))
    result = trainer.fit()
    assert result.stopped.startswith("non-finite training loss (nan) at epoch 1 step 1")
    assert result.history == []


def test_weights_that_diverge_after_a_finite_loss_are_never_kept(prepared_sample):
    """One step an epoch and a huge lr: the loss (taken before the update) was finite, the
    weights were not, and that epoch was scored and exported as the best (predicting nan)."""
    config = TrainConfig(arch="dan", epochs=3, max_train_rows=256, batch_size=256, lr=1e9,
                         device=test_device(), progress=False)  # fmt: skip
    trainer = Trainer(config, prepared_sample)
    result = trainer.fit()
    assert result.stopped.startswith("non-finite")
    for epoch in result.history:
        assert np.isfinite(epoch["valid_loss"])
    if result.best:  # the best epoch's weights: finite outputs
        assert np.isfinite(trainer.evaluate()[0]["valid_loss"])


def test_label_smoothing_bounds_the_confidence(prepared_sample):
    """Targets with a share s of each label spread over the K classes are fitted at a top
    probability of 1 - s + s/K; without smoothing it goes to 1."""
    classes, top = len(prepared_sample.labels), {}
    for share in (0.0, 0.3):
        config = TrainConfig(
            arch="dan", max_train_rows=64, batch_size=64, lr=1e-2, weight_decay=0.0,
            optimizer="adam", scheduler="none", label_smoothing=share, device=test_device(),
            progress=False,
        )  # fmt: skip
        params = {"hidden": 64, "dropout": 0.0, "word_dropout": 0.0}
        trainer = Trainer(config, prepared_sample, params)
        for epoch in range(150):
            trainer.train_epoch(epoch)
        logits = predict_logits(trainer.model, trainer.train_split)
        top[share] = torch.softmax(logits, -1).max(-1).values.mean().item()
    assert top[0.0] > 0.98
    assert top[0.3] == pytest.approx(1 - 0.3 + 0.3 / classes, abs=0.02)
