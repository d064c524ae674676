"""Ensemble selection (Caruana et al. 2004, bagged as in 2006) that holds on unseen rows.

From a library of candidate models (the best checkpoints of the top trials, each
architecture's best, and the linear baseline), four ways to weigh it compete out of fold on
valid: the best single candidate, greedy selection with replacement on bootstrap samples of
valid (weights averaged over the samples), the plain average of the library, and the
average of the candidates valid cannot tell from the best. One that beats the best single
candidate by more than the noise is kept; where none does, the average of the close ones
(the best alone where no other is close) unless the best alone beats it by more than the
noise. Members' weights are how often they were picked. The test split only scores the
result. Kept as our own code (not a library's): it works on stored probabilities, needs no
refit, and is a few dozen lines of numpy.

Exported as `best_ensemble/`: `ensemble.json` (members, weights, scores) and one directory
per member (`model.pt`, or `baseline.json` + `baseline.npz` for the linear model);
`search.predict` loads it, nothing in it pickled.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep.atomic import link_or_copy
from data_prep.cli import ConfigError
from qamodels.baseline import BASELINE_ARRAYS, BASELINE_FILE
from qamodels.checkpoint import MODEL_FILE

ENSEMBLE_DIR = "best_ensemble"
ENSEMBLE_FILE = "ensemble.json"
BASELINE_MEMBER = "baseline"  # the linear model's member name; the others are trial names
MEMBER_FILES = {MODEL_FILE, BASELINE_FILE, BASELINE_ARRAYS}
# A member is one directory inside the ensemble's: a plain name, no separator, no "..".
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=,+-]*")


@dataclass
class Candidate:
    """One model of the library: where it lives and its class probabilities per split."""

    name: str  # trial id, or "baseline"
    arch: str  # architecture, or the baseline's description
    source: Path  # the directory holding model.pt (or baseline.json and baseline.npz)
    probabilities: dict[str, np.ndarray]  # "valid" / "test" -> (n, classes)


def _scores(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(accuracy, mean log-probability of the label) per candidate of a (k, n, classes) stack:
    accuracy decides, log loss breaks its frequent ties (compared as tuples). The selection's
    own criterion, for all candidates at once (it runs thousands of times per selection); the
    ensemble's reported scores come from qamodels.metrics.scores like every other model's."""
    picked = np.take_along_axis(probabilities, labels[None, :, None], axis=2)[..., 0]
    accuracy = (probabilities.argmax(2) == labels).mean(1)
    return np.stack([accuracy, np.log(np.clip(picked, 1e-12, None)).mean(1)], axis=1)


def _best(scores: np.ndarray) -> int:
    return int(np.lexsort((scores[:, 1], scores[:, 0]))[-1])


def best_of(valid: np.ndarray, labels: np.ndarray) -> int:
    """The index of the best candidate of a (k, n, classes) stack: most rows right, ties to
    the lower log loss."""
    return _best(_scores(valid, labels))


def greedy(valid: np.ndarray, labels: np.ndarray, rounds: int = 25) -> np.ndarray:
    """Caruana et al. 2004 on a (k, n, classes) stack: start from the best candidate, add the
    one (with replacement) whose addition scores best; counts of the best prefix seen."""
    scores = _scores(valid, labels)
    first = _best(scores)
    counts = np.zeros(len(valid))
    counts[first] = 1
    total = valid[first].copy()
    best_counts, best_score = counts.copy(), tuple(scores[first])
    for _ in range(rounds - 1):
        trial_scores = _scores((total + valid) / (counts.sum() + 1), labels)
        pick = _best(trial_scores)
        counts[pick] += 1
        total += valid[pick]
        if tuple(trial_scores[pick]) > best_score:
            best_counts, best_score = counts.copy(), tuple(trial_scores[pick])
    return best_counts / best_counts.sum()


def bagged(valid: np.ndarray, labels: np.ndarray, rng: np.random.Generator, bags: int = 20):
    """Greedy selection on `bags` bootstrap samples of the rows, weights averaged: a member
    earns weight only where it helps on most resamples, not on a few lucky rows. (Caruana et
    al. 2006 bag over models, against overfitting a library of thousands; here the library
    is a dozen and the noise is in a small valid split, so the rows are resampled.)"""
    weights = np.zeros(len(valid))
    for _ in range(bags):
        rows = rng.integers(0, len(labels), len(labels))
        weights += greedy(valid[:, rows], labels[rows])
    return weights / bags


