#!/usr/bin/env bash
# Fault injection, quick set (make check-faults-quick): kill -9 workers, rank 0, whole jobs; orphans; resume; compare with a fault-free run.
# usage: run.sh [BIN_DIR]   env: FAULT_SEED (replay)
set -u
BIN=$(cd "${1:-bin}" && pwd)
. "$(dirname "$0")/lib.sh"
cd "$tmp"
echo "fault tests: seed $FAULT_SEED (FAULT_SEED=$FAULT_SEED replays the random choices)"
N=60      # tasks of the standard file: ~5 s on 3 workers x 2 slots
HB=2      # --heartbeat, seconds

# ---- g: the orphan guard ----------------------------------------------------
section g

# Live `sleep 100` tasks (each also has its `sh -c` parent: not counted).
nsleep() { pgrep -fc "^$SLEEP 100"; }

# g1: one process, no MPI: kill -9 taskfarm while 3 `sleep 100` run.
mkdir g1
for i in 1 2 3 4; do echo "$SLEEP 100"; done >g1/tasks.txt
start_job g1 0 0 --slots 3
for i in $(seq 100); do [ "$(nsleep)" -ge 3 ] && break; sleep 0.1; done
check "g1: 3 tasks running" '[ "$(nsleep)" = 3 ]'
kill_job g1
wait_job
nothing_left "g1: kill -9 of a one-process run" g1
check "g1: the guard said what it killed" 'grep -q "ended with 3 tasks running; killed them" g1/job.err'

# g2: under mpirun --enable-recovery, kill -9 one worker running two
# `sleep 100`: its tasks go within seconds while the job runs on; then kill
# the whole job: nothing is left.
mkdir g2
for i in 1 2 3 4; do echo "$SLEEP 100"; done >g2/tasks.txt
start_job g2 3 1 --slots 2 --heartbeat "$HB"
for i in $(seq 300); do [ "$(nsleep)" -ge 4 ] && break; sleep 0.1; done
w=$(rank_pid g2 1)
groups=$(pgrep -P "$w" -f "$MARK" | tr '\n' ' ')  # its tasks, not its guard
check "g2: worker 1 runs 2 tasks ($groups)" '[ "$(echo $groups | wc -w)" = 2 ]'
kill -9 "$w"
t0=$(now_ms)
# A group lives while a member is not a zombie (init reaps them late here).
alive() { ps -eo pgid=,stat= | awk -v gs="$groups" 'BEGIN { split(gs, a, " "); for (i in a) g[a[i]] = 1 }
    ($1 in g) && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }
while alive && [ $(( $(now_ms) - t0 )) -lt 10000 ]; do sleep 0.05; done
if alive; then bad "g2: the killed worker's task groups are still there after 10 s"
else ok "g2: the killed worker's task groups ended ($(( $(now_ms) - t0 )) ms after the kill)"; fi
check "g2: the other worker's tasks still run" '[ "$(nsleep)" = 2 ]'
kill_job g2
wait_job
nothing_left "g2: kill -9 of the whole job" g2

# g3: tasks start with default signal dispositions whatever the rank ignores
# (MPI and network libraries ignore SIGPIPE): SigIgn may hold only SIGHUP
# (kept for nohup) and glibc's internal signals 32 and 33.
mkdir g3
echo "exec grep -E '^SigIgn' /proc/self/status" >g3/tasks.txt
start_job g3 2 0
wait_job
ign=$(awk '{ print $2 }' g3/out/out/1.out 2>/dev/null)
check "g3: a task's ignored signals: ${ign:-none read} (SIGPIPE not among them)" \
    '[ -n "$ign" ] && [ $(( 0x$ign & ~((1 << 0) | (3 << 31)) )) = 0 ]'

# ---- the fault-free reference -------------------------------------------------
section ref

mk_tasks std.txt $N
setup ref std.txt
start_job ref 4 0 --heartbeat "$HB"
wait_job
check "ref: fault-free run exits 0 (exit $JOB_RC, $JOB_MS ms)" '[ "$JOB_RC" = 0 ]' || show_err ref
check "ref: $N results" '[ "$(ls ref/res | wc -l)" = $N ]'
nothing_left "ref" ref

# ---- a: kill -9 a random worker under --enable-recovery ---------------------
section a

