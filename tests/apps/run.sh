#!/usr/bin/env bash
# Runs the example apps small under mpirun and timeout and checks their answers; usage: run.sh [BIN_DIR] (default bin).
set -u
BIN=$(cd "${1:-bin}" && pwd)
. "$(dirname "$0")/../lib.sh"
tests_tmp

# app NAME WANT_RC NP CMD...: one mpirun under timeout (a hang fails), output
# in $tmp/out and $tmp/err, exit status compared with WANT_RC.
app() {
    local name=$1 want=$2 np=$3
    shift 3
    timeout 120 mpirun --oversubscribe -np "$np" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" = "$want" ]; then
        ok "$name (exit $rc)"
        return 0
    fi
    [ "$rc" = 124 ] && bad "$name: hang (killed after 120 s)" ||
        bad "$name: exit $rc, want $want"
    sed 's/^/    /' "$tmp/out" "$tmp/err" | head -20
    return 1
}
# expect NAME REGEX: the last run's stdout has a line matching REGEX.
expect() {
    if grep -Eq "$2" "$tmp/out"; then ok "$1"; else
        bad "$1: no line matching '$2'"; sed 's/^/    /' "$tmp/out"; fi
}

echo "== cholesky"
app "cholesky np=1 N=512 NB=128" 0 1 "$BIN/cholesky" -n 512 -b 128 &&
    expect "cholesky np=1 residual" "^cholesky: N=512, 4x4 tiles of 128 \(20 tasks.*residual [0-9.e+-]+: CORRECT$"
app "cholesky np=3 N=1024 NB=128" 0 3 "$BIN/cholesky" -n 1024 -b 128 &&
    expect "cholesky np=3 residual" "^cholesky: N=1024, 8x8 tiles of 128 \(120 tasks, critical-path.*: CORRECT$" &&
    expect "cholesky np=3 reference" "^cholesky: LAPACKE_dpotrf, OpenBLAS on 2 threads: .* GFLOP/s, residual" &&
    expect "cholesky np=3 benchmark line" "^cholesky_taskfarm [0-9.]+ GFLOP/s$"
# Two task threads on one worker: tiles and BLAS calls side by side.
app "cholesky np=2 slots=2, no priorities, window 1" 0 2 "$BIN/cholesky" -n 768 -b 96 -s 2 -P -w 1 &&
    expect "cholesky np=2 slots=2 residual" "^cholesky: N=768, 8x8 tiles of 96 .*no priorities.*2 task cores.*: CORRECT$"
app "cholesky: tile does not divide N" 2 1 "$BIN/cholesky" -n 1000 -b 128
grep -q "^usage: cholesky" "$tmp/err" && ok "cholesky usage message" || bad "cholesky usage message"

echo "== uts"
# The generator against the sizes published with the UTS benchmark.
app "uts T1 serial" 0 1 "$BIN/uts" -T T1 -n &&
    expect "uts T1 published size" "serial 4130071 nodes, 3305118 leaves, depth 10 .*published 4130071: MATCH$"
app "uts T3 serial" 0 1 "$BIN/uts" -T T3 -n &&
    expect "uts T3 published size" "serial 4112897 nodes, 3599034 leaves, depth 1572 .*published 4112897: MATCH$"
# Farmed counts of small trees against the serial count, stealing on and off.
app "uts np=1 geometric depth 6" 0 1 "$BIN/uts" -t 1 -a 3 -d 6 -b 4 -r 19 -B 100 &&
    expect "uts np=1 count" "^uts: custom steal on: .*: CORRECT$"
app "uts np=3 geometric depth 7" 0 3 "$BIN/uts" -t 1 -a 3 -d 7 -b 4 -r 19 -B 200 &&
    expect "uts np=3 geometric, steal on" "^uts: custom steal on: .* on 2 task cores: .*: CORRECT$" &&
    expect "uts np=3 geometric, steal off" "^uts: custom steal off: .*: CORRECT$"
# A tiny budget: thousands of tasks, each splitting its stack into children.
app "uts np=3 binomial, budget 20" 0 3 "$BIN/uts" -t 0 -b 200 -q 0.12 -m 8 -r 42 -B 20 -F 3 &&
    expect "uts np=3 binomial" "^uts: custom steal off: .*: CORRECT$" &&
    expect "uts rate line" "^uts_custom_steal_on_rate [0-9.e+]+ nodes/s$"
