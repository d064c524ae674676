"""The driver's cost as a search grows: 40, 400, 2,000 trials of a trivial trainable.

    python bench/scale_bench.py                    # trials=40,400,2000 epochs=4 at_once=16
    python bench/scale_bench.py trials=40,400 epochs=8

Each search runs the driver's real parts (search.run make_tuner's pieces: TPE over the whole
space with recipes first, ASHA's first rung by architecture, the search's callbacks and the
experiment snapshots) on a local Ray, with a trainable that reports `epochs` results at once
and trains nothing, so only the driver is measured. Prints a Markdown table: the driver's CPU
seconds per 1,000 trial results, the time the searcher and scheduler take per result (the
result-to-decision cost) and TPE per new trial, the experiment state's size on disk and
Ray's own time to write it at the end, and the driver's peak memory.
"""

from __future__ import annotations

import functools
import logging
import re
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import ray
from ray import tune
from ray.tune.search import ConcurrencyLimiter

from data_prep.cli import arg, parse_overrides
from search.config import SearchConfig
from search.console import Console
from search.schedulers import FirstRungByArchitecture, SchedulerState
from search.searcher import make_searcher


@dataclass(frozen=True)
class ScaleConfig:
    trials: tuple[int, ...] = arg((40, 400, 2000), "search sizes, in trials")
    epochs: int = arg(4, "results each trial reports", min=1)
    at_once: int = arg(16, "trials running at once (0.1 CPU each on a local Ray)", min=1)


def trivial(config: dict) -> None:
    rng = np.random.default_rng(abs(hash(str(config))) % 2**32)
    base = rng.uniform(0.5, 0.9)
    for epoch in range(1, config["epochs"] + 1):
        tune.report({"valid_accuracy": base + 0.01 * epoch, "epoch": epoch})


class Timed:
    """Wraps a class's result hook (on the class: its instances stay picklable, as Ray saves
    the searcher) and adds up the seconds spent in it."""

    def __init__(self, cls: type, method: str) -> None:
        self.seconds, self.calls = 0.0, 0
        inner = getattr(cls, method)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        setattr(cls, method, timed)
        self.restore = lambda: setattr(cls, method, inner)


def with_epochs(trial, space, epochs: int) -> dict:
    """The search's space, plus how many results the trivial trainable reports."""
    return {**(space(trial) or {}), "epochs": epochs}


class WriteTime(logging.Handler):
    """Ray's own line at the end: 'Wrote the latest version of ... in 0.0083s'."""

    seconds = float("nan")

    def emit(self, record: logging.LogRecord) -> None:
        found = re.search(r"experiment state to .* in ([\d.]+)s", record.getMessage())
        if found:
            WriteTime.seconds = float(found[1])


def one_search(trials: int, scale: ScaleConfig, storage: Path) -> dict:
    config = SearchConfig(arch="all", num_samples=trials, max_epochs=scale.epochs,
                          grace_period=1, storage_path=str(storage), name=f"s{trials}",
                          embeddings=("random", "frozen", "finetune"))  # fmt: skip
    searcher = make_searcher(config)
    searcher._space = functools.partial(with_epochs, space=searcher._space, epochs=scale.epochs)
    scheduler = FirstRungByArchitecture(max_t=scale.epochs, grace_period=1, reduction_factor=3)
    asks = Timed(type(searcher), "on_trial_result")
    suggests = Timed(type(searcher), "suggest")
    decides = Timed(type(scheduler), "on_trial_result")
    tuner = tune.Tuner(
        tune.with_resources(trivial, {"CPU": 0.1}),
        tune_config=tune.TuneConfig(
            metric="valid_accuracy",
            mode="max",
            num_samples=trials,
            scheduler=scheduler,
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=scale.at_once),
            reuse_actors=True,
        ),  # fmt: skip
        run_config=tune.RunConfig(
            name=config.name,
            storage_path=str(storage),
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            callbacks=[SchedulerState(scheduler), Console(trials, config.metric, config.mode)],
        ),  # fmt: skip
    )
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    results = tuner.fit()
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - start
    asks.restore(), suggests.restore(), decides.restore()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    reports = sum(len(r.metrics_dataframe) for r in results if r.metrics_dataframe is not None)
    experiment = storage / config.name
    state = sum(p.stat().st_size for p in experiment.glob("*-state-*"))
    state += sum(p.stat().st_size for p in experiment.glob("callback-states-*"))
    return {
        "trials": trials, "results": reports, "wall s": round(wall, 1),
        "driver CPU s / 1k results": round(1000 * cpu / max(reports, 1), 2),
        "searcher ms / result": round(1000 * asks.seconds / max(asks.calls, 1), 2),
        "TPE ms / new trial": round(1000 * suggests.seconds / max(suggests.calls, 1), 1),
        "scheduler ms / result": round(1000 * decides.seconds / max(decides.calls, 1), 3),
        "state MB": round(state / 1e6, 2), "last write s": WriteTime.seconds,
        "driver peak MB": round(after.ru_maxrss / 1024),
    }  # fmt: skip


def main(argv: list[str]) -> None:
    scale = parse_overrides(ScaleConfig, argv)
    logging.getLogger("ray.tune").addHandler(WriteTime())
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for trials in scale.trials:
            rows.append(one_search(trials, scale, Path(tmp)))
            print(rows[-1], file=sys.stderr, flush=True)
    ray.shutdown()
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + " --- |" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
