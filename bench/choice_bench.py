"""Which best single model holds on test: the best on valid, or the simplest close to it.

    python bench/choice_bench.py experiments=/tmp/suite_runs   # suite_bench.py storage=

For each finished experiment under `experiments`: each family's best trial (the leaderboard)
and the baseline scored on valid and test once; then the test lift over the baseline of (a)
the best on valid and (b) search/choice.py's choice (the simplest family valid cannot tell
from the best). Valid chose the trials' epochs and steered their search, so a second
measure uses test alone: its rows halved `splits` times, one half standing in for valid to
choose, the other scoring the choice; the mean lift of each rule over those halvings.
Runs no training. Refit (search/refit.py) is left out: both rules are scored on the trials'
own models.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from library_bench import Scored, finished_experiments, scored_models

from data_prep.cli import arg, parse_overrides
from search.choice import simplest_close
from search.ensemble import Candidate, best_of
from search.markdown import markdown_table


@dataclass(frozen=True)
class ChoiceBench:
    experiments: str = arg("", "a directory of finished experiments (required)")
    splits: int = arg(300, "halvings of the test split", min=1)


def picks(board: list[Scored], labels: dict, split: str, rows: np.ndarray):
    """The best and the choice of search/choice.py, with `split`'s `rows` as valid."""
    found = [Candidate(m.trial, m.arch, Path("."), {"valid": m.probabilities[split][rows]})
             for m in board]  # fmt: skip
    stack = np.stack([c.probabilities["valid"] for c in found])
    chosen = simplest_close(found, labels[split][rows]).chosen
    return board[best_of(stack, labels[split][rows])], board[found.index(chosen)]


def lift(model: Scored, baseline: Scored, labels: dict, rows: np.ndarray) -> float:
    """Test points over the baseline on test's `rows`."""
    right = model.probabilities["test"][rows].argmax(1) == labels["test"][rows]
    base = baseline.probabilities["test"][rows].argmax(1) == labels["test"][rows]
    return 100 * float(right.mean() - base.mean())


def measure(experiment: Path, splits: int) -> dict:
    models, labels, _top = scored_models(experiment, every_trial=False)
    baseline, trials = models[-1], models[:-1]
    board = [m for i, m in enumerate(trials) if m.arch not in {t.arch for t in trials[:i]}]
    test = np.arange(len(labels["test"]))
    best, chosen = picks(board, labels, "valid", np.arange(len(labels["valid"])))
    rng, halved = np.random.default_rng(0), []
    for _ in range(splits):
        order = rng.permutation(test)
        choose, score = order[::2], order[1::2]
        halved.append([lift(m, baseline, labels, score)
                       for m in picks(board, labels, "test", choose)])  # fmt: skip
    mean = np.mean(halved, axis=0)
    return {
        "experiment": experiment.name,
        "best on valid": f"{lift(best, baseline, labels, test):+.2f} ({best.arch})",
        "choice": f"{lift(chosen, baseline, labels, test):+.2f} ({chosen.arch})",
        "halved: best": mean[0],
        "halved: choice": mean[1],
    }


def main(argv: list[str]) -> None:
    bench = parse_overrides(ChoiceBench, argv)
    finished = finished_experiments(bench.experiments)
    frame = pd.DataFrame([measure(e, bench.splits) for e in finished])
    print(markdown_table(frame.round(2)))
    for column in ("halved: best", "halved: choice"):
        print(f"{column}: mean {frame[column].mean():+.2f}, worst {frame[column].min():+.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
