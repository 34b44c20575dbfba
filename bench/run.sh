#!/bin/sh
# bench/run.sh: per-step cost of each paper experiment's trainer against
# the PyTorch reference of ../shared/paper-experiments.md (one thread).
# Each trainer runs STEPS steps (default 20000) of every model it trains;
# us/step is the trainer's wall time over (steps x models).  FLOPs/step
# are the reference table's counts for the same computation.
set -eu
steps=${STEPS:-20000}
dir=build/bench
mkdir -p "$dir"
printf '%-18s %8s %12s %12s %10s %10s %9s\n' spec models "us/step" "ref us/step" speedup "FLOP/step" "GFLOP/s"
for row in "shallow_relu 104 3904" "attention 323 449280" "matrix_completion 73 53200" \
           "spectral_sparse 50 8725" "piecewise_tv 52 49460"; do
    set -- $row
    n=$1 ref=$2 flops=$3
    bin/ibc build "specs/$n.ibs" -o "$dir/$n" >/dev/null
    OPENBLAS_NUM_THREADS=1 "$dir/$n" --steps "$steps" --quiet --out "$dir/$n.out" >/dev/null || true
    awk -v f="$dir/$n.out/results.json" -v n="$n" -v ref="$ref" -v flops="$flops" -v steps="$steps" 'BEGIN {
        getline s < f
        match(s, /"wall_seconds": [0-9.e+-]+/); w = substr(s, RSTART + 16, RLENGTH - 16)
        models = gsub(/"final_loss[_a-z0-9]*"/, "", s)
        us = w * 1e6 / (steps * models)
        printf "%-18s %8d %12.2f %12d %9.1fx %10d %9.2f\n", n, models, us, ref, ref / us, flops, flops / us / 1e3
    }'
done
