#!/usr/bin/env bash
# A real Slurm cluster on localhost (slurmctld + slurmd + munged from Debian's slurm-wlm and munge
# packages), private to one state directory, for the Slurm end-to-end tests.
#
#   local_cluster.sh start STATE_DIR [CPUS]   # writes STATE_DIR/slurm.env (source it: SLURM_CONF etc.)
#   local_cluster.sh stop STATE_DIR           # scancel everything, stop the daemons by PID
#
# Every setting below mattered on Debian 12 (see ../shared/notes/mpi-hdf5-slurm-facts.md):
#   - munge runs with its own key, socket, pid, log and seed files in STATE_DIR (mode 0755);
#     Slurm finds the socket through AuthInfo=socket=...
#   - the node declares CPUS CPUs (default 4, more than this machine's cores) so that 2-rank jobs
#     and array tasks run side by side; SlurmdParameters=config_overrides lets slurmd accept it;
#   - SchedulerParameters without delays (else jobs wait up to 3 s between scheduling passes,
#     and a requeued job whose begin time has passed waits for the 60 s main scheduling loop);
#   - AuthInfo cred_expire=10: a requeued job waits this long before it may start again (default
#     120 s, which would dominate the test's wall time);
#   - DependencyParameters=kill_invalid_depend (else an afterok on a failed job pends forever);
#   - JobCompType=jobcomp/filetxt: one line per finished job (no slurmdbd, so no sacct);
#   - MinJobAge=3600 keeps finished jobs in squeue/scontrol for the whole test;
#   - ports chosen free at start, and TmpFS private (srun --mpi=pmix makes
#     TmpFS/spmix_appdir_<uid>_<job>.<step>, default /tmp), so that two clusters on one machine
#     do not collide (they number their jobs alike: a second cluster's job 4 failed to launch);
#   - every client command needs SLURM_CONF exported (else it looks the controller up in DNS).
# The daemons are stopped by the PIDs in their pid files, never by process name.
set -euo pipefail

die() {
  echo "local_cluster: $*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2
  shift 2
  local t0=$SECONDS
  until "$@" >/dev/null 2>&1; do
    ((SECONDS - t0 < limit)) || die "timed out after ${limit} s waiting for $what"
    sleep 0.2
  done
}

start() {
  local dir=$1 cpus=${2:-4}
  for p in slurmctld slurmd munged mungekey sbatch squeue scontrol scancel; do
    command -v "$p" >/dev/null || die "$p not found (apt-get install slurm-wlm munge)"
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 0755 "$dir"
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/tmp"
  chmod 0700 "$dir/munge"

  # munge: private key and socket.
  mungekey --create --keyfile="$dir/munge/munge.key" --force
  chmod 0400 "$dir/munge/munge.key"
  munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munge/munge.seed" --force
  wait_for 10 "munged" test -S "$dir/munge/munge.socket"

  local ctld_port slurmd_port
  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  : >"$dir/plugstack.conf"
  : >"$dir/log/jobcomp.txt"
  cat >"$dir/slurm.conf" <<CONF
ClusterName=drptest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
TmpFS=$dir/tmp
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
PlugStackConfig=$dir/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1,bf_interval=1
DependencyParameters=kill_invalid_depend
MinJobAge=3600
KillWait=5
ReturnToService=2
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  cat >"$dir/slurm.env" <<ENV
export SLURM_CONF=$dir/slurm.conf
ENV
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$dir/slurm.conf"
  wait_for 20 "slurmctld" scontrol ping
  slurmd -f "$dir/slurm.conf" -N localhost
  wait_for 30 "node localhost to become idle" \
    bash -c 'sinfo -h -N -o "%T" | grep -Eq "^(idle|mixed|allocated)"'
  echo "local_cluster: up in $dir (slurmctld port $ctld_port, $cpus CPUs)"
}

stop_pid() {  # stop_pid PIDFILE NAME: SIGTERM, wait up to 15 s, then SIGKILL
  local file=$1 name=$2 pid
  [[ -s $file ]] || return 0
  pid=$(cat "$file")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 75); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.2
  done
  echo "local_cluster: $name ($pid) did not stop, killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

stop() {
  local dir=$1
  [[ -d $dir ]] || return 0
  dir=$(cd "$dir" && pwd)
  if [[ -f $dir/slurm.conf ]]; then
    export SLURM_CONF=$dir/slurm.conf
    scancel --full --user=root >/dev/null 2>&1 || true
    # Give the jobs' processes a moment to go (KillWait=5).
    for _ in $(seq 40); do
      [[ -z $(squeue -h -t running,completing 2>/dev/null) ]] && break
      sleep 0.25
    done
  fi
  stop_pid "$dir/slurmd.pid" slurmd
  stop_pid "$dir/slurmctld.pid" slurmctld
  stop_pid "$dir/munge/munged.pid" munged
}

case "${1:-}" in
  start) start "${2:?state dir}" "${3:-4}" ;;
  stop) stop "${2:?state dir}" ;;
  *) die "usage: $0 start|stop STATE_DIR [CPUS]" ;;
esac
