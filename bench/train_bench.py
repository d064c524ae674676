"""Training throughput per architecture: the real tensors path against the ceiling.

    python bench/train_bench.py [raw_dir=../shared/data/amazon_qa] [batch_size=256] [steps=20]
        [archs=dan,cnn_parallel] [device=auto] [embedding_dim=128]

The ceiling is the same model and optimizer fed a synthetic batch already on the device (no
indexing, no host work). The real path draws shuffled batches from the prepared tensors on
the device, untrimmed (same shapes as the ceiling) and trimmed+bucketed (the trainer's
default, widths rounded to multiples of 8 on a GPU). Prints a Markdown table of samples/s
(bf16 autocast where the GPU supports it); the BiLSTM also with packed sequences.
"""

from __future__ import annotations

import itertools
import platform
import sys
import tempfile
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from common import SHARED_DATA, prepared_sample

from data_prep.cli import arg, parse_overrides
from qamodels.batches import DeviceSplit, iterate
from qamodels.device import autocast, compiled, resolve_device
from qamodels.embedding import make_embedding
from qamodels.registry import ARCHITECTURES, build_model


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def samples_per_second(model, optimizer, batches, steps: int, device: torch.device) -> float:
    model.train()
    count = 0
    for step, (ids, mask, label) in enumerate(itertools.islice(batches, steps + 3)):
        if step == 3:  # warm-up steps excluded
            sync(device)
            start, count = time.perf_counter(), 0
        with autocast(device, amp=True):
            loss = F.cross_entropy(model(ids, mask).float(), label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        count += len(label)
    sync(device)
    return count / (time.perf_counter() - start)


def real_batches(split: DeviceSplit, batch_size: int, trim: bool):
    generator = torch.Generator().manual_seed(0)
    while True:
        for b in iterate(
            split, batch_size, shuffle=True, bucket=trim, trim=trim, generator=generator
        ):
            yield b.ids, b.mask, b.label


def synthetic_batches(vocab: int, classes: int, batch_size: int, length: int, device):
    ids = torch.randint(2, vocab, (batch_size, length), device=device)
    mask = torch.ones(batch_size, length, dtype=torch.bool, device=device)
    label = torch.randint(0, classes, (batch_size,), device=device)
    return itertools.repeat((ids, mask, label))


@dataclass(frozen=True)
class TrainBench:
    device: str = arg("auto", "auto, cpu, cuda or cuda:N")
    batch_size: int = arg(0, "0: 2048 on a GPU, 256 on the CPU", min=0)
    steps: int = arg(20, "timed steps per architecture", min=1)
    archs: str = arg(",".join(ARCHITECTURES), "architectures, comma-separated")
    embedding_dim: int = arg(128, "embedding width", min=1)
    raw_dir: str = arg(str(SHARED_DATA), "the Amazon QA originals")
    compile: bool = arg(False, "also time the real paths through torch.compile (CUDA graphs "
                        "on a GPU; qamodels.device.compiled)")  # fmt: skip


def main(argv: list[str]) -> None:
    options = parse_overrides(TrainBench, argv)
    device = resolve_device(options.device)
    batch_size = options.batch_size or (2048 if device.type == "cuda" else 256)
    steps, archs, dim = options.steps, options.archs.split(","), options.embedding_dim
    with tempfile.TemporaryDirectory() as tmp:
        data = prepared_sample(tmp, options.raw_dir)
        split = DeviceSplit.from_split(data.train, device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    print(
        f"device: {device} ({name}), torch {torch.__version__}, threads "
        f"{torch.get_num_threads()}, batch {batch_size}, {data.max_length} tokens, dim {dim}"
    )
    compiled_columns = " compiled, untrimmed | compiled, trimmed+bucketed |" * options.compile
    print(
        "| arch | parameters | ceiling (synthetic) | real, untrimmed | real/ceiling | "
        "real, trimmed+bucketed |"
        + compiled_columns
        + "\n| --- | --- | --- | --- | --- | --- |"
        + " --- | --- |" * options.compile
    )
    # The BiLSTM twice: its masked path (the default) and the packed one it replaced.
    runs = [(a, False) for a in archs] + [("bilstm", True)] * ("bilstm" in archs)
    for arch, packed in runs:
        torch.manual_seed(0)
        model = build_model(
            arch, make_embedding(len(data.vocab), dim, "random"), len(data.labels), {}
        ).to(device)
        if packed:
            model.encoder.packed = True
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        ceiling = samples_per_second(
            model,
            optimizer,
            synthetic_batches(
                len(data.vocab), len(data.labels), batch_size, data.max_length, device
            ),
            steps,
            device,
        )
        real = samples_per_second(
            model, optimizer, real_batches(split, batch_size, False), steps, device
        )
        trimmed = samples_per_second(
            model, optimizer, real_batches(split, batch_size, True), steps, device
        )
        if options.compile:  # the same weights: the untrimmed and bucketed paths compiled
            step_model = compiled(model, device)
            epoch = len(split.label) // batch_size  # every bucket's shape compiled first
            samples_per_second(step_model, optimizer, real_batches(split, batch_size, True),
                               epoch, device)  # fmt: skip
            real_c = samples_per_second(
                step_model, optimizer, real_batches(split, batch_size, False), steps, device
            )
            trimmed_c = samples_per_second(
                step_model, optimizer, real_batches(split, batch_size, True), steps, device
            )
            extra = f" {real_c:,.0f} | {trimmed_c:,.0f} |"
        params = sum(p.numel() for p in model.parameters())
        name = f"{arch} (packed)" if packed else arch
        print(
            f"| {name} | {params:,} | {ceiling:,.0f} | {real:,.0f} | {real / ceiling:.2f} | "
            f"{trimmed:,.0f} |" + (extra if options.compile else "")
        )


if __name__ == "__main__":
    main(sys.argv[1:])
