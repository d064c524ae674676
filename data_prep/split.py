"""Step 3: a stratified, seeded split into valid / train / unlabeled.

Sizes are row counts, or fractions of all rows when below 1. Every class gets its share of
valid and train (largest remainder rounding, so the totals are exact); the rest is unlabeled
and keeps its question and answer text for language-model pretraining.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_prep.config import PrepConfig


class SplitError(ValueError):
    pass


def resolve_size(size: float, total: int, name: str) -> int:
    if size < 0:
        raise SplitError(f"{name}={size}: must be a count >= 1 or a fraction in (0, 1)")
    return int(round(size * total)) if size < 1 else int(size)


def _allocate(class_counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes proportionally to their counts, summing exactly to total."""
    exact = class_counts * total / class_counts.sum()
    shares = np.floor(exact).astype(int)
    order = np.argsort(-(exact - shares), kind="stable")
    shares[order[: total - shares.sum()]] += 1
    return np.minimum(shares, class_counts)


def split(rows: pd.DataFrame, config: PrepConfig) -> dict[str, pd.DataFrame]:
    total = len(rows)
    n_valid = resolve_size(config.valid_size, total, "valid_size")
    n_train = resolve_size(config.train_size, total, "train_size")
    if n_valid + n_train > total:
        raise SplitError(
            f"valid_size={config.valid_size:g} and train_size={config.train_size:g} ask for "
            f"{n_valid} + {n_train} = {n_valid + n_train} rows, but only {total} rows remain "
            "after filtering. Ask for fewer rows or fractions (e.g. valid_size=0.1 "
            "train_size=0.6), or add categories/files; sizes are never shrunk silently."
        )
    if n_valid < 1 or n_train < 1:
        raise SplitError(f"valid ({n_valid}) and train ({n_train}) need at least one row each")
    rng = np.random.default_rng(config.split_seed)
    labels = rows["category"].to_numpy()
    classes, counts = np.unique(labels, return_counts=True)
    valid_share = _allocate(counts, n_valid)
    train_share = _allocate(counts - valid_share, n_train)
    parts: dict[str, list[np.ndarray]] = {"valid": [], "train": [], "unlabeled": []}
    for cls, n_v, n_t in zip(classes, valid_share, train_share, strict=True):
        members = rng.permutation(np.flatnonzero(labels == cls))
        parts["valid"].append(members[:n_v])
        parts["train"].append(members[n_v : n_v + n_t])
        parts["unlabeled"].append(members[n_v + n_t :])
    return {
        name: rows.iloc[rng.permutation(np.concatenate(idx))].reset_index(drop=True)
        for name, idx in parts.items()
    }
