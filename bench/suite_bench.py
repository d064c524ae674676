"""The main command on every set of the development suite and the sample: test lifts over
the baseline per set, and the suite's mean and worst.

    python bench/suite_bench.py                               # the default command on each set
    python bench/suite_bench.py extra="num_samples=16"        # a smaller budget (say so)
    python bench/suite_bench.py sets=clinc150,ag_news storage=~/suite   # keep the experiments
    python bench/suite_bench.py experiments=~/suite           # summarize finished ones only

Sets (../shared/data/suite/README.md): the Amazon sample (the README's command, split seed
0), CLINC150 (150 intents, its official test file), AG News (4 topics, longer texts, the
default split). Judge an accuracy change by the worst set as well as the mean.
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


def run(name: str, storage: Path, extra: list[str]) -> float:
    """The main command on one set; its wall time in seconds."""
    command = [sys.executable, "-m", "search.run", "arch=all", *SETS[name], "split_seed=0",
               f"storage_path={storage}", f"name={name}", *extra]  # fmt: skip
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
        for name in names:
            wall = np.nan if bench.experiments else run(name, storage, bench.extra.split())
            rows.append({**row(storage / name), "set": name, "wall_min": wall / 60})
    frame = pd.DataFrame(rows).drop(columns=["experiment"]).set_index("set").reset_index()
    points = ["single lift", "ensemble lift", "ensemble - single", "widest arch gap"]
    shown = frame.assign(**{c: frame[c].map("{:+.2f}".format) for c in points},
                         wall_min=frame["wall_min"].map("{:.1f}".format))  # fmt: skip
    print(markdown_table(shown))
    for column in ("single lift", "ensemble lift"):
        values = frame[column].to_numpy()
        worst = frame["set"].iloc[int(values.argmin())]
        print(f"{column}: mean {values.mean():+.2f} points, worst {values.min():+.2f} ({worst})")


if __name__ == "__main__":
    main(sys.argv[1:])