def best_single(valid: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.eye(len(valid))[best_of(valid, labels)]


def library_average(valid: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
    """Every candidate alike: no weight is fitted to valid, so none fits its noise."""
    return np.full(len(valid), 1 / len(valid))


# Candidates within this many standard deviations of the best on valid (the paired
# difference's, as for MARGIN) count as close: valid cannot tell them from the best. 2: on
# a 545-row valid split where the baseline was the best of 13 and no weighing won out of
# fold, the close ones' average scored 1.1 points above it on 5,000 test rows; over ten
# libraries and 50 re-splits, +0.03 points on average (BENCHMARKS.md, "Small data").
CLOSE = 2.0


def close_to_best(valid: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Which candidates of a (k, n, classes) stack valid cannot tell from the best one (the
    best included): behind it by at most CLOSE standard deviations of the paired difference."""
    right = valid.argmax(2) == labels
    best = right[best_of(valid, labels)]
    disagree = np.maximum(1, (right != best).sum(1))
    return (best.sum() - right.sum(1)) / np.sqrt(disagree) <= CLOSE


def close_average(valid: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
    """The candidates valid cannot tell from the best alike (the best alone where no other
    is close): near-equal models with their own errors average to a better one, and a
    clearly weaker one gets no weight."""
    close = close_to_best(valid, labels)
    return close / close.sum()


# How far (in standard deviations of the paired difference under "no difference": the
# square root of the rows where the two disagree) an ensemble must beat the best single
# model out of fold. Measured on the sample's library and on simulated near-copies
# (BENCHMARKS.md, "Ensemble selection"): 0 let copies lose 0.45 points on 300 rows, 1 gave
# up half the real gain, 0.5 kept most of it and lost nothing on copies.
MARGIN = 0.5
# The ways to weigh the library; `select` keeps the one that scores best out of fold.
PROCEDURES = {
    "best single": best_single,
    "selection": bagged,
    "average": library_average,
    "close average": close_average,
}


def select(valid: list[np.ndarray], labels: np.ndarray, folds: int = 5, seed: int = 0):
    """Weights (summing to 1) over the candidates' valid probabilities, by the procedure of
    PROCEDURES that scores best out of fold, if it beats the best single candidate by more
    than its noise; else the close candidates' average, unless that candidate alone beats
    it by more than the noise.

    Out of fold: for each of `folds` parts of valid, every procedure weighs the library on
    the other parts and is scored on that part. Choosing on valid fits valid's noise (greedy
    selection on a 545-row split lost 1.2 points on test); this compares the procedures on
    rows none of them saw, so a small valid split does not pick an ensemble that only looks
    better, nor drop near-equal models that it cannot rank. The winner is then applied to
    all of valid."""
    stack, rng = np.stack(valid), np.random.default_rng(seed)
    if len(valid) == 1:
        return np.ones(1)
    right = {name: np.zeros(len(labels), bool) for name in PROCEDURES}
    for part in np.array_split(rng.permutation(len(labels)), folds):
        rest = np.setdiff1d(np.arange(len(labels)), part)
        for name, procedure in PROCEDURES.items():
            weights = procedure(stack[:, rest], labels[rest], rng)
            combined = np.tensordot(weights, stack[:, part], axes=1)
            right[name][part] = combined.argmax(1) == labels[part]
    winner = max(PROCEDURES, key=lambda name: right[name].sum())
    if not clearly_better(right[winner], right["best single"]):
        # No clear winner: valid is too small to tell. Averaging near-equal models is the
        # better bet (on average it beat the best single one on every library measured),
        # so the close ones' average unless the best alone is ahead of it by more than valid
        # can tell apart (CLOSE, as for who is close). At MARGIN, noise alone kept the best
        # single a third of the time: on AG News (760 valid rows) it won out of fold by 3
        # rows of 760 and scored 2.4 test points below the close ones' average.
        close_loses = clearly_better(right["best single"], right["close average"], CLOSE)
        winner = "best single" if close_loses else "close average"
    return PROCEDURES[winner](stack, labels, rng)


def clearly_better(right: np.ndarray, other: np.ndarray, margin: float = MARGIN) -> bool:
    """More rows right than `other` by over `margin` standard deviations of the difference."""
    gain = int(right.sum()) - int(other.sum())
    return gain > margin * np.sqrt((right != other).sum())


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
            if file.name in MEMBER_FILES:  # linked: the trial's own files, stored once
                link_or_copy(file, directory / file.name)
        members.append({"name": candidate.name, "arch": candidate.arch, "weight": float(weight)})
    manifest = {"members": members, "labels": labels, "scores": scores}
    (target / ENSEMBLE_FILE).write_text(json.dumps(manifest, indent=1))
    return target


def read_manifest(directory: Path) -> dict:
    """ensemble.json, checked: labels, and members each a plain directory name inside the
    ensemble's (never a path out of it) with a finite weight; one line if not."""
    path = Path(directory) / ENSEMBLE_FILE
    try:
        manifest = json.loads(path.read_text())
        labels, members = manifest["labels"], manifest["members"]
        if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
            raise ValueError("labels is not a list of names")
        if not (isinstance(members, list) and members):
            raise ValueError("no members")
        for member in members:
            name, weight = member["name"], member["weight"]
            if not (isinstance(name, str) and PLAIN_NAME.fullmatch(name)):
                raise ValueError(f"member name {name!r} is not a plain directory name")
            if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
                raise ValueError(f"member {name}: weight {weight!r} is not a number >= 0")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"{path}: not a valid ensemble ({str(err).splitlines()[0][:160]}); export it again "
            "(search.run resume=<experiment>) or use best_model/"
        ) from None
    return manifest


def is_ensemble(directory: Path) -> bool:
    return (Path(directory).expanduser() / ENSEMBLE_FILE).is_file()
