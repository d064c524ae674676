"""What each architecture reaches in a short CPU run on the shared Amazon sample.

    python bench/accuracy_bench.py [archs=dan,cnn_parallel] [epochs=10]

Each architecture trains once with the config below (a sensible hand-picked point, not a
search result) on the sample's train split (categories=all) and is scored on its valid split.
Prints a Markdown table; the bar the search has to beat is a TF-IDF (1-2 grams) + linear SVM
at about 0.88 accuracy on the same kind of split.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass

import torch
from common import prepared_sample

from data_prep.cli import arg, parse_overrides
from qamodels.config import TrainConfig
from qamodels.trainer import Trainer

CONFIGS = {
    "dan": ({"lr": 5e-3, "embedding_dim": 256}, {"hidden": 512, "dropout": 0.3}),
    "cnn_parallel": ({"lr": 3e-3, "embedding_dim": 256}, {"filters": 128, "windows": (1, 2, 3)}),
    "cnn_stacked": ({"lr": 3e-3, "embedding_dim": 256}, {"layers": 2, "filters": 128}),
    "cnn_residual": ({"lr": 3e-3, "embedding_dim": 256}, {"blocks": 2, "filters": 128}),
    "bilstm": ({"lr": 3e-3, "embedding_dim": 256}, {"hidden": 128, "pooling": "max"}),
    "transformer": ({"lr": 1e-3, "embedding_dim": 128}, {"layers": 2, "d_model": 128}),
}


@dataclass(frozen=True)
class AccuracyBench:
    archs: str = arg(",".join(CONFIGS), "architectures, comma-separated")
    epochs: int = arg(10, "epochs per architecture", min=1)


def main(argv: list[str]) -> None:
    options = parse_overrides(AccuracyBench, argv)
    archs, epochs = options.archs.split(","), options.epochs
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = prepared_sample(tmp)
        for arch in archs:
            train, params = CONFIGS[arch]
            config = TrainConfig(arch=arch, epochs=epochs, progress=False, patience=3, **train)
            start = time.perf_counter()
            result = Trainer(config, data, params).fit()
            rows.append((arch, train, params, result, time.perf_counter() - start))
            print(f"{arch}: {result.best['valid_accuracy']:.4f}", file=sys.stderr)
    print(f"train {len(data.train)} rows, valid {len(data.valid)} rows, CPU, 2 threads\n")
    print("| arch | accuracy | macro-F1 | best epoch / run | seconds | config |")
    print("| --- | --- | --- | --- | --- | --- |")
    for arch, train, params, result, seconds in rows:
        best = result.best
        config = " ".join(f"{k}={v}" for k, v in {**train, **params}.items())
        print(
            f"| {arch} | {best['valid_accuracy']:.4f} | {best['valid_macro_f1']:.4f} | "
            f"{best['epoch']} / {len(result.history)} | {seconds:.0f} | {config} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
