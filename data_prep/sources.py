"""Bring your own data: a CSV, JSONL or Parquet file with a text and a label column.

    python -m data_prep all source=my_questions.csv text_column=question label_column=topic

The rows take the same split / tokenize / write steps as the Amazon QA rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_prep.config import PrepConfig
from data_prep.parse import ParseError, check_classes

_READERS = {
    ".csv": pd.read_csv,
    ".jsonl": lambda p: pd.read_json(p, lines=True),
    ".parquet": pd.read_parquet,
}


def read_source(config: PrepConfig, source: str = "") -> pd.DataFrame:
    """Rows (question, answer, category) from config.source (or `source`: the test file)."""
    path = Path(source or config.source).expanduser()
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ParseError(f"source={path}: unsupported file type; use one of {sorted(_READERS)}")
    if not path.is_file():
        raise ParseError(f"source={path}: no such file")
    table = reader(path)
    wanted = {"text_column": config.text_column, "label_column": config.label_column}
    if config.answer_column:
        wanted["answer_column"] = config.answer_column
    for option, column in wanted.items():
        if column not in table.columns:
            raise ParseError(
                f"{path}: no column {column!r} ({option}); columns are {list(table.columns)}"
            )
    rows = pd.DataFrame(
        {
            "question": table[config.text_column].astype(str).str.lower(),
            "answer": table[config.answer_column].astype(str).str.lower()
            if config.answer_column
            else "",
            "category": table[config.label_column].astype(str),
        }
    )
    rows = rows[rows["question"].str.strip().str.len() > 0].reset_index(drop=True)
    if not source:
        check_classes(rows, "category", str(path))
    return rows
