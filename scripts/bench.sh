#!/bin/sh
# bench.sh - runs every benchmark program of a build, one after the other.
#
#   sh scripts/bench.sh BUILD_DIR
#
# Every executable file in BUILD_DIR/bench/ is a benchmark (built by
# `make bench` from bench/*.c). One that fails does not stop the others;
# the exit status says whether any failed.
set -u

build=${1:-}
if [ -z "$build" ]; then
    echo "usage: sh scripts/bench.sh BUILD_DIR" >&2
    exit 2
fi
if [ ! -d "$build/bench" ]; then
    echo "bench.sh: no $build/bench directory (run 'make bench')" >&2
    exit 1
fi

status=0
ran=0
for prog in "$build"/bench/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    ran=$((ran + 1))
    echo "== $(basename "$prog")"
    if ! "$prog"; then
        echo "bench.sh: $(basename "$prog") failed" >&2
        status=1
    fi
    echo
done
if [ "$ran" -eq 0 ]; then
    echo "bench.sh: no benchmarks in $build/bench" >&2
    exit 1
fi
exit $status
