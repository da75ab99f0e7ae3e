#!/usr/bin/env bash
# CLI conventions: the shell tasks run under (--shell, @shell, bash by default), --opt=value, - for stdin, help, durations with units, short usage on a mistake.
set -u
BIN=$(cd "${1:-bin}" && pwd)
T=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp" || exit 1
MPIRUN=(mpirun --oversubscribe -np 3)

# exits NAME WANT CMD...: CMD's exit status is WANT (out.txt, err.txt).
exits() {
    local name=$1 want=$2
    shift 2
    RUN_LIMIT=120 run "$name" "$want" "$@"
}
# statuses OUTDIR: Exitval of lines 1..N in line order, space-separated.
statuses() { awk -F'\t' 'NR > 1 { print $1, $7 }' "$1/joblog.tsv" | sort -n | cut -d' ' -f2 | tr '\n' ' '; }

# Bash-isms that dash (Debian's /bin/sh) does not know; the last fails in
# bash too (pipefail), so the run exits 1 and the joblog tells them apart.
cat >sweep.txt <<'EOF'
[[ 1 == 1 ]] && echo brackets
cat <<< here-string
echo {1..3}
set -o pipefail; false | true
EOF
echo "== the shell"
exits "bash by default: one process" 1 "$T" run -q -o def sweep.txt
check "bash-isms ran, pipefail failed" '[ "$(statuses def)" = "0 0 0 1 " ]' || cat err.txt
check "their output" '[ "$(cat def/out/1.out def/out/2.out def/out/3.out)" = "brackets
here-string
1 2 3" ]'
exits "bash by default: under mpirun" 1 "${MPIRUN[@]}" "$T" run -q -o defmpi sweep.txt
check "under mpirun, the same statuses" '[ "$(statuses defmpi)" = "0 0 0 1 " ]'
exits "--shell /bin/sh" 1 "$T" run -q --shell /bin/sh -o sh sweep.txt
# The oracle: each line run by /bin/sh itself (dash here: 127 2 0 2).
want=$(while IFS= read -r c; do /bin/sh -c "$c" >/dev/null 2>&1; echo -n "$? "; done <sweep.txt)
check "... each task's status is /bin/sh's own ($want)" '[ "$(statuses sh)" = "$want" ]'
check "... and dash is not bash here" '[ "$want" != "0 0 0 1 " ] || [ "$(readlink -f /bin/sh)" = "$(readlink -f /bin/bash)" ]'
{ echo "@shell=/bin/sh"; cat sweep.txt; } >atsh.txt
exits "@shell=/bin/sh in the file" 1 "$T" run -q -o atsh atsh.txt
check "... the same as --shell /bin/sh" '[ "$(statuses atsh)" = "$(statuses sh)" ]'
exits "--shell bash overrides @shell" 1 "$T" run -q --shell bash -o over atsh.txt
check "... bash-isms ran" '[ "$(statuses over)" = "0 0 0 1 " ]'
echo 'echo "$0"' >which.txt
exits "--shell=sh (a name, found in PATH)" 0 "$T" run -q --shell=sh -o name which.txt
check "... the task ran under it" '[ "$(cat name/out/1.out)" = "$(command -v sh)" ]'

echo "== bad shells: exit 2, nothing run"
exits "--shell nosuch" 2 "$T" run -q --shell nosuch -o bad1 sweep.txt
check "... named, with where it came from" 'grep -q "cannot run the shell .nosuch. (--shell)" err.txt'
check "... no joblog" '[ ! -e bad1/joblog.tsv ]'
{ echo "# a comment"; echo "@shell=/no/such/sh"; echo true; } >badsh.txt
exits "@shell=/no/such/sh under mpirun" 2 "${MPIRUN[@]}" "$T" run -q -o bad2 badsh.txt
check "... every rank names it with file:line" \
    '[ "$(grep -c "cannot run the shell ./no/such/sh. (@shell, badsh.txt:2)" err.txt)" = 3 ]' || cat err.txt
