#!/bin/sh
# tests/e2e/build.sh — the build without each optional feature, and
# `make install` with its pkg-config file, as a user would use them.
. "$(dirname "$0")/lib.sh"
cd "$PT_ROOT" || exit 1
B="$T/nofeat"
if make -s BUILD="$B" NO_CUDA=1 NO_CUPTI=1 NO_NCCL=1 NO_NVTX=1 NO_MPI=1 "$B/pipetrace" >"$OUT" 2>"$ERR"; then
	ok "builds with every optional feature off"
else
	notok "builds with every optional feature off"
fi
expect_out '-cuda: disabled with NO_CUDA=1' "--version says what was left out" "$B/pipetrace" --version
expect_out 'makespan 66.000 ms' "... and that build runs" "$B/pipetrace" run -s dualpipe -p 8 -n 20 -o "$T/x.db"
expect_err 2 "built without CUDA, so --backend cuda is not compiled in" "... and says the cuda backend is not in it" \
	"$B/pipetrace" run -b cuda -s 1f1b -p 2 -n 2 -o "$T/nocuda.db"
if make -s BUILD="$B" NO_CUDA=1 NO_CUPTI=1 NO_NCCL=1 NO_NVTX=1 NO_MPI=1 "$B/tests/test_cuda" "$B/tests/test_cupti" \
	>"$OUT" 2>"$ERR"; then
	ok "... with the unit tests of the GPU code, which test its host side"
	expect_out '^ok .*test_check_limits' "... and run there" env CMOCKA_MESSAGE_OUTPUT=TAP "$B/tests/test_cuda"
else
	notok "... with the unit tests of the GPU code, which test its host side"
fi
B1="$T/nocuda"
if make -s BUILD="$B1" NO_CUDA=1 "$B1/pipetrace" >"$OUT" 2>"$ERR"; then
	ok "builds with NO_CUDA=1 alone"
	expect_out '-cupti: off because cuda is off' "... and says CUPTI is off because CUDA is" "$B1/pipetrace" --version
	expect_out '-nccl: off because cuda is off' "... and NCCL likewise" "$B1/pipetrace" --version
else
	notok "builds with NO_CUDA=1 alone"
fi
B2="$T/nocupti"
if [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
	skip "builds with CUDA but without CUPTI, NCCL and MPI (the fallbacks)" "no CUDA toolkit with nvcc here"
elif make -s BUILD="$B2" NO_CUPTI=1 NO_NCCL=1 NO_MPI=1 "$B2/pipetrace" >"$OUT" 2>"$ERR"; then
	ok "builds with CUDA but without CUPTI, NCCL and MPI (the fallbacks)"
	expect_out '-cupti: disabled with NO_CUPTI=1' "... and says so" "$B2/pipetrace" --version
	expect_out '-nccl: disabled with NO_NCCL=1' "... for NCCL too" "$B2/pipetrace" --version
	expect_out '-mpi: disabled with NO_MPI=1' "... and MPI" "$B2/pipetrace" --version
	expect_err 2 "launched by mpirun as one of 2 processes, but this pipetrace was built without MPI" \
		"a build without MPI refuses to run as one of mpirun's processes" \
		env OMPI_COMM_WORLD_SIZE=2 "$B2/pipetrace" run -b cuda -s 1f1b -p 2 -n 2 -o "$T/mpi.db"
else
	notok "builds with CUDA but without CUPTI, NCCL and MPI (the fallbacks)"
fi

run make -s BUILD="$PT_ROOT/build" PREFIX="$T/prefix" install
if [ "$RC" -eq 0 ] && [ -x "$T/prefix/bin/pipetrace" ] && [ -f "$T/prefix/lib/libpipetrace.a" ] &&
	[ -f "$T/prefix/lib/libpipetrace.so" ] && [ -f "$T/prefix/include/pipetrace/trace.h" ] &&
	[ -f "$T/prefix/lib/pkgconfig/pipetrace.pc" ]; then
	ok "make install puts the binary, libraries, header and pkg-config file in PREFIX"
else
	notok "make install puts the binary, libraries, header and pkg-config file in PREFIX"
fi
cat >"$T/use.c" <<'C'
#include <pipetrace/trace.h>
#include <stdio.h>
int main(int argc, char **argv)
{
	pt_trace *t;
	if (argc < 2 || pt_trace_open(argv[1], &t))
		return 1;
	printf("%s %d\n", pt_trace_meta(t, "schedule"), pt_trace_nranks(t));
	pt_trace_close(t);
	return 0;
}
C
if PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig" cc -o "$T/use" "$T/use.c" \
	$(PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig" pkg-config --cflags --libs pipetrace) >"$OUT" 2>"$ERR"; then
	ok "a program builds against the installed library with pkg-config"
	expect_out '^dualpipe 8$' "... and reads a trace with it" env LD_LIBRARY_PATH="$T/prefix/lib" "$T/use" "$T/x.db"
else
	notok "a program builds against the installed library with pkg-config"
fi
