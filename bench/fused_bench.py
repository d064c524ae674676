"""Fused trials against the same trials apart: wall time, trials per hour, valid accuracy.

    python bench/fused_bench.py                                   # dan and cnn_parallel, 8 each
    python bench/fused_bench.py archs=dan members=16 rows=20000 device=cuda epochs=3

K configurations of one architecture and shape (rates, weight decays, dropouts and label
smoothing drawn as a search would, seeded) are trained twice on the sample: one after the
other by `Trainer` (one trial at a time, as one process per trial runs them on a device it
has alone), and together by `qamodels.fused.FusedGroup`. Accuracy is the mean and the best
of the members' best valid accuracy (with dropout the two runs draw different masks, so they
match in distribution, not digit for digit). Prints a Markdown table.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from common import SHARED_DATA, prepared_sample

from data_prep.cli import arg, parse_overrides
from qamodels.config import TrainConfig
from qamodels.device import resolve_device
from qamodels.fused import FusedGroup
from qamodels.trainer import Trainer
from search.markdown import markdown_table

SHAPES = {  # the parameters the members share (the rest: each arch's defaults)
    "dan": {"hidden": 256, "ngrams": 2},
    "cnn_parallel": {"filters": 128, "windows": (2, 3, 4), "norm": "layer"},
    "cnn_stacked": {"filters": 128, "layers": 2, "norm": "batch"},
}


@dataclass(frozen=True)
class FusedBench:
    archs: str = arg("dan,cnn_parallel", "architectures, a comma list (" + ", ".join(SHAPES) + ")")
    members: int = arg(8, "trials per group", min=1)
    epochs: int = arg(2, "epochs of every trial", min=1)
    rows: int = arg(0, "training rows (0: all of the sample's)", min=0)
    batch_size: int = arg(256, "batch size of every trial", min=1)
    device: str = arg("auto", "cpu, cuda or auto")
    raw_dir: str = arg(str(SHARED_DATA), "the Amazon QA sample")


def drawn(bench: FusedBench, arch: str) -> tuple[list[TrainConfig], list[dict]]:
    """`members` configs of one shape with their own rates, decays, dropouts, smoothing."""
    rng = np.random.default_rng(0)
    base = TrainConfig(arch=arch, epochs=bench.epochs, batch_size=bench.batch_size,
                       max_train_rows=bench.rows, device=bench.device, progress=False,
                       patience=bench.epochs)  # fmt: skip
    configs, params = [], []
    for _ in range(bench.members):
        lr, decay = float(10 ** rng.uniform(-3.3, -2)), float(rng.choice([0, 0.01, 0.1]))
        smoothing = float(rng.choice([0, 0.1]))
        configs.append(
            dataclasses.replace(base, lr=lr, weight_decay=decay, label_smoothing=smoothing)
        )
        dropout = {"dropout": float(rng.uniform(0, 0.5))}
        dropout["spatial_dropout" if arch.startswith("cnn") else "word_dropout"] = float(
            rng.uniform(0, 0.3)
        )
        params.append({**SHAPES[arch], **dropout})
    return configs, params


def timed(work) -> tuple[float, list]:
    device = resolve_device("auto")
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    results = work()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, results


def row(arch: str, mode: str, seconds: float, results, members: int) -> dict:
    accuracy = [r.best.get("valid_accuracy", float("nan")) for r in results]
    return {"arch": arch, "mode": mode, "trials": members, "wall s": f"{seconds:.1f}",
            "trials/hour": f"{members * 3600 / seconds:.0f}",
            "mean valid acc": f"{np.mean(accuracy):.4f}",
            "best valid acc": f"{np.max(accuracy):.4f}"}  # fmt: skip


def main(argv: list[str]) -> None:
    bench = parse_overrides(FusedBench, argv)
    data = prepared_sample(tempfile.mkdtemp(prefix="fused"), bench.raw_dir)
    rows = []
    for arch in bench.archs.split(","):
        configs, params = drawn(bench, arch)
        pairs = list(zip(configs, params, strict=True))
        apart_s, apart = timed(lambda pairs=pairs: [Trainer(c, data, p).fit() for c, p in pairs])
        fused_s, fused = timed(lambda c=configs, p=params: FusedGroup(c, data, p).fit())
        rows.append(row(arch, "apart", apart_s, apart, bench.members))
        rows.append(row(arch, "fused", fused_s, fused, bench.members))
        rows[-1]["speed-up"] = f"{apart_s / fused_s:.2f}x"
        print(rows[-2], rows[-1], file=sys.stderr)
    device = resolve_device(bench.device)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
    rows_used = min(bench.rows or len(data.train), len(data.train))
    print(f"fused trials, {rows_used} training rows, {bench.epochs} epochs, {name}, "
          f"torch {torch.__version__}")  # fmt: skip
    print(markdown_table(pd.DataFrame(rows).fillna("")))


if __name__ == "__main__":
    main(sys.argv[1:])
