"""Greedy ensemble selection with replacement (Caruana et al., ICML 2004).

From a library of candidate models (the best checkpoints of the top trials, and the linear
baseline), start from the best single model on valid and repeatedly add (with replacement)
the member whose addition scores best on valid; the ensemble is the best prefix seen, so it
never scores below its best member on valid. Members' weights are how often they were picked.
The test split only scores the result.

Exported as `best_ensemble/`: `ensemble.json` (members, weights, scores) and one directory
per member (`model.pt`, or `baseline.joblib` for the linear model); `search.predict` loads it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qamodels.checkpoint import MODEL_FILE

ENSEMBLE_DIR = "best_ensemble"
ENSEMBLE_FILE = "ensemble.json"


@dataclass
class Candidate:
    """One model of the library: where it lives and its class probabilities per split."""

    name: str  # trial id, or "baseline"
    arch: str  # architecture, or the baseline's description
    source: Path  # the directory holding model.pt (or baseline.joblib)
    probabilities: dict[str, np.ndarray]  # "valid" / "test" -> (n, classes)


def _score(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, -log loss): accuracy decides, log loss breaks its frequent ties."""
    picked = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, None)
    return float((probabilities.argmax(1) == labels).mean()), float(np.log(picked).mean())


def select(valid: list[np.ndarray], labels: np.ndarray, rounds: int = 25) -> np.ndarray:
    """Weights (summing to 1) over the candidates' valid probabilities."""
    scores = [_score(p, labels) for p in valid]
    first = max(range(len(valid)), key=lambda i: scores[i])
    counts = np.zeros(len(valid))
    counts[first] = 1
    total = valid[first].copy()
    best_counts, best_score = counts.copy(), scores[first]
    for _ in range(rounds - 1):
        size = counts.sum() + 1
        trial_scores = [_score((total + p) / size, labels) for p in valid]
        pick = max(range(len(valid)), key=lambda i: trial_scores[i])
        counts[pick] += 1
        total += valid[pick]
        if trial_scores[pick] > best_score:
            best_counts, best_score = counts.copy(), trial_scores[pick]
    return best_counts / best_counts.sum()


def combine(probabilities: list[np.ndarray], weights: np.ndarray) -> np.ndarray:
    return sum(w * p for w, p in zip(weights, probabilities, strict=True) if w > 0)


def export(
    candidates: list[Candidate], weights: np.ndarray, scores: dict, labels: list[str], target: Path
) -> Path:
    """best_ensemble/: the members with a nonzero weight, and ensemble.json."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    members = []
    for candidate, weight in zip(candidates, weights, strict=True):
        if weight <= 0:
            continue
        directory = target / candidate.name
        directory.mkdir()
        for file in candidate.source.iterdir():
            if file.name == MODEL_FILE or file.suffix == ".joblib":
                shutil.copy2(file, directory / file.name)
        members.append({"name": candidate.name, "arch": candidate.arch, "weight": float(weight)})
    manifest = {"members": members, "labels": labels, "scores": scores}
    (target / ENSEMBLE_FILE).write_text(json.dumps(manifest, indent=1))
    return target


def read_manifest(directory: Path) -> dict:
    return json.loads((Path(directory) / ENSEMBLE_FILE).read_text())


def is_ensemble(directory: Path) -> bool:
    return (Path(directory).expanduser() / ENSEMBLE_FILE).is_file()
