#!/usr/bin/env bash
# Fault-injection soak (make check-faults): random kill -9 of a worker or of the whole job, resume until done, compare; counts kills survived and results lost.
# usage: soak.sh [BIN_DIR]   env: FAULT_SOAK (iterations, default 20), FAULT_SOAK_TASKS (default 200),
#                            FAULT_SEED (replay)
set -u
BIN=$(cd "${1:-bin}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$tmp"
ITER=${FAULT_SOAK:-20}
N=${FAULT_SOAK_TASKS:-200}
HB=2
echo "soak: $ITER iterations of $N tasks, seed $FAULT_SEED, $(ckpt_opts 0.5)"

mk_tasks soak.txt "$N" 1 1
setup ref soak.txt
start_job ref 4 0 --heartbeat "$HB"
wait_job
if [ "$JOB_RC" != 0 ] || [ "$(ls ref/res | wc -l)" != "$N" ]; then
    bad "fault-free reference run: exit $JOB_RC"
    show_err ref
    exit 1
fi
note "fault-free reference: $N tasks in $JOB_MS ms"

kills=0 lost=0 twice=0 missing=0 broken=0

# kill_now DIR: kill -9 at a random moment of the running job, one of: a
# random worker (only under --enable-recovery: $2 = 1), rank 0, or mpirun
# and every rank. Adds to kills when the victim was alive.
kill_now() {
    local dir=$1 rec=$2 v pid
    wait_ranks "$dir" 4 || return 0   # it ended before all started
    rand 0 3000; msleep $R
    if [ "$rec" = 1 ]; then
        rand 1 3; v=$R
        what="worker rank $v"
        pid=$(rank_pid "$dir" "$v")
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    elif [ $((RANDOM % 2)) = 0 ]; then
        what="rank 0"
        pid=$(rank_pid "$dir" 0)
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    else
        what="the whole job"
        pid=$(job_pids "$dir")
        # shellcheck disable=SC2086
        [ -n "$pid" ] && kill -9 $pid 2>/dev/null && kills=$((kills + 1))
    fi
}

for k in $(seq 1 "$ITER"); do
    d=s$k
    setup "$d" soak.txt
    before=$kills log=""
    # 1 in 3: a worker dies under --enable-recovery and the job goes on;
    # otherwise the job dies. Then resume, sometimes killed again, until done.
    rec=0; [ $((RANDOM % 3)) = 0 ] && rec=1
    resume=
    for round in 1 2 3 4; do
        start_job "$d" 4 "$rec" $resume --heartbeat "$HB" $(ckpt_opts 0.5)
        what=
        kill_now "$d" "$rec"
        wait_job
        log="$log${log:+,} ${what:-no kill}"
        [ "$(status_of "$d" state)" = done ] && break
        NL_QUIET=1 nothing_left "$d: round $round" "$d"
        resume=--resume rec=0
        # Later rounds: half the time, let it finish.
        [ $((RANDOM % 2)) = 0 ] && break
    done
    if [ "$(status_of "$d" state)" != done ]; then
        start_job "$d" 4 0 --resume --heartbeat "$HB"
        wait_job
    fi
    # Lost: a result of the fault-free run that is missing or different.
    l=$(diff -rq ref/res "$d/res" 2>&1 | wc -l)
    read -r jbad jmiss jtwice <<<"$(joblog_check "$d" "$N")"
    st=$(status_of "$d" state) done=$(status_of "$d" done)
    lost=$((lost + l)) twice=$((twice + ${jtwice:-1})) missing=$((missing + ${jmiss:-1}))
    if [ "$l" = 0 ] && [ "$st" = done ] && [ "$done" = "$N" ] && [ "$jbad $jmiss $jtwice" = "0 0 0" ]; then
        ok "soak $k/$ITER: killed$log; $((kills - before)) kill(s), $(sort -n "$d/starts" | uniq -d | wc -l) task(s) re-run, results identical"
    else
        bad "soak $k/$ITER: killed$log; state '$st', done '$done'/$N, $l result(s) lost, joblog bad/missing/twice $jbad/$jmiss/$jtwice (kept in $d)"
        show_err "$d" 20
        broken=$((broken + 1))
    fi
    NL_QUIET=1 nothing_left "soak $k" "$d"
    [ "$l" = 0 ] && rm -rf "$d"
done

echo "soak_iterations $ITER"
echo "soak_kills $kills"
echo "soak_lost_results $lost"
echo "soak_double_records $twice"
# Tasks done (per the saved state) without a successful joblog row.
echo "soak_joblog_missing_rows $missing"
summary soak "(seed $FAULT_SEED)" && [ "$lost" = 0 ] && [ "$twice" = 0 ] && [ "$missing" = 0 ] && [ "$broken" = 0 ]
