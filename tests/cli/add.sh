#!/usr/bin/env bash
# A running farm takes more tasks: taskfarm add (validated against the farm, all or nothing, recorded for --resume and status) and run --follow (appended lines, a bad one refused alone, @end, idle without a busy core). Real children, under mpirun.
# usage: add.sh [BIN_DIR]
set -u
BIN=$(cd "${1:-bin}" && pwd)
TF=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp" || exit 1

MPI="timeout 300 mpirun --oversubscribe -np 2"
# starts: one line per start of a task, its name; count NAME: its starts.
count() { grep -cx "$1" starts 2>/dev/null; }
# row OUTDIR SEQ: the joblog row of that line (Seq), tab-separated.
row() { awk -F'\t' -v s="$2" 'NR > 1 && $1 == s' "$1/joblog.tsv"; }
# until_n N CMD...: CMD prints a number of at least N (within 60 s), as
# `rows OUTDIR` (its joblog's rows) or `started` (tasks started) do.
until_n() {
    local n=$1 i
    shift
    for i in $(seq 600); do
        [ "$("$@")" -ge "$n" ] && return 0
        sleep 0.1
    done
    return 1
}
started() { cat starts 2>/dev/null | wc -l; }
# listed: the tasks `status --tasks` listed in out.txt, as LINE:ID.
listed() { awk '/^tasks/ { t = 1; next } t { print $1 ":" $2 }' out.txt | tr '\n' ' '; }
# background OUTDIR CMD...: CMD in the background (out.bg, err.bg); job: its pid.
background() {
    local dir=$1
    shift
    # In a subshell, which a signal to the farm leaves alone: bash says
    # nothing of a job that ends normally.
    ("$@"; exit $?) >"$dir.out" 2>"$dir.err" &
    job=$!
    until_running "$dir" 600 || bad "$dir: not running within 60 s"
}
# finished: wait for the background job; rc its exit status.
finished() { wait "$job"; rc=$?; }
# add NAME WANT_RC ARGS...: taskfarm add ARGS under timeout (out.txt, err.txt).
add() { local n=$1 w=$2; shift 2; run "$n" "$w" "$TF" add "$@"; }

echo "== taskfarm add: a farm under mpirun takes tasks that wait for its own"
# a and b run for a while; c waits for a. The addition's tasks wait for
# the farm's (a, c) and for each other (forward: y before x in the file).
cat >tasks.txt <<EOF
@id=a echo a >>$PWD/starts; sleep 4
@id=b echo b >>$PWD/starts; sleep 3
@id=c @after=a echo c >>$PWD/starts
EOF
cat >more.txt <<EOF
@id=x @after=a,y echo x >>$PWD/starts
@id=y @after=c echo y >>$PWD/starts
echo plain >>$PWD/starts
EOF
background out $MPI "$TF" run --slots 2 -o out tasks.txt
until_n 2 started
add "add while a and b run: exit 0" 0 out more.txt
check "... says how many, their lines and ids" \
    'grep -qx "more.txt: 3 tasks added, lines 4-6 of the farm (ids x ... 6)" out.txt' || cat out.txt err.txt
check "... recorded in out/added, as given" 'cmp -s out/added/000001.tasks more.txt'
finished
check "the farm: exit 0" '[ "$rc" = 0 ]' || tail -5 out.err
check "each task of both files done exactly once (6 lines, 6 success rows)" \
    'once out 6 && [ "$(rows out)" = 6 ] && [ "$(sort starts | tr "\n" " ")" = "a b c plain x y " ]'
check "joblog rows of the added tasks: their lines in the farm and commands" \
    '[ "$(row out 4 | cut -f9)" = "echo x >>$PWD/starts" ] && [ "$(row out 6 | cut -f9)" = "echo plain >>$PWD/starts" ]'
# Start and end as the joblog has them, to the millisecond: an end less 2 ms.
start() { row out "$1" | cut -f3; }
end() { row out "$1" | awk -F'\t' '{ printf "%.3f", $3 + $4 - 0.002 }'; }
check "an added task ran after the farm's task it waits for (x after a, y after c)" \
    'awk -v s="$(start 4)" -v e="$(end 1)" "BEGIN { exit !(s >= e) }" &&
     awk -v s="$(start 5)" -v e="$(end 3)" "BEGIN { exit !(s >= e) }"'
