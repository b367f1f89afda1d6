#!/bin/sh
# tests/e2e/check.sh — the CI gate as a CI job runs it: record a baseline
# with `stats --json`, check an identical run (passes), runs with a slower
# W, a schedule with more bubble and worse communication (each fails with
# exit 3 naming the metric), the JUnit XML (valid, one test case per metric)
# and the Markdown summary, and baselines that must be refused (exit 2).
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE

expect_out '^usage: pipetrace check' "check --help" $P check --help
expect_out 'makespan_ns=\+2%' "check --help lists the default tolerances" $P check --help

# the baseline and an identical run
$P run -s zb1p -p 4 -n 8 -o "$T/base.db" -q
$P stats --json "$T/base.db" >"$T/baseline.json"
$P run -s zb1p -p 4 -n 8 -o "$T/same.db" -q
expect_out '^all 9 metrics within tolerance' "an identical run passes" \
	$P check "$T/same.db" --baseline "$T/baseline.json" --junit "$T/same.xml" --markdown "$T/same.md"
check "... with a verdict per metric" test "$(grep -Ec ' (ok|n/a)$' "$OUT")" -eq 9
check "... and its JUnit XML has no failure" grep -q 'tests="9" failures="0"' "$T/same.xml"
check "... and its Markdown says so" grep -q 'all 9 metrics within tolerance' "$T/same.md"

# a slower W
$P run -s zb1p -p 4 -n 8 --cost W=2ms -o "$T/slow-w.db" -q
expect_err 3 'regressed against .*baseline.json: makespan_ns \(27\.000 ms -> 35\.000 ms\)' \
	"a slower W: exit 3 naming makespan_ns" \
	$P check "$T/slow-w.db" --baseline "$T/baseline.json" --junit "$T/slow-w.xml" --markdown "$T/slow-w.md"
check "... the table marks it" grep -Eq '^makespan_ns .* REGRESSION$' "$OUT"
expect_rc 0 "... a tolerance that allows it passes" \
	$P check "$T/slow-w.db" --baseline "$T/baseline.json" --tolerance makespan_ns=+30% -q

# JUnit: valid XML (two parsers), one test case per metric, numbers in the failure
if command -v xmllint >/dev/null; then
	expect_rc 0 "JUnit XML is well-formed (xmllint)" xmllint --noout "$T/slow-w.xml"
else
	skip "JUnit XML is well-formed (xmllint)" "no xmllint (Debian libxml2-utils)"
fi
if python3 - "$T/slow-w.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cases = root.findall(".//testcase")
names = [c.get("name") for c in cases]
assert names == ["makespan_ns", "bubble_ratio"] + ["rank_bubble_ns[%d]" % r for r in range(4)] + \
    ["overlap_ratio", "exposed_comm_ns", "peak_activations"], names
fails = [c for c in cases if c.find("failure") is not None]
assert [c.get("name") for c in fails] == ["makespan_ns"]
msg = fails[0].find("failure").get("message")
assert "baseline 27000000" in msg and "current 35000000" in msg and "allowed up to 27540000" in msg, msg
assert root.get("tests") == "9" and root.get("failures") == "1"
PY
then ok "JUnit XML: one test case per metric, the failure carries the numbers"; else notok "JUnit XML: one test case per metric, the failure carries the numbers"; fi
check "Markdown names the regression" grep -q '| `makespan_ns` | 27.000 ms | 35.000 ms | +8.000 ms (+29.63%) | +2% | .*regression' "$T/slow-w.md"

# a schedule with more bubble: the same 4 ranks and 8 microbatches, a worse order
$P schedule -s zb1p -p 4 -n 8 --format csv >"$T/ours.csv"
$P schedule -s 1f1b -p 4 -n 8 --format csv >"$T/edited.csv"
$P run --plan "$T/ours.csv" -o "$T/ours.db" -q
$P stats --json "$T/ours.db" >"$T/ours.json"
$P run --plan "$T/edited.csv" -o "$T/edited.db" -q
expect_err 3 'bubble_ratio \(0\.1111 -> 0\.2727\)' "a schedule with more bubble: exit 3 naming bubble_ratio" \
	$P check "$T/edited.db" --baseline "$T/ours.json"
check "... and every rank's bubble" test "$(grep -c '^rank_bubble_ns.*REGRESSION$' "$OUT")" -eq 4

