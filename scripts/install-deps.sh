#!/bin/sh
# install-deps.sh: make sure the Debian packages ibc needs are present.
# Idempotent and silent when everything is installed; runs `apt-get update`
# at most once, and only when something is missing.  Run as root (CI and the
# README's set-up commands do); otherwise it names what to install.
set -eu

# python3-sympy: the independent oracle of the derivation (make sym-oracle);
# openmpi-bin, libopenmpi-dev: the MPI sweep, bin/ibc-sweep-mpi (optional
# at build time: without mpicc the Makefile leaves it out)
PKGS="make gcc pkg-config flex bison libgmp-dev liblapacke-dev libopenblas-dev libcriterion-dev gnuplot-nox valgrind python3 python3-sympy openmpi-bin libopenmpi-dev"
# `install-deps.sh fuzz` (make fuzz): clang's libFuzzer as well
[ "${1:-}" = fuzz ] && PKGS="$PKGS clang libclang-rt-dev"
# `install-deps.sh bench` (make bench): PyTorch, for bench/torch_reference.py
[ "${1:-}" = bench ] && PKGS="$PKGS python3-torch"
# python3-torch: PyTorch, for the tests of `ibc emit --target torch`
# (tests/torch/run.sh).  Optional: when apt cannot install it, a warning,
# and those tests say they were skipped.
OPTIONAL="python3-torch"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
optional() {
    for p in $OPTIONAL; do
        installed "$p" && continue
        [ "$(id -u)" -eq 0 ] || command -v sudo >/dev/null 2>&1 || {
            echo "install-deps: warning: $p is not installed (apt-get install $p): its tests will be skipped" >&2
            continue
        }
        S=""
        [ "$(id -u)" -ne 0 ] && S="sudo"
        echo "install-deps: installing: $p" >&2
        DEBIAN_FRONTEND=noninteractive $S apt-get install -y -qq "$p" >>/tmp/ibc-apt.log 2>&1 ||
            echo "install-deps: warning: could not install $p (see /tmp/ibc-apt.log): its tests will be skipped" >&2
    done
}

missing=""
for p in $PKGS; do
    installed "$p" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    optional
    exit 0
fi

echo "install-deps: installing:$missing" >&2
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps: error: missing packages:$missing" >&2
    echo "install-deps: run as root, or: apt-get install$missing" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq $missing >/tmp/ibc-apt.log 2>&1; then
    $SUDO apt-get update -qq >>/tmp/ibc-apt.log 2>&1 || true
    if ! $SUDO apt-get install -y -qq $missing >>/tmp/ibc-apt.log 2>&1; then
        echo "install-deps: error: could not install:$missing" >&2
        echo "install-deps: see /tmp/ibc-apt.log; install them by hand with apt-get install$missing" >&2
        exit 1
    fi
fi
optional
