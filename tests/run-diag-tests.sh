#!/bin/sh
# run-diag-tests.sh IBC: the diagnostics corpus.  For each tests/diag/NAME.ibs,
# `IBC check` must print exactly tests/diag/NAME.expected on stderr and exit
# 1 (0 for warn_*.ibs, which only warn).  Run from the repository root.
# With --update, rewrites the .expected files instead (review the diff!).
ibc=${1:?usage: run-diag-tests.sh IBC [--update]}
pass=0 fail=0
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for spec in tests/diag/*.ibs; do
    name=${spec%.ibs}
    want_rc=1
    case $(basename "$name") in warn_*) want_rc=0 ;; esac
    "$ibc" check "$spec" 2>"$tmp" >/dev/null
    rc=$?
    if [ "${2:-}" = "--update" ]; then
        cp "$tmp" "$name.expected"
    fi
    if [ $rc -ne $want_rc ]; then
        echo "FAIL $spec: exit status $rc, expected $want_rc"
        fail=$((fail + 1))
    elif ! cmp -s "$tmp" "$name.expected"; then
        echo "FAIL $spec: diagnostics differ from $name.expected:"
        diff "$name.expected" "$tmp" | head -20
        fail=$((fail + 1))
    else
        pass=$((pass + 1))
    fi
done
echo "diag: $pass passed, $fail failed"
[ $fail -eq 0 ]
