"""Transfer benchmark: does LM pretraining beat random init? ULMFiT's steps one by one.

    python bench/transfer_bench.py [settings=default,low_label] [seeds=3] [epochs=6] \
        [lm_epochs=6] [variants=all] [threads=2]

Two settings of the shared sample (categories=all): `default` (valid 0.1, train 0.6, test as
large as valid, the rest unlabeled) and `low_label` (valid 0.1, train 0.1: few labels, much
text). Per setting one bidirectional LM (qamodels.lm, ULMFiT's target stage: unlabeled
questions and answers + train questions) is pretrained (perplexity, tokens/s); then the same
BiLSTM (embedding 128, hidden 128, 1 layer, concat pooling unless said) is trained for the
same epochs from random init and from the LM, over `seeds` seeds. The model is chosen on
valid (best epoch), reported on the test split. Prints Markdown tables (mean ± std).
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from common import REPO, SHARED_DATA

from data_prep import PrepConfig, load, prepare
from data_prep.cli import arg, parse_overrides
from qamodels.batches import DeviceSplit
from qamodels.config import TrainConfig
from qamodels.lm import LMConfig, pretrain
from qamodels.trainer import Trainer, predict_logits
from search.markdown import markdown_table

SETTINGS = {
    "default": ["valid_size=0.1", "train_size=0.6"],
    "low_label": ["valid_size=0.1", "train_size=0.1"],
    # The vocabulary from the unlabeled text too: words the LM saw but no labeled question had.
    "low_label_vocab": ["valid_size=0.1", "train_size=0.1", "vocab_from=train+unlabeled"],
}
# The recipe this bench found (qamodels.spaces.TRANSFER): all layers at one rate with the
# slanted triangular schedule, concat pooling; ULMFiT's other steps added back one by one.
TRANSFER = {"embedding": "lm_finetune", "lr_decay": 1.0, "gradual_unfreeze": False,
            "scheduler": "onecycle"}  # fmt: skip
ULMFIT = {**TRANSFER, "lr_decay": 2.6, "gradual_unfreeze": True}
# name: (training keys, model params) laid over the shared base below.
VARIANTS = {
    "random init": ({"embedding": "random"}, {}),
    "lm_frozen (encoder frozen)": ({"embedding": "lm_frozen"}, {}),
    "lm_finetune (recipe)": (TRANSFER, {}),
    "+ discriminative lr (2.6)": ({**TRANSFER, "lr_decay": 2.6}, {}),
    "+ gradual unfreezing": ({**TRANSFER, "gradual_unfreeze": True}, {}),
    "+ both: ULMFiT as published": (ULMFIT, {}),
    "- slanted triangular lr (constant)": ({**TRANSFER, "scheduler": "none"}, {}),
    "- concat pooling (max)": (TRANSFER, {"pooling": "max"}),
    "lm_finetune as the issue ran it (lr 3e-3, max)": (
        {"embedding": "lm_finetune", "lr": 3e-3},
        {"pooling": "max"},
    ),
}
BASE = {"arch": "bilstm", "embedding_dim": 128, "lr": 1e-2, "batch_size": 64,
        "weight_decay": 1e-4, "scheduler": "onecycle", "device": "cpu",
        "progress": False}  # fmt: skip
PARAMS = {"hidden": 128, "layers": 1, "pooling": "concat", "spatial_dropout": 0.2, "dropout": 0.3}


@dataclass(frozen=True)
class TransferBench:
    settings: str = arg("default,low_label", "data settings, comma-separated")
    seeds: int = arg(3, "seeds per variant", min=1)
    epochs: int = arg(6, "classifier epochs", min=1)
    lm_epochs: int = arg(6, "language-model epochs", min=1)
    variants: str = arg("all", "all, or indices into VARIANTS, comma-separated")
    threads: int = arg(2, "torch threads", min=1)


def chosen_variants(bench: TransferBench) -> list[str]:
    names = list(VARIANTS)
    return names if bench.variants == "all" else [names[int(i)] for i in bench.variants.split(",")]


def prepared(setting: str):
    data_dir = REPO.parent / "bench_data" / "transfer"
    keys = [f"raw_dir={SHARED_DATA}", f"data_dir={data_dir}", "categories=all"]
    return load(prepare(parse_overrides(PrepConfig, keys + SETTINGS[setting])))


def pretrained_lm(data, epochs: int) -> tuple[str, dict]:
    """The setting's LM, pretrained once and kept beside the prepared data."""
    out = Path(data.path) / f"bench_lm_e{epochs}.pt"
    if not out.is_file():
        start = time.perf_counter()
        history = pretrain(data.without_test(), LMConfig(epochs=epochs, out=str(out)))
        seconds = time.perf_counter() - start
        tokens = sum(int(s.length.sum()) for s in (data.train, data.unlabeled))
        tokens += int(data.unlabeled.extra["answer_length"].sum())
        print(f"LM pretraining: {seconds:.0f} s, ~{tokens * epochs / seconds:,.0f} tokens/s, "
              f"held-out perplexity {[round(p) for p in history['perplexity']]}")  # fmt: skip
    return str(out), torch.load(out, weights_only=True)["history"]


