#!/usr/bin/env bash
# Stops are stops: tasks a signal ended are "interrupted" and those it kept from starting "not started" (summary, joblog, status, trace, report), never failed; --resume runs exactly them. Real children, real signals, one process and under mpirun.
# usage: stop.sh [BIN_DIR]
set -u
BIN=$(cd "${1:-bin}" && pwd)
TF=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp" || exit 1

# starts: one line per start of a task, its name; count NAME: its starts.
count() { grep -cx "$1" starts 2>/dev/null; }
# gone: no sleep of these tasks (`sleep 37`) is left within 10 s.
gone() {
    local i
    for i in $(seq 50); do pgrep -fx "sleep 37" >/dev/null || return 0; sleep 0.2; done
    return 1
}
# rank0 OUTDIR: the pid of the taskfarm process that is rank 0 of the run
# writing OUTDIR (its status file says, once the run is running).
rank0() {
    until_running "$1" 300
    awk '$1 == "pid" { print $2 }' "$1/status"
}
# until_started N: N long tasks have started (within 60 s).
until_started() {
    local i
    for i in $(seq 600); do
        [ "$(grep -c '^s' starts 2>/dev/null)" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
# interrupt OUTDIR WHO SIG CMD...: CMD (a taskfarm run writing OUTDIR) in
# the background; once $STARTED (default 2) long tasks have started, SIG to rank 0 (WHO rank0)
# or to rank 0 and the long tasks too (WHO all), or to the long tasks
# first and rank 0 a third of a second later (WHO late: a busy node's
# Slurm signals the job's processes in no set order); rc: CMD's exit status.
interrupt() {
    local dir=$1 who=$2 sig=$3 job pid
    shift 3
    rm -f starts
    timeout 180 "$@" >out.txt 2>err.txt &
    job=$!
    pid=$(rank0 "$dir")
    until_started "${STARTED:-2}" || bad "$dir: no ${STARTED:-2} long tasks started within 60 s"
    case $who in
    all) kill -"$sig" "$pid" $(pgrep -fx "sleep 37") ;;
    late) kill -"$sig" $(pgrep -fx "sleep 37"); sleep 0.3; kill -"$sig" "$pid" ;;
    *) kill -"$sig" "$pid" ;;
    esac
    wait $job
    rc=$?
}

# stopped NAME OUTDIR DONE INTERRUPTED NOT_STARTED: what a stop must leave.
stopped() {
    local name=$1 dir=$2 d=$3 i=$4 n=$5 total=$(($3 + $4 + $5))
    check "$name: exit 75 ($rc)" '[ "$rc" = 75 ]' || sed 's/^/    /' err.txt | tail -5
    check "$name: summary: $d done, $i interrupted, $n not started, 0 failed, 0 skipped" \
        'grep -q "taskfarm: $total tasks: $d done, $i interrupted, $n not started, 0 failed, 0 skipped" err.txt' ||
        grep "tasks:" err.txt
    check "$name: no task reported failed" '! grep -q "failed with status" err.txt'
    check "$name: joblog: a success row for each done task, no other" \
        '[ "$(rows $dir)" = $d ] && [ "$(succ $dir | wc -l)" = $d ]'
    check "$name: status file: stopped, $i interrupted, $n not started, 0 failed, 0 skipped" \
        '[ "$(state $dir)" = stopped ] && [ "$(status_field $dir interrupted)" = $i ] &&
         [ "$(status_field $dir not_started)" = $n ] && [ "$(status_field $dir failed)" = 0 ] && [ "$(status_field $dir skipped)" = 0 ]'
    timeout 60 "$TF" status "$dir" >st.txt 2>&1
    local src=$?
    check "$name: taskfarm status: exit 75, the counts, no failing task" \
        '[ $src = 75 ] && grep -q "0 failed, 0 skipped, $((i + n)) left ($i interrupted, $n not started)" st.txt &&
         ! grep -q "failed:" st.txt' || sed 's/^/    /' st.txt
    timeout 60 "$TF" status --json "$dir" >st.json 2>&1
    check "$name: taskfarm status --json: interrupted_tasks $i, not_started $n, failing []" \
        'python3 -c "import json,sys; d = json.load(open(\"st.json\")); sys.exit(not (d[\"interrupted_tasks\"] == $i and d[\"not_started\"] == $n and d[\"failed\"] == 0 and d[\"failing\"] == [] and d[\"exit\"] == 75))"'
    check "$name: trace: $i attempts interrupted, none failed" \
        '[ "$(grep -o "\"result\":\"interrupted\"" $dir/trace.json | wc -l)" = $i ] &&
         ! grep -q "\"result\":\"failed\"" $dir/trace.json'
    timeout 60 "$TF" report "$dir" >rep.txt 2>&1
    check "$name: report: $i interrupted by a stop, 0 failed; grey, no red" \
        'grep -q "0 failed, $i interrupted by a stop)" rep.txt && grep -q "<rect class=\"i\"" $dir/report.svg &&
         ! grep -q "<rect class=\"f\"" $dir/report.svg' || sed 's/^/    /' rep.txt
    check "$name: no task left running" gone
}

