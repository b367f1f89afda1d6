#!/bin/sh
# tests/e2e/export.sh — `pipetrace export` as a user runs it: the three
# formats of a DualPipe run, each decoded (protoc, json, csv) and checked
# against the database by check_export.py; filters; bad input; and broken
# files that the checker must refuse (so a passing check means something).
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE
CHECK="python3 $(dirname "$0")/check_export.py"
PROTO="$(dirname "$0")/../../exporters/perfetto_trace.proto"

expect_out '^usage: pipetrace export' "export --help" $P export --help
expect_out 'perfetto +Perfetto protobuf' "export --help lists the formats" $P export --help

run $P run -s dualpipe -p 8 -n 20 -o "$T/dp.db"
if ! command -v python3 >/dev/null || ! command -v protoc >/dev/null; then
	skip "export checks" "needs python3 and protoc (mk/deps.sh test installs them)"
	exit 0
fi

# the three formats, each checked against the database
expect_out '^exported 842 events to .*/dp.pftrace \(perfetto, ' "export to .pftrace" $P export "$T/dp.db" -o "$T/dp.pftrace"
expect_out '^ok: 842 slices, 280 flows, peak activations \{"0": 9, "1": 9, "2": 9, "3": 9, "4": 9, "5": 9, "6": 9, "7": 9\}' \
	"the .pftrace decodes with protoc and passes the structural check" $CHECK "$T/dp.pftrace" --db "$T/dp.db"
expect_out '^ok: 842 slices' "... its op slices carry the plan step, not what their names say" \
	$CHECK "$T/dp.pftrace" --db "$T/dp.db" --args brief
run $P stats --json "$T/dp.db"
check "... its activation counter peaks where stats says (9)" test "$(grep -c '"peak_activations": 9,' "$OUT")" -eq 8
expect_out '^exported 842 events .*chrome-json' "export to .json" $P export "$T/dp.db" -o "$T/dp.json"
expect_out '^ok: 842 slices, 280 flows, peak activations \{"0": 9' "the JSON parses and passes the structural check" \
	$CHECK "$T/dp.json" --db "$T/dp.db"
expect_out '^exported 842 events .*csv' "export to .csv" $P export "$T/dp.db" -o "$T/dp.csv"
expect_out '^ok: 842 slices' "the CSV has one row per event" $CHECK "$T/dp.csv" --db "$T/dp.db"
check "the CSV has a header row" sh -c "head -1 '$T/dp.csv' | grep -q '^rank,stream,stream_name,kind,name,start_ns,end_ns'"
expect_out '^exported 842 events to .*/dp.pftrace' "export without -o writes TRACE.pftrace" $P export "$T/dp.db" -f
expect_out '^exported 842 events .*csv' "--format overrides the extension" $P export "$T/dp.db" -o "$T/dp.data" --format csv
run $P export "$T/dp.db" -o - --format chrome-json
check "-o - writes JSON to stdout" python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['traceEvents']) > 842" "$OUT"

# overlapping transfers: a stream's slices spread over lanes that nest or keep apart
run $P run -s dualpipe -p 4 -n 10 --comm overlap --link latency=5us,bandwidth=50GB/s --activation-bytes 64MiB -o "$T/ov.db"
run $P export "$T/ov.db" -o "$T/ov.pftrace"
expect_out '^ok: 190 slices, 60 flows' "overlapping messages (.pftrace)" $CHECK "$T/ov.pftrace" --db "$T/ov.db"
run $P export "$T/ov.db" -o "$T/ov.json"
expect_out '^ok: 190 slices, 60 flows' "overlapping messages (.json)" $CHECK "$T/ov.json" --db "$T/ov.db"

# clocks that disagree: a RECV that begins before its SEND still gets its arrow
# (the flow ends as the RECV ends); one that ends before its SEND begins cannot
# have one, and the export says so
run $P run -s dualpipe -p 4 -n 8 --link latency=20us,bandwidth=10GB/s --activation-bytes 1MB -o "$T/sk.db"
sqlite3 "$T/sk.db" "UPDATE comms SET start_ns = start_ns - 50000 WHERE kind = 7 AND rank = 1 AND peer = 0 AND seq = 1;
	UPDATE comms SET start_ns = start_ns - 300000, end_ns = start_ns - 200000
	WHERE kind = 7 AND rank = 2 AND peer = 1 AND seq = 3;"
for f in pftrace json; do
	expect_err 0 "sk.db: 1 message arrow left out: the RECV ended before its SEND began" \
		"skewed clocks (.$f): the arrow that cannot be drawn is named" $P export "$T/sk.db" -o "$T/sk.$f"
	expect_out '^ok: 158 slices, 47 flows' "... and every other arrow is there, the early RECV's too (.$f)" \
		$CHECK "$T/sk.$f" --db "$T/sk.db"
done

