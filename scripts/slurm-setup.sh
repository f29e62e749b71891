#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for test/slurm.test.ts (and for trying examples/slurm/ by hand).
#
#   scripts/slurm-setup.sh start DIR   installs slurm-wlm and munge if missing (apt-get, as root), writes
#                                      DIR/slurm.conf for this one node, starts munged, slurmctld and slurmd
#                                      with everything (state, spool, sockets, logs, pid files) under DIR,
#                                      and waits until the node takes jobs
#   scripts/slurm-setup.sh stop DIR    cancels the jobs left, stops the three daemons it started, waits for them
#
# Then: export SLURM_CONF=DIR/slurm.conf, and sbatch/srun/squeue/scontrol talk to this cluster.
# Ports: SLURMCTLD_PORT and SLURMD_PORT (default 6817 and 6818). Any failure is one line on stderr
# ("slurm-setup: ...", with the daemon's log tail) and exit code 1.
set -euo pipefail

fail() {
  echo "slurm-setup: $*" >&2
  exit 1
}

[ $# -eq 2 ] || fail "usage: scripts/slurm-setup.sh start|stop DIR"
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

# waits up to $1 seconds for the command after it to succeed
wait_for() {
  local limit=$1
  shift
  local i
  for ((i = 0; i < limit * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

log_tail() {
  [ -f "$1" ] && tail -n 15 "$1" | sed 's/^/    /' >&2 || true
}

stop_pid() {
  local name=$1 pidfile=$2
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for 20 bash -c "! kill -0 $pid"; then
      echo "slurm-setup: $name (pid $pid) did not stop on SIGTERM within 20 s: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

if [ "$cmd" = stop ]; then
  if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.pid" ]; then
    export SLURM_CONF="$dir/slurm.conf"
    scancel --quiet --full --signal=KILL --state=RUNNING 2>/dev/null || true
    scancel --quiet 2>/dev/null || true
    # the jobs' slurmstepd processes end with their jobs: wait for the queue to empty before stopping slurmd
    wait_for 30 bash -c '[ -z "$(squeue --noheader 2>/dev/null)" ]' || echo "slurm-setup: jobs still listed after 30 s: $(squeue --noheader 2>&1 | head -3)" >&2
  fi
  stop_pid slurmd "$dir/slurmd.pid"
  stop_pid slurmctld "$dir/slurmctld.pid"
  stop_pid munged "$dir/munged.pid"
  exit 0
fi
[ "$cmd" = start ] || fail "usage: scripts/slurm-setup.sh start|stop DIR (not '$cmd')"

# ---- the packages (Debian 12: slurm-wlm 22.05 and munge)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  [ "$(id -u)" = 0 ] || fail "slurm-wlm and munge are not installed, and installing them needs root (apt-get install slurm-wlm munge)"
  command -v apt-get >/dev/null || fail "slurm-wlm and munge are not installed and there is no apt-get here to install them"
  export DEBIAN_FRONTEND=noninteractive
  # another install may hold the package lock (the tests install python3-grpcio at the same time): wait for it
  apt_get() { apt-get -o DPkg::Lock::Timeout=600 "$@"; }
  if ! apt_get install -y --no-install-recommends slurm-wlm munge >"$dir/apt.log" 2>&1; then
    apt_get update >>"$dir/apt.log" 2>&1 || true
    apt_get install -y --no-install-recommends slurm-wlm munge >>"$dir/apt.log" 2>&1 || { log_tail "$dir/apt.log"; fail "apt-get install slurm-wlm munge failed (log: $dir/apt.log)"; }
  fi
fi
[ "$(id -u)" = 0 ] || fail "the daemons run as root here (SlurmUser=root): run as root"

# ---- munge: its own key, socket, log and pid file under DIR
host=$(hostname -s)
cpus=$(nproc --all)
ctld_port=${SLURMCTLD_PORT:-6817}
slurmd_port=${SLURMD_PORT:-6818}
mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 700 "$dir/munge"
if [ ! -s "$dir/munge/munge.key" ]; then
  head -c 1024 /dev/urandom >"$dir/munge/munge.key"
  chmod 600 "$dir/munge/munge.key"
fi
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
  --log-file="$dir/munged.log" --seed-file="$dir/munge/munged.seed" >"$dir/munged.out" 2>&1 ||
  { cat "$dir/munged.out" >&2; log_tail "$dir/munged.log"; fail "munged did not start (log: $dir/munged.log)"; }
wait_for 10 test -S "$dir/munge/munge.socket" || { log_tail "$dir/munged.log"; fail "munged started but its socket $dir/munge/munge.socket did not appear within 10 s"; }

# ---- slurm.conf for this one node
cat >"$dir/slurm.conf" <<EOF
# one node, written by scripts/slurm-setup.sh
ClusterName=alexnet-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups in a container: processes tracked by their parents, no CPU binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# look at pending jobs every 2 s (default 60): a requeued job released by the test starts at once
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
JobRequeue=1
KillWait=30
InactiveLimit=0
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"

slurmctld -f "$dir/slurm.conf" -i >"$dir/slurmctld.out" 2>&1 || { cat "$dir/slurmctld.out" >&2; log_tail "$dir/slurmctld.log"; fail "slurmctld did not start (log: $dir/slurmctld.log)"; }
wait_for 20 scontrol ping || { log_tail "$dir/slurmctld.log"; fail "slurmctld does not answer 'scontrol ping' within 20 s (log: $dir/slurmctld.log)"; }
slurmd -f "$dir/slurm.conf" >"$dir/slurmd.out" 2>&1 || { cat "$dir/slurmd.out" >&2; log_tail "$dir/slurmd.log"; fail "slurmd did not start (log: $dir/slurmd.log)"; }
node_ready() {
  local s
  s=$(sinfo --noheader --nodes="$host" --format=%T 2>/dev/null)
  [ "$s" = idle ] || [ "$s" = mixed ] || [ "$s" = allocated ]
}
wait_for 30 node_ready || { log_tail "$dir/slurmd.log"; fail "node $host is not idle 30 s after slurmd started (state: $(sinfo --noheader --format=%T 2>&1); log: $dir/slurmd.log)"; }
echo "slurm-setup: node $host ($cpus CPUs) up; export SLURM_CONF=$dir/slurm.conf"
