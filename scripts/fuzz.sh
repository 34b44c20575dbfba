#!/bin/sh
# fuzz.sh [SECONDS] [TARGET...]: build the libFuzzer targets of tests/fuzz/
# with clang -fsanitize=fuzzer,address,undefined and run each one, in turn,
# for SECONDS (default 60) on a working corpus seeded from tests/fuzz/corpus.
#
#   targets: front (lexer + parser + checker, then sym/design on small
#            specs), csv (ibrt_csv_read), npy (ibrt_npy_read), gen (hostile
#            data generator arguments, through the checker to the runtime
#            generator), flags (a trainer's command line)
#
# Needs clang and libFuzzer (Debian: clang, libclang-rt-dev).  Everything is
# built under build/fuzz/; the growing corpora live in build/fuzz/corpus/
# (the seeds in tests/fuzz/corpus/ are never modified).  A crash, leak or
# timeout leaves its input in build/fuzz/artifacts/TARGET/ and makes the
# script exit non-zero; minimise it (see tests/fuzz/README.md) and keep it in
# tests/fuzz/regress/TARGET/.  The last lines of each run (executions, cov,
# ft, corpus size) are printed at the end.
# Word splitting of the flag and file lists is intended.
# shellcheck disable=SC2086,SC2046
set -eu
cd "$(dirname "$0")/.."

ROOT=$(pwd)
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=${*:-front csv npy gen flags}
CLANG=${CLANG:-clang}
JOBS=${FUZZ_JOBS:-1}

if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "fuzz: error: $CLANG not found (apt-get install clang libclang-rt-dev)" >&2
    exit 2
fi

: "${BLAS_CFLAGS?run through make fuzz, which sets the BLAS flags}" "${BLAS_LIBS?}"
B=build/fuzz
mkdir -p $B/obj $B/gen $B/artifacts $B/corpus $B/logs
FLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer \
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 -Icompiler -Iruntime -I$B/gen $BLAS_CFLAGS"

# The grammar is generated here (not in build/), so a concurrent `make`
# never sees a half-written file.
if [ ! -f $B/gen/lex.yy.c ] || [ -n "$(find grammar/ibs.y grammar/ibs.l -newer $B/gen/lex.yy.c)" ]; then
    bison -Wall --defines=$B/gen/ibs.tab.h -o $B/gen/ibs.tab.c grammar/ibs.y
    flex --header-file=$B/gen/lex.yy.h -o $B/gen/lex.yy.c grammar/ibs.l
fi

CHECK_SRC="compiler/arena.c compiler/diag.c compiler/parse.c compiler/builtin.c compiler/sema.c compiler/sema_expr.c compiler/sema_data.c compiler/sema_blocks.c compiler/sym.c compiler/sym_lattice.c compiler/sym_infer.c compiler/sym_gp.c compiler/sym_slice.c compiler/sym_joint.c compiler/sym_print.c compiler/exact.c compiler/design.c runtime/read.c \
 $B/gen/ibs.tab.c $B/gen/lex.yy.c"
FRONT_SRC="$CHECK_SRC tests/fuzz/fuzz_front.c"

build() {   # name, extra flags, sources..., then libs via LIBS
    name=$1; extra=$2; shift 2
    echo "fuzz: building $B/fuzz_$name"
    # shellcheck disable=SC2086
    $CLANG $FLAGS $extra -o $B/fuzz_$name "$@" $LIBS
}

for t in $TARGETS; do
    case $t in
    front) LIBS="-lgmp $BLAS_LIBS -lm"; build front "" $FRONT_SRC ;;
    csv)   LIBS="-lm"; build csv -DFUZZ_CSV runtime/read.c tests/fuzz/fuzz_readers.c ;;
    npy)   LIBS="-lm"; build npy -DFUZZ_NPY runtime/read.c tests/fuzz/fuzz_readers.c ;;
    gen)   LIBS="-lgmp $BLAS_LIBS -lm"; build gen "" $CHECK_SRC runtime/data.c runtime/rng.c tests/fuzz/fuzz_gen.c ;;
    flags) LIBS="$BLAS_LIBS -lm"; build flags "" runtime/trainer.c runtime/json.c runtime/io.c runtime/outdir.c tests/fuzz/fuzz_flags.c ;;
    *) echo "fuzz: error: unknown target '$t' (front, csv, npy, gen, flags)" >&2; exit 2 ;;
    esac
done

status=0
for t in $TARGETS; do
    mkdir -p $B/corpus/$t $B/artifacts/$t
    dict=""
    [ "$t" = front ] && dict="-dict=$ROOT/tests/fuzz/ibs.dict"
    seeds="$ROOT/tests/fuzz/corpus/$t"
    [ -d tests/fuzz/regress/$t ] && seeds="$seeds $ROOT/tests/fuzz/regress/$t"
    log=$ROOT/$B/logs/$t.log
    par=""
    [ "$JOBS" -gt 1 ] && par="-jobs=$JOBS -workers=$JOBS"
    echo "fuzz: running $t for ${SECS}s (log: $log)"
    # -rss_limit_mb: the front end may take a few hundred MB on big dims.
    # shellcheck disable=SC2086
    # Run from build/fuzz/logs: with FUZZ_JOBS > 1 libFuzzer writes fuzz-N.log
    # files into the current directory.
    if (cd $B/logs && OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       "$ROOT/$B/fuzz_$t" "$ROOT/$B/corpus/$t" $seeds $dict -max_total_time="$SECS" -timeout=10 \
         -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 $par \
         -artifact_prefix="$ROOT/$B/artifacts/$t/" >"$log" 2>&1); then
        :
    else
        echo "fuzz: $t FAILED: see $log and $B/artifacts/$t/" >&2
        status=1
    fi
    echo "fuzz: $t summary:"
    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 | sed 's/^/  /'
    grep -E '^stat::|^Done [0-9]+ runs' "$log" | sed 's/^/  /'
    grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|Test unit written' "$log" | head -5 | sed 's/^/  /'
    echo "  corpus: $(find $B/corpus/$t -type f | wc -l) files in $B/corpus/$t"
done
exit $status
