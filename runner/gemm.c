/*
 * runner/gemm.c — a blocked, cache-aware GEMM in portable C: the cpu
 * backend's kernel when the build has no OpenBLAS, and the comparison point
 * `make bench` prints beside it.
 *
 * OpenBLAS (gemm_openblas.c) is what the backend uses wherever Debian's
 * libopenblas is installed: its hand-written AVX2/AVX-512 micro-kernels run
 * several times faster than anything a compiler makes of C. This kernel
 * exists so that a build without it still runs, and checks, every schedule:
 * B is packed into KC x NC panels and A into MC x KC blocks (each panel
 * fits in L2, each block's rows in L1), and four rows of C are updated per
 * row of B so the contiguous inner loop vectorises. Each element of C sums
 * its products in increasing k, so results are deterministic. It does not
 * try to reach peak: no register tiling by hand, no prefetching.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cpu.h"

enum { MC = 64, KC = 256, NC = 512 };

static int min_int(int a, int b) { return a < b ? a : b; }

#define BLOCKED(NAME, T)                                                                                               \
	static void NAME(int ta, int tb, int M, int N, int K, const T *A, int lda, const T *B, int ldb, int acc,      \
			 T *C, int ldc, T *ap, T *bp)                                                                  \
	{                                                                                                              \
		if (!acc)                                                                                              \
			for (int i = 0; i < M; i++)                                                                    \
				memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(T));                                 \
		for (int jc = 0; jc < N; jc += NC) {                                                                   \
			int nc = min_int(NC, N - jc);                                                                  \
			for (int pc = 0; pc < K; pc += KC) {                                                           \
				int kc = min_int(KC, K - pc);                                                          \
				for (int k = 0; k < kc; k++)                                                           \
					for (int j = 0; j < nc; j++)                                                   \
						bp[(size_t)k * nc + j] = tb ? B[(size_t)(jc + j) * ldb + pc + k]       \
									    : B[(size_t)(pc + k) * ldb + jc + j];      \
				for (int ic = 0; ic < M; ic += MC) {                                                   \
					int mc = min_int(MC, M - ic);                                                  \
					for (int i = 0; i < mc; i++)                                                   \
						for (int k = 0; k < kc; k++)                                           \
							ap[(size_t)i * kc + k] = ta ? A[(size_t)(pc + k) * lda + ic + i] \
										    : A[(size_t)(ic + i) * lda + pc + k]; \
					int i = 0;                                                                     \
					for (; i + 4 <= mc; i += 4) {                                                  \
						T *restrict c0 = C + (size_t)(ic + i) * ldc + jc;                      \
						T *restrict c1 = c0 + ldc, *restrict c2 = c1 + ldc,                    \
							    *restrict c3 = c2 + ldc;                                   \
						const T *a = ap + (size_t)i * kc;                                      \
						for (int k = 0; k < kc; k++) {                                         \
							const T x0 = a[k], x1 = a[kc + k], x2 = a[2 * kc + k],         \
								x3 = a[3 * kc + k];                                    \
							const T *restrict b = bp + (size_t)k * nc;                     \
							for (int j = 0; j < nc; j++) {                                 \
								c0[j] += x0 * b[j];                                    \
								c1[j] += x1 * b[j];                                    \
								c2[j] += x2 * b[j];                                    \
								c3[j] += x3 * b[j];                                    \
							}                                                              \
						}                                                                      \
					}                                                                              \
					for (; i < mc; i++) {                                                          \
						T *restrict c0 = C + (size_t)(ic + i) * ldc + jc;                      \
						const T *a = ap + (size_t)i * kc;                                      \
						for (int k = 0; k < kc; k++) {                                         \
							const T x0 = a[k];                                             \
							const T *restrict b = bp + (size_t)k * nc;                     \
							for (int j = 0; j < nc; j++)                                   \
								c0[j] += x0 * b[j];                                    \
						}                                                                      \
					}                                                                              \
				}                                                                                      \
			}                                                                                              \
		}                                                                                                      \
	}

BLOCKED(blocked_f32, float)
BLOCKED(blocked_f64, double)

void pt_gemm_blocked(int dtype, int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb,
		     int acc, void *C, int ldc)
{
	size_t esz = dtype == PT_DTYPE_F64 ? sizeof(double) : sizeof(float);
	/* packing buffers: per call, so any thread may call; small next to the work */
	void *ap = malloc((size_t)MC * KC * esz), *bp = malloc((size_t)KC * NC * esz);
	if (!ap || !bp)
		abort(); /* tens of KiB: nothing sensible is left to do */
	if (dtype == PT_DTYPE_F64)
		blocked_f64(ta, tb, M, N, K, A, lda, B, ldb, acc, C, ldc, ap, bp);
	else
		blocked_f32(ta, tb, M, N, K, A, lda, B, ldb, acc, C, ldc, ap, bp);
	free(ap);
	free(bp);
}

#ifndef PT_HAVE_OPENBLAS
/* No OpenBLAS in this build: the blocked kernel is the GEMM. */
void pt_gemm_init(void) {}

const char *pt_gemm_name(void) { return "pipetrace's blocked C kernel (no OpenBLAS in this build)"; }

void pt_gemm(int dtype, int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb, int acc,
	     void *C, int ldc)
{
	pt_gemm_blocked(dtype, ta, tb, M, N, K, A, lda, B, ldb, acc, C, ldc);
}
#endif
