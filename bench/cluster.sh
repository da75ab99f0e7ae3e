#!/usr/bin/env bash
# make bench across emulated hosts: empty tasks, METG, stencil and word count with rank 0 on one host and the workers on two others, at modelled interconnects, against one host and the simulator.
#
# Layouts (3 ranks each, the same cores: rank 0 and worker 2 on core 0,
# worker 1 on core 1, as bench/run.sh binds one host):
#   onehost_shm   mpirun -np 3 here, shared memory (vader), as bench/run.sh
#   onehost_tcp   the same on emulated host h1 over TCP (btl tcp,self), so
#                 the transport's cost can be told from the network's
#   across_*      rank 0 on h1, workers on h2 and h3, TCP through
#                 - bridge: the cluster's kernel bridge, no model
#                 - LAT_RATE: bench/netdelay's switch, LAT one way, RATE a link
# The hosts are namespaces of one 2-core machine: across hosts measures
# what the network costs, not more cores.
#
# Every layout runs every program once a round; rounds alternate the
# layouts' order, and the summary gives the median and range over rounds.
# The simulator (bin/taskfarm-sim, fixed costs) predicts the empty-task
# rate and METG at each interconnect's measured one-way latency.
#
# Environment: CLUSTER_ROUNDS (3), CLUSTER_TASKS (200000 empty tasks),
# CLUSTER_NETS ("50us:10gbit 500us:1gbit"), CLUSTER_STENCIL ("100000 20":
# doubles per block, steps); to run a part, CLUSTER_CONFIGS (e.g.
# "onehost_shm across_50us_10gbit") and CLUSTER_PROGRAMS (empty metg
# stencil stencil_before wordcount wordcount_before); CLUSTER_LOG, a
# directory to keep every run's whole output in. Needs root; says why and
# exits 0 when namespaces cannot be made. Exits 1 when a run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=build/bench
ND=$B/netdelay
ROUNDS=${CLUSTER_ROUNDS:-3}
N=${CLUSTER_TASKS:-200000}
NETS=${CLUSTER_NETS:-"50us:10gbit 500us:1gbit"}
read -r SN SS <<<"${CLUSTER_STENCIL:-100000 20}"
PROGRAMS=${CLUSTER_PROGRAMS:-"empty metg stencil stencil_before wordcount wordcount_before"}
LOG=${CLUSTER_LOG:-} # a directory: every run's whole output is kept there

if [ "$(id -u)" != 0 ]; then
    echo "# cluster: skipped: network namespaces need root"
    exit 0
fi
for f in $ND $B/empty $B/metg bin/stencil bin/wordcount bin/taskfarm-sim; do
    [ -x "$f" ] || { echo "# cluster: $f is missing (make all)" >&2; exit 1; }
done
. tests/cluster/lib.sh

res=$(mktemp /var/tmp/tf-bench-cluster.XXXXXX) # "config metric value unit", one per run
tmp=$(mktemp /var/tmp/tf-bench-cluster-run.XXXXXX)
SW= # the switch's PID while it runs
LP= # the run's, while it runs
failed=0
t_start=$(date +%s)

switch_stop() {
    [ -n "$SW" ] || return 0
    kill -TERM "$SW" 2>/dev/null
    wait "$SW" 2>/dev/null
    SW=
    local i
    for i in 1 2 3; do
        bridge link set dev "$(cl_veth h$i)" isolated off 2>/dev/null
    done
    sed 's/^/# /' "$CL_DIR/switch.err"
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$LP" ]; then # timeout or the host's agent: ends what it started
        kill -TERM "$LP" 2>/dev/null
        wait "$LP" 2>/dev/null
    fi
    switch_stop
    cluster_down || rc=1
    rm -f "$res" "$tmp"
    echo "# cluster: $(($(date +%s) - t_start)) s"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! cluster_up 3 2>"$tmp"; then
    echo "# cluster: skipped: $(cat "$tmp")"
    exit 0
fi
# The same cores as one host: rank 0 and worker 2 share core 0.
printf 'rank 0=h1 slot=0\nrank 1=h1 slot=1\nrank 2=h1 slot=0\n' >"$CL_DIR/rank1host"
printf 'rank 0=h1 slot=0\nrank 1=h2 slot=1\nrank 2=h3 slot=0\n' >"$CL_DIR/rank3hosts"

# net bridge | LAT_RATE: how the hosts are connected from now on. The
# bridge stops forwarding between its ports (isolated) while the switch
# carries the frames instead (bench/netdelay.c says why and how).
net() {
    switch_stop
    [ "$1" = bridge ] && return 0
    local i
    for i in 1 2 3; do
        bridge link set dev "$(cl_veth h$i)" isolated on || return 1
    done
    : >"$CL_DIR/switch.out"
    "$ND" switch "${1%_*}" "${1#*_}" "$(cl_veth h1)" "$(cl_veth h2)" "$(cl_veth h3)" \
        >"$CL_DIR/switch.out" 2>"$CL_DIR/switch.err" &
    SW=$!
    cl_wait 5 grep -q ready "$CL_DIR/switch.out" || { echo "# cluster: the switch did not start" >&2; return 1; }
}

# probe CONFIG: round trips of 64-byte UDP datagrams h1 -> h2 and back
# (min, median) and, once, one TCP stream h2 -> h1 (a worker to rank 0).
probe() {
    local p
    on h2 "$ND" pong 7700 >/dev/null &
    p=$!
    sleep 0.2
    on h1 "$ND" ping h2 7700 100 64 | awk -v c="$1" '$1 ~ /^rtt_(min|median)_us$/ { print c, $1, $2, "us" }' >>"$res"
    wait "$p"
    grep -q "^$1 stream_mbit_per_s " "$res" && return 0
    on h1 "$ND" sink 7701 >/dev/null &
    p=$!
    sleep 0.2
    on h2 "$ND" stream h1 7701 100 | awk -v c="$1" '{ print c, $1, $2, "Mbit/s" }' >>"$res"
    wait "$p"
}

# launch CONFIG DEADLINE PROGRAM ARGS...: the program on CONFIG's layout.
launch() {
    local c=$1 d=$2
    shift 2
    case $c in
    onehost_shm) timeout "$d" mpirun --oversubscribe --bind-to core:overload-allowed -np 3 "$@" ;;
    onehost_tcp) cl_mpirun h1 --timeout "$d" --oversubscribe -H h1:3 -np 3 --rankfile "$CL_DIR/rank1host" "$@" ;;
    *) cl_mpirun h1 --timeout "$d" -H h1,h2,h3 -np 3 --rankfile "$CL_DIR/rank3hosts" "$@" ;;
    esac
}

