#!/usr/bin/env bash
# taskfarm run's durable state at 1M tasks: snapshot size and dispatch pause, shell-task throughput at the default and a 1 s interval, and the time to the first task when resuming, against a fresh start of the same file.
set -euo pipefail
cd "$(dirname "$0")/.."
TF=$PWD/bin/taskfarm
N=${CKPT_CLI_TASKS:-1000000}
WINDOW=${CKPT_CLI_WINDOW:-15}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) print "true" }' >"$tmp/tasks.txt"
now() { date +%s.%N; }

# run DIR INTERVAL [--resume]: start, let it run WINDOW seconds after its
# first task, stop it with SIGTERM (exit 75); prints the start time.
run() {
    local dir=$1 every=$2
    shift 2
    local before=0
    [ -e "$dir/joblog.tsv" ] && before=$(($(wc -l <"$dir/joblog.tsv") - 1))
    local t0
    t0=$(now)
    "$TF" run -v --slots 2 --checkpoint-every "$every" -o "$dir" "$@" \
        "$tmp/tasks.txt" >/dev/null 2>"$dir.err" &
    local pid=$!
    until [ -e "$dir/joblog.tsv" ] &&
        [ "$(wc -l <"$dir/joblog.tsv")" -gt $((before + 1)) ]; do
        sleep 0.05
    done
    sleep "$WINDOW"
    kill -TERM $pid
    wait $pid || [ $? = 75 ]
    echo "$t0 $before"
}

# first_start DIR T0 BEFORE: seconds from T0 to the first new row's start.
# (awk reads the file itself: `tail | head -1` died of SIGPIPE under
# pipefail once the joblog was long.)
first_start() {
    awk -F'\t' -v row=$(($3 + 2)) -v t0="$2" \
        'NR == row { printf "%.3f", $3 - t0; exit }' "$1/joblog.tsv"
}
# rate DIR BEFORE: tasks/s over the new rows, first start to last end.
rate() {
    tail -n +$(($2 + 2)) "$1/joblog.tsv" |
        awk -F'\t' 'NR == 1 || $3 < a { a = $3 } $3 + $4 > b { b = $3 + $4 }
                    END { printf "%.0f", NR / (b - a) }'
}
paused() { sed -n 's/.*dispatch paused \([0-9.]*\) ms at most.*/\1/p' "$1.err"; }

# Default interval (60 s: no snapshot inside the window but the final one)
# and 1 s, alternated, same file.
read -r t0 b < <(run "$tmp/d60" 60)
fresh_first=$(first_start "$tmp/d60" "$t0" "$b")
r60=$(rate "$tmp/d60" "$b")
read -r t0 b < <(run "$tmp/d1" 1)
r1=$(rate "$tmp/d1" "$b")
snap=$(ls -1 "$tmp"/d1/state-*.h5 | tail -1)
nsnap=$(sed -n 's/.*(\([0-9]*\) snapshots\{0,1\},.*/\1/p' "$tmp/d1.err")
echo "ckpt_cli_tasks $N tasks"
echo "ckpt_cli_snapshot_bytes $(stat -c %s "$snap") B"
echo "ckpt_cli_snapshots_1s_interval $nsnap in ${WINDOW} s"
echo "ckpt_cli_dispatch_paused_max_1s_interval $(paused "$tmp/d1") ms"
echo "ckpt_cli_dispatch_paused_max_default $(paused "$tmp/d60") ms"
echo "ckpt_cli_shell_rate_default_interval $r60 tasks/s"
echo "ckpt_cli_shell_rate_1s_interval $r1 tasks/s"
awk -v a="$r1" -v b="$r60" 'BEGIN { printf "ckpt_cli_rate_1s_vs_default_ratio %.3f x\n", a / b }'

# Resume the 1 s run's state: load the snapshot and journal, match 1M
# tasks, first dispatch; baseline: the fresh start of the same file above.
b=$(($(wc -l <"$tmp/d1/joblog.tsv") - 1))
t=$(now)
"$TF" run --slots 2 -o "$tmp/d1" --resume "$tmp/tasks.txt" >/dev/null 2>"$tmp/r.err" &
pid=$!
until [ "$(wc -l <"$tmp/d1/joblog.tsv")" -gt $((b + 1)) ]; do sleep 0.05; done
kill -TERM $pid
wait $pid || [ $? = 75 ]
resume_first=$(first_start "$tmp/d1" "$t" "$b")
echo "ckpt_cli_first_task_fresh $fresh_first s"
echo "ckpt_cli_first_task_resume $resume_first s"
awk -v a="$resume_first" -v b="$fresh_first" \
    'BEGIN { printf "ckpt_cli_resume_extra_to_first_task %.3f s\n", a - b }'
