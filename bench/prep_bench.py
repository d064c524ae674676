"""Data prep speed, and batches/s of the tensors path against the original notebook's path.

    python bench/prep_bench.py [raw_dir=../shared/data/amazon_qa] [epochs=3]

Prints a Markdown table (copy it into BENCHMARKS.md with the machine it ran on).
"""

from __future__ import annotations

import platform
import sys
import tempfile
import time
from dataclasses import dataclass

import torch
from common import SHARED_DATA, sample_config
from nltk.tokenize import wordpunct_tokenize
from torch.utils.data import DataLoader, Dataset

from data_prep import load, prepare
from data_prep.cli import arg, parse_overrides
from qamodels.batches import DeviceSplit, iterate

BATCH = 128


class NotebookDataset(Dataset):
    """The original notebook's path: tokenize and pad one item at a time in __getitem__."""

    def __init__(self, texts, labels, vocab, max_length):
        self.texts, self.labels, self.max_length = texts, labels, max_length
        self.index = {tok: i for i, tok in enumerate(vocab)}

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, i):
        ids = [self.index.get(t, 1) for t in wordpunct_tokenize(self.texts[i])][: self.max_length]
        padded = ids + [0] * (self.max_length - len(ids))
        mask = [1] * len(ids) + [0] * (self.max_length - len(ids))
        return torch.tensor(padded), torch.tensor(mask), int(self.labels[i])


def time_batches(batches) -> tuple[float, int]:
    start, samples = time.perf_counter(), 0
    for batch in batches:
        samples += len(batch[-1]) if isinstance(batch, list | tuple) else len(batch.label)
    return time.perf_counter() - start, samples


@dataclass(frozen=True)
class PrepBench:
    raw_dir: str = arg(str(SHARED_DATA), "the Amazon QA originals")
    epochs: int = arg(3, "epochs of batches to time", min=1)


def main(argv: list[str]) -> None:
    options = parse_overrides(PrepBench, argv)
    raw_dir, epochs = options.raw_dir, options.epochs
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        config = sample_config(tmp, raw_dir)
        start = time.perf_counter()
        data = load(prepare(config))
        prep_s = time.perf_counter() - start
        rows = sum(data.meta["rows"].values())
        start = time.perf_counter()
        load(prepare(config))
        cached_s = time.perf_counter() - start

        device = DeviceSplit.from_split(data.train, "cpu")
        gen = torch.Generator().manual_seed(0)
        fast_s, fast_n = 0.0, 0
        for _ in range(epochs):
            s, n = time_batches(iterate(device, BATCH, shuffle=True, generator=gen))
            fast_s, fast_n = fast_s + s, fast_n + n
        texts = data.texts("train")
        notebook = NotebookDataset(texts, data.train.label, data.vocab, data.max_length)
        slow_s, slow_n = time_batches(DataLoader(notebook, batch_size=BATCH, shuffle=True))

    fast, slow = fast_n / fast_s, slow_n / slow_s
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"python {platform.python_version()}, torch {torch.__version__}"
    )
    print("| measure | value |\n| --- | --- |")
    print(
        f"| prep (parse+split+tokenize+write), {rows} rows | {prep_s:.1f} s, "
        f"{rows / prep_s:,.0f} rows/s |"
    )
    print(f"| prep again (cache hit: checksums + open) | {cached_s:.2f} s |")
    print(
        f"| tensors path, batch {BATCH}, shuffled | {fast / BATCH:,.0f} batches/s, "
        f"{fast:,.0f} samples/s |"
    )
    print(
        f"| notebook path (__getitem__ tokenize+pad, DataLoader {BATCH}) | "
        f"{slow / BATCH:,.0f} batches/s, {slow:,.0f} samples/s |"
    )
    print(f"| speed-up | {fast / slow:.0f}x |")


if __name__ == "__main__":
    main(sys.argv[1:])