check "... no joblog" '[ ! -e bad2/joblog.tsv ]'
printf 'true\n@shell=bash\n' >late.txt
exits "@shell after a task" 2 "$T" check late.txt
check "... file:line" 'grep -q "^late.txt:2: @shell must come before the first task" err.txt'

echo "== a task no rank can take: refused before the run"
printf 'true\n@cores=4 echo wide\n@cores=2 true\n' >wide.txt
exits "@cores=4 on 2-slot ranks, one process" 2 "$T" run -q --slots 2 -o wide1 wide.txt
check "... file:line and why" 'grep -q "^wide.txt:2: @cores=4, but no rank runs more than 2 tasks at once" err.txt &&
     [ "$(grep -c "^wide.txt:" err.txt)" = 1 ]'
check "... nothing created" '[ ! -e wide1 ]'
exits "@cores=4 on 3-slot workers, under mpirun" 2 "${MPIRUN[@]}" "$T" run -q --slots 3 -o wide2 wide.txt
check "... named once, by rank 0" '[ "$(grep -c "^wide.txt:2: @cores=4, but no rank runs more than 3 tasks" err.txt)" = 1 ]'
exits "... with 4 slots it runs" 0 "$T" run -q --slots 4 -o wide3 wide.txt

echo "== options"
printf 'sleep 0.01\necho two\n' >two.txt
exits "--opt=value forms" 0 "$T" run -q --slots=2 --timeout=1m30s --grace=500ms --outdir=eq two.txt
check "... ran" 'once eq 2'
exits "--flag=value refused" 2 "$T" run --force=yes -o x two.txt
check "... says so in a line, and where the usage is" \
    'grep -q "^taskfarm run: --force takes no value" err.txt && [ "$(wc -l <err.txt)" = 2 ] &&
     grep -q "taskfarm help run" err.txt'
exits "unknown option: a short usage" 2 "$T" run --sloths 2 two.txt
check "... two lines, not the whole usage" '[ "$(wc -l <err.txt)" = 2 ] && grep -q "unknown option .--sloths." err.txt'
exits "missing value" 2 "$T" run two.txt --slots
check "... named" 'grep -q "missing value for .--slots." err.txt'
exits "--timeout with units" 1 "$T" run -q --timeout 200ms -o tmo <(echo "sleep 5")
check "... ended the task at 200 ms" '[ "$(awk -F"\t" "NR == 2 { print (\$4 < 3) }" tmo/joblog.tsv)" = 1 ]'
exits "--timeout 10min refused" 2 "$T" run --timeout 10min two.txt
check "... bad value named" 'grep -q "bad value .10min. for --timeout" err.txt'
printf '@timeout=2m @id=a true\n@timeout=1h30m true\n' >units.txt
exits "@timeout with units" 0 "$T" check units.txt

echo "== taskfarm status: the run's exit status, what fails now, --json"
printf 'true\nexit 3\ntrue\n@after=2 true\n' >st.txt
exits "a run with a failure" 1 "$T" run -q --retries 1 -o st st.txt
exits "status of it: exit 1, as the run" 1 "$T" status st
check "... one failing task, its last attempt only" \
    '[ "$(grep -c "^  failed: " out.txt)" = 1 ] && grep -q "failed: line 2 on .*, exit 3, signal 0: exit 3" out.txt'
exits "status --json" 1 "$T" status --json st
check "... valid JSON with the counts and the failing task" \
    'python3 -c "import json,sys; d = json.load(open(\"out.txt\")); sys.exit(not (d[\"state\"] == \"failed\" and d[\"done\"] == 2 and d[\"skipped\"] == 1 and d[\"exit\"] == 1 and [f[\"line\"] for f in d[\"failing\"]] == [2]))"'
