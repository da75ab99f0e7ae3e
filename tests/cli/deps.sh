#!/usr/bin/env bash
# Dependency kinds (@after, @afterany, @afternotok), patterns over ids in their lists, and --halt as GNU parallel's: real children, one process and under mpirun, bad inputs refused before anything runs.
# usage: deps.sh [BIN_DIR]
set -u
BIN=$(cd "${1:-bin}" && pwd)
T=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp" || exit 1
MPI="timeout 300 mpirun --oversubscribe -np 2"

# ran NAME...: each left its mark file; never NAME...: none did.
ran() { local f; for f; do [ -e "marks/$f" ] || return 1; done; }
never() { local f; for f; do [ ! -e "marks/$f" ] || return 1; done; }
# rows_of OUTDIR: the Seq column of its joblog, in order, on one line.
rows_of() { tail -n +2 "$1/joblog.tsv" | cut -f1 | tr '\n' ' '; }
# summary_has TEXT: the run's summary line (err.txt) holds TEXT.
summary_has() { grep "tasks: " err.txt | grep -qF -- "$1"; }
# jsoncheck NAME EXPR: EXPR holds for d, the JSON object in out.txt.
jsoncheck() {
    check "$1" "python3 -c 'import json, sys; d = json.load(open(\"out.txt\")); sys.exit(not ($2))'"
}

echo "== each kind behind a task that succeeds, fails, or is skipped"
# ok succeeds, bad fails, skp is skipped (after pre, which fails). Then
# each kind behind each, and the tasks behind a task not needed.
cat >kinds.txt <<'EOF'
@id=ok touch marks/ok
@id=bad exit 3
@id=pre exit 4
@id=skp @after=pre touch marks/skp
@id=a.ok @after=ok touch marks/a.ok
@id=a.bad @after=bad touch marks/a.bad
@id=a.skp @after=skp touch marks/a.skp
@id=any.ok @afterany=ok touch marks/any.ok
@id=any.bad @afterany=bad touch marks/any.bad
@id=any.skp @afterany=skp touch marks/any.skp
@id=no.ok @afternotok=ok touch marks/no.ok
@id=no.bad @afternotok=bad touch marks/no.bad
@id=no.skp @afternotok=skp touch marks/no.skp
@id=then @after=no.ok touch marks/then
@id=handler.of.handler @afternotok=no.ok touch marks/hh
EOF
mkdir marks
run "check accepts the kinds" 0 "$T" check kinds.txt
check "... 15 tasks, 12 dependencies" 'grep -q "15 tasks, 12 dependencies" out.txt'
run "the run: exit 1 (two failed)" 1 "$T" run -q -o kinds kinds.txt
check "@after runs after a success only" 'ran a.ok && never a.bad a.skp skp'
check "@afterany runs after a success, a failure and a skip" 'ran any.ok any.bad any.skp'
check "@afternotok runs after a failure and a skip, not after a success" 'ran no.bad no.skp && never no.ok'
check "behind a task not needed: @after runs, @afternotok is not needed either" 'ran then && never hh'
check "the summary: 8 done, 2 failed, 3 skipped, 2 not needed" \
    'summary_has "15 tasks: 8 done, 2 failed, 3 skipped, 2 not needed"'
check "no joblog row for a task that did not run" \
    '[ "$(rows_of kinds | tr " " "\n" | sort -n | tr "\n" " ")" = "1 2 3 5 8 9 10 12 13 14 " ]'
check "the status file counts them: not_needed 2, skipped 3" \
    'grep -qx "not_needed 2" kinds/status && grep -qx "skipped 3" kinds/status'
run "status --tasks: exit 1, as the run" 1 "$T" status --tasks kinds
check "... not needed, not skipped" \
    '[ "$(task 11)" = " 11 no.ok not needed: none of its @afternotok tasks failed" ] && [ "$(task 15)" = " 15 handler.of.handler not needed: none of its @afternotok tasks failed" ]'
check "... skipped names the failure, also through a skipped task" \
    '[ "$(task 6)" = " 6 a.bad skipped: after bad (line 2) failed" ] && [ "$(task 7)" = " 7 a.skp skipped: after pre (line 3) failed" ]'
check "... the counts: 2 not needed, 0 left" 'grep -q "3 skipped, 2 not needed, 0 left" out.txt'
run "status --tasks --json" 1 "$T" status --tasks --json kinds
jsoncheck "... states not_needed, skipped, done; the count" \
    '[t["state"] for t in d["tasks"]][10:15] == ["not_needed", "done", "done", "done", "not_needed"] and d["not_needed"] == 2 and d["left"] == 0'

