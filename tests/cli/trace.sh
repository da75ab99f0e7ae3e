#!/usr/bin/env bash
# Traces and reports end to end: taskfarm run's trace.json (1 process, mpirun -np 3), a library trace, taskfarm report's SVG; checked with python3.
set -u
BIN=$(cd "${1:-bin}" && pwd)
TESTS=$(cd "${2:-build/tests}" && pwd)
TF=$BIN/taskfarm
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$tmp"
RUN_LIMIT=60 # seconds for each `run` (lib.sh); a hang fails

# check_trace NAME TRACE EXPECT.json: the trace parses as JSON, holds exactly
# the spans EXPECT counts ({"name": attempts}), with attempts 1..n, every
# span on a slot its rank has, and no two spans overlapping on one track.
cat >check_trace.py <<'EOF'
import collections, json, sys
trace, want = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert trace["displayTimeUnit"] == "ms", "displayTimeUnit"
ev = trace["traceEvents"]
slots = {e["pid"]: e["args"]["slots"] for e in ev
         if e["ph"] == "M" and e["name"] == "process_name"}
spans = [e for e in ev if e["ph"] == "X"]
got = collections.Counter(e["name"] for e in spans)
assert got == collections.Counter(want), "spans per name: got %s, want %s" % (
    dict(got), want)
tries = collections.defaultdict(list)
for e in spans:
    tries[e["name"]].append(e["args"]["attempt"])
    assert e["pid"] in slots, "span on a rank without process_name: %s" % e
    assert 0 <= e["tid"] < slots[e["pid"]], "slot out of range: %s" % e
    assert e["args"]["rank"] == e["pid"] and e["args"]["slot"] == e["tid"], e
    assert e["dur"] >= 0, e
for n, a in tries.items():
    assert sorted(a) == list(range(1, len(a) + 1)), "attempts of %s: %s" % (n, a)
