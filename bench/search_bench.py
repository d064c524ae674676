"""Search benchmarks: Ray overhead per trial, and ASHA+Optuna against random search.

    python bench/search_bench.py [archs=dan,cnn_stacked] [num_samples=16] [max_epochs=9]
        [max_concurrent=2] [gpus_per_trial=0] [compare=0: skip part 2]

1. Overhead: one fixed DAN config trained directly (qamodels.Trainer) and as a one-trial
   Ray Tune run: time to the first epoch's report and total wall time; and per trial in a
   run of 8 one-epoch trials, with and without reusing the trial actors.
2. Quality per compute: the same number of trials with Optuna TPE + ASHA, and with random
   sampling and no early stopping (recipes off in both: this compares sampler + scheduler);
   best valid accuracy, epochs spent in all and until random search's best was reached,
   wall time, and the share of the machine that trained (training seconds / wall seconds x
   concurrent trials).
Prints Markdown tables.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass

import pandas as pd
import ray
import torch
from common import prepared_sample
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from data_prep.cli import arg, parse_overrides
from qamodels.config import TrainConfig
from qamodels.trainer import Trainer
from search.config import SearchConfig
from search.markdown import markdown_table
from search.report import anytime
from search.run import run_search
from search.trainable import run_trial

FIXED = {"arch": "dan", "dan": {}, "train": {"lr": 3e-3, "batch_size": 128}}


def overhead(data, storage: str, epochs: int) -> tuple[float, float, float, float]:
    start = time.perf_counter()
    trainer = Trainer(
        TrainConfig(arch="dan", epochs=epochs, lr=3e-3, batch_size=128, progress=False), data
    )
    first = []
    trainer.fit(on_epoch=lambda end: first.append(time.perf_counter()) if not first else None)
    direct_first, direct_total = first[0] - start, time.perf_counter() - start
    search = SearchConfig(
        max_epochs=epochs, storage_path=storage, train=TrainConfig(patience=epochs)
    )
    trainable = tune.with_parameters(run_trial, data=data.without_test(), search_config=search)
    start, wall0 = time.perf_counter(), time.time()
    results = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=FIXED,
        run_config=tune.RunConfig(
            name="overhead",
            storage_path=storage,
            verbose=0,
            callbacks=[CSVLoggerCallback(), JsonLoggerCallback()],
        ),
    ).fit()
    ray_total = time.perf_counter() - start
    ray_first = results[0].metrics_dataframe["timestamp"].iloc[0] - wall0
    return direct_first, direct_total, ray_first, ray_total


def per_trial_overhead(data, storage: str, reuse: bool, trials: int = 8) -> dict:
    """`trials` one-epoch DAN trials, two at a time: the wall time two slots spend beyond
    the trials' own training, per trial (actor start, data, reports, checkpoints)."""
    search = SearchConfig(max_epochs=1, storage_path=storage,
                          train=TrainConfig(max_train_rows=3000))  # fmt: skip
    trainable = tune.with_parameters(run_trial, data=data.without_test(), search_config=search)
    start = time.perf_counter()
    results = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=FIXED,
        tune_config=tune.TuneConfig(
            num_samples=trials, reuse_actors=reuse, max_concurrent_trials=2
        ),  # fmt: skip
        run_config=tune.RunConfig(name=f"reuse_{reuse}", storage_path=storage, verbose=0),
    ).fit()
    wall = time.perf_counter() - start
    trained = sum(r.metrics["seconds"] for r in results)  # one epoch: the last report
    return {"reuse_actors": reuse, "trials": trials, "wall s": wall,
            "overhead s per trial": (2 * wall - trained) / trials}  # fmt: skip


def compare(data, storage: str, options: dict) -> list[dict]:
    rows, curves = [], {}
    for label, searcher, scheduler in [
        ("random, no early stopping", "random", "none"),
        ("Optuna TPE + ASHA", "optuna", "asha"),
    ]:
        config = SearchConfig(
            arch=options.archs,
            num_samples=options.num_samples,
            max_epochs=options.max_epochs,
            max_concurrent=options.max_concurrent,
            gpus_per_trial=options.gpus_per_trial,
            searcher=searcher,
            trial_scheduler=scheduler,
            storage_path=storage,
            name=f"compare_{searcher}_{scheduler}",
            recipes=False,
            pretrain="false",  # sampler + scheduler only (bench/transfer_bench.py for LMs)
            train=TrainConfig(patience=100),  # only the scheduler stops trials early here
        )
        start = time.perf_counter()
        results, _board = run_search(config, data)
        wall = time.perf_counter() - start
        curves[label] = anytime(results, config.metric, config.mode)
        trials = pd.read_csv(config.experiment_path / "trials.csv")
        trained = sum(r.metrics_dataframe["seconds"].max() for r in results)
        rows.append(
            {
                "search": label,
                "trials": len(trials),
                "best valid accuracy": trials["valid_accuracy"].max(),
                "epochs spent": int(trials["epochs"].sum()),
                "wall s": wall,
                "training share": trained / (wall * config.max_concurrent),
            }
        )
    target = rows[0]["best valid accuracy"]
    for row in rows:
        curve = curves[row["search"]]
        reached = curve[curve["best"] >= target - 1e-9]
        row["epochs to random's best"] = int(reached["epochs"].iloc[0]) if len(reached) else None
    return rows


@dataclass(frozen=True)
class SearchBench:
    archs: str = arg("dan,cnn_stacked", "architectures of the compared searches")
    num_samples: int = arg(16, "trials per compared search", min=1)
    max_epochs: int = arg(9, "epochs per trial at most", min=1)
    max_concurrent: int = arg(2, "trials at once", min=1)
    gpus_per_trial: str = arg("0", "GPU share per trial")
    compare: bool = arg(True, "run the searcher/scheduler comparison after the overheads")


def main(argv: list[str]) -> None:
    options = parse_overrides(SearchBench, argv)
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        data = prepared_sample(tmp)
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        df, dt, rf, rt = overhead(data, tmp, epochs=3)
        reuse = [per_trial_overhead(data, tmp, flag) for flag in (False, True)]
        rows = compare(data, tmp, options) if options.compare else []
        ray.shutdown()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"\nmachine: {os.cpu_count()} cores, {device}")
    print("| DAN, 3 epochs | time to first epoch | total |\n| --- | --- | --- |")
    print(f"| without Ray (Trainer) | {df:.1f} s | {dt:.1f} s |")
    print(f"| one Ray Tune trial | {rf:.1f} s | {rt:.1f} s |")
    print(f"| overhead | {rf - df:+.1f} s | {rt - dt:+.1f} s |\n")
    print(markdown_table(pd.DataFrame(reuse)) + "\n")
    if rows:
        print(markdown_table(pd.DataFrame(rows)))


if __name__ == "__main__":
    main(sys.argv[1:])