# run ROUND CONFIG PREFIX PROGRAM ARGS...: one run; its figures (renamed
# PREFIX... for the -R baselines) go to the results and, as comments, out.
# A run past its deadline (several times its usual time) counts as hung: a
# figure of its own (PREFIX_hung), not a failure, so that one livelock
# does not hide the rest; any other error is a failure.
run() {
    local r=$1 c=$2 pre=$3 t0 rc d=30 secs
    shift 3
    case $1 in */metg) d=150 ;; esac
    t0=$(date +%s.%N)
    # In the background, so that a signal is handled at once, not when
    # the run ends (bash waits for a foreground command first).
    launch "$c" "$d" "$@" >"$tmp" 2>&1 &
    LP=$!
    wait "$LP"
    rc=$?
    LP=
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    [ -n "$LOG" ] && mkdir -p "$LOG" && cp "$tmp" "$LOG/r$r-$c-${pre:-$(basename "$1")}.out"
    if [ $rc = 0 ]; then
        awk -v c="$c" -v p="$pre" 'NF >= 3 && $1 ~ /^[a-z][a-z0-9_]*$/ && $2 ~ /^[0-9.e+-]+$/ {
            n = $1; if (p != "") sub(/^[a-z]+_/, p "_", n); print c, n, $2, $3 }' "$tmp" >>"$res.new"
        sed "s/^/# r$r $c: /" "$res.new"
        cat "$res.new" >>"$res"
        rm -f "$res.new"
        echo "# r$r $c: $1 took $secs s"
    elif awk -v s="$secs" -v d="$d" 'BEGIN { exit !(s >= d - 1) }'; then
        echo "$c ${pre:-$(basename "$1")}_hung 1 runs" >>"$res"
        echo "# HUNG r$r $c: $* (killed after $secs s)"
    else
        failed=1
        echo "# FAILED r$r $c: $* (exit status $rc after $secs s); its output:"
        sed 's/^/#   /' "$tmp" | tail -20
    fi
}

echo "# cluster: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
peak=$($B/metg --calibrate | awk '$1 == "metg_peak_ns_per_iter" { print $2 }')
configs="onehost_shm onehost_tcp across_bridge"
for n in $NETS; do configs="$configs across_${n/:/_}"; done
configs=${CLUSTER_CONFIGS:-$configs}
order=$configs
for r in $(seq 1 "$ROUNDS"); do
    for c in $order; do
        case $c in
        onehost_*) net bridge ;;
        across_bridge) net bridge && probe "$c" ;;
        *) net "${c#across_}" && probe "$c" ;;
        esac || { failed=1; continue; }
        for p in $PROGRAMS; do
            case $p in
            empty) run "$r" "$c" "" $B/empty -n "$N" --reps 2 ;;
            metg) run "$r" "$c" "" $B/metg --peak-ns "$peak" --patterns trivial,stencil ;;
            stencil) run "$r" "$c" "" bin/stencil -b 8 -n "$SN" -s "$SS" ;;
            stencil_before) run "$r" "$c" stencil_before bin/stencil -b 8 -n "$SN" -s "$SS" -R ;;
            wordcount) run "$r" "$c" "" bin/wordcount ;;
            wordcount_before) run "$r" "$c" wordcount_before bin/wordcount -R ;;
            *) echo "# cluster: no program '$p'" >&2; exit 2 ;;
            esac
        done
    done
    order=$(echo $order | tr ' ' '\n' | tac | tr '\n' ' ') # drift hits every layout alike
