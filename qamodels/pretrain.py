"""Language-model pretraining shared by qamodels.lm (BiLSTM) and qamodels.mlm (Transformer):
its config, the text as sequences, ULMFiT's stages with slanted triangular learning rates,
the saved checkpoint and its loading by classifiers, and the two commands' shared main.

The stages (Howard & Ruder 2018, with the text at hand):
1. general: extra text files (`lm_text=`, one text per line) with the unlabeled text; skipped
   without lm_text (ULMFiT's Wikitext-103 stage; no download here).
2. target: the task's own text: the unlabeled split's questions and answers and the train
   split's questions (labels unused). Perplexity is measured on held-out unlabeled text.
Each stage runs one slanted triangular cycle (linear warm-up, linear decay) of AdamW.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from data_prep.atomic import atomic_path
from data_prep.cli import ConfigError, arg
from data_prep.store import PreparedData
from data_prep.tokenize import encode_texts
from qamodels.batches import DeviceSplit, iterate
from qamodels.device import autocast, resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PretrainConfig:
    """What every language-model pretraining shares (qamodels.lm, qamodels.mlm)."""

    epochs: int = arg(4, "passes over the task's text (ULMFiT's target stage)", min=1)
    general_epochs: int = arg(1, "passes over lm_text= first (ULMFiT's general stage)", min=0)
    lm_text: str = arg("", "extra text files, one text per line, comma-separated")
    include_train: bool = arg(True, "the train split's questions join the text (no labels)")
    batch_size: int = arg(128, "sequences per batch", min=1)
    lr: float = arg(3e-3, "peak AdamW learning rate of the slanted triangular cycle", above=0)
    warmup_fraction: float = arg(0.1, "share of a stage's steps spent rising", above=0)
    weight_decay: float = arg(0.01, "AdamW weight decay", min=0)
    grad_clip: float = arg(1.0, "gradient norm clip", above=0)
    heldout: float = arg(0.1, "share of the unlabeled sequences kept for perplexity", above=0)
    max_rows: int = arg(0, "0: all sequences of a stage; else a seeded subset", min=0)
    seed: int = arg(0, "seed of weights and batch order")
    device: str = arg("auto", "auto, cpu, cuda or cuda:N")
    amp: bool = arg(True, "bf16 autocast on CUDA")
    out: str = arg("~/.qatune/lm.pt", "where the encoder checkpoint is saved")


Texts = list[tuple[np.ndarray, np.ndarray]]  # (ids (n, t), lengths (n,)) blocks


def read_lm_text(paths: str, data: PreparedData) -> Texts:
    """The lm_text files, encoded with the dataset's vocabulary."""
    blocks = []
    for name in filter(None, (p.strip() for p in paths.split(","))):
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"lm_text={name}: no such file; give text files, one text per line")
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            raise ConfigError(f"lm_text={name}: no text in the file")
        width = data.unlabeled.extra["answer_ids"].shape[1]
        encoded = encode_texts(lines, data.vocab, width, data.expand_vocab)
        blocks.append((encoded.ids, encoded.length))
    return blocks


def sequences(blocks: Texts, config: PretrainConfig, device: torch.device) -> DeviceSplit:
    """Blocks of encoded text as one shuffled set of sequences on the device."""
    width = max(ids.shape[1] for ids, _ in blocks)
    ids = torch.zeros(sum(len(i) for i, _ in blocks), width, dtype=torch.long)
    row = 0
    for block, _ in blocks:
        ids[row : row + len(block), : block.shape[1]] = torch.from_numpy(np.array(block))
        row += len(block)
    length = torch.cat([torch.from_numpy(np.array(n)).long() for _, n in blocks])
    keep = length >= 2  # a one-token sequence has nothing to predict
    order = torch.randperm(int(keep.sum()), generator=torch.Generator().manual_seed(config.seed))
    ids, length = ids[keep][order], length[keep][order]
    if config.max_rows:
        ids, length = ids[: config.max_rows], length[: config.max_rows]
    width = int(length.max()) if len(length) else 1
    labels = torch.zeros_like(length)
    return DeviceSplit(ids[:, :width].to(device), length.to(device), labels.to(device), length)


