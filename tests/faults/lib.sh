# Fault-injection helpers shared by tests/faults/run.sh and soak.sh: jobs, kills, result checks.
# Sourced, not run. Needs BIN (the directory holding taskfarm) set by the caller.

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
TF=$BIN/taskfarm
# A hang is a failure: every job and every wait has a limit.
JOB_LIMIT=${FAULT_JOB_LIMIT:-120}

# Replayable randomness: the seed is printed, FAULT_SEED=... repeats a run.
FAULT_SEED=${FAULT_SEED:-$(( ($$ * 7919 + $(date +%s)) % 32768 ))}
RANDOM=$FAULT_SEED

tests_tmp /tmp/tf_faults.XXXXXX
TESTS_CLEANUP=cleanup # below: what a failed case left running goes first
# Every task process carries MARK in its command line (a sleep reached
# through a symlink named after it), so that orphans are found with pgrep -f
# whoever their parent is now.
MARK=tfmark$$x$FAULT_SEED
SLEEP=$tmp/sleep-$MARK
ln -s "$(command -v sleep)" "$SLEEP"

# section NAME: say how long the previous section took (a hint for keeping
# the quick set quick; nothing is asserted on time).
section() {
    local t
    t=$(now_ms)
    [ -n "${SEC_NAME:-}" ] && note "($SEC_NAME: $(( t - SEC_T0 )) ms)"
    SEC_NAME=$1 SEC_T0=$t
}

# rand LO HI: R = an integer in [LO, HI]. Never call it (or use RANDOM) in
# $(...): bash reseeds RANDOM in subshells, and FAULT_SEED would not replay.
rand() { R=$(( $1 + RANDOM % ($2 - $1 + 1) )); }
# msleep MS
msleep() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ckpt_opts [SECONDS]: snapshot often (default every 0.3 s), so that kills
# land mid-write.
ckpt_opts() { echo "--checkpoint-every ${1:-0.3}"; }

# mk_tasks FILE N [FIRST [SHORT]]: N tasks, lines FIRST.. (default 1); task
# i writes its deterministic result to res/i and appends i to the starts log
# (so a re-execution shows), then sleeps 0.1 to 0.5 s, a function of i (with
# SHORT=1, 0.01 to 0.05 s).
mk_tasks() {
    local f=$1 n=$2 first=${3:-1} z=0. i
    [ "${4:-0}" = 1 ] && z=0.0
    for ((i = first; i < first + n; i++)); do
        echo "echo \$(( $i * $i + 7 )) > res/$i; echo $i >> starts; $SLEEP $z$(( 1 + i * 37 % 5 ))"
    done >"$f"
}

# setup DIR TASKFILE: a fresh case directory holding the task file and res/.
setup() {
    rm -rf "$1"
    mkdir -p "$1/res"
    cp "$2" "$1/tasks.txt"
}

# ---- jobs ----

# start_job DIR NP RECOVERY [taskfarm run options...]: mpirun in DIR, in the
# background; JOB_PID is the pid of the subshell that runs it. NP 0: no
# mpirun, one process. RECOVERY 1: mpirun --enable-recovery. Output is
# appended to DIR/job.out and DIR/job.err.
start_job() {
    local dir=$1 np=$2 rec=$3
    shift 3
    local launch=()
    if [ "$np" -gt 0 ]; then
        launch=(mpirun --oversubscribe -np "$np")
        [ "$rec" = 1 ] && launch+=(--enable-recovery)
    fi
    echo "== $(date +%T.%N | cut -c1-12) ${launch[*]} taskfarm run -q -o out $*" >>"$dir/job.err"
    # Not exec: timeout re-raises a SIGKILL its child got, and bash would
    # report every killed job. The subshell's own stderr carries only bash's
    # "Killed" notes for the kills the tests make on purpose.
    (cd "$dir" && timeout -s KILL "$JOB_LIMIT" "${launch[@]}" "$TF" run -q -o out "$@" tasks.txt \
        >>job.out 2>>job.err; exit $?) 2>/dev/null &
    JOB_PID=$!
    JOB_T0=$(now_ms)
    JOB_STARTS0=$(nstarts "$dir")
}

# nstarts DIR: task starts logged in DIR/starts so far.
nstarts() { cat "$1/starts" 2>/dev/null | wc -l; }

# wait_job: JOB_RC, the job's exit status (137 after a kill or a hang), and
# JOB_MS, the milliseconds since start_job.
wait_job() {
    wait "$JOB_PID"
    JOB_RC=$?
    JOB_MS=$(( $(now_ms) - JOB_T0 ))
    return 0
}

# Processes whose working directory is DIR: the job's mpirun, ranks, guards
# and tasks, whoever their parent is now (a killed rank's are init's).
# Zombies have no readable cwd, so they are not listed. One find(1), not a
# process per pid: the machine may be loaded.
procs_in() {
    local dir
    dir=$(cd "$1" && pwd -P) || return 0
    find /proc -mindepth 2 -maxdepth 2 -name cwd -lname "$dir" 2>/dev/null |
        awk -F/ -v me="$BASHPID" '$3 != me { print $3 }'
}

# ranks_in DIR: "PID RANK" of each rank of the job running in DIR. Guards
# have an empty environment, tasks have the launcher's variables removed.
ranks_in() {
    local p v e
    for p in $(procs_in "$1"); do
        { mapfile -d '' e <"/proc/$p/environ"; } 2>/dev/null || continue
        for v in "${e[@]}"; do
            [[ $v == OMPI_COMM_WORLD_RANK=* ]] && echo "$p ${v#*=}"
        done
    done
}

