#!/usr/bin/env bash
# Argument mode (::: and ::::, GNU parallel's) against parallel itself, @array lines, check --dry-run, and their bad inputs: real children, one process and under mpirun.
set -u
BIN=$(cd "${1:-bin}" && pwd)
T=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp" || exit 1
MPIRUN=(mpirun --oversubscribe -np 2)

# commands DIR_OR_FILE: a joblog's Command column, sorted (one a line).
commands() {
    local f=$1
    [ -d "$f" ] && f=$f/joblog.tsv
    tail -n +2 "$f" | cut -f9- | LC_ALL=C sort
}
# outputs DIR N: tasks 1..N's stdout, in job order (what parallel -k prints).
outputs() {
    local i
    for i in $(seq "$2"); do cat "$1/out/$i.out" 2>/dev/null; done
}
# nothing_ran DIR: no outdir at all, so no joblog, no output, no state.
nothing_ran() { [ ! -e "$1" ]; }

# Both tools run the shell commands under bash.
export SHELL=/bin/bash
have_parallel=0
if command -v parallel >/dev/null && parallel --version 2>/dev/null | grep -q "GNU parallel"; then
    have_parallel=1
    mkdir -p "$HOME/.parallel" 2>/dev/null && touch "$HOME/.parallel/will-cite" 2>/dev/null
else
    skip "the comparisons with GNU parallel" --missing "GNU parallel"
fi

# same NAME ARGS...: `parallel -k --joblog` and `taskfarm run` on the same
# command line; the Command columns (as sets) and the children's output (in
# job order) must be the same, and every job succeed.
n_same=0
same() {
    local name=$1
    shift
    n_same=$((n_same + 1))
    local d=cmp$n_same
    [ "$have_parallel" = 1 ] || return 0
    timeout 120 parallel -k -j2 --joblog "$d.pjl" "$@" >"$d.pout" 2>"$d.perr" </dev/null
    local prc=$?
    run "$name: taskfarm exits 0" 0 "$T" run -q --slots 2 -o "$d" "$@" </dev/null || return 1
    local njobs
    njobs=$(($(wc -l <"$d.pjl") - 1))
    check "... parallel exits 0 too, $njobs jobs" '[ "$prc" = 0 ] && [ "$njobs" -gt 0 ]'
    check "... the same commands as parallel's joblog" '[ "$(commands "$d.pjl")" = "$(commands "$d")" ]' ||
        diff <(commands "$d.pjl") <(commands "$d") | head -10 | sed 's/^/    /'
    check "... the same output, job by job" '[ "$(outputs "$d" "$njobs")" = "$(cat "$d.pout")" ]'
}

