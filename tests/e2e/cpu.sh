#!/bin/sh
# tests/e2e/cpu.sh — `pipetrace run --backend cpu` as a user runs it: a real
# run that checks itself, its trace read by `stats`, the planted bugs the
# check must catch (exit 1, the trace kept and marked), a run too large for
# memory refused up front, and options that belong to the other backend.
# Small sizes: the point is the command, not the arithmetic.
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE
SMALL="--hidden 64 --seq 16"

expect_out 'recorded dualpipe on 4 ranks, 8 microbatches \(cpu backend, flush comm, fp32, hidden 64, 32 rows\): 62 ops, 96 messages' \
	"run dualpipe on the cpu backend" $P run -b cpu -s dualpipe -p 4 -n 8 $SMALL -o "$T/dp.db"
check "it checks itself: 8/8 losses bitwise equal" grep -q '^check: 8/8 losses bitwise equal to the sequential reference.* -> ok$' "$OUT"
expect_out '^dualpipe · 4 ranks · 8 microbatches · cpu backend · flush comm' "stats reads the cpu trace" \
	$P stats "$T/dp.db"
check "stats has a row per rank" test "$(sed '/^idle:/q' "$OUT" | grep -c '^r[0-3] ')" -eq 4
run $P stats --json "$T/dp.db"
if python3 - "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schedule"] == "dualpipe" and d["ranks"] == 4
assert d["makespan_ns"] > 0
for r in d["per_rank"]:
    assert r["busy_ns"] > 0 and r["comm_ns"] > 0, r
    assert r["peak_activations"] == 5, r  # P+1, as the plan says
assert d["theory"]["bubble_ns_per_rank"] > 0  # DualPipe's formula under the measured costs
PY
then ok "stats --json: busy and communication per rank, peak activations P+1, theory"; else notok "stats --json on a cpu trace"; fi

if command -v sqlite3 >/dev/null; then
	meta() { sqlite3 "$1" "SELECT value FROM meta WHERE key = '$2'"; }
	check "meta: backend cpu" test "$(meta "$T/dp.db" backend)" = cpu
	check "meta: the cycle counter mapped to CLOCK_MONOTONIC" test "$(meta "$T/dp.db" clock)" = "tsc->CLOCK_MONOTONIC"
	check "meta: cpu.check ok, 8/8" test "$(meta "$T/dp.db" cpu.check) $(meta "$T/dp.db" cpu.check.losses_equal)" = "ok 8/8"
	check "meta: message size 32 rows x 64 x fp32" test "$(meta "$T/dp.db" activation_bytes)" = 8192
	check "every planned step recorded once" test "$(sqlite3 "$T/dp.db" \
		"SELECT (SELECT count(*) FROM ops) + (SELECT count(*) FROM comms) = (SELECT count(*) FROM plan)")" = 1
	check "cost: FB measured" test "$(meta "$T/dp.db" cost.FB_ns)" -gt 0
else
	skip "meta of a cpu trace" "no sqlite3 shell"
fi

expect_out 'cpu backend, overlap comm, fp64' "overlap mode in fp64" \
	$P run -b cpu -s zbv -p 4 -n 8 $SMALL --comm overlap --dtype fp64 -o "$T/zbv.db"
check "... and its check passes" grep -q -- '-> ok$' "$OUT"
run $P schedule -s zb1p -p 4 -n 8 --format csv
cp "$OUT" "$T/zb.csv"
expect_out 'recorded zb.csv on 4 ranks, 8 microbatches \(cpu backend' "a torch action CSV plan on the cpu backend" \
	$P run -b cpu --plan "$T/zb.csv" $SMALL -o "$T/csv.db"
expect_rc 0 "--quiet prints nothing" $P run -b cpu -s 1f1b -p 2 -n 4 $SMALL -q -o "$T/q.db"
check "... nothing at all" test ! -s "$OUT"

# planted bugs: the check fails, exit 1, the trace is kept and says so
expect_err 1 'check: 8/8 losses bitwise equal .* -> FAILED' "a skipped W fails the gradient check" \
	$P run -b cpu -s dualpipe -p 4 -n 8 $SMALL --dtype fp64 --fault skip-w -o "$T/skipw.db"
check "the failed run's trace is kept" test -s "$T/skipw.db"
if command -v sqlite3 >/dev/null; then
	check "... marked cpu.check = failed" test "$(sqlite3 "$T/skipw.db" "SELECT value FROM meta WHERE key='cpu.check'")" = failed
fi
expect_err 1 'check: 6/8 losses bitwise equal' "swapped microbatches fail the loss check" \
	$P run -b cpu -s 1f1b -p 4 -n 8 $SMALL --fault swap-mb -o "$T/swap.db"
check "... naming the first microbatch that differs" grep -q '^check: microbatch 0: loss' "$ERR"

# bad input
expect_err 2 'this run needs [0-9.]+ TiB of memory .* but [0-9.]+ [KMGT]iB is available' \
	"a run too large for memory is refused, naming the sizes" \
	$P run -b cpu -s 1f1b -p 4 -n 8 --hidden 1000000 -o "$T/big.db"
check "... before writing anything" test ! -e "$T/big.db"
expect_err 2 "the sim's; the cpu backend measures its costs" "--cost with the cpu backend" \
	$P run -b cpu -s 1f1b -p 2 -n 2 --cost F=1ms -o "$T/bad1.db"
expect_err 2 "need --backend cpu" "--hidden with the sim backend" $P run -s 1f1b -p 2 -n 2 --hidden 64 -o "$T/bad2.db"
expect_err 2 "--dtype must be fp32, fp64 or bf16, not 'fp16'" "an unknown dtype" \
	$P run -b cpu -s 1f1b -p 2 -n 2 --dtype fp16 -o "$T/bad3.db"
expect_err 2 "--dtype bf16 needs --backend cuda" "bf16 is the cuda backend's" \
	$P run -b cpu -s 1f1b -p 2 -n 2 --dtype bf16 -o "$T/bad3.db"
expect_err 2 "unknown backend 'gpu' \(this build has: sim, cpu" "an unknown backend" \
	$P run -b gpu -s 1f1b -p 2 -n 2 -o "$T/bad4.db"
expect_err 2 "dualpipe needs an even number of ranks" "an impossible plan on the cpu backend" \
	$P run -b cpu -s dualpipe -p 3 -n 8 -o "$T/bad5.db"
check "no output after refused runs" sh -c "! ls $T/bad*.db 2>/dev/null"
