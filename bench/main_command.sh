#!/usr/bin/env bash
# The README's main command on the offline sample, timed; prints the held-out table.
#   bash bench/main_command.sh [extra key=value ...]
# Baseline, each architecture's best, best single and ensemble on valid and test come from
# the experiment's final.csv; the wall time covers preparing, baseline, trials and the end.
set -euo pipefail
cd "$(dirname "$0")/.."
storage=$(mktemp -d)
start=$(date +%s)
python -m search.run arch=all raw_dir=../shared/data/amazon_qa categories=all \
    valid_size=0.1 train_size=0.6 storage_path="$storage" name=main "$@" >"$storage/log" 2>&1
end=$(date +%s)
python - "$storage/main" "$((end - start))" <<'PY'
import sys
import pandas as pd
from search.markdown import markdown_table
experiment, wall = sys.argv[1], int(sys.argv[2])
final = pd.read_csv(f"{experiment}/final.csv")
trials = pd.read_csv(f"{experiment}/trials.csv")
print(f"wall {wall} s, {len(trials)} trials, {int(trials['epochs'].sum())} epochs")
print(markdown_table(final))
PY
