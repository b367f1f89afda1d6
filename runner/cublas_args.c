/*
 * runner/cublas_args.c — the translation of the backends' row-major GEMM
 * (pt_gemm's arguments) into cuBLAS's column-major call, apart from cuBLAS
 * so it is in every build and tested without a GPU against the cpu
 * backend's GEMM (tests/unit/test_cuda.c): the one place a transposition
 * slip would corrupt every number the cuda backend computes.
 */
#include "cuda.h"

pt_colmajor_gemm pt_gemm_colmajor(int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb)
{
	/* A row-major X (r x c, stride ld) is, read column-major, X^T (c x r,
	 * leading dimension ld). So row-major C = op(A) op(B) is column-major
	 * C^T = op(B)^T op(A)^T: the first operand is B, transposed by cuBLAS
	 * exactly when pt_gemm was asked to transpose B, and m, n swap. */
	pt_colmajor_gemm g = {
	    .transa = tb, .transb = ta, .m = N, .n = M, .k = K, .a = B, .lda = ldb, .b = A, .ldb = lda};
	return g;
}
