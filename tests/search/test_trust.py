"""A resume loads only what the user running it could have written alone."""

from __future__ import annotations

import os
import pickle

import pytest

from data_prep import PrepConfig
from search.config import SearchConfig, SearchConfigError
from search.experiment import open_experiment
from search.trust import check_trusted
from tests.conftest import PlantedPickle


@pytest.fixture
def experiment(tmp_path):
    config = SearchConfig(storage_path=str(tmp_path), name="exp")
    with open_experiment(config, PrepConfig()):
        pass
    path = tmp_path / "exp"
    (path / "dan_1a2b3c4d_00000").mkdir()
    with open(path / "searcher-state-2026-11-29.pkl", "wb") as file:
        pickle.dump(PlantedPickle(tmp_path / "payload_ran"), file)
    (path / "tuner.pkl").write_bytes((path / "searcher-state-2026-11-29.pkl").read_bytes())
    for entry in [path, *path.rglob("*")]:
        entry.chmod(0o755 if entry.is_dir() else 0o644)
    return config, path


def resume_of(config: SearchConfig):
    from dataclasses import replace

    return open_experiment(replace(config, resume="true"), PrepConfig())


def test_an_experiment_of_ones_own_is_trusted(experiment):
    _config, path = experiment
    check_trusted(path)


@pytest.mark.parametrize(
    ("entry", "mode", "message"),
    [
        ("searcher-state-2026-11-29.pkl", 0o646, "is writable by every user"),
        ("dan_1a2b3c4d_00000", 0o777, "is writable by every user"),
        ("", 0o757, "exp is writable by every user"),
    ],
)
def test_state_others_can_write_is_refused_before_it_is_read(experiment, entry, mode, message):
    config, path = experiment
    (path / entry).chmod(mode)
    with pytest.raises(SearchConfigError, match=message) as err:
        with resume_of(config):
            pass
    assert len(str(err.value).splitlines()) == 1 and "chmod -R go-w" in str(err.value)
    assert not (path.parent / "payload_ran").exists()


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_state_of_another_user_is_refused(experiment):
    config, path = experiment
    os.chown(path / "tuner.pkl", 4321, -1)
    with pytest.raises(SearchConfigError, match="belongs to uid 4321, not to you"):
        with resume_of(config):
            pass
    assert not (path.parent / "payload_ran").exists()


def test_a_link_in_the_experiment_is_refused(experiment, tmp_path):
    config, path = experiment
    (tmp_path / "elsewhere.pkl").write_bytes(b"")
    (path / "experiment_state-2026.json").symlink_to(tmp_path / "elsewhere.pkl")
    with pytest.raises(SearchConfigError, match="is a symbolic link"):
        with resume_of(config):
            pass
