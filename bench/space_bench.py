"""The GPU search space against the CPU one, on the offline sample, trained on the CPU.

    python bench/space_bench.py [num_samples=16] [max_epochs=8] [seeds=0,1]

The local Ray gets one GPU *resource* for the GPU space (gpus_per_trial=auto then picks
AUTO_GPU_SHARE and the GPU's batch sizes with square-root-scaled rates), none for the CPU space;
with no CUDA here both train on the CPU, so this compares the spaces, not the devices. The
same searches otherwise (all architectures, baseline off). Prints best valid and that
trial's test accuracy per seed, and the mean over seeds (Markdown).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass

import pandas as pd
import ray
from common import prepared_sample

from data_prep.cli import arg, parse_overrides
from qamodels.config import TrainConfig
from search.config import SearchConfig
from search.markdown import markdown_table
from search.run import run_search


@dataclass(frozen=True)
class SpaceBenchConfig:
    num_samples: int = arg(16, "trials per search", min=1)
    max_epochs: int = arg(8, "epochs per trial at most", min=1)
    seeds: str = arg("0,1", "search seeds, comma-separated")


def main(argv: list[str]) -> None:
    bench = parse_overrides(SpaceBenchConfig, argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = prepared_sample(tmp)
        for space, gpus in (("CPU space", 0), ("GPU space", 1)):
            ray.init(num_cpus=2, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
            for seed in map(int, bench.seeds.split(",")):
                search = SearchConfig(num_samples=bench.num_samples, max_epochs=bench.max_epochs,
                                      storage_path=tmp, name=f"{space[:3]}{seed}",
                                      baseline=False, pretrain="false", max_concurrent=2,
                                      train=TrainConfig(seed=seed))  # fmt: skip
                _results, _board = run_search(search, data)
                final = pd.read_csv(search.experiment_path / "final.csv")
                best = final[final["model"] == "best of arch"].iloc[0]
                rows.append({"space": space, "seed": seed, "best arch": best["arch"],
                             "best valid": best["valid_accuracy"],
                             "its test": best["test_accuracy"]})  # fmt: skip
            ray.shutdown()
    table = pd.DataFrame(rows)
    print(markdown_table(table))
    summary = table.groupby("space")[["best valid", "its test"]].agg(["mean", "std"])
    summary.columns = [" ".join(c) for c in summary.columns]
    print(markdown_table(summary.reset_index()))


if __name__ == "__main__":
    main(sys.argv[1:])
