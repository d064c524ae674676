"""What the ensemble gets from each family and from the library's shape, on finished searches.

    python bench/library_bench.py experiments=/tmp/suite_runs   # suite_bench.py storage=
    python bench/library_bench.py experiments=/tmp/suite_runs shapes=search   # the ensemble
                                        # today's selection builds from each search's library

For each finished experiment under `experiments`: every trial's best model and the saved
baseline scored on valid and test once, then the ensemble rebuilt by the search's own
selection (search.ensemble.select, on valid) from (a) the library the search uses (the top
`ensemble_top` trials, each family's best, the baseline), (b) that library without one
family, (c) libraries of other shapes. Prints the test accuracy of each, as the change
from (a) in points, per experiment and on the mean: a family whose removal costs nothing on
every set is budget to move; a shape that gains on every set is the library to build.
Runs no training; the trials' time per family is bench/budget_bench.py's.
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
from qamodels.baseline import load_baseline
from qamodels.metrics import softmax_temperature
from search.ensemble import BASELINE_MEMBER, combine, select
from search.held_out import model_probabilities
from search.markdown import markdown_table

SPLITS = ("valid", "test")


@dataclass(frozen=True)
class LibraryBench:
    experiments: str = arg("", "a directory of finished experiments (required)")
    shapes: str = arg("all", "all: every library below; search: only the search's library "
                      "(scores only its trials: the ensemble today's selection builds)",
                      choices=("all", "search"))  # fmt: skip


@dataclass
class Scored:
    trial: str
    arch: str
    valid_accuracy: float
    probabilities: dict[str, np.ndarray]


def scored_models(
    experiment: Path, every_trial: bool = True
) -> tuple[list[Scored], dict[str, np.ndarray], int]:
    """Every trial's best model (or the search library's: the top ensemble_top trials and
    each family's best) and the baseline, with their probabilities on valid and test, best on
    valid first; the labels; the experiment's ensemble_top."""
    settings = json.loads((experiment / "qatune_config.json").read_text())
    data = prepared_data(from_dict(PrepConfig, settings["data"]))
    top = settings["search"]["ensemble_top"]
    trials = pd.read_csv(experiment / "trials.csv").dropna(subset=["valid_accuracy"])
    trials = trials.sort_values("valid_accuracy", ascending=False)
    if not every_trial:
        in_library = trials.index.isin(trials.index[:top]) | ~trials["arch"].duplicated()
        trials = trials[in_library]
    found = []
    for row in trials.itertuples():
        model_dir = experiment / f"{row.arch}_{row.trial}" / "best_model"
        if (model_dir / "model.pt").is_file():
            probabilities = model_probabilities(model_dir, data)
            found.append(Scored(row.trial, row.arch, row.valid_accuracy, probabilities))
    linear, temperature = load_baseline(experiment / BASELINE_MEMBER)
    baseline = {s: softmax_temperature(linear.decision_function(data.texts(s)), temperature)
                for s in SPLITS}  # fmt: skip
    found.append(Scored(BASELINE_MEMBER, "baseline", np.nan, baseline))
    labels = {"valid": data.valid.label, "test": data.test.label}
    return found, labels, top


def libraries(models: list[Scored], top: int) -> dict[str, list[Scored]]:
    """The search's library, it without each family, and other shapes (trials best first)."""
    trials, baseline = models[:-1], models[-1:]
    families = list(dict.fromkeys(m.arch for m in trials))

    def per_family(count: int) -> list[Scored]:
        return [m for f in families for m in [t for t in trials if t.arch == f][:count]]

    def union(*parts: list[Scored]) -> list[Scored]:
        return list({m.trial: m for part in parts for m in part}.values())

    searched = union(trials[:top], per_family(1), baseline)
    shapes = {"the search's": searched}
    shapes |= {f"without {f}": [m for m in searched if m.arch != f] for f in families}
    shapes["without baseline"] = searched[:-1]
    shapes[f"top {2 * top} + each family's best"] = union(trials[: 2 * top], per_family(1),
                                                          baseline)  # fmt: skip
    shapes[f"top {top} + each family's 2 best"] = union(trials[:top], per_family(2), baseline)
    shapes["each family's 4 best"] = union(per_family(4), baseline)
    shapes["every trial"] = union(trials, baseline)
    return shapes


def test_accuracy(library: list[Scored], labels: dict[str, np.ndarray]) -> float:
    weights = select([m.probabilities["valid"] for m in library], labels["valid"])
    combined = combine([m.probabilities["test"] for m in library], weights)
    return float((combined.argmax(1) == labels["test"]).mean())


def finished_experiments(experiments: str) -> list[Path]:
    """The finished experiments (with a final.csv) of the directory `experiments=` names."""
    if not experiments:
        raise SystemExit("experiments= is required: a directory of finished experiments")
    root = Path(experiments).expanduser()
    finished = [e for e in sorted(root.iterdir()) if (e / "final.csv").is_file()]
    if not finished:
        raise SystemExit(f"experiments={root}: no finished experiment (final.csv) there")
    return finished


def main(argv: list[str]) -> None:
    bench = parse_overrides(LibraryBench, argv)
    changes = {}
    for experiment in finished_experiments(bench.experiments):
        models, labels, top = scored_models(experiment, bench.shapes == "all")
        shapes = libraries(models, top)
        if bench.shapes == "search":  # its trials only were scored: the other shapes lack some
            shapes = {"the search's": shapes["the search's"]}
        reference = test_accuracy(shapes["the search's"], labels)
        changes[experiment.name] = {
            name: 100 * (test_accuracy(library, labels) - reference) if name != "the search's"
            else 100 * reference for name, library in shapes.items()
        }  # fmt: skip
        print(f"{experiment.name}: the search's library {reference:.4f} on test", flush=True)
    if bench.shapes == "search":
        return
    table = pd.DataFrame(changes)
    table["mean"] = table.drop(index="the search's").mean(axis=1)
    table["worst"] = table.drop(columns="mean").drop(index="the search's").min(axis=1)
    shown = table.drop(index="the search's").map("{:+.2f}".format).reset_index(names="library")
    print("\nTest accuracy of the ensemble, points from the search's library:\n")
    print(markdown_table(shown))


if __name__ == "__main__":
    main(sys.argv[1:])
