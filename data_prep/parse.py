"""Step 2: parse the original files into (question, answer, category) rows.

    python -m data_prep parse categories=all raw_dir=../shared/data/amazon_qa

Each line of an original file is one Python dict literal (with `u'...'` strings), read with
`ast.literal_eval`, never `eval`. The rules of the original pipeline: category from the file
name, text lowercased, question and answer 5..512 characters, one row per (question, answer)
pair of the multiple-answer files, then duplicate questions dropped (first kept).
"""

from __future__ import annotations

import ast
import gzip
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from data_prep.catalog import category_of, kind_of, normalize_category
from data_prep.config import PrepConfig
from data_prep.errors import DataError

log = logging.getLogger(__name__)


class ParseError(DataError):
    pass


@dataclass
class ParseReport:
    files: dict[str, int] = field(default_factory=dict)  # file -> lines read
    pairs: dict[str, int] = field(default_factory=dict)  # file -> (question, answer) pairs
    malformed: list[tuple[str, int, str]] = field(default_factory=list)  # file, line, why

    def summary(self) -> str:
        lines = [f"{name}: {n} lines, {self.pairs[name]} pairs" for name, n in self.files.items()]
        if self.malformed:
            lines.append(f"{len(self.malformed)} malformed lines skipped, first ones:")
            lines += [f"  {f}:{n}: {why}" for f, n, why in self.malformed[:10]]
        return "\n".join(lines)


def _pairs(record: dict, kind: str) -> Iterator[tuple[str, str]]:
    if kind == "single":
        yield record["question"], record["answer"]
        return
    for question in record["questions"]:
        for answer in question["answers"]:
            yield question["questionText"], answer["answerText"]


def read_file(path: Path, report: ParseReport, strict: bool) -> list[tuple[str, str]]:
    """All (question, answer) pairs of one file; malformed lines are reported, not fatal."""
    kind, name = kind_of(path.name), path.name
    pairs: list[tuple[str, str]] = []
    line_no = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line_no, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = ast.literal_eval(line)
                    pairs.extend((str(q), str(a)) for q, a in _pairs(record, kind))
                except (ValueError, SyntaxError, KeyError, TypeError, MemoryError) as err:
                    why = f"{type(err).__name__}: {err}"[:200]
                    if strict:
                        raise ParseError(
                            f"{path}:{line_no}: malformed record ({why}); fix or remove the "
                            "line, or run with strict=false to skip such lines"
                        ) from err
                    report.malformed.append((name, line_no, why))
    except (EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError) as err:
        raise ParseError(
            f"{path}: damaged or truncated gzip after line {line_no} ({err}); "
            "download it again with `python -m data_prep download`"
        ) from err
    except OSError as err:
        raise ParseError(f"{path}: cannot be read ({err.strerror or err})") from err
    if line_no == 0:
        raise ParseError(
            f"{path}: empty file (no lines); download it again with `python -m data_prep "
            "download`, or remove it to leave its category out"
        )
    if not pairs:
        raise ParseError(
            f"{path}: none of its {line_no} lines is a valid record (first: line "
            f"{report.malformed[-1][1] if report.malformed else '?'}: "
            f"{report.malformed[-1][2] if report.malformed else ''}); is it an original file?"
        )
    report.files[name] = line_no
    report.pairs[name] = len(pairs)
    return pairs


def find_files(raw_dir: Path) -> list[Path]:
    files = sorted(raw_dir.glob("single_*.json.gz")) + sorted(raw_dir.glob("multiple_*.json.gz"))
    if not files:
        raise ParseError(
            f"no original files (single_*.json.gz, multiple_*.json.gz) in {raw_dir}; "
            "run `python -m data_prep download` or pass raw_dir=/path/to/files"
        )
    return files


def select_files(files: list[Path], categories: tuple[str, ...]) -> list[Path]:
    present = sorted({category_of(p.name) for p in files})
    if [c.lower() for c in categories] == ["all"]:
        return files
    wanted = {normalize_category(c) for c in categories}
    unknown = sorted(wanted - set(present))
    if unknown:
        raise ParseError(
            f"categories not found among the files: {', '.join(unknown)}; "
            f"found: {', '.join(present)} (use categories=all or a subset of those)"
        )
    return [p for p in files if category_of(p.name) in wanted]


def parse(config: PrepConfig) -> tuple[pd.DataFrame, ParseReport]:
    """Rows (question, answer, category) of the selected categories, filtered as the original."""
    files = select_files(find_files(config.raw_path), config.categories)
    report = ParseReport()
    frames = []
    for path in tqdm(files, desc="parse", unit="file", disable=None):
        pairs = read_file(path, report, config.strict)
        frame = pd.DataFrame(pairs, columns=["question", "answer"], dtype=object)
        frame["category"] = category_of(path.name)
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    rows["question"] = rows["question"].str.lower()
    rows["answer"] = rows["answer"].str.lower()
    keep = rows["question"].str.len().between(config.min_chars, config.max_chars) & rows[
        "answer"
    ].str.len().between(config.min_chars, config.max_chars)
    rows = rows[keep].drop_duplicates("question").reset_index(drop=True)
    if report.malformed:  # before the class check, which may stop here
        log.warning(report.summary())
    check_classes(rows, "category", f"{config.raw_path} ({len(files)} files)")
    return rows, report


def check_classes(rows: pd.DataFrame, column: str, where: str, min_rows: int = 10) -> None:
    counts = rows[column].value_counts()
    found = ", ".join(f"{c} ({n})" for c, n in counts.items()) or "none"
    if len(counts) < 2 or len(rows) < min_rows:
        raise ParseError(
            f"{where}: after filtering there are {len(rows)} rows in {len(counts)} classes "
            f"(found: {found}); a classifier needs at least 2 classes and {min_rows} rows: "
            "add categories (categories=all) or files"
        )
