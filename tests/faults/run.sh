#!/bin/sh
# tests/faults/run.sh: the faults of issue 17 that only show in whole
# processes: the `ibc run` build cache and its spec input, two trainers on
# one output directory, repeated and process-group signals, a full disk
# and the file size limit.  Each case failed before its fix (the failures
# are recorded in docs/reliability.md).  Run from the repository root by
# `make faults` (part of `make check`) after `make all`.
set -u
pass=0 fail=0
d=build/faults
rm -rf "$d"
mkdir -p "$d"
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
. tests/lib.sh   # strip, same_outputs
# no_temporaries DIR: nothing of an atomic write left behind
no_temporaries() { ! ls -a "$1" | grep -q '\.tmp\.'; }

# ---------------------------------------------------------------- item 2
# The same spec text in two directories, next to different data: `ibc
# run` must not run the trainer built for the other directory (its data
# paths are baked in); the same data in a third directory gives the first
# one's results.
for x in A B C; do
    mkdir -p "$d/cache$x"
    cp tests/emit/from_files.ibs "$d/cache$x/s.ibs"
    cp tests/emit/from_files_x.csv "$d/cache$x/from_files_x.csv"
    cp tests/emit/from_files_y.csv "$d/cache$x/from_files_y.csv"
done
awk '{ printf "%.6f\n", -3 * $1 }' tests/emit/from_files_y.csv >"$d/cacheB/from_files_y.csv"
for x in A B C; do
    bin/ibc run "$d/cache$x/s.ibs" --steps 300 --quiet --out "$d/cache$x.out" >/dev/null 2>"$d/cache$x.err" ||
        { bad "ibc run $d/cache$x/s.ibs:"; cat "$d/cache$x.err"; }
done
if cmp -s "$d/cacheA.out/model_w.npy" "$d/cacheB.out/model_w.npy"; then
    bad "cache: the spec next to other data trained on the first directory's data"
elif [ "$(same_outputs "$d/cacheA.out" "$d/cacheC.out")" != yes ]; then
    bad "cache: the same spec and data in another directory gave other results"
else
    ok
fi

# ------------------------------------------------- data files and resume
# A checkpoint records a hash of every data and operator file's bytes: a
# resume after the data changed is refused (before: it trained on, mixing
# two data sets, exit 0); with the file restored, the resumed run equals
# a straight one.
mkdir -p "$d/ckdata"
cp tests/emit/from_files.ibs tests/emit/from_files_x.csv tests/emit/from_files_y.csv "$d/ckdata/"
if bin/ibc build "$d/ckdata/from_files.ibs" -o "$d/ckdata/t" >/dev/null 2>"$d/ckdata.err"; then
    "$d/ckdata/t" --quiet --out "$d/ckdata/straight" >/dev/null 2>&1
    "$d/ckdata/t" --quiet --stop-after 500 --out "$d/ckdata/o" >/dev/null 2>&1
    cp "$d/ckdata/from_files_y.csv" "$d/ckdata/y.keep"
    sed '7s/^-/-1/; 7s/^\([0-9]\)/1\1/' "$d/ckdata/y.keep" >"$d/ckdata/from_files_y.csv"
    "$d/ckdata/t" --resume "$d/ckdata/o" --quiet >/dev/null 2>"$d/ckdata.err"
    rc=$?
    cp "$d/ckdata/y.keep" "$d/ckdata/from_files_y.csv"
    if [ $rc -ne 1 ] || ! grep -q "the data file '.*from_files_y.csv' changed since the checkpoint was written" \
        "$d/ckdata.err"; then
        bad "resume after a data file changed: exit $rc (want 1)"; cat "$d/ckdata.err"
    else
        "$d/ckdata/t" --resume "$d/ckdata/o" --quiet >/dev/null 2>"$d/ckdata.err"
        rc=$?
        if [ $rc -ne 0 ] || [ "$(same_outputs "$d/ckdata/straight" "$d/ckdata/o")" != yes ]; then
            bad "resume with the data restored: exit $rc, not a straight run's outputs"; cat "$d/ckdata.err"
        else
            ok
        fi
    fi
    # --snapshots is part of the run: a resume keeps the run's series (it
    # stopped at the checkpoint: 7 of 21 snapshots, exit 0) and refuses
    # another interval
    "$d/ckdata/t" --quiet --snapshots 100 --out "$d/ckdata/snap_straight" >/dev/null 2>&1
    "$d/ckdata/t" --quiet --snapshots 100 --stop-after 550 --out "$d/ckdata/snap" >/dev/null 2>&1
    "$d/ckdata/t" --resume "$d/ckdata/snap" --snapshots 50 --quiet >/dev/null 2>"$d/ckdata.err"
    rc2=$?
    "$d/ckdata/t" --resume "$d/ckdata/snap" --quiet >/dev/null 2>>"$d/ckdata.err"
    rc=$?
    n1=$(find "$d/ckdata/snap/snapshots" -name 'step_*' | wc -l)
    n2=$(find "$d/ckdata/snap_straight/snapshots" -name 'step_*' | wc -l)
    if [ $rc2 -ne 2 ] || [ $rc -ne 0 ] || [ "$n2" -lt 20 ] || [ "$n1" != "$n2" ] ||
       ! diff -r "$d/ckdata/snap/snapshots" "$d/ckdata/snap_straight/snapshots" >/dev/null; then
        bad "--snapshots across a resume: exit $rc2 (want 2) with another interval, $rc without; $n1 snapshots of $n2"
        cat "$d/ckdata.err"
    else
        ok
    fi
    # removed between stop and resume: refused, naming it
    "$d/ckdata/t" --quiet --stop-after 500 --out "$d/ckdata/o2" >/dev/null 2>&1
    rm "$d/ckdata/from_files_x.csv"
    "$d/ckdata/t" --resume "$d/ckdata/o2" --quiet >/dev/null 2>"$d/ckdata.err"
    rc=$?
    if [ $rc -ne 1 ] || ! grep -q "from_files_x.csv: cannot open: No such file" "$d/ckdata.err"; then
        bad "a removed data file: exit $rc (want 1)"; cat "$d/ckdata.err"
    else
        ok
    fi
    cp tests/emit/from_files_x.csv "$d/ckdata/"   # for the full-disk case below
