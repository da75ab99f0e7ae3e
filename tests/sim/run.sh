#!/usr/bin/env bash
# Simulator tests: properties every run must have (each task once, efficiency <= 1, replay), never timings.
set -u
BIN=$(cd "${1:-bin}" && pwd)
SIM="timeout 120 $BIN/taskfarm-sim --cost-model fixed"
. "$(dirname "$0")/../lib.sh"
tests_tmp

# val FILE NAME: the value printed for metric NAME.
val() { awk -v n="$2" '$1 == n { print $2 }' "$1"; }
# ge A B: A >= B as numbers.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# once NAME ARGS...: the run succeeds, every task ran exactly once, the
# core's invariants hold at the end, and efficiency is at most 1.
once() {
    local name=$1
    shift
    $SIM --check "$@" >"$tmp/$name" 2>"$tmp/$name.err"
    local rc=$?
    if [ $rc != 0 ]; then
        bad "$name: exit status $rc: $(cat "$tmp/$name.err")"
        return
    fi
    local n r e
    n=$(val "$tmp/$name" sim_tasks) r=$(val "$tmp/$name" sim_ran_once)
    e=$(val "$tmp/$name" sim_efficiency)
    [ -n "$n" ] && [ "$n" = "$r" ] && ok "$name: all $n tasks ran exactly once" ||
        bad "$name: $r of $n tasks ran exactly once"
    [ "$(val "$tmp/$name" sim_check)" = 1 ] && ok "$name: core invariants hold" ||
        bad "$name: invariant check"
    ge 1 "$e" && ge "$e" 0.000001 && ok "$name: 0 < efficiency $e <= 1" ||
        bad "$name: efficiency $e"
}

once indep --workers 200 --duration 1ms --dist uniform
once heavy-steal --workers 200 --duration 1ms --dist heavy --fixed-prefetch
once nobatch --workers 100 --duration 100us --no-batch
once stencil --workers 64 --slots 2 --duration 1ms --dag stencil
once stencil-steal --workers 300 --duration 100us --dag stencil --dist heavy
once slots --workers 50 --slots 8 --duration 100us --dist uniform --host-ranks 4
# Two workers that run dry and ask each other while rank 0 still has a
# report on its way: rank 0 once went idle past it and the run never ended.
once stencil-2 --workers 2 --tasks 1000 --duration 1ms --dag stencil --dist uniform --seed 3
once tree --workers 2 --tasks 2000 --duration 1ms --dag tree --dist uniform --seed 3
once slow-worker --workers 2 --tasks 2000 --duration 1ms --dist uniform --slow-worker 3

p=$(val "$tmp/stencil" sim_parked)
ge "${p:-0}" 1 && ok "stencil on 2 slots parked $p tasks" || bad "stencil parked nothing"

# Stealing happened where it should, and moved tasks were still run once.
s=$(val "$tmp/heavy-steal" sim_moved)
ge "${s:-0}" 1 && ok "heavy-tailed run stole $s tasks" || bad "no task was stolen"
e1=$(val "$tmp/heavy-steal" sim_efficiency)
once heavy-nosteal --workers 200 --duration 1ms --dist heavy --fixed-prefetch --no-steal
[ "$(val "$tmp/heavy-nosteal" sim_moved)" = 0 ] && ok "--no-steal moves nothing" ||
    bad "--no-steal moved tasks"

# One worker, no latency or overhead, long tasks: nothing is lost.
once alone --workers 1 --tasks 50 --duration 1s --latency 0 --msg-overhead 0
e=$(val "$tmp/alone" sim_efficiency)
ge "$e" 0.99 && ok "1 worker, 1 s tasks: efficiency $e >= 0.99" ||
    bad "1 worker, 1 s tasks: efficiency $e"

# Longer tasks saturate rank 0 later: the first worker count whose
# efficiency falls below one half grows with the duration.
knee() {
    for w in 10 30 100 300 1000 3000; do
        $SIM --workers $w --duration "$1" >"$tmp/knee" 2>&1 || { echo error; return; }
        ge "$(val "$tmp/knee" sim_efficiency)" 0.5 || { echo $w; return; }
    done
    echo none
}
k1=$(knee 100us) k2=$(knee 1ms) k3=$(knee 10ms)
later() { [ "$2" = none ] || { [ "$1" != none ] && [ "$1" -lt "$2" ]; }; }
if [ "$k1" != error ] && [ "$k2" != error ] && [ "$k3" != error ] &&
    [ "$k1" != none ] && later "$k1" "$k2" && later "$k2" "$k3"; then
    ok "saturation at $k1 / $k2 / $k3 workers for 100us / 1ms / 10ms tasks"
else
    bad "saturation points $k1 / $k2 / $k3 do not grow with task duration"
fi

# Same seed and flags: the same virtual results, line for line.
args="--workers 300 --duration 100us --dist heavy --fixed-prefetch --seed 7"
$SIM $args | grep -v '_wall ' >"$tmp/a"
$SIM $args | grep -v '_wall ' >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" && ok "same seed: identical output" || bad "same seed differs"
$SIM ${args/seed 7/seed 8} | grep -v '_wall ' >"$tmp/c"
cmp -s "$tmp/a" "$tmp/c" && bad "another seed gives identical output" ||
    ok "another seed: different durations, different output"

# Live timing of the real core still runs every task once.
if timeout 120 "$BIN/taskfarm-sim" --cost-model live --workers 100 --duration 100us \
    --check >"$tmp/live" 2>&1 &&
    [ "$(val "$tmp/live" sim_ran_once)" = "$(val "$tmp/live" sim_tasks)" ]; then
    ok "live cost model"
else bad "live cost model: $(tail -1 "$tmp/live")"; fi

# Bad arguments: exit 2, the option named.
for a in "--workers 0" "--duration 3parsecs" "--dist zipf" "--frobnicate"; do
    timeout 10 "$BIN/taskfarm-sim" $a >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc = 2 ] && grep -q -- "${a%% *}" "$tmp/err" && ok "bad argument '$a': exit 2" ||
        bad "bad argument '$a': exit $rc, $(head -1 "$tmp/err")"
done

summary
