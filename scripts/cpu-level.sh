#!/bin/sh
# cpu-level.sh LEVEL: exit 0 when this CPU runs code built with -march=LEVEL
# (x86-64, x86-64-v2, x86-64-v3, x86-64-v4), 1 otherwise.  The dynamic
# loader decides (glibc 2.33 and later list the levels they support); where
# it cannot say, the CPU flags the level requires are looked up instead.
set -u
level=${1:?usage: cpu-level.sh LEVEL}
[ "$level" = x86-64 ] && exit 0
for ld in /lib64/ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2; do
    if [ -x "$ld" ] && "$ld" --help 2>/dev/null | grep -q "^ *x86-64-v"; then
        "$ld" --help | grep -q "^ *$level (supported"
        exit $?
    fi
done
case $level in
    x86-64-v2) need="cx16 lahf_lm popcnt sse4_1 sse4_2 ssse3" ;;
    x86-64-v3) need="cx16 lahf_lm popcnt sse4_1 sse4_2 ssse3 avx avx2 bmi1 bmi2 f16c fma abm movbe xsave" ;;
    x86-64-v4) need="avx2 fma avx512f avx512bw avx512cd avx512dq avx512vl" ;;
    *) echo "cpu-level.sh: unknown level '$level' (x86-64, x86-64-v2, x86-64-v3, x86-64-v4)" >&2; exit 2 ;;
esac
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null) || exit 1
for f in $need; do
    echo " $flags " | grep -q " $f " || exit 1
done
exit 0
