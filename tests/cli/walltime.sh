#!/usr/bin/env bash
# Walltime-aware dispatch: @est, --deadline, learnt estimates, the clean stop (75, nothing killed, no joblog rows for what did not start), --resume finishing exactly the rest.
set -u
BIN=$(cd "${1:-bin}" && pwd)
T=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp" || exit 1
unset SLURM_JOB_ID SLURM_JOB_END_TIME

# Times here are far apart (an hour against a second), so that a slow or
# loaded machine changes no verdict; none is asserted.
# starts FILE: the lines written to it, sorted, with their counts.
counts() { sort "$1" | uniq -c | awk '{ print $2 ":" $1 }' | tr '\n' ' '; }

echo "== @est: what fits runs, what cannot is not started; --resume runs the rest"
{
    for i in 1 2 3; do echo "@id=s$i @est=1s echo s$i >> $PWD/starts"; done
    for i in 1 2; do echo "@id=h$i @est=1h echo h$i >> $PWD/starts"; done
    echo "@id=s4 @est=2s echo s4 >> $PWD/starts"
} >est.txt
run "exit 75: stopped, resumable" 75 "$T" run --slots 1 --deadline +10m \
    --deadline-margin 0 -o est est.txt
check "... the short ones ran, the hour-long ones did not start" \
    '[ "$(counts starts)" = "s1:1 s2:1 s3:1 s4:1 " ]'
check "... state stopped, 2 not started, none interrupted, none failed or skipped" \
    '[ "$(state est)" = stopped ] && [ "$(status_field est not_started)" = 2 ] &&
     [ "$(status_field est interrupted)" = 0 ] && [ "$(status_field est failed)" = 0 ] && [ "$(status_field est skipped)" = 0 ]'
check "... joblog rows only for what ran" '[ "$(succ est | tr "\n" " ")" = "1 2 3 6 " ] && [ "$(rows est)" = 4 ]'
check "... the summary says why and how to go on" \
    'grep -q "walltime: 2 tasks not started, they would not finish before .* (the deadline at .* less the 0 s margin); finish with: taskfarm run --resume -o est est.txt" err.txt'
run "--resume with no deadline: exit 0" 0 "$T" run --slots 1 --resume --deadline none -o est est.txt
check "... every task exactly once" '[ "$(counts starts)" = "h1:1 h2:1 s1:1 s2:1 s3:1 s4:1 " ] && once est 6'
check "... state done" '[ "$(state est)" = done ]'
rm -f starts

echo "== a deadline already past: nothing starts"
run "--deadline @1: exit 75" 75 "$T" run --deadline @1 -o past est.txt
check "... no task ran, all 6 not started, the joblog is its header" \
    '[ ! -e starts ] && [ "$(status_field past not_started)" = 6 ] && [ "$(rows past)" = 0 ]'
check "... an absolute date works too" \
    '"$T" run -q --deadline "2001-01-01T00:00" -o past2 est.txt 2>/dev/null; [ $? = 75 ] && [ ! -e starts ]'

echo "== no estimate: it starts; at the deadline it is interrupted, not failed"
printf '%s\n' "@id=long if [ -e $PWD/long.ran ]; then true; else touch $PWD/long.ran; echo long >> $PWD/starts; sleep 60; fi" \
    "@id=other @est=1h true" >unknown.txt
run "exit 75" 75 "$T" run --slots 1 --deadline +3s --deadline-margin 0 -o unk unknown.txt
check "... the task without an estimate started" '[ -e long.ran ]'
check "... it was interrupted (no joblog row), the other not started" \
    '[ "$(status_field unk interrupted)" = 1 ] && [ "$(status_field unk not_started)" = 1 ] && [ "$(rows unk)" = 0 ] &&
     [ "$(status_field unk failed)" = 0 ]'
check "... the summary says so" 'grep -q "walltime: stopped at .*: 1 running task interrupted (run again on resume), 1 not started" err.txt'
run "--resume: exit 0, each once" 0 "$T" run --slots 1 --resume --deadline none -o unk unknown.txt
check "... both done once" 'once unk 2'
rm -f starts

echo "== learnt: a family of 2 s tasks without @est; the later ones are held back"
# Commands alike but for numbers are one family; each run teaches the
# rest 5/4 of the longest so far. One slot, 8 s: the first starts
# unknown; after it, a task starts only if 2.5 s more fit.
for i in 1 2 3 4 5 6; do echo "echo t$i >> $PWD/starts; sleep 2"; done >fam.txt
run "exit 75" 75 "$T" run --slots 1 --deadline +8s --deadline-margin 0 -o fam fam.txt
n=$(rows fam)
check "... at least two ran, not all six ($n), none interrupted" \
    '[ "$n" -ge 2 ] && [ "$n" -lt 6 ] && [ "$(status_field fam interrupted)" = 0 ] && [ "$(status_field fam not_started)" = $((6 - n)) ]'
check "... the rest would not finish" 'grep -q "walltime: $((6 - n)) tasks\? not started, \(they\|it\) would not finish" err.txt'
check "... they ran in file order, each once" '[ "$(succ fam | tr "\n" " ")" = "$(seq 1 "$n" | tr "\n" " ")" ] && [ -z "$(sort starts | uniq -d)" ]'
# A resumed run learns from the durations of what the state has done:
# under 2.5 s nothing of the family fits, so nothing starts at all.
cp starts starts.before
run "--resume with 2 s left: exit 75 at once" 75 "$T" run --slots 1 --resume --deadline +2s \
    --deadline-margin 0 -o fam fam.txt
