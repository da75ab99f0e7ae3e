#!/usr/bin/env bash
# make check-slurm-multi: Slurm on four emulated hosts (slurmctld, a slurmd per host), sbatch -N 3 with srun --mpi=pmix, and a node lost mid-job.
#
#   bash tests/slurm/multinode.sh [BINDIR]   (as root; about 80 s)
#
# The hosts h1..h4 are network namespaces (tests/cluster/lib.sh). h1 runs
# slurmctld; every host runs a slurmd named after it, in its own network,
# hostname and /tmp (CL_DIR/hosts/hI/tmp). One munged in the machine's own
# namespace serves all: its socket is a file every host sees. The cluster's
# files (configuration, state, spool, logs), a copy of taskfarm and the
# jobs' submit directories are in CL_DIR, the file system the hosts share;
# nothing is in /tmp.
#
# Cases:
#   1. percore   farm-per-core.sbatch, sbatch -N 3 --ntasks-per-node=2, srun
#                --mpi=pmix: COMPLETED, every task once, tasks ran on the
#                other hosts and their joblog Host says which
#   2. nodeloss  campaign.sbatch (--requeue), sbatch -N 3: the link of the
#                allocation's last node (h3, not the batch host) is cut and
#                its processes killed mid-job; slurmctld marks it DOWN, kills
#                the job and requeues it; the second run, on h1 h2 h4,
#                resumes and completes: every task has exactly one
#                successful row. The times are printed, not asserted.
#   Short timeouts make the loss quick to see: SlurmdTimeout=10,
#   MessageTimeout=5, KillWait=10, cred_expire=10, sched_interval=2.
#
# At the end every job is cancelled, the daemons are stopped, and the test
# FAILs if a process carrying its marker, a namespace, link or mount is left
# (also after a failed check, Ctrl-C or timeout's SIGTERM). KEEP=1 copies
# the logs and submit directories to /var/tmp/tf-slurm-multi.* first;
# ONLY=percore or ONLY=nodeloss runs one case.
set -u
BIN=$(cd "${1:-bin}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
JS=$(cd "$HERE/../../jobscripts" && pwd)
export TASKFARM=$BIN/taskfarm
. "$HERE/../lib.sh"
unset SLURM_JOB_ID SLURM_JOBID SLURM_NTASKS SLURM_NNODES SLURM_CPUS_PER_TASK

if [ "$(id -u)" != 0 ]; then
    # Namespaces, slurmd and munged need root.
    skip check-slurm-multi --missing root
    summary check-slurm-multi
    exit
fi
[ -x "$TASKFARM" ] || { echo "check-slurm-multi: no $TASKFARM (make first)" >&2; exit 1; }
. "$HERE/../cluster/lib.sh"
# cluster_wait, cluster_marked and cluster_logs (of CLUSTER_DIR) from the
# one-node test; its cluster_start and cluster_stop are not used here.
. "$HERE/cluster.sh"

NODES=4
keep=${KEEP:-0}
only=${ONLY:-}
part() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }
D=           # the Slurm directory, CL_DIR/slurm
PIDS=()      # munged, slurmctld, then the slurmds, in start order
declare -A PID_OF=() # the same by name (munged, slurmctld, slurmd-hI)
start=$(date +%s)

# ---- the cluster ----
# sl CMD...: a Slurm client command run on h1 (its network), as from a
# login node; SLURM_CONF names the configuration.
sl() { nsenter --net="/run/netns/$(cl_ns h1)" "$@"; }

# daemon NAME CMD...: CMD started in a session of its own (so a Ctrl-C to
# the test's process group reaches only the test) with the marker in its
# environment; output appended to log/NAME.out.
daemon() {
    local name=$1
    shift
    setsid env TF_SLURM_TEST="$D" "$@" >>"$D/log/$name.out" 2>&1 &
    PIDS+=($!)
    PID_OF[$name]=$!
}

