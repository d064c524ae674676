"""Fused trials in the search (fuse=N): each Ray Tune trial stays a trial of its own (its
config from the searcher, its reports, ASHA's decisions, its TensorBoard run and best model),
but its training runs in one actor that holds the device and trains the trials of one shape
together (qamodels/fused.py).

    python -m search.run arch=dan,cnn_parallel fuse=8 gpus_per_trial=1   # groups of 8

The searcher asks for N-1 siblings after each fusable trial, its shape fixed and the rest
sampled (search/searcher.py). A trial joins the executor (`join`), then reads its epochs one
by one (`next`) and reports each to Ray Tune. The executor trains a group once N members of
one shape have joined, or the first has waited WAIT_S; before each epoch it waits until every
member asked for it or left, so a trial ASHA stopped (the driver's `LeaveOnEnd` tells the
executor) is dropped from the group and the others go on. A config that cannot be fused
(qamodels.fused.NotFusable) trains alone in the executor.

Not resumable mid-trial: a fused trial's checkpoint holds no training state, so a resumed
search trains its unfinished fused trials again from the start.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field

import ray
from ray import tune
from ray.tune import Callback

from data_prep.atomic import write_text
from data_prep.store import PreparedData
from qamodels import plots
from qamodels.classifier import build_classifier
from qamodels.fused import FusedGroup, NotFusable, group_key
from qamodels.runs import write_run
from qamodels.spaces import decode
from qamodels.trainer import EpochEnd, Trainer, TrainResult
from search.config import SearchConfig
from search.resources import Placement
from search.searcher import FINISHED
from search.tensorboard import TrialWriter
from search.trainable import (
    BEST_MODEL_DIR,
    RESOLVED_CONFIG,
    model_summary,
    train_config,
    trial_output_dir,
)

EXECUTOR = "qatune-fused-trials"  # the named actor the trials look up
WAIT_S = 10.0  # how long a group waits for its members before it starts with fewer
TRIAL_CPU = 0.01  # what a fused trial reserves: it only reports what the executor trains
LOST_S = 300.0  # a member that neither asks for its next epoch nor leaves is dropped then
ALONE = "alone"  # the group key of a config that cannot be fused: a group of its own


@dataclass
class Pending:
    trial_id: str
    config: object  # its TrainConfig
    params: dict
    joined: float = field(default_factory=time.monotonic)
    alone: bool = False  # a config that cannot be fused (NotFusable): trained by Trainer


class FusedExecutor:
    """The actor that trains the trials (`ray.remote(FusedExecutor)` in start_executor)."""

    def __init__(self, data: PreparedData, search_config: SearchConfig, gpu: bool):
        self.data, self.search_config, self.gpu = data, search_config, gpu
        self.members = search_config.fuse
        self.lock = threading.Condition()
        self.pending: dict[tuple, list[Pending]] = {}
        self.events: dict[str, list[dict]] = {}  # per trial: its epochs, then an end marker
        self.asked: dict[str, int] = {}  # per trial: the epoch it waits for
        self.left: set[str] = set()
        self.groups = 0
        threading.Thread(target=self._run, daemon=True).start()

    def join(self, trial_id: str, trial_config: dict) -> None:
        """A trial's sampled config, to be trained in the next group of its shape."""
        arch, params, overrides = decode(trial_config)
        config = train_config(self.search_config, arch, overrides, self.gpu)
        try:
            key = group_key(config, params)
        except NotFusable:
            key = (ALONE, trial_id)
        with self.lock:
            self.events[trial_id] = []
            pending = Pending(trial_id, config, params, alone=key[0] == ALONE)
            self.pending.setdefault(key, []).append(pending)
            self.lock.notify_all()

    def next(self, trial_id: str, epoch: int) -> dict:
        """The trial's epoch `epoch` (from 0) once trained: {"metrics", "improved", "last",
        "group", ...}, or {"end": why} when it trains no more."""
        with self.lock:
            self.asked[trial_id] = epoch
            self.lock.notify_all()
            while True:
                events = self.events.get(trial_id, [])
                if epoch and len(events) >= epoch:  # the trial has written that one's model
                    events[epoch - 1]["state"] = None
                if len(events) > epoch:
                    return events[epoch]
                if events and "end" in events[-1]:
                    return events[-1]
                self.lock.wait()

    def leave(self, trial_id: str) -> None:
        with self.lock:
            self.left.add(trial_id)
            self.lock.notify_all()

    def _ready_group(self) -> list[Pending] | None:
        """A group to train now: N members of one shape, or those the first waited for."""
        now = time.monotonic()
        for key, waiting in list(self.pending.items()):
            waiting[:] = [p for p in waiting if p.trial_id not in self.left]
            if len(waiting) >= self.members or (waiting and now - waiting[0].joined > WAIT_S):
                group, self.pending[key] = waiting[: self.members], waiting[self.members :]
                return group
        return None

    def _run(self) -> None:
        while True:
            with self.lock:
                group = self._ready_group()
                while group is None:
                    self.lock.wait(timeout=1.0)
                    group = self._ready_group()
                self.groups += 1
            self._train(group, f"group {self.groups} of {len(group)}")

    def _train(self, group: list[Pending], name: str) -> None:
        ids = [p.trial_id for p in group]
        try:
            if group[0].alone:
                self._train_alone(group[0], name)
            else:
                self._train_fused(group, ids, name)
        except Exception as err:  # noqa: BLE001  (each member's trial raises it as its failure)
            self._end(ids, f"error: {type(err).__name__}: {err}")
            return
        self._end(ids, "done")

    def _train_fused(self, group: list[Pending], ids: list[str], name: str) -> None:
        fused = FusedGroup([p.config for p in group], self.data, [p.params for p in group])
        size = sum(t[0].numel() for t in fused.params.values())  # one member's parameters

        def before_epoch(epoch: int) -> None:
            for index in self._wait_for(ids, epoch, fused.live):
                fused.stop(index, "stopped by the search's scheduler")

        def on_epoch(index: int, end: EpochEnd) -> None:
            member = fused.members[index]
            state = None
            if end.improved:  # the trial writes its best model from these weights
                state = {k: v.cpu() for k, v in member.best_state.items()}
            self._record(ids[index], end, name, member.params, size, state,
                         member.best_confusion, fused.iteration_loss[index],
                         member.history)  # fmt: skip

        fused.fit(on_epoch, before_epoch)

    def _train_alone(self, pending: Pending, name: str) -> None:
        trainer = Trainer(pending.config, self.data, pending.params)

        def on_epoch(end: EpochEnd) -> None:
            state = {k: v.cpu() for k, v in trainer.scored_model.state_dict().items()}
            self._record(pending.trial_id, end, name, trainer.params, trainer.parameter_count,
                         state if end.improved else None, trainer.best_confusion,
                         trainer.iteration_loss, trainer.history)  # fmt: skip
            if not end.last and self._wait_for([pending.trial_id], len(trainer.history), [0]):
                raise StopTraining

        try:
            trainer.fit(on_epoch)
        except StopTraining:
            pass

    def _wait_for(self, ids: list[str], epoch: int, live: list[int]) -> list[int]:
        """Before `epoch`: wait until each live member asked for it or left; those that left
        (or were lost), to be stopped."""
        deadline = time.monotonic() + LOST_S
        with self.lock:
            while True:
                waiting = [i for i in live if ids[i] not in self.left
                           and self.asked.get(ids[i], -1) < epoch]  # fmt: skip
                if not waiting or time.monotonic() > deadline:
                    return [i for i in live if ids[i] in self.left or i in waiting]
                self.lock.wait(timeout=1.0)

    def _record(self, trial_id, end, name, params, size, state, confusion, iteration_loss,
                history):  # fmt: skip
        event = {"metrics": end.metrics, "improved": end.improved, "last": end.last,
                 "group": name, "params": params, "parameters": size, "state": state,
                 "device": "cuda" if self.gpu else "cpu",
                 "confusion": None if confusion is None or state is None else confusion,
                 "iteration_loss": list(iteration_loss) if state is not None else None,
                 "history": list(history)}  # fmt: skip
        with self.lock:
            self.events[trial_id].append(event)
            self.lock.notify_all()

    def _end(self, ids: list[str], why: str) -> None:
        with self.lock:
            for trial_id in ids:
                self.events.setdefault(trial_id, []).append({"end": why})
            self.lock.notify_all()


