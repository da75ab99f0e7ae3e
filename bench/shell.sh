#!/usr/bin/env bash
# Shell tasks: N `true` commands on 2 slots through taskfarm, GNU parallel -j2 and
# xargs -P2 (the floor: nothing but spawning), start-up included, in the same run.
# taskfarm runs them under /bin/sh as xargs does (--shell /bin/sh); its default
# shell, bash, is timed too: a bash start costs more than dash's.
set -euo pipefail
cd "$(dirname "$0")/.."
TF=$PWD/bin/taskfarm
N=${SHELL_TASKS:-2000}
ROUNDS=${SHELL_ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) print "true" }' >"$tmp/tasks.txt"

now() { date +%s.%N; }
best_tf=999999 best_x=999999 best_ng=999999 best_bash=999999
# Alternate the fast ones so that noise hits all alike; keep the best. The
# third is taskfarm without its orphan guard (TASKFARM_GUARD=0): the guard
# costs two 4-byte pipe writes per task.
for r in $(seq "$ROUNDS"); do
    t0=$(now)
    "$TF" run -q --shell /bin/sh --slots 2 -o "$tmp/out$r" "$tmp/tasks.txt" 2>/dev/null
    t1=$(now)
    xargs -P2 -I{} sh -c {} <"$tmp/tasks.txt"
    t2=$(now)
    TASKFARM_GUARD=0 "$TF" run -q --shell /bin/sh --slots 2 -o "$tmp/ng$r" "$tmp/tasks.txt" 2>/dev/null
    t3=$(now)
    "$TF" run -q --slots 2 -o "$tmp/bash$r" "$tmp/tasks.txt" 2>/dev/null
    t4=$(now)
    best_bash=$(awk -v a="$t3" -v b="$t4" -v m="$best_bash" 'BEGIN { d = b - a; print (d < m) ? d : m }')
    best_tf=$(awk -v a="$t0" -v b="$t1" -v m="$best_tf" 'BEGIN { d = b - a; print (d < m) ? d : m }')
    best_x=$(awk -v a="$t1" -v b="$t2" -v m="$best_x" 'BEGIN { d = b - a; print (d < m) ? d : m }')
    best_ng=$(awk -v a="$t2" -v b="$t3" -v m="$best_ng" 'BEGIN { d = b - a; print (d < m) ? d : m }')
done
awk -v n="$N" -v t="$best_tf" 'BEGIN { printf "shell_taskfarm_2slots_rate %.0f tasks/s\n", n / t }'
awk -v n="$N" -v t="$best_ng" 'BEGIN { printf "shell_taskfarm_2slots_noguard_rate %.0f tasks/s\n", n / t }'
awk -v n="$N" -v t="$best_bash" 'BEGIN { printf "shell_taskfarm_2slots_bash_rate %.0f tasks/s\n", n / t }'
awk -v a="$best_bash" -v b="$best_tf" 'BEGIN { printf "shell_bash_vs_sh_time_ratio %.3f x\n", a / b }'
awk -v n="$N" -v a="$best_tf" -v b="$best_ng" 'BEGIN { printf "shell_guard_cost_per_task %.1f us\n", (a - b) / n * 1e6 }'
awk -v n="$N" -v t="$best_x" 'BEGIN { printf "shell_xargs_P2_rate %.0f tasks/s\n", n / t }'
awk -v a="$best_tf" -v b="$best_x" 'BEGIN { printf "shell_taskfarm_time_vs_xargs_ratio %.3f x\n", a / b }'
if command -v parallel >/dev/null; then
    # GNU parallel is ~10 ms a task here: one round is enough to see it.
    t0=$(now)
    parallel -j2 <"$tmp/tasks.txt"
    t1=$(now)
    tp=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    awk -v n="$N" -v t="$tp" 'BEGIN { printf "shell_parallel_j2_rate %.0f tasks/s\n", n / t }'
    awk -v a="$best_tf" -v b="$tp" 'BEGIN { printf "shell_taskfarm_speedup_vs_parallel_ratio %.2f x\n", b / a }'
else
    echo "shell_parallel_j2_rate skipped (GNU parallel not installed: make deps)" >&2
fi
