#!/usr/bin/env bash
# make bench: every figure as one "name value unit" line, with same-run baselines and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/bench
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MPIRUN="timeout 300 mpirun --oversubscribe"
N=${BENCH_TASKS:-1000000}

# Rank 0's own cost, without MPI: the scheduler core on 1M-task DAGs.
$B/core "$N"

# value NAME FILE: the number printed for NAME.
value() { awk -v n="$1" '$1 == n { print $2 }' "$2"; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for np in 2 4; do
    w=$((np - 1))
    $MPIRUN -np $np $B/empty -n "$N" | tee -a "$out"
    $MPIRUN -np $np $B/mpi_baseline -n 200000 --pipeline 1 | tee -a "$out"
    tf=$(value taskfarm_empty_w${w}_rate "$out")
    base=$(value mpi_baseline_np${np}_pipeline1_rate "$out")
    awk -v a="$tf" -v b="$base" -v w="$w" \
        'BEGIN { printf "taskfarm_vs_one_task_per_message_w%d_ratio %.2f x\n", w, a / b }'
done
bash bench/shell.sh
bash bench/placement.sh