check "... and after the added task it waits for (x after y)" \
    'awk -v s="$(start 4)" -v e="$(end 5)" "BEGIN { exit !(s >= e) }"'
check "status counts them: 6/6 done" '[ "$(status_field out total)" = 6 ] && [ "$(status_field out done)" = 6 ]'
run "status --tasks lists the added tasks" 0 "$TF" status --tasks out
check "... by their lines in the farm, their ids (the default: the line)" \
    '[ "$(listed)" = "1:a 2:b 3:c 4:x 5:y 6:6 " ]'
add "add to a finished farm: exit 2" 2 out more.txt
check "... no farm runs, nothing added" 'grep -q "no farm runs in out (its state is done); nothing was added" err.txt && [ ! -e out/added/000002.tasks ]'
add "add to a directory with no run: exit 2" 2 nowhere more.txt
check "... says so" 'grep -q "no farm runs in nowhere (no taskfarm run there)" err.txt'

echo "== refused additions: file:line, exit 2, nothing added, the farm goes on"
rm -f starts
printf '@id=a echo a >>%s/starts; sleep 6\n@id=b echo b >>%s/starts\n' "$PWD" "$PWD" >t2.txt
background r $MPI "$TF" run --slots 2 -o r t2.txt
until_n 1 started
printf '@id=n1 @after=a echo n1\n@id=n2 @prio=high echo n2\n@id=n3 @after=a,zz echo n3\n' >bad.txt
add "a bad value and an unknown dependency: exit 2" 2 r bad.txt
check "... each named with FILE:LINE" \
    'grep -qx "bad.txt:2: bad value '"'"'high'"'"' for @prio (expected an integer from -2147483648 to 2147483647)" err.txt &&
     grep -qx "bad.txt:3: unknown dependency '"'"'zz'"'"'" err.txt && grep -q "nothing was added to r" err.txt'
printf '@id=n1 echo n1\n@id=b echo again\n' >dup.txt
add "an id the farm has: exit 2" 2 r dup.txt
check "... a duplicate, on the file's line, naming the farm's" \
    'grep -qx "dup.txt:2: duplicate id '"'"'b'"'"' (also on line 2 of the farm)" err.txt'
printf '@id=w @cores=64 echo wide\n' >wide.txt
add "a task wider than every rank (the farm checks): exit 2" 2 r wide.txt
check "... its line" 'grep -q "^wide.txt:1: @cores=64, but no rank runs more than 2 tasks at once" err.txt'
printf '@id=p @after=q echo p\n@id=q @after=p echo q\n' >cyc.txt
add "a cycle among its tasks: exit 2" 2 r cyc.txt
check "... named by its own lines" 'grep -qx "cyc.txt: dependency cycle: p (line 1) -> q (line 2) -> p (line 1)" err.txt'
# A farm that does not answer (rank 0 stopped): add gives up, takes it back.
printf '@id=late echo late\n' >late.txt
r0=$(status_field r pid)
kill -STOP "$r0"
add "a farm that does not answer within --timeout: exit 3" 3 r --timeout 1 late.txt
kill -CONT "$r0"
check "... said, nothing left in r/incoming" \
    'grep -q "the farm in r did not take it within the timeout (--timeout); nothing was added" err.txt && [ -z "$(ls r/incoming)" ]'
finished
check "the farm: exit 0, its own two tasks only, nothing recorded" \
    '[ "$rc" = 0 ] && once r 2 && [ "$(rows r)" = 2 ] && [ ! -e r/added ] && [ "$(status_field r total)" = 2 ]'
check "... it said why it refused what reached it" 'grep -q "refused: wide.txt:1: @cores=64" r.err'
check "... and nothing is left in r/incoming" '[ -z "$(ls r/incoming)" ]'

echo "== an addition's dependency kinds and patterns over the farm's ids"
rm -f starts
printf '@id=k.a echo k.a >>%s/starts; sleep 3\n@id=k.b false\n' "$PWD" >kinds.txt
cat >kmore.txt <<EOF
@id=any @afterany=k.b echo any >>$PWD/starts
@id=notok-a @afternotok=k.a echo notok-a >>$PWD/starts
@id=notok-b @afternotok=k.* echo notok-b >>$PWD/starts
EOF
background kd "$TF" run --slots 2 -o kd kinds.txt
add "add @afterany, @afternotok and a pattern: exit 0" 0 kd kmore.txt
finished
check "the farm: exit 1 (k.b failed), the handler of k.a not needed" \
    '[ "$rc" = 1 ] && [ "$(status_field kd not_needed)" = 1 ] && [ "$(status_field kd failed)" = 1 ]' || tail -3 kd.err