# The host's network only, not `ip netns exec`, which remounts /sys and so
# hides the cgroup file system slurmd reads at start; a mount namespace of
# its own for the host's /tmp (the PMIx plugin's spmix_appdir_* directories
# of two nodes would collide in one /tmp) and its /etc/hosts.
start_slurmd() {
    local h=$1 ns
    ns=$(cl_ns "$h")
    daemon "slurmd-$h" nsenter --net="/run/netns/$ns" unshare --uts --mount sh -c "
        mount --make-rprivate / && mount --bind $CL_DIR/hosts/$h/tmp /tmp &&
        mount --bind /etc/netns/$ns/hosts /etc/hosts && hostname $h &&
        exec slurmd -D -N $h -f $D/slurm.conf"
}

nodes_idle() {
    [ "$(sl sinfo -h -N -o %T 2>/dev/null | grep -cx idle)" = "$NODES" ]
}

slurm_up() {
    local cmd hw i
    for cmd in munged mungekey slurmctld slurmd sbatch scontrol sinfo squeue scancel srun nsenter; do
        command -v "$cmd" >/dev/null ||
            { echo "check-slurm-multi: '$cmd' not found: install munge slurmctld slurmd slurm-client (make deps)" >&2; return 1; }
    done
    D=$CL_DIR/slurm
    CLUSTER_DIR=$D
    mkdir -p "$D/munge" "$D/state" "$D/spool" "$D/log" "$D/work" || return 1
    chmod 755 "$D"
    chmod 700 "$D/munge"
    mungekey --create --keyfile="$D/munge/munge.key" || return 1
    chmod 755 "$D/munge"
    # Every emulated host is this machine: the same CPUs and memory.
    hw=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //') || return 1
    : >"$D/plugstack.conf"
    {
        cat <<EOF
# Written by tests/slurm/multinode.sh for one test run.
ClusterName=tfmulti
# slurmctld on h1; ports fixed, as each host's network is fresh.
SlurmctldHost=h1($CL_NET.1)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start
# again (default 120 s).
AuthInfo=socket=$D/munge/munge.socket,cred_expire=10
StateSaveLocation=$D/state
# %n: each slurmd's node name; all of them share this file system.
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
PlugStackConfig=$D/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt
MpiDefault=none
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=2
MinJobAge=3600
# From the SIGTERM of a killed job to its SIGKILL (default 30 s).
KillWait=10
OverTimeLimit=0
InactiveLimit=0
# A lost node: slurmctld pings each slurmd every SlurmdTimeout/3 s and
# marks a node DOWN when it has not answered for SlurmdTimeout s (default
# 300); its jobs end NODE_FAIL and those that allow it are requeued.
# A ping waits up to MessageTimeout s for an answer (default 10).
SlurmdTimeout=10
MessageTimeout=5
SlurmctldTimeout=30
ReturnToService=2
EOF
        for i in $(seq 1 "$NODES"); do echo "NodeName=h$i NodeAddr=$CL_NET.$i $hw State=UNKNOWN"; done
        echo "PartitionName=debug Nodes=h[1-$NODES] Default=YES MaxTime=INFINITE State=UP"
    } >"$D/slurm.conf"
    export SLURM_CONF=$D/slurm.conf

    daemon munged munged --foreground \
        --socket="$D/munge/munge.socket" --key-file="$D/munge/munge.key" \
        --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" \
        --seed-file="$D/munge/munged.seed"
    cluster_wait 10 test -S "$D/munge/munge.socket" || { echo "check-slurm-multi: munged did not start" >&2; return 1; }
    daemon slurmctld nsenter --net="/run/netns/$(cl_ns h1)" unshare --uts sh -c \
        "hostname h1 && exec slurmctld -D -i -f $D/slurm.conf"
    for i in $(seq 1 "$NODES"); do start_slurmd "h$i"; done
    if ! cluster_wait 40 nodes_idle; then
        echo "check-slurm-multi: the $NODES nodes did not become idle within 40 s" >&2
        sl sinfo -N -l >&2
        return 1
    fi
}

slurm_no_jobs() { [ -z "$(sl squeue -h -o %i 2>/dev/null)" ]; }

