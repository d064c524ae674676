"""The search's best single model: the simplest of the models valid cannot tell apart.

Breiman's one-standard-error rule (CART, 1984), at the bar the ensemble uses for "close"
(search/ensemble.py CLOSE: 2 standard deviations of the paired difference). The model with
the most valid rows right is the maximum of dozens of noisy scores, and a family that many
trials explored gets the largest share of valid's luck: on AG News (760 valid rows) the
family the search explored most (23 to 25 of 40 trials: BiLSTMs, the residual CNN on one
split) led the DAN by 0.4 to 2.4 valid points and trailed it by 0.7 to 1.3 test points.
Among each family's best trial (the leaderboard), those close to the best on valid are
candidates; the first family of SIMPLEST_FIRST among them is the best single model.

Measured on the suite's finished searches (bench/choice_bench.py; BENCHMARKS.md, "Choosing
the best single model"): on the last round's seven, the test lift over the baseline went from
-0.39 / -0.26 / -1.18 to +0.92 / -0.26 / +0.13 on AG News' three splits, the same model on
the sample's three and CLINC150; with test halved 300 times (one half choosing, the other
scoring) the mean lift from +0.27 to +0.63 points, the worst set from -0.36 to +0.12.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qamodels.registry import SIMPLEST_FIRST
from search.ensemble import Candidate, best_of, close_to_best


@dataclass(frozen=True)
class Choice:
    """The chosen model, the best on valid, and how many were close to it."""

    chosen: Candidate
    best_on_valid: Candidate
    close: int

    def describe(self) -> str:
        """Why this model ("" when it is simply the best on valid)."""
        if self.chosen is self.best_on_valid:
            return ""
        return (f"the simplest family of the {self.close} architectures' best models that "
                f"valid cannot tell from the best ({self.best_on_valid.arch}, trial "
                f"{self.best_on_valid.name})")  # fmt: skip


def simplest_close(best_per_arch: list[Candidate], labels: np.ndarray) -> Choice:
    """Among each architecture's best trial, the one of the simplest family close to the
    best on valid (the best itself when no other is close)."""
    stack = np.stack([c.probabilities["valid"] for c in best_per_arch])
    close = [c for c, near in zip(best_per_arch, close_to_best(stack, labels), strict=True)
             if near]  # fmt: skip
    rank = {arch: i for i, arch in enumerate(SIMPLEST_FIRST)}
    chosen = min(close, key=lambda c: rank.get(c.arch, len(rank)))
    return Choice(chosen, best_per_arch[best_of(stack, labels)], len(close))