check "... no task started: the earlier run's durations were learnt" \
    'cmp -s starts starts.before && [ "$(rows fam)" = "$n" ] && [ "$(status_field fam interrupted)" = 0 ]'
run "--resume with time: exit 0" 0 "$T" run --slots 1 --resume --deadline +10m -o fam fam.txt
check "... every task exactly once" 'once fam 6 && [ "$(wc -l <starts)" = 6 ] && [ -z "$(sort starts | uniq -d)" ]'
rm -f starts

echo "== learnt in argument mode: its jobs are one family whatever their arguments"
printf '%s\n' alpha beta gamma delta epsilon zeta >names.txt
run "exit 75" 75 "$T" run --slots 1 --deadline +8s --deadline-margin 0 -o argfam \
    "echo {} >> $PWD/starts; sleep 2" :::: names.txt
n=$(rows argfam)
check "... at least two ran, not all six ($n), none interrupted" \
    '[ "$n" -ge 2 ] && [ "$n" -lt 6 ] && [ "$(status_field argfam interrupted)" = 0 ] && [ "$(status_field argfam not_started)" = $((6 - n)) ]'
rm -f starts

echo "== a soon halt does not outlive the deadline"
printf '%s\n' "@id=bad false" "@id=long if [ -e $PWD/soon.ran ]; then true; else touch $PWD/soon.ran; sleep 60; fi" >soon.txt
run "--halt soon,fail=1 and a deadline: exit 75 at the deadline" 75 timeout 50 "$T" run --slots 2 \
    --halt soon,fail=1 --deadline +4s --deadline-margin 0 -o soon soon.txt
check "... the running task was interrupted (no joblog row), the stop was the walltime's" \
    '[ -e soon.ran ] && [ "$(status_field soon interrupted)" = 1 ] && [ "$(rows soon)" = 1 ] &&
     grep -q "walltime: stopped at .*: 1 running task interrupted" err.txt'

echo "== a followed task file stops at the deadline, idle or not"
echo "echo f1 >> $PWD/starts" >follow.txt
run "--follow with nothing left to do: exit 75 at the deadline" 75 timeout 50 "$T" run --slots 1 \
    --follow --deadline +3s --deadline-margin 0 -o fol follow.txt
check "... its task ran once, state stopped" '[ "$(counts starts)" = "f1:1 " ] && [ "$(state fol)" = stopped ]'
rm -f starts

echo "== under mpirun: every rank exits with the verdict"
run "mpirun -np 2: exit 75" 75 mpirun --oversubscribe -np 2 "$T" run --slots 1 \
    --deadline +10m --deadline-margin 0 -o mpi est.txt
check "... 4 ran, 2 not started" '[ "$(rows mpi)" = 4 ] && [ "$(status_field mpi not_started)" = 2 ]'
run "... --resume: exit 0" 0 mpirun --oversubscribe -np 2 "$T" run --slots 1 --resume --deadline none -o mpi est.txt
check "... each once" 'once mpi 6'
rm -f starts

echo "== Slurm's end time (SLURM_JOB_END_TIME, as newer Slurm exports it)"
# The job ends in an hour; a margin of 59 min leaves one minute: the
# hour-long tasks cannot start. At the stop taskfarm asks squeue again,
# which cannot answer here (no slurmctld): it warns and stops.
now=$(date +%s)
run "exit 75" 75 env SLURM_JOB_ID=4242 SLURM_JOB_END_TIME=$((now + 3600)) \
    "$T" run --slots 1 --deadline-margin 59m -o slurm est.txt
check "... the end came from the job" 'grep -q "(the end of Slurm job 4242 at .* less the 3540 s margin)" err.txt'
check "... 4 ran, 2 not started" '[ "$(rows slurm)" = 4 ] && [ "$(status_field slurm not_started)" = 2 ]'
run "--deadline earlier than the job's end wins" 75 env SLURM_JOB_ID=4242 SLURM_JOB_END_TIME=$((now + 7200)) \
    "$T" run --slots 1 --deadline +10m --deadline-margin 0 -o slurm2 est.txt
check "... named as the deadline" 'grep -q "(the deadline at" err.txt'
run "--deadline none: no deadline at all, exit 0" 0 env SLURM_JOB_ID=4242 SLURM_JOB_END_TIME=$((now + 60)) \
    "$T" run --slots 1 --deadline none -o slurm3 est.txt
check "... all 6 ran" 'once slurm3 6'
rm -f starts

echo "== bad values: exit 2, nothing runs"
for v in 90 +10min @x 2026-13-01T00:00 2026-02-30T10:00 "2026-01-01T10:00:61" "+" "tomorrow"; do
    run "--deadline '$v'" 2 "$T" run --deadline "$v" -o bad est.txt
    check "... named" "grep -qF \"bad value '$v' for --deadline\" err.txt && [ ! -e bad ]"
done
run "--deadline-margin -1" 2 "$T" run --deadline-margin -1 -o bad est.txt
printf 'true\n@est=0 true\n@est=1x true\n' >badest.txt
run "@est=0 and @est=1x in the file" 2 "$T" run -o bad badest.txt
check "... with file and line" \
    'grep -q "badest.txt:2: bad value .0. for @est" err.txt && grep -q "badest.txt:3: bad value .1x. for @est" err.txt && [ ! -e bad ]'
run "taskfarm check takes @est" 0 "$T" check est.txt
run "run --help names --deadline" 0 "$T" run --help
check "... and the margin" 'grep -q -- "--deadline TIME" out.txt && grep -q -- "--deadline-margin SEC" out.txt'

summary walltime
