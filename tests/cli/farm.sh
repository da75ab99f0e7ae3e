#!/usr/bin/env bash
# taskfarm run / status end to end: real shell children, one process and under mpirun.
# usage: farm.sh [BIN_DIR [TEST_BUILD_DIR]] (the second holds mpi_hello)
set -u
BIN=$(cd "${1:-bin}" && pwd)
TBUILD=$(cd "${2:-build/tests}" && pwd)
TF=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp"
RUN_LIMIT=300 # seconds for each `run` (lib.sh); a hang fails
rows() { tail -n +2 "$1/joblog.tsv" | wc -l; }
# gone CMD...: no live (non-zombie) process runs exactly CMD within 10 s.
# Killed children are reparented to init, which here reaps only every ~2 s.
gone() {
    local i
    for i in $(seq 50); do
        ps -eo stat=,args= | awk -v c="$*" '$1 !~ /^Z/ { $1 = ""; sub(/^ /, ""); if ($0 == c) f = 1 } END { exit !f }' || return 0
        sleep 0.2
    done
    return 1
}
# Exitval of joblog rows for line L: "col7 col8" per attempt.
exits() { awk -F'\t' -v l="$2" '$1 == l { printf "%s:%s ", $7, $8 }' "$1/joblog.tsv"; }

# ---- a plain list, one process ----
seq 1 50 | sed 's/.*/echo line &/' >plain.txt
run "plain list" 0 "$TF" run -o p1 plain.txt
check "plain: 50 joblog rows" '[ "$(rows p1)" = 50 ]'
check "plain: output captured" 'grep -qx "line 17" p1/out/17.out'
check "plain: joblog columns" \
    'head -1 p1/joblog.tsv | grep -q "^Seq	Host	Starttime	JobRuntime	Send	Receive	Exitval	Signal	Command$"'
check "plain: summary" 'grep -q "50 tasks: 50 done, 0 failed, 0 skipped" err.txt'
run "status after the run" 0 "$TF" status p1
check "status: done 50/50" 'grep -q "^p1: done" out.txt && grep -q "50/50 done" out.txt'

# ---- priorities with one slot: the start order is the priority order ----
# (Each task lasts 10 ms, so that no two start in the same millisecond of
# the joblog's start times, which would leave their order to sort.)
{
    echo '@id=gate sleep 0.2'
    for i in $(seq 1 12); do
        echo "@id=t$i @after=gate @prio=$(( (i * 7) % 5 )) echo $i; sleep 0.01"
    done
} >prio.txt
run "priorities, one slot" 0 "$TF" run -o p2 --slots 1 prio.txt
got=$(tail -n +2 p2/joblog.tsv | sort -t$'\t' -k3,3n | awk -F'\t' '$1 != 1 { print $1 - 1 }' | tr '\n' ' ')
want=$(for i in $(seq 1 12); do echo "$(( (i * 7) % 5 )) $i"; done | sort -k1,1nr -k2,2n | awk '{ print $2 }' | tr '\n' ' ')
check "priority order: $got" '[ "$got" = "$want" ]'

# ---- @cores: a 2-core task holds both slots of a 2-slot process ----
cat >cores.txt <<'EOF'
@id=w1 @cores=2 echo "$TASKFARM_CORES $OMP_NUM_THREADS" > cores-w1.txt; sleep 0.3
@id=n1 echo "$TASKFARM_CORES $OMP_NUM_THREADS" > cores-n1.txt; sleep 0.3
@id=n2 echo "$TASKFARM_CORES $OMP_NUM_THREADS" > cores-n2.txt; sleep 0.3
EOF
run "cores" 0 "$TF" run -o p3 --slots 2 cores.txt
check "cores: 2-core task got 2 cores, OMP_NUM_THREADS=2" \
    '[ "$(awk "{print NF==2 && \$2==2 && split(\$1,a,\",\")==2}" cores-w1.txt)" = 1 ]'
check "cores: 1-core tasks got 1 core each" \
    'grep -qE "^[0-9]+ 1$" cores-n1.txt && grep -qE "^[0-9]+ 1$" cores-n2.txt'
# Packing: n1 and n2 ran together, w1 alone, so w1 never overlapped them.
# Start and runtime are each rounded to the millisecond, so an end may
# appear up to 2 ms after the next start; that slack is no overlap.
check "cores: the 2-core task ran alone" "awk -F'\t' 'NR > 1 { s[\$1] = \$3; e[\$1] = \$3 + \$4 - 0.002 }
    END { exit !((e[1] <= s[2] && e[1] <= s[3]) || (e[2] <= s[1] && e[3] <= s[1])) }' p3/joblog.tsv"

