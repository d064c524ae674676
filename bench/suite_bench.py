"""The main command on every set of the development suite and the sample: test lifts over
the baseline per set, and the suite's mean and worst.

    python bench/suite_bench.py                               # the default command on each set
    python bench/suite_bench.py extra="num_samples=16"        # a smaller budget (say so)
    python bench/suite_bench.py sets=clinc150,ag_news storage=~/suite   # keep the experiments
    python bench/suite_bench.py experiments=~/suite           # summarize finished ones only
    python bench/suite_bench.py seeds=0,1,2 storage=~/suite   # 3 splits where no test file

Sets (../shared/data/suite/README.md): the Amazon sample (the README's command, split seed
0), CLINC150 (150 intents, its official test file), AG News (4 topics, longer texts, the
default split). Judge an accuracy change by the worst set as well as the mean. A set without
an official test file runs once per split seed of `seeds` (seed 0 first on every set); its
lifts in the summary are the mean over its seeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from common import SUITE_SETS
from lift_bench import row

from data_prep.cli import arg, parse_overrides
from search.markdown import markdown_table

SETS = SUITE_SETS


@dataclass(frozen=True)
class SuiteBench:
    sets: str = arg(",".join(SETS), "the sets to run, a comma list")
    extra: str = arg("", "more keys for the main command, space-separated (num_samples=16 ...)")
    storage: str = arg("", "where the experiments are kept; default: a temporary directory")
    experiments: str = arg("", "a storage= of finished experiments to summarize instead")
    seeds: str = arg("0", "split seeds of the sets without an official test file, a comma list")


def has_test_file(name: str) -> bool:
    return any(a.startswith("test_source=") for a in SETS[name])


def runs(names: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    """(set, split seed) in the order they run: every set's seed 0 first, then the next
    seed of the sets that have no official test file (a set with one is split once)."""
    return [(name, seed) for seed in seeds for name in names
            if seed == seeds[0] or not has_test_file(name)]  # fmt: skip


def experiment_name(name: str, seed: int) -> str:
    return name if seed == 0 else f"{name}_seed{seed}"


def run(name: str, seed: int, storage: Path, extra: list[str]) -> float:
    """The main command on one set and split seed; its wall time in seconds."""
    command = [sys.executable, "-m", "search.run", "arch=all", *SETS[name],
               f"split_seed={seed}", f"storage_path={storage}",
               f"name={experiment_name(name, seed)}", *extra]  # fmt: skip
    env = {**os.environ, "RAY_TMPDIR": tempfile.mkdtemp(prefix="sb", dir="/tmp")}
    start = time.time()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, env=env)
    if done.returncode:
        raise SystemExit(f"{name}: the main command failed ({done.returncode})")
    return time.time() - start


def main(argv: list[str]) -> None:
    bench = parse_overrides(SuiteBench, argv)
    names = bench.sets.split(",")
    unknown = set(names) - set(SETS)
    if unknown:
        raise SystemExit(f"sets={bench.sets}: no set {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(os.path.expanduser(bench.experiments or bench.storage or tmp)).resolve()
        rows = []
        for name, seed in runs(names, [int(seed) for seed in bench.seeds.split(",")]):
            experiment = storage / experiment_name(name, seed)
            if bench.experiments and not experiment.is_dir():
                continue  # not run (yet)
            wall = np.nan if bench.experiments else run(name, seed, storage, bench.extra.split())
            rows.append({**row(experiment), "set": name, "seed": seed, "wall_min": wall / 60})
            print(
                f"{name} seed {seed}: {rows[-1]['single lift']:+.2f} single, "
                f"{rows[-1]['ensemble lift']:+.2f} ensemble",
                flush=True,
            )
    frame = pd.DataFrame(rows).drop(columns=["experiment"])
    points = ["single lift", "ensemble lift", "ensemble - single", "widest arch gap"]
    shown = frame.assign(**{c: frame[c].map("{:+.2f}".format) for c in points},
                         wall_min=frame["wall_min"].map("{:.1f}".format))  # fmt: skip
    print(markdown_table(shown[["set", "seed", *[c for c in shown if c not in ("set", "seed")]]]))
    per_set = frame.groupby("set", sort=False)[points].mean()
    if len(per_set) < len(frame):
        seeds = frame.groupby("set", sort=False)["seed"].count().rename("seeds")
        print(markdown_table(per_set.map("{:+.2f}".format).join(seeds).reset_index()))
    for column in ("single lift", "ensemble lift"):
        values = per_set[column]
        print(f"{column}: mean {values.mean():+.2f} points, worst {values.min():+.2f} "
              f"({values.idxmin()})")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