# communication: overlap mode as the baseline, flush as the change
$P run -s 1f1b -p 4 -n 8 --comm overlap --link latency=10us,bandwidth=25GB/s --activation-bytes 16MiB \
	-o "$T/ov.db" -q
$P stats --json "$T/ov.db" >"$T/ov.json"
$P run -s 1f1b -p 4 -n 8 --comm flush --link latency=10us,bandwidth=25GB/s --activation-bytes 16MiB \
	-o "$T/fl.db" -q
expect_err 3 'overlap_ratio \([0-9.]+ -> [0-9.]+\), exposed_comm_ns' \
	"less overlap: exit 3 naming overlap_ratio and exposed_comm_ns" $P check "$T/fl.db" -b "$T/ov.json"

# a trace whose name needs escaping
mkdir -p "$T/a&b <c>"
cp "$T/slow-w.db" "$T/a&b <c>/it's \"odd\".db"
run $P check "$T/a&b <c>/it's \"odd\".db" -b "$T/baseline.json" --junit "$T/odd.xml" -q
if [ "$RC" -eq 3 ] && python3 -c "
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
assert r.find('.//property[@name=\"trace\"]').get('value').endswith('a&b <c>/it\'s \"odd\".db')
" "$T/odd.xml"; then ok "names are escaped in JUnit XML"; else notok "names are escaped in JUnit XML"; fi

# bad input: exit 2, a message naming the file and the fault, no report written
printf '{"schedule": "zb1p", "ranks": 4,, }' >"$T/broken.json"
expect_err 2 'broken.json: not valid JSON at byte 33 \(line 1, column 34\): invalid object key' "a malformed baseline" \
	$P check "$T/same.db" -b "$T/broken.json" --junit "$T/never.xml"
check "... writes no report" test ! -e "$T/never.xml"
head -c 200 "$T/baseline.json" >"$T/cut.json"
expect_err 2 'cut.json: not valid JSON at byte 200 .*premature EOF' "a truncated baseline" \
	$P check "$T/same.db" -b "$T/cut.json"
sed 's/"makespan_ns": [0-9]*/"makespan_ns": "27ms"/' "$T/baseline.json" >"$T/typed.json"
expect_err 2 'typed.json: makespan_ns: expected an integer, found a string' "a field of the wrong type" \
	$P check "$T/same.db" -b "$T/typed.json"
$P run -s 1f1b -p 4 -n 8 -o "$T/other.db" -q
expect_err 2 'is a baseline of zb1p, .*other.db is 1f1b: refusing to compare two schedules' \
	"a baseline of another schedule" $P check "$T/other.db" -b "$T/baseline.json"
$P run -s zb1p -p 8 -n 8 -o "$T/p8.db" -q
expect_err 2 'baseline of 4 ranks and 8 microbatches, .*p8.db has 8 ranks and 8: refusing' \
	"a baseline of another rank count" $P check "$T/p8.db" -b "$T/baseline.json"
$P run -s zb1p -p 4 -n 12 -o "$T/n12.db" -q
expect_err 2 'has 4 ranks and 12: refusing to compare runs of different sizes' \
	"a baseline of another microbatch count" $P check "$T/n12.db" -b "$T/baseline.json"
$P stats --json "$T/base.db" "$T/same.db" >"$T/two.json"
expect_err 2 'two.json: holds 2 traces' "a comparison is not a baseline" $P check "$T/same.db" -b "$T/two.json"
expect_err 2 'nothere.json: cannot read the baseline: No such file' "a missing baseline" \
	$P check "$T/same.db" -b "$T/nothere.json"
expect_err 2 'unknown metric .frob.' "an unknown tolerance" $P check "$T/same.db" -b "$T/baseline.json" -t frob=1
expect_err 2 'tolerance is written \+0.01' "a tolerance in the wrong direction" \
	$P check "$T/same.db" -b "$T/baseline.json" -t bubble_ratio=-0.01
expect_err 2 '--baseline FILE is required' "no baseline" $P check "$T/same.db"
expect_err 2 'cannot write here' "an unwritable report" \
	$P check "$T/same.db" -b "$T/baseline.json" --markdown "$T/no/such/dir/s.md"
check "no temporary file is left" sh -c "! ls '$T'/*.tmp* 2>/dev/null"
