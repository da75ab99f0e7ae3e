#!/usr/bin/env bash
# Standby scheduler (taskfarm run --standby): rank 0 killed at random points, as the run ends, during a snapshot, the successor killed too, a stopped rank 0 that comes back; exactly-once results, the other ranks' commands adopted, nothing left.
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

# The tasks of mk_tasks, each start also logged in DIR/who as "TASK PPID
# TIME": the rank process that started it, and when (epoch seconds).
mk_who_tasks() {
    mk_tasks "$1" "$2"
    sed -i 's|echo \([0-9]*\) >> starts;|&  echo "\1 $PPID $EPOCHREALTIME" >> who;|' "$1"
}

# first_after DIR MS: seconds from MS (epoch ms) to the first task start
# after DIR/out/term.1 was made: the successor's first dispatch (a
# worker's queue is dropped before the take-over, so any later start is
# the successor's).
first_after() {
    local term
    term=$(stat -c %.3Y "$1/out/term.1" 2>/dev/null) || { echo none; return; }
    awk -v t="$2" -v term="$term" '$3 > term { if (m == "" || $3 < m) m = $3 }
        END { if (m == "") print "none"; else printf "%.2f\n", m - t / 1000 }' "$1/who"
}

# adopted NAME DIR PIDS...: no task started twice unless its first start
# was by one of the killed rank processes PIDS (their own slots' tasks run
# again; every other rank's running tasks and reported successes are
# adopted by the successor). Prints how many ran again.
adopted() {
    local name=$1 dir=$2 bad
    shift 2
    bad=$(awk -v pids=" $* " '{ n[$1]++; if (n[$1] == 1) first[$1] = $2 }
        END { for (t in n) if (n[t] > 1 && index(pids, " " first[t] " ") == 0) printf "%s ", t }' "$dir/who")
    again=$(awk '{ n[$1]++ } END { k = 0; for (t in n) if (n[t] > 1) k++; print k }' "$dir/who")
    check "$name: only the killed ranks' own tasks ran again ($again did; others: '${bad}')" '[ -z "$bad" ]'
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
mk_who_tasks std.txt $N
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
    r0=$(rank_pid $d 0)
    kill -9 "$r0"
    wait_job
    first=$(first_after $d $t0)
    note "$d: rank 0 killed once $at of $N tasks had started; first dispatch by the successor ${first} s later"
    [ "$first" != none ] && times="$times $first"
    check "$d: mpirun exits 0 (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]' || show_err $d
    same_results "$d" $d ref $N || show_err $d 30
    check "$d: term 1 claimed by rank 1" 'grep -q "^rank 1 of 4 before (world rank 1) .* 0 of 3 ranks" $d/out/term.1'
    adopted "$d" $d "$r0"
    nothing_left "$d" $d
done
note "k: death to first dispatch (s):$times"

# ---- s: the successor is killed too ------------------------------------------
section s
setup s std.txt
start_job s 4 1 "${OPTS[@]}" $(ckpt_opts)
wait_ranks s 4 || bad "s: ranks did not start"
wait_starts s 5
s0=$(rank_pid s 0) s1=$(rank_pid s 1)
kill -9 "$s0"
wait_file s/out/term.1 || bad "s: no take-over within 30 s"
# Once the successor has started tasks of its own.
k=$(nstarts s)
wait_starts s $((k + 5))
kill -9 "$s1"
wait_job
check "s: mpirun exits 0 after two take-overs (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]' || show_err s
same_results "s" s ref $N || show_err s 30
check "s: term 2 claimed by world rank 2, with 2 ranks" 'grep -q "^rank 1 of 3 before (world rank 2) .* 0 of 2 ranks" s/out/term.2'
adopted s s "$s0" "$s1"
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
adopted p p "$r0"
nothing_left "p" p

# ---- l: commands longer than the take-over run on, and are adopted --------
# 12 commands of 2.5 s on 4 ranks x 2 slots, rank 0 killed once all 8
# slots run one: the 6 on the surviving ranks are left running when rank 0
# is written off (1 s), and the successor's tasks take them up; only rank
# 0's 2 start again. The joblog has their own start and whole run time.
section l
for ((i = 1; i <= 12; i++)); do
    echo "echo $i >> starts; echo \"$i \$PPID \$EPOCHREALTIME\" >> who; $SLEEP 2.5; echo \$(( $i * $i + 7 )) > res/$i"
done >long.txt
setup l long.txt
start_job l 4 1 "${OPTS[@]}" $(ckpt_opts)
wait_starts l 8 || bad "l: 8 tasks did not start"
t0=$(now_ms)
r0=$(rank_pid l 0)
kill -9 "$r0"
wait_job
check "l: mpirun exits 0 (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]' || show_err l
jl=$(joblog_check l 12)
check "l: state done, each of 12 tasks succeeded exactly once in the joblog ($jl)" \
    '[ "$(status_of l state)" = done ] && [ "$jl" = "0 0 0" ]' || show_err l
bad_res=$(for ((i = 1; i <= 12; i++)); do [ "$(cat l/res/$i 2>/dev/null)" = $((i * i + 7)) ] || echo -n "$i "; done)
check "l: every result there and right ('$bad_res' not)" '[ -z "$bad_res" ]'
adopted l l "$r0"
# Adopted: started before the kill by a rank that lived on, their joblog
# rows with that start and the whole 2.5 s.
rows=$(awk -v p="$r0" -v t="$t0" 'NR == FNR { if (!($1 in s)) { s[$1] = $3; w[$1] = $2 }; next }
    FNR > 1 && w[$1] != p && s[$1] * 1000 < t { n++; if ($3 * 1000 < t && $4 >= 2.4) k++ }
    END { printf "%d %d", n, k }' l/who l/out/joblog.tsv)
check "l: the 6 commands running on the other ranks were adopted, their rows whole ($rows: adopted, rows with their own start and >= 2.4 s)" '[ "$rows" = "6 6" ]'
nothing_left "l" l

# ---- e: rank 0 killed as the run ends ---------------------------------------
# Stopped the moment the status file says done, which rank 0 writes at the
# run's end before any worker leaves (TF_RUN_END), then killed: either the
# workers had left and everything was written, or (about one time in three)
# they take over, find every task done and write it again. Either way:
# done, each result once, a whole trace.
section e
setup e std.txt
start_job e 4 1 "${OPTS[@]}" $(ckpt_opts)
wait_ranks e 4 || bad "e: ranks did not start"
r0=$(rank_pid e 0)
for i in $(seq 30000); do grep -q "^state done" e/out/status 2>/dev/null && break; done
# Stopped at once, killed once the workers have either left or taken over.
kill -STOP "$r0"
for i in $(seq 300); do
    [ -e e/out/term.1 ] || [ "$(ranks_in e | wc -l)" -le 1 ] && break
    sleep 0.1
done
kill -9 "$r0"
wait_job
note "e: $(ls e/out/term.* 2>/dev/null | wc -l) take-over(s) after the kill"
check "e: mpirun exits 0 (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]' || show_err e
same_results "e" e ref $N || show_err e 30
check "e: the trace is valid JSON" 'python3 -m json.tool e/out/trace.json >/dev/null'
nothing_left "e" e

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
