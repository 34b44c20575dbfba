#!/bin/sh
# lib-symbols.sh [LIB]: every external symbol the runtime library defines
# carries the library's prefix ibrt_.  libibrt.a is linked into every
# generated trainer and into researchers' own programs: an unprefixed
# global (put, record, verify_one, ...) would clash with theirs.  The
# driver's internal names (runtime/driver_impl.h) carry ibrt_drv_; a
# function one file uses is static.  Run by `make unit` on
# build/libibrt.a; exit 1 naming each offending symbol and its object.
set -u
lib=${1:-build/libibrt.a}
[ -f "$lib" ] || { echo "lib-symbols: FAIL: $lib does not exist (make all)"; exit 1; }
# nm -A: "LIB:OBJECT:VALUE TYPE NAME" (defined, external symbols only)
syms=$(nm -A -g --defined-only "$lib") || { echo "lib-symbols: FAIL: nm could not read $lib"; exit 1; }
total=$(printf '%s\n' "$syms" | awk 'NF == 3' | wc -l)
# a library without symbols, or nm output we cannot read, is a failure,
# not a pass
[ "$total" -gt 0 ] || { echo "lib-symbols: FAIL: no external symbols found in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" |
      awk 'NF == 3 && $3 !~ /^ibrt_/ { n = split($1, a, ":"); print "  " $3 " (" a[n - 1] ", type " $2 ")" }')
if [ -n "$bad" ]; then
    echo "lib-symbols: FAIL: $lib exports symbols without the prefix ibrt_:"
    printf '%s\n' "$bad"
    echo "  give each the prefix (ibrt_drv_ for the driver's internal names, runtime/driver_impl.h), or make it static"
    exit 1
fi
echo "lib-symbols: the $total external symbols of $lib all start with ibrt_"
