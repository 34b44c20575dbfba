#!/bin/sh
# bench/run.sh: per-step cost of each paper experiment's trainer against
# the same training loops written in PyTorch (bench/torch_reference.py,
# python3-torch, one thread), both measured here, in this run.
# Each trainer runs STEPS and then 2 x STEPS steps (default 100000) of every
# model it trains; us/step is the difference of the two wall times over
# (STEPS x models), which leaves out the fixed costs of a run (data, the
# checks at the start and the end, metrics, reference baselines).  The pair
# of runs is repeated REPS times (default 3) and the least difference kept:
# on a shared machine a single pair varied by up to 1.7x.  The PyTorch loops
# run TORCH_STEPS steps (default 5000) after a warm-up, in PyTorch's default
# float32 as the paper's code (TORCH_FLOAT64=1: double, the trainers'
# precision).  FLOPs/step are counts of the same computation.  First,
# bench/kernels.c times the kernel choices of the runtime on the specs'
# shapes.
set -eu
steps=${STEPS:-100000}
reps=${REPS:-3}
dir=build/bench
mkdir -p "$dir"
# built as `ibc build` builds a trainer (the Makefile's flags)
cc $(bin/ibc build --print-cflags) bench/kernels.c $(bin/ibc build --print-libs) -o "$dir/kernels"
OPENBLAS_NUM_THREADS=1 "$dir/kernels"
echo
# the PyTorch loops, measured now (n/a without python3-torch)
torch_out=$dir/torch.txt
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 bench/torch_reference.py "${TORCH_STEPS:-5000}" ${TORCH_FLOAT64:+--float64} | tee "$torch_out"
else
    echo "python3-torch is not installed (make bench installs it): the PyTorch column is n/a"
    : >"$torch_out"
fi
echo
printf '%-18s %8s %12s %12s %10s %10s %9s\n' spec models "us/step" "torch us/step" speedup "FLOP/step" "GFLOP/s"
total=0
for row in "shallow_relu E1 3904 500000" "attention E2 449280 300000" "matrix_completion E3 53200 500000" \
           "spectral_sparse E4 8725 50000" "piecewise_tv E5 49460 500000"; do
    set -- $row
    n=$1 exp=$2 flops=$3 paper_steps=$4
    ref=$(awk -v e="$exp" '$1 == e {print $3}' "$torch_out")
    ref=${ref:-nan}
    bin/ibc build "specs/$n.ibs" -o "$dir/$n" >/dev/null
    best=""
    for rep in $(seq "$reps"); do
        OPENBLAS_NUM_THREADS=1 "$dir/$n" --steps "$steps" --quiet --out "$dir/$n.out1" >/dev/null || true
        OPENBLAS_NUM_THREADS=1 "$dir/$n" --steps $((2 * steps)) --quiet --out "$dir/$n.out2" >/dev/null || true
        d=$(awk -v f1="$dir/$n.out1/results.json" -v f2="$dir/$n.out2/results.json" 'BEGIN {
            getline s < f1
            match(s, /"wall_seconds": [0-9.e+-]+/); w1 = substr(s, RSTART + 16, RLENGTH - 16)
            getline s < f2
            match(s, /"wall_seconds": [0-9.e+-]+/); w2 = substr(s, RSTART + 16, RLENGTH - 16)
            print w2 - w1 }')
        best=$(awk -v a="$d" -v b="$best" 'BEGIN { print (b == "" || a < b) ? a : b }')
    done
    awk -v f2="$dir/$n.out2/results.json" -v n="$n" -v ref="$ref" -v d="$best" \
        -v flops="$flops" -v steps="$steps" 'BEGIN {
        getline s < f2
        models = gsub(/"final_loss[_a-z0-9]*"/, "", s)
        us = d * 1e6 / (steps * models)
        printf "%-18s %8d %12.2f %12.2f %9.1fx %10d %9.2f\n", n, models, us, ref, ref / us, flops, flops / us / 1e3
        printf "%.6f\n", us * models * '"$paper_steps"' / 1e6 > "/dev/stderr"
    }' 2>"$dir/$n.battery"
    total=$(awk -v t="$total" '{print t + $1}' "$dir/$n.battery")
done
echo "battery at the paper's step counts (E1 500k, E2 300k, E3 500k, E4 50k, E5 500k per model),"
echo "estimated from the per-step costs above: $(printf '%.1f' "$total") s on one core"