# filters
expect_out '^exported [0-9]+ events' "--ranks 0-3,7" $P export "$T/dp.db" -o "$T/r.pftrace" --ranks 0-3,7
expect_out '^ok: [0-9]+ slices' "... exactly those ranks' events" $CHECK "$T/r.pftrace" --db "$T/dp.db" --ranks 0-3,7
run $P export "$T/dp.db" -o "$T/r1.pftrace" --ranks 5
expect_out '^ok: [0-9]+ slices' "--ranks 5: one rank, one reader thread" $CHECK "$T/r1.pftrace" --db "$T/dp.db" --ranks 5
run $P export "$T/dp.db" -o "$T/r2.pftrace" --ranks 4,3
expect_out '^ok: [0-9]+ slices, [1-9][0-9]* flows' "--ranks 4,3: two readers, a rank each, their messages paired" \
	$CHECK "$T/r2.pftrace" --db "$T/dp.db" --ranks 3,4
run $P export "$T/dp.db" -o "$T/w.json" --from 10ms --to 30.5ms
expect_out '^ok: [0-9]+ slices' "--from 10ms --to 30.5ms: the events in the window, the counter as in the whole trace" \
	$CHECK "$T/w.json" --db "$T/dp.db" --from 10000000 --to 30500000 --counter-ref "$T/dp.json"
run $P export "$T/dp.db" -o "$T/w.pftrace" --from 10ms --to 30.5ms
expect_out '^ok: [0-9]+ slices' "... the same in .pftrace" $CHECK "$T/w.pftrace" --db "$T/dp.db" --from 10000000 --to 30500000 \
	--counter-ref "$T/dp.pftrace"
run $P export "$T/dp.db" -o "$T/k.pftrace" --kinds F,FB,SEND
expect_out '^ok: [0-9]+ slices, 0 flows' "--kinds F,FB,SEND (no RECV: no message flows)" \
	$CHECK "$T/k.pftrace" --db "$T/dp.db" --kinds F,FB,SEND
run $P export "$T/dp.db" -o "$T/na.pftrace" --no-args
expect_out '^ok: 842 slices, 280 flows' "--no-args still passes, without annotations" \
	$CHECK "$T/na.pftrace" --db "$T/dp.db" --args none
check "... and is smaller" test "$(wc -c <"$T/na.pftrace")" -lt "$(wc -c <"$T/dp.pftrace")"
run $P export "$T/dp.db" -o "$T/aa.pftrace" --all-args
expect_out '^ok: 842 slices, 280 flows' "--all-args: every annotation (kind, chunk, mb, ...) on every op slice" \
	$CHECK "$T/aa.pftrace" --db "$T/dp.db" --args all
check "... and is larger" test "$(wc -c <"$T/aa.pftrace")" -gt "$(wc -c <"$T/dp.pftrace")"
expect_out '^FAIL: .*brief ones leave out' "checker: annotations a name says fail the brief check" \
	sh -c "$CHECK $T/aa.pftrace --db $T/dp.db --args brief; true"
expect_out 'note: the selection is empty' "an empty selection says so" $P export "$T/dp.db" -o "$T/e.csv" --ranks 50

# bad input: a clear message, exit 2, nothing written
expect_err 2 "unknown format 'protobuf'" "an unknown --format" $P export "$T/dp.db" -o "$T/bad1.pftrace" --format protobuf
expect_err 2 "cannot tell the format from the extension '.txt'" "an unknown extension" $P export "$T/dp.db" -o "$T/bad2.txt"
expect_err 2 "/nonexistent/x.pftrace: cannot write here" "an unwritable output" $P export "$T/dp.db" -o /nonexistent/x.pftrace
head -c 20000 "$T/dp.db" >"$T/trunc.db"
expect_err 2 "trunc.db: truncated database" "a truncated database" $P export "$T/trunc.db" -o "$T/bad3.pftrace"
printf 'not a database\n' >"$T/text.db"
expect_err 2 "text.db: not an SQLite database" "a text file" $P export "$T/text.db" -o "$T/bad4.json"
expect_err 2 "missing.db: no such file" "a missing database" $P export "$T/missing.db" -o "$T/bad5.csv"
cp "$T/dp.db" "$T/wide.db"
sqlite3 "$T/wide.db" "UPDATE comms SET end_ns = 4611686018427387904 WHERE rank = 3 AND seq = 2 AND kind = 6"
expect_err 2 "wide.db: damaged trace: a row of 'comms' \(rank 3\) has end_ns 4611686018427387904" \
	"a time no run has (2^62 ns): damage, named" $P export "$T/wide.db" -o "$T/bad9.pftrace"
