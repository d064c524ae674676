"""A signal after a search's end was published leaves it complete; one before, PARTIAL."""

from __future__ import annotations

import signal

import pytest

from data_prep.interrupt import Interrupted
from search.config import SearchConfig
from search.experiment import CONFIG_FILE, PARTIAL_FILE, mark_partial
from search.publish import PUBLISHED, staged
from search.run import stopped


@pytest.fixture
def experiment(tmp_path):
    """An experiment's directory in its final phase: settings saved, marked PARTIAL."""
    config = SearchConfig(storage_path=str(tmp_path), name="exp")
    config.experiment_path.mkdir()
    (config.experiment_path / CONFIG_FILE).write_text("{}")
    mark_partial(config.location)
    PUBLISHED.clear()
    yield config
    PUBLISHED.clear()


def test_a_signal_after_the_end_is_published_leaves_it_complete(experiment, capsys):
    """SIGTERM while the result is printed or Ray stops (the end already published): the
    exit code says so, and the experiment is not marked PARTIAL nor said to be."""
    with staged(experiment.experiment_path, experiment.location) as out:
        (out / "final.csv").write_text("model\n")
    code = stopped(Interrupted(signal.SIGTERM), experiment)
    assert code == 128 + signal.SIGTERM
    assert not (experiment.experiment_path / PARTIAL_FILE).exists()
    assert (experiment.experiment_path / "final.csv").is_file()
    said = capsys.readouterr().err.strip().splitlines()
    assert said == ["stopped by SIGTERM after the search had ended: its results are complete"]


def test_a_signal_before_the_end_is_published_leaves_it_partial(experiment, capsys):
    code = stopped(Interrupted(signal.SIGINT), experiment)
    assert code == 128 + signal.SIGINT
    assert (experiment.experiment_path / PARTIAL_FILE).is_file()
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("resume: ")