def run_variant(data, lm: str, name: str, seed: int, epochs: int) -> dict:
    keys, params = VARIANTS[name]
    config = TrainConfig(**{**BASE, **keys, "epochs": epochs, "seed": seed, "patience": epochs,
                            "lm_checkpoint": lm})  # fmt: skip
    trainer = Trainer(config, data.without_test(), {**PARAMS, **params})
    start = time.perf_counter()
    result = trainer.fit()  # the best epoch's weights are kept (chosen on valid)
    test = DeviceSplit.from_split(data.test, "cpu")
    accuracy = float((predict_logits(trainer.model, test).argmax(-1) == test.label).float().mean())
    return {"variant": name, "seed": seed, "valid_accuracy": result.best["valid_accuracy"],
            "test_accuracy": accuracy, "best_epoch": result.best["epoch"],
            "seconds": time.perf_counter() - start}  # fmt: skip


def summary(rows: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    grouped = rows.groupby("variant")
    table = pd.DataFrame(
        {
            "valid": grouped["valid_accuracy"].mean(),
            "test mean": grouped["test_accuracy"].mean(),
            "test std": grouped["test_accuracy"].std(ddof=1),
            "vs random": grouped["test_accuracy"].mean()
            - rows[rows["variant"] == "random init"]["test_accuracy"].mean(),
            "s/run": grouped["seconds"].mean(),
        }
    )
    return table.loc[[v for v in order if v in table.index]].reset_index()


def main(argv: list[str]) -> None:
    opts = parse_overrides(TransferBench, argv)
    variants = chosen_variants(opts)
    torch.set_num_threads(opts.threads)
    for setting in opts.settings.split(","):
        data = prepared(setting)
        sizes = {s: len(getattr(data, s)) for s in ("train", "valid", "test", "unlabeled")}
        print(f"\n## {setting}: {sizes} (unlabeled: questions, each with an answer)")
        lm, _history = pretrained_lm(data, opts.lm_epochs)
        rows = []
        for name in variants:
            for seed in range(opts.seeds):
                rows.append(run_variant(data, lm, name, seed, opts.epochs))
                print(f"  {name} seed {seed}: test {rows[-1]['test_accuracy']:.4f}", flush=True)
        frame = pd.DataFrame(rows)
        frame.to_csv(Path(data.path) / "transfer_bench.csv", index=False)
        print(markdown_table(summary(frame, variants)))
    print(f"threads={opts.threads} torch {torch.__version__}; {dataclasses.asdict(LMConfig())}")


if __name__ == "__main__":
    main(sys.argv[1:])
