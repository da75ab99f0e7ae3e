#!/usr/bin/env bash
# make check-cluster: taskfarm on an emulated cluster of hosts (network namespaces): farms, an app, steals, node-local /tmp, lost nodes.
#
#   bash tests/cluster/run.sh [BINDIR]      (as root; about 2 minutes)
#
# Hosts h1..h4 come from tests/cluster/lib.sh: each its own network,
# hostname and /tmp, TCP between them, the test's directory shared as a
# parallel file system would be. mpirun runs on h1 and starts its daemons
# on the others through an rsh agent, as on a cluster with ssh. A lost
# node is a cut link (what a crash looks like to TCP: no reset, silence)
# and then SIGKILL of everything on it. Everything is torn down at the
# end, also when a check fails; anything left behind is a FAIL.
set -u
BIN=$(cd "${1:-bin}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
TF=$BIN/taskfarm
. "$HERE/../lib.sh"
. "$HERE/lib.sh"
only=${ONLY:-} # ONLY="farm loss": just those parts (names below)
part() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }

[ -x "$TF" ] || { echo "check-cluster: no $TF (make first)" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
    skip check-cluster --missing root
    summary check-cluster
    exit
fi
if ! cluster_up 4 2>cluster-err.txt; then
    why=$(cat cluster-err.txt)
    rm -f cluster-err.txt
    cluster_down
    # Only a machine that cannot make namespaces (a container without
    # CAP_SYS_ADMIN) skips; any other failure to start is a FAIL.
    case $why in
    *"cannot create a bridge"* | *"namespaces need root"*)
        skip check-cluster --missing "network namespaces ($why)" ;;
    *) bad "emulated cluster: $why" ;;
    esac
    summary check-cluster
    exit
