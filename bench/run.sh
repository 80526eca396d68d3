#!/usr/bin/env bash
# Build and run the drp benchmarks; print a table and write bench/results/latest.json.
# Usage: bench/run.sh [--quick] [--repeats N] [benchmark names...]   (drp-bench --list: names)
# env: DRP_BUILD_DIR (default build), DRP_JOBS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DRP_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  mkdir -p "$BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD_DIR.configure.log" 2>&1 ||
    { cat "$BUILD_DIR.configure.log"; exit 1; }
fi
cmake --build "$BUILD_DIR" -j "${DRP_JOBS:-2}" --target drp-bench
mkdir -p bench/results
exec "$BUILD_DIR/bench/drp-bench" --json bench/results/latest.json "$@"