else
    bad "from_files does not build:"; cat "$d/ckdata.err"
fi

# ---------------------------------------------------------------- item 7
# `ibc run` on a device must end with a message, not read forever; on a
# pipe it must read the spec once (as `ibc check` does).
timeout 20 bin/ibc run /dev/zero --quiet >/dev/null 2>"$d/zero.err"
rc=$?
if [ $rc -ne 1 ] || ! grep -q "cannot read '/dev/zero': not a regular file or a pipe" "$d/zero.err"; then
    bad "ibc run /dev/zero: exit $rc (want 1, 124 is a hang):"; cat "$d/zero.err"
else
    ok
fi
cat specs/deep_hadamard.ibs | bin/ibc run /dev/stdin --steps 20 --quiet --out "$d/pipe.out" >/dev/null 2>"$d/pipe.err"
rc=$?
if [ $rc -ne 0 ] || ! grep -q '"status": "complete"' "$d/pipe.out/results.json"; then
    bad "ibc run on a pipe: exit $rc:"; cat "$d/pipe.err"
else
    ok
fi

# The trainer of the remaining cases: E5, 300 000 steps (a few seconds).
if ! bin/ibc build specs/piecewise_tv.ibs -o "$d/pw" >/dev/null 2>"$d/pw.err"; then
    bad "piecewise_tv does not build:"; cat "$d/pw.err"
    echo "faults: $pass passed, $fail failed"
    exit 1
fi
"$d/pw" --steps 300000 --quiet --out "$d/straight" >/dev/null 2>&1

# ---------------------------------------------------------------- item 4
# A second trainer with the same --out while the first runs: refused with
# status 6 and the first one's PID; the first ends with its own results.
"$d/pw" --steps 300000 --quiet --out "$d/shared" >/dev/null 2>"$d/shared1.err" &
pid=$!
t=0
while [ ! -f "$d/shared/trace_designed.csv.part" ] && [ $t -lt 600 ]; do sleep 0.05; t=$((t + 1)); done
"$d/pw" --steps 300000 --seed 7 --quiet --out "$d/shared" >/dev/null 2>"$d/shared2.err"
rc2=$?
wait $pid
rc1=$?
if [ $rc2 -ne 6 ] || ! grep -q "is in use by another run (process $pid)" "$d/shared2.err" || [ $rc1 -ne 0 ] ||
   [ "$(same_outputs "$d/straight" "$d/shared")" != yes ]; then
    bad "two trainers, one --out: second exit $rc2 (want 6), first exit $rc1, first's outputs intact: " \
        "$(same_outputs "$d/straight" "$d/shared")"; cat "$d/shared1.err" "$d/shared2.err"
else
    ok
fi