echo "== an error handler not needed does not fail the run"
rm -rf marks && mkdir marks
printf '@id=sim true\n@id=on.error @afternotok=sim touch marks/on.error\n' >handler.txt
run "every task succeeded or was not needed: exit 0" 0 "$T" run -q -o handler handler.txt
check "... the handler did not run" 'never on.error'
check "... the summary says not needed" 'summary_has "2 tasks: 1 done, 0 failed, 0 skipped, 1 not needed"'
run "status: exit 0, state done" 0 "$T" status handler
check "... 1 not needed" 'grep -q "1 not needed, 0 left" out.txt'

echo "== a report after 200 simulations of which 2 fail (patterns over ids)"
rm -rf marks && mkdir marks
{
    for i in $(seq 1 200); do
        case $i in 7 | 42) echo "@id=sim.$i exit 1" ;; *) echo "@id=sim.$i true" ;; esac
    done
    echo '@id=agg @after=sim.* touch marks/agg'
    echo '@id=report @afterany=sim.*,agg touch marks/report'
    echo '@id=alert @afternotok=sim.* touch marks/alert'
    # Its own pattern leaves it out; the others' take it in.
    echo '@id=sim.cleanup @afterany=sim.* touch marks/cleanup'
} >sims.txt
run "check: the patterns name 200 tasks each (not the task itself)" 0 "$T" check sims.txt
check "... 804 dependencies" 'grep -q "204 tasks, 804 dependencies" out.txt'
run "the run, mpirun -np 2: exit 1" 1 $MPI "$T" run -q -o sims sims.txt
check "the aggregate is skipped, the report, the alert and the cleanup run" \
    'never agg && ran report alert cleanup'
check "... 200 + 3 rows, the skipped aggregate none" '[ "$(rows sims)" = 203 ]'
check "... the summary" 'summary_has "204 tasks: 201 done, 2 failed, 1 skipped"'
rm -rf marks && mkdir marks
sed 's/^@id=sim.42 exit 1/@id=sim.42 true/; s/^@id=sim.7 exit 1/@id=sim.7 true/' sims.txt >simsok.txt
run "all 200 succeed: exit 0" 0 "$T" run -q -o simsok simsok.txt
check "... aggregate and report run, the alert is not needed" 'ran agg report cleanup && never alert'
check "... the summary" 'summary_has "204 tasks: 203 done, 0 failed, 0 skipped, 1 not needed"'

echo "== a retried attempt is not a failure yet"
rm -rf marks && mkdir marks
cat >retry.txt <<'EOF'
@id=flaky @retries=1 echo try >>order; [ -e marks/tried ] || { touch marks/tried; exit 1; }
@id=after.any @afterany=flaky echo any >>order
@id=on.fail @afternotok=flaky touch marks/on.fail
EOF
run "flaky succeeds at its second attempt: exit 0" 0 "$T" run -q -o retry retry.txt
check "@afterany waited for the last attempt" '[ "$(tr "\n" " " <order)" = "try try any " ]'
check "@afternotok is not needed" 'never on.fail && summary_has "1 not needed, 1 retried"'

echo "== --resume decides again whether a task is needed"
rm -rf marks && mkdir marks
printf '@id=a true\n@id=b exit 1\n@id=h @afternotok=a touch marks/h\n' >res.txt
run "first run: exit 1" 1 "$T" run -q -o res res.txt
run "--resume: b fails again, exit 1" 1 "$T" run -q --resume -o res res.txt
check "... a was done, h again not needed, never run" \
    'summary_has "3 tasks: 1 done (1 in an earlier run), 1 failed, 0 skipped, 1 not needed" && never h'
check "... no joblog row was made up for h" '[ "$(rows res)" = 3 ] && ! cut -f1 res/joblog.tsv | grep -qx 3'

rm -rf marks && mkdir marks
printf '@id=sim [ -e marks/fixed ]\n@id=h @afternotok=sim touch marks/h\n' >res2.txt
run "sim fails, its handler runs: exit 1" 1 "$T" run -q -o res2 res2.txt
check "... the handler ran" 'ran h'
touch marks/fixed && rm marks/h
run "--resume with sim fixed: exit 0" 0 "$T" run -q --resume -o res2 res2.txt
check "... the handler is done from the earlier run: not run again, not 'not needed'" \
    'never h && summary_has "2 tasks: 2 done (1 in an earlier run), 0 failed, 0 skipped, 0 retried"'
