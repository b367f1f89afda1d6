#!/bin/sh
# make bench: every benchmark, one after the other, each printing its figures
# and the target it is held to. Benchmarks never run as tests: figures on a
# shared machine move from run to run, so each prints medians of several runs.
BUILD=${BUILD:-build}
set -e
echo "== planning and simulating (issue 2)"
"$BUILD/bench/bench_sim"
echo "== recording hot path (issue 2)"
"$BUILD/bench/bench_record"
echo "== writer thread into SQLite (issue 2)"
"$BUILD/bench/bench_writer"
echo "== import of a large Kineto trace (issue 8)"
"$BUILD/bench/bench_import"

echo "== cpu backend: GEMM peak, stage throughput, tracing overhead (issue 5)"
"$BUILD/bench/bench_cpu"

echo "== cuda backend: tracing overhead, comm overlap vs flush, bubble vs sim (issue 6)"
"$BUILD/bench/bench_cuda"

echo "== view: the HTML report and the terminal grid of a million events (issue 7)"
"$BUILD/bench/bench_view" --keep "$BUILD/bench-view"
if [ -x /usr/bin/chromium ] && [ -f tests/browser/node_modules/playwright-core/package.json ]; then
	html="$(cd "$BUILD/bench-view" && pwd)/big.html"
	(cd tests/browser && node bench.mjs "$html")
else
	echo "opening it in Chromium: skipped (no /usr/bin/chromium or playwright-core: mk/deps.sh browser, tests/browser/setup.sh)"
fi

echo "== export to Perfetto (issue 3), and the memory of stats at 512 and 2048 ranks"
"$BUILD/bench/bench_export" "$BUILD/pipetrace"
