#!/bin/sh
# make-matrices.sh: writes the dense operators the design tests use, from a
# fixed linear congruential generator (so the files are reproducible):
#   dense50.csv  50 x 50, entries U(-0.5, 0.5) plus 5 I (invertible)
#   tall30x20.csv 30 x 20, entries U(-0.5, 0.5) (a redundant frame)
cd "$(dirname "$0")"
gen() { awk -v R="$1" -v C="$2" -v D="$3" -v S="$4" 'BEGIN {
    s = S
    for (i = 0; i < R; i++) {
        line = ""
        for (j = 0; j < C; j++) {
            s = (s * 1103515245 + 12345) % 2147483648
            x = s / 2147483648 - 0.5
            if (i == j) x += D
            line = line (j ? "," : "") sprintf("%.17g", x)
        }
        print line
    }
}'; }
gen 50 50 5 12345 > dense50.csv
gen 30 20 0 678 > tall30x20.csv