check "... after any end and after a failure ran, once each; not the unneeded one" \
    '[ "$(count any)" = 1 ] && [ "$(count notok-b)" = 1 ] && [ "$(count notok-a)" = 0 ]'

echo "== --resume after a stop: the additions are known, exactly the rest runs"
rm -f starts
# The commands stay as they are for --resume (their identity): the delay
# comes from a file.
echo 3 >delay
{ for i in 1 2 3 4; do echo "@id=s$i echo s$i >>$PWD/starts; sleep \$(cat $PWD/delay)"; done; } >slow.txt
# One slot, a window of 2: s1 runs, s2 waits; m1 comes next (its
# priority) once s1 is done, before s3; m2 waits for s4.
printf '@id=m1 @after=s1 @prio=9 echo m1 >>%s/starts\n@id=m2 @after=s4 echo m2 >>%s/starts\n' "$PWD" "$PWD" >m.txt
background st "$TF" run --slots 1 -o st slow.txt
add "add to a one-process farm: exit 0" 0 st m.txt
until_n 3 rows st
kill -TERM "$(status_field st pid)"
finished
check "SIGTERM: exit 75; s1, s2 and m1 done before the stop, m2 not" \
    '[ "$rc" = 75 ] && [ "$(succ st | tr "\n" " ")" = "1 2 5 " ] && [ "$(count m2)" = 0 ]' || tail -3 st.err
echo 0 >delay
run "--resume: exit 0" 0 "$TF" run -q --resume -o st slow.txt
check "... every line of the farm once (4 + 2), the added ones too" 'once st 6 && [ "$(status_field st total)" = 6 ]'
check "... what was done ran not again (s1, s2, m1 once), m2 now" \
    '[ "$(count s1)" = 1 ] && [ "$(count s2)" = 1 ] && [ "$(count m1)" = 1 ] && [ "$(count m2)" = 1 ]'
# Killed hard after an addition's task finished: the journal knows it.
rm -rf st2 starts
{ echo "@id=k1 echo k1 >>$PWD/starts"; echo "@id=k2 @after=k1 echo k2 >>$PWD/starts; sleep 30"; } >kill.txt
printf '@id=j1 echo j1 >>%s/starts\n' "$PWD" >j.txt
background st2 "$TF" run --slots 2 -o st2 kill.txt
add "add j1: exit 0" 0 st2 j.txt
until_n 2 rows st2
kill -KILL "$(status_field st2 pid)"
finished
sed -i 's/sleep 30/true/' kill.txt
# Without its joblog row, only the saved state (the journal: no snapshot
# was written yet) can say that the added j1 is done.
sed -i '/echo j1/d' st2/joblog.tsv
run "killed (-9), then --resume: exit 0" 0 "$TF" run -q --resume -o st2 kill.txt
check "... j1 and k1 not again, k2 (killed) again: each line done once" \
    '[ "$(count j1)" = 1 ] && [ "$(count k1)" = 1 ] && [ "$(count k2)" = 2 ] && once st2 3'
check "... j1's row written from the state" 'grep -q "1 task the saved state shows done had no success row" err.txt'

# follow OUTDIR FILE: a farm under mpirun following FILE, once its first task started.
follow() {
    rm -f starts
    background "$1" $MPI "$TF" run --follow -o "$1" "$2"
    until_n 1 started
}

