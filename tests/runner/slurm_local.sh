#!/usr/bin/env bash
# A throwaway single-node Slurm in DIR (munged + slurmctld + slurmd on this
# host, private sockets, ports and state). Used by test_runner_slurm.
#   slurm_local.sh start DIR   -> prints "export SLURM_CONF=..." on success, exits 1 with the reason otherwise
#   slurm_local.sh stop DIR    -> stops the daemons it started (by their pid files)
set -uo pipefail
cmd=$1 dir=$2
host=$(hostname -s)
case $cmd in
start)
  mkdir -p "$dir"/{munge,state,spool,log}
  chmod 700 "$dir/munge"
  for b in munged mungekey slurmctld slurmd sbatch squeue sinfo; do
    command -v $b >/dev/null || [ -x /usr/sbin/$b ] || { echo "missing $b (install slurm-wlm and munge)"; exit 1; }
  done
  /usr/sbin/mungekey -c -k "$dir/munge/munge.key" -f 2>"$dir/log/mungekey.err" ||
    { echo "mungekey failed: $(cat "$dir/log/mungekey.err")"; exit 1; }
  chmod 400 "$dir/munge/munge.key"
  /usr/sbin/munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.sock" \
    --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" \
    2>"$dir/log/munged.err" || { echo "munged failed: $(cat "$dir/log/munged.err")"; exit 1; }
  # Free ports for this instance.
  read -r p1 p2 < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/{print $2}' /proc/meminfo) / 1024 / 2 ))
  cat > "$dir/slurm.conf" <<CONF
ClusterName=bmtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$p1
SlurmdPort=$p2
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.sock
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldTimeout=30
SlurmdTimeout=30
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  /usr/sbin/slurmctld -f "$dir/slurm.conf" -i 2>"$dir/log/slurmctld.err" ||
    { echo "slurmctld failed: $(tail -3 "$dir/log/slurmctld.err" "$dir/log/slurmctld.log" 2>/dev/null)"; exit 1; }
  /usr/sbin/slurmd -f "$dir/slurm.conf" 2>"$dir/log/slurmd.err" ||
    { echo "slurmd failed: $(tail -3 "$dir/log/slurmd.err" "$dir/log/slurmd.log" 2>/dev/null)"; exit 1; }
  for i in $(seq 1 60); do
    st=$(sinfo -h -N -o '%T' 2>/dev/null | head -1)
    [ "$st" = idle ] && { echo "export SLURM_CONF=$dir/slurm.conf"; exit 0; }
    sleep 0.5
  done
  echo "node never became idle (state '$st'); slurmd log: $(tail -3 "$dir/log/slurmd.log" 2>/dev/null)"
  exit 1
  ;;
stop)
  for f in slurmd.pid slurmctld.pid munge/munged.pid; do
    [ -f "$dir/$f" ] && kill "$(cat "$dir/$f")" 2>/dev/null
  done
  exit 0
  ;;
esac
