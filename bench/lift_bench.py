"""The README's main command on several split seeds of the sample: test lifts over the baseline.

    python bench/lift_bench.py seeds=0,1,2                 # runs the command once per seed
    python bench/lift_bench.py experiments=results/seed0,results/seed1   # finished ones only
    python bench/lift_bench.py parallel=true               # all seeds at once (a GPU machine)
    python bench/lift_bench.py rows=5452 test_rows=5000    # as a user's file: held-back B's size

Each seed is a new valid/test split (split_seed=); everything is chosen on valid and scored
on that seed's test split. With `rows=`, each seed draws that many labeled rows of the sample
and a disjoint test file of `test_rows`, written as CSV files, and runs the command the way a
user's data goes (`source=`, `test_source=`, every label not in valid trained on): held-back
set B had 5,452 rows and a 500-row official test file (a test of 5,000 measures it closer).

Prints a Markdown row per seed (baseline, best single model, ensemble, their lifts, and the
widest gap between the best single model and another architecture's best) and the mean and
spread over seeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from common import SHARED_DATA

from data_prep import PrepConfig
from data_prep.cli import arg, parse_overrides
from data_prep.parse import parse
from search.markdown import markdown_table

README_DATA = [f"raw_dir={SHARED_DATA}", "categories=all", "valid_size=0.1", "train_size=0.6"]


@dataclass(frozen=True)
class LiftBench:
    seeds: str = arg("0,1,2", "split seeds to run the main command on")
    experiments: str = arg("", "finished experiment directories to summarize instead")
    parallel: bool = arg(False, "run the seeds at once, each with its own local Ray")
    extra: str = arg("", "more keys for the main command, space-separated (num_samples=2 ...)")
    storage: str = arg("", "where the experiments are kept; default: a temporary directory")
    rows: int = arg(0, "0: the README's command; N: N rows of the sample as a user's CSV", min=0)
    test_rows: int = arg(5000, "with rows=: rows of the test file (test_source=)", min=1)


def user_files(seed: int, bench: LiftBench, directory: Path) -> list[str]:
    """`bench.rows` labeled questions of the sample and a disjoint test file, as CSV files a
    user would bring; the command's data keys for them."""
    rows, _ = parse(parse_overrides(PrepConfig, [f"raw_dir={SHARED_DATA}", "categories=all"]))
    rows = rows.sample(frac=1.0, random_state=seed).rename(
        columns={"question": "text", "category": "label"}
    )[["text", "label"]]
    if bench.rows + bench.test_rows > len(rows):
        raise SystemExit(f"rows + test_rows: the sample holds {len(rows)} questions")
    train, test = directory / f"train{seed}.csv", directory / f"test{seed}.csv"
    rows.iloc[: bench.rows].to_csv(train, index=False)
    rows.iloc[bench.rows : bench.rows + bench.test_rows].to_csv(test, index=False)
    return [f"source={train}", f"test_source={test}", "valid_size=0.1"]


def start(
    seed: int, storage: Path, data: list[str], extra: list[str]
) -> tuple[subprocess.Popen, Path]:
    """The main command on split seed `seed`, with a Ray temp dir of its own (so searches
    running at once each start their own local Ray)."""
    name = f"seed{seed}"
    command = [sys.executable, "-m", "search.run", "arch=all", *data, f"split_seed={seed}",
               f"storage_path={storage}", f"name={name}", *extra]  # fmt: skip
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="lb", dir="/tmp")}
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, env=env), storage / name


def run_all(bench: LiftBench, storage: Path) -> list[Path]:
    started = []
    storage.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in bench.seeds.split(",")):
        data = user_files(seed, bench, storage) if bench.rows else README_DATA
        started.append(start(seed, storage, data, bench.extra.split()))
        if not bench.parallel:
            started[-1][0].wait()
    for process, experiment in started:
        if process.wait() != 0:
            raise SystemExit(f"{experiment.name}: the main command failed ({process.returncode})")
    return [experiment for _, experiment in started]


def row(experiment: Path) -> dict:
    final = pd.read_csv(experiment / "final.csv")
    by_model = {kind: final[final["model"] == kind] for kind in ("baseline", "best of arch",
                                                                  "ensemble")}  # fmt: skip
    baseline = by_model["baseline"]["test_accuracy"].iloc[0]
    archs = by_model["best of arch"]  # the best single model first (search/choice.py)
    single = archs.iloc[0]
    ensemble = by_model["ensemble"]["test_accuracy"].iloc[0]
    return {
        "experiment": experiment.name,
        "baseline": baseline,
        "best single": f"{single['test_accuracy']:.4f} ({single['arch']})",
        # against the baseline refit on train + valid where the single model was refit
        "single lift": 100 * single["test_lift"],
        "ensemble": ensemble,
        "ensemble lift": 100 * (ensemble - baseline),
        "ensemble - single": 100 * (ensemble - single["test_accuracy"]),
        "widest arch gap": 100 * (single["test_accuracy"] - archs["test_accuracy"].min()),
    }


def main(argv: list[str]) -> None:
    bench = parse_overrides(LiftBench, argv)
    with tempfile.TemporaryDirectory() as tmp:
        if bench.experiments:
            experiments = [Path(e) for e in bench.experiments.split(",")]
        else:
            experiments = run_all(bench, Path(bench.storage or tmp).resolve())
        frame = pd.DataFrame([row(e) for e in experiments])
    points = ["single lift", "ensemble lift", "ensemble - single", "widest arch gap"]
    shown = frame.assign(**{c: frame[c].map("{:+.2f}".format) for c in points})
    print(markdown_table(shown))
    for column in points:
        values = frame[column].to_numpy()
        print(f"{column}: mean {values.mean():+.2f} points, sd {np.std(values):.2f} "
              f"(min {values.min():+.2f}, max {values.max():+.2f})")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