# ---------------------------------------------------------------- item 5
# Signals, each time a resumable checkpoint, exit 143 and no temporaries:
# (a) two SIGTERMs a millisecond apart (the second used to kill the
# trainer before its checkpoint: 10 runs of 10 lost); (b) SIGTERM to
# `timeout`, which passes it to the trainer and then to its whole process
# group; (c) `timeout` running out.  One of them is resumed to the end and
# compared with the straight run.
lost=0
i=0
while [ $i -lt 12 ]; do
    i=$((i + 1))
    o="$d/sig$i"
    steps=3000000   # longer than any case waits
    [ $i -eq 5 ] && steps=300000
    case $i in
    [1-4])
        "$d/pw" --steps $steps --quiet --out "$o" >/dev/null 2>"$o.err" &
        pid=$!
        t=0
        while [ ! -f "$o/trace_designed.csv.part" ] && [ $t -lt 600 ]; do sleep 0.05; t=$((t + 1)); done
        sleep "0.$i"
        kill -TERM $pid
        sleep 0.001
        kill -TERM $pid 2>/dev/null
        wait $pid
        rc=$? want=143 ;;
    [5-8])
        timeout 60 "$d/pw" --steps $steps --quiet --out "$o" >/dev/null 2>"$o.err" &
        pid=$!
        t=0
        while [ ! -f "$o/trace_designed.csv.part" ] && [ $t -lt 600 ]; do sleep 0.05; t=$((t + 1)); done
        sleep "0.$i"
        kill -TERM $pid
        wait $pid
        rc=$? want=143 ;;
    *)
        timeout "1.$i" "$d/pw" --steps $steps --quiet --out "$o" >/dev/null 2>"$o.err"
        rc=$? want=124 ;;
    esac
    if [ $rc -ne $want ] || [ ! -f "$o/checkpoint.bin" ] || ! grep -q '"status": "interrupted"' "$o/results.json" ||
       ! no_temporaries "$o"; then
        echo "signal case $i: exit $rc (want $want), left: $(ls "$o" | tr '\n' ' ')"; cat "$o.err"
        lost=$((lost + 1))
    else
        "$d/pw" --resume "$o" --stop-after 1 --quiet >/dev/null 2>>"$o.err"
        rc=$?
        if [ $rc -ne 75 ]; then
            echo "signal case $i: the checkpoint does not resume (exit $rc, want 75):"; cat "$o.err"
            lost=$((lost + 1))
        fi
    fi
done
"$d/pw" --resume "$d/sig5" --quiet >/dev/null 2>>"$d/sig5.err"
rc=$?
if [ $lost -ne 0 ] || [ $rc -ne 0 ] || [ "$(same_outputs "$d/straight" "$d/sig5")" != yes ]; then
    bad "signals: $lost of 12 runs without a resumable checkpoint; a resumed one exit $rc, same outputs:" \
        "$(same_outputs "$d/straight" "$d/sig5")"
else
    ok
fi

# Standard streams closed (`trainer >&- 2>&-`, as a careless daemon
# wrapper starts it): before, the lock file took descriptor 2 and the
# messages meant for stderr were written into DIR/.lock over its PID.
o="$d/closed_fds"
"$d/pw" --steps 300000 --out "$o" >&- 2>&-
rc=$?
if [ $rc -ne 0 ] || ! grep -qx '[0-9]*' "$o/.lock" || [ "$(same_outputs "$d/straight" "$o")" != yes ]; then
    bad "closed stdout and stderr: exit $rc, .lock holds: $(head -c 200 "$o/.lock")"
else
    ok
fi

# ---------------------------------------------------------------- SIGHUP
# The terminal going away (SIGHUP) stops a run as SIGTERM does: exit 129,
# a resumable checkpoint, results.json `"stopped_by"` SIGHUP, a message
# naming it; resumed, the outputs are a straight run's (before: killed at
# once, only `*.part` files).  Under `nohup` (SIGHUP ignored from the
# start) the run goes on to the end.
o="$d/hup"
"$d/pw" --steps 300000 --quiet --out "$o" >/dev/null 2>"$o.err" &
pid=$!
t=0
while [ ! -f "$o/trace_designed.csv.part" ] && [ $t -lt 600 ]; do sleep 0.05; t=$((t + 1)); done
sleep 0.2
kill -HUP $pid
wait $pid
rc=$?
if [ $rc -ne 129 ] || [ ! -f "$o/checkpoint.bin" ] || ! grep -q '"stopped_by": "SIGHUP' "$o/results.json" ||
   ! grep -q "SIGHUP (the terminal went away) received: checkpoint written" "$o.err" || ! no_temporaries "$o"; then
    bad "SIGHUP: exit $rc (want 129), left: $(ls "$o" | tr '\n' ' ')"; cat "$o.err"
else
    "$d/pw" --resume "$o" --quiet >/dev/null 2>>"$o.err"
    rc=$?
    if [ $rc -ne 0 ] || [ "$(same_outputs "$d/straight" "$o")" != yes ]; then
        bad "SIGHUP: the resumed run (exit $rc) differs from a straight run"; cat "$o.err"
    else
        ok
    fi
