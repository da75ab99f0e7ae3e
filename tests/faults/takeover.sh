#!/usr/bin/env bash
# Standby scheduler (taskfarm run --standby): rank 0 killed at random points, the successor killed too, a stopped rank 0 that comes back; exactly-once results, nothing left.
# usage: takeover.sh [BIN_DIR]   env: FAULT_SEED (replay), TAKEOVER_KILLS (random kills, default 2; 30 for the campaign of docs/fault-tolerance.md)
set -u
BIN=$(cd "${1:-bin}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$tmp"
echo "take-over tests: seed $FAULT_SEED (FAULT_SEED=$FAULT_SEED replays the random choices)"
N=40        # tasks of 0.1 to 0.5 s: ~2 s on 4 ranks x 2 slots
HB=1        # --heartbeat, seconds
KILLS=${TAKEOVER_KILLS:-2}
OPTS=(--standby --slots 2 --heartbeat "$HB")

# first_after DIR MS: seconds from MS (epoch ms) to the first joblog start
# after it: the successor's first dispatch (tasks run one at a time per
# slot, so a start after the kill was dispatched by the successor).
first_after() {
    awk -F'\t' -v t="$2" 'FNR > 1 && $3 * 1000 > t { if (m == "" || $3 < m) m = $3 }
        END { if (m == "") print "none"; else printf "%.2f\n", m - t / 1000 }' "$1/out/joblog.tsv"
}

# wait_file PATH: until it exists (at most 30 s); 1 if it never came.
wait_file() {
    local i
    for i in $(seq 300); do [ -e "$1" ] && return 0; sleep 0.1; done
    return 1
}

# wait_starts DIR K: until K tasks have started in DIR (at most 60 s).
wait_starts() {
    local i
    for i in $(seq 6000); do [ "$(nstarts "$1")" -ge "$2" ] && return 0; sleep 0.01; done
    return 1
}

section ref
mk_tasks std.txt $N
setup ref std.txt
start_job ref 4 1 "${OPTS[@]}"
wait_job
check "ref: a run with --standby and no fault exits 0 (exit $JOB_RC, $JOB_MS ms)" '[ "$JOB_RC" = 0 ]' || show_err ref
check "ref: no term claimed" '[ ! -e ref/out/term.1 ]'
nothing_left "ref" ref

# ---- k: kill -9 rank 0 at a random point of the work ------------------------
section k
times=""
for i in $(seq 1 "$KILLS"); do
    d=k$i
    setup $d std.txt
    start_job $d 4 1 "${OPTS[@]}" $(ckpt_opts)
    wait_ranks $d 4 || bad "$d: ranks did not start"
    # Anywhere from the first task to the last: at most N started, so a
    # kill may come while the last ones run (or after the snapshot of the
    # end, which the run must survive as well).
    rand 1 $N; at=$R
    wait_starts $d $at
    t0=$(now_ms)
    kill -9 "$(rank_pid $d 0)"
    wait_job
    first=$(first_after $d $t0)
    note "$d: rank 0 killed once $at of $N tasks had started; first dispatch by the successor ${first} s later"
    [ "$first" != none ] && times="$times $first"
    check "$d: mpirun exits 0 (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]' || show_err $d
    same_results "$d" $d ref $N || show_err $d 30
    check "$d: term 1 claimed by rank 1" 'grep -q "^rank 1 of 4 before (world rank 1) .* 0 of 3 ranks" $d/out/term.1'
    nothing_left "$d" $d
done
note "k: death to first dispatch (s):$times"

# ---- s: the successor is killed too ------------------------------------------
section s
setup s std.txt
start_job s 4 1 "${OPTS[@]}" $(ckpt_opts)
wait_ranks s 4 || bad "s: ranks did not start"
wait_starts s 5
kill -9 "$(rank_pid s 0)"
wait_file s/out/term.1 || bad "s: no take-over within 30 s"
# Once the successor has started tasks of its own.
k=$(nstarts s)
wait_starts s $((k + 5))
kill -9 "$(rank_pid s 1)"
wait_job
check "s: mpirun exits 0 after two take-overs (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]' || show_err s
same_results "s" s ref $N || show_err s 30
check "s: term 2 claimed by world rank 2, with 2 ranks" 'grep -q "^rank 1 of 3 before (world rank 2) .* 0 of 2 ranks" s/out/term.2'
nothing_left "s" s

# ---- p: rank 0 stopped (SIGSTOP) past the take-over, then continued ----------
section p
setup p std.txt
start_job p 4 1 "${OPTS[@]}" $(ckpt_opts)
wait_ranks p 4 || bad "p: ranks did not start"
wait_starts p 10
r0=$(rank_pid p 0)
kill -STOP "$r0"
wait_file p/out/term.1 || bad "p: no take-over within 30 s"
sleep 1
kill -CONT "$r0"
wait_job
check "p: mpirun exits 0 (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]' || show_err p
check "p: the deposed rank 0 says it writes nothing more" \
    'grep -q "another rank took over the run" p/job.err' || show_err p
same_results "p" p ref $N || show_err p 30
nothing_left "p" p

# ---- w: rank 0 killed while it writes a snapshot -----------------------------
# 1,000 tasks whose commands carry 8 KB each: a snapshot of them (8 MB,
# fsynced) takes long enough to be caught in the act, its .tmp file there.
section w
M=1000
pad=$(printf '%08000d' 0)
mkdir -p w && for ((i = 1; i <= M; i++)); do echo ": $i $pad"; done >w/tasks.txt
start_job w 4 1 "${OPTS[@]}" $(ckpt_opts 0.2)
caught=
for i in $(seq 6000); do
    if ls w/out/state-*.h5.tmp >/dev/null 2>&1 && [ "$(ranks_in w | wc -l)" -ge 4 ]; then
        kill -9 "$(rank_pid w 0)" && caught=1
        break
    fi
    sleep 0.005
done
wait_job
check "w: rank 0 killed while a snapshot was being written, and succeeded" \
    '[ -n "$caught" ] && [ -e w/out/term.1 ]'
check "w: mpirun exits 0 (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]' || show_err w
jl=$(joblog_check w $M)
check "w: state done, each of $M tasks succeeded exactly once in the joblog ($jl)" \
    '[ "$(status_of w state)" = done ] && [ "$jl" = "0 0 0" ]' || show_err w
check "w: no snapshot left half-written" '! ls w/out/state-*.h5.tmp >/dev/null 2>&1'
nothing_left "w" w

# ---- u: --standby without heartbeats is refused ------------------------------
section u
setup u std.txt
start_job u 0 0 --standby --heartbeat 0
wait_job
check "u: --standby --heartbeat 0 exits 2 (exit $JOB_RC)" '[ "$JOB_RC" = 2 ]'
check "u: and says why" 'grep -q "not with --heartbeat 0" u/job.err'
check "u: nothing ran" '[ ! -e u/starts ]'
# A successor reads the task file again: not standard input, not a pipe.
(cd u && "$TF" run -q --standby -o out2 - <tasks.txt >/dev/null 2>err2.txt)
rc=$?
check "u: --standby with the task file on standard input exits 2 (exit $rc)" \
    '[ $rc = 2 ] && grep -q "which standard input cannot be" u/err2.txt'
mkfifo u/fifo
(cd u && timeout 10 "$TF" run -q --standby -o out3 fifo >/dev/null 2>err3.txt)
rc=$?
check "u: --standby with a named pipe exits 2 (exit $rc)" \
    '[ $rc = 2 ] && grep -q "which fifo cannot be" u/err3.txt'
check "u: nothing ran" '[ ! -e u/starts ]'

section end
summary "take-over tests" "(seed $FAULT_SEED)"