# job_pids DIR: mpirun and the `taskfarm run` processes (ranks, or the one
# process without mpirun) of the job in DIR; not its guards or tasks.
job_pids() {
    local p a
    for p in $(procs_in "$1"); do
        # An exiting process has an empty command line.
        { mapfile -d '' a <"/proc/$p/cmdline"; } 2>/dev/null && [ ${#a[@]} -gt 0 ] || continue
        case "${a[0]##*/}:${a[1]:-}" in
        mpirun:* | taskfarm:run) echo "$p" ;;
        esac
    done
}
rank_pid() { ranks_in "$1" | awk -v r="$2" '$2 == r { print $1 }'; }

# wait_ranks DIR NP: until NP ranks run there and this job has started
# tasks (DIR/starts grew: a resumed run's file is not empty); 1 if the job
# ended first (or after 60 s).
wait_ranks() {
    local t0
    t0=$(now_ms)
    while kill -0 "$JOB_PID" 2>/dev/null && [ $(( $(now_ms) - t0 )) -lt 60000 ]; do
        [ "$(nstarts "$1")" -gt "$JOB_STARTS0" ] &&
            [ "$(ranks_in "$1" | wc -l)" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# kill_job DIR: SIGKILL the whole job at once: mpirun and every rank (not the
# guards: cleaning up after that is their job).
kill_job() {
    # shellcheck disable=SC2046
    kill -9 $(job_pids "$1") 2>/dev/null
}

# ---- checks ----

# nothing_left NAME DIR: within 10 s, no process of the job is left in DIR
# (mpirun, ranks, guards, tasks) and none carries MARK anywhere. Whatever is
# left is listed, then killed so that it cannot break later cases; NL_LEFT
# says how many. With NL_QUIET set, success is not reported.
nothing_left() {
    local name=$1 dir=$2 t0 left
    t0=$(now_ms)
    NL_LEFT=0
    while :; do
        left="$(procs_in "$dir") $(pgrep -f "$MARK")"
        if [ -z "${left// /}" ]; then
            [ -n "${NL_QUIET:-}" ] || ok "$name: no process left"
            return 0
        fi
        [ $(( $(now_ms) - t0 )) -ge 10000 ] && break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    NL_LEFT=$(echo $left | wc -w)
    bad "$name: $NL_LEFT process(es) left after 10 s:"
    # shellcheck disable=SC2086
    ps -o pid,ppid,pgid,stat,args -p "$(echo $left | tr ' ' ',')" | sed 's/^/    /'
    # shellcheck disable=SC2086
    kill -9 $left 2>/dev/null
    return 1
}

# status_of DIR KEY: a field of DIR/out/status.
status_of() { awk -v k="$2" '$1 == k { print $2 }' "$1/out/status" 2>/dev/null; }

# joblog_check DIR N: "BAD MISSING TWICE": malformed rows; tasks 1..N
# without a successful row for their current command (DIR/tasks.txt, one
# task a line); tasks with more than one (a result recorded twice). Rows of
# a command the task file no longer has (an edited line) count for nothing.
joblog_check() {
    awk -F'\t' -v n="$2" '
        FNR == NR { cmd[FNR] = $0; next }
        FNR == 1 { next }
        NF != 9 || $1 !~ /^[0-9]+$/ || $1 < 1 || $1 > n { bad++; next }
        $7 == 0 && $8 == 0 && $9 == cmd[$1] { okc[$1]++ }
        END {
            for (i = 1; i <= n; i++) { if (!okc[i]) miss++; else if (okc[i] > 1) twice++ }
            printf "%d %d %d\n", bad, miss, twice
        }' "$1/tasks.txt" "$1/out/joblog.tsv" 2>/dev/null || echo "? ? ?"
}

# same_results NAME DIR REF N: the run in DIR ended done, recorded each of
# its N tasks done exactly once (status counts, joblog), and left results
# identical to the fault-free run in REF. Returns 1 on any difference.
same_results() {
    local name=$1 dir=$2 ref=$3 n=$4 st done total failed jl rc=0
    st=$(status_of "$dir" state)
    done=$(status_of "$dir" done)
    total=$(status_of "$dir" total)
    failed=$(status_of "$dir" failed)
    if [ "$st" = done ] && [ "$done" = "$n" ] && [ "$total" = "$n" ] && [ "$failed" = 0 ]; then
        ok "$name: state done, $done/$total done, 0 failed"
    else
        bad "$name: status: state '$st', done '$done', total '$total', failed '$failed' (want done, $n, $n, 0)"
        rc=1
    fi
    jl=$(joblog_check "$dir" "$n")
    if [ "$jl" = "0 0 0" ]; then
        ok "$name: joblog: every task succeeded exactly once"
    else
        bad "$name: joblog: malformed rows, tasks without success, tasks done twice: $jl"
        rc=1
    fi
    if diff -r "$ref/res" "$dir/res" >"$dir/res.diff" 2>&1; then
        ok "$name: $(ls "$dir/res" | wc -l) results identical to the fault-free run"
    else
        bad "$name: results differ from the fault-free run:"
        head -5 "$dir/res.diff" | sed 's/^/    /'
        rc=1
    fi
    # At-least-once execution: re-runs are allowed; say how many.
    note "$(sort -n "$dir/starts" | uniq -d | wc -l) task(s) started more than once"
    return $rc
}

# show_err DIR: the job's stderr, indented, when a check failed.
show_err() { tail -n "${2:-15}" "$1/job.err" | sed 's/^/    | /'; }

cleanup() {
    local p
    # Anything a failed case left running in our directory.
    for p in $(pgrep -f "$MARK"); do kill -9 "$p" 2>/dev/null; done
    for d in "$tmp"/*/; do
        for p in $(procs_in "$d" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
    [ -n "${SMALL_MNT:-}" ] && mountpoint -q "$SMALL_MNT" && umount -l "$SMALL_MNT"
}