echo "== run --follow: lines appended while it runs, a bad one refused, @end"
printf '@id=f1 echo f1 >>%s/starts; sleep 1\n' "$PWD" >f.txt
follow fo f.txt
printf '@id=f2 @after=f1 echo f2 >>%s/starts\n@id=f3 @after=nope echo f3\n' "$PWD" >>f.txt
printf 'echo f4 >>%s/starts\n' "$PWD" >>f.txt
until_n 3 rows fo
check "while idle, it waits: still running" '[ "$(state fo)" = running ] && kill -0 $job'
add "add to a farm that follows its file: exit 2" 2 fo more.txt
check "... append to it instead" 'grep -q "follows its task file f.txt: append the tasks to it instead" err.txt'
printf '@id=f5 @after=f2 echo f5 >>%s/starts\n@end\necho never >>%s/starts\n' "$PWD" "$PWD" >>f.txt
finished
check "@end: the farm ends, exit 0" '[ "$rc" = 0 ]' || tail -3 fo.err
check "every good line once (f1, f2, f4, f5), nothing after @end" \
    '[ "$(sort starts | tr "\n" " ")" = "f1 f2 f4 f5 " ] && [ "$(succ fo | tr "\n" " ")" = "1 2 4 5 " ]'
check "the bad line: refused with its file:line, recorded, the rest went on" \
    'grep -q "f.txt:3: unknown dependency '"'"'nope'"'"'; line not taken" fo.err && grep -q "^3	f.txt:3: unknown" fo/rejected'
run "status --tasks: the taken lines, the refused one left out" 0 "$TF" status --tasks fo
check "... 1 2 4 5" '[ "$(listed)" = "1:f1 2:f2 4:4 5:f5 " ]'

echo "== --follow: a signal stops it (75), --resume --follow goes on, add --end ends it"
printf '@id=g1 echo g1 >>%s/starts\n' "$PWD" >g.txt
follow go g.txt
printf '@id=g2 echo g2 >>%s/starts\n@id=gx @after=nowhere true\n' "$PWD" >>g.txt
until_n 2 rows go
kill -TERM "$(status_field go pid)"
finished
check "SIGTERM while following: exit 75, stopped" '[ "$rc" = 75 ] && [ "$(state go)" = stopped ]' || tail -3 go.err
check "... says how to go on" 'grep -q "finish with: taskfarm run --resume --follow -o go g.txt" go.err'
printf '@id=g3 @after=g2 echo g3 >>%s/starts\n@id=g4 @prio=x true\n' "$PWD" >>g.txt
background go $MPI "$TF" run --resume --follow -o go g.txt
until_n 3 rows go
check "--resume --follow: the lines appended meanwhile are taken, a bad one refused" \
    '[ "$(count g3)" = 1 ] && grep -q "g.txt:5: bad value" go.err'
add "add --end: exit 0" 0 --end go
check "... the farm says it takes no more" 'grep -q "go: the farm takes no more tasks; it ends once its tasks are done" out.txt'
finished
check "the farm: exit 0; g1, g2, g3 once each; the refused lines stay out" \
    '[ "$rc" = 0 ] && [ "$(sort starts | tr "\n" " ")" = "g1 g2 g3 " ] && [ "$(succ go | tr "\n" " ")" = "1 2 4 " ]'

echo "== --follow on standard input: its end ends the list"
{ echo "echo i1 >>$PWD/starts"; sleep 1; echo "echo i2 >>$PWD/starts"; } |
    run "a generator piped in: exit 0 when it is done" 0 "$TF" run --follow -o si -
check "... both lines ran" '[ "$(count i1)" = 1 ] && [ "$(count i2)" = 1 ] && [ "$(rows si)" = 2 ]'

echo "== idle while following: no busy core"
: >idle.txt
background idle $MPI "$TF" run --follow -o idle idle.txt
pids=$(pgrep -f "taskfarm run --follow -o idle idle.txt" | while read -r p; do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = taskfarm ] && echo "$p"; done)
hz=$(getconf CLK_TCK)
cpu() { for p in $pids; do awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0; done; }
c0=$(cpu | tr '\n' ' ')
sleep 3
c1=$(cpu | tr '\n' ' ')
busy=$(paste <(echo "$c0" | tr ' ' '\n') <(echo "$c1" | tr ' ' '\n') |
    awk -v hz="$hz" 'NF == 2 { d = ($2 - $1) / hz / 3; if (d > m) m = d } END { printf "%.3f", m }')
note "the busiest of $(echo $pids | wc -w) ranks used $busy of a core while following an idle file"
check "2 ranks following, each under 0.3 of a core" \
    '[ "$(echo $pids | wc -w)" = 2 ] && awk -v b="$busy" "BEGIN { exit !(b < 0.3) }"'
echo "@end" >>idle.txt
finished
check "@end appended: exit 0" '[ "$rc" = 0 ]'

summary add.sh
