#!/usr/bin/env bash
# CTest fixture `demo_release` (tests/CMakeLists.txt): the README's demo release, simulated and
# run once for the tests that check it (#10: exactly-once and validation on the demo release;
# #9: the same release submitted through a real Slurm cluster must give identical outputs).
#
#   demo_release_fixture.sh DIR DRP_EXE MPIEXEC
#
# DIR/sim   the simulated repository as `drp simulate --preset demo` wrote it (never run: the
#           Slurm test copies it)
# DIR/repo  a copy of it after `mpirun -np 2 drp run`, the reference release. The raw exposures
#           under input/ are hard links, not copies (no stage writes into an input file: every
#           output is written to a temporary and renamed), which saves 0.7 GB of disk.
# DIR/run.rc, DIR/run.log   drp run's exit code and output. Exit code 1 (a unit failed or was
#           blocked) is a result the dependent tests report; anything else fails the fixture.
set -euo pipefail
dir=$1 drp=$2 mpiexec=$3
rm -rf "$dir"
mkdir -p "$dir"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
t0=$(date +%s)
"$mpiexec" --oversubscribe --bind-to none -np 2 "$drp" simulate --preset demo --out "$dir/sim" \
  > "$dir/simulate.log" 2>&1 || { cat "$dir/simulate.log"; exit 1; }
t1=$(date +%s)
mkdir "$dir/repo"
for entry in "$dir/sim"/*; do
  if [ "$(basename "$entry")" = input ]; then cp -al "$entry" "$dir/repo/"; else cp -a "$entry" "$dir/repo/"; fi
done
set +e
"$mpiexec" --oversubscribe --bind-to none -np 2 "$drp" run --repo "$dir/repo" --progress 0 \
  > "$dir/run.log" 2>&1
rc=$?
set -e
t2=$(date +%s)
echo "$rc" > "$dir/run.rc"
tail -3 "$dir/run.log"
echo "demo_release_fixture: simulate $((t1 - t0)) s, drp run $((t2 - t1)) s (exit code $rc)"
[ "$rc" -le 1 ]
