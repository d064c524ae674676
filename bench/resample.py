"""A large labeled file from the offline sample, for throughput at a real data size.

    python bench/resample.py rows=300000 out=/tmp/big.csv [raw_dir=../shared/data/amazon_qa]

The sample's questions drawn with replacement (seeded) into a CSV of `question,category`
(read back with `source=/tmp/big.csv text_column=question label_column=category`). Repeated
rows land in train, valid and test alike, so accuracies on it are not held-out figures: the
file measures speed and GPU use, not generalization.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from common import SHARED_DATA

from data_prep import PrepConfig
from data_prep.cli import arg, parse_overrides
from data_prep.parse import parse


@dataclass(frozen=True)
class ResampleConfig:
    rows: int = arg(300_000, "rows of the file", min=1)
    out: str = arg("/tmp/qatune_big.csv", "the CSV written")
    raw_dir: str = arg(str(SHARED_DATA), "the Amazon QA files")
    seed: int = arg(0, "seed of the draw")


def main(argv: list[str]) -> None:
    config = parse_overrides(ResampleConfig, argv)
    rows, _report = parse(PrepConfig(raw_dir=config.raw_dir, categories=("all",)))
    drawn = rows.sample(n=config.rows, replace=True, random_state=config.seed)
    drawn[["question", "category"]].to_csv(config.out, index=False)
    print(f"{config.out}: {len(drawn):,} rows from {len(rows):,} questions")


if __name__ == "__main__":
    main(sys.argv[1:])