fi
rm -f cluster-err.txt
finish() {
    local rc=$?
    trap - EXIT INT TERM
    cluster_down || { echo "FAIL the emulated cluster left something behind"; rc=1; }
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM
W=$CL_DIR/work
mkdir -p "$W"
# The programs go to the shared directory: the hosts do not see the
# machine's /tmp, where a checkout (CI's, say) may be.
mkdir -p "$CL_DIR/bin" && cp "$TF" "$BIN/stencil" "$BIN/wordcount" "$CL_DIR/bin/" ||
    { bad "cannot copy the programs to $CL_DIR/bin"; exit 1; }
BIN=$CL_DIR/bin TF=$CL_DIR/bin/taskfarm

# ---- helpers ----
# farm NAME HOSTS NP ARGS...: taskfarm run under mpirun on h1 in $W/NAME,
# output in $W/NAME/log; the exit status is mpirun's. RUN_LIMIT bounds it.
farm() {
    local name=$1 hosts=$2 np=$3
    shift 3
    mkdir -p "$W/$name" && cd "$W/$name" || return 1
    timeout "${RUN_LIMIT:-120}" bash -c "$(declare -f on cl_mpirun)
        CL_DIR=$CL_DIR CL_RSH=$CL_RSH; cl_mpirun ${LAUNCH_HOST:-h1} \
        --oversubscribe -H $hosts -np $np $(printf '%q ' "$@")" >log 2>&1
    frc=$?
    return $frc
}
showlog() { sed 's/^/    /' "${1:-log}" | tail -n "${2:-15}"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
# The end of the joblog's last attempt (epoch seconds).
last_end() { awk -F'\t' 'NR > 1 && $3 + $4 > m { m = $3 + $4 } END { printf "%.3f", m }' "$1/joblog.tsv"; }
# Processes on HOST (their names), none expected once a job has ended.
procs() { ip netns pids "$(cl_ns "$1")" 2>/dev/null | xargs -r ps -o comm= -p | sort | tr '\n' ' '; }
# gone HOST...: none of them runs anything (the launcher's daemons included).
gone() { local h; for h; do [ -z "$(procs "$h")" ] || return 1; done; }

echo "emulated cluster: 4 hosts in $CL_DIR, $(nproc) cores shared"

# ---- a farm of shell tasks across hosts: the joblog, status and trace name them ----
if part farm; then
    echo "== farm: 200 tasks, rank 0 on h1 (it runs tasks too), workers on h2 and h3"
    mkdir -p "$W/farm"
    for i in $(seq 200); do echo 'echo "$(hostname) $TASKFARM_RANK"'; done >"$W/farm/tasks.txt"
    farm farm h1,h2,h3 3 "$TF" run -v -o out tasks.txt
    check "farm across hosts: exit 0" '[ $frc = 0 ]' || showlog
    check "200 rows, each task once" 'once out 200'
    # The joblog's Host of each row is where the task said it ran.
    mism=$(awk -F'\t' 'NR > 1 { print $1, $2 }' out/joblog.tsv | while read -r seq host; do
        read -r ran _ <"out/out/$seq.out"; [ "$ran" = "$host" ] || echo "$seq"; done | head -3)
    check "joblog Host = the host each task ran on" '[ -z "$mism" ]'
    hosts=$(awk -F'\t' 'NR > 1 { print $2 }' out/joblog.tsv | sort -u | tr '\n' ' ')
    check "tasks ran on every host, rank 0's h1 too ($hosts)" '[ "$hosts" = "h1 h2 h3 " ]'
    check "status: host h1, state done, 3 ranks" \
        '[ "$(status_field out host) $(status_field out state) $(status_field out ranks)" = "h1 done 3" ]'
    check "a worker alone on its host has no peer and no doorbell" \
        'grep -q "rank 1: on h2: 0 other workers on this host (asked first for work), doorbells with 0 ranks" log &&
         grep -q "rank 2: on h3: 0 other workers on this host" log' || showlog
    check "trace names each rank's host" \
        'grep -q "\"rank 0 (h1)\"" out/trace.json && grep -q "\"rank 1 (h2)\"" out/trace.json &&
         grep -q "\"rank 2 (h3)\"" out/trace.json'
fi

# ---- a library app across hosts: its data between workers over TCP ----
if part app; then
    echo "== app: the stencil on 4 ranks over 3 hosts"
    farm app h1,h2:2,h3 4 "$BIN/stencil" -b 6 -n 1000 -s 20
    check "stencil across hosts: exit 0, bitwise equal to serial" \
        '[ $frc = 0 ] && grep -q "bitwise equal: CORRECT$" log' || showlog
    # -i 0: no part travels inline, so every halo is fetched from the
    # worker that holds it, on its host or across the network.
    farm app h1,h2:2,h3 4 "$BIN/stencil" -b 6 -n 1000 -s 20 -i 0
    check "stencil -i 0 across hosts: halos fetched worker to worker, bitwise equal" \
        '[ $frc = 0 ] && grep -q "bitwise equal: CORRECT$" log &&
         [ "$(awk "/^stencil_fetches/ { print \$2 }" log)" -gt 0 ]' || showlog
    # The word count's old path (-R: inputs inline, large STOLEN messages)
    # hung over TCP in half the runs while two workers handed the same
    # tasks back and forth; a stolen task now stays where it went.
    for i in 1 2 3; do
        RUN_LIMIT=60 farm app h1,h2,h3 3 "$BIN/wordcount" -R
        check "word count -R across hosts, run $i: finishes, counts correct" \
            '[ $frc = 0 ] && grep -q "CORRECT$" log' || showlog
    done
fi

# ---- stealing prefers a victim on the thief's host ----
if part steal; then
    echo "== steal: 5 ranks, two on h2, two on h3"
    mkdir -p "$W/steal"
    # Rank 1 runs its tasks fast, the others slowly; rounds of 16 tasks
    # behind barriers, so that as each round ends rank 0 has nothing ready
    # and workers run dry and steal.
    awk 'BEGIN { for (b = 0; b < 20; b++) { for (i = 0; i < 16; i++)
             print "if [ $TASKFARM_RANK = 1 ]; then sleep 0.002; else sleep 0.03; fi"; print "@barrier" } }' \
        >"$W/steal/tasks.txt"
    farm steal h1,h2:2,h3:2 5 "$TF" run -vv --slots 1 -o out tasks.txt
    check "steal farm: exit 0, each task once" '[ $frc = 0 ] && [ "$(succ out | wc -l)" = 320 ]' || showlog
    # -v: each worker says what it found at start-up.
    peers_ok() {
        local r
        for r in 1 2 3 4; do
            grep -q "rank $r: on h$(((r + 3) / 2)): 1 other worker on this host (asked first for work), doorbells with 1 rank " log || return 1
        done
    }
    check "each worker knows its one peer on its host, and rings only its bell" \
        'peers_ok' || showlog
    # -vv: each steal request, with its place in the round of victims.
    # Ranks 1 and 2 share h2, 3 and 4 share h3.
    asks=$(awk '/steal: asking rank/ { r = $3 + 0; v = $7 + 0; k = $9 + 0
            peer = r % 2 ? r + 1 : r - 1
            n++; if (k == 1) { first++; if (v != peer) wrong++ } else if (v == peer) wrong++ }
        END { printf "%d %d %d", n, first, wrong }' log)
    read -r nask nround wrong <<<"$asks"
    note "$nask steal requests in $nround rounds; $wrong asked a rank elsewhere before the thief's own host"
    check "every round of victims starts on the thief's own host" '[ "$nask" -gt 0 ] && [ "$wrong" = 0 ]'
    # Steal instants in the trace: the thief is the pid, the victim in the detail.
    steals=$(awk '
        /"name":"steal"/ && match($0, /"pid":[0-9]+/) { t = substr($0, RSTART + 6, RLENGTH - 6)
            match($0, /from rank [0-9]+/); v = substr($0, RSTART + 10, RLENGTH - 10)
            match($0, /[0-9]+ tasks? moved/); n = substr($0, RSTART, RLENGTH) + 0
            if (int((t + 1) / 2) == int((v + 1) / 2)) same += n; else other += n }
        END { printf "%d %d", same, other }' out/trace.json)
    note "tasks stolen (trace): ${steals% *} from the thief's host, ${steals#* } across hosts"
    check "the trace shows steals, each naming its victim" '[ $((${steals% *} + ${steals#* })) -gt 0 ]'
fi

# ---- idle ranks across hosts: no doorbell, no busy core ----
if part idle; then
    echo "== idle: ranks on different hosts wait without a core and without doorbells"
    mkdir -p "$W/idle"
    printf 'sleep 3\nsleep 3\n' >"$W/idle/tasks.txt"
    ( sleep 1.2; for h in h1 h2 h3; do for p in $(ip netns pids "$(cl_ns $h)"); do
          [ "$(cat /proc/$p/comm 2>/dev/null)" = taskfarm ] && echo "$p $(awk '{ print $14 + $15 }' /proc/$p/stat)"; done; done >"$W/idle/cpu0"
      sleep 1.5; while read -r p t; do echo "$p $t $(awk '{ print $14 + $15 }' /proc/$p/stat 2>/dev/null)"; done <"$W/idle/cpu0" >"$W/idle/cpu1" ) &
    sampler=$!
    farm idle h1,h2,h3 3 "$TF" run --slots 1 -o out tasks.txt
    rc=$?
    wait $sampler
    check "idle farm: exit 0" '[ $rc = 0 ]' || showlog
    hz=$(getconf CLK_TCK)
    busy=$(awk -v hz="$hz" '{ d = ($3 - $2) / hz / 1.5; if (d > m) m = d } END { printf "%.2f", m }' "$W/idle/cpu1")
    note "the busiest rank used $busy of a core while tasks slept ($(wc -l <"$W/idle/cpu1") ranks sampled)"
    check "every rank sampled, none busy-waits (under 0.3 of a core)" \
        '[ "$(wc -l <"$W/idle/cpu1")" = 3 ] && awk -v b="$busy" "BEGIN { exit !(b < 0.3) }"'
    # A chain of dependent tasks crosses hosts at each step: each hop
    # waits for a message from another host, which no doorbell announces.
    { echo "@id=c0 true"; for i in $(seq 1 60); do echo "@id=c$i @after=c$((i - 1)) true"; done; } >"$W/idle/chain.txt"
    t0=$(now)
    farm idle h1,h2,h3 3 "$TF" run --slots 1 -o chain --force chain.txt
    rc=$?
    note "61 chained tasks across hosts in $(secs "$t0" "$(now)") s (launch included)"
    check "a chain across hosts completes" '[ $rc = 0 ] && once chain 61' || showlog
fi

# ---- node-local /tmp: refused as an outdir, fine as scratch ----
if part tmp; then
    echo "== tmp: /tmp is each host's own"
    mkdir -p "$W/tmp"
    for i in $(seq 20); do echo "echo \$TASKFARM_TASK_ID >/tmp/scratch.\$TASKFARM_TASK_ID && cp /tmp/scratch.\$TASKFARM_TASK_ID $W/tmp/result.\$TASKFARM_TASK_ID"; done >"$W/tmp/tasks.txt"
    farm tmp h1,h2,h3 3 "$TF" run -o /tmp/out tasks.txt
    check "an outdir on node-local /tmp: exit 2" '[ $frc = 2 ]' || showlog
    check "... naming each rank that does not see it, with its host" \
        'grep -q "rank 1 (on h2) does not see the outdir /tmp/out that rank 0 (on h1) uses" log &&
         grep -q "rank 2 (on h3) does not see" log'
    check "... and nothing ran (no task output anywhere, no joblog)" \
        '[ -z "$(ls "$W"/tmp/result.* 2>/dev/null)" ] && [ ! -e "$CL_DIR/hosts/h1/tmp/out/joblog.tsv" ] &&
         [ ! -e "$CL_DIR/hosts/h1/tmp/out/out" ]'
    farm tmp h1,h2,h3 3 "$TF" run -o out tasks.txt
    check "outdir on the shared path: exit 0, 20 results" \
        '[ $frc = 0 ] && [ "$(ls "$W"/tmp/result.* | wc -l)" = 20 ]' || showlog
    # Every host runs tasks (rank 0's h1 too): each scratch file is on the
    # host the joblog says ran its task, and on no other.
    n=0 mism=
    for h in h1 h2 h3; do
        for f in "$CL_DIR/hosts/$h/tmp"/scratch.*; do
            [ -e "$f" ] || continue
            n=$((n + 1))
            mism+=$(awk -F'\t' -v id="${f##*.}" -v h="$h" 'NR > 1 && $1 == id && $2 != h { print " " id }' out/joblog.tsv)
        done
    done
    check "scratch files stay on the host that wrote them ($n files${mism:+; elsewhere:$mism})" \
        '[ "$n" = 20 ] && [ -z "$mism" ]'
fi

# ---- lost nodes ----
# lose NAME HOST ARGS...: a farm of 300 short tasks on h1..h3 (rank 0 on
# h1), HOST cut once 30 have finished and everything on it killed; waits
# for mpirun; sets rc, t_cut, t_end (epoch seconds). The caller heals the
# link once the case is over: the killed processes' sockets outlive them
# in the host's kernel (which a real crash takes down too) and would tell
# the others when the link came back.
lose() {
    local name=$1 host=$2
    shift 2
    mkdir -p "$W/$name"
    for i in $(seq 300); do echo "sleep 0.02"; done >"$W/$name/tasks.txt"
    farm "$name" "${LOSE_HOSTS:-h1,h2,h3}" 3 "$@" &
    local pid=$!
    cl_wait 60 eval "[ \$(rows $W/$name/out) -ge 30 ]" ||
        { bad "$name: 30 tasks not done within 60 s"; showlog "$W/$name/log" 5
          note "running: h1: $(procs h1) h2: $(procs h2) h3: $(procs h3) h4: $(procs h4)"; }
    t_cut=$(now)
    cl_cut "$host"
    cl_kill_host "$host"
    wait $pid
    rc=$?
    t_end=$(now)
    cd "$W/$name" || exit 1
}
if part loss; then
    echo "== loss: a worker's node lost, --enable-recovery"
    RUN_LIMIT=90 lose loss-rec h3 --enable-recovery "$TF" run --heartbeat 2 -o out tasks.txt
    after=$(secs "$(last_end out)" "$t_end")
    note "mpirun exit $rc, $after s after the last task ended ($(secs "$t_cut" "$t_end") s after the cut;" \
        "rank 0's last status $(secs "$(last_end out)" "$(status_field out updated)") s after the last task)"
    check "every task done once on the survivors, status done" \
        'once out 300 && [ "$(status_field out state)" = done ] && grep -q "1 rank lost" log' || showlog
    # The bound (docs/fault-tolerance.md): rank 0's end plus one heartbeat
    # period for mpirun to end by itself, then it is ended; generous here.
    check "the job ended soon after the last task (not at its time limit)" \
        'awk -v a="$after" "BEGIN { exit !(a < 30) }"'
    check "nothing left on h1 and h2" 'cl_wait 10 gone h1 h2' || note "left: h1: $(procs h1) h2: $(procs h2)"
    cl_heal h3

    echo "== loss: a worker's node lost, plain mpirun"
    # On h4, not on the h3 just cut, killed and healed: an mpirun started
    # on h1,h2,h3 right after that started no daemon on h3, in 6 of 8 runs
    # of this suite since rank 0 runs tasks (2026-12-07; the runtime of
    # that morning passed the one run tried). The enter and rsh agents
    # still worked on h3 meanwhile; the cause is not found.
    LOSE_HOSTS=h1,h2,h4 RUN_LIMIT=90 lose loss-plain h4 "$TF" run --heartbeat 2 -o out tasks.txt
    note "mpirun exit $rc, $(secs "$(last_end out)" "$t_end") s after the last task ended"
    check "the job ended (no hang)" '[ $rc != 124 ]' || showlog
    check "nothing left on h1 and h2" 'cl_wait 10 gone h1 h2' || note "left: h1: $(procs h1) h2: $(procs h2)"
    cl_heal h4
    farm loss-plain h1,h2 2 "$TF" run --resume -o out tasks.txt
    check "--resume on the hosts left finishes: every task done exactly once" \
        '[ $frc = 0 ] && once out 300' || showlog
fi
if part stop; then
    echo "== stop: SIGTERM (the walltime's warning) after a worker's node was lost"
    # A heartbeat period of 30 s (the default): the run may not wait that
    # long for the dead rank, or the batch system kills it mid-stop.
    mkdir -p "$W/stop"
    for i in $(seq 300); do echo "sleep 0.05"; done >"$W/stop/tasks.txt"
    RUN_LIMIT=90 farm stop h1,h2,h3 3 --enable-recovery "$TF" run --heartbeat 30 -o out tasks.txt &
    pid=$!
    cl_wait 60 eval "[ \$(rows $W/stop/out) -ge 30 ]" || bad "stop: 30 tasks not done within 60 s"
    cl_cut h3
    cl_kill_host h3
    sleep 1
    t_term=$(now)
    kill -TERM "$(status_field "$W/stop/out" pid)"
    cl_wait 60 eval '[ "$(status_field "$W/stop/out" state)" = stopped ]'
    note "rank 0 stopped $(secs "$t_term" "$(now)") s after SIGTERM (heartbeat period 30 s)"
    wait $pid
    cd "$W/stop" || exit 1
    check "the stop ends well before the heartbeat period: status stopped" \
        'awk -v a="$(secs "$t_term" "$(status_field out updated)")" "BEGIN { exit !(a < 20) }" &&
         [ "$(status_field out state)" = stopped ]' || { showlog out/status 3; showlog; }
    check "nothing left on h1 and h2" 'cl_wait 20 gone h1 h2' || note "left: h1: $(procs h1) h2: $(procs h2)"
    cl_heal h3
    farm stop h1,h2 2 "$TF" run --resume -o out tasks.txt
    check "--resume finishes: every task done exactly once" '[ $frc = 0 ] && once out 300' || showlog
fi

# rank0_lost NAME [--enable-recovery]: h1, with mpirun and rank 0, dies.
rank0_lost() {
    local name=$1
    shift
    RUN_LIMIT=90 lose "$name" h1 "$@" sh -c "exec $TF run --heartbeat 2 -o out tasks.txt 2>$W/$name/err.\$OMPI_COMM_WORLD_RANK"
    cl_wait 30 gone h2 h3
    note "workers and their daemons gone $(secs "$t_cut" "$(now)") s after the cut"
    check "workers and daemons on h2 and h3 end" 'gone h2 h3' || note "left: h2: $(procs h2) h3: $(procs h3)"
    check "the status says error (rank 0's file, set by a worker)" '[ "$(status_field out state)" = error ]' ||
        { showlog out/status 20; tail -n 5 "$W/$name"/err.*; }
    cl_heal h1
    LAUNCH_HOST=h2 farm "$name" h2,h3 2 "$TF" run --resume -o out tasks.txt
    check "--resume from h2 finishes: every task done exactly once" \
        '[ $frc = 0 ] && once out 300' || showlog
}
if part loss0; then
    echo "== loss0: rank 0's node lost, --enable-recovery"
    rank0_lost loss0-rec --enable-recovery
    echo "== loss0: rank 0's node lost, plain mpirun"
    rank0_lost loss0-plain
fi

# ---- a standby takes over from a lost rank 0 (--standby) ----
# takeover NAME HOW: 300 tasks on h1..h3 (rank 0 and mpirun on h1), rank 0
# lost once 30 are done: HOW "process" kills it alone (mpirun lives on),
# "node" cuts h1 and kills everything there, mpirun too. Rank 1 on h2 must
# take over from the outdir (shared) and finish the run inside the job.
takeover() {
    local name=$1 how=$2 pid t0
    mkdir -p "$W/$name"
    for i in $(seq 300); do echo "sleep 0.02"; done >"$W/$name/tasks.txt"
    RUN_LIMIT=90 farm "$name" h1,h2,h3 3 --enable-recovery "$TF" run --standby --heartbeat 2 -o out tasks.txt &
    pid=$!
    cl_wait 60 eval "[ \$(rows $W/$name/out) -ge 30 ]" || bad "$name: 30 tasks not done within 60 s"
    t0=$(now)
    if [ "$how" = node ]; then
        cl_cut h1
        cl_kill_host h1
    else
        kill -9 "$(status_field "$W/$name/out" pid)"
    fi
    # The workers and their daemons end once the run is done (mpirun's
    # exit, when it lived, says nothing under --enable-recovery).
    cl_wait 60 eval '[ "$(status_field "$W/$name/out" state)" = done ]'
    note "$name: status done $(secs "$t0" "$(now)") s after rank 0 was lost; term: $(head -c 80 "$W/$name/out/term.1" 2>/dev/null)"
    [ "$how" = node ] || wait $pid
    cd "$W/$name" || exit 1
    check "$name: h2's rank took over; every task done exactly once, status done" \
        'once out 300 && [ "$(status_field out state)" = done ] && [ "$(status_field out host)" = h2 ] &&
         grep -q "world rank 1) on h2" out/term.1' || { showlog; showlog out/status 5; }
    check "$name: nothing left on h2 and h3" 'cl_wait 20 gone h2 h3' || note "left: h2: $(procs h2) h3: $(procs h3)"
    [ "$how" = node ] && { wait $pid; cl_heal h1; }
    return 0
}
if part takeover; then
    # (A process killed alone is tests/faults/takeover.sh's case, on one
    # host; ONLY=takeover-proc runs it here.)
    echo "== takeover: rank 0's node h1 lost, mpirun with it"
    takeover takeover-node node
fi
if part takeover-proc; then
    echo "== takeover: rank 0's process killed on h1, rank 1 on h2 succeeds it"
    takeover takeover-proc process
fi

summary check-cluster
