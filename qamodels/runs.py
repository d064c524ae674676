"""A training run's directory: the model, its metrics, history and losses, and its plots."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from data_prep.atomic import atomic_path, write_text
from data_prep.store import PreparedData
from qamodels import plots
from qamodels.checkpoint import MODEL_FILE, save_model
from qamodels.config import TrainConfig

if TYPE_CHECKING:  # the trainer imports this module
    from qamodels.trainer import TrainResult


def write_run(
    run_dir: Path,
    model: torch.nn.Module,
    config: TrainConfig,
    params: dict,
    data: PreparedData,
    result: TrainResult,
    confusion: np.ndarray | None,
    iteration_loss: list[float],
    plot: bool = True,
) -> Path:
    """model.pt, metrics.json (with the best epoch's confusion matrix), history.csv,
    iteration_loss.csv; and the PNG plots unless `plot=False` (a search draws them once,
    for the model it exports: plots.plot_run)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(run_dir / MODEL_FILE) as model_file:  # read by exports meanwhile
        save_model(model_file, model, config.arch, params, asdict(config), data.vocab,
                   data.labels, data.max_length, result.best, data.expand_vocab)  # fmt: skip
    summary = {
        "best": result.best,
        "stopped": result.stopped,
        "params": params,
        "parameters": sum(p.numel() for p in model.parameters()),
        "labels": data.labels,
        "confusion": None if confusion is None else confusion.tolist(),
        "history": result.history,
    }
    write_text(run_dir / "metrics.json", json.dumps(summary, indent=1, default=str))
    np.savetxt(run_dir / "iteration_loss.csv", np.array(iteration_loss), fmt="%.6f")
    result.run_dir = run_dir
    if result.history:
        with open(run_dir / "history.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(result.history[0]))
            writer.writeheader()
            writer.writerows(result.history)
        if plot:
            plots.plot_run(run_dir)
    return run_dir
