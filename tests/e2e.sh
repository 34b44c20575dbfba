#!/bin/sh
# e2e.sh: every spec in specs/ is emitted, compiled with -Wall -Wextra
# -Werror, and trained for a shortened run; the trainer must exit 0 (all
# its checks pass) and write results.json and its traces.  tests/emit/
# holds specs made to break code generation (hostile names and strings,
# every operation of the language).  Every model's analytic gradient must
# match central differences (--gradcheck, relative error <= the spec's
# gradient_tol, 1e-6 by default).  The same seed twice must give identical
# results (wall time aside).
set -u
pass=0 fail=0
dir=build/e2e
mkdir -p "$dir"
for spec in specs/*.ibs tests/emit/*.ibs; do
    n=$(basename "$spec" .ibs)
    if ! bin/ibc emit "$spec" -o "$dir/$n.c" ||
       ! cc -std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime -I/usr/include/x86_64-linux-gnu \
            "$dir/$n.c" build/libibrt.a -llapacke -lopenblas -lm -o "$dir/$n"; then
        echo "FAIL $n: does not build"; fail=$((fail + 1)); continue
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
    strip() { sed 's/"wall_seconds": [^,]*,//' "$1"; }
    if [ "$(strip "$dir/$n.a/results.json")" != "$(strip "$dir/$n.b/results.json")" ]; then
        echo "FAIL $n: the same seed gave different results"; fail=$((fail + 1)); continue
    fi
    pass=$((pass + 1))
done
# A deliberately wrong derivation must make the trainer's checks fail
# (exit status 4): IBC_FAULT=alpha flips a generator exponent,
# IBC_FAULT=coef changes a Cauchy-Binet coefficient.
for fault in alpha coef; do
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
echo "e2e: $pass passed, $fail failed"
[ $fail -eq 0 ]
