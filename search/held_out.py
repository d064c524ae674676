"""After the trials: score the chosen models on the held-out test split, build the ensemble.

Model choice uses valid only: the best trial per architecture (the leaderboard), the best
single model among them (search/choice.py), the top trials overall (the ensemble's library)
and the ensemble's weights are all picked on valid.
Test is read here, once, to report what was chosen: the linear baseline, each
architecture's best, the best single model and the ensemble, each with its lift over the
baseline on the same split.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from data_prep.store import PreparedData
from qamodels.baseline import BaselineResult, refit_on_train_and_valid
from qamodels.batches import DeviceSplit
from qamodels.checkpoint import load_model
from qamodels.metrics import scores
from qamodels.trainer import predict_logits
from search import ensemble
from search.choice import Choice, simplest_close
from search.refit import Refit
from search.trainable import BEST_MODEL_DIR

SPLITS = ("valid", "test")


@dataclass
class HeldOut:
    """The rows of the final table (baseline, per-architecture best, ensemble), the best
    single model and where the ensemble was exported."""

    table: pd.DataFrame
    ensemble_dir: Path | None
    best_single: Choice | None = None


def model_probabilities(model_dir: Path, data: PreparedData) -> dict[str, np.ndarray]:
    model, _ = load_model(model_dir)
    splits = {"valid": data.valid, "test": data.test}
    return {
        name: torch.softmax(predict_logits(model, DeviceSplit.from_split(split, "cpu")), -1)
        .numpy()
        .astype(np.float64)
        for name, split in splits.items()
    }


def library(rows: pd.DataFrame, board: pd.DataFrame, metric: str, mode: str, top: int):
    """The trials whose best checkpoints the ensemble may use: the top `top` trials on valid
    and every architecture's best, best first."""
    scored = rows.dropna(subset=[metric]).sort_values(metric, ascending=mode == "min")
    chosen = list(scored["trial"].head(top)) + list(board["trial"])
    return scored.set_index("trial").loc[list(dict.fromkeys(chosen))]


def score_row(kind: str, name: str, arch: str, probabilities: dict, labels: dict, classes: int):
    row = {"model": kind, "trial": name, "arch": arch}
    for split in SPLITS:
        found = scores(probabilities[split], labels[split], classes)
        row[f"{split}_accuracy"] = found["accuracy"]
        row[f"{split}_macro_f1"] = found["macro_f1"]
    return row


def candidates(
    rows: pd.DataFrame, board: pd.DataFrame, data: PreparedData, metric: str, mode: str, top: int
) -> list[ensemble.Candidate]:
    """The library's trials with a saved best checkpoint, with their probabilities."""
    found = []
    for trial, row in library(rows, board, metric, mode, top).iterrows():
        source = Path(row["path"]) / BEST_MODEL_DIR
        if (source / "model.pt").is_file():
            probabilities = model_probabilities(source, data)
            found.append(ensemble.Candidate(str(trial), row["arch"], source, probabilities))
    return found


def weights_by_arch(members: list[tuple[ensemble.Candidate, float]]) -> str:
    """The ensemble's weight per architecture, heaviest first, with its member count where
    above one: "0.50 dan (6) + 0.08 bilstm" (the table's arch column; ensemble.json lists
    every member)."""
    total: dict[str, list[float]] = {}
    for candidate, weight in members:
        total.setdefault(candidate.arch, []).append(weight)
    ranked_ = sorted(total.items(), key=lambda item: -sum(item[1]))
    return " + ".join(
        f"{sum(w):.2f} {arch}" + (f" ({len(w)})" if len(w) > 1 else "") for arch, w in ranked_
    )


def build_ensemble(
    library_: list[ensemble.Candidate], labels: dict, class_names: list[str], target: Path
) -> tuple[dict, Path]:
    """Select on valid, export to `target`; the ensemble's row of the final table."""
    weights = ensemble.select([c.probabilities["valid"] for c in library_], labels["valid"])
    combined = {
        s: ensemble.combine([c.probabilities[s] for c in library_], weights) for s in SPLITS
    }
    members = [(c, w) for c, w in zip(library_, weights, strict=True) if w > 0]
    description = weights_by_arch(members)
    # One member: out of fold, no ensemble beat the best single model (search/ensemble.py).
    name = f"{len(members)} members" if len(members) > 1 else "best single kept"
    row = score_row("ensemble", name, description, combined, labels, len(class_names))
    scores = {k: v for k, v in row.items() if k.startswith(SPLITS)}
    return row, ensemble.export(library_, weights, scores, class_names, target)


