#!/bin/bash
# tests/gpu-check.sh — every check of the cuda backend that needs a GPU, in
# one run, for a GPU machine lent for a few minutes (`make gpu-check` on a
# machine of your own does the same). It builds pipetrace there, then runs
# the GPU unit tests (test_cuda, test_cupti), the command-line transcript
# (tests/e2e/cuda.sh), a recorded DualPipe run exported for a look in the
# Perfetto UI, and bench_cuda's figures. Each step has a time limit; a step
# that fails or runs out is reported and the next one still runs.
#
# A machine that reaches no package registry (a CUDA image without SQLite or
# yajl headers) gets them from .devkit/debs (sh mk/devkit.sh, run where Debian's
# registry is): unpacked into a private root, never into /. CUDA, cuBLAS,
# CUPTI and NCCL come from $CUDA_HOME (/usr/local/cuda) and, where it lacks
# one, from the NVIDIA wheels of the machine's Python (PyTorch's).
#
#   bash tests/gpu-check.sh [OUTDIR]     logs and files to OUTDIR ($OUT, else gpu-out)
set -u
cd "$(dirname "$0")/.."
out=${1:-${OUT:-gpu-out}}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
BUILD=${BUILD:-build-gpu}
JOBS=${JOBS:-$(nproc)}
t0=$(date +%s)
say() { printf '\n== [%4ss] %s\n' $(($(date +%s) - t0)) "$*"; }
failed=""
# step NAME LIMIT-SECONDS CMD...: run it, report its status; a failure is noted, not fatal
step() {
	local name=$1 limit=$2
	shift 2
	say "$name (limit ${limit}s)"
	timeout --kill-after=10 "$limit" "$@"
	local rc=$?
	[ $rc -eq 124 ] && echo "== $name: ran out of its ${limit}s"
	[ $rc -ne 0 ] && failed="$failed $name($rc)"
	echo "== $name: exit $rc"
	return 0
}

say "machine"
uname -srm
nvidia-smi -L 2>&1 || echo "nvidia-smi: none"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tail -n +1

# ---- what the build links against
root=/tmp/pt-devroot
mkdir -p "$root/lib"
if ls .devkit/debs/*.deb >/dev/null 2>&1; then
	for f in .devkit/debs/*.deb; do dpkg -x "$f" "$root"; done
	echo "unpacked $(ls .devkit/debs/*.deb | wc -l) packages of .devkit into $root"
fi
multi=$root/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
inc="$root/usr/include" lib="$multi:$root/lib"
# NVIDIA's wheels (nvidia-nccl, nvidia-cublas, nvidia-cuda-cupti, ...) hold
# headers and versioned .so files; the linker wants an unversioned name.
nv=$(python3 -c 'import nvidia, os; print(" ".join(os.path.abspath(p) for p in nvidia.__path__))' 2>/dev/null)
for want in nccl.h:libnccl.so cupti.h:libcupti.so cublas_v2.h:libcublas.so; do
	h=${want%%:*} so=${want#*:}
	[ -e "$CUDA_HOME/include/$h" ] && ls "$CUDA_HOME"/lib64/$so* >/dev/null 2>&1 && continue
	[ -e "$CUDA_HOME/extras/CUPTI/include/$h" ] && continue
	[ -n "$nv" ] || continue
	hp=$(find $nv -name "$h" 2>/dev/null | head -1)
	sp=$(find $nv -name "$so.*" 2>/dev/null | sort | head -1)
	if [ -n "$hp" ] && [ -n "$sp" ]; then
		inc="$inc:$(dirname "$hp")"
		lib="$lib:$(dirname "$sp")"
		ln -sf "$sp" "$root/lib/$so"
		echo "$h and $so: from $(dirname "$(dirname "$sp")")"
	else
		echo "$h / $so: not under $CUDA_HOME nor in the Python wheels"
	fi
done
export CPATH="$inc${CPATH:+:$CPATH}"
export LIBRARY_PATH="$lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$lib:$CUDA_HOME/lib64:$CUDA_HOME/extras/CUPTI/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# configure looks for libcublas under CUDA_HOME; point it at the wheel's when the toolkit has none
if ! ls "$CUDA_HOME"/lib64/libcublas.so.* >/dev/null 2>&1 && [ -e "$root/lib/libcublas.so" ]; then
	fake=/tmp/pt-cudahome
	mkdir -p "$fake/lib64"
	for d in bin include nvvm; do [ -e "$CUDA_HOME/$d" ] && ln -sfn "$CUDA_HOME/$d" "$fake/$d"; done
	for f in "$CUDA_HOME"/lib64/* "$(dirname "$(readlink -f "$root/lib/libcublas.so")")"/*; do
		ln -sf "$f" "$fake/lib64/$(basename "$f")"
	done
	export NVCC=$CUDA_HOME/bin/nvcc CUDA_HOME=$fake
	echo "cuBLAS from the wheel: CUDA_HOME=$fake (links into the toolkit and the wheel)"
fi

# ---- build: only Hopper's code (the machine's), no MPI or OpenBLAS (a
# single process; the cpu reference uses the project's own GEMM there)
step build 300 make -j"$JOBS" BUILD="$BUILD" CUDA=1 NO_MPI=1 NO_OPENBLAS=1 \
	NVCC_GENCODE="-gencode arch=compute_90,code=sm_90" \
	all "$BUILD/tests/test_cuda" "$BUILD/tests/test_cupti" "$BUILD/bench/bench_cuda"
P=$PWD/$BUILD/pipetrace
if [ ! -x "$P" ]; then
	say "no binary: configure said"
	cat "$BUILD"/probe/*.log 2>/dev/null | tail -40
	exit 1
fi
"$P" --version

export PIPETRACE=$P PT_ROOT=$PWD CMOCKA_MESSAGE_OUTPUT=TAP
step test_cuda 150 "$BUILD/tests/test_cuda"
step test_cupti 60 "$BUILD/tests/test_cupti"
step e2e-cuda 150 sh tests/e2e/cuda.sh

# A recorded run to look at back home: its stats and a Perfetto export.
step run-dualpipe 90 sh -c "'$P' run -b cuda -s dualpipe -p 4 -n 8 --hidden 1024 --seq 256 --mb-size 4 \
	-o '$out/cuda-dualpipe.db' --force && '$P' stats '$out/cuda-dualpipe.db' && \
	'$P' stats --json '$out/cuda-dualpipe.db' > '$out/cuda-dualpipe.json' && \
	'$P' export '$out/cuda-dualpipe.db' -o '$out/cuda-dualpipe.pftrace' --force"
step bench_cuda 200 "$BUILD/bench/bench_cuda"

say "done; failed:${failed:- none}"
[ -z "$failed" ]