done
net bridge

# The simulator's prediction at each interconnect: latency = half the
# median measured round trip (the switch's and the kernel's own time
# included), bandwidth the link's rate (the bridge and one host: the
# default, 10 GB/s); 2 workers of 1 slot, the runtime's prefetch ceiling
# (256). Empty tasks: N tasks of 1 ns. METG: 2,048 tasks (the benchmark's
# count) of 125 ns to 16 ms, efficiency and granularity as bench/metg
# defines them, log(granularity) interpolated at 50%. Its stencil is one
# row per worker (2 wide: each task waits for both of the row before);
# the benchmark's is 8 wide.
sim() {
    bin/taskfarm-sim --cost-model fixed --workers 2 --prefetch 256 "$@" --name s
}
sim_metg() { # DAG SIM-ARGS...
    local dag=$1 k
    shift
    for k in $(seq 0 17); do # 125 ns to 16 ms
        sim --tasks 2048 --duration $((125 << k))ns --dag "$dag" "$@" |
            awk -v d=$((125 << k)) '$1 == "s_makespan" { print d / 1000, $2 }'
    done | awk '{ g = $2 * 2 / 2048 * 1e6; d[NR] = $1; e[NR] = $1 / g; lg[NR] = log(g) }
        END { # from the largest tasks down to the first below 50%
            if (e[NR] < 0.5) { print "nan"; exit } # never reached 50%
            for (i = NR; i > 1 && e[i - 1] >= 0.5; i--) ;
            if (i == 1) { print "nan"; exit } # above 50% at 125 ns
            t = (0.5 - e[i - 1]) / (e[i] - e[i - 1])
            printf "%.1f\n", exp(lg[i - 1] + t * (lg[i] - lg[i - 1])) }'
}
for c in $configs; do
    lat=2us bw=10e9
    case $c in onehost_tcp) continue ;; esac
    rtt=$(awk -v c="$c" '$1 == c && $2 == "rtt_median_us" { print $3 }' "$res" | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }')
    if [ -n "$rtt" ]; then
        lat=$(awk -v r="$rtt" 'BEGIN { printf "%.0fns", r * 500 }')
    elif [ "$c" != onehost_shm ]; then
        echo "# sim $c: no round trip was measured: not simulated"
        continue
    fi
    case $c in across_*_*bit)
        bw=$(echo "${c##*_}" | awk '{ x = $1 + 0; u = $1; sub(/^[0-9.]+/, "", u)
            m = u == "gbit" ? 1e9 : u == "mbit" ? 1e6 : u == "kbit" ? 1e3 : 1; printf "%g", x * m / 8 }') ;;
    esac
    ms=$(sim --tasks "$N" --duration 1ns --latency "$lat" --bandwidth "$bw" | awk '$1 == "s_makespan" { print $2 }')
    echo "$c sim_empty_w2_rate $(awk -v n="$N" -v m="$ms" 'BEGIN { printf "%.0f", n / m }') tasks/s" >>"$res"
    echo "$c sim_trivial_metg50 $(sim_metg independent --latency "$lat" --bandwidth "$bw") us" >>"$res"
    echo "$c sim_stencil2_metg50 $(sim_metg stencil --latency "$lat" --bandwidth "$bw") us" >>"$res"
    echo "# sim $c: latency $lat, bandwidth $bw B/s"
done

# The summary: median over rounds, with the range.
echo "# cluster: median [min-max] of $ROUNDS rounds; sim_* is the simulator"
for c in $configs; do
    for m in rtt_min_us rtt_median_us stream_mbit_per_s \
        taskfarm_empty_w2_rate sim_empty_w2_rate \
        taskfarm_w2x1_trivial_metg50 sim_trivial_metg50 \
        taskfarm_w2x1_stencil_metg50 sim_stencil2_metg50 \
        stencil_taskfarm_ms_per_step stencil_before_taskfarm_ms_per_step \
        stencil_serial_ms_per_step stencil_rank0_payload_bytes stencil_before_rank0_payload_bytes \
        wordcount_total_ms wordcount_before_total_ms wordcount_shuffle_ms wordcount_before_shuffle_ms \
        wordcount_serial_ms wordcount_rank0_payload_bytes wordcount_before_rank0_payload_bytes; do
        awk -v c="$c" -v m="$m" '$1 == c && $2 == m { v[++n] = $3; u = $4 }
            END { if (!n) exit
                  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
                  printf "cluster_%s_%s %s %s # [%s-%s]\n", c, m, v[int((n + 1) / 2)], u, v[1], v[n] }' "$res"
    done
    awk -v c="$c" -v R="$ROUNDS" '$1 == c && $2 ~ /_hung$/ { n[$2]++ }
        END { for (k in n) printf "cluster_%s_%s %d of %d runs\n", c, k, n[k], R }' "$res"
done
[ "$failed" = 0 ] || { echo "# cluster: some runs failed (above)"; exit 1; }
