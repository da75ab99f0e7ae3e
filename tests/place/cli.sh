#!/usr/bin/env bash
# taskfarm topo and --bind end to end: real ranks under mpirun, real binding read back from /proc inside tasks.
set -u
BIN=$(cd "${1:-bin}" && pwd)
TF=$BIN/taskfarm
DATA=$(cd "$(dirname "$0")/../data/topologies" && pwd)
. "$(dirname "$0")/../lib.sh"
unset HWLOC_SYNTHETIC HWLOC_XMLFILE
tests_tmp
cd "$tmp"
CHECK_SHOW=err.txt # a failed check shows the last run's stderr (lib.sh)
# expand LIST: "0-2,5" -> "0,1,2,5" (kernel and hwloc list formats).
expand() {
    echo "$1" | tr ',' '\n' | awk -F- 'NF { if (NF == 1) print $1; else for (i = $1; i <= $2; i++) print i }' | paste -sd, -
}
# rank_field R COL: a column of rank R's row in `taskfarm topo` output.
rank_field() { awk -v r="$1" -v c="$2" '$1 == r && NF >= 7 { print $c }' out.txt; }

host=$(hostname)
mine=$(expand "$(awk '/^Cpus_allowed_list/ { print $2 }' /proc/self/status)")
npu=$(echo "$mine" | tr ',' '\n' | wc -l)
all=$(expand "$(hwloc-calc --physical-output --intersect PU all 2>/dev/null)")
numa=$(hwloc-calc --physical-output --intersect NUMAnode all 2>/dev/null)

# ---- taskfarm topo, one process ----
run "topo, one process" 0 "$TF" topo
check "topo np1: one rank row" '[ "$(awk "\$1 ~ /^[0-9]+$/" out.txt | wc -l)" = 1 ]'
check "topo np1: host $host" '[ "$(rank_field 0 2)" = "$host" ]'
check "topo np1: cpus are the allowed ones ($mine)" '[ "$(expand "$(rank_field 0 3)")" = "$mine" ]'
check "topo np1: PU count $npu" '[ "$(rank_field 0 5)" = "$npu" ]'
check "topo np1: NUMA nodes $numa" '[ "$(expand "$(rank_field 0 6)")" = "$numa" ]'
want_bound=no
[ "$mine" != "$all" ] && want_bound=yes
check "topo np1: bound=$want_bound" '[ "$(rank_field 0 7)" = "$want_bound" ]'
check "topo np1: host summary" 'grep -q "^host $host: .* (topology: this machine); 1 rank$" out.txt'
check "topo np1: no warning alone" '! grep -q warning err.txt'

# ---- under mpirun: 2 ranks bound to a core each, 4 unbound ranks ----
if [ "$npu" -ge 2 ]; then
    run "topo, np 2 bound to cores" 0 mpirun -np 2 --bind-to core "$TF" topo
    check "topo np2: two bound rows" '[ "$(rank_field 0 7)$(rank_field 1 7)" = yesyes ]'
    check "topo np2: one PU each, different" \
        '[ "$(rank_field 0 5)$(rank_field 1 5)" = 11 ] && [ "$(rank_field 0 3)" != "$(rank_field 1 3)" ]'
    check "topo np2: no warning" '! grep -q warning err.txt'
else
    skip "topo np 2 bound to cores" --missing "a second PU"
fi
run "topo, np 4 unbound" 0 mpirun -np 4 --oversubscribe --bind-to none "$TF" topo
check "topo np4: four rows" '[ "$(awk "\$1 ~ /^[0-9]+$/" out.txt | wc -l)" = 4 ]'
check "topo np4: every rank on every allowed cpu" \
    '(for r in 0 1 2 3; do [ "$(expand "$(rank_field $r 3)")" = "$mine" ] || exit 1; done)'
check "topo np4: 'ranks 0-3 share cpus'" \
    'grep -q "warning: ranks 0-3 share cpus $(rank_field 0 3) on host $host" err.txt'