def stage_texts(data: PreparedData, config: PretrainConfig) -> dict[str, Texts]:
    """Each stage's text blocks, and the held-out unlabeled block (never trained on)."""
    unlabeled = data.unlabeled
    questions = (unlabeled.ids, unlabeled.length)
    answers = (unlabeled.extra["answer_ids"], unlabeled.extra["answer_length"])
    cut = max(1, int(len(unlabeled) * config.heldout))
    heldout = [(ids[:cut], n[:cut]) for ids, n in (questions, answers)]
    kept = [(ids[cut:], n[cut:]) for ids, n in (questions, answers)]
    target = kept + ([(data.train.ids, data.train.length)] if config.include_train else [])
    general = read_lm_text(config.lm_text, data) if config.lm_text else []
    return {"general": general + kept if general else [], "target": target, "heldout": heldout}


@torch.no_grad()
def perplexity(model: nn.Module, heldout: DeviceSplit, batch_size: int) -> float:
    model.eval()
    total, count = torch.zeros(()), torch.zeros(())
    for batch in iterate(heldout, batch_size):
        loss, n = model.loss(batch.ids, batch.mask)  # both on the device: one read at the end
        total, count = total.to(loss.device) + loss.float() * n, count.to(loss.device) + n
    return math.exp(float(total) / max(1.0, float(count)))


def slanted_triangular(optimizer, steps: int, warmup_fraction: float):
    """ULMFiT's schedule: a short linear rise to the peak, then a long linear decay to 1%.
    Not qamodels.optim's `onecycle` (OneCycleLR from peak/25 down to ~0): tried as the one
    schedule for both, it slowed short pretraining runs (perplexity after 2 small epochs
    1,917 vs 1,385) and the benchmarks' LMs were trained with this one."""
    rise = max(1, int(steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < rise:
            return (step + 1) / rise
        return max(0.01, 1 - (step - rise) / max(1, steps - rise))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def run_stage(model: nn.Module, text: DeviceSplit, epochs: int, config: PretrainConfig,
              name: str, heldout: DeviceSplit, history: dict) -> None:  # fmt: skip
    """One slanted triangular cycle of `epochs` passes; losses stay on the device."""
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps = epochs * math.ceil(len(text) / config.batch_size)
    schedule = slanted_triangular(optimizer, steps, config.warmup_fraction)
    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(epochs):
        model.train()
        losses = []
        batches = iterate(text, config.batch_size, shuffle=True, bucket=True, generator=generator)
        for batch in tqdm(batches, desc=f"{name} epoch {epoch + 1}", leave=False,
                          mininterval=1, disable=None):  # fmt: skip
            with autocast(device, config.amp):
                loss, _ = model.loss(batch.ids, batch.mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            schedule.step()
            losses.append(loss.detach())
        history["train_loss"].append(float(torch.stack(losses).float().mean()))
        history["perplexity"].append(perplexity(model, heldout, config.batch_size))
        history["stage"].append(name)
        log.info("%s epoch %d: held-out perplexity %.1f", name, epoch + 1,
                 history["perplexity"][-1])  # fmt: skip


def fit_language_model(
    model: nn.Module, data: PreparedData, config: PretrainConfig, kind: str, encoder_params: dict
) -> dict:
    """ULMFiT's stages for any model with `.loss(ids, mask)` and `.encoder`; saves the
    encoder with its vocabulary, its kind (the classifier arch it fits) and its parameters."""
    device = resolve_device(config.device)
    texts = stage_texts(data, config)
    heldout = sequences(texts["heldout"], config, device)
    model = model.to(device)
    history = {"perplexity": [perplexity(model, heldout, config.batch_size)],
               "train_loss": [], "stage": ["init"]}  # fmt: skip
    stages = [("general", config.general_epochs), ("target", config.epochs)]
    for name, epochs in stages:
        if texts[name] and epochs:
            text = sequences(texts[name], config, device)
            run_stage(model, text, epochs, config, f"{kind} lm {name}", heldout, history)
    state = {k: v.cpu() for k, v in model.encoder.state_dict().items()}
    save_atomic(
        {"kind": kind, "encoder": state, "encoder_params": encoder_params,
         "config": asdict(config), "vocab": data.vocab, "history": history},
        Path(config.out).expanduser(),
    )  # fmt: skip
    return history


def save_atomic(checkpoint: dict, out: Path) -> None:
    """Written beside, then renamed: an interrupted run never leaves a half checkpoint that a
    later search would take for a finished one."""
    with atomic_path(out) as partial:
        torch.save(checkpoint, partial)


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
        history = pretrain_fn(data.without_test(), config)
    except QatuneError as err:
        return fail(err)
    print(
        f"perplexity by epoch: {[round(p, 1) for p in history['perplexity']]}; saved {config.out}"
    )
    return 0
