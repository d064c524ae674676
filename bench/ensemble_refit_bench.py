"""Does refitting the ensemble's members on train + valid pay? (AutoGluon's refit_full for
its weighted ensemble: the members trained again, the weights kept.)

    python bench/ensemble_refit_bench.py experiments=/tmp/suite_runs   # suite_bench.py storage=

For each finished experiment under `experiments`: every member of its best_ensemble/ trained
again on train + valid for the epochs its trial chose on valid (search/refit.py's training,
on the CPU), the baseline's chosen model fitted again on train + valid; the members' test
probabilities combined with the ensemble's own weights. Prints a row per experiment: the
baseline and the ensemble as the search exported them and refit, each lift counted against
the baseline trained on the same rows; then a row per family: its members' mean test change
from the refit. Valid cannot score a refit (it trained on valid): test alone does.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data_prep import PrepConfig, prepared_data
from data_prep.cli import arg, from_dict, parse_overrides
from qamodels.baseline import fit_baseline, refit_on_train_and_valid
from qamodels.trainer import TrainResult
from search.config import SearchConfig
from search.ensemble import BASELINE_MEMBER, ENSEMBLE_DIR, combine, read_manifest
from search.held_out import model_probabilities
from search.markdown import markdown_table
from search.refit import trained_on_train_and_valid
from search.trainable import BEST_MODEL_DIR, RESOLVED_CONFIG, trial_name


@dataclass(frozen=True)
class EnsembleRefitBench:
    experiments: str = arg("", "a directory of finished experiments (required)")
    names: str = arg("", "only these experiments, a comma list; default: every one")


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float((probabilities.argmax(1) == labels).mean())


def member_refit(trial_dir: Path, search: SearchConfig, data, work: Path) -> np.ndarray:
    """A member's test probabilities after training again on train + valid."""
    resolved = json.loads((trial_dir / RESOLVED_CONFIG).read_text())
    chosen = json.loads((trial_dir / BEST_MODEL_DIR / "metrics.json").read_text())
    trainer = trained_on_train_and_valid(resolved, search, data, int(chosen["best"]["epoch"]),
                                         use_gpu=False)  # fmt: skip
    run_dir = trainer.save_run(
        work / trial_dir.name, TrainResult(chosen["best"], chosen["history"], "refit"), plot=False
    )
    return model_probabilities(run_dir, data)["test"]


def measure(experiment: Path, work: Path) -> tuple[dict, list[dict]]:
    settings = json.loads((experiment / "qatune_config.json").read_text())
    search = from_dict(SearchConfig, settings["search"])
    data = prepared_data(from_dict(PrepConfig, settings["data"]))
    labels = data.test.label
    members = read_manifest(experiment / ENSEMBLE_DIR)["members"]
    baseline = fit_baseline(data, search.train.max_train_rows, search.seed)
    baseline_refit = refit_on_train_and_valid(baseline, data, search.train.max_train_rows,
                                              search.seed)  # fmt: skip
    start, exported, refit, changes = time.perf_counter(), [], [], []
    for member in members:
        if member["name"] == BASELINE_MEMBER:
            before, after = baseline.probabilities["test"], baseline_refit
        else:
            trial_dir = experiment / trial_name(member["arch"], member["name"])
            before = model_probabilities(trial_dir / BEST_MODEL_DIR, data)["test"]
            after = member_refit(trial_dir, search, data, work)
        exported.append(before)
        refit.append(after)
        change = 100 * (accuracy(after, labels) - accuracy(before, labels))
        changes.append({"set": experiment.name, "arch": member["arch"].split(" ")[0],
                        "change": change})  # fmt: skip
        print(experiment.name, changes[-1], file=sys.stderr, flush=True)
    weights = np.array([m["weight"] for m in members])
    base = accuracy(baseline.probabilities["test"], labels)
    base_refit = accuracy(baseline_refit, labels)
    as_exported = accuracy(combine(exported, weights), labels)
    after = accuracy(combine(refit, weights), labels)
    row = {"set": experiment.name, "members": len(members), "baseline": base,
           "baseline refit": base_refit, "ensemble": as_exported, "ensemble refit": after,
           "lift": 100 * (as_exported - base), "refit lift": 100 * (after - base_refit),
           "refit minutes": (time.perf_counter() - start) / 60}  # fmt: skip
    return row, changes


def main(argv: list[str]) -> None:
    bench = parse_overrides(EnsembleRefitBench, argv)
    torch.set_num_threads(2)
    root = Path(bench.experiments)
    wanted = set(filter(None, bench.names.split(",")))
    rows, changes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for experiment in sorted(p for p in root.iterdir() if (p / ENSEMBLE_DIR).is_dir()):
            if wanted and experiment.name not in wanted:
                continue
            row, member_changes = measure(experiment, Path(tmp))
            rows.append(row)
            changes += member_changes
            print(row, file=sys.stderr, flush=True)
    frame = pd.DataFrame(rows)
    print(markdown_table(frame.round(4)))
    print(
        f"lift as exported: mean {frame['lift'].mean():+.2f}, worst {frame['lift'].min():+.2f}; "
        f"refit: mean {frame['refit lift'].mean():+.2f}, worst {frame['refit lift'].min():+.2f}"
    )
    per_family = (
        pd.DataFrame(changes).groupby("arch")["change"].agg(["count", "mean", "min", "max"])
    )
    print(markdown_table(per_family.round(2).reset_index()))


if __name__ == "__main__":
    main(sys.argv[1:])