# resumed NAME OUTDIR TOTAL TASKFILE [LAUNCHER...]: --resume after the
# long tasks were made short: exit 0, every task once in the joblog.
resumed() {
    local name=$1 dir=$2 total=$3 file=$4
    shift 4
    sed -i 's/sleep 37/true/' "$file"
    RUN_LIMIT=120 run "$name: --resume" 0 "$@" "$TF" run -q --resume -o "$dir" "$file"
    check "$name: --resume: every task exactly one row, a success" \
        'once $dir $total && [ "$(rows $dir)" = $total ]'
    check "$name: --resume: status done, nothing failed" \
        '[ "$(state $dir)" = done ] && [ "$(status_field $dir failed)" = 0 ] && [ "$(status_field $dir interrupted)" = 0 ]'
}

# ---- one process, Ctrl-C (SIGINT), a plain list GNU parallel reads too ----
# 6 quick tasks, then 8 long ones: 2 slots run 2 of them when the stop comes.
{ for i in $(seq 1 6); do echo "echo q$i >> $PWD/starts; sleep 0.05"; done
  for i in $(seq 1 8); do echo "echo s$i >> $PWD/starts; sleep 37"; done; } >plain.txt
interrupt one rank0 INT "$TF" run -o one --slots 2 plain.txt
stopped "SIGINT, one process" one 6 2 6
check "SIGINT: says how to finish" 'grep -q "stopped by Interrupt; finish with: taskfarm run --resume -o one plain.txt" err.txt'
# GNU parallel reads the joblog as its own: its --resume runs the same tasks ours does.
if command -v parallel >/dev/null; then
    cp one/joblog.tsv pj.tsv
    parallel --dry-run --resume --joblog pj.tsv -j1 :::: plain.txt >par.txt 2>/dev/null
    check "GNU parallel --resume on the joblog would run the 8 long tasks, no other" \
        '[ "$(wc -l <par.txt)" = 8 ] && [ "$(grep -c "sleep 37" par.txt)" = 8 ]' || sed 's/^/    /' par.txt
    cp one/joblog.tsv pj.tsv
    parallel --dry-run --retry-failed --joblog pj.tsv >par.txt 2>/dev/null
    check "GNU parallel --retry-failed on the joblog finds nothing failed" '[ ! -s par.txt ]'
else
    skip "GNU parallel --resume on the joblog" --missing parallel
fi
resumed "SIGINT, one process" one 14 plain.txt
check "SIGINT, one process: --resume ran the 8 long tasks again, no quick one" \
    '[ "$(for i in 1 2 3 4 5 6; do count q$i; done | tr "\n" " ")" = "1 1 1 1 1 1 " ] &&
     [ "$(grep -c "^s" starts)" = 10 ] && [ "$(for i in 1 2 3 4 5 6 7 8; do count s$i; done | sort | uniq -c | tr -s " " | tr "\n" ",")" = " 6 1, 2 2," ]'

