#!/usr/bin/env bash
# A single-node Slurm on this machine, for the `slurm` test tier (`make test-slurm`).
#
# Installs Debian's slurm-wlm, slurmdbd, munge and MariaDB if they are missing, writes a configuration for one
# node called `localhost` (this machine's cores and memory, one GPU declared as a generic resource without a
# device file so GPU requests can be scheduled and accounted on a CPU-only machine), starts munged, MariaDB,
# slurmdbd, slurmctld and slurmd, registers the cluster and the current user for accounting (so `sacct` lists
# jobs), and waits until the node accepts jobs. Running it again changes nothing that already works.
#
#   scripts/slurm-localhost.sh           install, configure, start; prints `slurm-localhost: ready`
#   scripts/slurm-localhost.sh --check   exit 0 if the node accepts jobs and sacct answers, else 1 (no changes)
#
# Needs root (or passwordless sudo) and Debian's package registry. Configuration lives in /etc/slurm and
# /etc/munge; logs in /var/log/slurm. Only for tests: no authentication beyond munge's local key.
set -euo pipefail

CLUSTER=recunlearn-test
NODE=localhost
PARTITION=debug
DB=slurm_acct_db
DB_USER=slurm
DB_PASS=recunlearn-test
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)

log() { echo "slurm-localhost: $*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"
    elif command -v sudo > /dev/null && sudo -n true 2> /dev/null; then sudo "$@"
    else die "needs root or passwordless sudo to run: $*"
    fi
}

ready() {
    command -v sinfo > /dev/null && command -v sacct > /dev/null || return 1
    [[ "$(sinfo -h -n "$NODE" -o %t 2> /dev/null)" =~ ^(idle|mix|alloc)$ ]] || return 1
    sacct -n -X -S now-1minute > /dev/null 2>&1
}

if [[ "${1:-}" == "--check" ]]; then
    ready
    exit
fi

install_packages() {
    local missing=()
    for pkg in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2> /dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
    fi
}

CHANGED=0
put() {  # put FILE: write stdin to FILE (root), noting whether it changed
    local new
    new=$(cat)
    if [[ ! -f "$1" ]] || [[ "$(as_root cat "$1")" != "$new" ]]; then
        printf '%s\n' "$new" | as_root tee "$1" > /dev/null
        CHANGED=1
    fi
}

write_configs() {
    local cpus mem_mb
    cpus=$(nproc)
    # leave a quarter of the memory (at least 1 GB) to the system
    mem_mb=$(awk '/MemTotal/ { m = int($2 / 1024); r = int(m / 4); if (r < 1024) r = 1024; print m - r }' /proc/meminfo)
    as_root mkdir -p /etc/slurm /var/log/slurm /var/spool/slurmctld /var/spool/slurmd /run/slurm
    as_root chown slurm:slurm /var/log/slurm /var/spool/slurmctld /run/slurm
    put /etc/slurm/slurm.conf << EOF
# written by scripts/slurm-localhost.sh: one node, for the project's slurm tests
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
MinJobAge=600
ReturnToService=2
MpiDefault=none
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    put /etc/slurm/gres.conf << EOF
# a GPU without a device file: schedulable and accounted, nothing to bind (the tests run on the CPU)
NodeName=$NODE Name=gpu File=/dev/null Count=1
EOF
    put /etc/slurm/slurmdbd.conf << EOF
# written by scripts/slurm-localhost.sh
AuthType=auth/munge
DbdHost=$NODE
SlurmUser=slurm
PidFile=/run/slurm/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=$NODE
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB
EOF
    as_root chown slurm:slurm /etc/slurm/slurmdbd.conf
    as_root chmod 600 /etc/slurm/slurmdbd.conf
}

start_munge() {
    if ! pgrep -x munged > /dev/null; then
        [[ -s /etc/munge/munge.key ]] || as_root mungekey --create --keyfile=/etc/munge/munge.key
        as_root chown munge:munge /etc/munge/munge.key
        as_root chmod 400 /etc/munge/munge.key
        as_root mkdir -p /run/munge
        as_root chown munge:munge /run/munge
        as_root runuser -u munge -- /usr/sbin/munged
    fi
    munge -n | unmunge > /dev/null || die "munge does not authenticate (see /var/log/munge/munged.log)"
}

start_mariadb() {
    if ! pgrep -x mariadbd > /dev/null; then
        as_root mkdir -p /run/mysqld
        as_root chown mysql:mysql /run/mysqld
        as_root bash -c 'nohup /usr/sbin/mariadbd --user=mysql > /var/log/slurm/mariadb.log 2>&1 &'
    fi
    for _ in $(seq 60); do
        as_root mariadb -e "SELECT 1" > /dev/null 2>&1 && break
        sleep 1
    done
    as_root mariadb -e "CREATE DATABASE IF NOT EXISTS $DB;
        CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON $DB.* TO '$DB_USER'@'localhost'; FLUSH PRIVILEGES;" \
        || die "MariaDB does not answer (see /var/log/slurm/mariadb.log)"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq "$seconds"); do
        "$@" > /dev/null 2>&1 && return 0
        sleep 1
    done
    die "$what did not come up in ${seconds} s (logs in /var/log/slurm)"
}

start_slurm() {
    if ((CHANGED)); then  # daemons started with another configuration: start them again
        as_root pkill -x slurmd || true
        as_root pkill -x slurmctld || true
        as_root pkill -x slurmdbd || true
        sleep 2
    fi
    pgrep -x slurmdbd > /dev/null || as_root /usr/sbin/slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    as_root sacctmgr -i add cluster "$CLUSTER" > /dev/null 2>&1 || true
    local user
    user=$(id -un)
    as_root sacctmgr -i add account tests Cluster="$CLUSTER" Description=tests Organization=recunlearn > /dev/null 2>&1 || true
    as_root sacctmgr -i add user "$user" Account=tests Cluster="$CLUSTER" > /dev/null 2>&1 || true
    pgrep -x slurmctld > /dev/null || as_root /usr/sbin/slurmctld
    wait_for 60 slurmctld scontrol ping
    pgrep -x slurmd > /dev/null || as_root /usr/sbin/slurmd -N "$NODE"
    sleep 2
    # a drain kept in the controller's saved state from an earlier configuration
    if [[ "$(sinfo -h -n "$NODE" -o %t)" =~ ^(drain|drng|inval|down) ]]; then
        as_root scontrol update NodeName="$NODE" State=RESUME || true
    fi
    wait_for 60 "the node" bash -c "[[ \$(sinfo -h -n $NODE -o %t) =~ ^(idle|mix|alloc)\$ ]]"
}

install_packages
write_configs
if ((!CHANGED)) && ready; then
    log "ready (already running)"
    exit 0
fi
start_munge
start_mariadb
start_slurm
ready || die "the node is up but sacct does not answer"
log "ready: cluster $CLUSTER, node $NODE ($(nproc) CPUs, 1 GPU as a generic resource), partition $PARTITION"