expect_err 2 "wide.db: damaged trace: a row of 'comms'" "... by stats too" $P stats "$T/wide.db"
cp "$T/dp.db" "$T/negrank.db"
sqlite3 "$T/negrank.db" "UPDATE comms SET rank = -2147483648 WHERE rank = 1 AND seq = 0 AND kind = 7"
expect_err 2 "negrank.db: damaged trace: 'comms' has rank -2147483648 \(ranks are 0 to 1048576\)" \
	"a rank no run has: damage, named (not a walk over four billion ranks)" $P export "$T/negrank.db" -o "$T/bad11.csv"
cp "$T/dp.db" "$T/theory.db"
sqlite3 "$T/theory.db" "UPDATE ranks SET theory_bubble_ns = 1e308 WHERE rank = 1"
expect_err 2 "theory.db: damaged trace: rank 1's theory_bubble_ns is 9223372036854775807" \
	"a formula's bubble no run has: damage, named (stats would overflow its sum)" $P stats "$T/theory.db"
cp "$T/dp.db" "$T/widekind.db"
sqlite3 "$T/widekind.db" "UPDATE ops SET kind = 257 WHERE rank = 2 AND step = (SELECT min(step) FROM ops WHERE rank = 2)"
expect_err 2 "widekind.db: damaged trace: a row of 'ops' \(rank 2\) has kind 257" \
	"a kind wider than a byte (it would read as F): damage, named" $P export "$T/widekind.db" -o "$T/bad10.csv"
expect_err 2 "already exists; pass --force" "an existing output is kept" $P export "$T/dp.db" -o "$T/dp.json"
expect_err 2 "--ranks: '1-x' is not a list of ranks" "bad --ranks" $P export "$T/dp.db" -o "$T/bad6.csv" --ranks 1-x
expect_err 2 "--kinds: unknown kind 'Q'" "bad --kinds" $P export "$T/dp.db" -o "$T/bad7.csv" --kinds F,Q
expect_err 2 "'soon' is not a duration" "bad --from" $P export "$T/dp.db" -o "$T/bad8.csv" --from soon
check "no output, no temporary file after the refusals" sh -c "! ls $T/bad* $T/*tmp-* /nonexistent 2>/dev/null"

# the checker refuses broken files
head -c 30000 "$T/dp.pftrace" >"$T/cut.pftrace"
expect_rc 1 "checker: a truncated .pftrace fails" $CHECK "$T/cut.pftrace" --db "$T/dp.db"
protoc --decode=perfetto.protos.Trace -I "$(dirname "$PROTO")" "$(basename "$PROTO")" <"$T/dp.pftrace" >"$T/dp.txt"
# drop the n-th packet that matches a pattern, and encode the text again
drop() {
	python3 - "$T/dp.txt" "$1" "$2" >"$T/edit.txt" <<'PY'
import sys
text = open(sys.argv[1]).read().split("\npacket {")
pat, n = sys.argv[2], int(sys.argv[3])
hits = [i for i, p in enumerate(text) if pat in p]
del text[hits[n]]
sys.stdout.write("\npacket {".join(text))
PY
	protoc --encode=perfetto.protos.Trace -I "$(dirname "$PROTO")" "$(basename "$PROTO")" <"$T/edit.txt" >"$3"
}
drop TYPE_SLICE_END 5 "$T/noend.pftrace"
expect_out '^FAIL: .*never end' "checker: a missing SLICE_END fails" sh -c "$CHECK $T/noend.pftrace --db $T/dp.db; true"
drop 'name: "p2p"' 0 "$T/nodesc.pftrace"
expect_out '^FAIL: .*used before it was described' "checker: a track used before its descriptor fails" \
	sh -c "$CHECK $T/nodesc.pftrace --db $T/dp.db; true"
drop 'terminating_flow_ids' 3 "$T/noflow.pftrace"
expect_out '^FAIL: ' "checker: a message flow that never arrives fails" sh -c "$CHECK $T/noflow.pftrace --db $T/dp.db; true"
python3 - "$T/dp.json" "$T/renamed.json" "$T/nof.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
x = [e for e in d["traceEvents"] if e["ph"] == "X"][10]
x["name"] += "x"
json.dump(d, open(sys.argv[2], "w"))
d = json.load(open(sys.argv[1]))
f = [i for i, e in enumerate(d["traceEvents"]) if e["ph"] == "f"][3]
del d["traceEvents"][f]
json.dump(d, open(sys.argv[3], "w"))
PY
expect_out '^FAIL: .*unexpected' "checker: a renamed slice fails (names round-trip)" sh -c "$CHECK $T/renamed.json --db $T/dp.db; true"
expect_out '^FAIL: .*never arrives' "checker: a JSON flow without its f fails" sh -c "$CHECK $T/nof.json --db $T/dp.db; true"
sed '5d' "$T/dp.csv" >"$T/short.csv"
expect_out '^FAIL: .*841 slices exported, 842 rows' "checker: a CSV missing a row fails" sh -c "$CHECK $T/short.csv --db $T/dp.db; true"
