#!/bin/sh
# tests/e2e/plan.sh — `stats` on traces whose stored plan is corrupt or
# foreign (the plan, chunks and meta tables edited with the sqlite3 shell):
# the measurement is shown, exit 0, and the sim's prediction is refused with
# a warning naming the file and what is wrong with the plan, never a crash.
# (pt_plan_from_trace rebuilt such plans and the validator indexed by them.)
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE

if ! command -v sqlite3 >/dev/null; then
	skip "stats on traces with a corrupt stored plan" "no sqlite3 shell"
	exit 0
fi

# DualPipe P=4: rank 0's chunk 1 is pipeline 1, stage 3, the last of the
# validator's counts; microbatch 3 is its last
run $P run -s dualpipe -p 4 -n 8 --backend sim -o "$T/t.db"
if [ "$RC" -ne 0 ]; then
	notok "record a small DualPipe trace"
	exit 0
fi
LAST="rank = 0 AND step = (SELECT min(step) FROM plan WHERE rank = 0 AND kind IN (1, 5) AND chunk = 1 AND mb = 3)"

# corrupt NAME SQL: a copy of the trace with SQL applied, as $T/NAME.db
corrupt() {
	cp "$T/t.db" "$T/$1.db"
	sqlite3 "$T/$1.db" "$2"
}

# refused NAME PATTERN WHAT: stats on $T/NAME.db shows the measurement,
# exits 0, has no sim line, and says on stderr why the plan was refused
refused() {
	run $P stats "$T/$1.db"
	if [ "$RC" -eq 0 ] && grep -q '^window' "$OUT" && ! grep -q '^sim:' "$OUT" &&
		grep -Eq -- "$2" "$ERR" && grep -q "warning: .*$1.db: no sim prediction" "$ERR"; then
		ok "$3"
	else
		notok "$3 (exit $RC, expected 0 without a prediction; stderr should match /$2/)"
	fi
}

expect_out '^sim: +makespan 26\.000 ms' "... has its prediction" $P stats "$T/t.db"

# kinds no plan holds: activity (RANGE=13, KERNEL=8) and unknown ones
corrupt range "UPDATE plan SET kind = 13 WHERE $LAST"
refused range "invalid plan: rank 0, step [0-9]+ \(RANGE\): a RANGE is activity below the ops" \
	"an op turned into a RANGE is refused at its step"
check "... the stored plan is named as the problem" grep -q "range.db: the stored plan above is invalid" "$ERR"
corrupt kernel "UPDATE plan SET kind = 8 WHERE rank = 2 AND step = 0"
refused kernel "invalid plan: rank 2, step 0 \(KERNEL\): a KERNEL is activity" "an op turned into a KERNEL"
corrupt unknown "UPDATE plan SET kind = 77 WHERE rank = 1 AND step = 4"
refused unknown "invalid plan: rank 1, step 4 \(\?\): unknown op kind 77" "an op of an unknown kind"
run $P stats --json "$T/range.db"
check "stats --json: \"sim\" is null when the plan is refused" \
	python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["sim"] is None' "$OUT"

# the chunks table: a row missing, a chunk moved onto another's stage or off the plan
corrupt nochunk "DELETE FROM chunks WHERE rank = 2 AND chunk = 1"
refused nochunk "nochunk.db: rank 2 describes 1 chunks, meta says 2" "a chunk missing from the chunks table"
corrupt shared "UPDATE chunks SET stage = 3 WHERE rank = 3 AND chunk = 1"
refused shared "invalid plan: rank 0, chunk 1 and rank 3, chunk 1 both sit at pipeline 1, stage 3" \
	"two chunks at one stage"
corrupt offplan "UPDATE chunks SET pipe = 2 WHERE rank = 1 AND chunk = 0"
refused offplan "offplan.db: rank 1 chunk 0 sits at an impossible stage" "a chunk past the plan's pipelines"
corrupt hugestages "UPDATE meta SET value = '4611686018427387904' WHERE key = 'stages'"
refused hugestages "hugestages.db: 2 pipeline\(s\) of 4611686018427387904 stages cannot sit on 4 ranks" \
	"a stage count that would overflow the layout's product"
corrupt stages "UPDATE meta SET value = '1000000000' WHERE key = 'stages'"
refused stages "stages.db: 2 pipeline\(s\) of 1000000000 stages cannot sit on 4 ranks of 2 chunks" \
	"meta's stage count disagreeing with the chunks"

# ops naming what does not exist
corrupt bigmb "UPDATE plan SET mb = 100000 WHERE $LAST"
refused bigmb "bigmb.db: rank 0, step [0-9]+ \(F1:100000.*\): microbatch 100000, but the run has 8" \
	"a microbatch past the run's count"
corrupt negchunk "UPDATE plan SET chunk = -1 WHERE $LAST"
refused negchunk "invalid plan: rank 0, step [0-9]+ \([^)]*\): chunk -1 does not exist" "a negative chunk"
corrupt bigchunk "UPDATE plan SET chunk = 2 WHERE $LAST"
refused bigchunk "chunk 2 does not exist \(this plan has 2 per rank\)" "a chunk past the rank's"
corrupt peer "UPDATE plan SET peer = 99 WHERE rank = 0 AND step = (SELECT min(step) FROM plan WHERE rank = 0 AND kind = 6)"
refused peer "invalid plan: rank 0, step [0-9]+ \(sA.*>99\): peer rank 99 is not another rank" "a peer past the ranks"
corrupt payload "UPDATE plan SET payload = 5 WHERE rank = 1 AND kind IN (6, 7)"
refused payload "payload 5 is neither an activation nor a gradient" "a message carrying neither"

# values wider than the plan's fields hold: a corrupt trace, refused by the
# reader itself (kind 257 would read back as F, chunk 65536 as 0)
corrupt widekind "UPDATE plan SET kind = 257 WHERE rank = 1 AND step = 4"
expect_err 2 "widekind.db: the plan of rank 1, step 4: kind 257 is out of range" "a kind wider than a byte" \
	$P stats "$T/widekind.db"
corrupt widechunk "UPDATE plan SET chunk = 65536 WHERE $LAST"
expect_err 2 "widechunk.db: the plan of rank 0, step [0-9]+: chunk 65536 is out of range" \
	"a chunk wider than 16 bits" $P view --html "$T/widechunk.html" "$T/widechunk.db"
check "... and no report is left" test ! -e "$T/widechunk.html"
