#!/bin/sh
# Run every test: the cmocka unit binaries in $BUILD/tests, then the
# end-to-end CLI transcripts in tests/e2e. Both speak TAP; this script tallies
# them and ends with one line, "total: N passed, N failed, N skipped".
# A test that needs something absent (a GPU, MPI, Chromium) skips with the
# reason. Exit status: 0 when nothing failed.
BUILD=${BUILD:-build}
export PIPETRACE="$(cd "$(dirname "$0")/.." && pwd)/$BUILD/pipetrace"
export PT_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export CMOCKA_MESSAGE_OUTPUT=TAP
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	echo "# $(basename "$t")"
	"$t" >"$log" 2>&1
	rc=$?
	cat "$log"
	if [ $rc -ne 0 ] && ! grep -q '^not ok' "$log"; then
		echo "not ok - $(basename "$t") exited with status $rc"
	fi
done >"$log.all" 2>&1
for t in tests/e2e/*.sh; do
	[ "$(basename "$t")" = lib.sh ] && continue
	[ -f "$t" ] || continue
	echo "# $(basename "$t")"
	sh "$t" 2>&1
done >>"$log.all"
cat "$log.all"

pass=$(grep -c '^ok' "$log.all")
skip=$(grep -c '^ok.*# [Ss][Kk][Ii][Pp]' "$log.all")
fail=$(grep -c '^not ok' "$log.all")
pass=$((pass - skip))
rm -f "$log.all"
if [ "$fail" -gt 0 ]; then
	status=1
fi
if [ $((pass + fail + skip)) -eq 0 ]; then
	echo "no test ran"
	status=1
fi
echo "total: $pass passed, $fail failed, $skip skipped"
exit $status
