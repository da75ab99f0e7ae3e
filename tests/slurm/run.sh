#!/usr/bin/env bash
# make check-slurm: start a real one-node Slurm, submit jobscripts/* with sbatch, check joblogs, cancels, requeues, time limits.
#
#   bash tests/slurm/run.sh [BINDIR]        (as root; about 4 minutes)
#
# Needs munge, slurmctld, slurmd and slurm-client (make deps). Everything,
# configuration included, lives in a temporary directory; every daemon
# started is stopped at the end, also when a check fails or on Ctrl-C.
set -u
BIN=$(cd "${1:-bin}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
JS=$(cd "$HERE/../../jobscripts" && pwd)
export TASKFARM=$BIN/taskfarm
. "$HERE/../lib.sh"
# srun reads these from the environment; the tests choose layouts themselves.
unset SLURM_JOB_ID SLURM_JOBID SLURM_NTASKS SLURM_NNODES SLURM_CPUS_PER_TASK

if [ "$(id -u)" != 0 ]; then
    # It starts slurmd and munged, which run as root.
    skip check-slurm --missing root
    summary check-slurm
    exit
fi
[ -x "$TASKFARM" ] || { echo "check-slurm: no $TASKFARM (make first)" >&2; exit 1; }
. "$HERE/cluster.sh"

T=$(mktemp -d /tmp/tf-slurm.XXXXXX)
keep=${KEEP:-0} # KEEP=1: leave the directory (logs, outdirs) for a look
only=${ONLY:-}  # ONLY="cancel walltime": just those parts (names below)
part() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }
finish() {
    local rc=$?
    trap - EXIT INT TERM
    cluster_stop || { echo "FAIL daemons or job processes were left behind"; rc=1; }
    if [ "$keep" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
    exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

start=$(date +%s)
cluster_start "$T" || { echo "FAIL could not start Slurm"; exit 1; }
CPUS=$(sinfo -h -N -o %c)
echo "Slurm $(sinfo --version | cut -d' ' -f2) on $(hostname -s): $CPUS CPUs, started in $(($(date +%s) - start)) s"

# ---- helpers ----
# dups FILE: lines that occur more than once.
dups() { sort "$1" | uniq -d | tr '\n' ' '; }
# until_rows OUTDIR N SECONDS: wait for N joblog rows.
until_rows() { cluster_wait "$3" eval "[ \"\$(rows $1)\" -ge $2 ]"; }
# overlap OUTDIR: the most tasks that ran at the same moment (from the joblog).
overlap() {
    awk -F'\t' 'NR > 1 { s[NR] = $3; e[NR] = $3 + $4 }
        END { for (i in s) { c = 0; for (j in s) if (s[j] <= s[i] && s[i] < e[j] - 0.05) c++; if (c > m) m = c } print m + 0 }' \
        "$1/joblog.tsv"
}
# newdir NAME: a fresh submit directory.
newdir() { mkdir -p "$T/work/$1" && cd "$T/work/$1"; }
showlog() { echo "    ---- $1"; sed 's/^/    /' "$1" | tail -n 25; }

# ---- 1. one-node farm, no launcher; outdir defaults to the submit directory ----
t_one() {
newdir one
for i in $(seq 1 20); do echo "@id=t$i echo out-$i; echo t$i >> $PWD/dones"; done >tasks.txt
j=$(submit --cpus-per-task="$CPUS" -o job.out "$JS/farm-one-node.sbatch" tasks.txt)
s=$(wait_job "$j" 120)
check "one-node: job COMPLETED, exit 0:0 ($s $(field "$j" ExitCode))" \
    '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ]' || showlog job.out
check "one-node: outdir in the submit directory, state done" '[ "$(state taskfarm-out)" = done ]'
check "one-node: 20 joblog rows, each task once, exit 0" '[ "$(rows taskfarm-out)" = 20 ] && once taskfarm-out 20'
check "one-node: task output captured" 'grep -qx out-7 taskfarm-out/out/t7.out'
check "one-node: $CPUS slots used" 'grep -qx "slots $CPUS" taskfarm-out/status'
check "one-node: each task ran once" '[ "$(wc -l <dones)" = 20 ] && [ -z "$(dups dones)" ]'

}

# ---- 2. MPI layouts: per core and hybrid, each with srun --mpi=pmix and mpirun ----
t_layouts() {
# Tasks record the rank that ran them: per core, rank 0 runs tasks too; the
# hybrid layout's extra rank 0 only schedules.
layout() { # NAME SCRIPT LAUNCHER WANT_SLOTS RAN SBATCH_ARGS...
    local name=$1 script=$2 launcher=$3 want_slots=$4 ran=$5
    shift 5
    newdir "$name"
    for i in $(seq 1 8); do echo "@id=t$i echo \$TASKFARM_RANK > $PWD/rank.\$TASKFARM_TASK_ID; sleep 0.5"; done >tasks.txt
    local j s
    j=$(LAUNCHER=$launcher submit "$@" -o job.out "$JS/$script" tasks.txt out)
    s=$(wait_job "$j" 120)
    check "$name: job COMPLETED, exit 0:0 ($s $(field "$j" ExitCode))" \
        '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ]' || showlog job.out
    check "$name: each task once, exit 0" 'once out 8'
    check "$name: one MPI job of 2 ranks, $want_slots slot(s) in all" \
        'grep -qx "ranks 2" out/status && grep -qx "slots $want_slots" out/status'
    check "$name: the tasks ran on rank(s) $ran" '[ "$(cat rank.* | sort -u | tr "\n" " ")" = "$ran " ]'
    check "$name: at most $want_slots at once, and $want_slots did" '[ "$(overlap out)" = "$want_slots" ]'
}
layout percore-srun farm-per-core.sbatch srun 2 "0 1" --nodes=1 --ntasks-per-node=2
layout percore-mpirun farm-per-core.sbatch mpirun 2 "0 1" --nodes=1 --ntasks-per-node=2
layout hybrid-srun farm-hybrid.sbatch srun "$CPUS" 1 --nodes=1 --ntasks-per-node=1 --cpus-per-task="$CPUS"
layout hybrid-mpirun farm-hybrid.sbatch mpirun "$CPUS" 1 --nodes=1 --ntasks-per-node=1 --cpus-per-task="$CPUS"

}

# ---- 3. scancel mid-run, then the same script again: finished tasks are not redone ----
t_cancel() {
newdir cancel
for i in $(seq 1 24); do echo "@id=t$i echo t$i >> $PWD/starts; sleep 0.5; echo t$i >> $PWD/dones"; done >tasks.txt
j=$(LAUNCHER=srun submit --nodes=1 --ntasks-per-node=2 -o job1.out "$JS/farm-per-core.sbatch" tasks.txt out)
if until_rows out 5 60; then scancel "$j"; else bad "cancel: no 5 tasks done within 60 s"; fi
s=$(wait_job "$j" 60)
check "cancel: job CANCELLED ($s)" '[ "$s" = CANCELLED ]' || showlog job1.out
check "cancel: taskfarm saved its state as stopped" '[ "$(state out)" = stopped ]'
# scancel's SIGTERM reaches the tasks too: those it killed are interrupted.
check "cancel: a stop, no failure: 0 failed, no failure row ($(awk '$1 == "interrupted"' out/status))" \
    '[ "$(awk "\$1 == \"failed\" { print \$2 }" out/status)" = 0 ] && [ "$(rows out)" = "$(succ out | wc -l)" ]'
nint=$(awk '$1 == "interrupted" { print $2 }' out/status)
before=$(succ out | tr '\n' ' ')
nb=$(succ out | wc -l)
check "cancel: some but not all tasks finished before ($nb)" '[ "$nb" -ge 5 ] && [ "$nb" -lt 24 ]'
# Resubmitted with the other launcher: the state is taskfarm's, not the launcher's.
j=$(LAUNCHER=mpirun submit --nodes=1 --ntasks-per-node=2 -o job2.out "$JS/farm-per-core.sbatch" tasks.txt out)
s=$(wait_job "$j" 120)
check "cancel: resubmitted job COMPLETED ($s $(field "$j" ExitCode))" \
    '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ]' || showlog job2.out
check "cancel: every task exactly once successful in the joblog" 'once out 24'
redone=$(for l in $before; do [ "$(grep -cx "t$l" starts)" = 1 ] || echo "t$l"; done | tr '\n' ' ')
check "cancel: none of the $nb finished tasks started again (${redone:-none})" '[ -z "$redone" ]'
# A task the signal killed after its last line (the signal reaches a
# task's shell and its sleep in no set order) was interrupted all the
# same, and runs again: only those may have finished twice.
twice=$(dups dones)
again=$(for t in $twice; do case " $before " in *" ${t#t} "*) echo "$t" ;; esac; done | tr '\n' ' ')
check "cancel: every task finished; twice only if interrupted (${twice:-none} of ${nint:-?} interrupted)" \
    '[ "$(sort -u dones | wc -l)" = 24 ] && [ -z "$again" ] && [ "$(echo $twice | wc -w)" -le "${nint:-0}" ]'

}

# ---- 4. campaign: the warning (sent by hand), exit 75, requeue, finish (mpirun) ----
t_requeue() {
newdir requeue
for i in $(seq 1 12); do echo "@id=t$i echo t$i >> $PWD/starts; sleep 0.5; echo t$i >> $PWD/dones"; done >tasks.txt
j=$(LAUNCHER=mpirun submit --nodes=1 --ntasks-per-node=2 --time=10 -o job.out "$JS/campaign.sbatch" tasks.txt out)
# scancel --batch signals the batch shell alone, as --signal=B:USR1@... does.
if until_rows out 3 60; then scancel --batch --signal=USR1 "$j"; else bad "requeue: no 3 tasks done within 60 s"; fi
cluster_wait 30 eval '[ "$(field $j Restarts)" = 1 ]'
before=$(grep -ho '^t[0-9]*' dones | tr '\n' ' ')
s=$(wait_job "$j" 120)
check "requeue: job COMPLETED after 1 restart ($s $(field "$j" ExitCode) restarts $(field "$j" Restarts))" \
    '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ] && [ "$(field "$j" Restarts)" = 1 ]' || showlog job.out
check "requeue: the trap passed the warning on; taskfarm stopped" \
    'grep -q "walltime warning" job.out && grep -q "state stopped" job.out && grep -q "requeueing job $j" job.out'
check "requeue: two runs in the job log, the second finished the file" \
    'grep -q "run 2 on" job.out && grep -q "state done" job.out'
check "requeue: every task exactly once successful" 'once out 12'
redone=$(for t in $before; do [ "$(grep -cx "$t" starts)" = 1 ] || echo "$t"; done | tr '\n' ' ')
check "requeue: none of the tasks finished before the warning started again (${redone:-none})" '[ -z "$redone" ]'

}

# ---- 5. campaign: restart cap reached, so no requeue; resume by hand (no launcher) ----
t_cap() {
newdir cap
for i in $(seq 1 10); do echo "@id=t$i sleep 0.5; echo t$i >> $PWD/dones"; done >tasks.txt
j=$(LAUNCHER=none MAX_RESTARTS=0 submit --nodes=1 --ntasks=1 --ntasks-per-node=1 --cpus-per-task=1 \
    --time=10 -o job.out "$JS/campaign.sbatch" tasks.txt out)
if until_rows out 2 60; then scancel --batch --signal=USR1 "$j"; else bad "cap: no 2 tasks done within 60 s"; fi
s=$(wait_job "$j" 60)
check "cap: job ended with exit 75, not requeued ($s $(field "$j" ExitCode) restarts $(field "$j" Restarts))" \
    '[ "$(field "$j" ExitCode)" = 75:0 ] && [ "$(field "$j" Restarts)" = 0 ]' || showlog job.out
check "cap: the log says why" 'grep -q "not requeued: 0 restarts reached MAX_RESTARTS" job.out'
timeout 120 "$TASKFARM" run --resume -q -o out tasks.txt 2>resume.err
check "cap: taskfarm run --resume by hand finishes ($?)" 'once out 10 && [ -z "$(dups dones)" ]'

}

# ---- 6. campaign: a real time limit (srun --mpi=pmix) ----
t_walltime() {
# --time=1 with the warning 50 s before: slurmctld checks limits every 30 s
# and sends the warning at the first check within 50 + 30 s of the end, so
# here at the first check, up to 30 s into the run. The last task needs longer
# than that the first time it runs (and no time the second), so the first
# run cannot finish before the warning. On a loaded machine the step may
# start so late that the warning comes while short tasks still run, or in
# the second run too: a short task the stop ended runs again (by design),
# and there may be more than one restart.
# The long task has no @est, so taskfarm starts it; its own stop (MARGIN
# before the end) would come after the warning.
newdir walltime
{ for i in $(seq 1 10); do echo "@id=t$i echo t$i >> $PWD/starts; sleep 0.2"; done
  echo "@id=long @prio=-1 if [ -e $PWD/long.ran ]; then true; else touch $PWD/long.ran; sleep 300; fi"
} >tasks.txt
j=$(LAUNCHER=srun MARGIN=5 submit --nodes=1 --ntasks-per-node=2 --time=1 --signal=B:USR1@50 -o job.out \
    "$JS/campaign.sbatch" tasks.txt out)
s=$(wait_job "$j" 240)
check "walltime: job COMPLETED after a restart ($s $(field "$j" ExitCode) restarts $(field "$j" Restarts))" \
    '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ] && [ "$(field "$j" Restarts)" -ge 1 ]' || showlog job.out
check "walltime: Slurm's warning reached the script and taskfarm, which exited 75 under srun" \
    'grep -q "walltime warning" job.out && grep -q "User defined signal 1: stopping" job.out &&
     grep -q "step exited with 75, state stopped" job.out'
check "walltime: requeued, and the second run finished" \
    'grep -q "requeueing job $j" job.out && grep -q "run 2 on" job.out && grep -q "step exited with 0, state done" job.out'
check "walltime: every task exactly once successful" 'once out 11'
# A stop is no failure: the attempts it ended have no joblog row (as in
# GNU parallel), the status after each run (in the job log) counts them
# as interrupted, and --resume runs them again.
check "walltime: the long task's only joblog row is its success" \
    '[ "$(awk -F"\t" "\$1 == 11 { print \$7 \":\" \$8 }" out/joblog.tsv | tr "\n" " ")" = "0:0 " ]'
check "walltime: no failed attempt in the joblog, none counted failed" \
    '[ "$(rows out)" = 11 ] && ! grep -q "[1-9][0-9]* failed" job.out'
# Each run's interrupted tasks: the long one once, short ones the stop ended.
nint=$(grep -o "([0-9]* interrupted" job.out | tr -d '(' | awk '{ n += $1 } END { print n + 0 }')
check "walltime: the stop interrupted the long task ($nint interrupted in all)" '[ "$nint" -ge 1 ]'
check "walltime: the short tasks ran once, or twice when the stop ended them ($((nint - 1)))" \
    '[ "$(wc -l <starts)" = $((10 + nint - 1)) ] && [ "$(dups starts | wc -w)" = $((nint - 1)) ]'

}

# ---- 6b. campaign: walltime-aware dispatch under a real time limit (srun) ----
t_deadline() {
# --time=1: the job ends a minute after it starts, and taskfarm learns when
# (squeue). MARGIN=42: it stops by itself 42 s before, and starts a task
# only if its @est (3 s; each takes 2) ends by then, so the first run
# stops with 75 about 17 s into the job, when nothing more fits; 20 tasks
# on 2 ranks of one slot are more than that run can do, the job requeues
# itself and the next run does the rest. Slurm's warning (USR1, the
# fallback) is asked for 5 s before the end. slurmctld sends it at its
# first 30 s check within 35 s of the end (send_job_warn_signal), 25 s
# into the job at the earliest, after taskfarm has stopped: so the
# warning, when it comes at all, finds no taskfarm to pass it to. No task
# may be killed: each starts once, every joblog row is a success, none is
# interrupted, and no taskfarm was stopped by the signal.
newdir deadline
for i in $(seq 1 20); do echo "@id=t$i @est=3s echo t$i >> $PWD/starts; sleep 2"; done >tasks.txt
local t0 j s nint
t0=$(date +%s)
j=$(LAUNCHER=srun MARGIN=42 submit --nodes=1 --ntasks-per-node=2 --time=1 --signal=B:USR1@5 -o job.out \
    "$JS/campaign.sbatch" tasks.txt out)
s=$(wait_job "$j" 300)
note "deadline: job $j $s after $(field "$j" Restarts) requeue(s), $(($(date +%s) - t0)) s from sbatch to the end"
check "deadline: job COMPLETED after at least one requeue ($s $(field "$j" ExitCode) restarts $(field "$j" Restarts))" \
    '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ] && [ "$(field "$j" Restarts)" -ge 1 ]' || showlog job.out
check "deadline: taskfarm knew the job's end and stopped by itself, exit 75" \
    'grep -q "walltime: [0-9]* tasks\? not started, .* would not finish before .* (the end of Slurm job $j at .* less the 42 s margin)" job.out &&
     grep -q "step exited with 75, state stopped" job.out' || showlog job.out
check "deadline: requeued, and a later run finished" \
    'grep -q "requeueing job $j" job.out && grep -q "step exited with 0, state done" job.out'
check "deadline: every task exactly once successful, 20 rows, no failure or signal" \
    'once out 20 && [ "$(rows out)" = 20 ]'
check "deadline: each task started once: none was killed and run again" \
    '[ "$(wc -l <starts)" = 20 ] && [ -z "$(dups starts)" ]'
nint=$(grep -o "([0-9]* interrupted" job.out | tr -d '(' | awk '{ n += $1 } END { print n + 0 }')
check "deadline: no run interrupted a task ($nint), none was stopped by the warning" \
    '[ "$nint" = 0 ] && ! grep -q "User defined signal 1: stopping" job.out'
}

# ---- 7. job array of one-node farms ----
t_array() {
newdir array
mkdir parts
for i in $(seq 1 12); do echo "@id=t$i echo t$i >> $PWD/dones"; done |
    awk -v n=3 '{ print > ("parts/" (NR - 1) % n ".txt") }'
j=$(submit --array=0-2 --cpus-per-task=1 -o "job-%a.out" "$JS/farm-array.sbatch" 'parts/%a.txt')
for a in 0 1 2; do s=$(wait_job "${j}_$a" 120); [ "$s" = COMPLETED ] || bad "array: element $a $s"; done
parts_done() { local a; for a in 0 1 2; do [ "$(state taskfarm-out-$a)" = done ] && once taskfarm-out-$a 4 || return 1; done; }
check "array: three outdirs, each part done" parts_done
check "array: all 12 tasks ran once" '[ "$(sort -u dones | wc -l)" = 12 ] && [ -z "$(dups dones)" ]'

}

# ---- 8. an MPI program as a task: a singleton, and its own mpirun -np 2 ----
t_mpitask() {
newdir mpitask
HELLO=${TF_HELLO:-$HERE/../../build/tests/mpi_hello}
printf '@id=single %s\n@id=nested mpirun --oversubscribe -np 2 %s\n' "$HELLO" "$HELLO" >tasks.txt
j=$(LAUNCHER=srun submit --nodes=1 --ntasks-per-node=2 -o job.out "$JS/farm-per-core.sbatch" tasks.txt out)
s=$(wait_job "$j" 120)
check "mpitask: job COMPLETED, exit 0:0 ($s $(field "$j" ExitCode))" \
    '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ]' || showlog job.out
check "mpitask: the singleton started alone, not in the srun step" \
    'grep -qx "hello rank 0 size 1 sum 1" out/out/single.out' || showlog out/out/single.err
check "mpitask: the nested mpirun ran its 2 ranks" \
    '[ "$(grep -c "size 2 sum 2" out/out/nested.out)" = 2 ]' || showlog out/out/nested.err
}

# ---- 9. a parameter sweep through each jobscript with its defaults ----
t_sweep() {
# No sbatch option but the log's name: each script must fit this node as
# it is (the defaults once asked for 32 CPUs and pended here for ever).
# 3 x 2 x 2 parameters, computed with bash-isms; every task once.
sweep() { # FILE: the task file, for results in ./res
    local a b n
    for a in 1 2 3; do for b in x y; do for n in 2 5; do
        echo "@id=a$a-b$b-n$n v=\$(( $a * $n )); [[ $b == x ]] && v=\$(( v + 100 )); s=\$(printf '%s,' {1..3}); echo \"a=$a b=$b n=$n v=\$v s=\$s\" > $PWD/res/\$TASKFARM_TASK_ID; echo \$TASKFARM_TASK_ID >> $PWD/runs"
    done; done; done >"$1"
}
want_res() { # the results the sweep must leave, one line per task
    local a b n v
    for a in 1 2 3; do for b in x y; do for n in 2 5; do
        v=$((a * n)); [ $b = x ] && v=$((v + 100))
        echo "a$a-b$b-n$n a=$a b=$b n=$n v=$v s=1,2,3,"
    done; done; done | sort
}
# defaults NAME SCRIPT RANKS SLOTS [LAUNCHER]: submit SCRIPT as it is.
defaults() {
    local name=$1 script=$2 ranks=$3 slots=$4 j s
    newdir "$name"
    mkdir res
    sweep tasks.txt
    j=$(LAUNCHER=${5:-srun} submit -o job.out "$JS/$script" tasks.txt)
    s=$(wait_job "$j" 120)
    check "$name: $script with its defaults fits this $CPUS-CPU node: COMPLETED, exit 0:0 ($s $(field "$j" ExitCode))" \
        '[ "$s" = COMPLETED ] && [ "$(field "$j" ExitCode)" = 0:0 ]' || showlog job.out
    check "$name: the whole node, $ranks rank(s) of $slots slot(s) ($(field "$j" NumCPUs) CPUs)" \
        '[ "$(field "$j" NumCPUs)" = "$CPUS" ] && grep -qx "ranks $ranks" taskfarm-out/status &&
         grep -qx "slots $slots" taskfarm-out/status'
    check "$name: state done, 12 tasks each exactly once in the joblog, taskfarm status exits 0" \
        '[ "$(state taskfarm-out)" = done ] && once taskfarm-out 12 && [ "$(rows taskfarm-out)" = 12 ] &&
         "$TASKFARM" status taskfarm-out >/dev/null'
    check "$name: each task ran once, its result right" \
        '[ "$(wc -l <runs)" = 12 ] && [ -z "$(dups runs)" ] &&
         [ "$(cd res && for f in *; do echo "$f $(cat "$f")"; done | sort)" = "$(want_res)" ]'
}
defaults sweep-one farm-one-node.sbatch 1 "$CPUS"
defaults sweep-percore farm-per-core.sbatch "$CPUS" "$CPUS"
defaults sweep-percore-mpirun farm-per-core.sbatch "$CPUS" "$CPUS" mpirun
defaults sweep-hybrid farm-hybrid.sbatch 2 "$CPUS"
defaults sweep-campaign campaign.sbatch "$CPUS" "$CPUS"
# The verdict: one task of the sweep fails (bash's pipefail), the rest run.
newdir sweep-fail
mkdir res
sweep tasks.txt
sed -i '5s/^\(@id=[^ ]*\) /\1 set -o pipefail; false | true; exit $?; /' tasks.txt
j=$(submit -o job.out "$JS/farm-per-core.sbatch" tasks.txt)
s=$(wait_job "$j" 120)
check "sweep-fail: job FAILED with the run's exit status 1 ($s $(field "$j" ExitCode))" \
    '[ "$s" = FAILED ] && [ "$(field "$j" ExitCode)" = 1:0 ]' || showlog job.out
check "sweep-fail: state failed; the 11 others once successful, line 5 failed once" \
    '[ "$(state taskfarm-out)" = failed ] && [ "$(succ taskfarm-out | tr "\n" " ")" = "$(seq 1 12 | grep -vx 5 | tr "\n" " ")" ] &&
     [ "$(awk -F"\t" "NR > 1 && \$1 == 5 { print \$7 }" taskfarm-out/joblog.tsv)" = 1 ]'
"$TASKFARM" status taskfarm-out >st.txt
src=$?
check "sweep-fail: taskfarm status exits 1 and names line 5" '[ $src = 1 ] && grep -q "failed: line 5 " st.txt'
}

left=
for t in one layouts cancel requeue cap walltime deadline array mpitask sweep; do
    if part $t; then t_$t; else left="$left $t"; fi
done

# ONLY is a request, not a skip, but the count line says what it left out.
summary check-slurm "in $(($(date +%s) - start)) s${left:+ (ONLY=\"$only\": not run:$left)}"
