#!/bin/sh
# sweep-speedup.sh: `make sweep-speedup`.  The wall time of one grid of 20
# runs (specs/spectral_sparse.ibs, 4 learning rates x 5 seeds, the spec's
# 50 000 steps) with --jobs 1 and with --jobs N (default 2), the trainers
# built beforehand so that only the runs are timed.  Each is timed REPEAT
# times (default 3), alternately, and the shortest time of each is kept
# (other processes on a shared machine only ever add time).  Prints every
# time, the speed-up, the number of cores and the load average before and
# after, then the same trainer commands run without the sweep (what the
# machine allows).  docs/sweeps.md quotes its output.
set -eu
JOBS=${JOBS:-2}
REPEAT=${REPEAT:-3}
out=build/sweep-speedup
base="specs/spectral_sparse.ibs --set lr=1e-4,3e-4,1e-3,3e-3 --seeds 5"
grid="$base${STEPS:+ --set steps=$STEPS}"
rm -rf "$out"
# the 4 trainers, built once (steps is the trainer's flag: same trainers)
bin/ibc sweep $base --set steps=1 --jobs 1 --out "$out/build" >/dev/null 2>&1 || true
[ -d "$out/build/models" ] || { echo "sweep-speedup: the trainers did not build" >&2; exit 1; }
t() {   # JOBS -> wall seconds of the sweep
    rm -rf "$out/j$1"
    mkdir -p "$out/j$1"
    cp -r "$out/build/models" "$out/j$1/"
    s=$(date +%s.%N)
    bin/ibc sweep $grid --jobs "$1" --out "$out/j$1" >/dev/null 2>"$out/j$1.err" || {
        echo "sweep-speedup: the sweep with --jobs $1 failed:" >&2; cat "$out/j$1.err" >&2; exit 1; }
    e=$(date +%s.%N)
    echo "$s $e" | awk '{printf "%.2f", $2 - $1}'
}
echo "cores: $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
all1="" alln=""
r=0
while [ $r -lt "$REPEAT" ]; do
    all1="$all1 $(t 1)"
    alln="$alln $(t "$JOBS")"
    for f in sweep.csv summary.csv summary.json; do
        cmp -s "$out/j1/$f" "$out/j$JOBS/$f" || { echo "sweep-speedup: $f differs between --jobs 1 and --jobs $JOBS" >&2; exit 1; }
    done
    r=$((r + 1))
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
min() { echo "$@" | tr ' ' '\n' | sort -g | head -1; }
t1=$(min $all1)
tn=$(min $alln)
echo "20 runs, wall seconds: --jobs 1:$all1; --jobs $JOBS:$alln"
echo "shortest: --jobs 1 $t1 s, --jobs $JOBS $tn s, speed-up $(echo "$t1 $tn" | awk '{printf "%.2f", $1 / $2}')x (the same sweep.csv and summary every time)"
# What the machine allows, without the sweep: the same 20 trainer commands
# (read from the last --jobs 1 sweep's trainer.log files, outputs sent to a
# scratch directory) run by the shell one after another and $JOBS at a
# time (xargs -P), and the runs' own wall_seconds summed from timings.csv
# (how much slower each trainer is when $JOBS run at once).
cmds=$out/commands.txt
grep -h '^ibc sweep: starting: ' "$out"/j1/runs/*/*/trainer.log | sed 's/^ibc sweep: starting: //' |
    sed "s| --out [^ ]*| --out $out/plain/run_@|" >"$cmds"
plain() {   # JOBS -> wall seconds of the 20 commands, JOBS at a time
    rm -rf "$out/plain"
    mkdir -p "$out/plain"
    s=$(date +%s.%N)
    i=0
    while read -r c; do   # run_@ -> run_1 ... run_20, one output directory each
        i=$((i + 1))
        printf '%s\0' "$(echo "$c" | sed "s|run_@|run_$i|")"
    done <"$cmds" | OPENBLAS_NUM_THREADS=1 xargs -0 -P "$1" -n 1 sh -c '$0 >/dev/null 2>&1' || {
        echo "sweep-speedup: a trainer command failed without the sweep ($cmds)" >&2; exit 1; }
    e=$(date +%s.%N)
    echo "$s $e" | awk '{printf "%.2f", $2 - $1}'
}
p1=$(plain 1)
pn=$(plain "$JOBS")
echo "the same $(wc -l <"$cmds") trainer commands without the sweep: one after another $p1 s, $JOBS at a time $pn s ($(echo "$p1 $pn" | awk '{printf "%.2f", $1 / $2}')x)"
echo "runs' own wall seconds summed (timings.csv): --jobs 1 $(awk -F, 'NR > 1 {s += $4} END {printf "%.2f", s}' "$out/j1/timings.csv"), --jobs $JOBS $(awk -F, 'NR > 1 {s += $4} END {printf "%.2f", s}' "$out/j$JOBS/timings.csv")"
