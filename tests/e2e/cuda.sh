#!/bin/sh
# tests/e2e/cuda.sh — `pipetrace run --backend cuda` from the command line:
# bad options refused with exit 2 and a message naming them; on a machine
# without a GPU (or a build without CUDA) exit 2 with a clear reason and no
# file left behind; with a GPU, a recorded run that stats, exports and
# checks, and under mpirun per-process databases that merge. GPU cases skip
# visibly where there is none.
. "$(dirname "$0")/lib.sh"
P=$PIPETRACE
SMALL="--hidden 64 --seq 8 --mb-size 2"

expect_err 2 "--dtype must be fp32, fp64 or bf16, not 'fp8'" "an unknown dtype" \
	$P run -b cuda -s 1f1b -p 2 -n 2 --dtype fp8 -o "$T/bad.db"
expect_err 2 "--gpus: 0 is out of range" "--gpus 0" $P run -b cuda -s 1f1b -p 2 -n 2 --gpus 0 -o "$T/bad.db"
expect_err 2 "--gpus: 'two' is not a whole number" "--gpus not a number" \
	$P run -b cuda -s 1f1b -p 2 -n 2 --gpus two -o "$T/bad.db"
expect_err 2 "--gpus needs --backend cuda" "--gpus on the cpu backend" \
	$P run -b cpu -s 1f1b -p 2 -n 2 --gpus 2 -o "$T/bad.db"
expect_err 2 "are the sim's; the cuda backend measures its costs" "sim options on the cuda backend" \
	$P run -b cuda -s 1f1b -p 2 -n 2 --cost F=1ms -o "$T/bad.db"
expect_err 2 "unknown backend 'gpu' \(this build has: sim, cpu(, cuda\)|; cuda is not compiled in\))" \
	"an unknown backend: the list says whether cuda is in" \
	$P run -b gpu -s 1f1b -p 2 -n 2 -o "$T/bad.db"
expect_out "--gpus N" "run --help describes --gpus" $P run --help
expect_out "fp32\|fp64\|bf16" "... and bf16" $P run --help
check "no output after refused runs" test ! -e "$T/bad.db"

if ! $P --version | grep -q '^  +cuda'; then
	expect_err 2 "built without CUDA, so --backend cuda is not compiled in" \
		"a build without CUDA says so (exit 2)" $P run -b cuda -s 1f1b -p 2 -n 2 -o "$T/nocuda.db"
	check "... and writes nothing" test ! -e "$T/nocuda.db"
	skip "a recorded cuda run" "this build has no CUDA"
	exit 0
fi

# (a build without CUDA refuses --backend cuda before looking further)
touch "$T/exists.db"
expect_err 2 "exists.db already exists; pass --force" "an existing output is refused before any GPU work" \
	$P run -b cuda -s 1f1b -p 2 -n 2 -o "$T/exists.db"
expect_err 2 "DualPipe|dualpipe" "an impossible schedule is refused as such, GPU or not" \
	$P run -b cuda -s dualpipe -p 3 -n 4 -o "$T/bad.db"
check "no output after the refused run" test ! -e "$T/bad.db"

run $P run -b cuda -s dualpipe -p 4 -n 8 $SMALL -o "$T/cu.db"
if [ "$RC" -eq 2 ] && grep -q "no CUDA device" "$ERR"; then
	ok "without a device: exit 2 and a clear message ($(head -1 "$ERR" | cut -c1-100))"
	check "... and no database, not even a temporary one" sh -c "! ls '$T' | grep -q '^cu\.db'"
	skip "a recorded cuda run: check, stats, export" "no CUDA device: $(head -1 "$ERR" | sed 's/.*: no CUDA device: //' | cut -c1-80)"
	skip "bf16 and overlap on the GPU" "no CUDA device"
	skip "mpirun: one process per GPU, per-rank databases merged" "no CUDA device"
	exit 0
fi
if [ "$RC" -eq 0 ] && grep -q "check: .* -> ok" "$OUT"; then
	ok "a recorded cuda run passes its check"
else
	notok "a recorded cuda run passes its check (exit $RC)"
fi
expect_out "rank" "stats reads it" $P stats "$T/cu.db"
expect_rc 0 "export reads it" $P export "$T/cu.db" -o "$T/cu.json"
expect_out "check: .* -> ok" "bf16 with overlapped comm passes its looser check" \
	$P run -b cuda -s dualpipev -p 4 -n 8 $SMALL --dtype bf16 --comm overlap -o "$T/bf16.db"
expect_out "shared topology" "--gpus 1: every rank on one GPU, copies on the comm streams" \
	$P run -b cuda -s zbv -p 4 -n 8 $SMALL --gpus 1 -o "$T/shared.db"
ngpu=$(nvidia-smi -L 2>/dev/null | wc -l)
if command -v mpirun >/dev/null 2>&1 && [ "$ngpu" -ge 2 ] && $P --version | grep -q '^  +mpi'; then
	run mpirun --allow-run-as-root --oversubscribe -np 2 $P run -b cuda -s 1f1b -p 2 -n 4 $SMALL -o "$T/mpi.db"
	if [ "$RC" -eq 0 ] && [ -f "$T/mpi.rank0.db" ] && [ -f "$T/mpi.rank1.db" ]; then
		ok "mpirun: each process writes its own run.rank<N>.db"
		expect_rc 0 "... which merge onto one timeline" $P merge "$T/mpi.rank0.db" "$T/mpi.rank1.db" -o "$T/mpi.db"
	else
		notok "mpirun: each process writes its own run.rank<N>.db"
	fi
else
	skip "mpirun: one process per GPU, per-rank databases merged" "needs mpirun, MPI in the build and 2 GPUs"
fi