# ---- timeout: the whole process group ends, nothing is left behind ----
printf '@id=slow @timeout=1 sleep 100 & sleep 100; wait\n@id=stubborn @timeout=1 trap "" TERM; sleep 100\n' >timeout.txt
start=$(date +%s)
run "timeout" 1 "$TF" run -o p4 --grace 1 timeout.txt
check "timeout: ended within a few seconds" '[ $(( $(date +%s) - start )) -lt 30 ]'
check "timeout: status 124 reported" 'grep -q "failed with status 124" err.txt'
check "timeout: TERM then KILL in the joblog" '[ "$(exits p4 1)" = "-1:15 " ] && [ "$(exits p4 2)" = "-1:9 " ]'
check "timeout: no sleep 100 left" 'gone sleep 100'

# ---- retries: fails twice, then succeeds ----
printf '@id=flaky @retries=2 echo $TASKFARM_ATTEMPT >> attempts.txt; test $TASKFARM_ATTEMPT -ge 3\n' >retry.txt
run "retries" 0 "$TF" run -o p5 retry.txt
check "retries: three attempts 1 2 3" '[ "$(tr "\n" " " <attempts.txt)" = "1 2 3 " ]'
check "retries: joblog has each attempt" '[ "$(exits p5 1)" = "1:0 1:0 0:0 " ]'

# ---- failure propagation; the rest of the DAG goes on ----
cat >fail.txt <<'EOF'
@id=a exit 3
@id=b @after=a touch ran-b
@id=c @after=b touch ran-c
@id=d touch ran-d
EOF
run "failure propagation" 1 "$TF" run -o p6 fail.txt
check "failure: dependents did not run" '[ ! -e ran-b ] && [ ! -e ran-c ]'
check "failure: unrelated task ran" '[ -e ran-d ]'
check "failure: summary counts" 'grep -q "4 tasks: 1 done, 1 failed, 2 skipped" err.txt'
run "status of a failed run: the run's exit status" 1 "$TF" status p6
check "status lists the failure" 'grep -q "failed: line 1 .*exit 3" out.txt'

# ---- --halt-on-error: stop, end running tasks, exit cleanly ----
{ echo '@id=boom @prio=9 sleep 0.3; exit 1'; for i in $(seq 1 40); do echo "sleep 2"; done; } >halt.txt
start=$(date +%s)
run "halt on error" 1 "$TF" run -o p7 --slots 2 --grace 1 --halt-on-error halt.txt
check "halt: ended quickly (not 40 x 2 s)" '[ $(( $(date +%s) - start )) -lt 20 ]'
check "halt: most tasks skipped" 'grep -qE "skipped" err.txt && [ "$(rows p7)" -lt 10 ]'
check "halt: no sleep 2 left" 'gone sleep 2'

# ---- outdir safety, --force, --resume ----
run "outdir in use: refused" 2 "$TF" run -o p6 fail.txt
check "refusal says how to go on" 'grep -q -- "--resume" err.txt'
check "refusal kept the joblog" '[ "$(rows p6)" = 2 ]'
sed -i 's/^@id=a exit 3$/@id=a true/' fail.txt
run "resume after fixing the file" 0 "$TF" run -o p6 --resume fail.txt
check "resume: d not run again" '[ "$(awk -F"\t" "\$1 == 4" p6/joblog.tsv | wc -l)" = 1 ]'
check "resume: b and c ran" '[ -e ran-b ] && [ -e ran-c ]'
check "resume: summary counts earlier run" 'grep -q "1 in an earlier run" err.txt'
run "force starts over" 0 "$TF" run -o p6 --force fail.txt
check "force: joblog truncated" '[ "$(rows p6)" = 4 ]'
# A kill between a task's joblog row and its journal commit: the row alone
# keeps the task done. Without the state files only the joblog is left;
# a torn last row (no newline) does not count and is cut off before appending.
rm -f p6/state-*.h5 p6/journal-*.tfj
printf '4\tvm\t1.0\t0.1\t0\t0\t0\t0\ttouch ran-x' >>p6/joblog.tsv
rm -f ran-b
run "resume from the joblog alone" 0 "$TF" run -o p6 --resume fail.txt
check "joblog resume: warns that no state was saved" 'grep -q "no saved state" err.txt'
# The 4 whole rows of the earlier runs; the torn one is gone.
check "joblog resume: nothing ran again" '[ ! -e ran-b ] && [ "$(rows p6)" = 4 ]'
check "joblog resume: summary counts them" 'grep -q "4 tasks: 4 done (4 in an earlier run)" err.txt'

