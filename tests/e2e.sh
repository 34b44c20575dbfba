#!/bin/sh
# e2e.sh: every spec in specs/ is emitted, compiled with -Wall -Wextra
# -Werror, and trained for a shortened run; the trainer must exit 0 (all
# its checks pass) and write results.json and its traces.  tests/emit/
# holds specs made to break code generation (hostile names and strings,
# every operation of the language).  Every model's analytic gradient must
# match central differences (--gradcheck, relative error <= the spec's
# gradient_tol, 1e-6 by default).  The same seed twice must give identical
# results (wall time aside).  The PyTorch export of every spec must be
# Python that compiles (tests/torch/run.sh compares it with the trainer).
set -u
pass=0 fail=0
. tests/lib.sh   # strip, same_outputs
dir=build/e2e
mkdir -p "$dir"
# Trainers are compiled exactly as `ibc build` compiles them (its flags,
# -march=native included), with warnings as errors; the sanitizer build
# adds its flags after them and links the sanitizer runtime library.
tcflags=$(bin/ibc build --print-cflags) && tlibs=$(bin/ibc build --print-libs) || exit 1
alibs=$(echo "$tlibs" | sed 's|/build/libibrt\.a|/build/asan/libibrt.a|')
# $IBC_CFLAGS too long for the flag list: an error, never a shortened list
long=$(i=0; while [ $i -lt 70 ]; do printf -- '-DIBC_W%d ' $i; i=$((i + 1)); done)
if IBC_CFLAGS="$long" bin/ibc build --print-cflags >"$dir/longflags.out" 2>"$dir/longflags.err" ||
    ! grep -q 'IBC_CFLAGS is too long' "$dir/longflags.err" || [ -s "$dir/longflags.out" ]; then
    echo "FAIL \$IBC_CFLAGS of 70 words: not refused with a message"; cat "$dir/longflags.err"; fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
