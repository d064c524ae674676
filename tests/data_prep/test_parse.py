"""Parsing the real files and generated fixtures in the original formats."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pandas as pd
import pytest

from data_prep.config import PrepConfig
from data_prep.parse import ParseError, parse
from data_prep.sources import read_source
from tests.conftest import sample_config

SINGLE = "{'questionType': 'yes/no', 'asin': 'A%d', 'question': u'%s', 'answer': u'%s'}\n"


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    return path


def single_file(raw: Path, category: str, n: int, start: int = 0) -> Path:
    lines = "".join(
        SINGLE % (i, f"question number {i} about {category}?", f"answer {i} yes")
        for i in range(start, start + n)
    )
    return write_gz(raw / f"single_qa_{category}.json.gz", lines)


def test_real_files_all_categories(shared_data, tmp_path):
    rows, report = parse(sample_config(tmp_path))
    counts = rows["category"].value_counts()
    assert set(counts.index) == {"appliances", "video games", "cell phones and accessories"}
    # The sample's README: roughly 7.8k appliances, 9.6k video games, 8.4k phones.
    assert 7_000 < counts["appliances"] < 8_500
    assert 9_000 < counts["video games"] < 10_200
    assert 7_800 < counts["cell phones and accessories"] < 9_000
    assert rows["question"].is_unique
    for column in ("question", "answer"):
        assert rows[column].str.len().between(5, 512).all()
        assert (rows[column] == rows[column].str.lower()).all()
    assert report.malformed == []
    # Every (question, answer) pair of the multiple file, counted independently of the parser.
    with gzip.open(shared_data / "multiple_QA_Video_Games.json.gz", "rt") as f:
        expected_pairs = sum(len(re.findall(r"'answerText':", line)) for line in f)
    assert report.pairs["multiple_QA_Video_Games.json.gz"] == expected_pairs > 1183
    assert report.files["single_qa_Appliances.json.gz"] == 9_011


def test_malformed_line_reported_with_file_and_line(tmp_path):
    single_file(tmp_path, "Baby", 20)
    good = "".join(SINGLE % (i, f"is this item {i} good?", "yes it is") for i in range(20))
    write_gz(tmp_path / "single_qa_Beauty.json.gz", good + "{'question': broken\n" + good)
    config = PrepConfig(raw_dir=str(tmp_path), categories=("all",))
    rows, report = parse(config)
    assert [(f, n) for f, n, _ in report.malformed] == [("single_qa_Beauty.json.gz", 21)]
    assert set(rows["category"]) == {"baby", "beauty"}
    with pytest.raises(ParseError, match=r"single_qa_Beauty.json.gz:21: malformed"):
        parse(PrepConfig(raw_dir=str(tmp_path), categories=("all",), strict=True))


def test_literal_eval_never_runs_code(tmp_path):
    single_file(tmp_path, "Baby", 20)
    marker = tmp_path / "pwned"
    evil = f"__import__('pathlib').Path('{marker}').touch()\n"
    write_gz(tmp_path / "single_qa_Beauty.json.gz", evil + SINGLE % (1, "hello there?", "yes ok"))
    parse(PrepConfig(raw_dir=str(tmp_path), categories=("all",), min_chars=1))
    assert not marker.exists()


def test_truncated_gzip_names_the_file(tmp_path):
    single_file(tmp_path, "Baby", 50)
    data = single_file(tmp_path, "Beauty", 500).read_bytes()
    (tmp_path / "single_qa_Beauty.json.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ParseError, match=r"single_qa_Beauty.json.gz: damaged or truncated"):
        parse(PrepConfig(raw_dir=str(tmp_path), categories=("all",)))


@pytest.mark.parametrize("content", ["gzip of nothing", "zero bytes"])
def test_empty_file_beside_good_ones_is_an_error_naming_it(tmp_path, content):
    """An empty category file must not make its category silently disappear."""
    single_file(tmp_path, "Baby", 20)
    single_file(tmp_path, "Beauty", 20)
    empty = tmp_path / "single_qa_Automotive.json.gz"
    write_gz(empty, "") if content == "gzip of nothing" else empty.write_bytes(b"")
    with pytest.raises(ParseError, match=r"single_qa_Automotive.json.gz: empty file"):
        parse(PrepConfig(raw_dir=str(tmp_path), categories=("all",)))


def test_file_of_malformed_lines_is_named(tmp_path):
    single_file(tmp_path, "Baby", 20)
    write_gz(tmp_path / "single_qa_Beauty.json.gz", "not a dict\n{'broken': \n")
    with pytest.raises(ParseError, match=r"single_qa_Beauty.json.gz: none of its 2 lines"):
        parse(PrepConfig(raw_dir=str(tmp_path), categories=("all",)))


def test_unknown_category_lists_what_was_found(tmp_path):
    single_file(tmp_path, "Baby", 20)
    single_file(tmp_path, "Beauty", 20)
    with pytest.raises(ParseError, match="not found among the files: toys.*found: baby, beauty"):
        parse(PrepConfig(raw_dir=str(tmp_path), categories=("baby", "toys")))


def test_single_class_result_is_an_error(tmp_path):
    single_file(tmp_path, "Baby", 20)
    write_gz(tmp_path / "single_qa_Beauty.json.gz", SINGLE % (1, "hi?", "no"))  # filtered out
    with pytest.raises(ParseError, match=r"1 classes \(found: baby \(20\)\)"):
        parse(PrepConfig(raw_dir=str(tmp_path), categories=("all",)))


def test_default_categories_are_the_original_eight(tmp_path):
    single_file(tmp_path, "Appliances", 20)
    with pytest.raises(ParseError, match="automotive, baby, beauty"):
        parse(PrepConfig(raw_dir=str(tmp_path)))


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_own_data_source(tmp_path, suffix):
    table = pd.DataFrame(
        {"q": [f"Question {i}?" for i in range(30)], "topic": ["a", "b", "c"] * 10}
    )
    path = tmp_path / f"own{suffix}"
    {
        ".csv": lambda: table.to_csv(path, index=False),
        ".parquet": lambda: table.to_parquet(path),
        ".jsonl": lambda: table.to_json(path, orient="records", lines=True),
    }[suffix]()
    rows = read_source(PrepConfig(source=str(path), text_column="q", label_column="topic"))
    assert rows["question"].tolist() == table["q"].str.lower().tolist()
    assert rows["category"].tolist() == table["topic"].tolist()
    with pytest.raises(ParseError, match=r"no column 'text' \(text_column\)"):
        read_source(PrepConfig(source=str(path), label_column="topic"))
