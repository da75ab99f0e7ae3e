#!/usr/bin/env bash
# Shell tasks: N `true` commands on 2 slots through taskfarm (one process, and under mpirun), xargs -P2 (the floor: nothing but spawning) and GNU parallel -j2, at several N, in the same run; start-up reported apart.
#
# Every tool runs `true` under /bin/sh on 2 slots: xargs -P2 -I{} sh -c {},
# parallel -j2, taskfarm run --shell /bin/sh --slots 2 (one process), and
# mpirun -np 2 taskfarm run --shell /bin/sh --slots 1 (two ranks of one slot
# each, rank 0 scheduling besides; before 2026-12-07 rank 0 ran no tasks and
# this was np 3 with two workers). Rounds alternate the tools so that the noise of
# a shared machine hits all alike; the best round of each is kept. Ratios
# are taskfarm's time over xargs' time in the same run; "net" ratios take
# taskfarm's start-up (a run of one task, timed alike) off first.
#
#   SHELL_SIZES="1000 10000 100000"  task counts
#   SHELL_ROUNDS=2                   rounds per size
#   SHELL_PARALLEL_MAX=10000         GNU parallel (~4 ms a task here) only up to this
#   SHELL_NP=2                       ranks under mpirun (0: no mpirun runs)
#   SHELL_BEFORE=/path/to/taskfarm   another build, timed alike (before/after)
#   SHELL_GUARD=1                    also taskfarm without its orphan guard
#   SHELL_BASH=0                     1: also taskfarm's default shell, bash
set -euo pipefail
cd "$(dirname "$0")/.."
TF=$PWD/bin/taskfarm
SIZES=${SHELL_SIZES:-1000 10000 100000}
ROUNDS=${SHELL_ROUNDS:-2}
PAR_MAX=${SHELL_PARALLEL_MAX:-10000}
NP=${SHELL_NP:-2}
BEFORE=${SHELL_BEFORE:-}
GUARD=${SHELL_GUARD:-1}
BASH_TOO=${SHELL_BASH:-0}
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MPIRUN="mpirun --oversubscribe -np $NP"
command -v mpirun >/dev/null || NP=0
have_parallel=1
command -v parallel >/dev/null || {
    have_parallel=0
    echo "shell: GNU parallel not installed (make deps): its runs are skipped" >&2
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
# elapsed VAR CMD...: run CMD (output discarded), keep the smaller of VAR's
# value and its time in VAR.
declare -A best
elapsed() {
    local k=$1 t0 t1 d
    shift
    t0=$(now)
    "$@" >/dev/null 2>"$tmp/err" || {
        echo "shell: failed: $*" >&2
        cat "$tmp/err" >&2
        exit 1
    }
    t1=$(now)
    d=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    best[$k]=$(awk -v d="$d" -v m="${best[$k]:-1e9}" 'BEGIN { print (d < m) ? d : m }')
}
out=0
tf1() { "$1" run -q --shell /bin/sh --slots 2 -o "$tmp/run$((++out))" "$2"; }
tfm() { $MPIRUN "$1" run -q --shell /bin/sh --slots 1 -o "$tmp/run$((++out))" "$2"; }
tfg() { TASKFARM_GUARD=0 tf1 "$@"; }
tfb() { "$1" run -q --slots 2 -o "$tmp/run$((++out))" "$2"; }
clean() { rm -rf "$tmp"/run*; }

# Start-up: a run of one `true`, one process and under mpirun.
echo true >"$tmp/one.txt"
for r in $(seq 3); do
    elapsed start_1 tf1 "$TF" "$tmp/one.txt"
    [ "$NP" -gt 0 ] && elapsed start_m tfm "$TF" "$tmp/one.txt"
    [ -n "$BEFORE" ] && elapsed start_1_before tf1 "$BEFORE" "$tmp/one.txt"
    [ -n "$BEFORE" ] && [ "$NP" -gt 0 ] && elapsed start_m_before tfm "$BEFORE" "$tmp/one.txt"
    clean
done
printf 'shell_startup_1proc %.3f s\n' "${best[start_1]}"
[ "$NP" -gt 0 ] && printf 'shell_startup_mpirun_np%d %.3f s\n' "$NP" "${best[start_m]}"
[ -n "$BEFORE" ] && printf 'shell_startup_1proc_before %.3f s\n' "${best[start_1_before]}"

# line NAME N SECONDS: "shell_N_NAME T s U us/task"
line() { awk -v k="$1" -v n="$2" -v t="$3" 'BEGIN { printf "shell_%d_%s %.3f s %.1f us/task\n", n, k, t, t / n * 1e6 }'; }
ratio() { awk -v k="$1" -v n="$2" -v a="$3" -v b="$4" 'BEGIN { printf "shell_%d_%s %.3f x\n", n, k, a / b }'; }
net() { awk -v k="$1" -v n="$2" -v a="$3" -v s="$4" -v b="$5" 'BEGIN { printf "shell_%d_%s %.3f x\n", n, k, (a - s) / b }'; }

for n in $SIZES; do
    awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) print "true" }' >"$tmp/tasks.txt"
    for r in $(seq "$ROUNDS"); do
        elapsed "x$n" xargs -P2 -I{} sh -c {} <"$tmp/tasks.txt"
        elapsed "t$n" tf1 "$TF" "$tmp/tasks.txt"
        clean
        [ "$NP" -gt 0 ] && { elapsed "m$n" tfm "$TF" "$tmp/tasks.txt"; clean; }
        [ -n "$BEFORE" ] && { elapsed "b$n" tf1 "$BEFORE" "$tmp/tasks.txt"; clean; }
        [ -n "$BEFORE" ] && [ "$NP" -gt 0 ] && { elapsed "bm$n" tfm "$BEFORE" "$tmp/tasks.txt"; clean; }
        [ "$GUARD" = 1 ] && { elapsed "g$n" tfg "$TF" "$tmp/tasks.txt"; clean; }
        [ "$GUARD" = 1 ] && [ -n "$BEFORE" ] && { elapsed "bg$n" tfg "$BEFORE" "$tmp/tasks.txt"; clean; }
        [ "$BASH_TOO" = 1 ] && { elapsed "s$n" tfb "$TF" "$tmp/tasks.txt"; clean; }
        if [ "$have_parallel" = 1 ] && [ "$n" -le "$PAR_MAX" ] && [ "$r" = 1 ]; then
            elapsed "p$n" parallel -j2 <"$tmp/tasks.txt"
        fi
    done
    x=${best[x$n]}
    line xargs_P2 "$n" "$x"
    if [ -n "${best[p$n]:-}" ]; then
        line parallel_j2 "$n" "${best[p$n]}"
    elif [ "$have_parallel" = 1 ]; then
        echo "shell_${n}_parallel_j2 skipped (over SHELL_PARALLEL_MAX=$PAR_MAX)"
    fi
    line taskfarm_1proc "$n" "${best[t$n]}"
    ratio taskfarm_1proc_time_vs_xargs_ratio "$n" "${best[t$n]}" "$x"
    net taskfarm_1proc_net_of_startup_vs_xargs_ratio "$n" "${best[t$n]}" "${best[start_1]}" "$x"
    if [ "$NP" -gt 0 ]; then
        line "taskfarm_mpirun_np$NP" "$n" "${best[m$n]}"
        ratio "taskfarm_mpirun_np${NP}_time_vs_xargs_ratio" "$n" "${best[m$n]}" "$x"
        net "taskfarm_mpirun_np${NP}_net_of_startup_vs_xargs_ratio" "$n" "${best[m$n]}" "${best[start_m]}" "$x"
    fi
    if [ -n "${best[p$n]:-}" ]; then
        ratio taskfarm_1proc_time_vs_parallel_ratio "$n" "${best[t$n]}" "${best[p$n]}"
    fi
    if [ -n "$BEFORE" ]; then
        line taskfarm_1proc_before "$n" "${best[b$n]}"
        ratio taskfarm_1proc_before_time_vs_xargs_ratio "$n" "${best[b$n]}" "$x"
        if [ "$NP" -gt 0 ]; then
            line "taskfarm_mpirun_np${NP}_before" "$n" "${best[bm$n]}"
            ratio "taskfarm_mpirun_np${NP}_before_time_vs_xargs_ratio" "$n" "${best[bm$n]}" "$x"
        fi
    fi
    if [ "$GUARD" = 1 ]; then
        awk -v n="$n" -v a="${best[t$n]}" -v b="${best[g$n]}" \
            'BEGIN { printf "shell_%d_guard_cost_per_task %.1f us\n", n, (a - b) / n * 1e6 }'
        [ -n "$BEFORE" ] && awk -v n="$n" -v a="${best[b$n]}" -v b="${best[bg$n]}" \
            'BEGIN { printf "shell_%d_guard_cost_per_task_before %.1f us\n", n, (a - b) / n * 1e6 }'
    fi
    if [ "$BASH_TOO" = 1 ]; then
        line taskfarm_1proc_bash "$n" "${best[s$n]}"
        ratio bash_vs_sh_time_ratio "$n" "${best[s$n]}" "${best[t$n]}"
    fi
done
