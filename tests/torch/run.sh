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
rm -rf "$dir"
mkdir -p "$dir"
if ! /usr/bin/python3 -c 'import torch' 2>"$dir/import.err"; then
    echo "torch: SKIPPED: /usr/bin/python3 cannot import torch: $(tail -n 1 "$dir/import.err")"
    echo "       (scripts/install-deps.sh installs python3-torch from Debian; apt could not): nothing was compared"
    exit 0
fi
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
# derivations whose bias has no closed form (no minimum, not attained,
# numeric): predicted_bias must say why it leaves them out
bias_only=""
for spec in tests/sym/u_over_v.ibs tests/sym/u2vw.ibs tests/sym/degree1.ibs; do
    n=$(basename "$spec" .ibs)
    if bin/ibc emit --target torch "$spec" -o "$dir/bias_$n.py" 2>"$dir/bias_$n.err"; then
        bias_only="$bias_only $dir/bias_$n.py"
    else
        echo "FAIL $spec: does not export:"; cat "$dir/bias_$n.err"; fail=1
    fi
done
IBC=bin/ibc IBC_VERIFY="$verify" IBC_BIAS_ONLY="$bias_only" /usr/bin/python3 tests/torch/test_torch.py "$dir" $names || fail=1
# Issue 19's "done when", literally: the module exported by the command a
# user types, imported by a user's script (tests/torch/user_tv.py) that
# registers the design on its own nn.Linear's weight, trains with
# torch.optim.SGD and writes snapshots with the module's write_snapshot;
# then ibc verify reports chi's mechanism and the ratio against both
# predictions.  Twice: factors drawn from the spec's initialisation
# (register_design) and balanced from the layer's weight
# (register_parametrization(layer, "weight", tv.Reparam()): chi = 0).
u="$dir/user_tv"
mkdir -p "$u"
if bin/ibc emit --target torch specs/piecewise_tv.ibs -o "$u/tv.py" 2>"$u/emit.err"; then
    for how in drawn balanced; do
        flag=""; [ $how = balanced ] && flag=--balanced
        out="$u/$how.out"
        if /usr/bin/python3 tests/torch/user_tv.py "$u/tv.py" "$u/$how" --steps 300 --every 10 $flag >"$out" 2>&1 &&
           bin/ibc verify specs/piecewise_tv.ibs "$u/$how" >>"$out" 2>&1 &&
           grep -Eq "^verified: .*31 snapshots \(steps 0 to 300\); chi \(family 1\): (conserved|driven)" "$out" &&
           grep -Eq "^ratio_median +[0-9.e+-]+$" "$out" &&
           grep -Eq "^ratio_pred_logdet_min +1$" "$out" && grep -Eq "^ratio_pred_dual_slice +1$" "$out"; then
            echo "torch: done-when ($how factors): $(grep '^verified:' "$out" | sed 's/.*; //'), ratio median" \
                 "$(awk '/^ratio_median/ {print $2}' "$out") against the predictions 1 (log det G min) and 1 (dual slice)"
        else
            echo "FAIL done-when ($how factors): tests/torch/user_tv.py and ibc verify:"; cat "$out"; fail=1
        fi
    done
else
    echo "FAIL done-when: ibc emit --target torch specs/piecewise_tv.ibs:"; cat "$u/emit.err"; fail=1
fi
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
