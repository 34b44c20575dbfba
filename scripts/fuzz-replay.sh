#!/bin/sh
# fuzz-replay.sh: replay the fuzz regression inputs (tests/fuzz/regress/*/)
# and the seed corpora (tests/fuzz/corpus/*/) through the fuzz targets,
# built with gcc -fsanitize=address,undefined and tests/fuzz/replay.c in
# place of libFuzzer (no clang needed).  Exits non-zero on any sanitizer
# report, crash or leak.  Part of `make check`.
# Word splitting of the flag and file lists is intended.
# shellcheck disable=SC2086,SC2046
set -eu
cd "$(dirname "$0")/.."

CC=${CC:-cc}
: "${BLAS_CFLAGS?run through make fuzz-replay, which sets the BLAS flags}" "${BLAS_LIBS?}"
B=build/fuzz-replay
mkdir -p $B/gen
FLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fno-omit-frame-pointer \
 -fsanitize=address,undefined -fno-sanitize-recover=all \
 -Icompiler -Iruntime -I$B/gen $BLAS_CFLAGS"

if [ ! -f $B/gen/lex.yy.c ] || [ -n "$(find grammar/ibs.y grammar/ibs.l -newer $B/gen/lex.yy.c)" ]; then
    bison -Wall --defines=$B/gen/ibs.tab.h -o $B/gen/ibs.tab.c grammar/ibs.y
    flex --header-file=$B/gen/lex.yy.h -o $B/gen/lex.yy.c grammar/ibs.l
fi

# One object per source, rebuilt when the source or any header is newer.
HDRS="compiler/*.h runtime/*.h runtime/*.def $B/gen/ibs.tab.h $B/gen/lex.yy.h"
obj() {   # source, extra flags -> prints the object path
    src=$1; extra=${2:-}
    o=$B/obj/$(echo "$src$extra" | tr '/ =' '___').o
    mkdir -p $B/obj
    # shellcheck disable=SC2086
    if [ ! -f "$o" ] || [ -n "$(find $src $HDRS -newer "$o" 2>/dev/null | head -n 1)" ]; then
        $CC $FLAGS $extra -c "$src" -o "$o"
    fi
    echo "$o"
}

CHECK=""
for s in compiler/arena.c compiler/diag.c compiler/parse.c compiler/builtin.c compiler/sema.c compiler/sema_expr.c compiler/sema_data.c compiler/sema_blocks.c compiler/sym.c compiler/sym_lattice.c compiler/sym_infer.c compiler/sym_gp.c compiler/sym_slice.c compiler/sym_joint.c compiler/sym_print.c compiler/exact.c compiler/design.c runtime/read.c \
         $B/gen/ibs.tab.c $B/gen/lex.yy.c; do
    CHECK="$CHECK $(obj $s)"
done
FRONT="$CHECK $(obj tests/fuzz/fuzz_front.c)"
REPLAY=$(obj tests/fuzz/replay.c)
READ=$(obj runtime/read.c)
$CC $FLAGS -o $B/replay_front $FRONT $REPLAY -lgmp $BLAS_LIBS -lm
$CC $FLAGS -o $B/replay_csv $READ $(obj tests/fuzz/fuzz_readers.c -DFUZZ_CSV) $REPLAY -lm
$CC $FLAGS -o $B/replay_npy $READ $(obj tests/fuzz/fuzz_readers.c -DFUZZ_NPY) $REPLAY -lm
$CC $FLAGS -o $B/replay_gen $CHECK $(obj runtime/data.c) $(obj runtime/rng.c) $(obj tests/fuzz/fuzz_gen.c) $REPLAY \
    -lgmp $BLAS_LIBS -lm
$CC $FLAGS -o $B/replay_flags $(obj runtime/trainer.c) $(obj runtime/json.c) $(obj runtime/io.c) $(obj runtime/outdir.c) $(obj tests/fuzz/fuzz_flags.c) $REPLAY \
    $BLAS_LIBS -lm

status=0
for t in front csv npy gen flags; do
    dirs=""
    for d in tests/fuzz/corpus/$t tests/fuzz/regress/$t; do
        [ -d "$d" ] && dirs="$dirs $d"
    done
    [ -z "$dirs" ] && continue
    printf 'fuzz-replay: %-6s ' "$t"
    # shellcheck disable=SC2086
    if ! OPENBLAS_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
         $B/replay_$t $dirs; then
        echo "fuzz-replay: $t FAILED" >&2
        status=1
    fi
done
exit $status