run "--resume again: exit 0" 0 "$T" run -q --resume -o res2 res2.txt
check "... both done in earlier runs" 'summary_has "2 tasks: 2 done (2 in an earlier run), 0 failed"'

echo "== patterns: the task itself, nothing, bad ones; kinds' errors (nothing runs)"
# bad NAME FILE-TEXT MESSAGE: check refuses it (exit 2, the message with
# file:line); run does too, and creates nothing.
bad_file() {
    want=$3
    printf "$2" >bad.txt
    run "$1: check, exit 2" 2 "$T" check bad.txt
    check "... $want" 'grep -qF -- "$want" err.txt'
    run "$1: run, exit 2" 2 "$T" run -q -o badrun bad.txt
    check "... nothing ran, no outdir" '[ ! -e badrun ] && [ ! -e marks/x ]'
}
rm -rf marks && mkdir marks
bad_file "a pattern matching nothing" '@id=sim.1 true\n@id=agg @after=sims.* touch marks/x\n' \
    "bad.txt:2: @after pattern 'sims.*' matches no task"
bad_file "a pattern matching only its own task" '@id=x true\n@id=agg.1 @afterany=agg.* touch marks/x\n' \
    "bad.txt:2: @afterany pattern 'agg.*' matches no task but this one"
bad_file "an unclosed class" '@id=x true\n@afternotok=x[12 touch marks/x\n' \
    "bad.txt:2: bad pattern 'x[12' in @afternotok"
bad_file "an unknown id in @afterany" '@id=prep true\n@afterany=prepp touch marks/x\n' \
    "bad.txt:2: unknown dependency 'prepp' (did you mean 'prep'?)"
bad_file "@afternotok without a value" '@id=x true\n@afternotok= touch marks/x\n' \
    "bad.txt:2: @afternotok needs a value (@afternotok=VALUE)"
bad_file "a cycle across kinds" '@id=a @afterany=b touch marks/x\n@id=b @afternotok=a true\n' \
    "bad.txt: dependency cycle: a (line 1) -> b (line 2) -> a (line 1)"
bad_file "Slurm's afterok is @after here" '@id=a true\n@afterok=a touch marks/x\n' \
    "bad.txt:2: unknown attribute '@afterok' (did you mean '@after'?)"

echo "== --halt soon and now, mpirun -np 2: a running sleep finishes, or is ended"
# long runs on one rank, bad fails on the other; the rest wait for long.
{
    echo '@id=long @prio=9 sleep 2; touch marks/long'
    echo '@id=bad @prio=9 sleep 0.5; exit 4'
    for i in 1 2 3 4 5; do echo "@id=rest.$i @after=long true"; done
} >halt.txt
rm -rf marks && mkdir marks
run "--halt soon,fail=1: exit 1" 1 $MPI "$T" run -q --slots 1 --halt soon,fail=1 -o soon halt.txt
check "... the running sleep finished, status 0 in the joblog" \
    'ran long && [ "$(awk -F"\t" "\$1 == 1 { print \$7, \$8 }" soon/joblog.tsv)" = "0 0" ]'
check "... the rest did not start: 5 not started, none interrupted" \
    'summary_has "7 tasks: 1 done, 0 interrupted, 5 not started, 1 failed" && [ "$(rows soon)" = 2 ]'
check "... it said why" 'grep -qF -- "--halt soon,fail=1 reached (1 failed, 0 succeeded, 7 tasks): starting nothing more, running tasks finish" err.txt'
run "... status: exit 1" 1 "$T" status soon
check "... 5 not started" 'grep -q "(0 interrupted, 5 not started)" out.txt'
rm -rf marks && mkdir marks
run "--halt now,fail=1: exit 1" 1 $MPI "$T" run -q --slots 1 --halt now,fail=1 -o now halt.txt
check "... the running sleep was ended: no row, no mark, interrupted" \
    'never long && [ "$(rows_of now)" = "2 " ] && summary_has "7 tasks: 0 done, 1 interrupted, 5 not started, 1 failed"'
sed 's/^@id=bad @prio=9 sleep 0.5; exit 4$/@id=bad @prio=9 true/' halt.txt >halt2.txt
run "--resume runs exactly what the halt left" 0 $MPI "$T" run -q --slots 1 --resume -o now halt2.txt
check "... a row each for long, bad (again) and the rest" '[ "$(succ now | tr "\n" " ")" = "1 2 3 4 5 6 7 " ]'

