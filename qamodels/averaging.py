"""A moving average of a model's weights (Polyak averaging), scored and kept in their place.

Why: at a constant or high learning rate the weights at one step carry the noise of the last
few batches, and so does their valid score: a trial's best epoch can be a spike (a DAN at a
constant rate scored 0.878 0.875 0.877 0.891 0.880 on valid over five epochs, and 0.876 on
test at its 0.891; averaged: 0.887 on valid, 0.885 on test). Their exponential average over
about the last `ema_epochs` epochs moves less, so the best epoch, ASHA's rungs and the
search's final choice follow the model more and valid's noise less (BENCHMARKS.md, "Weight
averaging"). The time constant is counted in epochs, not steps: the same setting means the
same on a CPU's batches of 64 and a GPU's 2048.

torch.optim.swa_utils.AveragedModel does the same average, but reads its step counter from
the device on every update (a host sync per step on a GPU) and has no warm-up; here the
update is one fused in-place interpolation over all parameters, the counter on the host.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

# The first steps average over a window that grows with the step count (TensorFlow's
# ExponentialMovingAverage with num_updates): the random initial weights wash out at once.
WARMUP = 10


def newest_share(steps: int, steps_per_epoch: int, ema_epochs: float) -> float:
    """The share of the newest weights in the average after `steps` updates (1: no average,
    ema_epochs=0); the fused trials' averages follow the same rule (qamodels/fused.py)."""
    if not ema_epochs:
        return 1.0
    decay = 1.0 - 1.0 / max(1.0, ema_epochs * steps_per_epoch)
    return 1.0 - min(decay, (1 + steps) / (WARMUP + steps))


class WeightAverage:
    """An exponential moving average of `model`'s parameters; buffers (BatchNorm's running
    statistics) are the model's own, copied when the average is scored."""

    def __init__(self, model: nn.Module, steps_per_epoch: int, ema_epochs: float):
        self.model = copy.deepcopy(model).requires_grad_(False)
        self.steps_per_epoch, self.ema_epochs = steps_per_epoch, ema_epochs
        self.steps = 0  # counted on the host: the decay needs no read from the device

    def rate(self) -> float:
        """The share of the newest weights in this step's average."""
        return newest_share(self.steps, self.steps_per_epoch, self.ema_epochs)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.steps += 1
        averaged = list(self.model.parameters())
        current = [p.detach() for p in model.parameters()]
        torch._foreach_lerp_(averaged, current, self.rate())

    @torch.no_grad()
    def scored(self, model: nn.Module) -> nn.Module:
        """The averaged model with `model`'s buffers, ready to be scored."""
        for mine, theirs in zip(self.model.buffers(), model.buffers(), strict=True):
            mine.copy_(theirs)
        return self.model

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.steps = state["steps"]
