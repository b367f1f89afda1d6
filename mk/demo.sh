#!/bin/sh
# make demo: DualPipe on 8 ranks with 20 microbatches on the embedded sim
# backend — its plan, a recorded trace, and the metrics beside the spec's
# formulas; then the same schedule over costly links, flush vs overlap; the
# CI gate and a what-if on measured costs; DeepSeek's published profile
# imported; the cpu backend for real; the grid and the HTML report; the
# Perfetto and Chrome JSON exports. Everything lands in $2 (demo/).
set -e
PT=$1
D=$2
mkdir -p "$D"
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

say "The plan: pipetrace schedule --schedule dualpipe --ranks 8 --microbatches 20 --steps"
"$PT" schedule --schedule dualpipe --ranks 8 --microbatches 20 --steps

say "The run: pipetrace run ... --backend sim -o $D/trace.db"
"$PT" run --schedule dualpipe --ranks 8 --microbatches 20 --backend sim -o "$D/trace.db" --force

say "The metrics: pipetrace stats $D/trace.db"
"$PT" stats "$D/trace.db"
"$PT" stats --json "$D/trace.db" >"$D/stats.json"

say "Over 50 GB/s links with 5 us latency and 16 MiB activations: DualPipe's flush vs overlap"
for mode in flush overlap; do
	"$PT" run -s dualpipe -p 8 -n 20 --comm $mode --link latency=5us,bandwidth=50GB/s \
		--activation-bytes 16MiB -o "$D/trace-$mode.db" --force --quiet
	"$PT" stats "$D/trace-$mode.db" | sed -n '1,2p'
done
printf '\nWritten: %s/trace.db, %s/stats.json, %s/trace-flush.db, %s/trace-overlap.db\n' "$D" "$D" "$D" "$D"

say "The CI gate: pipetrace check $D/trace.db --baseline $D/stats.json (the run against its own baseline)"
"$PT" check "$D/trace.db" --baseline "$D/stats.json" --junit "$D/check.xml" --markdown "$D/check.md"

say "Choosing a schedule: ZB-H1 and 1F1B on the costs measured on the overlap run, beside DualPipe"
for s in zb1p 1f1b; do
	"$PT" run -s $s -p 8 -n 20 --comm overlap --cost-from "$D/trace-overlap.db" \
		-o "$D/whatif-$s.db" --force --quiet
done
"$PT" stats "$D/trace-overlap.db" "$D/whatif-zb1p.db" "$D/whatif-1f1b.db"
printf '\nWritten: %s/check.xml, %s/check.md, %s/whatif-zb1p.db, %s/whatif-1f1b.db\n' "$D" "$D" "$D" "$D"

say "A real profile: DeepSeek's DualPipe F&B chunk pair on an H800 (PyTorch profiler JSON): pipetrace import"
"$PT" import tests/data/deepseek/deepseek-profile-train.json -o "$D/deepseek.db" --force
"$PT" stats "$D/deepseek.db" | sed -n '1,4p'
printf '\nWritten: %s/deepseek.db\n' "$D"

say "For real: pipetrace run --backend cpu (DualPipe, 4 ranks as threads, 8 microbatches, checked)"
"$PT" run --backend cpu -s dualpipe -p 4 -n 8 -o "$D/trace-cpu.db" --force
"$PT" stats "$D/trace-cpu.db"
printf '\nWritten: %s/trace-cpu.db\n' "$D"

say "The schedule grid: pipetrace view $D/trace.db"
"$PT" view "$D/trace.db"
say "The HTML report: pipetrace view $D/trace.db --html $D/report.html"
"$PT" view "$D/trace.db" --html "$D/report.html" --force
for s in 1f1b zb1p; do
	"$PT" run -s $s -p 8 -n 20 -o "$D/trace-$s.db" --force --quiet
done
"$PT" view "$D/trace.db" "$D/trace-1f1b.db" "$D/trace-zb1p.db" --html "$D/compare.html" --force
printf 'Written: %s/report.html, %s/compare.html (DualPipe vs 1F1B vs ZB-H1): open them in a browser\n' "$D" "$D"

say "For the Perfetto UI: pipetrace export $D/trace.db -o $D/trace.pftrace (and .json)"
"$PT" export "$D/trace.db" -o "$D/trace.pftrace" --force
"$PT" export "$D/trace.db" -o "$D/trace.json" --force
printf 'Open https://ui.perfetto.dev and drop %s/trace.pftrace on it (docs/export.md tells what is where)\n' "$D"
