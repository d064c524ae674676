"""Where a search's budget went: per set and architecture (and embedding mode), the trials,
their share of the trial-seconds, the best valid accuracy, and what the ensemble took.

    python bench/budget_bench.py experiments=/tmp/suite_runs     # suite_bench.py storage=
    python bench/budget_bench.py experiments=~/suite by=arch,embedding

Reads each finished experiment under `experiments` (trials.csv, final.csv, the ensemble's
manifest); runs nothing. Prints a Markdown table per experiment and, over all of them, each
family's share of the time against its share of the sets it won.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from data_prep.cli import arg, parse_overrides
from search.leaderboard import budget_spent
from search.markdown import markdown_table


@dataclass(frozen=True)
class BudgetBench:
    experiments: str = arg("", "a directory of finished experiments (required)")
    by: str = arg("arch", "grouping: arch, or arch,embedding")


def ensemble_weights(experiment: Path) -> dict[str, float]:
    """Each trial's weight in the exported ensemble (none: empty)."""
    manifest = experiment / "best_ensemble" / "ensemble.json"
    if not manifest.is_file():
        return {}
    return {m["name"]: m["weight"] for m in json.loads(manifest.read_text())["members"]}


def per_family(experiment: Path, keys: list[str]) -> pd.DataFrame:
    trials = pd.read_csv(experiment / "trials.csv")
    trials["ensemble_weight"] = trials["trial"].map(ensemble_weights(experiment)).fillna(0.0)
    table = budget_spent(trials, keys, "valid_accuracy", "max")
    table = table.rename(columns={"valid_accuracy": "best_valid"})
    table = table.join(trials.groupby(keys)["ensemble_weight"].sum(), on=keys)
    table["trial_share"] = table["trials"] / len(trials)
    table.insert(0, "set", experiment.name)
    return table.sort_values("best_valid", ascending=False)


def main(argv: list[str]) -> None:
    bench = parse_overrides(BudgetBench, argv)
    if not bench.experiments:
        raise SystemExit("experiments= is required: a directory of finished experiments")
    keys = bench.by.split(",")
    root = Path(bench.experiments).expanduser()
    tables = [per_family(e, keys) for e in sorted(root.iterdir()) if (e / "final.csv").is_file()]
    if not tables:
        raise SystemExit(f"experiments={root}: no finished experiment (final.csv) there")
    every = pd.concat(tables)
    shown = ["set", *keys, "trials", "epochs", "time_share", "best_valid", "ensemble_weight"]
    print(markdown_table(every[shown].round(3)))
    every["won"] = every.groupby("set")["best_valid"].transform("max") == every["best_valid"]
    overall = every.groupby(keys).agg(
        mean_time_share=("time_share", "mean"), mean_trial_share=("trial_share", "mean"),
        sets_won=("won", "sum"), mean_ensemble_weight=("ensemble_weight", "mean"),
    ).reset_index()  # fmt: skip
    print()
    print(markdown_table(overall.sort_values("mean_time_share", ascending=False).round(3)))


if __name__ == "__main__":
    main(sys.argv[1:])
