"""Your own files and damaged prepared data: one-line errors naming the file, or it works."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from data_prep import PrepConfig, load, prepare, prepared_data
from data_prep.errors import DataError
from data_prep.parse import ParseError
from data_prep.sources import read_source
from tests.conftest import synthetic_config, synthetic_questions


def test_latin1_csv_needs_its_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    frame = synthetic_questions()
    frame.loc[0, "text"] = "café crème for my espresso machine?"
    frame.to_csv(path, index=False, encoding="latin-1")
    with pytest.raises(ParseError, match=r"latin.csv: not utf-8 text .*encoding=latin-1"):
        read_source(PrepConfig(source=str(path)))
    rows = read_source(PrepConfig(source=str(path), encoding="latin-1"))
    assert rows["question"][0] == "café crème for my espresso machine?"


def test_broken_jsonl_line_is_named(tmp_path):
    path = tmp_path / "q.jsonl"
    lines = [f'{{"text": "q {i}", "label": "{"ab"[i % 2]}"}}' for i in range(20)]
    lines[6] = '{"text": "cut short'
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ParseError, match=r"q.jsonl:7: not a JSON object"):
        read_source(PrepConfig(source=str(path)))


def test_zero_byte_csv_is_named(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(ParseError, match=r"empty.csv: empty file"):
        read_source(PrepConfig(source=str(path)))


def test_rows_without_label_or_text_are_dropped_and_counted(tmp_path, caplog):
    frame = synthetic_questions()
    frame.loc[[1, 2, 3], "label"] = np.nan
    frame.loc[4, "label"] = " "
    frame.loc[[5, 6], "text"] = ["", np.nan]
    path = tmp_path / "holes.csv"
    frame.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING):
        rows = read_source(PrepConfig(source=str(path)))
    assert len(rows) == len(frame) - 6
    assert "dropped 4 rows with an empty label and 2 with an empty text" in caplog.text


def test_own_file_defaults_to_fractions_and_every_label_trains(tmp_path):
    path = tmp_path / "mine.csv"
    synthetic_questions(200).to_csv(path, index=False)
    data = prepared_data(PrepConfig(source=str(path), data_dir=str(tmp_path)))
    assert (len(data.valid), len(data.test), len(data.train)) == (20, 20, 160)
    assert len(data.unlabeled) == 0
    asked = prepared_data(PrepConfig(source=str(path), data_dir=str(tmp_path), train_size=0.5))
    assert (len(asked.train), len(asked.unlabeled)) == (100, 60)  # less, when asked


def test_raw_dir_typo_is_an_error_not_a_download(tmp_path):
    missing = tmp_path / "no_such_dir"
    with pytest.raises(DataError, match=r"raw_dir=.*no_such_dir: no such directory"):
        prepared_data(PrepConfig(raw_dir=str(missing), data_dir=str(tmp_path)))
    assert not missing.exists()


@pytest.mark.parametrize("damage", ["labels.json", "truncated train.arrow"])
def test_damaged_prepared_directory_is_rebuilt(tmp_path, damage):
    config = synthetic_config(tmp_path)
    target = prepare(config)
    rows = len(load(target).train)
    if damage.startswith("truncated"):
        arrow = target / "train.arrow"
        arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    else:
        (target / damage).unlink()
    assert prepare(config) == target
    assert len(load(target).train) == rows and (target / "vocab.txt").is_file()


def test_strict_is_part_of_the_cache_key(tmp_path):
    loose, strict = synthetic_config(tmp_path), synthetic_config(tmp_path, strict=True)
    assert prepare(loose) != prepare(strict)


def test_a_column_of_numbers_is_prepared_with_a_warning(tmp_path, caplog):
    """Ids instead of text: valid is almost all UNK, which a user should hear about."""
    numbers = synthetic_questions(200).assign(text=[str(10**9 + 7919 * i) for i in range(200)])
    numbers.to_csv(tmp_path / "ids.csv", index=False)
    synthetic_questions(200).to_csv(tmp_path / "words.csv", index=False)
    for name, warned in (("ids.csv", True), ("words.csv", False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            prepare(PrepConfig(source=str(tmp_path / name), data_dir=str(tmp_path / name[:3])))
        assert ("may hold ids or numbers rather than text" in caplog.text) == warned, name


def test_a_parquet_column_of_numbers_is_named_in_a_warning(tmp_path, caplog):
    """Read as numbers, each became a one-token question without a word."""
    frame = synthetic_questions(60).assign(text=np.arange(60) % 7 * 1.5)
    frame.to_parquet(tmp_path / "numbers.parquet")
    with caplog.at_level(logging.WARNING):
        read_source(PrepConfig(source=str(tmp_path / "numbers.parquet")))
    assert "column 'text' (text_column) holds float64 values, not text" in caplog.text


def test_a_tab_separated_file_given_as_csv_is_one_line(tmp_path):
    synthetic_questions(30).to_csv(tmp_path / "tabs.csv", index=False, sep="\t")
    with pytest.raises(ParseError, match="it looks tab-separated: save it with commas") as err:
        read_source(PrepConfig(source=str(tmp_path / "tabs.csv")))
    assert len(str(err.value).splitlines()) == 1


def test_held_out_rows_that_repeat_training_questions_are_warned(tmp_path, caplog):
    """A test_source= that repeated the training rows once scored 0.9967 without a word."""
    synthetic_questions(300).to_csv(tmp_path / "train.csv", index=False)
    synthetic_questions(300)[:90].to_csv(tmp_path / "test.csv", index=False)
    with caplog.at_level(logging.WARNING):
        prepare(PrepConfig(source=str(tmp_path / "train.csv"), data_dir=str(tmp_path),
                           test_source=str(tmp_path / "test.csv")))  # fmt: skip
    assert (
        "of 90 test rows (" in caplog.text and "repeat a training question exactly" in caplog.text
    )
