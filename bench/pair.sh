#!/bin/sh
# bench/pair.sh: compare trainer builds (and PyTorch) on a shared machine.
#
#   sh bench/pair.sh [-t EXP] TRAINER...
#
# Runs every TRAINER (built trainers, e.g. two commits' or two -march
# levels' builds of one spec) at STEPS and 2 x STEPS steps (default 40000),
# REPS rounds (default 5), interleaved: round 1 runs each in turn, then
# round 2, so that a slow spell of the machine falls on all of them.  Per
# run, the per-step cost two ways: wall (the difference of the two runs'
# wall_seconds over STEPS, as bench/run.sh) and CPU (the difference of the
# two processes' task-clock, perf stat), which other jobs on the machine
# disturb far less than the wall time.  With -t EXP, each round also times
# bench/torch_reference.py EXP (1000 and 3000 steps; wall: its own per-step
# figure at 3000, CPU: the task-clock difference over 2000 steps).  Prints
# every run, then the min and median of each, and the ratios of PyTorch's
# medians to each trainer's.  One OpenBLAS thread.  Needs perf.
set -eu
torch=""
if [ "${1:-}" = "-t" ]; then torch=$2; shift 2; fi
steps=${STEPS:-40000}
reps=${REPS:-5}
dir=build/bench/pair
mkdir -p "$dir"
cpu_ms() { awk -F, '/task-clock/ { print $1 }' "$1"; }
wall() { grep -o '"wall_seconds": [0-9.e+-]*' "$1/results.json" | awk '{ print $2 }'; }
: >"$dir/runs"
for r in $(seq "$reps"); do
    i=0
    for t in "$@"; do
        i=$((i + 1))
        for s in "$steps" $((2 * steps)); do
            OPENBLAS_NUM_THREADS=1 perf stat -x, -e task-clock -o "$dir/stat.$s" "$t" --steps "$s" --quiet \
                --out "$dir/out.$s" >/dev/null || true
        done
        awk -v n="$i:$(basename "$t")" -v s="$steps" -v w1="$(wall "$dir/out.$steps")" \
            -v w2="$(wall "$dir/out.$((2 * steps))")" -v c1="$(cpu_ms "$dir/stat.$steps")" \
            -v c2="$(cpu_ms "$dir/stat.$((2 * steps))")" \
            'BEGIN { printf "%s %.3f %.3f\n", n, (w2 - w1) * 1e6 / s, (c2 - c1) * 1e3 / s }' >>"$dir/runs"
    done
    if [ -n "$torch" ]; then
        perf stat -x, -e task-clock -o "$dir/stat.t1" /usr/bin/python3 bench/torch_reference.py 1000 "$torch" >/dev/null
        w=$(perf stat -x, -e task-clock -o "$dir/stat.t2" /usr/bin/python3 bench/torch_reference.py 3000 "$torch" |
            awk '{ print $3 }')
        awk -v w="$w" -v c1="$(cpu_ms "$dir/stat.t1")" -v c2="$(cpu_ms "$dir/stat.t2")" \
            'BEGIN { printf "torch %.3f %.3f\n", w, (c2 - c1) * 1e3 / 2000 }' >>"$dir/runs"
    fi
done
: >"$dir/medians"
echo "per run: name, wall us/step, CPU us/step"
cat "$dir/runs"
echo
printf '%-28s %10s %10s %10s %10s\n' "" "wall min" "median" "CPU min" "median"
for n in $(awk '{ print $1 }' "$dir/runs" | awk '!seen[$0]++'); do
    awk -v n="$n" '$1 == n { w[++k] = $2; c[k] = $3 }
        END {
            for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) {
                if (w[j] < w[i]) { t = w[i]; w[i] = w[j]; w[j] = t }
                if (c[j] < c[i]) { t = c[i]; c[i] = c[j]; c[j] = t } }
            m = int((k + 1) / 2); mw = k % 2 ? w[m] : (w[m] + w[m + 1]) / 2; mc = k % 2 ? c[m] : (c[m] + c[m + 1]) / 2
            printf "%-28s %10.2f %10.2f %10.2f %10.2f\n", n, w[1], mw, c[1], mc
            print n, mw, mc > "/dev/stderr"
        }' "$dir/runs" 2>>"$dir/medians"
done
if [ -n "$torch" ]; then
    echo
    awk '$1 == "torch" { tw = $2; tc = $3 } $1 != "torch" { n[++k] = $1; w[k] = $2; c[k] = $3 }
        END { for (i = 1; i <= k; i++) printf "PyTorch / %-24s wall %6.1fx   CPU %6.1fx\n", n[i], tw / w[i], tc / c[i] }' "$dir/medians"
fi
rm -f "$dir/medians"
