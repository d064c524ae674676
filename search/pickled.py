"""Save and restore for our Ray Tune searcher, so a resumed search goes on
where it stopped: the whole object pickled, as Ray's own OptunaSearch and ASHA do."""

from __future__ import annotations

import pickle


class PickledState:
    """Mixed in before a Ray Tune Searcher or TrialScheduler base class."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))  # noqa: S301 - the experiment's own file
