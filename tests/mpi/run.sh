#!/usr/bin/env bash
# Runs the MPI integration tests under timeout at several rank counts; usage: run.sh [BUILD_DIR] (default build/tests).
set -u

dir=${1:-build/tests}
. "$(dirname "$0")/../lib.sh"
tests_tmp

# run_np LIMIT NP BINARY: one mpirun under timeout; a hang is a failure, not
# a stuck CI. Rank 0's report is kept in $tmp/BINARY.NP.
run_np() {
    local limit=$1 np=$2 bin=$3 name rc
    name="$(basename "$bin") np=$np"
    if [ ! -x "$bin" ]; then
        bad "$name: $bin not built"
        return
    fi
    echo "== $name"
    # --oversubscribe: CI machines may have fewer cores than ranks.
    timeout "$limit" mpirun --oversubscribe -np "$np" "$bin" | tee "$tmp/$(basename "$bin").$np"
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 0 ]; then
        ok "$name"
    elif [ "$rc" = 124 ]; then
        bad "$name: hang (killed after $limit s)"
    else
        bad "$name: exit status $rc"
    fi
}

# ran_somewhere BINARY: a case may leave itself to another rank count (strict
# priority order needs one worker, split communicators two ranks), but a case
# skipped at every rank count it was run at is coverage lost: a FAIL.
ran_somewhere() {
    local b=$1 c
    while IFS= read -r c; do
        bad "$b: '$c' skipped at every rank count"
    done < <(cat "$tmp/$b".* 2>/dev/null | awk '
        /^ok   / { ok[substr($0, 6)] = 1 }
        /^skip / { skip[++n] = $0 }
        END {
            for (i = 1; i <= n; i++) {
                found = 0
                for (c in ok) if (index(skip[i], "skip " c ": ") == 1) found = 1
                if (!found) print substr(skip[i], 6)
            }
        }')
}

for np in 1 2 4; do
    run_np 300 "$np" "$dir/test_runtime"
done
# Library checkpoint and resume: state written and resumed at each size.
for np in 1 2 4; do
    run_np 300 "$np" "$dir/test_ckpt_lib"
done
# Runs that take tasks while they run: ticks submit, held open, resumed.
for np in 1 2 4; do
    run_np 300 "$np" "$dir/test_open"
done
# The data path: worker to worker, parts, pins, lifetime (np 3: two workers).
for np in 1 2 3; do
    run_np 300 "$np" "$dir/test_data"
done
# Lost data is made again: the last rank kills itself holding outputs that
# tasks still read (mpirun --enable-recovery, heartbeats). mpirun then exits
# 0 whatever the ranks do, so rank 0's report decides.
for np in 3 4; do
    echo "== test_lineage np=$np (--enable-recovery)"
    timeout 120 mpirun --oversubscribe --enable-recovery -np "$np" \
        "$dir/test_lineage" >"$tmp/lineage.$np" 2>&1
    rc=$?
    grep -E '^(ok|FAIL) ' "$tmp/lineage.$np"
    if [ "$rc" = 124 ]; then
        bad "test_lineage np=$np: hang (killed after 120 s)"
    elif grep -q '^test_lineage: 0 failed$' "$tmp/lineage.$np"; then
        ok "test_lineage np=$np"
    else
        bad "test_lineage np=$np: $(tail -3 "$tmp/lineage.$np" | tr '\n' ' ')"
    fi
done
# Walltime through the library: a deadline stops, resume finishes, a lift.
for np in 1 2 4; do
    run_np 120 "$np" "$dir/test_deadline"
done
run_np 120 4 "$dir/test_idle"
for b in test_runtime test_ckpt_lib test_open test_idle test_data; do
    ran_somewhere "$b"
done

summary
