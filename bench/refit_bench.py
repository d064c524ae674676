"""Does refitting on train + valid pay (AutoGluon's refit_full)? Each recipe trained on
train with its best epoch chosen on valid, then trained again on train + valid for that many
epochs (its schedule over those epochs), and on train alone the same way (what the shorter
schedule does by itself); all scored on test.

    python bench/refit_bench.py                               # dan, on the sample and the suite
    python bench/refit_bench.py sets=clinc150 archs=dan,cnn_stacked

Prints a Markdown row per set and architecture: test accuracy as chosen on valid, after the
refit, the difference, the epoch count and the rows each saw.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, replace

import pandas as pd
import torch
from common import SUITE_SETS, suite_config

from data_prep import load, prepare
from data_prep.cli import arg, parse_overrides
from data_prep.store import PreparedData
from qamodels.config import TrainConfig
from qamodels.spaces import decode, nested, recipes
from qamodels.trainer import Trainer
from search.markdown import markdown_table
from search.refit import with_valid_in_train


@dataclass(frozen=True)
class RefitBench:
    sets: str = arg(",".join(SUITE_SETS), "the sets, a comma list")
    archs: str = arg("dan", "architectures whose recipe trains, comma-separated")
    epochs: int = arg(15, "epochs at most (the search's max_epochs)", min=1)
    data_dir: str = arg("", "where the splits are prepared; default: a temporary directory")


def last_recipe(arch: str) -> tuple[TrainConfig, dict]:
    """The architecture's last recipe point (the DAN's: its TF-IDF wide variant)."""
    point = recipes([arch], ["random", "frozen", "finetune"])[-1]
    _, params, overrides = decode(nested(point))
    keys = [f"{k}={v}" for k, v in overrides.items()]
    return parse_overrides(TrainConfig, [*keys, f"arch={arch}", "progress=false"]), params


def test_accuracy(config: TrainConfig, data: PreparedData, params: dict) -> tuple[float, int]:
    trainer = Trainer(config, data, params)
    result = trainer.fit()
    return trainer.evaluate("test")[0]["test_accuracy"], result.best["epoch"]


def main(argv: list[str]) -> None:
    bench = parse_overrides(RefitBench, argv)
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in bench.sets.split(","):
            data = load(prepare(replace(suite_config(name, bench.data_dir or tmp), split_seed=0)))
            for arch in bench.archs.split(","):
                config, params = last_recipe(arch)
                config = replace(config, epochs=bench.epochs)
                chosen, epoch = test_accuracy(config, data, params)
                # Every epoch counts now: nothing is held out to stop on.
                refit = replace(config, epochs=epoch, patience=epoch + 1)
                refitted, _ = test_accuracy(refit, with_valid_in_train(data), params)
                # The same schedule on train alone: what the refit's shorter schedule does.
                retrained, _ = test_accuracy(refit, data, params)
                rows.append({"set": name, "arch": arch, "chosen on valid": chosen,
                             "same epochs, train only": retrained,
                             "refit on train+valid": refitted, "difference": refitted - chosen,
                             "epochs": epoch, "train rows": len(data.train),
                             "refit rows": len(data.train) + len(data.valid)})  # fmt: skip
                print(rows[-1], file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    print(markdown_table(frame.round(4)))
    difference = frame["difference"]
    print(f"mean difference {difference.mean():+.4f}, worst {difference.min():+.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