# ---- as scancel and Slurm's time limit do: SIGTERM to every process, the tasks too ----
# A task's death by the signal may reach rank 0 before its own tick sees
# the signal: it is still an interruption, and not retried (--retries 1).
sed -i 's/true$/sleep 37/' plain.txt
interrupt all all TERM "$TF" run -o all --retries 1 --slots 2 plain.txt
stopped "SIGTERM to every process" all 6 2 6
check "SIGTERM to every process: 0 retried" 'grep -q "0 retried;" err.txt'
# The tasks' deaths reach rank 0 before its own signal does.
interrupt late late TERM "$TF" run -o late --retries 1 --slots 2 plain.txt
stopped "SIGTERM to the tasks, then to rank 0" late 6 2 6
check "SIGTERM to the tasks, then to rank 0: 0 retried" 'grep -q "0 retried;" err.txt'

# ---- under mpirun -np 3: SIGUSR1 (Slurm's warning) to rank 0; a DAG ----
# Ranks 0, 1 and 2 with one slot each; each also holds one queued task
# (prefetch), which the stop keeps from starting. @after=long tasks wait
# and are not started either.
{ for i in $(seq 1 6); do echo "@id=q$i echo q$i >> $PWD/starts; sleep 0.05"; done
  for i in $(seq 1 6); do echo "@id=s$i echo s$i >> $PWD/starts; sleep 37"; done
  echo "@id=after1 @after=s1 echo after1 >> $PWD/starts"
  echo "@id=after2 @after=s2,q1 echo after2 >> $PWD/starts"; } >dag.txt
STARTED=3 interrupt mpi rank0 USR1 mpirun --oversubscribe -np 3 "$TF" run -o mpi --slots 1 dag.txt
stopped "SIGUSR1 to rank 0, mpirun -np 3" mpi 6 3 5
check "SIGUSR1: named as the cause" 'grep -q "stopped by User defined signal 1" err.txt'
resumed "SIGUSR1, mpirun -np 3" mpi 14 dag.txt mpirun --oversubscribe -np 3
check "SIGUSR1, mpirun -np 3: --resume ran the 3 interrupted tasks again, every other task once" \
    '[ "$(sort starts | uniq -c | awk "\$1 == 2 { print \$2 }" | wc -l)" = 3 ] &&
     [ "$(sort -u starts | wc -l)" = 14 ] && [ "$(wc -l <starts)" = 17 ]'

# ---- under mpirun -np 3: SIGINT to rank 0 with retries: a stop is no retry ----
sed -i 's/true$/sleep 37/' dag.txt
STARTED=3 interrupt mpiint rank0 INT mpirun --oversubscribe -np 3 "$TF" run -o mpiint --retries 2 --slots 1 dag.txt
stopped "SIGINT to rank 0, mpirun -np 3, --retries 2" mpiint 6 3 5
check "--retries 2: the interrupted tasks were not retried" '[ "$(grep -c "^s" starts)" = 3 ]'
check "--retries 2: 0 retried" 'grep -q "0 retried;" err.txt'

# ---- a task that dies of SIGTERM when no stop comes is a failure ----
# (rank 0 waits a second for a stop signal that could follow, then says so)
printf 'echo ok\nkill -TERM $$\n@after=2 echo never\nexit 3\n' >selfkill.txt
run "a task killed by SIGTERM, no stop: the run fails" 1 "$TF" run -o selfkill --slots 2 selfkill.txt
check "SIGTERM without a stop: 1 done, 2 failed, 1 skipped, nothing interrupted" \
    'grep -q "4 tasks: 1 done, 2 failed, 1 skipped" err.txt && grep -q "killed by Terminated" err.txt &&
     [ "$(state selfkill)" = failed ] && [ "$(status_field selfkill interrupted)" = 0 ]' || sed 's/^/    /' err.txt

summary stop.sh
