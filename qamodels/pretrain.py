"""Language-model pretraining shared by qamodels.lm (BiLSTM) and qamodels.mlm (Transformer):
its config, the unlabeled text as sequences, the loop with held-out perplexity, the saved
checkpoint and its loading by classifiers, and the two commands' shared main.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from data_prep.cli import ConfigError, arg
from data_prep.store import PreparedData
from qamodels.batches import DeviceSplit, iterate


@dataclass(frozen=True)
class PretrainConfig:
    """What every language-model pretraining shares (qamodels.lm, qamodels.mlm)."""

    epochs: int = arg(3, "passes over the unlabeled text", min=1)
    batch_size: int = arg(128, "sequences per batch", min=1)
    lr: float = arg(2e-3, "AdamW learning rate", above=0)
    grad_clip: float = arg(1.0, "gradient norm clip", above=0)
    heldout: float = arg(0.1, "share of the unlabeled sequences kept for perplexity", above=0)
    max_rows: int = arg(0, "0: all unlabeled sequences; else a seeded subset", min=0)
    seed: int = arg(0, "seed of weights and batch order")
    device: str = arg("auto", "auto, cpu, cuda or cuda:N")
    out: str = arg("~/.qatune/lm.pt", "where the encoder checkpoint is saved")


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
        for batch in tqdm(
            batches, desc=f"{kind} lm epoch {epoch + 1}", leave=False, mininterval=1, disable=None
        ):
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
        raise ConfigError(
            f"lm_checkpoint={path} was trained on another vocabulary ({len(checkpoint['vocab'])} "
            f"tokens vs {len(vocab)}); pretrain it on this prepared dataset"
        )
    return checkpoint


def run_cli(argv: list[str], config_class: type, pretrain_fn) -> int:
    """`python -m qamodels.lm|mlm key=value ...`: data keys and pretraining keys."""
    from data_prep import PrepConfig, prepared_data
    from data_prep.cli import fail, help_text, split_overrides
    from data_prep.errors import QatuneError

    if any(a in ("-h", "--help") for a in argv):
        print(sys.modules["__main__"].__doc__ or "")
        print(help_text(config_class, "pretraining keys:"))
        print(help_text(PrepConfig, "data keys:"))
        return 0
    try:
        prep, config = split_overrides(argv, PrepConfig, config_class)
        data = prepared_data(prep)
    except QatuneError as err:
        return fail(err)
    history = pretrain_fn(data, config)
    print(
        f"perplexity by epoch: {[round(p, 1) for p in history['perplexity']]}; saved {config.out}"
    )
    return 0