class StopTraining(Exception):
    """A trial trained alone in the executor was stopped by the search's scheduler."""


def start_executor(config: SearchConfig, data: PreparedData, gpu: bool):
    """The executor actor of this search (one device: a whole GPU, or the trials' CPUs)."""
    actor = ray.remote(FusedExecutor).options(
        name=EXECUTOR, max_concurrency=1000, num_cpus=config.cpus_per_trial,
        num_gpus=1 if gpu else 0,
    )  # fmt: skip
    return actor.remote(data, config, gpu)


def fused_placement(config: SearchConfig) -> Placement:
    """Each fused trial's request: a sliver of a CPU (it waits on the executor, which holds
    the device); two groups' worth at once, so the next group forms while one trains."""
    return Placement(0.0, TRIAL_CPU, 2 * config.fuse)


def describe_fused(config: SearchConfig, placement: Placement) -> str:
    """One console line: where fused trials train."""
    device = "one GPU" if placement.on_gpu else f"{config.cpus_per_trial:g} CPU"
    return (f"fused trials: groups of up to {config.fuse} of one shape, trained by one actor "
            f"holding {device}; {2 * config.fuse} trials at once")  # fmt: skip


class LeaveOnEnd(Callback):
    """Tells the executor when Ray Tune ends a trial (ASHA's stop, an error), so its group
    goes on without it. Holds no handle (it is pickled with the experiment for a resume):
    the executor is looked up by name."""

    def _leave(self, trial_id: str) -> None:
        try:
            ray.get_actor(EXECUTOR).leave.remote(trial_id)
        except ValueError:  # no executor (any more): nothing trains the trial
            pass

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._leave(trial.trial_id)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._leave(trial.trial_id)