sed -i 's/^exit 3$/true/' st.txt
exits "fixed and resumed" 0 "$T" run -q --resume -o st st.txt
exits "status: exit 0, no failure listed" 0 "$T" status st
check "... the fixed line is not a failure any more" '! grep -q "failed: line" out.txt'
printf 'sleep 30\n' >long.txt
"$T" run -q -o killed long.txt >/dev/null 2>&1 &
cl=$!
until_running killed
exits "status of a running run: exit 0" 0 "$T" status killed
{ kill -KILL $cl && wait $cl; } 2>/dev/null
exits "status of a run killed hard: exit 75 (resumable)" 75 "$T" status killed
check "... and says so" 'grep -q "interrupted: its process is gone" out.txt'
printf 'sleep 30\nsleep 30\n' >stop.txt
"$T" run -q -o stopped stop.txt >/dev/null 2>&1 &
sp=$!
until_running stopped
kill -TERM $sp
wait $sp
exits "status of a stopped run: exit 75" 75 "$T" status stopped
exits "status with a bad option" 2 "$T" status --bogus stopped
# One worker with one slot holds 2 tasks (the prefetch window): one runs.
for i in $(seq 8); do echo "sleep 0.4"; done >one.txt
mpirun -np 2 "$T" run -q --slots 1 --scheduler-only -o one one.txt >/dev/null 2>&1 &
mp=$!
most=0
for _ in $(seq 40); do
    r=$(awk '$1 == "running" { print $2 }' one/status 2>/dev/null)
    [ -n "$r" ] && [ "$r" -gt "$most" ] && most=$r
    sleep 0.1
done
wait $mp
check "running counts tasks on slots, not the queued ones (at most 1: $most)" '[ "$most" = 1 ]'


echo "== progress"
for i in $(seq 30); do echo "sleep 0.05"; done >slow.txt
exits "no terminal: no live line" 0 "$T" run -o prog1 slow.txt
check "... no carriage return" '! grep -q $'"'"'\r'"'"' err.txt'
check "... nor how the state was saved (that is -v's)" '! grep -q "state saved" err.txt'
exits "--progress: the live line all the same (as under mpirun)" 0 "${MPIRUN[@]}" "$T" run --progress -o prog2 slow.txt
check "... redrawn with carriage returns, then a clean summary line" \
    'grep -q $'"'"'\r'"'"'"[0-9]*/30 done" err.txt && tail -n 1 err.txt | grep -q "^taskfarm: 30 tasks: 30 done"'
exits "-v: how the state was saved" 0 "$T" run -v -o prog3 slow.txt
check "... said" 'grep -q "state saved in prog3 (1 snapshot" err.txt'

echo "== standard input, help"
printf 'echo from-stdin\n' | RUN_LIMIT=60 run "TASKFILE - (one process)" 0 "$T" run -q -o stdin -
check "... ran the piped task" '[ "$(cat stdin/out/1.out)" = from-stdin ]'
printf 'echo a\necho b\n' | RUN_LIMIT=120 run "TASKFILE - under mpirun" 0 "${MPIRUN[@]}" "$T" run -q -o stdinmpi -
check "... both tasks" 'once stdinmpi 2'
printf '@prio=x true\n' | RUN_LIMIT=60 run "check - with an error" 2 "$T" check -
check "... located as stdin:1" 'grep -q "^stdin:1: bad value" err.txt'
exits "taskfarm help" 0 "$T" help
check "... lists the commands" 'grep -q "^  run " out.txt && grep -q "^  help " out.txt'
exits "taskfarm help run" 0 "$T" help run
check "... run's options" 'grep -q -- "--shell SHELL" out.txt'
exits "taskfarm help nosuch" 2 "$T" help nosuch
exits "unknown command: one line" 2 "$T" frobnicate
check "... points at help" '[ "$(wc -l <err.txt)" = 1 ] && grep -q "taskfarm help" err.txt'

summary conventions
