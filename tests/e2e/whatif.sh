#!/bin/sh
# tests/e2e/whatif.sh — choosing a schedule: DualPipe, ZB-H1 and 1F1B side
# by side (P=8, N=20, default costs) with the spec's formulas beside the
# measurements; costs calibrated on a measured run (run --cost-from)
# reproducing it exactly and carried over to another schedule; the sim's
# prediction and the idle breakdown in `stats`.
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE

# side by side: DualPipe (P/2-1)(FB+B-3W) = 6 ms per rank, ZB-H1 (P-1)(F+B-2W) = 7 ms, 1F1B (P-1)(F+B) = 21 ms
for s in dualpipe zb1p 1f1b; do
	$P run -s $s -p 8 -n 20 -o "$T/$s.db" -q
done
expect_out '^3 traces side by side' "stats with three traces: one table" \
	$P stats "$T/dualpipe.db" "$T/zb1p.db" "$T/1f1b.db"
check "... DualPipe's row: 6 ms per rank, as its formula" \
	grep -Eq 'dualpipe.db +dualpipe +flush +8 +20 +66\.000 +9\.09% +9\.09% +6\.000 +6\.000 +- ' "$OUT"
check "... ZB-H1's: 7 ms, 1 ms more than DualPipe's" \
	grep -Eq 'zb1p.db +zb1p +flush +8 +20 +67\.000 .* +7\.000 +7\.000 +\+1\.000 ' "$OUT"