setup a std.txt
start_job a 4 1 --heartbeat "$HB" $(ckpt_opts)
wait_ranks a 4 || bad "a: ranks did not start"
rand 1 3; victim=$R
# At a random point of the work (as in b): work is left to survive.
rand 1 50; at=$R
for i in $(seq 600); do [ "$(nstarts a)" -ge "$at" ] && break; sleep 0.01; done
pid=$(rank_pid a "$victim")
kill -9 "$pid"
note "a: killed worker rank $victim (pid $pid) once $(nstarts a) of $N tasks had started"
wait_job
check "a: mpirun ended by itself ($JOB_MS ms)" '[ "$JOB_RC" != 137 ]'
check "a: rank 0 wrote the worker off" 'grep -q "1 rank lost during the run" a/job.err'
same_results "a" a ref $N || show_err a
nothing_left "a" a

# ---- b: kill -9 rank 0 under --enable-recovery, then --resume -------------
section b

setup b std.txt
start_job b 4 1 --heartbeat "$HB" $(ckpt_opts)
wait_ranks b 4 || bad "b: ranks did not start"
# At a random point of the work, not of the clock: a kill 2.5 s in came
# after the last task once rank 0 ran tasks too (60 tasks in 3 s), and a
# finished run is right to exit 0. At most 50 of 60 started: work is left.
rand 1 50
for i in $(seq 600); do [ "$(nstarts b)" -ge "$R" ] && break; sleep 0.01; done
note "b: rank 0 killed once $(nstarts b) of $N tasks had started"
kill -9 "$(rank_pid b 0)"
t0=$(now_ms)
wait_job
gone_ms=$(( $(now_ms) - t0 ))
check "b: workers and mpirun exited by themselves ${gone_ms} ms after rank 0's death (heartbeat ${HB} s)" \
    '[ "$JOB_RC" != 137 ]'
# mpirun --enable-recovery exits 0 whatever the ranks return; a worker on
# its host signals it so that the job does not read as a success.
check "b: the job did not end 0 (mpirun exited $JOB_RC)" '[ "$JOB_RC" != 0 ]'
nothing_left "b: after rank 0's death" b
check "b: the status file says error, not running" '[ "$(status_of b state)" = error ]'
start_job b 4 0 --resume --heartbeat "$HB"
wait_job
check "b: --resume without recovery exits 0" '[ "$JOB_RC" = 0 ]' || show_err b
same_results "b" b ref $N || show_err b
nothing_left "b: after the resume" b

# ---- c: kill -9 the whole job at random times, --resume until done ---------
section c

setup c std.txt
kills=0
for round in $(seq 1 4); do
    resume=; [ "$round" -gt 1 ] && resume=--resume
    start_job c 4 0 $resume --heartbeat "$HB" $(ckpt_opts)
    if ! wait_ranks c 4; then wait_job; break; fi  # finished before all started
    rand 100 2000; msleep $R
    if [ $((RANDOM % 2)) = 0 ]; then how="mpirun and every rank"; kill_job c
    else how="rank 0 (mpirun ends the rest)"; kill -9 "$(rank_pid c 0)"; fi
    wait_job
    [ "$(status_of c state)" = done ] && break
    kills=$((kills + 1))
    note "c: round $round: killed $how; $(sort -u c/starts | wc -l)/$N tasks started so far"
    nothing_left "c: round $round" c
done
start_job c 4 0 --resume --heartbeat "$HB"
wait_job
check "c: the final --resume exits 0 after $kills kills" '[ "$JOB_RC" = 0 ]' || show_err c
same_results "c" c ref $N || show_err c 30
nothing_left "c" c

# ---- d: damaged checkpoints ---------------------------------------------------
section d

newest() { ls "$1"/out/state-*.h5 2>/dev/null | sort -V | tail -n "${2:-1}" | head -1; }
setup d std.txt
start_job d 4 0 --heartbeat "$HB" $(ckpt_opts 0.3)
for i in $(seq 300); do
    [ "$(ls d/out/state-*.h5 2>/dev/null | wc -l)" -ge 2 ] && [ "$(wc -l <d/starts)" -ge 20 ] && break
    sleep 0.1
done
kill_job d
wait_job
nothing_left "d: killed" d
check "d: two snapshot generations on disk" '[ -n "$(newest d 2)" ] && [ "$(newest d 2)" != "$(newest d)" ]'
for v in trunc sig flip foreign both; do rm -rf "d_$v"; cp -a d "d_$v"; done
f=$(newest d_trunc); truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"
f=$(newest d_sig); printf 'XXXXXXXX' | dd of="$f" bs=1 seek=0 conv=notrunc status=none
f=$(newest d_flip); sz=$(stat -c %s "$f")
for k in 1 2 3 4 5 6 7; do
    printf '\xa5%.0s' {1..16} | dd of="$f" bs=1 seek=$(( sz * k / 8 )) conv=notrunc status=none