# Stop what this test started; 1 when a process of its own was left.
slurm_down() {
    local left=0 p pids
    [ -n "$D" ] || return 0
    if [ "${#PIDS[@]}" -gt 1 ] && kill -0 "${PIDS[1]}" 2>/dev/null; then
        sl scancel --full --quiet $(sl squeue -h -o %i 2>/dev/null) 2>/dev/null
        cluster_wait 30 slurm_no_jobs || echo "check-slurm-multi: jobs still listed after 30 s" >&2
    fi
    # The slurmds first, then slurmctld, munged last.
    for ((p = ${#PIDS[@]} - 1; p >= 0; p--)); do
        kill -TERM "${PIDS[p]}" 2>/dev/null
        cluster_wait 15 eval "! kill -0 ${PIDS[p]} 2>/dev/null" || kill -KILL "${PIDS[p]}" 2>/dev/null
        wait "${PIDS[p]}" 2>/dev/null
    done
    PIDS=()
    # Step daemons and job processes outlive slurmd: none may be left.
    pids=$(cluster_marked)
    if [ -n "$pids" ]; then
        left=1
        echo "check-slurm-multi: left behind, now killed:" >&2
        for p in $pids; do echo "  $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&2; done
        kill -KILL $pids 2>/dev/null
        sleep 1
    fi
    return $left
}

finish() {
    local rc=$? k
    trap - EXIT INT TERM
    slurm_down || bad "teardown: no daemon or job process left behind"
    if [ "$keep" = 1 ] && [ -n "$D" ] && [ -d "$D" ]; then
        k=$(mktemp -d /var/tmp/tf-slurm-multi.XXXXXX) && cp -a "$D/log" "$D/work" "$D/slurm.conf" "$k/" &&
            echo "kept $k"
    fi
    cluster_down || bad "teardown: no namespace, link or mount left behind"
    [ "$rc" = 130 ] && bad "interrupted"
    # summary's status is the script's (a bare exit in a trap keeps the old).
    summary check-slurm-multi "in $(($(date +%s) - start)) s"
    exit $?
}
trap finish EXIT
trap 'exit 130' INT TERM

cluster_up "$NODES" || { bad "could not make $NODES emulated hosts"; exit 1; }
# The jobs run a copy on the shared file system, as a site's would be: the
# tree's binary may be rebuilt while a job is queued.
mkdir -p "$CL_DIR/bin" && cp "$TASKFARM" "$CL_DIR/bin/" || { bad "cannot copy $TASKFARM"; exit 1; }
TASKFARM=$CL_DIR/bin/taskfarm
if ! slurm_up; then
    bad "could not start Slurm on $NODES hosts"
    cluster_logs | tail -n 60
    exit 1
fi
echo "Slurm $(sinfo --version | cut -d' ' -f2) on $NODES emulated hosts: $(sl sinfo -h -o '%D nodes %N, %c CPUs each'), up in $(($(date +%s) - start)) s"

# Open MPI between the hosts: TCP on eth0 (each host has only eth0 and lo;
# ranks on one host use TCP too). The jobs get these through sbatch's
# default --export=ALL.
export OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=eth0 OMPI_MCA_oob_tcp_if_include=eth0

# ---- helpers ----
submit() { sl sbatch --parsable --export=ALL,TF_SLURM_TEST="$D" "$@"; }
node_state() { sl scontrol -o show node "$1" | tr ' ' '\n' | sed -n 's/^State=//p'; }
hosts() { awk -F'\t' 'NR > 1 { print $2 }' "$1/joblog.tsv" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }'; }
newdir() { mkdir -p "$D/work/$1" && cd "$D/work/$1" || { bad "$1: cannot make $D/work/$1"; return 1; }; }
showlog() { echo "    ---- $1"; sed 's/^/    /' "$1" | tail -n 25; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The outdirs below are relative to the submit directory: the jobscripts
# refuse an absolute /var/tmp/... outdir on several nodes (node-local on a
# real cluster), but here /var/tmp/tf-cluster.* is the shared file system.

# ---- 1. farm-per-core over three nodes ----
t_percore() {
    newdir percore || return
    for i in $(seq 1 100); do echo "@id=t$i hostname; sleep 0.05"; done >tasks.txt
    local j s t0 t1
    t0=$(now)
    j=$(LAUNCHER=srun submit --nodes=3 --ntasks-per-node=2 --time=5 -o job.out "$JS/farm-per-core.sbatch" tasks.txt out)
    s=$(wait_job "$j" 90)
    t1=$(now)
    check "percore: sbatch -N 3 job COMPLETED, exit 0:0 ($s $(field "$j" ExitCode), on $(field "$j" NodeList))" \
        '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ] && [ "$(field "$j" NodeList)" = "h[1-3]" ]' ||
        showlog job.out
    check "percore: one MPI job of 6 ranks, state done" \
        '[ "$(state out)" = done ] && grep -qx "ranks 6" out/status'
    check "percore: 100 joblog rows, each task once, exit 0" '[ "$(rows out)" = 100 ] && once out 100'
    local hs
    hs=$(hosts out)
    check "percore: the joblog's Host names both worker nodes besides the batch host ($hs)" \
        '[[ " $hs" == *" h2:"* && " $hs" == *" h3:"* ]]'
    # Each task printed the host it ran on into its output (shared file
    # system): the Host column must agree.
    local wrong
    wrong=$(awk -F'\t' 'NR > 1 { f = "out/out/t" $1 ".out"; getline h < f; close(f); if (h != $2) print "t" $1 ":" $2 "/" h }' \
        out/joblog.tsv | head -n 5 | tr '\n' ' ')
    check "percore: each task's output names the host in its joblog row (${wrong:-all agree})" '[ -z "$wrong" ]'
    note "percore: submit to COMPLETED $(since "$t0" "$t1") s"
}

# ---- 2. a node lost mid-job: NODE_FAIL, requeue, resumed on the others ----
t_nodeloss() {
    newdir nodeloss || return
    local n=300 j s i t0 tcut lost first left js rs ns ended=0
    local st1='' tnr='' tdown='' tend='' tpend='' trun2='' tdone='' prev=''
    # 300 x 0.5 s on 5 workers: about 30 s with every node, longer without
    # one: the first run cannot finish before Slurm notices the lost node.
    for i in $(seq 1 "$n"); do echo "@id=t$i echo t$i >> $PWD/starts; sleep 0.5"; done >tasks.txt
    t0=$(now)
    j=$(LAUNCHER=srun submit --nodes=3 --ntasks-per-node=2 --time=10 -o job.out "$JS/campaign.sbatch" tasks.txt out)
    if ! cluster_wait 60 eval '[ "$(field $j JobState)" = RUNNING ] && [ "$(rows out)" -ge 1 ]'; then
        bad "nodeloss: the job did not start within 60 s ($(field "$j" JobState) $(field "$j" Reason))"
        showlog job.out
        return
    fi
    first=$(field "$j" NodeList)
    # The node to lose: the allocation's last, never the batch host (the
    # first, which runs the jobscript and rank 0).
    lost=$(sl scontrol show hostnames "$first" | tail -n 1)
    if ! cluster_wait 60 eval '[ "$(awk -F"\t" -v h=$lost "\$2 == h" out/joblog.tsv | wc -l)" -ge 3 ]'; then
        bad "nodeloss: no task ran on $lost within 60 s"
        showlog job.out
        return
    fi
    cl_cut "$lost"
    tcut=$(now)
    cl_kill_host "$lost" # the crash: what ran there is gone
    wait "${PID_OF[slurmd-$lost]}" 2>/dev/null # its slurmd (no "Killed" from bash)
    note "nodeloss: job $j on $first; $lost cut $(since "$t0" "$tcut") s after submit, at $(rows out) of $n joblog rows"
    # Every 0.5 s until the job has ended for good (it takes about 60 s):
    # the node's state and the job's, each change with its time after the
    # cut.
    : >timeline
    local deadline=$((SECONDS + 150))
    while [ "$SECONDS" -lt "$deadline" ]; do
        js=$(field "$j" JobState) rs=$(field "$j" Restarts) ns=$(node_state "$lost")
        if [ "$js $rs $ns" != "$prev" ]; then
            echo "$(since "$tcut" "$(now)") $js restarts=$rs $lost=$ns" >>timeline
            prev="$js $rs $ns"
        fi
        [ -z "$tnr" ] && [[ $ns == *NOT_RESPONDING* || $ns == DOWN* ]] && tnr=$(now)
        [ -z "$tdown" ] && [[ $ns == DOWN* ]] && tdown=$(now)
        [ -z "$tend" ] && { [ "$js" != RUNNING ] || [ "$rs" != 0 ]; } && tend=$(now)
        [ -z "$tpend" ] && [ "$rs" = 1 ] && [ "$js" = PENDING ] && { tpend=$(now); st1=$(state out); }
        [ -z "$trun2" ] && [ -n "$tpend" ] && [ "$js" = RUNNING ] && trun2=$(now)
        [[ $js =~ $TERMINAL ]] && [ "$rs" != 0 ] && { tdone=$(now); break; }
        # Ended for good without a requeue: a few more looks, then stop.
        [[ $js =~ $TERMINAL ]] && ended=$((ended + 1))
        [ "$ended" -ge 6 ] && break
        sleep 0.5
    done
    sed 's/^/     t+/' timeline
    s=$(field "$j" JobState)
    check "nodeloss: slurmctld marked $lost DOWN ($(node_state "$lost"), $(sl scontrol -o show node "$lost" | grep -o 'Reason=[^[]*' | sed 's/ *$//'))" \
        '[ -n "$tdown" ]'
    check "nodeloss: the first run ended when $lost went DOWN (the job's nodes failed) and Slurm requeued the job" \
        'grep -q "requeue job JobId=$j due to failure of node $lost" "$D/log/slurmctld.log" && [ -n "$tpend" ]' ||
        showlog job.out
    left=$(sl scontrol show hostnames "$(field "$j" NodeList)" | tr '\n' ' ')
    check "nodeloss: the requeued job COMPLETED on 3 nodes without $lost ($s $(field "$j" ExitCode), restarts $(field "$j" Restarts), on $left)" \
        '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ] && [ "$(field "$j" Restarts)" = 1 ] &&
         [ "$(echo $left | wc -w)" = 3 ] && [[ " $left" != *" $lost "* ]]' || showlog job.out
    check "nodeloss: two runs in the job's log, the second resumed and finished the file" \
        'grep -qF "run 1 on $first" job.out && grep -q "run 2 on" job.out && grep -q "in an earlier run" job.out &&
         grep -q "step exited with 0, state done" job.out'
    check "nodeloss: state done, every task exactly once successful in the joblog" '[ "$(state out)" = done ] && once out $n'
    check "nodeloss: no joblog row from $lost after the cut" \
        '[ -z "$(awk -F"\t" -v c="$tcut" -v h="$lost" "NR > 1 && \$2 == h && \$3 + \$4 > c + 1" out/joblog.tsv)" ]'
    local earlier failed rerun
    earlier=$(grep -o '([0-9]* in an earlier run)' job.out | head -n 1 | tr -dc 0-9)
    failed=$(awk -F'\t' 'NR > 1 && ($7 != 0 || $8 != 0)' out/joblog.tsv | wc -l)
    rerun=$(sort starts | uniq -d | wc -l)
    # The first run ends on the SIGTERM of the job's kill: taskfarm stops
    # and writes "state stopped" before Slurm's SIGKILL (KillWait later),
    # since a stop writes off ranks that do not answer its roll call
    # (docs/fault-tolerance.md); its journal has every task that finished.
    check "nodeloss: the first run stopped cleanly on Slurm's SIGTERM (status '${st1:-?}')" '[ "$st1" = stopped ]'
    note "nodeloss: first run: ${earlier:-?} tasks done"
    note "nodeloss: joblog $(rows out) rows, $failed failed attempts (tasks ended by the stop), hosts $(hosts out); $rerun tasks started more than once"
    note "nodeloss: after the cut: $lost not responding $(since "$tcut" "${tnr:-$tcut}") s, DOWN $(since "$tcut" "${tdown:-$tcut}") s;" \
        "job killed for the node's failure $(since "$tcut" "${tend:-$tcut}") s; its processes gone, requeued (PENDING)" \
        "$(since "$tcut" "${tpend:-$tcut}") s; second run started $(since "$tcut" "${trun2:-$tcut}") s; COMPLETED $(since "$tcut" "${tdone:-$tcut}") s"
}

for t in percore nodeloss; do
    if part $t; then t_$t; fi
done
