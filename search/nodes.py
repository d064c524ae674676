"""The cluster's nodes while a search runs: a line when nodes join or leave, and a bounded wait
for nodes that do not come.

On an autoscaling cluster the trials wait (Ray's PENDING) while the autoscaler starts
workers; a node type that cannot launch (no quota, a bad image) would leave them waiting for
ever. When trials have waited `node_wait` seconds with none running, the search stops the way
a signal stops it (resumable, marked PARTIAL) and says so in one line.
"""

from __future__ import annotations

import time

import ray
from ray.tune import Callback
from ray.tune.experiment import Trial

from search.interrupt import STOPPED_FOR

CHECK_EVERY_S = 5.0


def alive_nodes() -> dict[str, dict[str, float]]:
    """node id -> its CPU and GPU, for the nodes up now."""
    return {
        n["NodeID"]: {"CPU": n["Resources"].get("CPU", 0.0), "GPU": n["Resources"].get("GPU", 0.0),
                      "ip": n["NodeManagerAddress"]}
        for n in ray.nodes()
        if n["Alive"]
    }  # fmt: skip


def describe_node(node: dict) -> str:
    gpus = f", {node['GPU']:g} GPU" if node["GPU"] else ""
    return f"{node['ip']} ({node['CPU']:g} CPU{gpus})"


class NodeWatch(Callback):
    """Says when nodes join or leave; stops a search whose trials wait too long for a node."""

    def __init__(self, node_wait_s: float, stop) -> None:
        self._wait_s = node_wait_s
        self._stop = stop  # how the search stops (search/interrupt.py stop_tune)
        self._nodes: dict[str, dict] | None = None
        self._checked = 0.0
        self._waiting_since: float | None = None

    def on_step_begin(self, iteration: int, trials: list[Trial], **info) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_S or STOPPED_FOR:
            return
        self._checked = now
        self.report_changes(alive_nodes())
        running = any(t.status == Trial.RUNNING for t in trials)
        waiting = [t for t in trials if t.status == Trial.PENDING]
        if running or not waiting:
            self._waiting_since = None
            return
        if self._waiting_since is None:
            self._waiting_since = now
        elif now - self._waiting_since > self._wait_s:
            request = waiting[0].placement_group_factory.required_resources
            asked = ", ".join(f"{v:g} {k}" for k, v in sorted(request.items()) if v)
            STOPPED_FOR.append(
                f"{len(waiting)} trial(s) waited {self._wait_s:g} s for a node with {asked} and "
                f"none came (nodes up: {len(self._nodes or {})}); see `ray status` and the "
                "autoscaler's log (monitor.log on the head), or raise node_wait="
            )
            self._stop()

    def report_changes(self, nodes: dict[str, dict]) -> None:
        if self._nodes is not None:
            for node_id in nodes.keys() - self._nodes.keys():
                print(f"node joined: {describe_node(nodes[node_id])}; {len(nodes)} up", flush=True)
            for node_id in self._nodes.keys() - nodes.keys():
                print(f"node left: {describe_node(self._nodes[node_id])}; {len(nodes)} up",
                      flush=True)  # fmt: skip
        self._nodes = nodes
