#!/usr/bin/env bash
# taskfarm status --tasks and --failed: every task's state (done, failed, skipped and why, pending, not finished), --json, a rerun file from the failures.
set -u
BIN=$(cd "${1:-bin}" && pwd)
T=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp" || exit 1

# jsoncheck NAME EXPR: EXPR holds for d, the JSON object in out.txt.
jsoncheck() {
    check "$1" "python3 -c 'import json, sys; d = json.load(open(\"out.txt\")); sys.exit(not ($2))'"
}

echo "== a run with done, failed and skipped tasks"
# b fails; c waits for b, d for c (skipped through c), e is apart; the
# barrier puts f after everything; g is killed by a signal (after a, done).
cat >t.txt <<'EOF2'
@id=a true
@id=b exit 3
@id=c @after=b true
@id=d @after=c true
# a comment line
@id=e true
@id=g @after=a kill -9 $$
EOF2
run "the run: exit 1" 1 "$T" run -q -o out t.txt
run "status --tasks: the run's exit status, 1" 1 "$T" status --tasks out
check "... done" '[ "$(task 1)" = " 1 a done" ] && [ "$(task 6)" = " 6 e done" ]'
check "... failed, with the exit status of its last attempt" '[ "$(task 2)" = " 2 b failed: exit 3" ]'
check "... skipped, naming the failure it waited for" '[ "$(task 3)" = " 3 c skipped: after b (line 2) failed" ]'
check "... skipped through another skipped task: the same cause" '[ "$(task 4)" = " 4 d skipped: after b (line 2) failed" ]'
check "... failed by a signal" '[ "$(task 7)" = " 7 g failed: signal 9" ]'
check "... one line per task, in file order, the comment left out" \
    '[ "$(awk "/^tasks/ { t = 1; next } t { print \$1 }" out.txt | tr "\n" " ")" = "1 2 3 4 6 7 " ]'
run "status --tasks --json: exit 1" 1 "$T" status --tasks --json out
jsoncheck "... the array tasks, with states, exit, signal and cause" \
    '[(t["line"], t["id"], t["state"]) for t in d["tasks"]] == [(1, "a", "done"), (2, "b", "failed"), (3, "c", "skipped"), (4, "d", "skipped"), (6, "e", "done"), (7, "g", "failed")] and d["tasks"][1]["exit"] == 3 and d["tasks"][5]["signal"] == 9 and d["tasks"][3]["cause_line"] == 2 and d["tasks"][3]["cause_id"] == "b" and d["exit"] == 1'
run "status --json without --tasks: no array" 1 "$T" status --json out
jsoncheck "... as before" '"tasks" not in d and d["failed"] == 2'

echo "== --failed: a task file of the failures"
run "status --failed: exit 1" 1 "$T" status --failed out
check "... the failed lines as written, nothing else" \
    '[ "$(cat out.txt)" = "$(printf "@id=b exit 3\n@id=g @after=a kill -9 \$\$")" ]'
# g's @after=a names a task not in the new file: the parser refuses it.
"$T" status --failed out >failed.txt
run "... as it is, refused: g's @after names a task not in it" 2 "$T" run -q -o re1 failed.txt
check "... with the file and line" 'grep -q "failed.txt:2:.*unknown" err.txt'
sed 's/@after=[^ ]* //; s/^@id=b exit 3$/@id=b true/' failed.txt >rerun.txt
run "... without @after, fixed, it reruns: exit 1 (g still fails)" 1 "$T" run -q -o re2 rerun.txt
check "... both ran, b now succeeds" '[ "$(rows re2)" = 2 ] && [ "$(succ re2)" = 1 ]'
cd re2 || exit 1
run "--failed from inside the outdir: the task file found where the run started" 1 "$T" status --failed .
check "... only g's line now" '[ "$(cat out.txt)" = "@id=g kill -9 \$\$" ]'
cd ..

echo "== a stopped run: not finished"
printf 'true\necho s >>starts; sleep 30\n@after=2 true\nsleep 30\n' >stop.txt
"$T" run -q --slots 1 -o stopped stop.txt >/dev/null 2>&1 &
sp=$!
for _ in $(seq 300); do [ -s starts ] && [ "$(state stopped)" = running ] && break; sleep 0.1; done
run "while it runs: exit 0" 0 "$T" status --tasks stopped
check "... the tasks without a row are pending" \
    '[ "$(task 2)" = " 2 2 pending (running or queued)" ] && [ "$(task 4)" = " 4 4 pending (running or queued)" ]'
kill -TERM $sp
wait $sp
check "the run stopped: exit 75" '[ $? = 75 ]'
run "status --tasks: exit 75, as the run" 75 "$T" status --tasks stopped
check "... the first done" '[ "$(task 1)" = " 1 1 done" ]'
check "... the interrupted and the never started: not finished" \
    '[ "$(grep -c "not finished (interrupted or not started: --resume runs it)" out.txt)" = 3 ]'
run "status --tasks --json: exit 75" 75 "$T" status --tasks --json stopped
jsoncheck "... not_finished" '[t["state"] for t in d["tasks"]] == ["done", "not_finished", "not_finished", "not_finished"]'
run "status --failed: nothing failed" 75 "$T" status --failed stopped
check "... empty" '[ ! -s out.txt ]'

printf 'sleep 30\n' >long.txt
"$T" run -q -o killed long.txt >/dev/null 2>&1 &
kp=$!
until_running killed 300
{ kill -KILL $kp && wait $kp; } 2>/dev/null
run "a run killed hard: status --tasks exits 75" 75 "$T" status --tasks killed
check "... its task not finished, not pending" '[ "$(task 1)" = " 1 1 not finished (interrupted or not started: --resume runs it)" ]'

echo "== what cannot be done"
run "an unknown option: exit 2" 2 "$T" status --bogus out
check "... a short usage" 'grep -q "^usage: taskfarm status" err.txt && [ "$(wc -l <err.txt)" -le 4 ]'
run "no OUTDIR: exit 2" 2 "$T" status --tasks
check "... a short usage" 'grep -q "^usage: taskfarm status" err.txt'
run "--failed with --json: exit 2" 2 "$T" status --failed --json out
run "a directory with no run: exit 2" 2 "$T" status --tasks .
echo true | "$T" run -q -o stdin - 2>/dev/null
run "the task file was standard input: exit 2" 2 "$T" status --tasks stdin
check "... and says so" 'grep -q "cannot be read again" err.txt'
run "... the plain status still works: exit 0" 0 "$T" status stdin
mv t.txt gone.txt
run "the task file is gone: exit 2" 2 "$T" status --failed out
check "... naming it" 'grep -q "cannot read its task file .*t.txt" err.txt'
run "... the plain status still exits as the run: 1" 1 "$T" status out
run "taskfarm help status: exit 0" 0 "$T" help status
check "... names --tasks and --failed" 'grep -q -- "--tasks" out.txt && grep -q -- "--failed" out.txt'

summary status
