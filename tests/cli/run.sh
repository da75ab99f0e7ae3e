#!/usr/bin/env bash
# CLI tests: taskfarm check on good and bad task files, exit codes, messages; version and usage.
set -u
BIN=$(cd "${1:-bin}" && pwd)
. "$(dirname "$0")/../lib.sh"
tests_tmp
cd "$(dirname "$0")/../data/taskfiles"

# expect NAME WANT_RC CMD...: run with a timeout, compare the exit status.
expect() {
    local name=$1 want=$2
    shift 2
    timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" = "$want" ]; then ok "$name (exit $rc)"; else
        bad "$name: exit $rc, want $want"; sed 's/^/    /' "$tmp/err"; fi
}
for f in plain dag barrier crlf; do
    expect "check $f.txt" 0 "$BIN/taskfarm" check "$f.txt"
    grep -q "^$f.txt: [0-9]* tasks, " "$tmp/out" && ok "summary of $f.txt" ||
        bad "summary of $f.txt: $(cat "$tmp/out")"
done
grep -q "^dag.txt: 7 tasks, 7 dependencies, 0 barriers, longest chain 5, max cores 4," \
    <("$BIN/taskfarm" check dag.txt) && ok "dag.txt counts" || bad "dag.txt counts"

# Every bad file: exit 2, nothing on stdout, stderr exactly as recorded.
for f in bad-*.txt; do
    expect "check $f" 2 "$BIN/taskfarm" check "$f"
    if diff -u "${f%.txt}.err" "$tmp/err" >"$tmp/diff"; then ok "messages of $f"
    else bad "messages of $f"; cat "$tmp/diff"; fi
    [ -s "$tmp/out" ] && bad "$f printed to stdout" || ok "$f: stdout empty"
done

expect "missing file" 2 "$BIN/taskfarm" check no-such-file.txt
grep -q "no-such-file.txt" "$tmp/err" && ok "missing file named" || bad "missing file not named"
printf 'echo a\x00b\n' >"$tmp/nul.txt"
expect "NUL byte" 2 "$BIN/taskfarm" check "$tmp/nul.txt"
grep -q "nul.txt:1" "$tmp/err" && ok "NUL byte located" || bad "NUL byte: $(cat "$tmp/err")"
printf 'true\ntrue' >"$tmp/nonl.txt"
expect "no final newline" 0 "$BIN/taskfarm" check "$tmp/nonl.txt"
seq 100000 | sed 's/^/true # /' >"$tmp/big.txt"
expect "100,000 lines" 0 "$BIN/taskfarm" check "$tmp/big.txt"
grep -q ": 100000 tasks," "$tmp/out" && ok "100,000 tasks counted" || bad "big: $(cat "$tmp/out")"

expect "version" 0 "$BIN/taskfarm" --version
grep -qE '^taskfarm [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/out" && ok "version format" || bad "version: $(cat "$tmp/out")"
expect "help" 0 "$BIN/taskfarm" --help
expect "no arguments" 2 "$BIN/taskfarm"
expect "unknown command" 2 "$BIN/taskfarm" frobnicate
expect "check without file" 2 "$BIN/taskfarm" check

summary
