"""Training variants of each architecture's recipe on several split seeds of the sample.

    python bench/recipe_bench.py archs=dan seeds=0,1,2 "variants=plain;label_smoothing=0.1"
    python bench/recipe_bench.py set=clinc150 seeds=0 "variants=dan/wide=1;dan/wide=2"

Each variant (`;`-separated, each a space-separated list of TrainConfig keys, or model
parameters as `arch/name=value`, laid over the recipe; `plain`: the recipe as the search runs
it first) trains the architecture's recipe
(qamodels/spaces.py) for the search's 15 epochs on each split seed; the best epoch is chosen
on valid and scored on test, beside the TF-IDF baseline of the same split. Prints a Markdown
row per architecture and variant: mean valid, mean test and its spread over seeds, best
epoch, seconds per run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from common import SUITE_SETS, suite_config

from data_prep import load, prepare
from data_prep.cli import arg, parse_overrides
from qamodels.baseline import fit_baseline
from qamodels.config import TrainConfig
from qamodels.registry import parse_params
from qamodels.spaces import decode, nested, recipes
from qamodels.trainer import Trainer
from search.markdown import markdown_table


@dataclass(frozen=True)
class RecipeBench:
    archs: str = arg("dan", "architectures whose recipe trains, comma-separated")
    seeds: str = arg("0,1,2", "split seeds of the sample")
    variants: str = arg("plain;label_smoothing=0.1", "TrainConfig keys per variant, ';' between")
    epochs: int = arg(15, "epochs per run (the search's max_epochs)", min=1)
    train_size: float = arg(0.6, "the sample's train share (the README's command: 0.6)")
    data_dir: str = arg("", "where the splits are prepared; default: a temporary directory")
    set: str = arg("sample", "the data: the sample, or a set of the suite (bench/common.py)",
                   choices=tuple(SUITE_SETS))  # fmt: skip


def recipe(arch: str) -> tuple[dict, dict]:
    """(TrainConfig overrides, model params) of the architecture's recipe."""
    point = recipes([arch], ["random", "frozen", "finetune"])[0]
    _, params, overrides = decode(nested(point))
    return overrides, params


def run(arch: str, variant: str, data, epochs: int) -> dict:
    overrides, params = recipe(arch)
    recipe_keys = [f"{k}={v}" for k, v in overrides.items()]
    extra = [item for item in variant.split() if item != "plain"]  # laid over the recipe
    model_args = [item.split("/", 1)[1] for item in extra if "/" in item]  # dan/wide=1
    typed = parse_params(arch, model_args)  # the architecture's own config checks them
    params = {**params, **{key: typed[key] for key in (a.split("=")[0] for a in model_args)}}
    extra = [item for item in extra if "/" not in item]
    config = parse_overrides(TrainConfig, [*recipe_keys, f"arch={arch}", f"epochs={epochs}",
                                           "progress=false", *extra])  # fmt: skip
    start = time.perf_counter()
    trainer = Trainer(config, data, params)
    result = trainer.fit()
    test, _ = trainer.evaluate("test")
    return {"valid": result.best["valid_accuracy"], "test": test["test_accuracy"],
            "epoch": result.best["epoch"], "seconds": time.perf_counter() - start}  # fmt: skip


def main(argv: list[str]) -> None:
    bench = parse_overrides(RecipeBench, argv)
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in bench.seeds.split(",")):
            config = suite_config(bench.set, bench.data_dir or tmp)
            config = replace(config, split_seed=seed)
            if bench.set == "sample":
                config = replace(config, train_size=bench.train_size)
            data = load(prepare(config))
            baseline = fit_baseline(data)
            rows.append({"arch": "baseline", "variant": baseline.name, "seed": seed,
                         "valid": baseline.valid["accuracy"], "test": baseline.test["accuracy"],
                         "epoch": 0, "seconds": 0.0})  # fmt: skip
            for arch in bench.archs.split(","):
                for variant in bench.variants.split(";"):
                    found = run(arch, variant, data, bench.epochs)
                    rows.append({"arch": arch, "variant": variant, "seed": seed, **found})
                    print(rows[-1], file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["arch", "variant"], sort=False).agg(
        valid=("valid", "mean"), test=("test", "mean"), test_sd=("test", np.std),
        best_epoch=("epoch", "mean"), seconds=("seconds", "mean"),
    ).reset_index()  # fmt: skip
    print(markdown_table(summary.round(4)))


if __name__ == "__main__":
    main(sys.argv[1:])
