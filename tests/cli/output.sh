#!/usr/bin/env bash
# taskfarm run --output: files made only when written (and sharded by lines), the tagged stream, none; one process and under mpirun.
# usage: output.sh [BIN_DIR]
set -u
BIN=$(cd "${1:-bin}" && pwd)
TF=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp"
RUN_LIMIT=300 # seconds for each `run` (lib.sh); a hang fails
MPIRUN="mpirun --oversubscribe"
T=$'\t' # for patterns inside check's quotes

# A mix: silent tasks, stdout only, stderr only, both, a last line without
# its newline, many lines, a failure.
cat >mix.txt <<'T'
@id=quiet true
@id=out echo hello
@id=err echo oops >&2
@id=both echo to-out; echo to-err >&2
@id=nonl printf 'a\nb'
@id=many for i in $(seq 1 200); do echo "line $i of many"; done
@id=fail echo failing >&2; exit 3
T

# ---- files (the default): only the streams that were written ----
run "files: one process" 1 "$TF" run -q -o f1 mix.txt
check "files: a silent task has no file" '[ ! -e f1/out/quiet.out ] && [ ! -e f1/out/quiet.err ]'
check "files: stdout only" '[ "$(cat f1/out/out.out)" = hello ] && [ ! -e f1/out/out.err ]'
check "files: stderr only" '[ "$(cat f1/out/err.err)" = oops ] && [ ! -e f1/out/err.out ]'
check "files: both" '[ "$(cat f1/out/both.out)" = to-out ] && [ "$(cat f1/out/both.err)" = to-err ]'
check "files: bytes as written" '[ "$(od -An -c f1/out/nonl.out | tr -d " \n")" = "a\\nb" ]'
check "files: a failed task's stderr" '[ "$(cat f1/out/fail.err)" = failing ]'
check "files: 7 files in out/, no scratch file left" \
    '[ "$(ls -A f1/out | wc -l)" = 7 ] && ! ls -A f1/out | grep -q scratch'
check "files: status names the layout" \
    'timeout 60 "$TF" status f1 | grep -q "^  output files: out/ID.out and ID.err, only for tasks that wrote"'
check "files: status --json too" \
    'timeout 60 "$TF" status --json f1 | grep -q "\"output\": \"files: out/ID.out"'

# A retry and --force: a file is the last attempt's, so an attempt that
# writes nothing removes the one before.
printf '@id=r @retries=1 if [ "$TASKFARM_ATTEMPT" = 1 ]; then echo first; exit 1; fi\n' >retry.txt
run "files: a retry that writes nothing" 0 "$TF" run -q -o f2 retry.txt
check "files: the first attempt's output is gone" '[ ! -e f2/out/r.out ]'
printf '@id=out true\n' >silent.txt
run "files: --force over a run that wrote" 0 "$TF" run -q --force -o f1 silent.txt
check "files: --force: the earlier run's file of a now silent task is gone" '[ ! -e f1/out/out.out ]'

# A task that leaves a process behind in its group: both files, at once,
# and what it writes later lands in them.
printf '@id=bg (sleep 1; echo late) &\n' >bg.txt
run "files: a task that leaves a process running" 0 "$TF" run -q -o f3 bg.txt
check "files: its files exist though empty at its end" '[ -e f3/out/bg.out ] && [ -e f3/out/bg.err ]'
for i in $(seq 50); do grep -q late f3/out/bg.out 2>/dev/null && break; sleep 0.1; done
check "files: its late output is in its file" 'grep -qx late f3/out/bg.out'

# ---- files, sharded: a task file of more than 1000 lines ----
{
    for i in $(seq 1 1500); do
        case $i in
        5) echo '@id=five echo five' ;;
        1234) echo '@id=deep echo deep; echo deep-err >&2' ;;
        1500) echo 'echo last' ;;
        *) echo true ;;
        esac
    done
} >big.txt
run "sharded: 1500 lines" 0 "$TF" run -q --slots 2 -o s1 big.txt
check "sharded: line 5 in out/1-1000/" '[ "$(cat s1/out/1-1000/five.out)" = five ]'
check "sharded: line 1234 in out/1001-2000/" \
    '[ "$(cat s1/out/1001-2000/deep.out)" = deep ] && [ "$(cat s1/out/1001-2000/deep.err)" = deep-err ]'
check "sharded: the default id (the line) too" '[ "$(cat s1/out/1001-2000/1500.out)" = last ]'
check "sharded: nothing else" '[ "$(find s1/out -type f | wc -l)" = 4 ] && [ "$(ls s1/out | wc -l)" = 2 ]'
check "sharded: status names the layout" \
    'timeout 60 "$TF" status s1 | grep -q "output files: out/FIRST-LAST/ID.out and ID.err, by blocks of 1000"'

