#!/usr/bin/env bash
# Kill soak (make check-faults, part of check-long): random SIGKILL of rank 0, mpirun, a worker, the whole job or task children, SIGTERM, a full disk; resume until done; count kills, lost results, duplicate rows, orphans.
# usage: soak.sh [BIN_DIR]   env: FAULT_SOAK (iterations, default 24), FAULT_SOAK_TASKS (default 300),
#                            FAULT_SEED (replay)
set -u
BIN=$(cd "${1:-bin}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$tmp"
ITER=${FAULT_SOAK:-24}
N=${FAULT_SOAK_TASKS:-300}
HB=2
NP=4

# What a round can do to the running job. Each iteration's first round takes
# the next kind in this order (so 24 iterations do each kind 3 times); later
# rounds, after a resume, take a random one or let the run finish.
#   worker       SIGKILL of a random worker under mpirun --enable-recovery
#   rank0        SIGKILL of rank 0 (half the time under --enable-recovery)
#   mpirun       SIGKILL of mpirun alone
#   job          SIGKILL of mpirun and every rank at once
#   child        SIGKILL of 1 to 3 task processes (shells or their sleeps)
#   term-mpirun  SIGTERM to mpirun, which forwards it to the ranks
#   term-rank0   SIGTERM to rank 0 alone
#   disk         the outdir (a 4 MB tmpfs) filled up; freed after the round
KINDS=(worker rank0 mpirun job child term-mpirun term-rank0 disk)
if [ "$(id -u)" != 0 ]; then
    KINDS=(worker rank0 mpirun job child term-mpirun term-rank0)
    skip "soak: full disk" --missing "root (to mount a 4 MB tmpfs)"
fi
declare -A KILLS
for kind in "${KINDS[@]}"; do KILLS[$kind]=0; done

echo "soak: $ITER iterations of $N tasks on $NP ranks, seed $FAULT_SEED, $(ckpt_opts 0.5), kinds: ${KINDS[*]}"

mk_tasks soak.txt "$N" 1 1
setup ref soak.txt
start_job ref "$NP" 0 --heartbeat "$HB"
wait_job
if [ "$JOB_RC" != 0 ] || [ "$(ls ref/res | wc -l)" != "$N" ]; then
    bad "fault-free reference run: exit $JOB_RC"
    show_err ref
    exit 1
fi
note "fault-free reference: $N tasks in $JOB_MS ms"
# Kills land within the first two thirds of a fault-free run's time, counted
# from its first task, so that most find the job still running.
WINDOW=$(( JOB_MS * 2 / 3 ))

kills=0 lost=0 twice=0 missing=0 broken=0 orphans=0 false_ok=0

# task_pids DIR: the job's live task processes (shells and sleeps: they
# carry MARK), zombies left out.
task_pids() {
    local p st
    for p in $(procs_in "$1"); do
        grep -qs "$MARK" "/proc/$p/cmdline" || continue
        read -r _ _ st _ <"/proc/$p/stat" 2>/dev/null && [ "$st" != Z ] && echo "$p"
    done
}

# counted KIND N: N strikes of KIND landed.
counted() { KILLS[$1]=$((KILLS[$1] + $2)) kills=$((kills + $2)); }

# hit KIND PID...: send the kind's signal to the pids; counts a kill of that
# kind when at least one of them was still there to get it.
hit() {
    local kind=$1 sig=-KILL
    shift
    case $kind in term-*) sig=-TERM ;; esac
    # shellcheck disable=SC2068
    [ $# -gt 0 ] && kill "$sig" $@ 2>/dev/null && counted "$kind" 1
    return 0
}

# strike DIR KIND: at a random moment of the running job, do KIND to it.
strike() {
    local dir=$1 kind=$2 p pids=()
    wait_ranks "$dir" "$NP" || { what="$kind (too late: the job had ended)"; return 0; }
    rand 0 "$WINDOW"; msleep "$R"
    what="$kind at $(( $(now_ms) - JOB_T0 )) ms"
    case $kind in
    worker) rand 1 $((NP - 1)); what="worker rank $R${what#worker}"; hit worker "$(rank_pid "$dir" "$R")" ;;
    rank0 | term-rank0) hit "$kind" "$(rank_pid "$dir" 0)" ;;
    mpirun | term-mpirun)
        for p in $(job_pids "$dir"); do
            [ "$(cat "/proc/$p/comm" 2>/dev/null)" = mpirun ] && hit "$kind" "$p"
        done ;;
    job) hit job $(job_pids "$dir") ;;
    child)
        # Tasks last 10 to 50 ms: look again until one is caught alive.
        local i n=0
        rand 1 3
        for ((i = 0; i < 20 && n < R; i++)); do
            mapfile -t pids < <(task_pids "$dir")
            [ ${#pids[@]} -gt 0 ] && kill -KILL "${pids[RANDOM % ${#pids[@]}]}" 2>/dev/null && n=$((n + 1))
        done
        what="$n task process(es)${what#child}"
        counted child "$n" ;;
    disk)
        kill -0 "$JOB_PID" 2>/dev/null && counted disk 1
        dd if=/dev/zero of="$dir/out/filler" bs=64k status=none 2>/dev/null ;;
    esac
}

