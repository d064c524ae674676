"""Bidirectional LSTM language model pretrained on the unlabeled questions and answers.

    python -m qamodels.lm raw_dir=../shared/data/amazon_qa categories=all valid_size=0.1 \
        train_size=0.6 epochs=3 out=~/.qatune/lm.pt

The forward stack predicts the next token, the backward stack the previous one; the encoder
(embedding + both stacks, qamodels.bilstm.BiLSTMEncoder) is saved with its vocabulary, for
classifiers to start from (`embedding=lm_finetune lm_checkpoint=...`). Perplexity on held-out
unlabeled text is reported each epoch.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from data_prep.store import PreparedData
from qamodels.batches import DeviceSplit, iterate
from qamodels.bilstm import BiLSTMEncoder
from qamodels.embedding import make_embedding


@dataclass(frozen=True)
class PretrainConfig:
    """What every language-model pretraining shares (qamodels.lm, qamodels.mlm)."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    grad_clip: float = 1.0
    heldout: float = 0.1  # share of the unlabeled sequences kept for perplexity
    max_rows: int = 0  # 0: all unlabeled sequences; else a seeded subset
    seed: int = 0
    device: str = "auto"
    out: str = "~/.qatune/lm.pt"


@dataclass(frozen=True)
class LMConfig(PretrainConfig):
    embedding_dim: int = 128
    hidden: int = 256
    layers: int = 1
    spatial_dropout: float = 0.1
    lstm_dropout: float = 0.1


class BiLanguageModel(nn.Module):
    def __init__(self, vocab_size: int, config: LMConfig):
        super().__init__()
        embedding = make_embedding(vocab_size, config.embedding_dim, "random")
        self.encoder = BiLSTMEncoder(
            embedding, config.hidden, config.layers, config.spatial_dropout, config.lstm_dropout
        )
        self.next_token = nn.Linear(config.hidden, vocab_size)
        self.previous_token = nn.Linear(config.hidden, vocab_size)

    def loss(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Mean cross-entropy over both directions, and the number of predicted tokens."""
        states, _ = self.encoder(ids, mask)
        h = self.encoder.hidden
        forward = self.next_token(states[:, :-1, :h])[mask[:, 1:]]
        backward = self.previous_token(states[:, 1:, h:])[mask[:, :-1]]
        logits = torch.cat([forward, backward])
        targets = torch.cat([ids[:, 1:][mask[:, 1:]], ids[:, :-1][mask[:, :-1]]])
        return F.cross_entropy(logits, targets), len(targets)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lm_sequences(data: PreparedData, config: PretrainConfig) -> tuple[DeviceSplit, DeviceSplit]:
    """Unlabeled questions and answers as one set of sequences, split train / held-out."""
    unlabeled = data.unlabeled
    answers, answer_length = unlabeled.extra["answer_ids"], unlabeled.extra["answer_length"]
    width = max(unlabeled.ids.shape[1], answers.shape[1])
    ids = torch.zeros(len(unlabeled) * 2, width, dtype=torch.long)
    ids[: len(unlabeled), : unlabeled.ids.shape[1]] = torch.from_numpy(unlabeled.ids.copy())
    ids[len(unlabeled) :, : answers.shape[1]] = torch.from_numpy(answers.copy())
    length = torch.cat(
        [torch.from_numpy(unlabeled.length.copy()), torch.from_numpy(answer_length.copy())]
    )
    keep = length.long() >= 2  # a one-token sequence has nothing to predict
    order = torch.randperm(int(keep.sum()), generator=torch.Generator().manual_seed(config.seed))
    ids, length = ids[keep][order], length[keep][order].long()
    if config.max_rows:
        ids, length = ids[: config.max_rows], length[: config.max_rows]
    cut = max(1, int(len(ids) * config.heldout))
    device = resolve_device(config.device)

    def part(sl: slice) -> DeviceSplit:
        labels = torch.zeros_like(length[sl]).to(device)
        return DeviceSplit(ids[sl].to(device), length[sl].to(device), labels, length[sl].clone())

    return part(slice(cut, None)), part(slice(0, cut))


@torch.no_grad()
def perplexity(model: nn.Module, heldout: DeviceSplit, batch_size: int) -> float:
    model.eval()
    total, count = 0.0, 0
    for batch in iterate(heldout, batch_size):
        loss, n = model.loss(batch.ids, batch.mask)
        total, count = total + float(loss) * n, count + n
    return math.exp(total / max(1, count))


def pretrain(data: PreparedData, config: LMConfig) -> dict:
    """Train the BiLSTM language model; save its encoder to config.out. Returns history."""
    torch.manual_seed(config.seed)
    model = BiLanguageModel(len(data.vocab), config)
    encoder_params = {"hidden": config.hidden, "layers": config.layers}
    return fit_language_model(model, data, config, "bilstm", encoder_params)


def fit_language_model(
    model: nn.Module, data: PreparedData, config: PretrainConfig, kind: str, encoder_params: dict
) -> dict:
    """The pretraining loop of any model with `.loss(ids, mask)` and `.encoder`; saves the
    encoder with its vocabulary, its kind (the classifier arch it fits) and its parameters."""
    train, heldout = lm_sequences(data, config)
    model = model.to(resolve_device(config.device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    history = {"perplexity": [perplexity(model, heldout, config.batch_size)], "train_loss": []}
    for epoch in range(config.epochs):
        model.train()
        losses = []
        batches = iterate(train, config.batch_size, shuffle=True, bucket=True, generator=generator)
        for batch in tqdm(batches, desc=f"{kind} lm epoch {epoch + 1}", leave=False, mininterval=1):
            loss, _ = model.loss(batch.ids, batch.mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            losses.append(loss.detach())
        history["train_loss"].append(float(torch.stack(losses).mean()))
        history["perplexity"].append(perplexity(model, heldout, config.batch_size))
        print(f"{kind} lm epoch {epoch + 1}: held-out perplexity {history['perplexity'][-1]:.1f}")
    out = Path(config.out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.cpu() for k, v in model.encoder.state_dict().items()}
    torch.save(
        {
            "kind": kind,
            "encoder": state,
            "encoder_params": encoder_params,
            "config": asdict(config),
            "vocab": data.vocab,
            "history": history,
        },
        out,
    )
    return history


def load_lm(path: str, vocab: list[str]) -> dict:
    checkpoint = torch.load(Path(path).expanduser(), weights_only=True)
    if checkpoint["vocab"] != vocab:
        raise ValueError(
            f"lm_checkpoint={path} was trained on another vocabulary ({len(checkpoint['vocab'])} "
            f"tokens vs {len(vocab)}); pretrain it on this prepared dataset"
        )
    return checkpoint


def run_cli(argv: list[str], config_class: type, pretrain_fn) -> int:
    """`python -m qamodels.lm|mlm key=value ...`: data keys and pretraining keys."""
    from data_prep import DATA_ERRORS, PrepConfig, prepared_data
    from data_prep.cli import ConfigError, fail, help_text, split_overrides

    if any(a in ("-h", "--help") for a in argv):
        print(help_text(config_class, "pretraining keys:"))
        return 0
    try:
        prep, config = split_overrides(argv, PrepConfig, config_class)
        data = prepared_data(prep)
    except ConfigError as err:
        return fail(err, 2)
    except DATA_ERRORS as err:
        return fail(err, 1)
    history = pretrain_fn(data, config)
    print(
        f"perplexity by epoch: {[round(p, 1) for p in history['perplexity']]}; saved {config.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:], LMConfig, pretrain))
