#!/bin/sh
# make demo: DualPipe on 8 ranks with 20 microbatches on the embedded sim
# backend — its plan, a recorded trace, and the metrics beside the spec's
# formulas; then the same schedule over costly links, flush vs overlap.
set -e
PT=$1
D=$2
mkdir -p "$D"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "The plan: pipetrace schedule --schedule dualpipe --ranks 8 --microbatches 20 --steps"
"$PT" schedule --schedule dualpipe --ranks 8 --microbatches 20 --steps

say "The run: pipetrace run ... --backend sim -o $D/trace.db"
"$PT" run --schedule dualpipe --ranks 8 --microbatches 20 --backend sim -o "$D/trace.db" --force

say "The metrics: pipetrace stats $D/trace.db"
"$PT" stats "$D/trace.db"
"$PT" stats --json "$D/trace.db" >"$D/stats.json"

say "Over 50 GB/s links with 5 us latency and 64 MiB activations: DualPipe's flush vs overlap"
for mode in flush overlap; do
	"$PT" run -s dualpipe -p 8 -n 20 --comm $mode --link latency=5us,bandwidth=50GB/s \
		--activation-bytes 64MiB -o "$D/trace-$mode.db" --force --quiet
	"$PT" stats "$D/trace-$mode.db" | sed -n '1,2p'
done
printf '\nWritten: %s/trace.db, %s/stats.json, %s/trace-flush.db, %s/trace-overlap.db\n' "$D" "$D" "$D" "$D"

say "For the Perfetto UI: pipetrace export $D/trace.db -o $D/trace.pftrace (and .json)"
"$PT" export "$D/trace.db" -o "$D/trace.pftrace" --force
"$PT" export "$D/trace.db" -o "$D/trace.json" --force
printf 'Open https://ui.perfetto.dev and drop %s/trace.pftrace on it (docs/export.md tells what is where)\n' "$D"
