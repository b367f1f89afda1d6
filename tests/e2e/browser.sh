#!/bin/sh
# tests/e2e/browser.sh — the HTML report in headless Chromium (Debian's
# chromium, driven by playwright-core from tests/browser/node_modules, which
# tests/browser/setup.sh installs): makes a report of a DualPipe run, a
# comparison of three schedules and a trace whose names are markup, then runs
# tests/browser/report.test.mjs on them. Screenshots are kept in
# $BUILD/test-artifacts/browser/. Without Chromium, Node or playwright-core
# each test skips with the reason.
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE
ROOT=${PT_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=$(cd "$(dirname "$P")" && pwd)
ART=$BIN/test-artifacts/browser
CHECKS="the report loads with no console errors
the report requests nothing from the network
the timeline shows one row per rank (8)
hovering the cell of F0:3 on r0 shows that op
hovering the cell of F0:7|B1:3 on r0 shows that op
W and Ctrl+wheel zoom in, dragging pans
in-flight activations peak as the metrics table says
no console errors after hover, zoom and pan
the comparison shows 3 traces on one timeline and in one table
names with markup run no script and make no elements
names with markup appear as text (title, stream label)
hovering a kernel named <script>alert(1)</script> shows the name as text"

reason=
if [ ! -x "${PT_CHROMIUM:-/usr/bin/chromium}" ]; then
	reason="Debian chromium is not installed (mk/deps.sh browser installs it, as root)"
elif ! command -v node >/dev/null 2>&1; then
	reason="Node.js is not installed (mk/deps.sh browser installs it, as root)"
elif [ ! -f "$ROOT/tests/browser/node_modules/playwright-core/package.json" ]; then
	reason="playwright-core is not installed in tests/browser/node_modules (tests/browser/setup.sh: npm ci)"
elif [ ! -x "$BIN/tools/mktrace" ]; then
	reason="$BIN/tools/mktrace is not built (make tests-build)"
fi
if [ -n "$reason" ]; then
	echo "$CHECKS" | while IFS= read -r what; do skip "$what" "$reason"; done
	exit 0
fi

L="--link latency=5us,bandwidth=100GB/s --activation-bytes 16MiB"
run $P run -s dualpipe -p 8 -n 20 $L -o "$T/dp.db" -q
[ "$RC" -eq 0 ] || notok "run dualpipe for the report"
for s in 1f1b zb1p; do $P run -s $s -p 8 -n 20 $L -o "$T/$s.db" -q || notok "run $s for the comparison"; done
expect_out "^wrote $T/report.html: 1 trace" "view --html writes the report" $P view "$T/dp.db" --html "$T/report.html"
expect_out "3 traces" "view --html of three traces writes one comparison" \
	$P view "$T/dp.db" "$T/1f1b.db" "$T/zb1p.db" --html "$T/compare.html"
"$BIN/tools/mktrace" markup "$T/markup.db" || notok "mktrace markup"
expect_out "1 trace" "view --html of a trace whose names are markup" $P view "$T/markup.db" --html "$T/markup.html"

mkdir -p "$ART"
cd "$ROOT/tests/browser" || exit 1
timeout 600 node report.test.mjs --report "$T/report.html" --ranks 8 --op 'F0:3' --pair 'F0:7|B1:3' \
	--compare "$T/compare.html" --traces 3 --markup "$T/markup.html" --artifacts "$ART" >"$T/tap" 2>&1
rc=$?
cat "$T/tap"
if [ $rc -ne 0 ] && ! grep -q '^not ok' "$T/tap"; then
	echo "not ok - the browser tests exited with status $rc"
fi
if [ -f "$ART/report.png" ]; then
	ok "screenshots kept in $ART"
else
	notok "screenshots kept in $ART"
fi
