#!/usr/bin/env bash
# Placement on and off: STREAM-triad-like tasks (bench/stream.c) farmed with --bind core and --bind none, same run.
set -euo pipefail
cd "$(dirname "$0")/.."
TF=$PWD/bin/taskfarm
STREAM=$PWD/build/bench/stream
ROUNDS=${PLACE_ROUNDS:-3}
MIB=${STREAM_MIB:-64}
slots=$(nproc)
ntasks=$((4 * slots))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One task per core at a time, each memory-bound: the case where placement matters.
for i in $(seq "$ntasks"); do echo "$STREAM $MIB 10"; done >"$tmp/tasks.txt"

now() { date +%s.%N; }
# Alternate the policies so that noise from other users hits both alike.
for r in $(seq "$ROUNDS"); do
    for pol in core none; do
        t0=$(now)
        "$TF" run -q --slots "$slots" --bind "$pol" -o "$tmp/$pol$r" "$tmp/tasks.txt" 2>/dev/null
        t1=$(now)
        awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }' >>"$tmp/$pol.secs"
        cat "$tmp/$pol$r"/out/*.out >>"$tmp/$pol.out"
    done
done
for pol in core none; do
    if grep -q "check FAILED" "$tmp/$pol.out"; then
        echo "stream: wrong results under --bind $pol" >&2
        exit 1
    fi
    # Mean over every task of every round: each task's best triad repeat.
    awk -v p="$pol" '{ t += $2; n++ } END { printf "stream_triad_1core_task_bind_%s_mean %.0f MB/s\n", p, t / n }' "$tmp/$pol.out"
    sort -g "$tmp/$pol.secs" | head -1 | awk -v p="$pol" -v n="$ntasks" '{ printf "stream_farm_%dtasks_bind_%s_best_time %.3f s\n", n, p, $1 }'
done
core=$(awk '{ t += $2; n++ } END { print t / n }' "$tmp/core.out")
none=$(awk '{ t += $2; n++ } END { print t / n }' "$tmp/none.out")
awk -v a="$core" -v b="$none" 'BEGIN { printf "stream_triad_bind_core_vs_none_ratio %.3f x\n", a / b }'