for k in $(seq 1 "$ITER"); do
    d=s$k
    setup "$d" soak.txt
    mkdir "$d/out"
    if [ "$(id -u)" = 0 ]; then
        mount -t tmpfs -o size=4m tmpfs "$d/out" || { bad "soak $k: cannot mount a tmpfs"; exit 1; }
        SMALL_MNT=$tmp/$d/out
    fi
    before=$kills log="" resume=
    kind=${KINDS[$(( (k - 1) % ${#KINDS[@]} ))]}
    for round in 1 2 3 4; do
        rec=0
        [ "$kind" = worker ] && rec=1
        [ "$kind" = rank0 ] && [ $((RANDOM % 2)) = 0 ] && rec=1
        start_job "$d" "$NP" "$rec" $resume --heartbeat "$HB" $(ckpt_opts 0.5)
        what=
        strike "$d" "$kind"
        wait_job
        rm -f "$d/out/filler"
        # The job's processes first: ranks may outlive a killed mpirun.
        NL_QUIET=1 nothing_left "$d: round $round" "$d" || orphans=$((orphans + NL_LEFT))
        st=$(status_of "$d" state)
        [ "$rec" = 1 ] && what="$what (recovery)"
        log="$log${log:+,} $what -> exit $JOB_RC, $st"
        # An incomplete run must never look like a success to a batch script.
        if [ "$JOB_RC" = 0 ] && [ "$st" != done ]; then
            bad "soak $k round $round: $what: exit 0 with state '$st'"
            false_ok=$((false_ok + 1))
        fi
        [ "$st" = done ] && [ "$(status_of "$d" failed)" = 0 ] && break
        resume=--resume
        # Later rounds: a random kind, or (one in three) let it finish.
        rand 0 $(( ${#KINDS[@]} * 3 / 2 ))
        [ "$R" -ge ${#KINDS[@]} ] && break
        kind=${KINDS[$R]}
    done
    for last in 1 2; do
        [ "$(status_of "$d" state)" = done ] && [ "$(status_of "$d" failed)" = 0 ] && break
        start_job "$d" "$NP" 0 --resume --heartbeat "$HB"
        wait_job
        log="$log, finish -> exit $JOB_RC"
    done
    # Lost: a result of the fault-free run that is missing or different.
    l=$(diff -rq ref/res "$d/res" 2>&1 | wc -l)
    read -r jbad jmiss jtwice <<<"$(joblog_check "$d" "$N")"
    st=$(status_of "$d" state) done=$(status_of "$d" done)
    lost=$((lost + l)) twice=$((twice + ${jtwice:-1})) missing=$((missing + ${jmiss:-1}))
    if [ "$l" = 0 ] && [ "$st" = done ] && [ "$done" = "$N" ] && [ "$jbad $jmiss $jtwice" = "0 0 0" ]; then
        ok "soak $k/$ITER:$log; $((kills - before)) hit(s), $(sort -n "$d/starts" | uniq -d | wc -l) task(s) re-run, results identical"
    else
        bad "soak $k/$ITER:$log; state '$st', done '$done'/$N, $l result(s) lost, joblog bad/missing/twice $jbad/$jmiss/$jtwice (kept in $d)"
        show_err "$d" 20
        broken=$((broken + 1))
    fi
    NL_QUIET=1 nothing_left "soak $k" "$d" || orphans=$((orphans + NL_LEFT))
    if [ -n "${SMALL_MNT:-}" ]; then
        [ "$l" = 0 ] || cp -a "$d/out" "$d/out.kept"
        umount "$SMALL_MNT" && SMALL_MNT=
    fi
    [ "$l" = 0 ] && rm -rf "$d"
done

echo "soak_iterations $ITER"
for kind in "${KINDS[@]}"; do echo "soak_kills_${kind//-/_} ${KILLS[$kind]}"; done
echo "soak_kills $kills"
echo "soak_lost_results $lost"
echo "soak_double_records $twice"
# Tasks done (per the saved state) without a successful joblog row.
echo "soak_joblog_missing_rows $missing"
echo "soak_orphans $orphans"
# Rounds that exited 0 without finishing the run.
echo "soak_false_success $false_ok"
summary soak "(seed $FAULT_SEED)" && [ "$lost" = 0 ] && [ "$twice" = 0 ] && [ "$missing" = 0 ] &&
    [ "$broken" = 0 ] && [ "$orphans" = 0 ] && [ "$false_ok" = 0 ]
