"""data_prep.atomic: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import pytest

from data_prep.atomic import atomic_path, write_text


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_text(tmp_path / "model.pt", "old")
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as partial:
        partial.write_text("half of the new")
        raise KeyboardInterrupt  # Ctrl-C in the middle of an export
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_finished_write_replaces_the_file(tmp_path):
    target = write_text(tmp_path / "sub" / "metrics.json", "old")
    with atomic_path(target) as partial:
        partial.write_text("new")
        assert target.read_text() == "old"  # not before the block ends
    assert target.read_text() == "new" and len(list(target.parent.iterdir())) == 1
