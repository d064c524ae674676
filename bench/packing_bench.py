"""Trials per GPU: 1, 2 and 4 trainings sharing one GPU, as raw processes and as Ray trials.

    python bench/packing_bench.py source=/tmp/big.csv text_column=question \
        label_column=category archs=dan,bilstm epochs=3 [packings=1,2,4]

For each architecture and packing n: n `qamodels.train` processes started together on the
GPU, then a search of n trials at gpus_per_trial=1/n (no early stopping, recipes off), on
the same prepared data. Prints a Markdown table of wall time and aggregate training
samples/s (n x epochs x train rows / wall), so Ray's overhead and the gain of packing show;
then, for the one-trial searches, where a trial's time went: Ray's start and the driver, the
worker process's start and imports, the data mapped and the model built, the first epoch
(warm-up) against the others.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from data_prep import PrepConfig, prepared_data
from data_prep.cli import arg, as_dict, split_overrides


@dataclass(frozen=True)
class PackingConfig:
    archs: str = arg("dan,bilstm", "architectures, comma-separated")
    packings: str = arg("1,2,4", "trainings per GPU to compare, comma-separated")
    epochs: int = arg(3, "epochs per training", min=1)
    batch_size: int = arg(1024, "batch size of every training", min=1)
    device: str = arg("cuda", "cuda; cpu only checks the script (no packing on a CPU)")


def keys(config) -> list[str]:
    return [f"{k}={','.join(map(str, v)) if isinstance(v, tuple | list) else v}"
            for k, v in as_dict(config).items()]  # fmt: skip


def timed(commands: list[list[str]]) -> float:
    start = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL) for c in commands]
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"a training failed ({codes}): {commands[0]}")
    return time.perf_counter() - start


def phases(experiment: Path, wall: float, raw: float) -> str:
    """A one-trial search's wall time by phase, from its trial's first and last report."""
    reports = [json.loads(line) for path in experiment.glob("*/result.json")
               for line in path.read_text().splitlines()]  # fmt: skip
    if not reports:
        return "| no report | | | | | | |"
    first, last = reports[0], reports[-1]
    epochs = last["epoch"]
    others = (last["seconds"] - first["seconds"]) / max(1, epochs - 1)
    trial = first["startup_s"] + first["setup_s"] + last["seconds"]
    return (f"| {wall:.1f} | {raw:.1f} | {wall / raw:.2f} | {wall - trial:.1f} | "
            f"{first['startup_s']:.1f} | {first['setup_s']:.1f} | {first['seconds']:.1f} | "
            f"{others:.1f} |")  # fmt: skip


def main(argv: list[str]) -> None:
    prep, bench = split_overrides(argv, PrepConfig, PackingConfig)
    rows = len(prepared_data(prep).train)
    data_keys = keys(prep)
    print(f"train rows {rows:,}, epochs {bench.epochs}, batch {bench.batch_size}")
    print("| arch | per GPU | raw processes: wall s | samples/s | Ray trials: wall s | samples/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    single = []
    for arch in bench.archs.split(","):
        for n in map(int, bench.packings.split(",")):
            work = n * bench.epochs * rows
            share = 1 / n if bench.device == "cuda" else 0
            with tempfile.TemporaryDirectory() as tmp:
                train = [sys.executable, "-m", "qamodels.train", f"arch={arch}",
                         f"epochs={bench.epochs}", f"batch_size={bench.batch_size}",
                         f"device={bench.device}", "progress=false", "patience=100",
                         *data_keys]  # fmt: skip
                raw = timed([[*train, f"out_dir={tmp}/raw{i}"] for i in range(n)])
                search = [sys.executable, "-m", "search.run", f"arch={arch}",
                          f"num_samples={n}", f"max_epochs={bench.epochs}",
                          "trial_scheduler=none", "recipes=false", "baseline=false",
                          "embeddings=random", f"gpus_per_trial={share:g}",
                          f"batch_size={bench.batch_size}", f"storage_path={tmp}", "name=pack",
                          *data_keys]  # fmt: skip
                ray = timed([search])
                if n == 1:
                    single.append(f"| {arch} " + phases(Path(tmp) / "pack", ray, raw))
            print(
                f"| {arch} | {n} | {raw:.1f} | {work / raw:,.0f} | {ray:.1f} | {work / ray:,.0f} |"
            )
    print("\nOne-trial search against one plain process, seconds:\n")
    print("| arch | search wall | process wall | ratio | Ray start + driver | worker start + "
          "imports | data + model | first epoch | each other epoch |")  # fmt: skip
    print("| --- " * 9 + "|")
    print("\n".join(single))


if __name__ == "__main__":
    main(sys.argv[1:])
