"""fuse=N: trials of one shape trained together by one executor, each still a Ray Tune trial
with its own reports, TensorBoard run and best model, and the searcher told of each."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from qamodels.config import TrainConfig
from qamodels.fused import VARYING_PARAMS
from search.config import SearchConfig
from search.fused_trials import FusedExecutor
from search.searcher import SIBLING, OptunaSearcher

TRAIN = TrainConfig(max_train_rows=1200, bucket=False, amp=False)


def results_of(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]


@pytest.mark.e2e
def test_a_fused_search_trains_groups_whose_members_stay_trials(
    local_ray, prepared_sample, tmp_path
):
    from search.run import run_search

    config = SearchConfig(arch="dan,cnn_parallel", num_samples=4, max_epochs=2, grace_period=1,
                          fuse=2, train=TRAIN, storage_path=str(tmp_path), name="fused",
                          embeddings=("random",), pretrain="false", baseline=False,
                          gpus_per_trial="0")  # fmt: skip
    run_search(config, prepared_sample)
    experiment = tmp_path / "fused"
    trials = sorted(p for p in experiment.iterdir() if (p / "result.json").is_file())
    assert len(trials) == 4
    groups: dict[str, list[dict]] = {}
    for trial in trials:
        reports = results_of(trial)
        assert {r["fused"] for r in reports} == {reports[0]["fused"]}
        groups.setdefault(reports[0]["fused"], []).append(reports[0]["config"])
        events = EventAccumulator(str(trial / "tensorboard")).Reload()
        steps = [e.step for e in events.Scalars("valid_accuracy")]
        assert steps == [r["epoch"] for r in reports]  # its own run
        assert (trial / "best_model" / "model.pt").is_file()
    assert sorted(len(members) for members in groups.values()) == [2, 2]
    for first, second in groups.values():
        arch = first["arch"]
        shape = {k: v for k, v in first[arch].items() if k not in VARYING_PARAMS}
        assert second["arch"] == arch
        assert shape == {k: v for k, v in second[arch].items() if k not in VARYING_PARAMS}
        assert first["train"]["lr"] != second["train"]["lr"]  # sampled apart
    searcher = OptunaSearcher.from_dir(str(experiment))
    told = searcher.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,
                                             optuna.trial.TrialState.PRUNED))  # fmt: skip
    assert len(told) == 4
    assert sorted(t.user_attrs.get(SIBLING, -1) for t in told) == [-1, -1, 0, 2]
    assert (experiment / "final.csv").is_file()


def test_a_member_that_leaves_stops_alone(prepared_sample):
    config = SearchConfig(max_epochs=3, fuse=2, train=TRAIN)
    executor = FusedExecutor(prepared_sample, config, gpu=False)
    shape = {"hidden": 64, "dropout": 0.0}
    trials = {"stays": 2e-3, "leaves": 5e-3}
    for trial_id, lr in trials.items():
        executor.join(trial_id, {"arch": "dan", "dan": shape, "train": {"lr": lr}})
    seen: dict[str, list[dict]] = {trial_id: [] for trial_id in trials}

    def follow(trial_id: str, epochs: int) -> None:
        for epoch in range(epochs):
            event = executor.next(trial_id, epoch)
            seen[trial_id].append(event)
            if "end" in event:
                return
        executor.leave(trial_id)

    threads = [threading.Thread(target=follow, args=("stays", 4)),
               threading.Thread(target=follow, args=("leaves", 1))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    stays = [e for e in seen["stays"] if "metrics" in e]
    assert [e["metrics"]["epoch"] for e in stays] == [1, 2, 3] and stays[-1]["last"]
    assert len(seen["leaves"]) == 1 and seen["leaves"][0]["metrics"]["epoch"] == 1
    assert {e["group"] for e in stays + seen["leaves"]} == {"group 1 of 2"}
    assert executor.next("leaves", 1) == {"end": "done"}  # trained no more epochs


def test_a_config_that_cannot_be_fused_trains_alone_and_stops_when_it_leaves(prepared_sample):
    config = SearchConfig(max_epochs=3, fuse=2, train=TRAIN)
    executor = FusedExecutor(prepared_sample, config, gpu=False)
    unfreezing = {"gradual_unfreeze": True}  # changes what trains mid-run: not fusable
    executor.join("alone", {"arch": "dan", "dan": {"hidden": 64}, "train": unfreezing})
    first = executor.next("alone", 0)
    assert first["metrics"]["epoch"] == 1 and first["group"] == "group 1 of 1"
    assert first["state"] is not None  # its first epoch is its best so far: the model
    executor.leave("alone")
    assert executor.next("alone", 1) == {"end": "done"}  # stopped, not trained on
