# A real one-node Slurm (munged, slurmctld, slurmd from Debian's packages) in a temporary directory; sourced by run.sh.
#
#   cluster_start DIR   configure and start everything under DIR (empty,
#                       world-searchable: munged insists); exports SLURM_CONF
#   cluster_stop        cancel every job, stop the daemons this shell started,
#                       end anything still carrying the marker; returns 1
#                       if something had been left behind
#   submit ARGS...      sbatch --parsable with the marker in the job's
#                       environment, so cluster_stop can find its processes
#
# Every process started here or by its jobs carries TF_SLURM_TEST=DIR in its
# environment: that is how cluster_stop tells ours from anything else on a
# shared machine, without killing by name. The daemons run in sessions of
# their own, so a Ctrl-C or a timeout's signal to this process group reaches
# only the test, which then cancels the jobs and stops them in order.

CLUSTER_DIR=
CLUSTER_PIDS=()

# Slurm's clients run through sl (a script whose clients must run
# elsewhere, in a host's network, redefines it after sourcing this).
sl() { "$@"; }
# field JOB KEY: one field of scontrol show job.
field() { sl scontrol -o show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
# wait_job JOB SECONDS: until the job has ended for good; prints its state.
TERMINAL='^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE|PREEMPTED)$'
wait_job() {
    local n=$(($2 * 2)) s
    while [ $n -gt 0 ]; do
        s=$(field "$1" JobState)
        [[ $s =~ $TERMINAL ]] && { echo "$s"; return; }
        sleep 0.5
        n=$((n - 1))
    done
    echo "still-$(field "$1" JobState)-after-$2s"
}

# A TCP port nobody listens on (from /proc: no iproute2 needed).
cluster_free_port() {
    local p hex
    while :; do
        p=$((20000 + RANDOM % 40000))
        hex=$(printf ':%04X' "$p")
        awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
            /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$p"; return; }
    done
}

cluster_logs() {
    local f
    for f in "$CLUSTER_DIR"/log/*.log; do
        echo "---- $f (last 30 lines)"
        tail -n 30 "$f"
    done
}

cluster_start() {
    CLUSTER_DIR=$1
    local d=$1 node cmd
    for cmd in munged mungekey slurmctld slurmd sbatch scontrol sinfo squeue scancel srun; do
        if ! command -v "$cmd" >/dev/null; then
            echo "cluster: '$cmd' not found: install munge slurmctld slurmd slurm-client (make deps)" >&2
            return 1
        fi
    done
    mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/log" "$d/work" || return 1
    chmod 755 "$d" # munged refuses a socket below a directory others cannot search
    chmod 700 "$d/munge"
    mungekey --create --keyfile="$d/munge/munge.key" || return 1
    # munged checks its socket directory too: it must be searchable by all.
    chmod 755 "$d/munge"

    node=$(hostname -s)
    # CPUs, sockets, cores, memory exactly as slurmd sees them.
    local hw
    hw=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //') || return 1
    : >"$d/plugstack.conf"
    cat >"$d/slurm.conf" <<EOF
# Written by tests/slurm/cluster.sh for one test run.
ClusterName=tfcheck
SlurmctldHost=$node
SlurmctldPort=$(cluster_free_port)
SlurmdPort=$(cluster_free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start
# again (default 120 s).
AuthInfo=socket=$d/munge/munge.socket,cred_expire=10
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/log/slurmctld.log
SlurmdLogFile=$d/log/slurmd.log
PlugStackConfig=$d/plugstack.conf
MailProg=/bin/true
# No cgroups here (a container): track processes by parentage, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$d/log/jobcomp.txt
MpiDefault=none
SchedulerType=sched/builtin
# Look at pending jobs every 2 s, not every 60: a requeued job starts soon.
SchedulerParameters=sched_interval=2
# Keep finished jobs visible to scontrol for the whole test.
MinJobAge=3600
KillWait=10
OverTimeLimit=0
InactiveLimit=0
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node $hw State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF=$d/slurm.conf

    setsid env TF_SLURM_TEST="$d" munged --foreground \
        --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
        --pid-file="$d/munge/munged.pid" --log-file="$d/log/munged.log" \
        --seed-file="$d/munge/munged.seed" >>"$d/log/munged.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    if ! cluster_wait 10 test -S "$d/munge/munge.socket"; then
        echo "cluster: munged did not start" >&2
        cluster_logs >&2
        return 1
    fi
    setsid env TF_SLURM_TEST="$d" slurmctld -D -i -f "$d/slurm.conf" >>"$d/log/slurmctld.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    setsid env TF_SLURM_TEST="$d" slurmd -D -f "$d/slurm.conf" >>"$d/log/slurmd.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    if ! cluster_wait 30 cluster_node_idle; then
        echo "cluster: node $node did not become idle within 30 s" >&2
        sinfo -N -l >&2
        cluster_logs >&2
        return 1
    fi
}

cluster_node_idle() {
    [ "$(sinfo -h -N -o %T 2>/dev/null)" = idle ]
}

# cluster_wait SECONDS CMD...: run CMD every 0.5 s until it succeeds.
cluster_wait() {
    local n=$(($1 * 2))
    shift
    while [ "$n" -gt 0 ]; do
        "$@" && return 0
        sleep 0.5
        n=$((n - 1))
    done
    return 1
}

submit() {
    sbatch --parsable --export=ALL,TF_SLURM_TEST="$CLUSTER_DIR" "$@"
}

# Processes, other than the daemons, whose environment holds the marker.
cluster_marked() {
    local p
    for p in /proc/[0-9]*; do
        [ "${p#/proc/}" = "$BASHPID" ] && continue
        { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "TF_SLURM_TEST=$CLUSTER_DIR" &&
            echo "${p#/proc/}"
    done
}

cluster_no_jobs() {
    [ -z "$(squeue -h -o %i 2>/dev/null)" ]
}

cluster_stop() {
    [ -n "$CLUSTER_DIR" ] || return 0
    local left=0 p pids
    if [ "${#CLUSTER_PIDS[@]}" -gt 1 ]; then
        scancel --full --quiet $(squeue -h -o %i 2>/dev/null) 2>/dev/null
        cluster_wait 30 cluster_no_jobs || echo "cluster: jobs still listed after 30 s" >&2
    fi
    for p in "${CLUSTER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${CLUSTER_PIDS[@]}"; do
        cluster_wait 15 eval "! kill -0 $p 2>/dev/null" || kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    CLUSTER_PIDS=()
    # Job step daemons and job processes outlive slurmd; none should be left.
    pids=$(cluster_marked)
    if [ -n "$pids" ]; then
        left=1
        echo "cluster: left behind, now killed:" >&2
        for p in $pids; do
            echo "  $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&2
        done
        kill -KILL $pids 2>/dev/null
        sleep 1
    fi
    [ -z "$(cluster_marked)" ] || { echo "cluster: processes survive SIGKILL" >&2; left=1; }
    return $left
}