echo "== the replacement strings, against parallel"
same "each replacement string" printf '[%s]' {} {.} {/} {//} {/.} {#} ::: \
    dir.x/file.tar.gz file /abs/f.c a/ .hidden a.b/c x. / 'a b/c d.e' .. 'a//b' d/.x ./f.c
check "... job 1's output, as parallel has it" \
    '[ "$(cat cmp1/out/1.out)" = "[dir.x/file.tar.gz][dir.x/file.tar][file.tar.gz][dir.x][file.tar][1]" ]'
# (COMMAND's words are joined by spaces, as parallel joins them: a word the
# shell must read as one is quoted inside it.)
same "arguments the shell must not read: quoting" 'printf "<%s>"' {} ::: \
    'a b' "it's" '$HOME' '*' 'a;b' '"q"' 'back\slash' '~' 'a|b' '$(date)' '' -n 'é' "'" "''" 'a  b' '{}' '#x' '@x' '`id`' 'a&b' 'x>y'
same "no replacement string: the arguments appended, quoted" 'printf "<%s>"' ::: 'a b' "it's" '$x'
same "several sources: all combinations, the last fastest" echo {2} {1} ::: a b c ::: 1 2
same "{} with several sources: every argument" echo {} {#} ::: 'a b' c ::: 1 2
same ":::+: linked element by element, the shortest wins" echo {1}-{2}-{3} ::: a b c :::+ 1 2 ::: x y
same "--link in the middle: parallel's example" echo ::: a b c :::+ 1 2 3 ::: X Y :::+ 11 22
same "positions from the end, with modifiers" echo {-1} {1.} {2/} {-2//} ::: d/a.b e/c.d ::: x/y.z
same "unknown replacement strings left as written" echo '{foo}' '{..}' '{+/}' '{1..3}' '{ }' '{{}}' ::: a.b.c
same "no command: the arguments are the commands" ::: 'echo a b' 'printf "%s\n" x' 'echo $((1+2))'
same "{} in the first word: not quoted" '{1} {2}' ::: echo printf ::: 'a b'
printf 'x.c\ny z.c\n\nlast.c' >files.txt
printf '1\n2\n' >nums.txt
same ":::: a file, one argument a line (an empty line is one)" echo {} {.} :::: files.txt
same ":::: and ::: mixed" echo {1} {2} :::: nums.txt ::: p q
same "::::+ files linked to the source before" echo ::: a b ::::+ nums.txt files.txt

echo "== argument mode through the task-file path"
printf 'b\na\n' | run ":::: - reads standard input" 0 "$T" run -q -o stdin echo {} :::: -
check "... its jobs" '[ "$(outputs stdin 2)" = "$(printf "b\na")" ]'
run "a run with a failure" 1 "$T" run -q -o am exit ::: 0 3 0
check "... the run's task file in the outdir, job N on line N" \
    '[ "$(cat am/argtasks.txt)" = "$(printf "exit 0\nexit 3\nexit 0")" ]'
check "... joblog Seq is the job's number, as parallel's" \
    '[ "$(tail -n +2 am/joblog.tsv | cut -f1,7 | sort -n | tr "\t\n" ": ")" = "1:0 2:3 3:0 " ]'
run "status --tasks reads it" 1 "$T" status --tasks am
check "... ids are job numbers, job 2 failed" \
    'grep -q "task file am/argtasks.txt" out.txt && [ "$(awk "/^tasks/ { t = 1; next } t" out.txt | tr -s " " | tr "\n" "|")" = " 1 1 done| 2 2 failed: exit 3| 3 3 done|" ]'
run "status --failed: the failed job's line" 1 "$T" status --failed am
check "... one line" '[ "$(cat out.txt)" = "exit 3" ]'
run "--resume with the same command line: only job 2 again, fails again" 1 "$T" run -q --resume -o am exit ::: 0 3 0
check "... one more row, for job 2" '[ "$(rows am)" = 4 ] && [ "$(tail -n 1 am/joblog.tsv | cut -f1)" = 2 ]'
run "--resume from the outdir's task file, as the stop message says" 1 "$T" run -q --resume -o am am/argtasks.txt
check "... job 2 only, again" '[ "$(rows am)" = 5 ]'
run "an existing outdir without --resume: refused" 2 "$T" run -q -o am echo ::: x
check "... its task file left alone" 'grep -q "exit" am/argtasks.txt'
run "a bad command line on an existing outdir: exit 2" 2 "$T" run -q --resume -o am echo '{%}' ::: x
check "... its task file and joblog left alone" 'grep -q "exit" am/argtasks.txt && [ "$(rows am)" = 5 ]'
run "options before COMMAND, the command's own after" 0 "$T" run -q -o opts ls -d {} ::: . /
check "... ls got -d" '[ "$(outputs opts 2)" = "$(printf ".\n/")" ]'
run "task attributes at the head of the command" 0 "$T" run -q -o attrs @id=job.{} @prio={#} echo {} ::: a b
check "... ids from the argument" '[ -s attrs/out/job.a.out ] && [ -s attrs/out/job.b.out ]'
"$T" run -q -o grow sleep {} ::: 3 3 >grow.log 2>&1 &
gp=$!
until_running grow 300
printf '@id=post @after=1,2 echo post\n@id=z @array=a,b @after=post echo z{}\n' >more.txt
run "taskfarm add to a farm of argument mode, an array in the addition" 0 "$T" add grow more.txt
wait $gp
check "... the farm took it: 5 tasks, each once, its own file left as it was" \
    'grep -q "5 tasks: 5 done" grow.log && [ "$(cat grow/argtasks.txt)" = "$(printf "sleep 3\nsleep 3")" ] && [ "$(cat grow/out/z.b.out)" = zb ]'
run "... status --tasks reads both" 0 "$T" status --tasks grow
check "... the jobs, then the addition's lines" \
    '[ "$(awk "/^tasks/ { t = 1; next } t { print \$1 \":\" \$2 }" out.txt | tr "\n" " ")" = "1:1 2:2 3:post 4:z.a 4:z.b " ]'
run "--resume with the same command line: done, additions too" 0 "$T" run -q --resume -o grow sleep {} ::: 3 3
run "--follow with argument mode: refused" 2 "$T" run -q --follow -o fol echo ::: a
check "... saying why, nothing made" 'grep -q "follows a task file" err.txt && nothing_ran fol'
RUN_LIMIT=180 run "under mpirun, :::: - on rank 0's standard input" 0 "${MPIRUN[@]}" "$T" run -q --slots 1 -o mpi echo {#} {} :::: - ::: x y <nums.txt
check "... four jobs, each once" 'once mpi 4 && [ "$(commands mpi | tr "\n" "|")" = "echo 1 1 x|echo 2 1 y|echo 3 2 x|echo 4 2 y|" ]'

echo "== @array lines"
cat >arr.txt <<'EOF'
@id=prep echo prep >prep.done
@id=sim @array=1-4,9-13:2 @after=prep @prio=5 @retries=1 test -e prep.done && echo {} >>sims && [ -e try.{} ] || { touch try.{}; exit 1; }
@array=a,b_c,007-009 echo el {} {#}
@id=slow @array=1-2 @timeout=300ms sleep {}
@id=agg @after=sim,3 sh -c 'wc -l <sims'
@barrier
@after=sim.11 echo last
EOF
run "check: the elements counted" 0 "$T" check arr.txt
check "... 17 tasks (1 + 7 + 5 + 2 + 1 + 1), 20 dependencies (7 + 12 + 1)" 'grep -q "arr.txt: 17 tasks, 20 dependencies, 1 barriers" out.txt'
run "a run: the slow elements time out, exit 1" 1 "$T" run -q --slots 2 -o arr arr.txt
check "... every element of sim ran after prep, twice (a retry each)" \
    '[ "$(sort -n sims | uniq -c | awk "{print \$1 \":\" \$2}" | tr "\n" " ")" = "2:1 2:2 2:3 2:4 2:9 2:11 2:13 " ]'
check "... agg after every element: all 14 lines were there" '[ "$(cat arr/out/agg.out)" = 14 ]'
check "... ids BASE.VALUE, line number as base without @id, zero padding" \
    '[ "$(cat arr/out/3.008.out)" = "el 008 4" ] && [ "$(cat arr/out/3.b_c.out)" = "el b_c 2" ]'
check "... joblog Seq is the source line, one row per attempt" \
    '[ "$(awk -F"\t" "\$1 == 2" arr/joblog.tsv | wc -l)" = 14 ] && [ "$(awk -F"\t" "\$1 == 3" arr/joblog.tsv | wc -l)" = 5 ]'
check "... @timeout kept by each element: both ended by it (SIGTERM)" \
    '[ "$(awk -F"\t" "\$1 == 4 { print \$7 \":\" \$8 }" arr/joblog.tsv | tr "\n" " ")" = "-1:15 -1:15 " ]'
check "... the task after the barrier was skipped" '[ ! -e arr/out/7.out ]'
run "status --tasks: every element" 1 "$T" status --tasks arr
check "... on its line, with its id" \
    '[ "$(awk "/^tasks/ { t = 1; next } t { print \$1 \":\" \$2 }" out.txt | tr "\n" " ")" = "1:prep 2:sim.1 2:sim.2 2:sim.3 2:sim.4 2:sim.9 2:sim.11 2:sim.13 3:3.a 3:3.b_c 3:3.007 3:3.008 3:3.009 4:slow.1 4:slow.2 5:agg 7:7 " ]'
check "... the failed elements, and the skip names one" \
    'grep -q "slow.2 .*failed: signal 15" out.txt && grep -Eq "^ +7 +7 +skipped: after slow.1 \(line 4\) failed" out.txt'
run "status --failed: the array line cut down to its failed elements" 1 "$T" status --failed arr
check "... @array=1-2 stays (both failed)" '[ "$(cat out.txt)" = "@id=slow @array=1-2 @timeout=300ms sleep {}" ]'
sed -i 's/@timeout=300ms/@timeout=30/' arr.txt
run "fixed and resumed: exit 0" 0 "$T" run -q --resume -o arr arr.txt
check "... sim ran no more (its commands unchanged), slow and last did" \
    '[ "$(wc -l <sims)" = 14 ] && [ "$(cat arr/out/7.out)" = last ] && [ "$(awk -F"\t" "\$1 == 4 && \$7 == 0" arr/joblog.tsv | wc -l)" = 2 ]'
printf '@id=try @array=1-4 test {} != 3\n@id=clean @afterany=try echo clean\n@id=report @afternotok=try echo report\n@id=two @after=try.[12] echo two\n@id=all @after=try echo all\n' >kinds.txt
run "an array under @afterany, @afternotok and a pattern: one element fails, exit 1" 1 "$T" run -q -o kinds kinds.txt
check "... clean after all ended, report after the failure, two after 1 and 2, all skipped" \
    '[ "$(cat kinds/out/clean.out)" = clean ] && [ "$(cat kinds/out/report.out)" = report ] && [ "$(cat kinds/out/two.out)" = two ] && [ ! -e kinds/out/all.out ]'
printf '@id=p @array=1-6 test $(( {} %% 3 )) != 0\n@id=q @array=x,y true\n' >narrow.txt
run "an array with some elements failing" 1 "$T" run -q -o narrow narrow.txt
run "status --failed" 1 "$T" status --failed narrow
check "... names only 3 and 6" '[ "$(cat out.txt)" = "@id=p @array=3,6 test \$(( {} % 3 )) != 0" ]'
printf '@id=r @array=1-9 test {} -lt 3 -o {} = 5\n' >runs.txt
"$T" run -q -o runs runs.txt >/dev/null 2>&1
run "status --failed: runs of failures as ranges" 1 "$T" status --failed runs
check "... 3-4 as a list, 6-9 as a range" '[ "$(cat out.txt)" = "@id=r @array=3,4,6-9 test {} -lt 3 -o {} = 5" ]'
run "status (no --tasks): the failing elements apart" 1 "$T" status runs
check "... six failing, each its own command" '[ "$(grep -c "^  failed: line 1 " out.txt)" = 6 ]'
mv runs.txt runs.gone
run "... and from the joblog alone when the task file is gone" 1 "$T" status runs
check "... the same six" '[ "$(grep -c "^  failed: line 1 " out.txt)" = 6 ]'
printf '@array=1-1500 true {}\n@array=1-3 echo {}\n' >blocks.txt
run "1,503 tasks on 2 lines: output in blocks of 1,000 entries" 0 "$T" run -q -o blocks blocks.txt
check "... 2.3 in out/1001-2000/" '[ "$(cat blocks/out/1001-2000/2.3.out)" = 3 ]'
run "1,000,000 elements from one line: check" 0 "$T" check <(echo '@id=s @array=1-1000000 ./sim --input in{}.h5 --out out{}.h5'; echo '@after=s ./agg')
bpt=$(sed -n 's/.*, \([0-9]*\) bytes\/task$/\1/p' out.txt)
note "$(cat out.txt)"
check "... 1,000,001 tasks, 1,000,000 dependencies, bytes a task ($bpt), not kilobytes" \
    'grep -q ": 1000001 tasks, 1000000 dependencies" out.txt && [ "$bpt" -lt 128 ]'

echo "== check --dry-run"
cat >dry.txt <<'EOF'
@id=prep echo prep
@id=sim @array=1-2 @after=prep ./sim --in 'a b' {}
@barrier
@after=sim @afterany=prep printf '%s\t%s\n' x y
@id=last @afternotok=sim.* echo last
EOF
# The expected lines, their tabs written as | here.
tr '|' '\t' >dry.want <<'EOF'
line|id|after|afterany|afternotok|command
1|prep||||echo prep
2|sim.1|prep|||./sim --in 'a b' 1
2|sim.2|prep|||./sim --in 'a b' 2
4|4|sim.1,sim.2,@barrier:3|prep||printf '%s\t%s\n' x y
5|last|@barrier:3||sim.1,sim.2|echo last
EOF
run "a task file: exit 0" 0 "$T" check --dry-run dry.txt
check "... header, then line, id, the ids waited for by kind and the command" 'cmp -s out.txt dry.want' ||
    diff dry.want out.txt | sed 's/^/    /'
run "argument mode: exit 0" 0 "$T" check --dry-run echo {} ::: 'a b' ::: x
printf "line\tid\tafter\tafterany\tafternotok\tcommand\n1\t1\t\t\t\techo 'a b' x\n" >dry2.want
check "... the command as it would run" 'cmp -s out.txt dry2.want'
run "argument mode without --dry-run: counts" 0 "$T" check echo ::: a b c ::: 1 2
check "... 6 tasks" 'grep -q "^arguments: 6 tasks, 0 dependencies" out.txt'
[ "$have_parallel" = 1 ] && {
    parallel --dry-run -k echo {} {.} ::: 'a b.c' "d'e" ::: 1 2 >pdry.txt
    "$T" check --dry-run echo {} {.} ::: 'a b.c' "d'e" ::: 1 2 | tail -n +2 | cut -f6- >tdry.txt
    check "... --dry-run's commands are parallel --dry-run's" 'cmp -s pdry.txt tdry.txt'
}

echo "== bad input: exit 2, a message naming the place, nothing run"
# bad NAME WANT_MSG ARGS...: taskfarm run ARGS -o badN exits 2, says WANT_MSG (a grep -E pattern) and made no outdir.
n_bad=0
bad_input() {
    local name=$1 want=$2
    shift 2
    n_bad=$((n_bad + 1))
    run "$name: exit 2" 2 "$T" run -q -o bad$n_bad "$@" </dev/null
    check "... says: $want" 'grep -Eq -- "$want" err.txt' || sed 's/^/    /' err.txt | head -3
    check "... nothing ran (no outdir)" 'nothing_ran bad$n_bad'
}
# (Arguments are counted after `taskfarm`: run is 1, -q 2, -o 3, badN 4.)
bad_input "an empty ::: source" "::: at argument 9 gives no arguments" echo {} ::: a :::
bad_input "an empty ::: at the end of a linked pair" ":::\+ at argument 8 gives no arguments" echo ::: a :::+
bad_input ":::: without a file" ":::: at argument 6 gives no file" echo ::::
bad_input ":::: a file that is not there" "no-such-file: No such file or directory" echo :::: no-such-file
: >empty.txt
bad_input ":::: an empty file" "empty.txt: empty, no arguments \(input source 1\)" echo :::: empty.txt
printf 'a\nb\0c\n' >nul.txt
bad_input ":::: a file with a NUL byte" "nul.txt:2: NUL byte" echo :::: nul.txt
bad_input "{%}: parallel's job slot" "'\{%\}' in the command: parallel's job slot" echo {%} ::: a
bad_input "{= perl =}" "'\{= uc =\}' in the command: perl expressions" echo '{= uc =}' ::: a
bad_input "{3} with two sources" "'\{3\}' in the command: names an input source past the last one \(there are 2\)" echo {3} ::: a ::: b
bad_input "{0}" "'\{0\}' in the command: input sources are numbered from 1" echo {0} ::: a
bad_input "a newline in the command" "the command holds a line break" $'echo a\necho {}' ::: x
bad_input "a job whose command is a comment" "job 2 \('#b'\): the command '#b' is a comment" {} ::: a '#b'
bad_input "a job whose command is empty" "job 1 \(''\): the command '' is empty" ::: ''
bad_input "a job that would be a directive (@end)" "job 2 \('@end'\): the command '@end' starts with @" ::: 'echo a' '@end' 'echo c'
head -c 150000 /dev/zero | tr '\0' x >long.txt
bad_input "a job too long for the shell" "job 1 \('x{40}\.\.\.'\): command of 150005 bytes, longer than 131071" echo {} :::: long.txt
bad_input "a bad id made from an argument" "job 2 \('b c'\): bad id 'x'b' in @id" @id=x{} echo ::: a 'b c'
bad_input "too many jobs" "the input sources make more than 100000000 jobs" echo ::: $(seq 10000) ::: $(seq 10001)
printf 'true\n@id=s @array=1-9:0 echo {}\n' >bad1.txt
bad_input "an array with a step of 0" "bad1.txt:2: bad item '1-9:0' in @array \(a step of 0\)" bad1.txt
printf '@array=9-1 echo {}\n' >bad2.txt
bad_input "a range that ends before it starts" "bad2.txt:1: bad item '9-1' in @array \(a range that ends before it starts\)" bad2.txt
printf '@array=0-100000000 true\n' >bad3.txt
bad_input "too many tasks in an array" "bad3.txt:1: @array of more than 100000000 elements" bad3.txt
printf '@id=a @array=1-3 echo {}\n@after=a.4 true\n' >bad4.txt
bad_input "an element that is not there" "bad4.txt:2: unknown dependency 'a.4' \(did you mean 'a.1'\?\)" bad4.txt
printf '@array=1,2,1 echo {}\n' >bad5.txt
bad_input "an index given twice" "bad5.txt:1: @array gives the element '1.1' twice" bad5.txt
printf '@array=1 echo {2}\n' >bad6.txt
bad_input "{2} in an array line" "bad6.txt:1: '\{2\}' in an @array line's command: an array gives one value" bad6.txt
run "check --dry-run of a bad file: exit 2, nothing printed" 2 "$T" check --dry-run bad2.txt
check "... stdout empty" '[ ! -s out.txt ]'
run "check in argument mode, a bad source: exit 2" 2 "$T" check echo ::: a :::
check "... named as check's" 'grep -q "^taskfarm check: ::: at argument 5 gives no arguments" err.txt'

echo "== the time of both, 1,000 true tasks with {} (noted, not asserted)"
if [ "$have_parallel" = 1 ]; then
    t0=$(date +%s.%N)
    parallel -j2 --joblog ptime.jl true {} ::: $(seq 1000) </dev/null
    t1=$(date +%s.%N)
    "$T" run -q --slots 2 -o ttime true {} ::: $(seq 1000) </dev/null
    t2=$(date +%s.%N)
    "$T" run -q --slots 2 --shell /bin/sh -o ttime2 true {} ::: $(seq 1000) </dev/null
    t3=$(date +%s.%N)
    check "the same 1,000 commands" '[ "$(commands ptime.jl)" = "$(commands ttime)" ] && [ "$(rows ttime)" = 1000 ]'
    note "$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
        printf "parallel -j2: %.2f s; taskfarm run --slots 2: %.2f s (%.2fx); with --shell /bin/sh: %.2f s", b - a, c - b, (c - b) / (b - a), d - c }')"
fi

summary args
