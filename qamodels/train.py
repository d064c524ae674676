r"""Train one classifier on a prepared dataset, no Ray needed.

    python -m qamodels.train arch=cnn_parallel raw_dir=../shared/data/amazon_qa \
        categories=all valid_size=0.1 train_size=0.6 epochs=5 filters=128 windows=2,3,4

Keys go to the data prep config (data_prep.PrepConfig), the training config
(qamodels.TrainConfig), or else to the architecture's own parameters (qamodels.registry).
Writes the run directory: model.pt, metrics.json, history.csv and PNG plots.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from data_prep import PrepConfig, prepared_data
from data_prep.cli import fail, help_text, split_overrides
from data_prep.errors import QatuneError
from qamodels.config import TrainConfig
from qamodels.registry import ARCHITECTURES, architecture, parse_params
from qamodels.trainer import Trainer


def split_args(argv: list[str]) -> tuple[PrepConfig, TrainConfig, dict]:
    prep, train, arch_args = split_overrides(argv, PrepConfig, TrainConfig, rest=True)
    architecture(train.arch)
    return prep, train, parse_params(train.arch, arch_args)


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print(help_text(TrainConfig, "training keys:"))
        for name, arch in ARCHITECTURES.items():
            print(help_text(arch.config, f"{name} parameters:"))
        return 0
    try:
        prep, config, params = split_args(argv)
        data = prepared_data(prep)
        trainer = Trainer(config, data, params)
    except QatuneError as err:
        return fail(err)
    print(f"{config.arch}: {trainer.parameter_count:,} parameters on {trainer.device}")
    result = trainer.fit()
    default_dir = f"~/.qatune/runs/{config.arch}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = trainer.save_run(Path(config.out_dir or default_dir).expanduser(), result)
    best = result.best
    print(
        f"{result.stopped}; best epoch {best.get('epoch')}: accuracy "
        f"{best.get('valid_accuracy', 0):.4f}, macro-F1 {best.get('valid_macro_f1', 0):.4f}"
    )
    print(f"run directory: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
