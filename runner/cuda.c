/*
 * runner/cuda.c — `pipetrace run --backend cuda` in a build without CUDA:
 * it says so and exits 2, before any file is touched. With CUDA,
 * run_cuda.c is the command and this file compiles to nothing.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cmd.h"
#include "config.h"

#ifndef PT_HAVE_CUDA
int run_cuda(struct run_args *a)
{
	(void)a;
	return cli_usage("run", "this pipetrace was built without CUDA, so --backend cuda is not compiled in "
				"(install the CUDA toolkit with nvcc and cuBLAS, rebuild; `pipetrace --version` "
				"lists the features)");
}
#endif
