#!/bin/sh
# tests/e2e/cli.sh — the CLI as a user runs it: help, version, schedule,
# run, stats, the CSV round trip, and what happens to bad input.
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE

expect_out '^usage: pipetrace <command>' "pipetrace --help" $P --help
expect_err 2 'usage: pipetrace' "no command: usage on stderr, exit 2" $P
expect_err 2 "'frobnicate' is not a command" "an unknown command" $P frobnicate
expect_out '^pipetrace [0-9]+\.[0-9]+\.[0-9]+' "--version" $P --version
expect_out '^  [+-](cuda|mpi)' "--version lists the optional features" $P --version
for c in schedule run stats merge; do
	expect_out "^usage: pipetrace $c" "$c --help" $P $c --help
done
expect_err 2 "unknown option" "an unknown option" $P run --frob

# schedule: the spec's notation, one line per rank
expect_out '^r0: F0:0 F0:1 F0:2 F0:3 F0:4 F0:5 F0:6 F1:0 I1:0 W1:0' "schedule dualpipe 8 x 20" \
	$P schedule --schedule dualpipe --ranks 8 --microbatches 20
check "schedule prints 8 rank lines" test "$(grep -c '^r[0-7]:' "$OUT")" -eq 8
expect_out '^ok: dualpipe, 8 ranks, 20 microbatches' "schedule --validate" \
	$P schedule -s dualpipe -p 8 -n 20 --validate
expect_out '\[sA0:0>1\]' "schedule --comms shows the batches" $P schedule -s dualpipe -p 4 -n 10 --comms

# run + stats
expect_out 'recorded dualpipe on 8 ranks, 20 microbatches .* makespan 66.000 ms' "run dualpipe on sim" \
	$P run -s dualpipe -p 8 -n 20 -o "$T/dp.db"
expect_out 'bubble ratio +9\.09% \(theory +9\.09%\)' "stats shows measured and theory" $P stats "$T/dp.db"
check "stats has a row per rank" test "$(sed '/^idle:/q' "$OUT" | grep -c '^r[0-9]')" -eq 8
run $P stats --json "$T/dp.db"
if python3 - "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("schedule", "ranks", "microbatches", "makespan_ns", "bubble_ratio", "overlap_ratio", "per_rank", "theory"):
    assert k in d, k
assert d["schedule"] == "dualpipe" and d["ranks"] == 8 and d["microbatches"] == 20
assert d["makespan_ns"] == 66_000_000
for r in d["per_rank"]:
    for k in ("rank", "busy_ns", "bubble_ns", "comm_ns", "exposed_comm_ns", "peak_activations"):
        assert k in r, k
    assert r["bubble_ns"] == 6_000_000 and r["peak_activations"] == 9
assert d["theory"]["bubble_ns_per_rank"] == 6_000_000 and d["theory"]["peak_activations"] == 9
assert d["overlap_ratio"] is None  # free links: no communication time
PY
then ok "stats --json has the documented fields and values"; else notok "stats --json has the documented fields and values"; fi

# link costs make communication visible
run $P run -s 1f1b -p 4 -n 8 --comm overlap --link latency=10us,bandwidth=25GB/s --activation-bytes 16MiB -o "$T/l.db"
expect_out 'overlap +[0-9.]+%' "overlap ratio with costly links" $P stats "$T/l.db"

# the torch CSV round trip: generated 1f1b -> CSV -> run --plan gives the same makespan
run $P schedule -s zb1p -p 4 -n 8 --format csv
cp "$OUT" "$T/zb.csv"
check "CSV has 4 rows" test "$(wc -l <"$T/zb.csv")" -eq 4
run $P run --plan "$T/zb.csv" -o "$T/csv.db"
expect_out 'makespan 27.000 ms' "run --plan reads the CSV back (ZB-H1 makespan)" $P run --plan "$T/zb.csv" -o "$T/csv.db" -f
expect_err 2 "places every stage on two ranks" "dualpipe refuses to be written as CSV" \
	$P schedule -s dualpipe -p 4 -n 8 --format csv

# bad input: a clear message, exit 2, nothing written
expect_err 2 "dualpipe needs an even number of ranks" "odd ranks for dualpipe" \
	$P run -s dualpipe -p 5 -n 20 -o "$T/bad1.db"
check "no output after a refused run" test ! -e "$T/bad1.db"
expect_err 2 "at least 2 x ranks" "too few microbatches" $P run -s dualpipe -p 8 -n 10 -o "$T/bad2.db"
check "no output after a refused run (2)" test ! -e "$T/bad2.db"
expect_err 2 "unknown schedule 'chimera'" "an unknown schedule" $P run -s chimera -p 4 -n 8 -o "$T/bad3.db"
expect_err 2 "'fast' is not a duration" "a bad --cost" $P run -s 1f1b -p 2 -n 2 --cost F=fast -o "$T/bad4.db"
expect_err 2 "unknown op 'X'" "an unknown --cost op" $P run -s 1f1b -p 2 -n 2 --cost X=1ms -o "$T/bad5.db"
expect_err 2 "nonexistent.csv: No such file" "a missing plan file" $P run --plan "$T/nonexistent.csv" -o "$T/bad6.db"
check "no output after refused runs" sh -c "! ls $T/bad*.db 2>/dev/null"
expect_err 2 "already exists; pass --force" "an existing output is kept" $P run -s 1f1b -p 2 -n 2 -o "$T/dp.db"
expect_out 'bubble ratio' "... and still a good trace" $P stats "$T/dp.db"
expect_err 2 "cannot write here" "an unwritable output" $P run -s 1f1b -p 2 -n 2 -o /nonexistent/x.db

expect_err 2 "missing.db: no such file" "stats on a missing file" $P stats "$T/missing.db"
printf 'this is not a database\n' >"$T/text.db"
expect_err 2 "text.db: not an SQLite database" "stats on a text file" $P stats "$T/text.db"
if command -v sqlite3 >/dev/null; then
	sqlite3 "$T/other.db" "CREATE TABLE t(x); INSERT INTO t VALUES (1);"
	expect_err 2 "other.db: an SQLite database, but not a pipetrace trace" "stats on another program's database" \
		$P stats "$T/other.db"
else
	skip "stats on another program's database" "no sqlite3 shell"
fi
head -c 20000 "$T/dp.db" >"$T/trunc.db"
expect_err 2 "trunc.db: truncated database" "stats on a truncated trace" $P stats "$T/trunc.db"

# merge: two traces holding the same ranks are not one run
cp "$T/dp.db" "$T/dp2.db"
expect_err 2 "rank 0 is in both" "merge refuses traces that share a rank" \
	$P merge "$T/dp.db" "$T/dp2.db" -o "$T/merged.db"
expect_err 2 "are not from one run: schedule is 'dualpipe' in one and 'csv'" "merge refuses traces of two runs" \
	$P merge "$T/dp.db" "$T/csv.db" -o "$T/merged.db"
check "no output after a refused merge" test ! -e "$T/merged.db"
expect_err 2 "say where the merged trace goes" "merge without -o" $P merge "$T/dp.db"