app "uts np=4 cyclic, 2 slots" 0 4 "$BIN/uts" -t 1 -a 2 -d 8 -b 3 -r 502 -B 500 -s 2 -S off &&
    expect "uts np=4 slots=2" "^uts: custom steal off: .* on 6 task cores: .*: CORRECT$"
app "uts: unknown tree" 2 1 "$BIN/uts" -T T9
app "uts: q out of range" 2 1 "$BIN/uts" -q 1.5
grep -q "^uts: -q 1.5: out of range" "$tmp/err" && ok "uts names the bad option" ||
    bad "uts names the bad option: $(head -1 "$tmp/err")"

echo "== sweep"
# escape_counts W H MAX_ITER: every point's count, one row a line, computed
# serially by awk in the same double-precision steps as the app.
escape_counts() {
    awk -v W="$1" -v H="$2" -v M="$3" 'BEGIN {
        xmin = -2.0; xmax = 0.6; ymin = -1.2; ymax = 1.2
        for (i = 0; i < H; i++) {
            line = ""
            for (j = 0; j < W; j++) {
                cx = xmin + (j + 0.5) * ((xmax - xmin) / W)
                cy = ymax - (i + 0.5) * ((ymax - ymin) / H)
                zx = 0; zy = 0
                for (k = 0; k < M; k++) {
                    x2 = zx * zx; y2 = zy * zy
                    if (x2 + y2 > 4.0) break
                    zy = 2.0 * zx * zy + cy
                    zx = x2 - y2 + cx
                }
                line = line (j ? " " : "") k
            }
            print line
        }
    }'
}
# h5_rows FILE DATASET: the dataset's values, one row a line, from h5dump.
h5_rows() {
    h5dump -d "$2" -y -w 0 "$1" | sed -n '/^ *DATA {/,/^ *}/p' | sed '1d;$d' |
        sed 's/^ *//; s/,$//; s/, / /g'
}
escape_counts 64 48 300 >"$tmp/want"
py=
for p in python3 /usr/bin/python3; do
    "$p" -c 'import h5py' 2>/dev/null && { py=$p; break; }
done
for np in 1 3; do
    f="$tmp/sweep$np.h5"
    # 5 rows a task: the last task gets the 3 rows left over.
    app "sweep np=$np 64x48" 0 "$np" "$BIN/sweep" -W 64 -H 48 -i 300 -r 5 -o "$f" || continue
    expect "sweep np=$np serial check" "^sweep: 64x48 points, max_iter 300, 10 tasks of 5 rows on $np ranks.*0 differ: CORRECT; wrote "
    h5dump -H "$f" >"$tmp/h" 2>&1 && ok "sweep np=$np: h5dump opens the file" || bad "sweep np=$np: h5dump -H failed"
    grep -A2 'DATASET "iterations"' "$tmp/h" | grep -q 'SIMPLE { ( 48, 64 ) / ( 48, 64 ) }' &&
        ok "sweep np=$np: /iterations is 48x64" || bad "sweep np=$np: /iterations dims"
    grep -A2 'DATASET "task_seconds"' "$tmp/h" | grep -q 'SIMPLE { ( 10 ) / ( 10 ) }' &&
        ok "sweep np=$np: /task_seconds has 10 tasks" || bad "sweep np=$np: /task_seconds dims"
    if diff -q <(h5_rows "$f" /iterations) "$tmp/want" >/dev/null; then
        ok "sweep np=$np: every point equals awk's serial count"
    else
        bad "sweep np=$np: points differ from awk's serial count"
        diff <(h5_rows "$f" /iterations) "$tmp/want" | head -5
    fi
    [ "$(h5_rows "$f" /task_first_row | tr '\n' ' ')" = "0 5 10 15 20 25 30 35 40 45 " ] &&
        ok "sweep np=$np: /task_first_row" || bad "sweep np=$np: /task_first_row: $(h5_rows "$f" /task_first_row | tr '\n' ' ')"
    # Rank 0 runs tasks, and so do the workers when there are some.
    ranks=$(h5_rows "$f" /task_rank | tr ' ' '\n' | sort -nu | tr '\n' ' ')
    if [ "$np" = 1 ]; then want_ranks="^0 $"; else want_ranks="^(0 )?([1-9][0-9]* )+$"; fi
    [[ "$ranks" =~ $want_ranks ]] && ok "sweep np=$np: tasks ran on ranks $ranks" ||
        bad "sweep np=$np: tasks ran on ranks '$ranks'"
    [ "$(h5dump -a /max_iter -y "$f" | sed -n '/DATA {/{n;p}' | tr -d ' ')" = 300 ] &&
        ok "sweep np=$np: max_iter attribute" || bad "sweep np=$np: max_iter attribute"
    # h5py, when installed (Debian: python3-h5py), reads the same file.
    if [ -n "$py" ]; then
        "$py" -c 'import sys, h5py