def run_fused_trial(config: dict, data: PreparedData, search_config: SearchConfig) -> None:
    """A Ray Tune trial whose training runs in the executor: it reports each epoch the
    executor trained for it, and writes its TensorBoard run and best model as run_trial does."""
    arch, params, overrides = decode(config)
    executor = ray.get_actor(EXECUTOR)
    trial_id = tune.get_context().get_trial_id()
    ray.get(executor.join.remote(trial_id, config))
    trial_dir = trial_output_dir(search_config, arch)
    writer = TrialWriter(trial_dir, config)
    write_text(trial_dir / RESOLVED_CONFIG, json.dumps(config))
    writer.start()
    model_config = train_config(search_config, arch, overrides, use_gpu=False)
    try:
        for epoch in itertools.count():
            event = ray.get(executor.next.remote(trial_id, epoch))
            if "end" in event:
                if event["end"].startswith("error"):
                    raise RuntimeError(f"its fused group failed: {event['end']}")
                return
            metrics, image = event["metrics"], None
            if event["state"] is not None:  # a new best epoch: the trial's best model
                model, full, _ = build_classifier(model_config, data, params)
                wanted = model.state_dict()
                model.load_state_dict({k: v for k, v in event["state"].items() if k in wanted})
                confusion = event["confusion"]
                result = TrainResult(metrics, event["history"], "in progress")
                write_run(trial_dir / BEST_MODEL_DIR, model, model_config, full, data, result,
                          confusion, event["iteration_loss"], plot=False)  # fmt: skip
                image = plots.confusion_image(confusion)
            writer.epoch(metrics, metrics["epoch"], image)
            tune.report({**metrics, "arch": arch, "parameters": event["parameters"],
                         "model": model_summary(event["params"]), "fused": event["group"],
                         "device": event["device"], FINISHED: event["last"],
                         "node_id": ray.get_runtime_context().get_node_id()})  # fmt: skip
            if event["last"]:
                return
    finally:
        writer.close()
        executor.leave.remote(trial_id)