echo "== --halt thresholds: fail=N, fail=N%, success=N, success=N%, done=N"
# A chain along @afterany: each starts when the one before has ended, so
# the halt, decided as that one ends, always comes before the next starts.
chain() { # chain FILE OUTCOME...: task i exits with OUTCOME i
    local i=0 o
    : >"$1"
    for o in "${@:2}"; do
        i=$((i + 1))
        if [ $i = 1 ]; then echo "@id=t1 exit $o"; else echo "@id=t$i @afterany=t$((i - 1)) exit $o"; fi
    done >"$1"
}
chain fails.txt 1 1 1 0 0 0 0 0 0 0
chain oks.txt 0 0 0 0 0 0
# halted NAME WANT_RC ROWS DIR OPTS...: the run (mpirun -np 2) exits
# WANT_RC having run tasks 1..ROWS of the chain, and no more.
halted() {
    local name=$1 want=$2 n=$3 dir=$4
    shift 4
    run "$name: exit $want" "$want" $MPI "$T" run -q -o "$dir" "$@"
    check "... tasks 1 to $n ran, no more" '[ "$(rows_of "$dir")" = "$(seq -s " " 1 "$n") " ]'
}
halted "--halt soon,fail=2" 1 2 f2 --halt soon,fail=2 fails.txt
check "... 8 not started" 'summary_has "0 interrupted, 8 not started, 2 failed"'
halted "--halt now,fail=20% (2 of 10)" 1 2 f20 --halt now,fail=20% fails.txt
halted "--halt soon,fail=30% (3 of 10)" 1 3 f30 --halt soon,fail=30% fails.txt
halted "--halt now,fail=50%: never reached" 1 10 f50 --halt now,fail=50% fails.txt
check "... no halt" '! grep -q "reached" err.txt'
halted "--halt-on-error: now,fail=1" 1 1 hoe --halt-on-error fails.txt
check "... named as parallel writes it" 'grep -qF -- "--halt now,fail=1 reached" err.txt'
halted "parallel's old --halt 2: now,fail=1" 1 1 h2 --halt 2 fails.txt
halted "--halt soon,success=2: a goal reached, exit 0" 0 2 s2 --halt soon,success=2 oks.txt
check "... 4 not started" 'summary_has "6 tasks: 2 done, 0 interrupted, 4 not started, 0 failed"'
run "... status: done, exit 0" 0 "$T" status s2
check "... done" 'head -1 out.txt | grep -q ": done$"'
halted "--halt now,success=50% (3 of 6): exit 0" 0 3 s50 --halt now,success=50% oks.txt
halted "--halt now,success=1 after failures: still exit 0, as parallel" 0 4 s1 --halt now,success=1 fails.txt
halted "--halt soon,done=3 with failures: exit 1" 1 3 d3 --halt soon,done=3 fails.txt
halted "--halt now,done=1 without: exit 0" 0 1 d1 --halt now,done=1 oks.txt
halted "--halt never" 1 10 never --halt never fails.txt

echo "== --halt against GNU parallel: the same tasks run before the halt"
# parallel -j1 runs the ten outcomes in order, as the chain does.
if command -v parallel >/dev/null; then
    for spec in soon,fail=25% now,fail=20% soon,fail=2 now,success=50% soon,done=3 2; do
        parallel -j1 --halt "$spec" --joblog pj.tsv 'exit {}' ::: 1 1 1 0 0 0 0 0 0 0 >/dev/null 2>&1
        np=$(tail -n +2 pj.tsv | wc -l)
        rm -f pj.tsv
        timeout 120 "$T" run -q --halt "$spec" -o "pv.$spec" fails.txt >/dev/null 2>&1
        check "--halt $spec: $np tasks ran, as under parallel" '[ "$(rows "pv.$spec")" = "$np" ]'
    done
else
    skip "--halt against GNU parallel" --missing parallel
fi

echo "== --halt: bad values, exit 2, nothing runs"
for v in sometimes now now,fail now,fail=0 now,fail=-1 now,fail=101% soon,failed=1 'now,fail=1,x' Now,fail=1 3 ''; do
    want="bad value '$v' for --halt (expected never, or now or soon"
    run "--halt '$v': exit 2" 2 "$T" run -q --halt "$v" -o badhalt oks.txt
    check "... says what --halt takes, nothing ran" 'grep -qF -- "$want" err.txt && [ ! -e badhalt ]'
done
run "--halt=now,fail=1x (the = form): exit 2" 2 "$T" run -q --halt=now,fail=1x -o badhalt oks.txt
run "--halt without a value: exit 2" 2 "$T" run -q oks.txt --halt
check "... missing value" 'grep -q "missing value for '"'"'--halt'"'"'" err.txt'

summary deps.sh