check "... 1F1B's: 21 ms, 15 ms more" grep -Eq '1f1b.db +1f1b +flush +8 +20 +81\.000 .* +21\.000 +21\.000 +\+15\.000 ' "$OUT"
run $P stats --json "$T/dualpipe.db" "$T/zb1p.db" "$T/1f1b.db"
if python3 - "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = {x["schedule"]: x for x in d["traces"]}
assert list(t) == ["dualpipe", "zb1p", "1f1b"]
ms = 1_000_000
F, B, W, FB, P = 1 * ms, 2 * ms, 1 * ms, 3 * ms, 8
formula = {"dualpipe": (P // 2 - 1) * (FB + B - 3 * W), "zb1p": (P - 1) * (F + B - 2 * W), "1f1b": (P - 1) * (F + B)}
assert formula == {"dualpipe": 6 * ms, "zb1p": 7 * ms, "1f1b": 21 * ms}
for s, x in t.items():
    assert x["ranks"] == 8 and x["microbatches"] == 20
    for r in x["per_rank"]:
        assert r["bubble_ns"] == formula[s] == r["theory_bubble_ns"], (s, r)
    assert x["theory"]["bubble_ns_per_rank"] == formula[s]
dp, zb, f1 = (t[s]["per_rank"][0]["bubble_ns"] for s in ("dualpipe", "zb1p", "1f1b"))
assert zb - dp == 1 * ms and f1 - dp == 15 * ms
PY
then ok "stats --json with three traces: {traces: [...]}, bubbles as the formulas say"; else notok "stats --json with three traces: {traces: [...]}, bubbles as the formulas say"; fi

# calibrated what-if: from a measured run back to itself, exactly
$P run -s dualpipe -p 8 -n 20 --comm flush --cost F=1.3ms,B=2.1ms,I=1.2ms,W=0.9ms,FB=3.1ms \
	--link latency=5us,bandwidth=50GB/s --activation-bytes 64MiB -o "$T/measured.db" -q
$P stats --json "$T/measured.db" >"$T/measured.json"
expect_out 'costs from .*measured.db: F=1\.300 ms \(median of [0-9]+\) B=2\.100 ms .* FB=3\.100 ms' \
	"run --cost-from reads each kind's median" \
	$P run -s dualpipe -p 8 -n 20 --activation-bytes 64MiB --cost-from "$T/measured.db" -o "$T/again.db"
check "... and fits the link" grep -q 'link: latency 5.000 us, bandwidth 50 GB/s' "$OUT"
$P stats --json "$T/again.db" >"$T/again.json"
if python3 -c "
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
assert a['makespan_ns'] == b['makespan_ns'], (a['makespan_ns'], b['makespan_ns'])
assert [r['bubble_ns'] for r in a['per_rank']] == [r['bubble_ns'] for r in b['per_rank']]
" "$T/measured.json" "$T/again.json"; then ok "re-simulating with calibrated costs reproduces the makespan exactly"
else notok "re-simulating with calibrated costs reproduces the makespan exactly"; fi
expect_rc 0 "... so the gate passes with zero tolerances" $P check "$T/again.db" -b "$T/measured.json" \
	-t makespan_ns=+0,bubble_ratio=+0,rank_bubble_ns=+0,overlap_ratio=-0,exposed_comm_ns=+0

# the same costs on another schedule; kinds it did not run are derived
expect_out 'recorded 1f1b on 8 ranks' "the measured costs drive another schedule" \
	$P run -s 1f1b -p 8 -n 20 --activation-bytes 64MiB --cost-from "$T/measured.db" -o "$T/whatif.db"
$P run -s 1f1b -p 8 -n 20 -o "$T/m1f1b.db" -q
expect_out 'I=1\.000 ms \(derived\) W=1\.000 ms \(derived\) FB=3\.000 ms \(derived\)' \
	"a 1F1B run calibrates DualPipe's I, W and FB from F and B" \
	$P run -s dualpipe -p 8 -n 20 --cost-from "$T/m1f1b.db" -o "$T/dp-from-1f1b.db"
expect_out 'W=2\.000 ms \(given\)' "--cost overrides a calibrated value" \
	$P run -s zb1p -p 8 -n 20 --cost-from "$T/measured.db" --cost W=2ms -o "$T/w.db"
expect_out 'messages: 64 MiB, as in .*measured.db' "the message size comes from the measured run" \
	$P run -s 1f1b -p 8 -n 20 --cost-from "$T/measured.db" -o "$T/size.db"
# a run whose transfers never queue fixes only latency + wire time; half of the link completes it
$P run -s 1f1b -p 4 -n 8 --link latency=8us,bandwidth=40GB/s --activation-bytes 64MiB -o "$T/nq.db" -q
expect_out 'latency 8.000 us, bandwidth 40 GB/s \(bandwidth given; latency: the median duration less' \
	"--link bandwidth completes a link that never queued" \
	$P run -s dualpipe -p 4 -n 8 --cost-from "$T/nq.db" --link bandwidth=40GB/s -o "$T/nq2.db"
expect_err 2 'missing.db: no such file' "--cost-from a missing trace" \
	$P run -s 1f1b -p 4 -n 8 --cost-from "$T/missing.db" -o "$T/x.db"
check "... writes nothing" test ! -e "$T/x.db"
printf 'not a database' >"$T/text.db"
expect_err 2 'text.db: not an SQLite database' "--cost-from a text file" \
	$P run -s 1f1b -p 4 -n 8 --cost-from "$T/text.db" -o "$T/x.db"

# stats shows the prediction and the idle breakdown
expect_out '^sim: +makespan 134\.747 ms, bubble ratio 51\.82%' "stats shows the sim's prediction" $P stats "$T/measured.db"
check "... with the calibrated costs" grep -q 'calibrated on this trace: F=1.300 ms B=2.100 ms' "$OUT"
check "... and an idle table" grep -Eq '^rank +bubble +warm-up +steady +cool-down +comm +dependency +other' "$OUT"
if python3 - "$T/measured.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["sim"]["makespan_ns"] == d["makespan_ns"]
keys = ("warmup_ns", "steady_ns", "cooldown_ns", "comm_wait_ns", "dependency_ns", "other_ns")
for r in d["per_rank"]:
    assert r["sim_bubble_ns"] == r["bubble_ns"]
    i = r["idle"]
    assert i["warmup_ns"] + i["steady_ns"] + i["cooldown_ns"] == r["bubble_ns"]
    assert i["comm_wait_ns"] + i["dependency_ns"] + i["other_ns"] == r["bubble_ns"]
    assert i["comm_wait_ns"] > 0 and i["other_ns"] == 0
assert sum(d["idle"][k] for k in keys[:3]) == d["bubble_ns"]
PY
then ok "stats --json: prediction equal to the sim run, idle split adding up to the bubble"
else notok "stats --json: prediction equal to the sim run, idle split adding up to the bubble"; fi
run $P stats --json --no-sim "$T/measured.db"
check "--no-sim leaves the prediction out" grep -q '"sim": null' "$OUT"
