"""Markdown tables of results: the leaderboard, the report, TensorBoard's text tab, benches.

Our own few lines, not pandas' `to_markdown`: that needs the `tabulate` package, and here
whole-number columns (epochs, counts) print whole and scores with four decimals.
"""

from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame) -> str:
    # Epochs and counts in a column that also holds NaN arrive as floats: print them whole.
    whole = [
        pd.api.types.is_float_dtype(frame[c]) and frame[c].dropna().map(float.is_integer).all()
        and (frame[c].dropna() > 1).any()
        for c in frame.columns
    ]  # fmt: skip

    def cell(value, integer: bool) -> str:
        if isinstance(value, float):
            if integer and value.is_integer():
                return f"{value:.0f}"
            return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |",
             "|" + " --- |" * len(frame.columns)]  # fmt: skip
    lines += ["| " + " | ".join(cell(v, w) for v, w in zip(row, whole, strict=True)) + " |"
              for row in frame.itertuples(False)]  # fmt: skip
    return "\n".join(lines)
