"""Step 3: a stratified, seeded split into valid / test / train / unlabeled.

Sizes are row counts, or fractions of all rows when below 1. Every class gets its share of
valid, test and train (largest remainder rounding, so the totals are exact); the rest is
unlabeled and keeps its question and answer text for language-model pretraining. The test
split is held out: only the final scores of the chosen models read it. With an official test
set (`test_source=`) those rows are the test split and test_size is unused.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from data_prep.config import PrepConfig
from data_prep.errors import DataError

log = logging.getLogger(__name__)


class SplitError(DataError):
    pass


def more_rows(config: PrepConfig) -> str:
    """Advice that fits where the rows come from."""
    return "add rows to the source= file" if config.source else "add categories=/files"


def resolve_size(size: float, total: int, name: str) -> int:
    if size < 0 or (size >= 1 and size != int(size)):
        raise SplitError(f"{name}={size:g}: must be a whole count >= 1 or a fraction in (0, 1)")
    return int(round(size * total)) if size < 1 else int(size)


def _allocate(class_counts: np.ndarray, total: int) -> np.ndarray:
    """Split `total` over classes proportionally to their counts, summing exactly to total."""
    exact = class_counts * total / class_counts.sum()
    shares = np.floor(exact).astype(int)
    order = np.argsort(-(exact - shares), kind="stable")
    shares[order[: total - shares.sum()]] += 1
    return np.minimum(shares, class_counts)


def split(
    rows: pd.DataFrame, config: PrepConfig, test_rows: pd.DataFrame | None = None
) -> dict[str, pd.DataFrame]:
    """valid, test, train and unlabeled frames; `test_rows` (an official test set) replace
    the drawn test split."""
    total = len(rows)
    asked = {n: config.size(f"{n}_size") for n in ("valid", "test", "train")}
    if test_rows is not None:
        asked["test"] = 0
    sizes = {name: resolve_size(size, total, f"{name}_size") for name, size in asked.items()}
    if config.source and not config.train_size:  # a user's labels: every one trains
        sizes["train"] = max(0, total - sizes["valid"] - sizes["test"])
    if sum(sizes.values()) > total:
        counts = " + ".join(str(n) for n in sizes.values())
        raise SplitError(
            f"valid_size={asked['valid']:g}, test_size={asked['test']:g} and "
            f"train_size={asked['train']:g} ask for {counts} = {sum(sizes.values())} rows, "
            f"but only {total} rows remain after filtering. Ask for fewer rows or fractions "
            f"(e.g. valid_size=0.1 test_size=0.1 train_size=0.6), or {more_rows(config)}; "
            "sizes are never shrunk silently."
        )
    if sizes["valid"] < 1 or sizes["train"] < 1 or (test_rows is None and sizes["test"] < 1):
        raise SplitError(f"valid, test and train need at least one row each; sizes: {sizes}")
    rng = np.random.default_rng(config.split_seed)
    labels = rows["category"].to_numpy()
    classes, counts = np.unique(labels, return_counts=True)
    left = counts.copy()
    shares = {}
    for name, n in sizes.items():
        shares[name] = _allocate(left, n)
        left = left - shares[name]
    for name in ("valid", "train"):
        missing = [str(c) for c, n in zip(classes, shares[name], strict=True) if n == 0]
        if missing:
            log.warning(
                "%d classes too small to reach the %s split (%s): they cannot be %s; add "
                "rows or drop them", len(missing), name, ", ".join(missing[:10]),
                "scored" if name == "valid" else "learned",
            )  # fmt: skip
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (*sizes, "unlabeled")}
    for i, cls in enumerate(classes):
        members = rng.permutation(np.flatnonzero(labels == cls))
        for name in sizes:
            parts[name].append(members[: shares[name][i]])
            members = members[shares[name][i] :]
        parts["unlabeled"].append(members)
    frames = {
        name: rows.iloc[rng.permutation(np.concatenate(idx))].reset_index(drop=True)
        for name, idx in parts.items()
    }
    if test_rows is not None:
        frames["test"] = test_rows.reset_index(drop=True)
    return frames