def finish(
    rows: pd.DataFrame,
    board: pd.DataFrame,
    data: PreparedData,
    baseline: BaselineResult | None,
    metric: str,
    mode: str,
    top: int,
    experiment_dir: Path,
) -> HeldOut:
    """Score the baseline and each architecture's best on valid and test, build and export
    the ensemble (from the top trials and the baseline), and rank the rows."""
    labels = {"valid": data.valid.label, "test": data.test.label}
    classes = len(data.labels)
    library_ = candidates(rows, board, data, metric, mode, top)
    best_per_arch = [c for c in library_ if c.name in set(board["trial"])]
    choice = best_single(best_per_arch, labels["valid"], metric)
    table = [
        score_row("best of arch", c.name, c.arch, c.probabilities, labels, classes)
        | {"best_single": choice is not None and c is choice.chosen}
        for c in best_per_arch
    ]
    if baseline is not None:
        table.append(score_row("baseline", "-", baseline.name, baseline.probabilities, labels,
                               classes))  # fmt: skip
        saved = baseline.save(experiment_dir / ensemble.BASELINE_MEMBER)
        if library_:
            member = ensemble.BASELINE_MEMBER
            library_.append(ensemble.Candidate(member, baseline.name, saved.parent,
                                               baseline.probabilities))  # fmt: skip
    ensemble_dir = None
    if library_:
        row, ensemble_dir = build_ensemble(
            library_, labels, data.labels, experiment_dir / ensemble.ENSEMBLE_DIR
        )
        table.append(row)
    return HeldOut(ranked(pd.DataFrame(table), baseline), ensemble_dir, choice)


def best_single(best_per_arch: list[ensemble.Candidate], labels: np.ndarray, metric: str):
    """The simplest model valid cannot tell from the best (search/choice.py) when the search
    ranks by accuracy, the rule's own measure; by another metric, the board's best."""
    if not best_per_arch:
        return None
    if metric != "valid_accuracy":
        return Choice(best_per_arch[0], best_per_arch[0], 1)
    return simplest_close(best_per_arch, labels)


def ranked(frame: pd.DataFrame, baseline: BaselineResult | None) -> pd.DataFrame:
    """Lift over the baseline; the ensemble first, then each architecture's best (the best
    single model first, then best on valid first), then the baseline."""
    if frame.empty:
        return frame
    if baseline is not None:
        for split in SPLITS:
            reference = (baseline.valid if split == "valid" else baseline.test)["accuracy"]
            frame[f"{split}_lift"] = frame[f"{split}_accuracy"] - reference
    rank = frame["model"].map({"ensemble": 0, "best of arch": 1, "baseline": 2,
                               "baseline refit": 3})  # fmt: skip
    if "best_single" in frame:
        rank = rank - 0.5 * frame["best_single"].eq(True)
    frame = frame.assign(rank=rank).sort_values(["rank", "valid_accuracy"],
                                                ascending=[True, False])  # fmt: skip
    return frame.drop(columns="rank").reset_index(drop=True)


def with_refit_scores(
    held_out: HeldOut, refit: Refit, data: PreparedData, baseline: BaselineResult | None,
    max_train_rows: int = 0, seed: int = 0,
) -> HeldOut:  # fmt: skip
    """The best single model's test scores as its refit's (what best_model/ and
    search.predict use), its `refit` cell saying so; valid stays the trial's, on which it
    was chosen (the refit trained on valid's rows). Beside it the baseline refit the same
    way (a "baseline refit" row), against which its test lift is counted: valid's rows lift
    the linear model too."""
    test = model_probabilities(refit.run_dir, data)["test"]
    found = scores(test, data.test.label, len(data.labels))
    table = held_out.table.copy()
    row = (table["model"] == "best of arch") & (table["trial"] == refit.trial)
    table.loc[row, ["test_accuracy", "test_macro_f1"]] = found["accuracy"], found["macro_f1"]
    table["refit"] = np.where(row, f"train+valid, {refit.epochs} epochs", "")
    if baseline is not None and "test_lift" in table:
        refit_test = refit_on_train_and_valid(baseline, data, max_train_rows, seed)
        linear = scores(refit_test, data.test.label, len(data.labels))
        table.loc[row, "test_lift"] = found["accuracy"] - linear["accuracy"]
        again = {"model": "baseline refit", "trial": "-", "arch": baseline.name,
                 "test_accuracy": linear["accuracy"], "test_macro_f1": linear["macro_f1"],
                 "test_lift": linear["accuracy"] - baseline.test["accuracy"],
                 "refit": "train+valid"}  # fmt: skip
        table = pd.concat([table, pd.DataFrame([again])], ignore_index=True)
    return dataclasses.replace(held_out, table=table)
