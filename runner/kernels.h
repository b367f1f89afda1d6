/*
 * runner/kernels.h — the cuda backend's own kernels (kernels_cuda.cu), for
 * what cuBLAS does not do the way the cpu backend's model needs: GELU in
 * its exact erf form (cuBLASLt's GELU epilogue is the tanh approximation,
 * which would not match the cpu reference), its derivative, the MSE loss
 * with its gradient, and dtype casts. Element types are enum pt_dtype
 * (cpu.h): fp32, fp64, bf16; bf16 math runs in fp32. Every call queues work
 * on `stream` (a cudaStream_t) and returns a cudaError_t (0 = queued).
 * C linkage; built only with CUDA. Private to runner/.
 */
#ifndef PT_RUNNER_KERNELS_H
#define PT_RUNNER_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* g = GELU(a) = a Φ(a), count elements. */
int pt_k_gelu(int dtype, const void *a, void *g, size_t count, void *stream);

/* a <- dg * GELU'(a), GELU'(x) = Φ(x) + x φ(x). */
int pt_k_gelu_backward(int dtype, void *a, const void *dg, size_t count, void *stream);

/* *loss = Σ(y - t)² / count, summed in double by one block in a fixed
 * order (so deterministic); dy = 2 (y - t) / count. loss is device memory. */
int pt_k_mse(int dtype, const void *y, const void *t, void *dy, size_t count, double *loss, void *stream);

/* dst = src converted from dtype `from` to dtype `to` (round to nearest even). */
int pt_k_cast(int from, int to, const void *src, void *dst, size_t count, void *stream);

#ifdef __cplusplus
}
#endif
#endif
