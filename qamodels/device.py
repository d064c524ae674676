"""The one place that decides where and in what precision a model runs, and how the random
state of that device is saved and restored (the trainer's checkpoints, resumed trials).

Every entry point (qamodels.train, the search's trials, LM pretraining, predict) resolves
its `device=` key here; tests pick theirs from one option (tests/conftest.py).
"""

from __future__ import annotations

import torch

# Batch widths on a GPU are rounded up to a multiple of this: a few distinct shapes let
# cuDNN and the caching allocator reuse their plans (Tensor Cores also want multiples of 8).
GPU_WIDTH_MULTIPLE = 8


def resolve_device(name: str) -> torch.device:
    """`auto`: the first GPU when there is one, else the CPU; `cuda` without CUDA is a
    one-line error, not a traceback deep in the first batch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from data_prep.cli import ConfigError

        raise ConfigError(f"device={name}: this machine has no CUDA GPU; use device=cpu or auto")
    return device


def uses_bf16(device: torch.device, amp: bool) -> bool:
    """bf16 autocast only on a CUDA device that supports it (Ampere and newer)."""
    return device.type == "cuda" and amp and torch.cuda.is_bf16_supported()


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=uses_bf16(device, amp))


def compiled(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`model` through torch.compile for its training steps: on CUDA with CUDA graphs
    (mode reduce-overhead: a small model's step is kernel launches), one graph per batch
    shape, which the bucketing keeps few (width_multiple); static shapes, no guards on
    sizes. The parameters stay the model's own."""
    mode = "reduce-overhead" if device.type == "cuda" else "default"
    # One compiled graph per batch width: past dynamo's default of 8 the rest would run
    # eagerly (a 250k-row set's widths span ~16 multiples of 8, the last batch its own).
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    return torch.compile(model, mode=mode, dynamic=False)


def width_multiple(device: torch.device) -> int:
    """What trimmed batch widths are rounded up to: exact on the CPU (fewer padded steps are
    pure gain there), multiples of 8 on a GPU (few distinct shapes)."""
    return GPU_WIDTH_MULTIPLE if device.type == "cuda" else 1


def rng_state(device: torch.device) -> dict:
    """The global random states a training step draws from (dropout): the CPU's, and the
    GPU's when the model runs on one. Saved as CPU tensors."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    """Restore `rng_state`; a checkpoint written on another device type restores what it
    has (a trial retried on a GPU after a CPU node, or the reverse)."""
    torch.set_rng_state(state["cpu"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