done
g=$(basename "$(newest d_foreign)" .h5); g=${g#state-}
echo "not a snapshot, just text" >"d_foreign/out/state-$((g + 1)).h5"
f=$(newest d_both); truncate -s 100 "$f"; f=$(newest d_both 2); truncate -s 0 "$f"
for v in trunc sig flip foreign; do
    start_job "d_$v" 0 0 --resume
    wait_job
    check "d_$v: resume exits 0" '[ "$JOB_RC" = 0 ]' || show_err "d_$v"
    same_results "d_$v" "d_$v" ref $N
    nothing_left "d_$v" "d_$v"
done
for v in trunc sig foreign; do
    check "d_$v: the resume warned about the damaged file" \
        'grep -i "warn" d_$v/job.err | grep -q "state-"' || show_err "d_$v"
done
grep -qi warn d_flip/job.err && note "d_flip: warned" || note "d_flip: no warning (the flips hit no checked byte)"
start_job d_both 0 0 --resume
wait_job
check "d_both: both generations damaged: exit 3 (got $JOB_RC)" '[ "$JOB_RC" = 3 ]'
check "d_both: the message names a state file" 'grep -q "state-[0-9]*\.h5" d_both/job.err' || show_err d_both
nothing_left "d_both" d_both

# ---- e: out of disk during a checkpoint (root: it mounts a tmpfs) -------------
section e

if [ "$(id -u)" = 0 ]; then
    setup e std.txt
    mkdir -p e/out
    SMALL_MNT=$tmp/e/out
    if mount -t tmpfs -o size=4m tmpfs "$SMALL_MNT"; then
        start_job e 3 0 --heartbeat "$HB" $(ckpt_opts 0.3)
        for i in $(seq 300); do [ -n "$(newest e)" ] && [ -s e/starts ] && break; sleep 0.1; done
        cp -a "$(newest e)" "$tmp/e-first.h5" 2>/dev/null
        dd if=/dev/zero of=e/out/filler bs=64k status=none 2>/dev/null
        wait_job
        check "e: disk full: exit 3 (got $JOB_RC)" '[ "$JOB_RC" = 3 ]'
        check "e: the error says so" 'grep -qi "no space left" e/job.err' || show_err e
        nothing_left "e: disk full" e
        rm -f e/out/filler
        start_job e 0 0 --resume
        wait_job
        check "e: space freed: resume exits 0" '[ "$JOB_RC" = 0 ]' || show_err e
        same_results "e" e ref $N
        nothing_left "e" e
        umount "$SMALL_MNT" && SMALL_MNT=
    else
        bad "e: cannot mount a tmpfs"
    fi
else
    skip "e: out of disk during a checkpoint" --missing "root (to mount a 4 MB tmpfs)"
fi

# ---- f: resume with a changed task file ------------------------------------
section f

# v1: 30 tasks, run to the end by one process; v2: lines 5 and 17 changed,
# 8 lines added; resumed under mpirun on 3 ranks.
mk_tasks f1.txt 30
sed -e '5s/+ 7 ))/+ 1005 ))/' -e '17s/+ 7 ))/+ 1017 ))/' f1.txt >f2.txt
mk_tasks f2more.txt 8 31
cat f2more.txt >>f2.txt
setup f f1.txt
start_job f 0 0 --slots 4
wait_job
check "f: v1 ran (exit $JOB_RC)" '[ "$JOB_RC" = 0 ]'
cp f2.txt f/tasks.txt
: >f/starts
start_job f 3 0 --resume --heartbeat "$HB"
wait_job
check "f: resume with v2 exits 0" '[ "$JOB_RC" = 0 ]' || show_err f
ran=$(sort -n f/starts | tr '\n' ' ')
want="5 17 31 32 33 34 35 36 37 38 "
check "f: only the changed and new lines ran: $ran" '[ "$ran" = "$want" ]'
setup fref f2.txt
start_job fref 0 0 --slots 4
wait_job
same_results "f" f fref 38
nothing_left "f" f

section end
summary "fault tests" "(seed $FAULT_SEED)"