f = h5py.File(sys.argv[1], "r")
assert f["iterations"].shape == (48, 64) and f.attrs["max_iter"] == 300
assert f["iterations"][24, 32] == int(sys.argv[2])' "$f" "$(sed -n 25p "$tmp/want" | cut -d' ' -f33)" &&
            ok "sweep np=$np: h5py reads it" || bad "sweep np=$np: h5py"
    else
        skip "sweep np=$np: h5py reads it" --missing "python3-h5py (make deps)"
    fi
    [ ! -e "$f.tmp" ] && ok "sweep np=$np: no temporary file left" || bad "sweep np=$np: $f.tmp left"
done
app "sweep: unwritable output" 3 1 "$BIN/sweep" -W 8 -H 8 -o "$tmp/no/such/dir/x.h5"
grep -q "cannot create $tmp/no/such/dir/x.h5.tmp" "$tmp/err" && ok "sweep names the file" ||
    bad "sweep names the file: $(head -1 "$tmp/err")"

# sweep -S: rank 0 SIGKILLed mid-run under --enable-recovery; the lowest
# surviving rank takes over from the state in DIR (tf_takeover) and the
# file it writes equals a fault-free run's.
echo "== sweep take-over"
big=(-W 512 -H 384 -i 60000)
app "sweep np=4 ${big[*]}, no fault" 0 4 "$BIN/sweep" "${big[@]}" -o "$tmp/sw-ref.h5"
st=$tmp/sw-state
timeout 120 mpirun --oversubscribe --enable-recovery -np 4 "$BIN/sweep" "${big[@]}" -S "$st" \
    -o "$tmp/sw.h5" >"$tmp/out" 2>"$tmp/err" &
