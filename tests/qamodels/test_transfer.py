"""Language-model pretraining and ULMFiT-style transfer into the BiLSTM classifier."""

from __future__ import annotations

import pytest
import torch

from qamodels.checkpoint import load_model
from qamodels.config import TrainConfig
from qamodels.lm import LMConfig, pretrain
from qamodels.optim import layer_groups
from qamodels.trainer import Trainer
from tests.conftest import first_rows, test_device


@pytest.mark.slow  # ~50 s of pretraining: python -m pytest -m slow
def test_perplexity_falls_during_pretraining(prepared_sample, tmp_path):
    config = LMConfig(
        embedding_dim=32,
        hidden=64,
        epochs=2,
        max_rows=1500,
        lr=5e-3,
        out=str(tmp_path / "lm.pt"),
        device=test_device(),
    )
    history = pretrain(prepared_sample, config)
    before, first, second = history["perplexity"]
    assert before > len(prepared_sample.vocab) / 10  # untrained: spread over the vocabulary
    assert second < first < before / 2
    saved = torch.load(tmp_path / "lm.pt", weights_only=True)
    assert saved["vocab"] == prepared_sample.vocab


def test_classifier_starts_from_the_pretrained_encoder(prepared_sample, lm_checkpoint):
    config = TrainConfig(
        arch="bilstm", embedding="lm_finetune", lm_checkpoint=lm_checkpoint, device=test_device()
    )
    model = Trainer(config, prepared_sample).model
    pretrained = torch.load(lm_checkpoint, weights_only=True)["encoder"]
    state = model.encoder.state_dict()
    assert set(pretrained) == set(state)
    for name, tensor in pretrained.items():
        assert torch.equal(state[name].cpu(), tensor), name


def test_gradual_unfreezing_and_discriminative_rates(prepared_sample, lm_checkpoint):
    config = TrainConfig(
        arch="bilstm",
        embedding="lm_finetune",
        lm_checkpoint=lm_checkpoint,
        epochs=3,
        gradual_unfreeze=True,
        lr_decay=2.6,
        lr=1e-2,
        embedding_lr=1e-2,
        scheduler="none",
        max_train_rows=256,
        batch_size=64,
        patience=5,
        device=test_device(),
        progress=False,
    )
    trainer = Trainer(config, prepared_sample)
    groups = layer_groups(trainer.model)  # embedding, lstm layer 0, lstm layer 1, head
    assert len(groups) == 4
    lrs = [g["lr"] for g in trainer.optimizer.param_groups]
    assert lrs[1:] == [1e-2 / 2.6**2, 1e-2 / 2.6, 1e-2]  # lower layers learn more slowly
    changed_by_epoch = []
    for epoch in range(3):
        before = [[p.detach().clone() for p in g] for g in groups]
        trainer.train_epoch(epoch)
        changed_by_epoch.append(
            [
                any(not torch.equal(a, b) for a, b in zip(old, g, strict=False))
                for old, g in zip(before, groups, strict=False)
            ]
        )
    assert changed_by_epoch == [
        [False, False, False, True],  # epoch 1: the head only
        [False, False, True, True],  # epoch 2: + the top LSTM layer
        [False, True, True, True],  # epoch 3: + the next one down
    ]


@pytest.mark.slow  # ~40 s of pretraining
def test_masked_lm_perplexity_falls_and_transformer_starts_from_it(prepared_sample, tmp_path):
    from qamodels.mlm import MLMConfig
    from qamodels.mlm import pretrain as pretrain_mlm

    out = tmp_path / "mlm.pt"
    config = MLMConfig(
        embedding_dim=32,
        d_model=32,
        heads=2,
        layers=2,
        epochs=2,
        max_rows=1500,
        lr=3e-3,
        out=str(out),
        device=test_device(),
    )
    before, first, second = pretrain_mlm(prepared_sample, config)["perplexity"]
    assert second < first < before / 2
    classifier = Trainer(
        TrainConfig(
            arch="transformer", embedding="lm_frozen", lm_checkpoint=str(out), device=test_device()
        ),
        prepared_sample,
    )
    pretrained = torch.load(out, weights_only=True)
    assert pretrained["kind"] == "transformer"
    state = classifier.model.encoder.state_dict()
    assert set(state) == set(pretrained["encoder"])
    for name, tensor in pretrained["encoder"].items():
        assert torch.equal(state[name].cpu(), tensor), name
    assert classifier.params["d_model"] == 32 and classifier.params["layers"] == 2
    # The exported model records the encoder's real shape and loads back.
    run = classifier.save_run(tmp_path / "run", classifier.fit())
    model, _ = load_model(run, test_device())
    batch = first_rows(prepared_sample.valid, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            model(batch.ids, batch.mask), classifier.model.eval()(batch.ids, batch.mask)
        )


