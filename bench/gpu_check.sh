#!/usr/bin/env bash
# Every GPU figure of issue 16 in one run on the device machine (about 8 minutes):
# the suite under CUDA, train_bench, 1/2/4 trainings per GPU (raw processes and Ray trials),
# and the main command on 250k training rows with GPU utilization sampled by nvidia-smi.
#
#   bash bench/gpu_check.sh prepare     # here: wheels in .whl/, sample + GloVe subset in .gpu/
#   device run: command="bash bench/gpu_check.sh", carry=[".whl", ".gpu"], timeout_s=560
#   bash bench/gpu_check.sh             # without a GPU: the same steps, small, on the CPU
#   bash bench/gpu_check.sh recheck     # after a fix (about 4.5 minutes): the tests that had
#                                       # failed and the main command, nothing else
#   bash bench/gpu_check.sh accuracy    # about 8.5 minutes: the whole suite under CUDA, then
#                                       # the main command on 3 split seeds of the sample at
#                                       # once (bench/lift_bench.py parallel=true)
#   bash bench/gpu_check.sh fused       # about 9 minutes: train_bench compiled (CUDA graphs)
#                                       # for the DAN, fused_bench, then the DAN and
#                                       # cnn_parallel search on 250k rows for 110 s twice,
#                                       # quarter-GPU trials and fuse=8 (train_compiled.md,
#                                       # fused.md, fused.txt)
#
# Up to 8 files come back from $OUT: gpu.txt, suite.txt, search_suite.txt, train_bench.md,
# packing.md, main.txt, util.csv, summary.md. Each step has its own time limit, so a slow
# step cuts itself short instead of the whole run; summary.md says which steps ended.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = prepare ]; then
    set -e
    ../shared/tools/gpu-wheels.sh .whl
    mkdir -p .gpu/amazon_qa
    cp ../shared/data/amazon_qa/* .gpu/amazon_qa/
    python bench/glove_subset.py .gpu/site
    du -sh .whl .gpu
    exit 0
fi

OUT=${OUT:-$(mktemp -d)}
if [ -d .whl ] && ! python3 -c "import ray" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
[ -d .gpu/site ] && export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/.gpu/site
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1
[ -d .gpu/amazon_qa ] && export QATUNE_SAMPLE=$PWD/.gpu/amazon_qa
export QATUNE_SAMPLE=${QATUNE_SAMPLE:-$(cd .. && pwd)/shared/data/amazon_qa}
work=$(mktemp -d)
if command -v nvidia-smi >/dev/null && python3 -c "import torch; assert torch.cuda.is_available()"; then
    device=cuda rows=250000 workers=8 main_s=170 epochs=2 packings=1,2,4
    fused=(members=8 epochs=2)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.txt"
else  # the script's own check on a CPU machine: every step, small
    device=cpu rows=6000 workers=0 main_s=60 epochs=1 packings=1
    fused=(members=2 epochs=1 rows=2000 archs=dan)
    echo "no GPU: $(nproc) CPUs" >"$OUT/gpu.txt"
fi
python3 -c "import torch, ray; print('torch', torch.__version__, 'ray', ray.__version__)" >>"$OUT/gpu.txt"
printf '| step | exit | wall |\n| --- | --- | --- |\n' >"$OUT/summary.md"  # filled as steps end
step() {  # step NAME SECONDS COMMAND...: run with a limit, record how it ended
    local name=$1 limit=$2 start rc
    shift 2
    start=$(date +%s)
    timeout -k 20 -s INT "$limit" "$@"
    rc=$?
    echo "| $name | $rc | $(($(date +%s) - start)) s |" >>"$OUT/summary.md"
}
parallel=()
[ "$workers" -gt 0 ] && parallel=(-n "$workers")
big=(source="$work/big.csv" text_column=question label_column=category
     valid_size=0.05 test_size=0.05 train_size=0.85 data_dir="$work/data")

if [ "${1:-}" = accuracy ]; then
    step suite 170 python3 -m pytest -q -m "not slow" --device="$device" "${parallel[@]}" \
        -p no:cacheprovider tests/qamodels tests/data_prep tests/test_cluster_config.py \
        tests/test_suite_setup.py >"$OUT/suite.txt" 2>&1 &
    search_parallel=()
    [ "$workers" -gt 0 ] && search_parallel=(-n 3 --dist loadfile)
    step search_suite 170 python3 -m pytest -q -m "not slow" --device="$device" \
        "${search_parallel[@]}" -p no:cacheprovider tests/search >"$OUT/search_suite.txt" 2>&1
    wait
    quick=()  # on the CPU, the script's own check: 2 trials of 1 epoch
    [ "$device" = cpu ] && quick=("extra=num_samples=2 max_epochs=1 grace_period=1 arch=dan,cnn_parallel")
    step lift 330 python3 bench/lift_bench.py parallel=true "${quick[@]}" >"$OUT/lift.md" \
        2>"$work/lift.log"
    tail -n 40 "$work/lift.log" >"$OUT/lift_log.txt"
    cat "$OUT/summary.md"
    exit 0
fi

if [ "${1:-}" = fused ]; then  # issue 28 items 3 and 5: compiled steps, fused trials
    # The DAN only: the launch-bound one (0.74 of its ceiling), and each bucket width is a
    # compilation of its own (tens of seconds).
    step train_compiled 120 python3 bench/train_bench.py "raw_dir=$QATUNE_SAMPLE" \
        "device=$device" archs=dan compile=true \
        >"$OUT/train_compiled.md" 2>&1
    step fused 60 python3 bench/fused_bench.py "raw_dir=$QATUNE_SAMPLE" "device=$device" \
        "${fused[@]}" >"$OUT/fused.md" 2>&1
    python3 bench/resample.py rows=$rows out="$work/big.csv" >/dev/null
    step prepare 60 python3 -m data_prep prepare "${big[@]}" >/dev/null 2>&1
    budget=110 slack=60  # the whole mode within the device's 600 s a command
    [ "$device" = cpu ] && budget=40 slack=300
    for mode in "fuse=0" "fuse=8"; do
        step "search_$mode" $((budget + slack)) python3 -m search.run arch=dan,cnn_parallel \
            "${big[@]}" storage_path="$work/results" name="${mode/=/}" "$mode" \
            time_budget=$budget baseline=false >"$work/$mode.log" 2>&1
    done
    python3 - "$work" <<'PY' >"$OUT/fused.txt"
import sys
from pathlib import Path

import pandas as pd

for name in ("fuse0", "fuse8"):
    trials = Path(sys.argv[1]) / "results" / name / "trials.csv"
    if not trials.is_file():
        print(f"{name}: no trials.csv")
        continue
    frame = pd.read_csv(trials)
    print(f"{name}: {len(frame)} trials, {int(frame['epochs'].sum())} epochs, best valid "
          f"{frame['valid_accuracy'].max():.4f}, mean of the top 5 "
          f"{frame['valid_accuracy'].nlargest(5).mean():.4f}")
PY
    cat "$OUT/fused.txt" "$OUT/summary.md"
    exit 0
fi

if [ "${1:-}" = recheck ]; then  # the tests that failed on an H100 (test_training, test_cluster)
    step recheck_tests 70 python3 -m pytest -q -m "not slow" --device="$device" "${parallel[@]}" \
        -p no:cacheprovider tests/qamodels/test_training.py tests/search/test_cluster.py \
        tests/search/test_resources.py >"$OUT/suite.txt" 2>&1
    main_s=150
    python3 bench/resample.py rows=$rows out="$work/big.csv" >/dev/null
    step prepare 60 python3 -m data_prep prepare "${big[@]}" >/dev/null 2>&1
else
# 1. The suite with the GPU chosen, two halves at once: models and data in parallel workers,
#    and the search tests (each worker file starts its own local Ray, so one file per worker).
step suite 150 python3 -m pytest -q -m "not slow" --device="$device" "${parallel[@]}" \
    -p no:cacheprovider tests/qamodels tests/data_prep tests/test_cluster_config.py \
    >"$OUT/suite.txt" 2>&1 &
search_parallel=()
[ "$workers" -gt 0 ] && search_parallel=(-n 3 --dist loadfile)
step search_suite 150 python3 -m pytest -q -m "not slow" --device="$device" \
    "${search_parallel[@]}" -p no:cacheprovider tests/search >"$OUT/search_suite.txt" 2>&1
wait

# 2. Throughput per architecture against its ceiling (batch 2048 on the GPU).
step train_bench 45 python3 bench/train_bench.py "raw_dir=$QATUNE_SAMPLE" "device=$device" \
    >"$OUT/train_bench.md" 2>&1
# 3. A real data size: the sample's questions resampled (timing only: repeats cross splits).
python3 bench/resample.py rows=$rows out="$work/big.csv" >/dev/null
step prepare 60 python3 -m data_prep prepare "${big[@]}" >/dev/null 2>&1
step packing 70 python3 bench/packing_bench.py "${big[@]}" archs=dan epochs=$epochs \
    packings=$packings device=$device >"$OUT/packing.md" 2>&1
fi

# 4. The main command at that size, GPU utilization sampled every second.
if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits \
        -l 1 >"$OUT/util.csv" &
    sampler=$!
fi
step main "$main_s" python3 -m search.run arch=all "${big[@]}" storage_path="$work/results" \
    name=main >"$work/main.log" 2>&1
[ -n "${sampler:-}" ] && kill "$sampler"
tail -n 40 "$work/main.log" >"$OUT/main.txt"

python3 - "$work" "$OUT" <<'PY' >>"$OUT/summary.md"
import sys
from pathlib import Path

import pandas as pd

work, out = Path(sys.argv[1]), Path(sys.argv[2])
print()
trials = work / "results" / "main" / "trials.csv"
if trials.is_file():
    frame = pd.read_csv(trials)
    print(f"main command: {len(frame)} trials recorded, {int(frame['epochs'].sum())} epochs")
util = out / "util.csv"
if util.is_file() and util.stat().st_size:
    samples = pd.read_csv(util, header=None, names=["time", "util", "memory"])
    busy = samples.index[samples["util"] > 0]
    if len(busy):  # from the first to the last sample with the GPU in use (trials running)
        window = samples.loc[busy[0] : busy[-1], "util"]
        print(f"GPU utilization while trials ran: mean {window.mean():.0f}% over {len(window)} s"
              f" (all samples: {samples['util'].mean():.0f}%)")
PY
cat "$OUT/summary.md"
