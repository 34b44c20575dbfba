#!/bin/sh
# bench/fixed.sh (make bench-fixed): the fixed costs of a run (data and
# operator set-up, the structure and gradient checks, the end-of-run
# checks and metrics, reference methods: every "fixed cost:" line a trainer
# prints) against the whole run, for every spec in specs/, each at its own
# step count (the trainer's default: train steps plus extend).
#
# FRACTION (default 1) runs each spec at that fraction of its step count
# and extrapolates: the training loop's time (the run's wall time less its
# fixed costs) is divided by FRACTION, the fixed costs are kept as
# measured (none of them depends on the step count), so
# fixed / (fixed + loop / FRACTION) is the share in a full run.  Wall times
# of the whole process (set-up to exit), one OpenBLAS thread, each spec
# built as `ibc build` builds it.  The target (issue 15): fixed costs under
# 5% of a run at the spec's own step count.
#
# FSYNC=1 (needs strace) also gives the wall time the run spent in fsync:
# every output file is flushed, fsync'ed and renamed (runtime/io.c, the
# crash guarantee of docs/reliability.md), and on a slow disk those waits
# are most of a short run's end-of-run cost.  strace slows the run a little.
set -eu
frac=${FRACTION:-1}
fsync=${FSYNC:-}
dir=build/bench/fixed
mkdir -p "$dir"
if [ -n "$fsync" ]; then
    printf '%-16s %9s %9s %10s %10s %9s %15s %s\n' spec steps run "fixed (s)" "total (s)" "fixed %" "fsync (s, n)" \
        "largest fixed cost"
else
    printf '%-16s %9s %9s %10s %10s %9s %s\n' spec steps run "fixed (s)" "total (s)" "fixed %" "largest fixed cost"
fi
for spec in specs/*.ibs; do
    n=$(basename "$spec" .ibs)
    bin/ibc build "$spec" -o "$dir/$n" >/dev/null 2>&1
    own=$("$dir/$n" --help 2>&1 | awk '/--steps N/ { for (i = 1; i <= NF; i++) if ($i == "(default") { sub(/\)/, "", $(i + 1)); print $(i + 1) } }')
    steps=$(awk -v s="$own" -v f="$frac" 'BEGIN { n = int(s * f + 0.5); print n < 1 ? 1 : n }')
    t0=$(date +%s.%N)
    if [ -n "$fsync" ]; then
        OPENBLAS_NUM_THREADS=1 strace -T -e trace=fsync -o "$dir/$n.strace" "$dir/$n" --steps "$steps" \
            --out "$dir/$n.out" >/dev/null 2>"$dir/$n.err" || true
    else
        OPENBLAS_NUM_THREADS=1 "$dir/$n" --steps "$steps" --out "$dir/$n.out" >/dev/null 2>"$dir/$n.err" || true
    fi
    t1=$(date +%s.%N)
    # the fsync calls' wall times, <seconds> at the end of each strace line
    fs=$([ -n "$fsync" ] && awk -F'<' '/^fsync/ { sub(/>.*/, "", $NF); t += $NF; k++ } END { printf "%.3f %d", t, k }' \
        "$dir/$n.strace" || echo "")
    awk -v n="$n" -v own="$own" -v steps="$steps" -v t0="$t0" -v t1="$t1" -v f="$frac" -v fs="$fs" '
        /^fixed cost: / { s = $NF == "s" ? $(NF - 1) : $NF; fixed += s
                          if (s + 0 > big) { big = s + 0; what = $0; sub(/^fixed cost: /, "", what); sub(/: [^:]*$/, "", what) } }
        END {
            run = t1 - t0; loop = run - fixed; if (loop < 0) loop = 0
            total = fixed + loop / f
            if (fs != "") { split(fs, q, " "); col = sprintf(" %9.3f (%3d)", q[1], q[2]) } else col = ""
            printf "%-16s %9d %9d %10.3f %10.3f %8.2f%%%s %s (%.3f s)\n", n, own, steps, fixed, total, 100 * fixed / total, col, what, big
        }' "$dir/$n.err"
done
