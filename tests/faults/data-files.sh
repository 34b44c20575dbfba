#!/bin/sh
# data-files.sh: faults of a trainer's data files at run time, and of its
# first loss (issue 17, items 7 and 10).  Run from the repository root
# after `make all`; part of `make e2e`.  A trainer built from
# tests/emit/from_files.ibs (its CSV files copied beside it) must refuse,
# with exit status 1 and a message naming the file and the fault, and
# within seconds (a FIFO used to block forever, /dev/zero to fill memory):
#   - X.csv replaced by a FIFO, or by a symbolic link to /dev/zero;
#   - X.csv holding a value whose square overflows (1e308);
#   - X.csv with fewer samples than the spec's minibatch of 8.
# tests/faults/initial_overflow.ibs: a first loss that is already infinite
# stops with status 3 and a message that does not blame the learning rate.
set -u
pass=0 fail=0
dir=build/faults
rm -rf "$dir"
mkdir -p "$dir/data"
cp tests/emit/from_files.ibs tests/emit/from_files_x.csv tests/emit/from_files_y.csv "$dir/data/"
if ! bin/ibc build "$dir/data/from_files.ibs" -o "$dir/from_files" >"$dir/build.out" 2>&1; then
    echo "FAIL data-files: the trainer does not build:"; cat "$dir/build.out"; exit 1
fi
x="$dir/data/from_files_x.csv"
cp "$x" "$dir/x.good"
# expect NAME WANT-STATUS TEXT: runs the trainer (at most 60 s) and checks
# its exit status and that its stderr holds TEXT
expect() {
    timeout -s KILL 60 "$dir/from_files" --steps 10 --quiet --out "$dir/out.$1" >/dev/null 2>"$dir/$1.err"
    rc=$?
    if [ $rc -ne "$2" ] || { [ -n "$3" ] && ! grep -qF -- "$3" "$dir/$1.err"; }; then
        echo "FAIL data-files $1: exit $rc (want $2), stderr:"; cat "$dir/$1.err"; echo "(wanted: $3)"
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
}
expect good 0 ""
rm -f "$x"; mkfifo "$x"
expect fifo 1 "from_files_x.csv: cannot read: a FIFO (named pipe), not a regular file; data and operator files must be regular files"
rm -f "$x"; ln -s /dev/zero "$x"
expect dev_zero 1 "from_files_x.csv: cannot read: a character device, not a regular file"
rm -f "$x"; { head -n 3 "$dir/x.good"; echo "1,1e308,0,0"; tail -n +5 "$dir/x.good"; } > "$x"
expect huge_value 1 "from_files_x.csv:4:3: cell 2 is '1e308', beyond the largest magnitude 1e+154 that data may have"
head -n 3 "$dir/x.good" > "$x"; head -n 3 "$dir/data/from_files_y.csv" > "$dir/y.short"
cp "$dir/data/from_files_y.csv" "$dir/y.good"; cp "$dir/y.short" "$dir/data/from_files_y.csv"
expect few_samples 1 "from_files_x.csv has 3 samples, fewer than the batch of 8 drawn each step: set the spec's batch to at most 3, or batch = full"
cp "$dir/y.good" "$dir/data/from_files_y.csv"
if ! bin/ibc build tests/faults/initial_overflow.ibs -o "$dir/initial_overflow" >"$dir/build2.out" 2>&1; then
    echo "FAIL initial_overflow: does not build:"; cat "$dir/build2.out"; fail=$((fail + 1))
else
    "$dir/initial_overflow" --quiet --out "$dir/out.initial" >/dev/null 2>"$dir/initial.err"
    rc=$?
    if [ $rc -ne 3 ] || ! grep -qF "the loss at the initial parameters is inf, before any step: not the learning rate" \
            "$dir/initial.err" || grep -q "learning rate .* is likely too large" "$dir/initial.err"; then
        echo "FAIL initial_overflow: exit $rc (want 3), stderr:"; cat "$dir/initial.err"; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
fi
echo "data-files: $pass passed, $fail failed"
[ $fail -eq 0 ]
