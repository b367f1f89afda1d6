/*
 * runner/cublas_cuda.c — cuBLAS, loaded when a cuda run needs it instead of
 * linked into the binary.
 *
 * Linking libcublas pulls in libcublasLt (over 500 MB of code); the dynamic
 * loader then spends about 0.1 s and 210 MB of resident memory relocating
 * it in every pipetrace process, so `stats` on a small trace or an export
 * held to 64 MB would pay for a GEMM library they never call. The backend
 * calls four entry points; they are resolved here, once, on the first cuda
 * run, from the cuBLAS of the major version the headers describe.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>

#include "cuda_priv.h"

pt_cublas_api pt_cublas;

#define STR_(x)	      #x
#define STR(x)	      STR_(x)
#define CUBLAS_SONAME "libcublas.so." STR(CUBLAS_VER_MAJOR)

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char why[512];

static void load(void)
{
	void *h = dlopen(CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, sizeof why, "cannot load %s: %s", CUBLAS_SONAME, dlerror());
		return;
	}
	static const struct {
		const char *name;
		size_t off;
	} sym[] = {
	    {"cublasCreate_v2", offsetof(pt_cublas_api, create)},
	    {"cublasDestroy_v2", offsetof(pt_cublas_api, destroy)},
	    {"cublasSetStream_v2", offsetof(pt_cublas_api, set_stream)},
	    {"cublasGemmEx", offsetof(pt_cublas_api, gemm_ex)},
	};
	pt_cublas_api api = {0};
	for (size_t i = 0; i < sizeof sym / sizeof sym[0]; i++) {
		void *f = dlsym(h, sym[i].name);
		if (!f) {
			snprintf(why, sizeof why, "%s has no %s", CUBLAS_SONAME, sym[i].name);
			dlclose(h);
			return;
		}
		*(void **)((char *)&api + sym[i].off) = f;
	}
	pt_cublas = api; /* the library stays loaded for the process's life */
}

int pt_cublas_load(void)
{
	pthread_once(&once, load);
	if (pt_cublas.gemm_ex)
		return 0;
	return pt_logerr(PT_ENOTSUP,
			 "cuda backend: %s (cuBLAS comes with the CUDA toolkit; is its lib64 on the "
			 "loader's path?)",
			 why);
}