# ---- tag ----
run "tag: one process" 1 "$TF" run -q -o t1 --output tag mix.txt
# Each task's lines together; tasks in any order.
tagged_ok() { # DIR FILE_OF_STDOUT FILE_OF_STDERR
    local d=$1
    [ "$(grep -c $'^many\tline [0-9]* of many$' "$2")" = 200 ] &&
        [ "$(grep -n $'^many\t' "$2" | awk -F: 'NR == 1 { f = $1 } { l = $1 } END { print l - f + 1 }')" = 200 ] &&
        grep -qx $'out\thello' "$2" && grep -qx $'both\tto-out' "$2" &&
        grep -qx $'nonl\ta' "$2" && grep -qx $'nonl\tb' "$2" &&
        [ "$(wc -l <"$2")" = 204 ] &&
        grep -qx $'err\toops' "$3" && grep -qx $'both\tto-err' "$3" && grep -qx $'fail\tfailing' "$3" &&
        [ ! -e "$d/out/out.out" ]
}
check "tag: tagged.out and tagged.err hold the tagged lines" 'tagged_ok t1 t1/tagged.out t1/tagged.err'
check "tag: the same on taskfarm's stdout, and the stderr lines on its stderr" \
    'tagged_ok t1 out.txt t1/tagged.err && [ "$(grep -c "^[a-z]*$T" err.txt)" = 3 ]'
check "tag: no output file per task" '[ -z "$(ls -A t1/out)" ]'
run "tag: --resume appends, shows only the new lines" 1 "$TF" run -q --resume -o t1 --output tag mix.txt
check "tag: --resume reran the failed task alone" \
    '[ "$(cat out.txt)" = "" ] && grep -qx "fail${T}failing" err.txt && [ "$(grep -c "^fail$T" t1/tagged.err)" = 2 ]'

for np in 2 3; do
    run "tag: mpirun -np $np" 1 $MPIRUN -np $np "$TF" run -q -o t$np --output tag mix.txt
    check "tag: np $np: the stream on mpirun's stdout and in the files" \
        'tagged_ok t$np out.txt t$np/tagged.err && tagged_ok t$np t$np/tagged.out t$np/tagged.err'
done
# Many tasks printing many lines at once on 2 workers: no line cut or mixed.
for i in $(seq 1 60); do echo "@id=w$i for j in \$(seq 1 300); do echo \"w$i-\$j-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; done"; done >lines.txt
run "tag: 60 tasks x 300 lines, mpirun -np 3" 0 $MPIRUN -np 3 "$TF" run -q --slots 2 -o t4 --output tag lines.txt
check "tag: 18000 whole lines, each with its own task's tag, each task's together" \
    '[ "$(wc -l <out.txt)" = 18000 ] &&
     [ "$(grep -cE "^w([0-9]+)${T}w\\1-[0-9]+-x{61}\$" out.txt)" = 18000 ] &&
     [ "$(cut -f1 out.txt | uniq | wc -l)" = 60 ]'

# ---- none ----
run "none: one process" 1 "$TF" run -q -o n1 --output none mix.txt
check "none: no output anywhere" '[ -z "$(ls -A n1/out)" ] && [ ! -e n1/tagged.out ] && [ ! -s out.txt ]'
run "none: mpirun -np 2" 1 $MPIRUN -np 2 "$TF" run -q -o n2 --output none mix.txt
check "none: mpirun: no output anywhere" '[ -z "$(ls -A n2/out)" ] && [ ! -s out.txt ]'

# ---- @output: the file's choice, --output over it ----
{ echo '@output=tag'; cat mix.txt; } >tagfile.txt
run "@output=tag: one process" 1 "$TF" run -q -o d1 tagfile.txt
check "@output=tag: tagged" 'tagged_ok d1 out.txt d1/tagged.err'
run "@output=tag: mpirun -np 2 (the workers learn it from rank 0)" 1 $MPIRUN -np 2 "$TF" run -q -o d2 tagfile.txt
check "@output=tag: mpirun: tagged" 'tagged_ok d2 out.txt d2/tagged.err && tagged_ok d2 d2/tagged.out d2/tagged.err'
run "--output files over @output=tag" 1 "$TF" run -q -o d3 --output files tagfile.txt
check "--output files over @output=tag: files" '[ "$(cat d3/out/out.out)" = hello ] && [ ! -e d3/tagged.out ] && [ ! -s out.txt ]'
printf 'true\n@output=tags\n' >badout.txt
run "bad @output: check" 2 "$TF" check badout.txt
check "bad @output: check names the line" \
    'grep -q "^badout.txt:2: bad value .tags. for @output (expected files, tag or none)" err.txt'
run "bad @output: run" 2 "$TF" run -o b2 badout.txt
check "bad @output: nothing ran" '[ ! -e b2 ] && grep -q "^badout.txt:2: bad value" err.txt'

# ---- bad values ----
run "bad --output" 2 "$TF" run -o b1 --output tags mix.txt
check "bad --output: said, nothing ran" \
    'grep -q "bad value .tags. for --output" err.txt && [ ! -e b1 ]'
run "bad --output=" 2 "$TF" run -o b1 --output= mix.txt

summary
