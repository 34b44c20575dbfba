#!/bin/sh
# tests/faults/full-disk.sh TRAINER DIR [SMALL_TRAINER]: run by tests/faults/run.sh under
# `unshare -rm` (a private mount namespace): a 768 KiB tmpfs on DIR fills
# up during a run of E5 with --checkpoint-every; the run must stop with
# exit 1, keep its last checkpoint, and leave a results.json that says the
# file system is full.  Then, with room again, --resume must finish; its
# outputs go to DIR.kept, which run.sh compares with a straight run.
# Then the same disk without checkpoints: results.json names the traces
# that did not fit.
set -u
pw=$1 dir=$2
mount -t tmpfs -o size=768k tmpfs "$dir" || { echo "cannot mount a tmpfs on $dir"; exit 1; }
"$pw" --steps 20000 --checkpoint-every 500 --quiet --out "$dir/o" >/dev/null 2>"$dir.err"
rc=$?
cat "$dir.err"
if [ $rc -ne 1 ] || [ ! -f "$dir/o/checkpoint.bin" ] || ! grep -q '"status": "output_error"' "$dir/o/results.json" ||
   ! grep -q 'No space left on device (the file system holding it is full)' "$dir/o/results.json"; then
    echo "full disk: exit $rc (want 1), left: $(ls -a "$dir/o" | tr '\n' ' ')"
    cat "$dir/o/results.json" 2>/dev/null
    exit 1
fi
mount -o remount,size=16m "$dir" || exit 1
"$pw" --resume "$dir/o" --quiet >/dev/null || { echo "full disk: --resume with room again failed"; exit 1; }
rm -rf "$dir.kept"
cp -r "$dir/o" "$dir.kept"
# Without checkpoints: the traces that do not fit are named in results.json
# (written into the space held back), exit 1.
rm -rf "$dir/o"
mount -o remount,size=768k "$dir" || exit 1
"$pw" --steps 20000 --quiet --out "$dir/o" >/dev/null 2>"$dir.err"
rc=$?
cat "$dir.err"
if [ $rc -ne 1 ] || ! grep -q '"status": "output_error", "output_errors": \["cannot write .*trace_designed.csv'"'"': No space left on device (the file system holding it is full)' "$dir/o/results.json"; then
    echo "full disk without checkpoints: exit $rc (want 1), left: $(ls -a "$dir/o" | tr '\n' ' ')"
    cat "$dir/o/results.json" 2>/dev/null
    exit 1
fi
# The disk filling at the very end (adversarial pass, round 3): a small
# trainer ($3) on a tmpfs of every size from 256 to 300 KiB (the 256 KiB
# held back, then room for some, all or all but one of its outputs).  At
# every size results.json must be there, "complete" with exit 0 or
# "output_error" with exit 1.  Before: at the size where every other
# output fitted, results.json itself was lost (exit 1), as the space held
# back was given back only after a failed output.
if [ -n "${3:-}" ]; then
    kb=256
    while [ $kb -le 300 ]; do
        rm -rf "$dir/o"
        mount -o remount,size=${kb}k "$dir" || exit 1
        "$3" --quiet --out "$dir/o" >/dev/null 2>"$dir.err"
        rc=$?
        if ! { [ $rc -eq 0 ] && grep -q '"status": "complete"' "$dir/o/results.json"; } &&
           ! { [ $rc -eq 1 ] && grep -q '"status": "output_error"' "$dir/o/results.json"; }; then
            echo "a ${kb} KiB disk: exit $rc and no results.json saying so; left: $(ls -a "$dir/o" | tr '\n' ' ')"
            cat "$dir.err"
            exit 1
        fi
        kb=$((kb + 4))
    done
fi
