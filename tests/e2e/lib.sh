# tests/e2e/lib.sh — a tiny TAP harness for CLI transcripts. Each check
# prints "ok - what" or "not ok - what" with the command's output after it.
# Sourced by every tests/e2e/*.sh; $PIPETRACE is the binary under test.
set -u
: "${PIPETRACE:=build/pipetrace}"
T=$(mktemp -d "${TMPDIR:-/tmp}/pt-e2e-XXXXXX")
trap 'rm -rf "$T"' EXIT
OUT="$T/out"
ERR="$T/err"

ok() { echo "ok - $1"; }
notok() {
	echo "not ok - $1"
	[ -s "$OUT" ] && sed 's/^/#   out: /' "$OUT" | head -20
	[ -s "$ERR" ] && sed 's/^/#   err: /' "$ERR" | head -20
	return 0
}
skip() { echo "ok - $1 # SKIP $2"; }

# run CMD...: run it, keeping stdout in $OUT, stderr in $ERR and status in $RC
run() {
	"$@" >"$OUT" 2>"$ERR"
	RC=$?
}

# expect_rc N WHAT CMD...: the command exits with status N
expect_rc() {
	want=$1 what=$2
	shift 2
	run "$@"
	if [ "$RC" -eq "$want" ]; then ok "$what"; else notok "$what (exit $RC, expected $want)"; fi
}

# expect_err N PATTERN WHAT CMD...: exits N and stderr matches PATTERN (grep -E)
expect_err() {
	want=$1 pat=$2 what=$3
	shift 3
	run "$@"
	if [ "$RC" -eq "$want" ] && grep -Eq -- "$pat" "$ERR"; then
		ok "$what"
	else
		notok "$what (exit $RC, expected $want, stderr should match /$pat/)"
	fi
}

# expect_out PATTERN WHAT CMD...: exits 0 and stdout matches PATTERN
expect_out() {
	pat=$1 what=$2
	shift 2
	run "$@"
	if [ "$RC" -eq 0 ] && grep -Eq -- "$pat" "$OUT"; then
		ok "$what"
	else
		notok "$what (exit $RC, stdout should match /$pat/)"
	fi
}

# check WHAT CMD...: a plain shell condition
check() {
	what=$1
	shift
	if "$@" >/dev/null 2>&1; then ok "$what"; else notok "$what"; fi
}
