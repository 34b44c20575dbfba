#!/bin/sh
# run.sh: the PyTorch export against the C trainer (test_torch.py says
# what is compared), for every spec in specs/ and the code-generation
# specs of tests/emit/.  Each spec's trainer is compiled once, with
# harness.c around it, exactly as `ibc build` compiles trainers (its
# flags, warnings as errors); it trains 100 steps writing snapshots every
# 10 and probes its initial point; one Python process then checks every
# spec (torch is imported once).  Skipped, saying so, when
# python3-torch is not installed.
set -u
dir=build/torch
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "torch: SKIPPED: python3-torch is not installed (scripts/install-deps.sh installs it from Debian; apt could not)"
    exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
tcflags=$(bin/ibc build --print-cflags) && tlibs=$(bin/ibc build --print-libs) || exit 1
names="" fail=0 verify=""
# ibc verify is tested on these (tests/torch/test_torch.py, item 5): a
# design on fixed data, a user's nn.Linear carrying it, GL junctions of a
# chain, a minibatch torus from an unbalanced start, a masked matrix output
VERIFY="spectral_sparse piecewise_tv deep_linear shallow_relu matrix_completion"
for spec in specs/*.ibs tests/emit/*.ibs; do
    n=$(basename "$spec" .ibs)
    if ! bin/ibc emit --target torch "$spec" -o "$dir/$n.py" 2>"$dir/$n.err" ||
       ! bin/ibc emit "$spec" -o "$dir/$n.c" 2>>"$dir/$n.err" ||
       ! cc $tcflags -Werror -DIBC_TRAINER="\"$n.c\"" -I"$dir" tests/torch/harness.c $tlibs -o "$dir/$n" 2>>"$dir/$n.err"; then
        echo "FAIL $n: does not export or build:"; cat "$dir/$n.err"; fail=1; continue
    fi
    if ! "$dir/$n" train --steps 100 --snapshots 10 --quiet --out "$dir/$n.run" >/dev/null 2>"$dir/$n.err" ||
       ! "$dir/$n" probe "$dir/$n.run" "$dir/$n.probe" 2>>"$dir/$n.err"; then
        echo "FAIL $n: the trainer's run or probe:"; cat "$dir/$n.err"; fail=1; continue
    fi
    names="$names $n"
    # ibc verify's specs: the trainer again, with every step's snapshot
    case " $VERIFY " in *" $n "*)
        if "$dir/$n" train --steps 100 --snapshots 1 --quiet --out "$dir/$n.full" >/dev/null 2>"$dir/$n.err"; then
            verify="$verify $spec:$n"
        else
            echo "FAIL $n: the trainer's run with --snapshots 1:"; cat "$dir/$n.err"; fail=1
        fi ;;
    esac
done
# A deliberately wrong reverse pass in the C trainer (IBC_FAULT=grad: the
# output's adjoint times 1.01) must fail the comparison (its own checks
# fail too: exit status 4 is expected).
f=spectral_sparse_fault
cp "$dir/spectral_sparse.py" "$dir/$f.py"
if IBC_FAULT=grad bin/ibc emit specs/spectral_sparse.ibs -o "$dir/$f.c" &&
   cc $tcflags -DIBC_TRAINER="\"$f.c\"" -I"$dir" tests/torch/harness.c $tlibs -o "$dir/$f" 2>"$dir/$f.err"; then
    "$dir/$f" train --steps 100 --snapshots 10 --quiet --out "$dir/$f.run" >/dev/null 2>&1
    "$dir/$f" probe "$dir/$f.run" "$dir/$f.probe" && names="$names !$f"
fi
case "$names" in *"!$f"*) ;; *) echo "FAIL $f: the faulty trainer did not build or run"; cat "$dir/$f.err"; fail=1 ;; esac
IBC=bin/ibc IBC_VERIFY="$verify" /usr/bin/python3 tests/torch/test_torch.py "$dir" $names || fail=1
# docs/interop.md's example script, shortened: it trains a user's
# nn.Linear carrying the E4 design, and ibc verify passes on its snapshots
# (every step with its gradient: the finite-step identity included)
e="$dir/e4_example"
if /usr/bin/python3 docs/examples/e4_pytorch.py "$dir/spectral_sparse.py" "$e" --steps 100 --every 1 --grads \
       >"$e.out" 2>&1 && bin/ibc verify specs/spectral_sparse.ibs "$e" >>"$e.out" 2>&1 &&
   grep -q "finite-step identity, group 1 (designed) .* PASS" "$e.out"; then
    echo "torch: docs/examples/e4_pytorch.py runs and ibc verify passes on its snapshots"
else
    echo "FAIL docs/examples/e4_pytorch.py:"; cat "$e.out"; fail=1
fi
exit $fail
