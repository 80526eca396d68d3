#!/usr/bin/env bash
# The README's demo command: install dependencies (idempotent), build, simulate a small sky
# with truth, and run the release pipeline on it under mpirun.
# Usage: scripts/demo.sh [REPO]        env: DRP_DEMO_PRESET (demo|tiny), DRP_RANKS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
REPO=${1:-demo-repo}
RANKS=${DRP_RANKS:-2}
DRP=${DRP_BUILD_DIR:-build}/drp/drp
rm -rf "$REPO"
mpirun --oversubscribe -np "$RANKS" "$DRP" simulate --preset "${DRP_DEMO_PRESET:-demo}" --out "$REPO"
# drp run exits 1 when any unit failed or was blocked; the summary says which and why.
set +e
mpirun --oversubscribe -np "$RANKS" "$DRP" run --repo "$REPO" --progress 15
rc=$?
set -e
"$DRP" status --repo "$REPO" || true
echo "demo: repository $REPO (release catalog: $REPO/release/object.h5); drp run exit code $rc"
exit $rc
