#!/usr/bin/env bash
# make bench: every figure as one "name value unit" line, with same-run baselines and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/bench
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MPIRUN="timeout 300 mpirun --oversubscribe"
# Open MPI binds ranks to cores by itself up to 2 ranks, not beyond. With
# 3 ranks on 2 cores unbound, the kernel sometimes stacked both workers on
# one core for much of a short run (trivial METG 2-13 us from run to run,
# 2.0-2.2 us bound): bind, rank 0 sharing core 0 with worker 2.
BOUND="$MPIRUN --bind-to core:overload-allowed"
N=${BENCH_TASKS:-1000000}
BIG=${BENCH_BIG_TASKS:-10000000}
# Figures depend on what else runs on this shared machine: say how busy it was.
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# Rank 0's own cost, without MPI: the scheduler core on 1M- and 10M-task DAGs.
$B/core "$N" "$BIG"

# value NAME FILE: the number printed for NAME.
value() { awk -v n="$1" '$1 == n { print $2 }' "$2"; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Empty tasks through rank 0 (it only schedules: every task crosses the
# wire), against one task per MPI message; then with rank 0 running its
# share (np 2: one rank per core, both computing).
for np in 2 3 4; do
    w=$((np - 1))
    $MPIRUN -np $np $B/empty -n "$N" --scheduler-only | tee -a "$out"
    $MPIRUN -np $np $B/mpi_baseline -n 200000 --pipeline 1 | tee -a "$out"
    tf=$(value taskfarm_empty_w${w}_rate "$out")
    base=$(value mpi_baseline_np${np}_pipeline1_rate "$out")
    awk -v a="$tf" -v b="$base" -v w="$w" \
        'BEGIN { printf "taskfarm_vs_one_task_per_message_w%d_ratio %.2f x\n", w, a / b }'
done
$MPIRUN -np 2 $B/empty -n "$N" | tee -a "$out"
# The same with a 16-byte result per task, as Task Bench's tasks return:
# what a small output adds per task on its way to rank 0 and kept there.
$MPIRUN -np 2 $B/empty -n "$N" --output 16 | tee -a "$out"
awk -v a="$(value taskfarm_empty_r2_rate "$out")" \
    -v b="$(value taskfarm_empty_r2_out16_rate "$out")" \
    'BEGIN { printf "taskfarm_empty_r2_output16_ns_per_task %.0f ns\n", 1e9 / b - 1e9 / a }'

# METG(50%) (Task Bench): the kernel's peak on one idle core first, then the
# sweeps of the MPI program (one message per dependency across ranks, as
# Task Bench's mpi/nonblock) and of taskfarm on the same graphs (W=8
# points, T=256 steps). Every layout computes on both cores; each prints
# its ranks' cpus, and the ratios are against MPI np 2 in the same run:
# - r2x1: np 2, one rank per core (Open MPI binds 2 ranks), rank 0 runs
#   tasks between its scheduling (the default since 2026-12-07);
# - r1x2: np 1, one process of 2 slots (its thread and a task thread);
# - w1x2: np 2, rank 0 only schedules, one worker of 2 slots (3 threads);
# - w2x1: np 3, rank 0 only schedules, 2 workers of 1 slot, bound (rank 0
#   shares core 0 with worker 2): the only layout before 2026-12-07.
# The slot layouts run unbound: bound to one core, a process's 2 threads
# would share it. Then a cluster node's view, where the scheduler takes
# one core of many: MPI np 1 against taskfarm np 2 with rank 0 scheduling
# on the other core (w1x1).
echo "# load average before METG: $(cut -d' ' -f1-3 /proc/loadavg)"
$B/metg --calibrate | tee -a "$out"
peak=$(value metg_peak_ns_per_iter "$out")
PATTERNS=${METG_PATTERNS:-trivial,stencil,tree,fft}
metg_ratios() { # taskfarm label, MPI label
    for p in ${PATTERNS//,/ }; do
        tf=$(value ${1}_${p}_metg50 "$out")
        base=$(value ${2}_${p}_metg50 "$out")
        # A sweep that never crossed 50% printed a bound: so must the ratio.
        note=$(awk -v a="${1}_${p}_metg50" -v b="${2}_${p}_metg50" \
            '($1 == a || $1 == b) && /bound/ { printf " # %s is a bound", $1; exit }' "$out")
        awk -v a="$tf" -v b="$base" -v n="metg50_${1}_vs_${2}_${p}_ratio" -v note="$note" \
            'BEGIN { printf "%s %.2f x%s\n", n, a / b, note }'
    done
}
M="--peak-ns $peak --patterns $PATTERNS"
$MPIRUN -np 2 $B/metg_mpi $M | tee -a "$out"
$MPIRUN -np 2 $B/metg $M | tee -a "$out"
$MPIRUN --bind-to none -np 1 $B/metg $M --slots 2 | tee -a "$out"
$MPIRUN --bind-to none -np 2 $B/metg $M --slots 2 --rank0-schedules-only | tee -a "$out"
$BOUND -np 3 $B/metg $M --rank0-schedules-only | tee -a "$out"
for l in taskfarm_r2x1 taskfarm_r1x2 taskfarm_w1x2 taskfarm_w2x1; do
    metg_ratios $l mpi_np2
done
# The 2-slot layouts against the best of the four, pattern by pattern.
for p in ${PATTERNS//,/ }; do
    best=$(for l in r2x1 r1x2 w1x2 w2x1; do value taskfarm_${l}_${p}_metg50 "$out"; done | sort -g | head -1)
    for l in r1x2 w1x2; do
        awk -v a="$(value taskfarm_${l}_${p}_metg50 "$out")" -v b="$best" -v n="metg50_taskfarm_${l}_vs_best_${p}_ratio" \
            'BEGIN { printf "%s %.2f x\n", n, a / b }'
    done
done
$MPIRUN -np 1 $B/metg_mpi $M | tee -a "$out"
$MPIRUN -np 2 $B/metg $M --rank0-schedules-only | tee -a "$out"
metg_ratios taskfarm_w1x1 mpi_np1

# Load imbalance: 200 compute tasks on 2 workers, work stealing on and off;
# then one worker 3x slower, with adaptive and with fixed windows of 64.
$BOUND -np 3 $B/imbalance --peak-ns "$peak"

bash bench/shell.sh

# Durable state of 1M tasks: snapshot size, caller stall, time to durable,
# load, journal cost; baseline: the same bytes through write + fsync.
$B/ckpt -n "$N"

# Library checkpointing: N empty tasks without state, at the default interval
# and every 1 s (throughput, ratios), the snapshot's size and stall, and the
# time from tf_init to the first task when resuming N tasks half done.
$MPIRUN -np 1 $B/ckpt_lib -n "$N"

# Tracing (tf_config.trace_path): empty tasks with and without, then
# taskfarm report on the 1M-span trace.
trace=$(mktemp -d)
$MPIRUN -np 1 $B/trace -n "$N" --trace "$trace/trace.json"
$MPIRUN -np 2 $B/trace -n "$N" --trace "$trace/trace.json"
t0=$(date +%s.%N)
bin/taskfarm report "$trace" >/dev/null
awk -v a="$t0" -v b="$(date +%s.%N)" -v n="$N" \
    'BEGIN { printf "report_seconds_per_million_spans %.2f s\n", (b - a) * 1e6 / n }'
echo "report_svg_bytes_1M_spans_w1 $(stat -c %s "$trace/report.svg") B"
rm -rf "$trace"

# Rank 0 at 100 to 100,000 workers: the simulator drives the real core with a
# virtual clock. The table and plot in docs/ use the compiled-in costs (the same
# on any machine); this machine's costs now, and one point with the real core
# timed live against the same point with fixed costs, show how far they differ.
bin/taskfarm-sim --calibrate
bin/taskfarm-sim --sweep --cost-model fixed --svg docs/scaling.svg --table docs/scaling-table.md |
    grep -v '_wall '
for m in fixed live; do
    bin/taskfarm-sim --cost-model $m --workers 10000 --duration 1ms --name sim_$m |
        grep -E '_(efficiency|r0_decisions) ' | tee -a "$out"
done
awk -v a="$(value sim_live_r0_decisions "$out")" -v b="$(value sim_fixed_r0_decisions "$out")" \
    'BEGIN { printf "sim_live_vs_fixed_decisions_ratio %.2f x\n", a / b }'
bash bench/placement.sh

# The simulator's worker is the runtime's: the same workloads (same seed,
# durations, shape; rank 1 = the simulator's worker 0 slowed 3x) run for
# real at np 3, tasks asleep (the simulator's workers cost no CPU, so this
# measures the protocol alone) and busy (what sharing 2 cores with rank 0
# adds), against the simulator's makespan. docs/scaling.md has the table.
SIMW="--tasks 2000 --dist uniform --seed 3"
for sc in "uniform --dag independent" "slow --dag independent --slow-worker 3" \
    "tree --dag tree" "stencil --dag stencil"; do
    label=${sc%% *} args=${sc#* }
    for sl in 1 0; do
        $MPIRUN -np 3 $B/simreal --label "${label}_sleep$sl" $args $SIMW \
            --duration-us 1000 --tasks-sleep $sl --reps 3 | tee -a "$out"
    done
    bin/taskfarm-sim --cost-model fixed --workers 2 --duration 1ms $args $SIMW \
        --name "simw_$label" | grep '_makespan ' | tee -a "$out"
    awk -v a="$(value simreal_${label}_sleep1_makespan "$out")" \
        -v b="$(value simw_${label}_makespan "$out")" -v l="$label" \
        'BEGIN { printf "simreal_%s_measured_vs_simulated_ratio %.2f x\n", l, a / b }'
done

# taskfarm run's durable state at 1M tasks (bench/ckpt_cli.sh): snapshot
# size, dispatch pause, shell-task rate at the default and a 1 s interval,
# time to the first task when resuming vs a fresh start.
bash bench/ckpt_cli.sh

# The data path on a 1-D heat stencil (apps/stencil.c, B=8 blocks of N
# doubles, 100 steps; blocks pinned to the 2 workers, one-point halos as
# output parts), with the default inline_max (halos through rank 0) and
# with -i 0 (halos worker to worker), against the same computation written
# by hand (bench/stencil_mpi.c: Isend/Irecv of one double a neighbour) at
# np 2 (one rank a core) and np 3 (every rank computes, 3 ranks on 2
# cores), and against serial steps on rank 0, in the same run. Lines are
# renamed stencil_N<N>_... (and _i0_, _mpi_npP_) so that runs differ.
# Ratios are ms/step of taskfarm over the other: below 1, taskfarm is faster.
echo "# load average before stencil: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in 1000 20000 100000; do
    for np in 2 3; do
        run=$MPIRUN
        [ $np = 3 ] && run=$BOUND
        $run -np $np $B/stencil_mpi -b 8 -n $n -s 100 |
            sed "s/^stencil_mpi_np${np}_/stencil_N${n}_mpi_np${np}_/; s/^stencil_serial_/stencil_N${n}_mpi_np${np}_serial_/" |
            tee -a "$out"
    done
    $BOUND -np 3 bin/stencil -b 8 -n $n -s 100 | sed "s/^stencil_/stencil_N${n}_/" | tee -a "$out"
    $BOUND -np 3 bin/stencil -b 8 -n $n -s 100 -i 0 | sed "s/^stencil_/stencil_N${n}_i0_/" | tee -a "$out"
    # Before 2026-12-06: every output through rank 0 and kept there (-R).
    $BOUND -np 3 bin/stencil -b 8 -n $n -s 100 -R | sed "s/^stencil_/stencil_N${n}_before_/" | tee -a "$out"
    awk -v a="$(value stencil_N${n}_taskfarm_ms_per_step "$out")" \
        -v b="$(value stencil_N${n}_before_taskfarm_ms_per_step "$out")" -v p="stencil_N${n}" \
        'BEGIN { printf "%s_taskfarm_vs_before_ratio %.2f x\n", p, a / b }'
    for v in "" _i0; do
        awk -v a="$(value stencil_N${n}${v}_taskfarm_ms_per_step "$out")" \
            -v b="$(value stencil_N${n}_mpi_np2_ms_per_step "$out")" \
            -v c="$(value stencil_N${n}_mpi_np3_ms_per_step "$out")" -v p="stencil_N${n}${v}" \
            'BEGIN { printf "%s_taskfarm_vs_mpi_ratio %.2f x\n%s_taskfarm_vs_mpi_np3_ratio %.2f x\n", p, a / b, p, a / c }'
    done
done

# MapReduce word count (apps/wordcount.c): 32 MiB of text, 64 maps, 8
# reducers fetching their partition of every map's output; map and
# shuffle phases, rank 0's payload, against a serial count on rank 0.
$BOUND -np 3 bin/wordcount | tee -a "$out"
$BOUND -np 3 bin/wordcount -i 0 | sed "s/^wordcount_/wordcount_i0_/" | tee -a "$out"
# Before 2026-12-06 (-R): every partition through rank 0, kept there.
$BOUND -np 3 bin/wordcount -R | sed "s/^wordcount_/wordcount_before_/" | tee -a "$out"
for f in shuffle_ms total_ms rank0_payload_bytes; do
    awk -v a="$(value wordcount_$f "$out")" -v b="$(value wordcount_before_$f "$out")" \
        -v f="$f" 'BEGIN { if (b > 0) printf "wordcount_%s_vs_before_ratio %.3f x\n", f, a / b }'
done

# Across emulated hosts (bench/cluster.sh; docs/performance.md, "Across
# hosts"): rank 0 on one network namespace, the workers on two others, at
# modelled interconnects, against one host and the simulator. Namespaces
# need root; cluster.sh says why it skipped when it cannot make them.
if [ "$(id -u)" = 0 ]; then
    bash bench/cluster.sh
else
    echo "# cluster: skipped: network namespaces need root"
fi
