# The script tests' library: ok/bad/check/note/skip, runs under a timeout, a temporary directory, the count line. Sourced, not run.
#
# A script sources it before it changes directory, reports every check as
# "ok   NAME" or "FAIL NAME", and ends with `summary`, whose status is the
# script's:
#
#     . "$(dirname "$0")/../lib.sh"
#     tests_tmp && cd "$tmp"
#     check "two rows" '[ "$(wc -l <out.txt)" = 2 ]'
#     summary
#
# Skips (docs/testing.md): a group of cases may be left out only for a
# system feature this machine lacks, named with `skip NAME --missing
# FEATURE`. Any other skip is a FAIL: coverage that is lost must not leave
# the suite green.

# Open MPI refuses to run as root unless told; containers and CI often are root.
if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

TESTS_PASS=0 TESTS_FAIL=0 TESTS_SKIP=0

ok() { TESTS_PASS=$((TESTS_PASS + 1)); echo "ok   $1"; }
bad() { TESTS_FAIL=$((TESTS_FAIL + 1)); echo "FAIL $1"; }
note() { echo "     $*"; }

# check NAME EXPR: ok when EXPR (evaluated with eval) holds; else FAIL,
# the last lines of the file CHECK_SHOW names (when set), and status 1.
# No locals here: EXPR sees the caller's variables.
check() {
    if eval "$2"; then
        ok "$1"
        return 0
    fi
    bad "$1"
    [ -n "${CHECK_SHOW:-}" ] && sed 's/^/    /' "$CHECK_SHOW" 2>/dev/null | tail -5
    return 1
}

# skip NAME --missing FEATURE: the cases NAME are not run because this
# machine lacks FEATURE ("root", "a second PU", "python3-h5py"): reported
# and counted. skip NAME WHY, for any other reason: a FAIL.
skip() {
    if [ "${2:-}" = --missing ] && [ -n "${3:-}" ]; then
        TESTS_SKIP=$((TESTS_SKIP + 1))
        echo "skip $1: missing $3"
    else
        bad "$1: skipped (${2:-no reason given}); only a missing system feature may skip tests"
    fi
}

# run NAME WANT_RC CMD...: CMD under timeout RUN_LIMIT (seconds, default
# 120; a hang fails), its output in out.txt and err.txt of the current
# directory; ok when it exits WANT_RC, else FAIL with the end of err.txt.
run() {
    local name=$1 want=$2 rc
    shift 2
    timeout "${RUN_LIMIT:-120}" "$@" >out.txt 2>err.txt
    rc=$?
    if [ "$rc" = "$want" ]; then
        ok "$name (exit $rc)"
        return 0
    fi
    bad "$name: exit $rc, want $want"
    sed 's/^/    /' err.txt | tail -20
    return 1
}

# tests_tmp [TEMPLATE]: tmp, a fresh directory (mktemp -d TEMPLATE),
# removed when the script exits, after the function TESTS_CLEANUP names
# (if set) has run; the script's exit status stays its own.
tests_tmp() {
    tmp=$(mktemp -d ${1:+"$1"}) || { bad "mktemp -d ${1:-}"; exit 1; }
    trap tests_exit EXIT
}
tests_exit() {
    [ -n "${TESTS_CLEANUP:-}" ] && "$TESTS_CLEANUP"
    rm -rf "$tmp"
}

# summary [LABEL [TAIL]]: the count line,
#   LABEL: P passed, F failed[, S skipped] TAIL
# and status 0 when nothing failed.
summary() {
    local line="$TESTS_PASS passed, $TESTS_FAIL failed"
    [ "$TESTS_SKIP" = 0 ] || line="$line, $TESTS_SKIP skipped"
    echo "${1:+$1: }$line${2:+ $2}"
    [ "$TESTS_FAIL" = 0 ]
}

# A run's outdir. rows OUTDIR: the joblog's attempts; succ OUTDIR: the Seq
# of each successful attempt, sorted; once OUTDIR N: lines 1..N each have
# exactly one successful attempt; state OUTDIR: the status file's state;
# until_running OUTDIR [TRIES]: wait (TRIES x 0.1 s, default 100) until a
# run started in the background says it is running.
rows() { tail -n +2 "$1/joblog.tsv" 2>/dev/null | wc -l; }
succ() { awk -F'\t' 'NR > 1 && $7 == 0 && $8 == 0 { print $1 }' "$1/joblog.tsv" 2>/dev/null | sort -n; }
once() { [ "$(succ "$1" | tr '\n' ' ')" = "$(seq 1 "$2" | tr '\n' ' ')" ]; }
# status_field OUTDIR KEY: a key of a run's status file; state OUTDIR: its state.
status_field() { awk -v k="$2" '$1 == k { print $2 }' "$1/status" 2>/dev/null; }
state() { status_field "$1" state; }
# task LINE: the `status --tasks` line of that task-file line in out.txt,
# columns squeezed.
task() { awk -v l="$1" '$1 == l' out.txt | tr -s ' '; }
until_running() {
    local i
    for i in $(seq "${2:-100}"); do
        [ "$(state "$1")" = running ] && return 0
        sleep 0.1
    done
    return 1
}