# The other way round: the state has tasks done whose joblog rows were lost
# (a full disk while writing them), or the joblog is gone altogether. The
# state alone keeps them done, and --resume writes their rows back.
seq 1 20 | sed 's/.*/echo r& >> runs.txt/' >rows.txt
rm -f runs.txt
run "rows: first run" 0 "$TF" run -o prep rows.txt
awk -F'\t' 'NR == 1 || ($1 != 5 && $1 != 12)' prep/joblog.tsv >prep/j && mv prep/j prep/joblog.tsv
run "rows: resume with two rows lost" 0 "$TF" run -o prep --resume rows.txt
check "rows: nothing ran again" '[ "$(wc -l <runs.txt)" = 20 ]'
check "rows: the two rows are back, every task once" \
    '[ "$(tail -n +2 prep/joblog.tsv | cut -f1 | sort -n | uniq | wc -l)" = 20 ] && [ "$(rows prep)" = 20 ]'
check "rows: the repair is said" 'grep -q "2 tasks the saved state shows done had no success row" err.txt'
rm prep/joblog.tsv
run "rows: resume without a joblog" 0 "$TF" run -o prep --resume rows.txt
check "rows: nothing ran again without a joblog" '[ "$(wc -l <runs.txt)" = 20 ]'
check "rows: a new joblog with every task once" \
    '[ "$(tail -n +2 prep/joblog.tsv | cut -f1 | sort -n | uniq | wc -l)" = 20 ] && [ "$(rows prep)" = 20 ]'
check "rows: the new joblog has its header" 'head -1 prep/joblog.tsv | grep -q "^Seq"'
check "joblog resume: torn row cut off, every row whole" \
    '! grep -q "touch ran-x" p6/joblog.tsv && [ "$(awk -F"\t" "NF != 9" p6/joblog.tsv | wc -l)" = 0 ]'

# ---- signals: stop, end the children, exit 75; --resume finishes ----
# sig_run OUTDIR NP: run sig.txt (NP 0: no mpirun), SIGTERM rank 0 after 2 s.
printf '@id=s1 sleep 30\n@id=s2 sleep 30\n@id=s3 sleep 30\n@id=s4 sleep 30\n@id=s5 sleep 30\n@id=after @after=s1 true\n' >sig.txt
sig_run() {
    local dir=$1 np=$2 pid=
    if [ "$np" = 0 ]; then
        timeout 120 "$TF" run -q -o "$dir" --slots 2 sig.txt >out.txt 2>err.txt &
    else
        timeout 120 mpirun --oversubscribe -np "$np" "$TF" run -q -o "$dir" sig.txt >out.txt 2>err.txt &
    fi
    local job=$!
    sleep 2
    for p in $(pgrep -x taskfarm); do
        if [ "$np" = 0 ] || tr '\0' '\n' </proc/$p/environ | grep -qx OMPI_COMM_WORLD_RANK=0; then
            grep -qa -- "$dir" /proc/$p/cmdline && pid=$p
        fi
    done
    [ -n "$pid" ] && kill -TERM "$pid"
    wait $job
}
for np in 0 3; do
    sig_run sg$np $np
    rc=$?
    check "SIGTERM (np $np): exit 75" '[ $rc = 75 ]'
    check "SIGTERM (np $np): state stopped" 'grep -qx "state stopped" sg$np/status'
    check "SIGTERM (np $np): says how to resume" 'grep -q -- "--resume" err.txt'
    check "SIGTERM (np $np): no sleep 30 left" 'gone sleep 30'
done
sed -i 's/sleep 30/true/' sig.txt
run "resume after a signal" 0 "$TF" run -o sg0 --resume sig.txt
check "resume after a signal: all done" 'grep -q "6 tasks: 6 done" err.txt'

# ---- an outdir, or its out/, that is not a directory: said, exit 2 ----
touch notadir
run "outdir is a file" 2 "$TF" run -o notadir plain.txt
check "outdir is a file: said so" 'grep -q "notadir is there but is not a directory" err.txt'
mkdir -p outfile && touch outfile/out
run "OUTDIR/out is a file" 2 "$TF" run -o outfile plain.txt
check "OUTDIR/out is a file: said so, nothing ran" \
    'grep -q "outfile/out is there but is not a directory" err.txt && [ ! -e outfile/joblog.tsv ]'

# ---- a symlink planted at out/ID.out: not followed, replaced by the task's file ----
echo keep >precious
mkdir -p plant/out && ln -s "$PWD/precious" plant/out/1.out
printf 'echo overwritten\n' >plant.txt
run "a symlink at out/1.out" 0 "$TF" run -o plant plant.txt
check "a symlink at out/1.out: the file it names is untouched" '[ "$(cat precious)" = keep ]'
check "a symlink at out/1.out: replaced by the task's output file" \
    '[ ! -L plant/out/1.out ] && [ "$(cat plant/out/1.out)" = overwritten ]'

