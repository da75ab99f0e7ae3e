#!/usr/bin/env bash
# Runs the MPI integration tests under timeout at several rank counts; usage: run.sh [BUILD_DIR] (default build/tests).
set -u

dir=${1:-build/tests}

# Open MPI refuses to run as root unless told; containers and CI often are root.
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

passed=0
failed=0

# run LIMIT NP BINARY: one mpirun under timeout; a hang is a failure, not a stuck CI.
run() {
    local limit=$1 np=$2 bin=$3
    local name
    name="$(basename "$bin") np=$np"
    if [ ! -x "$bin" ]; then
        echo "FAIL $name: $bin not built"
        failed=$((failed + 1))
        return
    fi
    echo "== $name"
    # --oversubscribe: CI machines may have fewer cores than ranks.
    timeout "$limit" mpirun --oversubscribe -np "$np" "$bin"
    local rc=$?
    if [ "$rc" = 0 ]; then
        echo "PASS $name"
        passed=$((passed + 1))
    elif [ "$rc" = 124 ]; then
        echo "FAIL $name: hang (killed after $limit s)"
        failed=$((failed + 1))
    else
        echo "FAIL $name: exit status $rc"
        failed=$((failed + 1))
    fi
}

for np in 1 2 4; do
    run 300 "$np" "$dir/test_runtime"
done
# Library checkpoint and resume: state written and resumed at each size.
for np in 1 2 4; do
    run 300 "$np" "$dir/test_ckpt_lib"
done
run 120 4 "$dir/test_idle"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