fi
# The CPU time limit (`ulimit -S -t 1`: SIGXCPU, SIGKILL only at the hard
# limit) and a batch system's warning signal (SIGUSR1, as `sbatch
# --signal`) stop a run as SIGTERM does (before: killed at once, only
# `*.part` files, exit 152 or 138); each checkpoint resumes.
for case in xcpu usr1; do
    o="$d/$case"
    if [ $case = xcpu ]; then
        (ulimit -S -t 1; exec "$d/pw" --steps 30000000 --quiet --out "$o" >/dev/null 2>"$o.err")
        rc=$? want=152 name=SIGXCPU
    else
        "$d/pw" --steps 30000000 --quiet --out "$o" >/dev/null 2>"$o.err" &
        pid=$!
        t=0
        while [ ! -f "$o/trace_designed.csv.part" ] && [ $t -lt 600 ]; do sleep 0.05; t=$((t + 1)); done
        sleep 0.2
        kill -USR1 $pid
        wait $pid
        rc=$? want=138 name=SIGUSR1
    fi
    grep -q "\"stopped_by\": \"$name" "$o/results.json" 2>/dev/null
    said=$?
    "$d/pw" --resume "$o" --stop-after 1 --quiet >/dev/null 2>>"$o.err"
    rc2=$?
    if [ $rc -ne $want ] || [ $said -ne 0 ] || [ $rc2 -ne 75 ]; then
        bad "$name: exit $rc (want $want), resumed: exit $rc2 (want 75), left: $(ls "$o" | tr '\n' ' ')"
        cat "$o.err"
    else
        ok
    fi
done
o="$d/nohup"
nohup "$d/pw" --steps 300000 --quiet --out "$o" >/dev/null 2>"$o.err" &
pid=$!
t=0
while [ ! -f "$o/trace_designed.csv.part" ] && [ $t -lt 600 ]; do sleep 0.05; t=$((t + 1)); done
kill -HUP $pid 2>/dev/null
wait $pid
rc=$?
if [ $rc -ne 0 ] || [ "$(same_outputs "$d/straight" "$o")" != yes ]; then
    bad "nohup: SIGHUP stopped the run (exit $rc, want 0)"; cat "$o.err"
else
    ok
fi
# SIGPIPE: standard output a pipe closed after one line (`trainer | head
# -1`, line-buffered by stdbuf so that the second line meets the closed
# pipe mid-run).  Before: killed by SIGPIPE after the first model, no
# results.json.  Now the lines are lost, the run is not: exit 0, the
# outputs of a straight run.
if command -v stdbuf >/dev/null 2>&1; then
    o="$d/pipe_closed"
    stdbuf -oL "$d/pw" --steps 300000 --out "$o" 2>"$o.err" | head -1 >/dev/null
    if [ ! -f "$o/results.json" ] || [ "$(same_outputs "$d/straight" "$o")" != yes ]; then
        bad "a closed standard output lost the run: $(ls "$o" | tr '\n' ' ')"; cat "$o.err"
    else
        ok
    fi
else
    echo "faults: skipped the closed-pipe case: no stdbuf here"
fi

# ---------------------------------------------------------------- item 6
# The file size limit (ulimit -f, in 512- or 1024-byte blocks by shell):
# the trainer is not killed by SIGXFSZ; results.json says which output
# failed, naming the limit; exit 1.  With --checkpoint-every the run stops
# at the first checkpoint that cannot be written, results.json says so.
for ck in "" "--checkpoint-every 500"; do
    o="$d/fsize${ck:+ck}"
    # shellcheck disable=SC2086
    (ulimit -f 32; "$d/pw" --steps 20000 $ck --quiet --out "$o" >/dev/null 2>"$o.err")
    rc=$?
    if [ $rc -ne 1 ] || ! grep -q '"status": "output_error"' "$o/results.json" 2>/dev/null ||
       ! grep -q 'File too large (the file size limit, ulimit -f, is [0-9]* bytes)' "$o/results.json" ||
       ! grep -q "ulimit -f" "$o.err"; then
        bad "file size limit ${ck:-without checkpoints}: exit $rc (want 1), results.json:" \
            "$(cat "$o/results.json" 2>/dev/null || echo missing)"; cat "$o.err"
    else
        ok
    fi
done
# A full disk (a 768 KiB tmpfs in a private mount namespace): the run
# stops at the checkpoint it cannot write, keeps the last one, results.json
# says the file system is full; with room again, --resume ends like a
# straight run.
if unshare -rm true 2>/dev/null; then
    mkdir -p "$d/disk"
    "$d/pw" --steps 20000 --quiet --out "$d/disk_straight" >/dev/null 2>&1
    unshare -rm sh tests/faults/full-disk.sh "$d/pw" "$d/disk" "$d/ckdata/t" >"$d/disk.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || [ "$(same_outputs "$d/disk_straight" "$d/disk.kept")" != yes ]; then
        bad "full disk: (exit $rc):"; cat "$d/disk.log"
    else
        ok
    fi
else
    echo "faults: skipped the full-disk case: no private mount namespace here (unshare -rm)"
fi

echo "faults: $pass passed, $fail failed"
[ $fail -eq 0 ]
