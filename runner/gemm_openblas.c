/*
 * runner/gemm_openblas.c — the cpu backend's GEMM through OpenBLAS (Debian
 * libopenblas), built only when mk/configure.sh finds it.
 *
 * Every rank thread calls GEMM itself, one call at a time per thread, so
 * OpenBLAS is told to use one thread per call (openblas_set_num_threads(1)):
 * the ranks are the parallelism, and a single-threaded GEMM sums in a fixed
 * order, which the bitwise loss check relies on. Debian's pthread build
 * (libopenblas-pthread-dev, what mk/deps.sh installs) guards its buffer pool
 * with locks, so concurrent calls are safe; its serial and OpenMP builds
 * are not documented as safe for calls from several threads at once, so
 * with those every call goes through one mutex (correct, but ranks then
 * compute one at a time) and pt_gemm_name says so. Which build runs is
 * decided at run time by the libopenblas.so.0 alternative, so it is checked
 * at run time.
 */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int serialize;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char name[160];

static void setup(void)
{
	openblas_set_num_threads(1);
	int par = openblas_get_parallel();
	serialize = par != 1;
	char version[32] = "OpenBLAS";
	const char *cfg = openblas_get_config();
	if (cfg) { /* "OpenBLAS 0.3.21 NO_LAPACKE ..." */
		const char *sp = strchr(cfg, ' ');
		const char *end = sp ? strchr(sp + 1, ' ') : NULL;
		size_t len = end ? (size_t)(end - cfg) : strlen(cfg);
		if (len >= sizeof version)
			len = sizeof version - 1;
		memcpy(version, cfg, len);
		version[len] = '\0';
	}
	snprintf(name, sizeof name, "%s (%s kernels, %s build, 1 thread per call%s)", version,
		 openblas_get_corename(), par == 1 ? "pthread" : par == 2 ? "OpenMP" : "serial",
		 serialize ? "; calls serialized: install libopenblas-pthread-dev" : "");
	if (serialize)
		pt_log(PT_LOG_WARN, "the OpenBLAS in use is its %s build, not documented as safe to call from "
				    "several threads: GEMM calls are serialized (install libopenblas-pthread-dev)",
		       par == 2 ? "OpenMP" : "serial");
}

void pt_gemm_init(void) { pthread_once(&once, setup); }

const char *pt_gemm_name(void) { return name; }

void pt_gemm(int dtype, int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb, int acc,
	     void *C, int ldc)
{
	if (serialize)
		pthread_mutex_lock(&lock);
	enum CBLAS_TRANSPOSE a = ta ? CblasTrans : CblasNoTrans, b = tb ? CblasTrans : CblasNoTrans;
	if (dtype == PT_DTYPE_F64)
		cblas_dgemm(CblasRowMajor, a, b, M, N, K, 1.0, A, lda, B, ldb, acc ? 1.0 : 0.0, C, ldc);
	else
		cblas_sgemm(CblasRowMajor, a, b, M, N, K, 1.0f, A, lda, B, ldb, acc ? 1.0f : 0.0f, C, ldc);
	if (serialize)
		pthread_mutex_unlock(&lock);
}
