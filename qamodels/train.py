r"""Train one classifier on a prepared dataset, no Ray needed.

    python -m qamodels.train arch=cnn_parallel raw_dir=../shared/data/amazon_qa \
        categories=all valid_size=0.1 train_size=0.6 epochs=5 filters=128 windows=2,3,4

Keys go to the data prep config (data_prep.PrepConfig), the training config
(qamodels.TrainConfig), or else to the architecture's own parameters (qamodels.registry).
Writes the run directory: model.pt, metrics.json, history.csv and PNG plots; on Ctrl-C
(SIGINT) or SIGTERM, those of the epochs that finished (the best of them), exit 130 / 143.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from data_prep import PrepConfig, prepared_data
from data_prep.cli import ConfigError, configure_logging, fail, help_text, split_overrides
from data_prep.errors import QatuneError
from data_prep.interrupt import GUARD, Interrupted
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
    configure_logging()
    with GUARD.handling():
        return train_command(argv)


def train_command(argv: list[str]) -> int:
    try:
        prep, config, params = split_args(argv)
        run_dir = Path(config.out_dir or default_run_dir(config.arch)).expanduser()
        check_run_dir(run_dir)
        data = prepared_data(prep)
        trainer = Trainer(config, data, params)
    except QatuneError as err:
        return fail(err)
    except Interrupted as stop:
        print(f"stopped by {stop.name} before training started: nothing was written",
              file=sys.stderr)  # fmt: skip
        return stop.exit_code
    print(f"{config.arch}: {trainer.parameter_count:,} parameters on {trainer.device}")
    code = 0
    try:
        result = trainer.fit()
    except Interrupted as stop:  # keep what the finished epochs found
        result, code = trainer.result(f"stopped by {stop.name}"), stop.exit_code
        if not result.history:
            print(f"{result.stopped} during the first epoch: nothing was written",
                  file=sys.stderr)  # fmt: skip
            return code
    if not result.best:  # diverged before any epoch could be scored: no model to keep
        print(f"error: {result.stopped}; nothing was written", file=sys.stderr)
        return 1
    trainer.save_run(run_dir, result)
    best = result.best
    print(
        f"{result.stopped}; best epoch {best.get('epoch')}: accuracy "
        f"{best.get('valid_accuracy', 0):.4f}, macro-F1 {best.get('valid_macro_f1', 0):.4f}"
    )
    print(f"run directory: {run_dir}")
    if result.stopped.startswith("non-finite"):  # a failure, even with a finite epoch kept
        print(f"error: the run diverged ({result.stopped.split(':')[0]}); what was saved is "
              f"its best finite epoch, {best.get('epoch')}", file=sys.stderr)  # fmt: skip
        return 1
    return code


def default_run_dir(arch: str) -> str:
    return f"~/.qatune/runs/{arch}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_run_dir(run_dir: Path) -> None:
    """Before any training: the run directory can be written (not a file, not read-only)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"out_dir={run_dir} is a file: give a directory for the run")
    parent = next((p for p in (run_dir, *run_dir.parents) if p.exists()), Path("/"))
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"out_dir={run_dir}: {parent} is not writable; choose another out_dir")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