check "topo np4: 'ranks 0-3 are not bound'" 'grep -q "warning: ranks 0-3 are not bound" err.txt'
check "topo np4: summary says 4 ranks" 'grep -q "; 4 ranks$" out.txt'

# ---- topologies of machines we don't have ----
HWLOC_SYNTHETIC="pack:2 numa:2 core:4 pu:2" run "topo, synthetic" 0 "$TF" topo
check "topo synthetic: host summary" \
    'grep -q "2 packages, 4 NUMA nodes, 16 cores, 32 PUs (topology: HWLOC_SYNTHETIC)" out.txt'
check "topo synthetic: rank row" '[ "$(rank_field 0 3) $(rank_field 0 4) $(rank_field 0 6)" = "0-31 16 0-3" ]'
HWLOC_XMLFILE=$DATA/amd-epyc-2x64-nps4.xml run "topo, XML of a 2x64-core node" 0 "$TF" topo
check "topo XML: 8 NUMA nodes, 128 cores, 256 PUs" \
    'grep -q "2 packages, 8 NUMA nodes, 128 cores, 256 PUs (topology: HWLOC_XMLFILE)" out.txt'
run "topo with an argument" 2 "$TF" topo extra

# ---- --bind: what the task's process really gets ----
# Each task prints TASKFARM_CORES|TASKFARM_NUMA|OMP_NUM_THREADS|allowed cpus|memory policy.
probe='echo "$TASKFARM_CORES|$TASKFARM_NUMA|$OMP_NUM_THREADS|$(awk "/^Cpus_allowed_list/ { print \$2 }" /proc/self/status)|$(awk "NR == 1 { print \$2 }" /proc/self/numa_maps 2>/dev/null)"'
{
    echo "@id=a $probe; sleep 0.3"
    echo "@id=b $probe; sleep 0.3"
    echo "@id=c @after=a,b @cores=2 $probe"
} >bind.txt
field() { cut -d'|' -f"$2" "$1"; }
if [ "$npu" -ge 2 ]; then
    run "run --bind core" 0 "$TF" run -q -o b1 --slots 2 --bind core bind.txt
    for t in a b; do
        check "bind core: task $t runs on exactly its core" \
            '[ "$(expand "$(field b1/out/$t.out 4)")" = "$(field b1/out/$t.out 1)" ] && [ "$(field b1/out/$t.out 3)" = 1 ]'
    done
    check "bind core: the two 1-core tasks got different cores" \
        '[ "$(field b1/out/a.out 1)" != "$(field b1/out/b.out 1)" ]'
    check "bind core: 2-core task bound to its 2 cores" \
        '[ "$(expand "$(field b1/out/c.out 4)")" = "$(field b1/out/c.out 1)" ] && [ "$(field b1/out/c.out 3)" = 2 ] &&
         [ "$(field b1/out/c.out 1 | tr , "\n" | wc -l)" = 2 ]'
    check "bind core: TASKFARM_NUMA is the cores' node" '[ "$(expand "$(field b1/out/a.out 2)")" = "$(hwloc-calc --physical-output --intersect NUMAnode pu:0)" ]'
    if [ -r /proc/self/numa_maps ]; then
        check "bind core: memory policy set (numa_maps: $(field b1/out/a.out 5))" \
            '[ -n "$(field b1/out/a.out 5)" ] && [ "$(field b1/out/a.out 5)" != default ]'
    else
        skip "bind core: memory policy set" --missing "/proc/self/numa_maps (a kernel with NUMA)"
    fi
    check "bind core: no warning" '! grep -q warning err.txt'

    run "run --bind none" 0 "$TF" run -q -o b2 --slots 2 --bind none bind.txt
    check "bind none: task may run anywhere it was allowed" \
        '[ "$(expand "$(field b2/out/a.out 4)")" = "$mine" ] && [ "$(field b2/out/a.out 5)" = default ]'
    check "bind none: still told its cores" '[ -n "$(field b2/out/a.out 1)" ] && [ "$(field b2/out/a.out 3)" = 1 ]'

    run "run --bind numa" 0 "$TF" run -q -o b3 --slots 2 --bind numa bind.txt
    node_cpus=$(expand "$(hwloc-calc --physical-output --intersect PU "numa:0")")
    check "bind numa: 1-core task may use its whole NUMA node" \
        '[ "$(expand "$(field b3/out/a.out 4)")" = "$node_cpus" ] && [ "$(field b3/out/a.out 1 | tr , "\n" | wc -l)" = 1 ]'

    # Ranks that share cpus: by default their tasks are not bound, --bind core forces it.
    run "run, 3 ranks sharing cpus" 0 mpirun -np 3 --oversubscribe --bind-to none "$TF" run -q -o b4 --slots 2 bind.txt
    check "shared cpus: warned" 'grep -q "warning: ranks 0-2 share cpus" err.txt && grep -q "run unbound" err.txt'
    run "run, 2 workers sharing cpus, rank 0 scheduling" 0 mpirun -np 3 --oversubscribe --bind-to none "$TF" run -q -o b4s --slots 2 --scheduler-only bind.txt
    check "shared cpus: warned of the workers only" 'grep -q "warning: ranks 1 and 2 share cpus" err.txt && grep -q "run unbound" err.txt'
    check "shared cpus: tasks not bound by default" '[ "$(expand "$(field b4/out/a.out 4)")" = "$mine" ]'
    run "run, 2 workers sharing cpus, --bind core" 0 mpirun -np 3 --oversubscribe --bind-to none "$TF" run -q -o b5 --slots 2 --bind core bind.txt
    check "shared cpus, --bind core: bound anyway" \
        '[ "$(expand "$(field b5/out/a.out 4)")" = "$(field b5/out/a.out 1)" ]'
