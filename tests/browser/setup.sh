#!/bin/sh
# tests/browser/setup.sh — install playwright-core, at the exact version
# package.json pins (it has no dependencies of its own), into
# tests/browser/node_modules (git-ignored) with npm. It never downloads a
# browser: playwright-core ships none, and the tests launch Debian's
# /usr/bin/chromium. Run by `make test`; when npm or its registry is not
# there it says so and the browser tests skip with the reason.
set -u
cd "$(dirname "$0")" || exit 0
want=$(sed -n 's/.*"playwright-core": *"\([^"]*\)".*/\1/p' package.json | head -n 1)
have=$(node -p "require('./node_modules/playwright-core/package.json').version" 2>/dev/null || true)
[ -n "$want" ] && [ "$have" = "$want" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
	echo "tests/browser/setup.sh: npm is not installed (mk/deps.sh browser): the browser tests will skip" >&2
	exit 0
fi
echo "tests/browser/setup.sh: installing playwright-core $want into tests/browser/node_modules"
if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --loglevel=error >/dev/null; then
	echo "tests/browser/setup.sh: npm install failed: the browser tests will skip" >&2
fi
exit 0