for spec in specs/*.ibs tests/emit/*.ibs; do
    n=$(basename "$spec" .ibs)
    # emitted by the sanitizer build of the compiler: the code generator
    # itself runs under ASan + UBSan on every spec
    if ! build/asan/ibc emit "$spec" -o "$dir/$n.c" 2>"$dir/$n.emit.err" ||
       ! cc $tcflags -Werror "$dir/$n.c" $tlibs -o "$dir/$n"; then
        echo "FAIL $n: does not build:"; cat "$dir/$n.emit.err"; fail=$((fail + 1)); continue
    fi
    # the PyTorch export of every spec, by the sanitizer build too, must be
    # Python that compiles (tests/torch/run.sh runs it against the trainer)
    if ! build/asan/ibc emit --target torch "$spec" -o "$dir/$n.py" 2>"$dir/$n.emit.err" ||
       ! /usr/bin/python3 -m py_compile "$dir/$n.py" 2>>"$dir/$n.emit.err"; then
        echo "FAIL $n: the PyTorch export:"; cat "$dir/$n.emit.err"; fail=$((fail + 1)); continue
    fi
    if ! "$dir/$n" --gradcheck --out "$dir/$n.gc" >"$dir/$n.gc.out" 2>&1 ||
       ! grep -q "gradcheck .*PASS" "$dir/$n.gc.out"; then
        echo "FAIL $n: gradient check:"; cat "$dir/$n.gc.out"; fail=$((fail + 1)); continue
    fi
    for run in a b; do
        if ! "$dir/$n" --steps 300 --quiet --out "$dir/$n.$run" >/dev/null 2>"$dir/$n.$run.err"; then
            echo "FAIL $n: trainer exited non-zero:"; cat "$dir/$n.$run.err"; fail=$((fail + 1)); continue 2
        fi
    done
    if [ ! -s "$dir/$n.a/results.json" ] || ! ls "$dir/$n.a"/trace_*.csv >/dev/null 2>&1; then
        echo "FAIL $n: results.json or traces missing"; fail=$((fail + 1)); continue
    fi
    if [ "$(strip "$dir/$n.a/results.json")" != "$(strip "$dir/$n.b/results.json")" ]; then
        echo "FAIL $n: the same seed gave different results"; fail=$((fail + 1)); continue
    fi
    # the same trainer under ASan + UBSan (runtime built with them too):
    # a short run writing a snapshot every step, --verify on each model's
    # snapshots (ibc verify; every check must pass, the finite-step identity
    # included), plus a stop at a checkpoint and its resumption
    rm -rf "$dir/$n.asan.out"
    if ! cc $tcflags -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all \
            "$dir/$n.c" $alibs -o "$dir/$n.asan" ||
       ! ASAN_OPTIONS=detect_leaks=1 "$dir/$n.asan" --steps 60 --snapshots 1 --quiet --out "$dir/$n.asan.out" >/dev/null 2>"$dir/$n.asan.err"; then
        echo "FAIL $n: under ASan/UBSan:"; cat "$dir/$n.asan.err"; fail=$((fail + 1)); continue
    fi
    for snaps in "$dir/$n.asan.out"/snapshots/*; do
        if ! ASAN_OPTIONS=detect_leaks=1 "$dir/$n.asan" --verify "$snaps" --quiet >/dev/null 2>"$dir/$n.asan.err" ||
           ! grep -q '"status": "complete"' "$snaps/verify/results.json"; then
            echo "FAIL $n: --verify $snaps under ASan/UBSan:"; cat "$dir/$n.asan.err"; fail=$((fail + 1)); continue 2
        fi
    done
    rm -rf "$dir/$n.asan.ck"
    ASAN_OPTIONS=detect_leaks=1 "$dir/$n.asan" --steps 60 --stop-after 45 --quiet --out "$dir/$n.asan.ck" >/dev/null 2>"$dir/$n.asan.err"
    rc=$?
    if [ $rc -ne 75 ] || ! ASAN_OPTIONS=detect_leaks=1 "$dir/$n.asan" --resume "$dir/$n.asan.ck" --quiet >/dev/null 2>>"$dir/$n.asan.err"; then
        echo "FAIL $n: checkpoint/resume under ASan/UBSan (stop exit $rc):"; cat "$dir/$n.asan.err"; fail=$((fail + 1)); continue
    fi
    pass=$((pass + 1))
done
# The whole model's symmetry group: two networks that share no parameter
# (tests/emit/two_nets.ibs) get the check that the Gram matrix of all
# their generators is block diagonal; a chain (deep_linear, coupled
# through W2) reports the joint log det without it, and it differs from
# the sum of the groups' own; its loss trace follows ||C||_F of both
# junctions (each row after that step's update) to the C_fro_end metrics.
if ! /usr/bin/python3 -c 'import json,sys; c=[c for c in json.load(open(sys.argv[1]))["checks"] if c["name"].startswith("whole-group log det G = sum over groups")]; sys.exit(not (len(c) == 1 and c[0]["pass"] and c[0]["tolerance"] == 1e-9))' "$dir/two_nets.a/results.json"; then
    echo "FAIL two_nets: no passing whole-group log det check"; fail=$((fail + 1))
elif grep -q 'whole-group log det G' "$dir/deep_linear.a/results.json" ||
     ! /usr/bin/python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["metrics"]; j=m["logdet_G_group_end"]; s=m["logdet_G_group_sum_end"]; sys.exit(not abs(j - s) > 1e-6 * max(1, abs(j)))' "$dir/deep_linear.a/results.json"; then
    echo "FAIL deep_linear: a coupled chain must report a joint log det G different from the sum over its groups, unchecked"; fail=$((fail + 1))
elif ! /usr/bin/python3 -c '
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/trace_model.csv")))
m = json.load(open(d + "/results.json"))["metrics"]
bad = [g for g in (1, 2) if abs(float(rows[-1]["C_fro_group%d" % g]) - m["C_fro_end_group%d" % g]) > 1e-8 * m["C_fro_end_group%d" % g]]
sys.exit(1 if bad else 0)
' "$dir/deep_linear.a"; then
    echo "FAIL deep_linear: the loss trace's ||C||_F columns do not end at the C_fro_end metrics"; fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
# A deliberately wrong derivation must make the trainer's checks fail
# (exit status 4): IBC_FAULT=alpha flips a generator exponent,
# IBC_FAULT=coef changes a Cauchy-Binet coefficient, IBC_FAULT=quad makes
# a conserved quadratic of the finite-step identity a wrong one.
for fault in alpha coef quad; do
    if ! IBC_FAULT=$fault bin/ibc build specs/deep_hadamard.ibs -o "$dir/fault_$fault" >/dev/null 2>&1; then
        echo "FAIL fault $fault: does not build"; fail=$((fail + 1)); continue
    fi
    "$dir/fault_$fault" --steps 50 --quiet --out "$dir/fault_$fault.out" >/dev/null 2>&1
    rc=$?
    if [ $rc -ne 4 ]; then
        echo "FAIL fault $fault: the trainer's checks did not catch a wrong derivation (exit $rc)"; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
# The joint det G of coupled groups (tests/emit/relu2_small.ibs: two
# torus families sharing W2): the trainer's row "log det G = derived
# polynomial" must pass on the spec's own derivation (run above) and fail
# (exit 4) with IBC_FAULT=jdet, which adds 1 to the polynomial's first
# coefficient.
if ! /usr/bin/python3 -c 'import json,sys; c=[c for c in json.load(open(sys.argv[1]))["checks"] if c["name"].startswith("log det G = derived polynomial, coupled groups 1, 2")]; sys.exit(not (len(c) == 1 and c[0]["pass"] and c[0]["tolerance"] == 1e-9))' "$dir/relu2_small.a/results.json"; then
    echo "FAIL relu2_small: no passing check of the joint det G polynomial"; fail=$((fail + 1))
elif ! IBC_FAULT=jdet bin/ibc build tests/emit/relu2_small.ibs -o "$dir/fault_jdet" >/dev/null 2>&1; then
    echo "FAIL fault jdet: does not build"; fail=$((fail + 1))
else
    "$dir/fault_jdet" --steps 50 --quiet --out "$dir/fault_jdet.out" >/dev/null 2>&1
    rc=$?
    if [ $rc -ne 4 ] || ! grep -q '"name": "log det G = derived polynomial, coupled groups 1, 2 (model)", [^}]*"pass": false' "$dir/fault_jdet.out/results.json"; then
        echo "FAIL fault jdet: the trainer did not catch a wrong joint det G polynomial (exit $rc)"; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
fi
# A wrong reverse pass (IBC_FAULT=grad seeds it with 2.02 r for 2 r) must
# make --gradcheck fail with status 5.
if ! IBC_FAULT=grad bin/ibc build specs/spectral_sparse.ibs -o "$dir/fault_grad" >/dev/null 2>&1; then
    echo "FAIL fault grad: does not build"; fail=$((fail + 1))
else
    "$dir/fault_grad" --gradcheck --out "$dir/fault_grad.out" >/dev/null 2>&1
    rc=$?
    if [ $rc -ne 5 ]; then
        echo "FAIL fault grad: --gradcheck did not catch a wrong gradient (exit $rc)"; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
fi
# Numerical faults: tests/faults/diverge.ibs (a learning rate far too
# large) must stop with status 3, name the model, the step and the
# learning rate, and keep its partial results, traces and parameters.
if ! bin/ibc build tests/faults/diverge.ibs -o "$dir/diverge" >/dev/null 2>&1; then
    echo "FAIL diverge: does not build"; fail=$((fail + 1))
else
    rm -rf "$dir/diverge.out"
    "$dir/diverge" --quiet --out "$dir/diverge.out" >/dev/null 2>"$dir/diverge.err"
    rc=$?
    if [ $rc -ne 3 ] || ! grep -q "model 'model' diverged at step [0-9]*: .*learning rate 20" "$dir/diverge.err" ||
       ! grep -q '"status": "diverged"' "$dir/diverge.out/results.json" ||
       [ ! -s "$dir/diverge.out/trace_model.csv" ] || [ ! -s "$dir/diverge.out/model_w.npy" ]; then
        echo "FAIL diverge: exit $rc, or message/partial results missing:"; cat "$dir/diverge.err"; fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
fi
# Long runs: a trainer stopped by SIGTERM in the middle of training writes
# a checkpoint and partial results (exit 143); --resume then ends with the
# same parameters, traces and results (wall time aside) as a straight run.
n=piecewise_tv
rm -rf "$dir/sig.a" "$dir/sig.b"
"$dir/$n" --steps 300000 --quiet --out "$dir/sig.a" >/dev/null 2>&1
"$dir/$n" --steps 300000 --quiet --out "$dir/sig.b" >/dev/null 2>"$dir/sig.err" &
pid=$!
sleep 0.5
kill -TERM $pid
wait $pid
rc=$?
"$dir/$n" --resume "$dir/sig.b" --quiet >/dev/null 2>>"$dir/sig.err"
rc2=$?
same=$(same_outputs "$dir/sig.a" "$dir/sig.b")
if [ $rc -ne 143 ] || [ $rc2 -ne 0 ] || [ $same != yes ]; then
    echo "FAIL signal/resume: stopped with $rc (want 143), resumed with $rc2, same outputs: $same"; cat "$dir/sig.err"
    fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
# A run killed (SIGKILL, no handler) right after its first model finished,
# with --checkpoint-every: the checkpoint written after that model's
# outputs points at the next model, so --resume still ends like a straight
# run (here --checkpoint-every equals the step count: no checkpoint inside
# the second model's run, the case where an older checkpoint would point at
# the finished model's renamed traces).
rm -rf "$dir/kill.b"
"$dir/$n" --steps 300000 --quiet --checkpoint-every 300000 --out "$dir/kill.b" >/dev/null 2>&1 &
pid=$!
t=0
while [ ! -f "$dir/kill.b/trace_designed.csv" ] && [ $t -lt 600 ]; do sleep 0.05; t=$((t + 1)); done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"$dir/$n" --resume "$dir/kill.b" --quiet >/dev/null 2>"$dir/kill.err"
rc=$?
same=$(same_outputs "$dir/sig.a" "$dir/kill.b")
if [ $rc -ne 0 ] || [ $same != yes ]; then
    echo "FAIL kill between models/resume: resumed with $rc, same outputs: $same"; cat "$dir/kill.err"; fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
# An output that cannot be written (the file size limit, SIGXFSZ not
# ignored by this shell: the trainer must ignore it itself) makes the
# trainer exit 1, not 0, and results.json says which output and why.
rm -rf "$dir/fsize"
(ulimit -f 16; "$dir/$n" --steps 2000 --quiet --out "$dir/fsize" >/dev/null 2>"$dir/fsize.err")
rc=$?
if [ $rc -ne 1 ] || ! grep -q "cannot write .*ulimit -f" "$dir/fsize.err" ||
   ! grep -q '"status": "output_error", "output_errors": \["cannot write' "$dir/fsize/results.json"; then
    echo "FAIL unwritable output: exit $rc (want 1):"; cat "$dir/fsize.err"; fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
# Memory: trainers under valgrind memcheck, zero errors and no leaks,
# including a stop at a checkpoint and its resumption.  valgrind (3.19)
# decodes no AVX-512 instruction, so on a machine that has AVX-512 the
# -march=native trainer stops with SIGILL under it: the memcheck builds add
# -mno-avx512f after the trainer flags (on such a machine they run the AVX2
# path; elsewhere the flag changes nothing), and OpenBLAS is pinned to a
# core type valgrind decodes.  The AVX-512 path itself runs in every test
# above and under the sanitizers.
for n in spectral_sparse matrix_completion shallow_relu piecewise_tv; do
    cc $tcflags -mno-avx512f -Werror "$dir/$n.c" $tlibs -o "$dir/$n.vgbin" ||
        { echo "FAIL valgrind $n: the memcheck build"; fail=$((fail + 1)); }
done
vg() {
    OPENBLAS_CORETYPE=Haswell OPENBLAS_NUM_THREADS=1 valgrind -q --error-exitcode=99 --leak-check=full \
        --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible "$@"
}
for n in spectral_sparse matrix_completion shallow_relu; do
    if vg "$dir/$n.vgbin" --steps 100 --quiet --out "$dir/$n.vg" >/dev/null 2>"$dir/$n.vg.err"; then
        pass=$((pass + 1))
    else
        echo "FAIL valgrind $n:"; cat "$dir/$n.vg.err"; fail=$((fail + 1))
    fi
done
rm -rf "$dir/vg.ckpt"
vg "$dir/piecewise_tv.vgbin" --steps 200 --stop-after 150 --quiet --out "$dir/vg.ckpt" >/dev/null 2>"$dir/vg.ckpt.err"
rc=$?
if [ $rc -eq 75 ] && vg "$dir/piecewise_tv.vgbin" --resume "$dir/vg.ckpt" --quiet >/dev/null 2>>"$dir/vg.ckpt.err"; then
    pass=$((pass + 1))
else
    echo "FAIL valgrind checkpoint/resume (stop exit $rc):"; cat "$dir/vg.ckpt.err"; fail=$((fail + 1))
fi
# The command line: an unknown option is a usage error (status 2), not a
# file that cannot be read (1).
bin/ibc check --bogus 2>/dev/null
rc=$?
if [ $rc -ne 2 ]; then
    echo "FAIL ibc check --bogus: exit $rc (want 2)"; fail=$((fail + 1))
else
    pass=$((pass + 1))
fi
echo "e2e: $pass passed, $fail failed"
[ $fail -eq 0 ]
