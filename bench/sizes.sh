#!/bin/sh
# bench/sizes.sh (make bench-sizes): how the trainers scale.  Matrix
# completion (specs/matrix_completion.ibs with dim n and rank n), E4
# (specs/spectral_sparse.ibs with n features, test set cut to 1000) and
# attention (specs/attention.ibs with sequence length T), each at several
# sizes: per-step time (the training loop's own rate, without the fixed
# costs of a run; best of REPS runs, default 2), the step's floating-point
# operations (counted below, per spec), GFLOP/s,
# and that rate as a fraction of this machine's one-thread BLAS rate
# (bench/blasrate.c: dgemm for the products of matrix completion and
# attention, dgemv for E4's matrix-vector products).  One OpenBLAS
# thread.  SIZES_MAX (default 500) caps matrix completion's n: at 1000 the
# fixed costs (the sampled gradient check's 3700 loss evaluations of 2e9
# flops each) take minutes.
set -eu
reps=${REPS:-2}
nmax=${SIZES_MAX:-500}
dir=build/bench/sizes
mkdir -p "$dir"
cc $(bin/ibc build --print-cflags) bench/blasrate.c $(bin/ibc build --print-libs) -o "$dir/blasrate"
rates=$(OPENBLAS_NUM_THREADS=1 "$dir/blasrate")
gemm=$(echo "$rates" | awk '/dgemm/ {print $2}')
gemv=$(echo "$rates" | awk '/dgemv/ {print $2}')
echo "this machine, one thread: dgemm $gemm GFLOP/s (n = 1000), dgemv $gemv GFLOP/s (n = 4000)"
echo
printf '%-18s %6s %6s %12s %14s %9s %12s\n' spec size steps "us/step" "FLOP/step" "GFLOP/s" "of BLAS rate"

# row NAME SIZE SPECFILE FLOPS STEPS RATE: run S steps and print a row.
# us/step is the training loop's own rate (the trainer's steps/s column,
# which leaves out the fixed costs of a run: data, the checks at the start
# and the end, metrics, references), averaged over the models it trains;
# the best of REPS runs.
row() {
    n=$1 size=$2 spec=$3 flops=$4 steps=$5 rate=$6
    bin/ibc build "$spec" -o "$dir/$n.$size" >/dev/null 2>&1
    best=""
    for rep in $(seq "$reps"); do
        us=$(OPENBLAS_NUM_THREADS=1 "$dir/$n.$size" --steps "$steps" --out "$dir/$n.$size.out" 2>/dev/null |
             awk '/^model +final loss +steps\/s/ { on = 1; next } on && NF == 3 { s += 1e6 / $3; m++ } on && NF == 0 { exit }
                  END { if (m) print s / m; else print "nan" }')
        best=$(awk -v a="$us" -v b="$best" 'BEGIN { print (b == "" || a < b) ? a : b }')
    done
    awk -v n="$n" -v size="$size" -v steps="$steps" -v us="$best" -v flops="$flops" -v rate="$rate" 'BEGIN {
        g = flops / us / 1e3
        printf "%-18s %6d %6d %12.2f %14.0f %9.2f %11.1f%%\n", n, size, steps, us, flops, g, 100 * g / rate }'
}

# Matrix completion, Z = U V' with U, V n x n: a forward product and two
# gradient products (6 n^3 flops), and the finite-step identity's two Gram
# products of the gradients (4 n^3); the loss and the update are O(n^2).
for n in 20 50 100 200 500 1000; do
    [ "$n" -le "$nmax" ] || continue
    sed "s/^dim n = .*/dim n = $n/; s/rank = 20/rank = $n/" specs/matrix_completion.ibs >"$dir/mc$n.ibs"
    steps=$(awk -v n="$n" 'BEGIN { s = int(1e10 / (6 * n * n * n)); print (s < 4 ? 4 : (s > 20000 ? 20000 : s)) }')
    row matrix_completion "$n" "$dir/mc$n.ibs" "$(awk -v n="$n" 'BEGIN { print 10 * n * n * n }')" "$steps" "$gemm"
done
# E4: 32 samples of n features, full batch, three models (designed
# w = u v, vanilla, l1): forward X w and gradient X' r, 2 x 32 n
# multiply-adds (128 n flops), plus O(n) elementwise work.
for n in 64 256 1024 4096 8192; do
    sed "s/^dim n = .*/dim n = $n/; s/test = 10000/test = 1000/" specs/spectral_sparse.ibs >"$dir/e4_$n.ibs"
    steps=$(awk -v n="$n" 'BEGIN { s = int(2e9 / (128 * n)); print (s > 20000 ? 20000 : s) }')
    row spectral_sparse "$n" "$dir/e4_$n.ibs" "$(awk -v n="$n" 'BEGIN { print 128 * n }')" "$steps" "$gemv"
done
# Attention, batch 16, embedding 16, head 8, sequence T: per sample three
# projections (2 T 16 8 each), Q K' and A V (2 T T 8 each); the reverse
# pass about twice the forward's products.
for t in 8 32 128 256; do
    sed "s/^dim T = .*/dim T = $t/" specs/attention.ibs >"$dir/att$t.ibs"
    fl=$(awk -v t="$t" 'BEGIN { print 16 * 3 * (3 * 2 * t * 16 * 8 + 2 * 2 * t * t * 8) }')
    steps=$(awk -v f="$fl" 'BEGIN { s = int(1e10 / f); print (s > 20000 ? 20000 : (s < 4 ? 4 : s)) }')
    row attention "$t" "$dir/att$t.ibs" "$fl" "$steps" "$gemm"
done
