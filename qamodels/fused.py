"""Fused trials: configurations of one architecture and shape trained as one batched model.

    python bench/fused_bench.py arch=dan members=8        # fused against apart, trials/hour

A small model leaves a large GPU idle: one trial's step is a few kernel launches on a few
thousand numbers. Here K trials' weights are stacked (`torch.func.stack_module_state`) and
one `vmap`-ed forward, backward and optimizer step trains them all on the same batches (the
idea of HFTA, Wang et al., MLSys 2021). Each member keeps what makes it a trial of its own:
its learning rate and schedule, weight decay, gradient clipping, label smoothing, weight
average and dropout rates (the dropout modules are swapped for ones whose rate is a stacked
buffer, each member drawing its own masks), its metrics every epoch, its early stopping,
its best weights. A member stops alone (`stop`: early stopping, a non-finite loss, or the
caller's scheduler): the group is compacted and the others go on.

What may differ inside a group is `VARYING_TRAIN` and `VARYING_PARAMS`; everything else (the
shapes, the batches, the seed) is the group's key (`group_key`). With the dropouts at zero a
member's metrics are those of the same trial run alone by `Trainer`, to float tolerance
(tests/qamodels/test_fused.py); with dropout they differ only by the random masks drawn.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from data_prep.store import PreparedData
from qamodels.averaging import newest_share
from qamodels.batches import DeviceSplit, iterate
from qamodels.classifier import build_classifier
from qamodels.config import TrainConfig
from qamodels.device import autocast, resolve_device
from qamodels.member_dropout import member_dropouts
from qamodels.metrics import confusion_matrix, scores
from qamodels.optim import make_optimizer, make_scheduler
from qamodels.trainer import (
    CHECK_EVERY,
    EpochEnd,
    TrainResult,
    fit_to_data,
    is_better,
    subset,
)

# What members of one group may set apart (the rest of their configs must be equal).
VARYING_TRAIN = ("lr", "weight_decay", "label_smoothing", "warmup_fraction", "embedding_lr",
                 "ema_epochs", "grad_clip", "patience")  # fmt: skip
VARYING_PARAMS = ("dropout", "word_dropout", "spatial_dropout", "wide_lr")


class NotFusable(ValueError):
    """Configurations that cannot share one group; the message says which key."""


def group_key(config: TrainConfig, params: dict) -> tuple:
    """What members of one group share; configs with equal keys can be fused."""
    if config.optimizer not in ("adam", "adamw"):
        raise NotFusable(f"optimizer={config.optimizer}: fused groups take adam or adamw")
    if config.gradual_unfreeze:
        raise NotFusable("gradual_unfreeze changes what trains mid-run: not fused")
    train = {k: v for k, v in asdict(config).items() if k not in VARYING_TRAIN}
    shape = {k: v for k, v in params.items() if k not in VARYING_PARAMS}
    return tuple(sorted(train.items())) + tuple(sorted((k, str(v)) for k, v in shape.items()))


@dataclass
class Member:
    """One trial of a group: its config, optimizer groups (read for their rates) and record."""

    config: TrainConfig
    params: dict
    optimizer: torch.optim.Optimizer
    scheduler: object
    history: list[dict] = field(default_factory=list)
    best: dict | None = None
    best_state: dict | None = None
    best_confusion: np.ndarray | None = None
    stale_epochs: int = 0
    stopped: str = ""


class FusedGroup:
    """K trials of one group key trained together; `members[i]` stays trial i's record after
    others stop. `fit(on_epoch)` calls `on_epoch(i, EpochEnd)` for each live member."""

    def __init__(self, configs: list[TrainConfig], data: PreparedData, params: list[dict]):
        keys = {group_key(c, p) for c, p in zip(configs, params, strict=True)}
        if len(keys) != 1:
            raise NotFusable("the configs differ in more than " + ", ".join(VARYING_TRAIN +
                             VARYING_PARAMS))  # fmt: skip
        self.config, self.data = configs[0], data
        self.device = resolve_device(self.config.device)
        train = subset(data.train, self.config.max_train_rows, self.config.seed)
        self.train_split = DeviceSplit.from_split(train, self.device)
        self.valid_split = DeviceSplit.from_split(data.valid, self.device)
        self.steps_per_epoch = math.ceil(len(train) / self.config.batch_size)
        self.generator = torch.Generator().manual_seed(self.config.seed)
        models, self.members = [], []
        for config, given in zip(configs, params, strict=True):
            torch.manual_seed(config.seed)  # each as Trainer builds it: the same first weights
            model, full, _ = build_classifier(config, data, given)
            fit_to_data(model, train, data.valid, data.vocab)
            model = member_dropouts(model).to(self.device)
            optimizer = make_optimizer(model, config)
            # Its groups hold the member's rates; the group's own update replaces its step
            # (marked as taken, or the scheduler warns of a step skipped).
            optimizer._opt_called = True
            total = self.steps_per_epoch * config.epochs
            self.members.append(
                Member(config, full, optimizer, make_scheduler(optimizer, config, total))
            )
            models.append(model)
        self.base = copy.deepcopy(models[0]).to("meta")
        self.names = [n for n, _ in models[0].named_parameters()]
        self.group_names = self._group_names(models)
        params_, self.buffers = stack_module_state(models)
        self.params = {n: p.detach().requires_grad_(p.requires_grad) for n, p in params_.items()}
        self.trained = [n for n in self.names if self.params[n].requires_grad]
        self.exp_avg = {n: torch.zeros_like(self.params[n]) for n in self.trained}
        self.exp_avg_sq = {n: torch.zeros_like(self.params[n]) for n in self.trained}
        self.step = torch.zeros((), dtype=torch.float32, device=self.device)  # Adam's count
        self.average = {n: p.detach().clone() for n, p in self.params.items()}
        self.steps = 0
        self.live = list(range(len(configs)))  # members still training, in stack order
        self.iteration_loss: list[list[float]] = [[] for _ in configs]

    def _group_names(self, models: list[nn.Module]) -> list[list[list[str]]]:
        """Per member, per group of its optimizer, the names of that group's parameters."""
        names = []
        for member, model in zip(self.members, models, strict=True):
            name_of = {id(p): n for n, p in model.named_parameters()}
            names.append([[name_of[id(p)] for p in g["params"]]
                          for g in member.optimizer.param_groups])  # fmt: skip
        return names

    def _per_member(self, values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float32, device=self.device)

    def _forward(self, params: dict, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        def one(p, b, ids, mask):
            return functional_call(self.base, (p, b), (ids, mask))

        return vmap(one, in_dims=(0, 0, None, None), randomness="different")(
            params, self.buffers, ids, mask
        )

    def _autocast(self):
        return autocast(self.device, self.config.amp)

    def train_epoch(self, epoch: int) -> list[float]:
        """One epoch of every live member on the same batches; their mean training losses."""
        self.base.train()
        live = [self.members[i] for i in self.live]
        smoothing = self._per_member([m.config.label_smoothing for m in live])[:, None]
        clip = self._per_member([m.config.grad_clip or math.inf for m in live])
        losses: list[torch.Tensor] = []  # on the device since the last read
        means, step = [0.0] * len(live), 0
        for step, batch in enumerate(iterate(self.train_split, self.config.batch_size,
                                              shuffle=True, bucket=self.config.bucket,
                                              trim=self.config.trim, generator=self.generator),
                                     1):  # fmt: skip
            with self._autocast():
                logits = self._forward(self.params, batch.ids, batch.mask).float()
            log_p = F.log_softmax(logits, -1)  # (K, b, C): cross entropy with smoothing
            nll = -log_p.gather(2, batch.label.expand(len(live), -1)[..., None])[..., 0]
            loss = ((1 - smoothing) * nll + smoothing * -log_p.mean(-1)).mean(1)  # (K,)
            for p in self.params.values():
                p.grad = None
            loss.sum().backward()  # members share no weights: each gets its own gradient
            self._clip(clip)
            self._adam_step()
            self._average(live)
            for member in live:
                member.scheduler.step()
            losses.append(loss.detach())
            if step % CHECK_EVERY == 0:
                means = self._record(losses, means)
        means = self._record(losses, means)
        for index in [i for i in self.live if self.members[i].stopped]:
            self.stop(index, f"{self.members[index].stopped} at epoch {epoch + 1}")
        return [total / max(1, step) for total in means]

    @torch.no_grad()
    def _clip(self, clip: torch.Tensor) -> None:
        """Each member's gradient scaled to norm <= its grad_clip, as clip_grad_norm_ does."""
        grads = [self.params[n].grad for n in self.trained]
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads], 1).norm(dim=1)
        scale = (clip / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))

    @torch.no_grad()
    def _adam_step(self) -> None:
        """Each member's slices through torch's own fused Adam / AdamW kernel (what its
        optimizer would run apart), with the rate, betas and weight decay its scheduler set
        in its optimizer's groups: one launch per member and group."""
        self.steps += 1
        self.step.add_(1)
        update = torch._fused_adamw_ if self.config.optimizer == "adamw" else torch._fused_adam_
        for position, index in enumerate(self.live):
            groups = self.members[index].optimizer.param_groups
            for group, names in zip(groups, self.group_names[index], strict=True):
                if not names:
                    continue
                update(
                    [self.params[n][position] for n in names],
                    [self.params[n].grad[position] for n in names],
                    [self.exp_avg[n][position] for n in names],
                    [self.exp_avg_sq[n][position] for n in names],
                    [],
                    [self.step] * len(names),
                    amsgrad=False,
                    lr=group["lr"],
                    beta1=group["betas"][0],
                    beta2=group["betas"][1],
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=False,
                    grad_scale=None,
                    found_inf=None,
                )

    @torch.no_grad()
    def _average(self, live: list[Member]) -> None:
        """Each member's weight average (qamodels/averaging.py's rule; none: the weights)."""
        share = self._per_member([newest_share(self.steps, self.steps_per_epoch,
                                               m.config.ema_epochs) for m in live])  # fmt: skip
        for name, average in self.average.items():
            average.lerp_(self.params[name].detach(), share.view(-1, *[1] * (average.dim() - 1)))

    def _record(self, losses: list[torch.Tensor], sums: list[float]) -> list[float]:
        """The losses since the last read, in one sync (`losses` emptied), logged per member;
        the running sums of this epoch's losses. A member with a non-finite loss is marked
        and stops at the end of the epoch (its best epoch's weights are kept)."""
        if not losses:
            return sums
        rows = torch.stack(losses).tolist()
        losses.clear()
        for position, index in enumerate(self.live):
            values = [row[position] for row in rows]
            self.iteration_loss[index].extend(values)
            sums[position] += sum(values)
            if not all(math.isfinite(v) for v in values):
                self.members[index].stopped = "non-finite training loss"
        return sums

    @torch.no_grad()
    def evaluate(self) -> list[tuple[dict, np.ndarray]]:
        """Each live member's valid scores and confusion matrix, from its scored weights."""
        self.base.eval()
        outputs = []
        for batch in iterate(self.valid_split, 2 * self.config.batch_size, trim=True):
            with self._autocast():
                outputs.append(self._forward(self.average, batch.ids, batch.mask).float())
        probabilities = torch.softmax(torch.cat(outputs, 1), -1).cpu().numpy()
        labels, classes = self.valid_split.label.cpu().numpy(), len(self.data.labels)
        return [
            ({f"valid_{k}": v for k, v in scores(p, labels, classes).items()},
             confusion_matrix(labels, p.argmax(1), classes))
            for p in probabilities
        ]  # fmt: skip

    def state_of(self, index: int) -> dict:
        """Member `index`'s state dict (its scored weights and buffers), for its own model."""
        position = self.live.index(index)
        source = {**self.average, **self.buffers}
        return {n: t[position].detach().clone() for n, t in source.items()}

    def stop(self, index: int, why: str) -> None:
        """Member `index` trains no more (its record stays); the others are compacted."""
        position = self.live.index(index)
        self.members[index].stopped = why
        keep = torch.tensor([p for p in range(len(self.live)) if p != position],
                            dtype=torch.long, device=self.device)  # fmt: skip
        for tensors in (self.buffers, self.average, self.exp_avg, self.exp_avg_sq):
            for name in tensors:
                tensors[name] = tensors[name].index_select(0, keep)
        self.params = {n: p.detach().index_select(0, keep).requires_grad_(p.requires_grad)
                       for n, p in self.params.items()}  # fmt: skip
        self.live.remove(index)

    def fit(
        self,
        on_epoch: Callable[[int, EpochEnd], None] | None = None,
        before_epoch: Callable[[int], None] | None = None,
    ) -> list[TrainResult]:
        """Every member to its last epoch or its own early stop; their results. `on_epoch`:
        each live member's epoch end; `before_epoch(epoch)`: before each epoch after the
        first (the caller may `stop` members there)."""
        start = time.perf_counter()
        for epoch in range(self.config.epochs):
            if epoch and before_epoch is not None:
                before_epoch(epoch)
            if not self.live:
                break
            train_losses = self.train_epoch(epoch)
            for index, loss, (metrics, confusion) in zip(
                list(self.live), train_losses, self.evaluate(), strict=True
            ):
                self._end_epoch(index, epoch, loss, metrics, confusion, start, on_epoch)
        for index in list(self.live):
            self.stop(index, f"completed {self.config.epochs} epochs")
        return [TrainResult(m.best or {}, m.history, m.stopped) for m in self.members]

    def _end_epoch(self, index, epoch, loss, metrics, confusion, start, on_epoch) -> None:
        member = self.members[index]
        lr = member.optimizer.param_groups[-1]["lr"]
        metrics = {"epoch": epoch + 1, "train_loss": loss, **metrics, "lr": lr,
                   "seconds": time.perf_counter() - start}  # fmt: skip
        member.history.append(metrics)
        metric = member.config.metric
        best = None if member.best is None else member.best[metric]
        improved = is_better(metrics[metric], best, member.config.mode)
        if improved:
            member.best, member.best_confusion = metrics, confusion
            member.best_state, member.stale_epochs = self.state_of(index), 0
        else:
            member.stale_epochs += 1
        early = member.stale_epochs >= member.config.patience
        if on_epoch is not None:
            last = early or epoch + 1 == member.config.epochs
            on_epoch(index, EpochEnd(metrics, improved, last, lambda directory: None))
        if early and index in self.live:
            self.stop(index, f"early stop: no better {metric} for {member.stale_epochs} epochs")
