#!/usr/bin/env bash
# The README's test command: install dependencies (idempotent), build, run every test.
# Usage: scripts/test.sh [ctest args, e.g. -L unit]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cd "${DRP_BUILD_DIR:-build}"
ctest --output-on-failure -j "${DRP_JOBS:-2}" "$@"
