"""Bytes a search writes per trial, by kind, and the whole experiment before and after its
end removes what no resume can use.

    python bench/storage_bench.py [search.run keys ...]   # default: 6 DAN/CNN trials, 6 epochs
    python bench/storage_bench.py source=titles.csv        # any keys: a file of your own

Runs `python -m search.run ... keep_checkpoints=true` into a temporary directory and prints
a Markdown table per trial: resumable states (checkpoint_*/trainer.pt), best model,
TensorBoard event files (bytes and count), and the rest (Ray's progress files). Then the
experiment's bytes as the search left them before (every path counted: best_model/ and
best_ensemble/ were copies) and after `remove_resumable_states` (what a search without
keep_checkpoints=true leaves; hard-linked files counted once).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from common import SHARED_DATA

from search.checkpoints import remove_resumable_states
from search.storage import Location

DEFAULT = ["arch=dan,cnn_parallel", "num_samples=6", "max_epochs=6", "embeddings=random",
           "baseline=false", "recipes=false"]  # fmt: skip


def size(paths) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        keys = [f"raw_dir={SHARED_DATA}", "categories=all", "valid_size=0.1", "train_size=0.6",
                f"storage_path={tmp}", "name=storage", *(argv or DEFAULT),
                "keep_checkpoints=true"]  # fmt: skip
        subprocess.run([sys.executable, "-m", "search.run", *keys], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        print("| trial | epochs | states | state MB | best model MB | events | events KB | "
              "other KB |\n| --- | --- | --- | --- | --- | --- | --- | --- |")  # fmt: skip
        totals = []
        for trial in sorted(
            p for p in Path(tmp, "storage").iterdir() if (p / "params.json").is_file()
        ):
            files = [p for p in trial.rglob("*") if p.is_file()]
            states = [p for p in files if p.name == "trainer.pt"]
            best = [p for p in files if "best_model" in p.parts]
            events = [p for p in files if "tfevents" in p.name]
            rest = set(files) - set(states) - set(best) - set(events)
            epochs = len((trial / "progress.csv").read_text().splitlines()) - 1
            totals.append(size(files))
            print(f"| {trial.name} | {epochs} | {len(states)} | {size(states) / 1e6:.1f} | "
                  f"{size(best) / 1e6:.1f} | {len(events)} | {size(events) / 1e3:.0f} | "
                  f"{size(rest) / 1e3:.0f} |")  # fmt: skip
        print(f"\nmean per trial: {sum(totals) / len(totals) / 1e6:.1f} MB")
        experiment = Path(tmp, "storage")
        every_path = size(experiment.rglob("*"))
        remove_resumable_states(Location(tmp, "storage"))
        inodes = {p.stat().st_ino: p.stat().st_size for p in experiment.rglob("*") if p.is_file()}
        after = sum(inodes.values())
        print(
            f"experiment, {len(totals)} trials: {every_path / 1e6:.1f} MB as before "
            f"(states kept, exports copied), {after / 1e6:.1f} MB now "
            f"({after / every_path:.0%}); {after / len(totals) / 1e6:.2f} MB per trial"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
