#!/bin/sh
# tests/e2e/view.sh — `pipetrace view` and `schedule --grid` as a user runs
# them: the grid of the demo run read back against the plan, colour only on a
# terminal (and never with NO_COLOR), the width, several traces on one scale,
# the HTML report's file handling, and bad input.
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE

expect_out '^usage: pipetrace view' "view --help" $P view --help
expect_out '--grid' "schedule --help tells of --grid" $P schedule --help

$P run -s dualpipe -p 8 -n 20 -o "$T/demo.db" -q || notok "run the demo"

# the demo run's grid, read back, is the plan's op order on every rank
run $P view "$T/demo.db" --width 300
cp "$OUT" "$T/grid.txt"
run $P schedule -s dualpipe -p 8 -n 20
cp "$OUT" "$T/plan.txt"
if python3 - "$T/grid.txt" "$T/plan.txt" <<'PY'
import re, sys
grid = {}
for line in open(sys.argv[1]):
    m = re.match(r"^r(\d+) +", line)
    if m:
        grid[int(m.group(1))] = re.findall(r"[FBIW]\d+:\d+(?:\|B\d+:\d+)?", line[9:])
plan = {}
for line in open(sys.argv[2]):
    m = re.match(r"^r(\d+): (.*)", line)
    if m:
        plan[int(m.group(1))] = m.group(2).split()
assert sorted(grid) == list(range(8)) == sorted(plan), (sorted(grid), sorted(plan))
for r in plan:
    assert grid[r] == plan[r], "r%d: grid %s\n plan %s" % (r, grid[r], plan[r])
PY
then ok "the demo run's grid reads back as the plan's op order on every rank"
else notok "the demo run's grid reads back as the plan's op order on every rank"; fi

check "8 rank rows" test "$(grep -c '^r[0-7] ' "$T/grid.txt")" -eq 8
check "not a terminal: no escape codes" sh -c "! grep -q \"$(printf '\033')\" '$T/grid.txt'"
check "the legend and the measured bubble against the theory" \
	grep -q 'bubble ratio 9.09% (theory 9.09%, (P/2-1)(FB+B-3W))' "$T/grid.txt"
run $P view "$T/demo.db" --color always
check "--color always colours" grep -q "$(printf '\033')\[48;5;" "$OUT"
if command -v script >/dev/null 2>&1; then
	script -qec "$P view '$T/demo.db' --width 100" /dev/null >"$T/tty.txt" 2>&1
	check "on a terminal: colour" grep -q "$(printf '\033')\[48;5;" "$T/tty.txt"
	NO_COLOR=1 script -qec "$P view '$T/demo.db' --width 100" /dev/null >"$T/nocolor.txt" 2>&1
	check "on a terminal with NO_COLOR: no escape codes" sh -c "! grep -q \"$(printf '\033')\" '$T/nocolor.txt'"
	check "... and still the grid" test "$(grep -c '^r[0-7] ' "$T/nocolor.txt")" -eq 8
else
	skip "on a terminal: colour" "no script(1) to make a terminal"
	skip "on a terminal with NO_COLOR: no escape codes" "no script(1) to make a terminal"
	skip "... and still the grid" "no script(1) to make a terminal"
fi
widest() { awk '/^(r[0-9]|time)/ { if (length($0) > w) w = length($0) } END { print w }' "$1"; }
COLUMNS=90 $P view "$T/demo.db" >"$T/c90.txt"
check "COLUMNS=90: rows fit in 90 columns" test "$(widest "$T/c90.txt")" -le 90
$P view "$T/demo.db" --width 70 >"$T/w70.txt"
check "--width 70: rows fit in 70 columns" test "$(widest "$T/w70.txt")" -le 70
run $P view "$T/demo.db" --width 40
check "too narrow: the legend says which width shows every op" grep -q 'too short for a column.*--width 75' "$OUT"
run $P view "$T/demo.db" --comm --width 100
check "--comm: a message lane under each rank" test "$(grep -c '^  p2p ' "$OUT")" -eq 8

# a plan alone draws the same rows as its recorded run
run $P schedule -s dualpipe -p 8 -n 20 --grid --width 300
grep '^r[0-7] ' "$OUT" >"$T/plan-grid.txt"
grep '^r[0-7] ' "$T/grid.txt" >"$T/run-grid.txt"
check "schedule --grid draws the rows view draws for its run" cmp -s "$T/plan-grid.txt" "$T/run-grid.txt"
expect_out 'bubble ratio 11.11% \(theory 11.11%' "schedule --grid on zb1p" $P schedule -s zb1p -p 4 -n 8 --grid

# several traces on one time scale
$P run -s 1f1b -p 8 -n 20 -o "$T/1f1b.db" -q
run $P view "$T/demo.db" "$T/1f1b.db" --width 120
check "two traces, two grids" test "$(grep -c '^dualpipe - \|^1f1b - ' "$OUT")" -eq 2
check "... on one time scale (the same axis twice)" test "$(grep '^time' "$OUT" | sort -u | wc -l)" -eq 1

# the HTML report
expect_out "^wrote $T/r.html: 1 trace, 842 events" "view --html" $P view "$T/demo.db" --html "$T/r.html"
check "one self-contained file: the page's two scripts and nothing fetched" \
	sh -c "test \$(grep -o '<script' '$T/r.html' | wc -l) -eq 2 && ! grep -Eq '(src|href)=\"?(https?:|//)' '$T/r.html'"
check "no temporary file left" sh -c "! ls '$T' | grep -q 'tmp-'"
cp "$T/r.html" "$T/r.before"
expect_err 2 "already exists; pass --force" "an existing report is kept" $P view "$T/demo.db" --html "$T/r.html"
check "... unchanged" cmp -s "$T/r.html" "$T/r.before"
expect_out "2 traces" "--force replaces it, with two traces" $P view "$T/demo.db" "$T/1f1b.db" --html "$T/r.html" -f
expect_err 2 "cannot write here" "an unwritable report" $P view "$T/demo.db" --html "$T/no/such/dir/r.html"
check "... leaves nothing" test ! -e "$T/no"

# bad input
expect_err 2 "which trace" "no trace" $P view
expect_err 2 "missing.db: no such file" "a missing trace" $P view "$T/missing.db"
printf 'not a database\n' >"$T/text.db"
expect_err 2 "text.db: not an SQLite database" "a text file" $P view "$T/text.db"
expect_err 2 "--color must be auto, always or never" "a bad --color" $P view "$T/demo.db" --color sometimes
expect_err 2 "out of range" "a bad --width" $P view "$T/demo.db" --width 5
expect_err 2 "dualpipe needs an even number of ranks" "schedule --grid of an impossible plan" \
	$P schedule -s dualpipe -p 5 -n 20 --grid
