"""Bring your own data: a CSV, JSONL or Parquet file with a text and a label column.

    python -m data_prep all source=my_questions.csv text_column=question label_column=topic

The rows take the same split / tokenize / write steps as the Amazon QA rows.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from data_prep.config import PrepConfig
from data_prep.parse import ParseError, check_classes

log = logging.getLogger(__name__)


def _read_jsonl(path: Path, encoding: str) -> pd.DataFrame:
    """One JSON object a line; a broken line is an error naming its number."""
    records = []
    with open(path, encoding=encoding) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ParseError(
                    f"{path}:{number}: not a JSON object ({err.msg}); fix or remove the line"
                ) from None
    return pd.DataFrame.from_records(records)


_READERS = {
    ".csv": lambda path, encoding: pd.read_csv(path, encoding=encoding),
    ".jsonl": _read_jsonl,
    ".parquet": lambda path, encoding: pd.read_parquet(path),
}


def read_table(path: Path, encoding: str) -> pd.DataFrame:
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ParseError(f"{path}: unsupported file type; use one of {sorted(_READERS)}")
    if not path.is_file():
        raise ParseError(f"{path}: no such file")
    try:
        return reader(path, encoding)
    except UnicodeDecodeError as err:
        raise ParseError(
            f"{path}: not {encoding} text (byte {err.start}); set encoding= (e.g. encoding=latin-1)"
        ) from None
    except pd.errors.EmptyDataError:
        raise ParseError(f"{path}: empty file (no header, no rows)") from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        reason = str(err).strip().splitlines()[0][:200]  # pandas' messages run over lines
        raise ParseError(f"{path}: cannot be read as {path.suffix[1:]}: {reason}") from None


def _text(column: pd.Series) -> pd.Series:
    return column.where(column.notna(), "").astype(str).str.lower()


def read_source(config: PrepConfig, source: str = "") -> pd.DataFrame:
    """Rows (question, answer, category) from config.source (or `source`: the test file).
    Rows without a label or without text are dropped and counted in a warning."""
    path = Path(source or config.source).expanduser()
    table = read_table(path, config.encoding)
    wanted = {"text_column": config.text_column, "label_column": config.label_column}
    if config.answer_column:
        wanted["answer_column"] = config.answer_column
    for option, column in wanted.items():
        if column not in table.columns:
            tabs = len(table.columns) == 1 and "\t" in str(table.columns[0])
            hint = "; it looks tab-separated: save it with commas (a .csv)" if tabs else ""
            raise ParseError(
                f"{path}: no column {column!r} ({option}); columns are "
                f"{list(table.columns)[:20]}{hint}"
            )
    text = table[config.text_column]
    if pd.api.types.is_numeric_dtype(text) or pd.api.types.is_bool_dtype(text):
        log.warning(
            "%s: column %r (text_column) holds %s values, not text: each becomes a one-word "
            "question; if the questions are in another column, name it with text_column=",
            path, config.text_column, text.dtype,
        )  # fmt: skip
    labels = table[config.label_column]
    rows = pd.DataFrame(
        {
            "question": _text(table[config.text_column]),
            "answer": _text(table[config.answer_column]) if config.answer_column else "",
            "category": labels.where(labels.notna(), "").astype(str).str.strip(),
        }
    )
    no_label = rows["category"] == ""
    no_text = rows["question"].str.strip() == ""
    if no_label.any() or no_text.any():
        log.warning(
            "%s: dropped %d rows with an empty %s and %d with an empty %s",
            path, int(no_label.sum()), config.label_column, int((no_text & ~no_label).sum()),
            config.text_column,
        )  # fmt: skip
    rows = rows[~no_label & ~no_text].reset_index(drop=True)
    if not source:
        check_classes(rows, "category", str(path))
    return rows
