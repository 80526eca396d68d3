#!/usr/bin/env bash
# Configure and build drp into ./build (RelWithDebInfo, -O3), 2 parallel jobs by default.
# Usage: scripts/build.sh [extra cmake args]     env: DRP_BUILD_DIR (default build), DRP_JOBS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DRP_BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$BUILD_DIR.configure.log" 2>&1 ||
  { cat "$BUILD_DIR.configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "${DRP_JOBS:-2}"
