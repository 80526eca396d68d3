#!/usr/bin/env bash
# The README's demo command: install dependencies (idempotent), build, simulate a small sky
# with truth, run the release pipeline on it under mpirun, validate the release (metrics vs
# thresholds, HTML report) and export the Object table to FITS. Ends with the validation
# summary: objects, key metrics against their thresholds, where the report is.
# Usage: scripts/demo.sh [REPO]        env: DRP_DEMO_PRESET (demo|tiny), DRP_RANKS (2)
# Exit code: drp run's when a unit failed or was blocked, else drp validate's (1: a gated
# metric failed its threshold).
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
"$DRP" export --repo "$REPO" || true   # prints its own error (e.g. no release)
echo
set +e
"$DRP" validate --repo "$REPO"
vrc=$?
set -e
echo "demo: repository $REPO (release catalog: $REPO/release/object.h5, FITS: $REPO/release/object.fits);" \
  "drp run exit code $rc, drp validate exit code $vrc"
[ "$rc" -ne 0 ] && exit "$rc"
exit "$vrc"
