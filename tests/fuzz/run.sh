#!/usr/bin/env bash
# Runs the fuzz harnesses (make check-fuzz, fuzz, fuzz-cov; docs/fuzzing.md).
#
#   run.sh BIN_DIR check          each harness a fixed number of runs from its
#                                 seeds, with a fixed seed; finds are thrown away
#   run.sh BIN_DIR long SECONDS   each for SECONDS, keeping its finds in
#                                 BIN_DIR/corpus-NAME
#   run.sh BIN_DIR cov            each over its seeds and kept finds once,
#                                 writing BIN_DIR/NAME.profraw (coverage build)
#
# BIN_DIR holds fuzz_NAME; logs go to BIN_DIR/NAME.log, crashes, leaks and
# timeouts to BIN_DIR/artifacts/NAME-*. Exits 1 at the first harness that
# fails, after printing its log's end.
set -u
bin=$1 mode=$2 seconds=${3:-300}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
# HDF5's own leaks on corrupt files: lsan.supp says which.
export LSAN_OPTIONS="suppressions=$top/tests/fuzz/lsan.supp:print_suppressions=0"
mkdir -p "$bin/artifacts"

# name, runs in check mode (about 5-10 s each here), options, extra seeds
harnesses=(
    "taskfile 30000 -max_len=8192 -dict=tests/fuzz/taskfile.dict|tests/data/taskfiles"
    "wire 200000 -max_len=4096|"
    "journal 8000 -max_len=4096|"
    "snapshot 3000|"
    "snapedit 1500 -max_len=2048|"
)

for h in "${harnesses[@]}"; do
    read -r name runs opts <<<"${h%%|*}"
    seeds=${h#*|}
    common=(-print_final_stats=1 -timeout=30 -rss_limit_mb=2048
            "-artifact_prefix=$bin/artifacts/$name-")
    case $mode in
    check)
        echo "== fuzz_$name: $runs runs from tests/fuzz/corpus/$name $seeds"
        new=$(mktemp -d)
        timeout 300 "$bin/fuzz_$name" -runs="$runs" -seed=1 "${common[@]}" \
            $opts "$new" "tests/fuzz/corpus/$name" $seeds 2>"$bin/$name.log"
        rc=$?
        rm -rf "$new" ;;
    long)
        echo "== fuzz_$name: $seconds s, corpus $bin/corpus-$name"
        mkdir -p "$bin/corpus-$name"
        TF_FUZZ_FREE_LIST_LIMITS=1 \
        "$bin/fuzz_$name" -max_total_time="$seconds" "${common[@]}" $opts \
            "$bin/corpus-$name" "tests/fuzz/corpus/$name" $seeds 2>"$bin/$name.log"
        rc=$? ;;
    cov)
        kept=$(ls -d "build/fuzz/corpus-$name" 2>/dev/null)
        LLVM_PROFILE_FILE="$bin/$name.profraw" "$bin/fuzz_$name" -runs=0 \
            "tests/fuzz/corpus/$name" $seeds $kept 2>"$bin/$name.log"
        rc=$? ;;
    *)
        echo "run.sh: unknown mode $mode" >&2
        exit 2 ;;
    esac
    grep -E '^(stat::|Done|#[0-9]+.*DONE)' "$bin/$name.log"
    if [ "$rc" != 0 ]; then
        tail -40 "$bin/$name.log"
        exit 1
    fi
done
