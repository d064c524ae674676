"""How each way of weighing a finished search's library does on rows it never chose on.

    python bench/ensemble_bench.py experiment=results/acc0 [draws=20] [rows=500]

The library is the one `search.run` builds (the top `ensemble_top` trials on valid, each
architecture's best, the TF-IDF baseline refitted on the same split). Valid and test are
pooled (no model trained on either) and split at random `draws` times into a selection part
(`rows` rows, then as many as valid holds) and a held-out rest: on each draw the best single
model is chosen on the selection part, and every procedure's lift over it is measured on the
rest. Prints a Markdown table: mean lift, its spread and how often it was below the single.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import PrepConfig, prepared_data
from data_prep.cli import arg, from_dict, parse_overrides
from qamodels.baseline import fit_baseline
from search.ensemble import PROCEDURES, greedy, select
from search.held_out import model_probabilities


@dataclass(frozen=True)
class EnsembleBench:
    experiment: str = arg("", "a finished experiment directory (with trials.csv)")
    draws: int = arg(20, "random re-splits of valid + test", min=1)
    rows: int = arg(500, "rows of the small selection part (the second is valid's size)", min=50)


def library(experiment: Path, top: int) -> tuple[list[str], PrepConfig]:
    configs = json.loads((experiment / "qatune_config.json").read_text())
    trials = pd.read_csv(experiment / "trials.csv").dropna(subset=["valid_accuracy"])
    trials = trials.sort_values("valid_accuracy", ascending=False)
    chosen = list(trials["trial"].head(top)) + list(trials.groupby("arch").head(1)["trial"])
    arch = trials.set_index("trial")["arch"]
    dirs = [str(experiment / f"{arch[t]}_{t}" / "best_model") for t in dict.fromkeys(chosen)]
    return dirs, from_dict(PrepConfig, configs["data"])


def main(argv: list[str]) -> None:
    bench = parse_overrides(EnsembleBench, argv)
    experiment = Path(bench.experiment)
    top = json.loads((experiment / "qatune_config.json").read_text())["search"]["ensemble_top"]
    dirs, prep = library(experiment, top)
    data = prepared_data(prep)
    pooled = [model_probabilities(Path(d), data) for d in dirs] + [fit_baseline(data).probabilities]
    stack = np.stack([np.concatenate([p["valid"], p["test"]]) for p in pooled])
    labels = np.concatenate([data.valid.label, data.test.label]).astype(np.int64)
    print(f"{experiment.name}: library of {len(stack)} (with the baseline), {len(labels)} rows")
    print("| selection rows | procedure | lift over best single (points) | sd | below it |")
    print("| --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    procedures = {
        "greedy (2004, on all selection rows)": lambda s, y, r: greedy(s, y),
        **{name: procedure for name, procedure in PROCEDURES.items() if name != "best single"},
        "select (out of fold; the search's)": lambda s, y, r: select(list(s), y, seed=0),
    }
    for rows in (bench.rows, len(data.valid)):
        lifts = {name: [] for name in procedures}
        for _ in range(bench.draws):
            order = rng.permutation(len(labels))
            chosen, held = order[:rows], order[rows:]
            right = stack[:, held].argmax(2) == labels[held]
            single = right[
                PROCEDURES["best single"](stack[:, chosen], labels[chosen], rng).argmax()
            ]
            for name, procedure in procedures.items():
                weights = procedure(stack[:, chosen], labels[chosen], rng)
                combined = np.tensordot(weights, stack[:, held], axes=1)
                lifts[name].append(
                    100 * ((combined.argmax(1) == labels[held]).mean() - single.mean())
                )
        for name, found in lifts.items():
            found = np.array(found)
            print(f"| {rows} | {name} | {found.mean():+.2f} | {found.std():.2f} | "
                  f"{(found < 0).mean():.0%} |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