else
    skip "--bind core, none, numa and on ranks sharing cpus" --missing "a second PU"
fi
run "run --bind bogus" 2 "$TF" run --bind socket bind.txt
check "bad --bind named" 'grep -q "bad value .socket. for --bind" err.txt'

# ---- a 2-socket, 4-NUMA node simulated on this one: the plan decides, binding says no ----
{
    echo "@id=c4 @cores=4 $probe"
    echo "@id=c6 @after=c4 @cores=6 $probe"
    echo "@id=c16 @after=c6 @cores=16 $probe"
    echo "@id=c20 @after=c16 @cores=20 $probe"
} >plan.txt
HWLOC_SYNTHETIC="pack:2 numa:2 core:4 pu:2" run "run on a synthetic 2x2-NUMA node" 0 "$TF" run -q -o s1 plan.txt
want() { check "synthetic: @cores=$2 gets $3 on NUMA $4" "[ \"\$(field s1/out/$1.out 1)|\$(field s1/out/$1.out 2)|\$(field s1/out/$1.out 3)\" = \"$3|$4|$2\" ]"; }
want c4 4 0,2,4,6 0
want c6 6 0,2,4,6,8,10 0,1
want c16 16 "$(seq -s, 0 2 30)" 0,1,2,3
want c20 20 "$(seq -s, 0 15),16,18,20,22" 0,1,2
check "synthetic: binding unsupported, said once" \
    '[ "$(grep -c "binding is not supported: the topology comes from HWLOC_SYNTHETIC" err.txt)" = 1 ]'
check "synthetic: tasks ran unbound" '[ "$(expand "$(field s1/out/c4.out 4)")" = "$mine" ]'
HWLOC_SYNTHETIC="pack:2 numa:2 core:4 pu:2" run "synthetic under mpirun -np 2" 0 \
    mpirun -np 2 --oversubscribe --bind-to none -x HWLOC_SYNTHETIC "$TF" run -q --scheduler-only -o s2 plan.txt
check "synthetic np2: same plan on the worker" '[ "$(field s2/out/c6.out 1)|$(field s2/out/c6.out 2)" = "0,2,4,6,8,10|0,1" ]'
check "synthetic np2: one warning, from rank 1" \
    '[ "$(grep -c "rank 1: warning: binding is not supported" err.txt)" = 1 ] && [ "$(grep -c "binding is not supported" err.txt)" = 1 ]'

summary
