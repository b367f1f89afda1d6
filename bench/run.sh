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
echo "== export to Perfetto (issue 3)"
"$BUILD/bench/bench_export" "$BUILD/pipetrace"