def test_lm_frozen_keeps_the_whole_pretrained_encoder(prepared_sample, lm_checkpoint):
    config = TrainConfig(arch="bilstm", embedding="lm_frozen", lm_checkpoint=lm_checkpoint,
                         epochs=1, max_train_rows=256, device=test_device(),
                         progress=False)  # fmt: skip
    trainer = Trainer(config, prepared_sample)
    head_before = [p.detach().clone() for p in trainer.model.head.parameters()]
    trainer.fit()
    pretrained = torch.load(lm_checkpoint, weights_only=True)
    for name, tensor in trainer.model.encoder.state_dict().items():
        assert torch.equal(tensor.cpu(), pretrained["encoder"][name]), name
    head = trainer.model.head.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(head_before, head, strict=True))
    assert trainer.transferred == pretrained["encoder_params"]


def test_pretraining_text_is_the_tasks_plus_lm_text(prepared_sample, tmp_path):
    from data_prep.cli import ConfigError
    from qamodels.pretrain import PretrainConfig, stage_texts

    extra = tmp_path / "more.txt"
    extra.write_text("does it fit a phone ?\n\nworks with the xbox\n")
    texts = stage_texts(prepared_sample, PretrainConfig(lm_text=str(extra)))
    rows = [len(ids) for ids, _ in texts["target"]]
    held = len(texts["heldout"][0][0])
    unlabeled = len(prepared_sample.unlabeled)
    # questions and answers of the unlabeled split (less the held-out), and train's questions
    assert rows == [unlabeled - held, unlabeled - held, len(prepared_sample.train)]
    assert len(texts["general"][0][0]) == 2  # the two non-empty lines first
    alone = stage_texts(prepared_sample, PretrainConfig(include_train=False))
    assert len(alone["target"]) == 2 and alone["general"] == []
    with pytest.raises(ConfigError, match="lm_text=/no/such.txt: no such file"):
        stage_texts(prepared_sample, PretrainConfig(lm_text="/no/such.txt"))


def test_lm_loss_without_host_syncs_equals_the_adaptive_softmax():
    """The GPU's fixed-shape path (every position's log-probabilities, real ones summed) and
    the adaptive softmax's own row selection give the same loss."""
    from qamodels.lm import adaptive_softmax, token_nll

    torch.manual_seed(0)
    softmax = adaptive_softmax(16, 3000)
    states = torch.randn(4, 7, 16)
    targets = torch.randint(0, 3000, (4, 7))
    mask = torch.arange(7) < torch.tensor([7, 3, 1, 5])[:, None]
    selected = token_nll(softmax, states, targets, mask, fixed_shapes=False)
    fixed = token_nll(softmax, states, targets, mask, fixed_shapes=True)
    torch.testing.assert_close(fixed, selected, rtol=1e-5, atol=1e-4)


def test_masked_lm_predicts_its_share_of_each_rows_real_tokens():
    from qamodels.mlm import MaskedLanguageModel, MLMConfig

    model = MaskedLanguageModel(50, MLMConfig(embedding_dim=8, d_model=8, heads=2, layers=1))
    lengths = torch.tensor([20, 7, 1, 13])
    mask = torch.arange(20) < lengths[:, None]
    ids = torch.randint(2, 50, (4, 20)) * mask
    corrupted, position, chosen, original = model.corrupt(ids, mask, torch.Generator())
    assert chosen.sum(1).tolist() == [3, 2, 1, 2]  # ceil(0.15 * length)
    for row in range(4):
        picked = position[row][chosen[row]]
        assert (picked < lengths[row]).all() and len(set(picked.tolist())) == len(picked)
        assert torch.equal(original[row], ids[row, position[row]])
    changed = corrupted != ids
    assert not (changed & ~mask).any()  # pads are never touched
    model.eval()
    loss, count = model.loss(ids, mask)
    assert count.item() == 8 and torch.isfinite(loss)
    assert torch.equal(model.loss(ids, mask)[0], loss)  # evaluation draws the same choices
