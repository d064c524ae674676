"""qamodels.device: the one place the device, its precision and its random state are set."""

from __future__ import annotations

import pytest
import torch

from data_prep.cli import ConfigError
from data_prep.store import Split
from qamodels.batches import DeviceSplit, iterate
from qamodels.device import (
    GPU_WIDTH_MULTIPLE,
    resolve_device,
    rng_state,
    set_rng_state,
    uses_bf16,
)
from tests.conftest import test_device


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_without_a_gpu_is_a_one_line_error():
    with pytest.raises(ConfigError, match="device=cuda: this machine has no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
    assert not uses_bf16(torch.device("cpu"), amp=True)


def test_random_state_round_trip_on_the_tests_device():
    device = torch.device(test_device())
    state = rng_state(device)
    first = torch.rand(4, device=device), torch.rand(4)
    torch.rand(7, device=device)  # move on
    set_rng_state(state, device)
    again = torch.rand(4, device=device), torch.rand(4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert all(t.device.type == "cpu" for t in state.values())  # saved as CPU tensors


def toy_split(lengths: list[int], width: int = 40) -> Split:
    ids = torch.zeros(len(lengths), width, dtype=torch.int32)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.arange(2, n + 2)
    length = torch.tensor(lengths, dtype=torch.int32)
    mask = torch.arange(width) < length[:, None]
    return Split(ids.numpy(), mask.numpy(), length.numpy(), torch.zeros(len(lengths)).numpy())


def widths(device: str) -> list[int]:
    lengths = [1, 3, 5, 9, 10, 17, 23, 31, 33, 40] * 20
    split = DeviceSplit.from_split(toy_split(lengths), device)
    generator = torch.Generator().manual_seed(0)
    batches = iterate(split, 10, shuffle=True, bucket=True, trim=True, generator=generator)
    out = []
    for batch in batches:
        longest = int(batch.mask.sum(1).max())
        assert batch.ids.shape[1] >= longest and batch.mask.shape == batch.ids.shape
        out.append(batch.ids.shape[1])
    return out


def test_cpu_batches_are_cut_to_their_longest_item():
    found = widths("cpu")
    assert len(set(found)) > 5 and any(w % GPU_WIDTH_MULTIPLE for w in found)


@pytest.mark.gpu
def test_gpu_batch_widths_are_multiples_of_eight_or_the_full_width():
    found = widths("cuda")
    assert all(w % GPU_WIDTH_MULTIPLE == 0 or w == 40 for w in found)
    assert len(set(found)) <= 40 // GPU_WIDTH_MULTIPLE + 1
