#!/usr/bin/env bash
# Configure and build drp into ./build (RelWithDebInfo, -O3), 2 parallel jobs by default.
# Usage: scripts/build.sh [extra cmake args]     env: DRP_BUILD_DIR (default build), DRP_JOBS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${DRP_BUILD_DIR:-build}
# ccache (when installed) shares objects between clones/worktrees: paths relative to the root.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}" "$@" >"$BUILD_DIR.configure.log" 2>&1 ||
  { cat "$BUILD_DIR.configure.log"; exit 1; }
cmake --build "$BUILD_DIR" -j "${DRP_JOBS:-2}"