job=$!
sleep 1
r0=
for p in $(pgrep -f "sweep ${big[*]} -S $st"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=0 && r0=$p
done
[ -n "$r0" ] && kill -9 "$r0"
wait $job
rc=$?
check "sweep take-over: rank 0 ($r0) killed, mpirun exits 0 (exit $rc)" '[ -n "$r0" ] && [ "$rc" = 0 ]' ||
    sed 's/^/    /' "$tmp/out" "$tmp/err" | grep -v PMIX | head -20
expect "sweep take-over: the successor finishes on 3 ranks" "^sweep: 512x384 points, .* on 3 ranks.*0 differ: CORRECT; wrote "
check "sweep take-over: rank 1 claimed term 1" 'grep -q "(world rank 1)" "$st/term.1"'
check "sweep take-over: every point equals the fault-free run's" \
    'diff -q <(h5_rows "$tmp/sw.h5" /iterations) <(h5_rows "$tmp/sw-ref.h5" /iterations) >/dev/null'

echo "== stencil"
# value NAME: the number the last run printed for NAME.
value() { awk -v n="$1" '$1 == n { print $2 }' "$tmp/out"; }
# Final blocks bitwise equal to rank 0's serial steps: one rank, then
# blocks pinned to 2 workers with halos through rank 0 (8 bytes, under the
# default inline_max), then with -i 0, every part worker to worker.
app "stencil np=1 B=6 N=1000 S=20" 0 1 "$BIN/stencil" -b 6 -n 1000 -s 20 &&
    expect "stencil np=1 bitwise equal" "^stencil: B=6 N=1000 S=20 np=1: 120 tasks.*max abs diff 0, bitwise equal: CORRECT$"
app "stencil np=3 B=6 N=1000 S=20" 0 3 "$BIN/stencil" -b 6 -n 1000 -s 20 &&
    expect "stencil np=3 bitwise equal" "^stencil: B=6 N=1000 S=20 np=3: 120 tasks on 2 task cores.*bitwise equal: CORRECT$" &&
    expect "stencil ms per step line" "^stencil_taskfarm_ms_per_step [0-9.]+ ms$" &&
    expect "stencil serial line" "^stencil_serial_ms_per_step [0-9.]+ ms$" &&
    expect "stencil peak RSS line" "^stencil_rank0_peak_rss_mb [0-9.]+ MB$" &&
    check "stencil np=3: nothing fetched, blocks pinned and halos inline ($(value stencil_fetches) fetches)" \
        '[ "$(value stencil_fetches)" = 0 ]'
# -i 0: no part goes through rank 0. It still receives the final blocks,
# the results it reads (B*N*8 = 48000 bytes), which tf_stats counts as
# payload: that and nothing else. Workers fetch the 2(B-1)(S-1) = 190
# halos of 8 bytes from each other, and never a block (blocks are pinned).
app "stencil np=3 -i 0" 0 3 "$BIN/stencil" -b 6 -n 1000 -s 20 -i 0 &&
    expect "stencil np=3 -i 0 bitwise equal" "^stencil: B=6 N=1000 S=20 np=3: .*inline_max 0: .*bitwise equal: CORRECT$" &&
    check "stencil -i 0: rank 0 carries only the final blocks (payload $(value stencil_rank0_payload_bytes), results $(value stencil_rank0_result_bytes))" \
        '[ "$(value stencil_rank0_payload_bytes)" = 48000 ] && [ "$(value stencil_rank0_result_bytes)" = 48000 ]' &&
    check "stencil -i 0: the 190 halos fetched worker to worker ($(value stencil_fetches) fetches, $(value stencil_fetched_bytes) bytes)" \
        '[ "$(value stencil_fetches)" = 190 ] && [ "$(value stencil_fetched_bytes)" = 1520 ]'
# Blocks of 50 doubles (400 bytes) travel inline through rank 0; one block
# more than a multiple of the workers; 4 ranks.
app "stencil np=3 small blocks inline" 0 3 "$BIN/stencil" -b 7 -n 50 -s 30 &&
    expect "stencil np=3 inline blocks" "^stencil: B=7 N=50 S=30 np=3: .*bitwise equal: CORRECT$"
app "stencil np=4 one point a block" 0 4 "$BIN/stencil" -b 5 -n 1 -s 40 -i 0 &&
    expect "stencil np=4 N=1" "^stencil: B=5 N=1 S=40 np=4: .*bitwise equal: CORRECT$"
app "stencil: -b 0" 2 1 "$BIN/stencil" -b 0
grep -q "^stencil: -b 0: out of range" "$tmp/err" && ok "stencil names the bad option" ||
    bad "stencil names the bad option: $(head -1 "$tmp/err")"
app "stencil: -n not a number" 2 1 "$BIN/stencil" -n 1k
grep -q "^stencil: -n 1k: out of range" "$tmp/err" && ok "stencil names -n" ||
    bad "stencil names -n: $(head -1 "$tmp/err")"

echo "== wordcount"
# Reducers' sorted tables against rank 0's serial count of the same text.
app "wordcount np=1 2 MiB" 0 1 "$BIN/wordcount" -M 2 &&
    expect "wordcount np=1 counts" "^wordcount: 2 MiB of text, 64 maps x 8 reducers on 1 ranks.*: CORRECT$"
app "wordcount np=3 2 MiB" 0 3 "$BIN/wordcount" -M 2 &&
    expect "wordcount np=3 counts" "^wordcount: 2 MiB of text, 64 maps x 8 reducers on 3 ranks, 2 task cores: .*: CORRECT$" &&
    expect "wordcount shuffle line" "^wordcount_shuffle_ms [0-9.]+ ms$" &&
    expect "wordcount payload line" "^wordcount_rank0_payload_bytes [0-9]+ bytes$"
app "wordcount np=3 -i 0" 0 3 "$BIN/wordcount" -M 2 -m 10 -r 3 -i 0 &&
    expect "wordcount np=3 -i 0 counts" "^wordcount: 2 MiB of text, 10 maps x 3 reducers on 3 ranks.*: CORRECT$" &&
    check "wordcount -i 0: map parts fetched worker to worker" '[ "$(value wordcount_fetched_bytes)" -gt 0 ]'
# Every pair in one part; and more parts than words in a small map.
app "wordcount np=3 one reducer" 0 3 "$BIN/wordcount" -M 1 -m 5 -r 1 &&
    expect "wordcount np=3 -r 1" "^wordcount: 1 MiB of text, 5 maps x 1 reducers.*: CORRECT$"
app "wordcount np=4 256 reducers" 0 4 "$BIN/wordcount" -M 1 -m 16 -r 256 &&
    expect "wordcount np=4 -r 256" "^wordcount: 1 MiB of text, 16 maps x 256 reducers.*: CORRECT$"
app "wordcount: -r 257" 2 1 "$BIN/wordcount" -r 257
grep -q "^wordcount: -r 257: out of range" "$tmp/err" && ok "wordcount names the bad option" ||
    bad "wordcount names the bad option: $(head -1 "$tmp/err")"

summary