track = collections.defaultdict(list)
for e in spans:
    track[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"], e["name"]))
for k, v in track.items():
    v.sort()
    for a, b in zip(v, v[1:]):
        assert b[0] >= a[1] - 0.001, "overlap on rank %d slot %d: %s and %s" % (k + (a, b))
for e in ev:
    if e["ph"] == "i":
        assert e["s"] in ("p", "g") and "ts" in e, e
print("%d spans on %d tracks, %d instants" % (
    len(spans), len(track), sum(e["ph"] == "i" for e in ev)))
EOF
check_trace() {
    if python3 check_trace.py "$2" "$3" >check.txt 2>&1; then
        ok "$1: $(cat check.txt)"
    else
        bad "$1"; sed 's/^/    /' check.txt | tail -5
    fi
}
# expect_from_joblog DIR: {"LINE": rows} (ids default to the line number).
expect_from_joblog() {
    awk -F'\t' 'NR > 1 { n[$1]++ } END { s = "{"; for (k in n) { s = s sep "\"" k "\": " n[k]; sep = ", " } print s "}" }' "$1/joblog.tsv"
}
# svg_ok NAME SVG N: well-formed XML with exactly N task rectangles.
svg_ok() {
    local n
    if n=$(python3 -c '
import sys, xml.dom.minidom
d = xml.dom.minidom.parse(sys.argv[1])
print(sum(r.getAttribute("class") in ("d", "r", "f") for r in d.getElementsByTagName("rect")))' "$2" 2>&1) &&
        [ "$n" = "$3" ]; then ok "$1: well-formed, $n task rectangles"; else
        bad "$1: got '$n', want $3 task rectangles"; fi
}

# ---- one process: retries, a failure, a skip, a wide task, odd characters ----
cat >tasks.txt <<'EOF'
sleep 0.2
sleep 0.1
@after=1 echo "after one"
@retries=2 test "$TASKFARM_ATTEMPT" = 3
@retries=1 exit 4
@after=5 echo never
@cores=2 sleep 0.1
echo 'quote " and \ backslash' ; printf 'caf\303\251\n'
@barrier
echo last
EOF
run "run, one process" 1 "$TF" run -q --slots 3 -o o1 tasks.txt
expect_from_joblog o1 >o1.expect
check "joblog: 10 attempts" '[ "$(tail -n +2 o1/joblog.tsv | wc -l)" = 10 ]'
check_trace "trace, one process" o1/trace.json o1.expect
check "trace: retries and failure as instants" \
    '[ "$(grep -c "\"name\":\"retry\",\"ph\":\"i\"" o1/trace.json)" = 3 ] && grep -q "\"name\":\"failed\",\"ph\":\"i\"" o1/trace.json'
check "trace: @cores=2 span says cores 2" 'grep -q "\"name\":\"7\".*\"cores\":2" o1/trace.json'
run "report" 0 "$TF" report o1
svg_ok "report.svg" o1/report.svg 10
check "report: summary" 'grep -q ": 7 tasks, 10 attempts (6 done, 3 failed and retried, 1 failed) on 1 rank, 3 slots" out.txt && grep -q "rank 0 (.*): .*% busy, 10 attempts" out.txt'
run "report -o" 0 "$TF" report o1 -o other.svg
svg_ok "report -o FILE" other.svg 10

# ---- --no-trace ----
run "--no-trace" 0 "$TF" run -q --no-trace -o o2 <(echo true)
check "--no-trace: no trace.json" '[ ! -e o2/trace.json ]'
run "report without a trace" 2 "$TF" report o2
check "report without a trace: names the file" 'grep -q "o2/trace.json: No such file" err.txt'

# ---- a truncated or damaged trace: exit 2, naming file, line and byte ----
mkdir -p cut
head -c 700 o1/trace.json >cut/trace.json
run "report of a truncated trace" 2 "$TF" report cut
line=$(($(head -c 700 o1/trace.json | wc -l) + 1)) # the cut's line
check "truncated: names file, line and byte offset" \
    'grep -q "cut/trace.json:$line: byte 700: unexpected end of file" err.txt'
check "truncated: no SVG" '[ ! -e cut/report.svg ]'
# Cut anywhere, the message is the same, at the cut: in the header's key
# "otherData" (30), its number start_ns (80), the key "traceEvents" (101,
# 102), somewhere in the events, and in the closing "}\n]}" (size - 4 ..).
size=$(wc -c <o1/trace.json)
cuts_bad=
for k in 0 1 30 80 101 102 $((size / 3)) $((size / 2)) $((size - 40)) $((size - 4)) $((size - 3)) $((size - 2)); do
    head -c $k o1/trace.json >cut/trace.json
    timeout 60 "$TF" report cut >out.txt 2>err.txt
    rc=$?
    [ "$rc" = 2 ] && grep -q "byte $k: unexpected end of file" err.txt || cuts_bad="$cuts_bad $k"
done
check "truncated anywhere: exit 2 and the cut's byte offset${cuts_bad:+ (not at$cuts_bad)}" '[ -z "$cuts_bad" ]'
# Damaged at a known line: the first span's line.
line=$(grep -n '"ph":"X"' o1/trace.json | head -1 | cut -d: -f1)
sed "${line}s/\"ts\":/\"ts\":x/" o1/trace.json >cut/trace.json
run "report of a damaged trace" 2 "$TF" report cut
check "damaged: says line, byte and what" \
    'grep -q "cut/trace.json:$line: byte [0-9]*: invalid token near .x" err.txt'
sed "${line}s/\"ts\":\([0-9.]*\)/\"ts\":\"\1\"/" o1/trace.json >cut/trace.json
run "report of a trace with a string for a number" 2 "$TF" report cut
check "string for a number: says line and field" \
    'grep -q "cut/trace.json:$line: byte [0-9]*: an event.s \"ts\" is not a number" err.txt'
sed "${line}s/\"name\":\"\([^\"]*\)\"/\"name\":\"\1\xff\"/" o1/trace.json >cut/trace.json
run "report of a trace with a byte that is not UTF-8" 2 "$TF" report cut
check "not UTF-8: says line and byte" \
    'grep -q "cut/trace.json:$line: byte [0-9]*: .*0xff" err.txt'
printf '{"traceEvents":[]}\n' >cut/trace.json
run "report of an empty events array" 0 "$TF" report cut
svg_ok "empty events array: report.svg" cut/report.svg 0
check "empty events array: summary" 'grep -q ": 0 tasks, 0 attempts .* on 0 ranks" out.txt'
printf '{"displayTimeUnit":"ms"}\n' >cut/trace.json
run "report of JSON without traceEvents" 2 "$TF" report cut
check "without traceEvents: says so" 'grep -q "cut/trace.json:1: byte 0: no \"traceEvents\" array" err.txt'

# ---- stopped by a signal: the trace is still a whole document ----
seq 1 8 | sed 's/.*/sleep 5/' >slow.txt
timeout 60 "$TF" run -q --slots 2 --checkpoint-every 0.2 -o o3 slow.txt >out.txt 2>err.txt &
pid=$!
for i in $(seq 50); do [ "$(ls o3/out 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.1; done
# A periodic snapshot has been made durable, so the trace must mark it.
for i in $(seq 50); do ls o3/state-*.h5 >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.5
kill -TERM $pid
wait $pid
rc=$?
check "SIGTERM: exit 75" '[ "$rc" = 75 ]'
check "SIGTERM: trace is valid JSON" 'python3 -m json.tool o3/trace.json >/dev/null'
check "SIGTERM: signal and halt instants" \
    'grep -q "\"name\":\"signal\",\"ph\":\"i\".*\"s\":\"g\"" o3/trace.json && grep -q "\"name\":\"halt\"" o3/trace.json'
check "checkpoint instant with its detail" \
    'grep -q "\"name\":\"checkpoint\",\"ph\":\"i\".*snapshot [0-9]* of 8 tasks, dispatch paused" o3/trace.json'
run "report of a stopped run" 0 "$TF" report o3

# ---- under mpirun: every rank runs tasks, or rank 0 only schedules ----
{ for i in $(seq 1 24); do echo "sleep 0.0$((i % 5))"; done; echo "@retries=1 exit 2"; } >many.txt
run "mpirun -np 3" 1 mpirun --oversubscribe -np 3 "$TF" run -q --slots 2 -o m3 many.txt
expect_from_joblog m3 >m3.expect
check_trace "trace, mpirun -np 3" m3/trace.json m3.expect
check "trace: three ranks named, rank 0 with its slots" \
    '[ "$(grep -c "\"process_name\"" m3/trace.json)" = 3 ] && grep -q "\"pid\":0,\"tid\":0,\"args\":{\"name\":\"rank 0 (.*)\",\"slots\":2}" m3/trace.json'
run "mpirun -np 3 --scheduler-only" 1 mpirun --oversubscribe -np 3 "$TF" run -q --slots 2 --scheduler-only -o m3s many.txt
expect_from_joblog m3s >m3s.expect
check_trace "trace, mpirun -np 3 --scheduler-only" m3s/trace.json m3s.expect
check "trace --scheduler-only: rank 0 without slots" \
    'grep -q "\"pid\":0,\"tid\":0,\"args\":{\"name\":\"rank 0 (.*)\",\"slots\":0}" m3s/trace.json'
check "trace --scheduler-only: spans only on ranks 1 and 2" \
    '! grep "\"ph\":\"X\"" m3s/trace.json | grep -q "\"pid\":0,"'
run "report, mpirun run" 0 "$TF" report m3
svg_ok "report.svg, mpirun run" m3/report.svg 26

# ---- the library: tf_config.trace_path, two runs, a child task ----
for np in 1 3; do
    timeout 60 mpirun --oversubscribe -np $np "$TESTS/test_trace" lib$np.json >out.txt 2>err.txt
    rc=$?
    check "library trace np=$np: test_trace passed" '[ "$rc" = 0 ]' || sed 's/^/    /' out.txt err.txt | tail -10
    sed -n 's/^expect //p' out.txt >lib$np.expect
    check_trace "library trace np=$np" lib$np.json lib$np.expect
    check "library trace np=$np: names are 'ID FUNCTION'" 'grep -q "\"name\":\"35 broken\",\"ph\":\"X\"" lib$np.json'
    mkdir -p lib$np && cp lib$np.json lib$np/trace.json
    run "report of the library trace np=$np" 0 "$TF" report lib$np
done

summary trace.sh
