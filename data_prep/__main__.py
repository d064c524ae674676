r"""Command line of data_prep: `python -m data_prep <step> key=value ...`.

    python -m data_prep download                      # the 38 original files into data_dir/raw
    python -m data_prep parse categories=all raw_dir=../shared/data/amazon_qa
    python -m data_prep prepare raw_dir=../shared/data/amazon_qa categories=all \
        valid_size=0.1 train_size=0.6                 # parse + split + tokenize + write
    python -m data_prep embeddings prepared=<dir> vectors=glove-6b-50d
    python -m data_prep all                           # download + prepare
    python -m data_prep --help
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from data_prep.cli import ConfigError, arg, configure_logging, fail, help_text, parse_overrides
from data_prep.config import PrepConfig
from data_prep.errors import QatuneError
from data_prep.interrupt import GUARD, Interrupted

STEPS = ("download", "parse", "prepare", "embeddings", "all")


def main(argv: list[str]) -> int:
    configure_logging()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STEPS:
        print(__doc__)
        print(help_text(PrepConfig, f"steps: {', '.join(STEPS)}"))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    step, args = argv[0], argv[1:]
    with GUARD.handling():
        try:
            if step == "embeddings":
                return _embeddings(args)
            config = parse_overrides(PrepConfig, args)
            return _run(step, config)
        except QatuneError as err:
            return fail(err)
        except Interrupted as stop:  # every file is written beside and renamed: none is half
            print(f"stopped by {stop.name}: nothing half-written was kept; run the same "
                  "command again", file=sys.stderr)  # fmt: skip
            return stop.exit_code


def _run(step: str, config: PrepConfig) -> int:
    from data_prep.download import download
    from data_prep.parse import parse
    from data_prep.pipeline import describe, prepare

    config.check_paths()
    if step in ("download", "all") and not config.source:
        paths = download(config)
        print(f"{len(paths)} verified files in {config.raw_path}")
    if step == "parse":
        rows, report = parse(config)
        print(report.summary())
        print(rows["category"].value_counts().to_string())
    if step in ("prepare", "all"):
        print(describe(prepare(config)))
    return 0


@dataclass(frozen=True)
class EmbeddingsConfig:
    prepared: str = arg("", "a prepared dataset directory (required)")
    vectors: str = arg("glove-6b-50d", "a .vec/.vec.zip/.txt file, or glove-6b-50d")


def _embeddings(args: list[str]) -> int:
    from data_prep.embeddings import load_embeddings
    from data_prep.store import load

    config = parse_overrides(EmbeddingsConfig, args)
    if not config.prepared:
        raise ConfigError("embeddings needs prepared=<prepared dataset directory>")
    found = load_embeddings(load(config.prepared), config.vectors)
    print(f"matrix {found.matrix.shape}; coverage {found.coverage}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
