# tests/lib.sh: shell helpers shared by the whole-process tests (sourced
# by tests/e2e.sh and tests/faults/run.sh from the repository root).

# strip FILE: a results.json without its wall time and the paths of its
# data files (a run of the same spec and data in another directory has
# other paths; the hashes of their bytes are kept)
strip() { sed 's/"wall_seconds": [^,]*,//; s/"path": "[^"]*", "fnv1a_64"/"fnv1a_64"/g' "$1"; }

# same_outputs A B: "yes" when every file of run A is in run B, identical
# (results.json up to its wall time and data file paths)
same_outputs() {
    for f in "$1"/*; do
        g="$2/$(basename "$f")"
        case "$f" in
        *results.json) [ "$(strip "$f")" = "$(strip "$g")" ] || { echo no; return; } ;;
        *) cmp -s "$f" "$g" || { echo no; return; } ;;
        esac
    done
    echo yes
}