# ---- bad input: exit 2, nothing runs, no outdir written ----
printf '@id=x touch ran-x\n@id=y @after=nope true\n' >badfile.txt
run "bad task file" 2 "$TF" run -o p8 badfile.txt
check "bad file: message names file and line" 'grep -q "^badfile.txt:2: unknown dependency" err.txt'
check "bad file: nothing ran, no outdir" '[ ! -e ran-x ] && [ ! -e p8 ]'
run "missing task file" 2 "$TF" run -o p9 no-such.txt
run "bad option value" 2 "$TF" run --slots 0 plain.txt
run "unknown option" 2 "$TF" run --frobnicate plain.txt
run "status of nothing" 2 "$TF" status no-such-dir

# ---- binary output and very long lines ----
printf '@id=bin printf "\\000\\001\\377abc"\n@id=long head -c 3000000 /dev/zero | tr "\\0" x\n@id=err echo to-stderr >&2\n' >bin.txt
run "binary and long output" 0 "$TF" run -o p10 bin.txt
check "binary output intact" '[ "$(od -An -tx1 p10/out/bin.out | tr -d " \n")" = "0001ff616263" ]'
check "3 MB line intact" '[ "$(wc -c <p10/out/long.out)" = 3000000 ]'
check "stderr captured" 'grep -qx to-stderr p10/out/err.err'

# ---- many tasks: FARM_MANY `true` (20,000 in `make check`; 100,000 in
# `make check-long`) ----
# A process start costs ~2-3 ms on the development VM: minutes, not seconds.
many=${FARM_MANY:-20000}
yes true | head -n "$many" >many.txt
RUN_LIMIT=1500 run "$many true tasks" 0 "$TF" run -q -o p11 many.txt
check "$many joblog rows, all exit 0" \
    '[ "$(rows p11)" = "$many" ] && [ "$(awk -F"\t" "NR > 1 && \$7 != 0" p11/joblog.tsv | wc -l)" = 0 ]'

# ---- under mpirun: 1, 2 and 4 ranks ----
for np in 1 2 4; do
    run "mpirun -np $np" 0 mpirun --oversubscribe -np $np "$TF" run -o m$np plain.txt
    check "np $np: 50 rows" '[ "$(rows m$np)" = 50 ]'
    if [ $np -gt 1 ]; then
        check "np $np: rank 0 ran nothing" \
            '! grep -h "rank 0" m$np/out/*.out >/dev/null 2>&1'
    fi
done
printf '@id=a exit 3\n@id=b @after=a true\n@id=c true\n' >fail2.txt
run "mpirun failure exit code" 1 mpirun --oversubscribe -np 3 "$TF" run -o m5 fail2.txt
check "mpirun: failure and skip counted" 'grep -q "3 tasks: 1 done, 1 failed, 1 skipped" err.txt' 
run "mpirun bad file: all ranks exit 2" 2 mpirun --oversubscribe -np 3 "$TF" run -o m6 badfile.txt

# ---- an MPI program as a task: it starts on its own, not in this job ----
# A singleton, and one under its own mpirun, from a farm run by hand and
# from one under mpirun (whose launcher variables the tasks must not see).
HELLO=$TBUILD/mpi_hello
printf '@id=single %s\n@id=nested mpirun --oversubscribe -np 2 %s\n' \
    "$HELLO" "$HELLO" >mpitask.txt
for np in 0 2; do
    if [ $np = 0 ]; then
        run "MPI tasks, one process" 0 "$TF" run -o mt$np mpitask.txt
    else
        run "MPI tasks, mpirun -np $np" 0 mpirun --oversubscribe -np $np \
            "$TF" run -o mt$np mpitask.txt
    fi
    check "np $np: a singleton MPI task ran alone" \
        'grep -qx "hello rank 0 size 1 sum 1" mt$np/out/single.out'
    check "np $np: a nested mpirun -np 2 ran both ranks" \
        '[ "$(grep -c "size 2 sum 2" mt$np/out/nested.out)" = 2 ]'
done
printf 'env\n' >env.txt
run "environment of a task under mpirun" 0 mpirun --oversubscribe -np 2 "$TF" run -o mt4 env.txt
check "task env: no OMPI_COMM_WORLD_, PMIX_ or OMPI_MCA_orte_" \
    '! grep -E "^(OMPI_COMM_WORLD_|PMIX_|PMI_|OMPI_MCA_(orte_|ess|pmix))" mt4/out/1.out'
check "task env: TASKFARM_RANK set, the user's own OMPI_ALLOW_RUN_AS_ROOT kept" \
    'grep -q "^TASKFARM_RANK=1$" mt4/out/1.out &&
     { [ -z "${OMPI_ALLOW_RUN_AS_ROOT:-}" ] || grep -q "^OMPI_ALLOW_RUN_AS_ROOT=1$" mt4/out/1.out; }'

summary
