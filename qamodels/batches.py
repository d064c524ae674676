"""Batches straight from the prepared tensors: one index per batch, no per-item Python.

The whole split is moved to the training device once; each epoch draws a permutation and
slices it. Batch order and trimming are planned on the host from a host copy of the lengths
and the epoch's order goes to the device in one copy, so producing a batch never waits for
the device (no host sync per step on a GPU). With `bucket=True` items of similar length
share a batch (sorted within chunks of `bucket_chunk` batches, batch order shuffled) and
`trim=True` cuts each batch to its longest item, so short questions do not pay for the
padding of long ones; on a GPU the width is rounded up to a multiple of 8
(qamodels.device.width_multiple), so the kernels see a few shapes, not one per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from data_prep.store import Split
from qamodels.device import width_multiple


@dataclass
class Batch:
    ids: torch.Tensor  # (b, t) long
    mask: torch.Tensor  # (b, t) bool
    label: torch.Tensor  # (b,) long


@dataclass
class DeviceSplit:
    """A split's tensors on the training device, ready to be indexed by batch."""

    ids: torch.Tensor
    length: torch.Tensor
    label: torch.Tensor
    host_length: torch.Tensor  # the lengths on the host: batch plans never read the device

    @classmethod
    def from_split(cls, split: Split, device: torch.device | str) -> DeviceSplit:
        tensors = split.tensors()
        return cls(
            ids=tensors["ids"].to(device, torch.long, copy=True),
            length=tensors["length"].to(device, torch.long, copy=True),
            label=tensors["label"].to(device, torch.long, copy=True),
            host_length=tensors["length"].to(torch.long, copy=True),
        )

    def __len__(self) -> int:
        return len(self.label)

    def width(self, host_index: torch.Tensor, trim: bool) -> int:
        """The batch's width: its longest item rounded up to the device's multiple when
        `trim`, else the split's (read from the host lengths: no device sync)."""
        full = self.ids.shape[1]
        if not trim:
            return full
        multiple = width_multiple(self.ids.device)
        longest = max(1, int(self.host_length[host_index].max()))
        return min(full, -(-longest // multiple) * multiple)

    def batch(self, index: torch.Tensor, width: int) -> Batch:
        """The rows `index` (on the split's device), cut to `width` columns."""
        ids = self.ids[index, :width]
        mask = torch.arange(width, device=ids.device) < self.length[index][:, None]
        return Batch(ids, mask, self.label[index])


def batch_order(
    length: torch.Tensor,
    batch_size: int,
    shuffle: bool,
    bucket: bool,
    generator: torch.Generator | None,
    bucket_chunk: int = 50,
) -> list[torch.Tensor]:
    """Host index tensors of the batches of one epoch (`length` on the host)."""
    n = len(length)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if bucket:
        chunk = batch_size * bucket_chunk
        pieces = []
        for start in range(0, n, chunk):
            part = order[start : start + chunk]
            pieces.append(part[torch.argsort(length[part], stable=True)])
        order = torch.cat(pieces)
    batches = list(torch.split(order, batch_size))
    if shuffle and bucket:
        perm = torch.randperm(len(batches), generator=generator).tolist()
        batches = [batches[i] for i in perm]
    return batches


def iterate(
    data: DeviceSplit,
    batch_size: int,
    shuffle: bool = False,
    bucket: bool = False,
    trim: bool = True,
    generator: torch.Generator | None = None,
) -> Iterator[Batch]:
    batches = batch_order(data.host_length, batch_size, shuffle, bucket, generator)
    if not batches:
        return
    on_device = torch.cat(batches).to(data.ids.device)  # one copy an epoch, not one a step
    for host_index, index in zip(
        batches, torch.split(on_device, [len(b) for b in batches]), strict=True
    ):
        yield data.batch(index, data.width(host_index, trim))
