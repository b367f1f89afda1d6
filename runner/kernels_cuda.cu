/*
 * runner/kernels_cuda.cu — the element-wise kernels of the cuda backend
 * (kernels.h): exact-erf GELU and its derivative, the MSE loss and its
 * gradient, dtype casts. Grid-stride loops, 256 threads a block; the loss
 * is reduced by a single block in a fixed order, so the same inputs give
 * the same bits. bf16 values are computed in fp32, as torch does; one
 * template per kernel serves the three dtypes through acc<T>.
 */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>

#include "kernels.h"

enum { DT_F32 = 0, DT_F64 = 1, DT_BF16 = 2 }; /* enum pt_dtype */
enum { THREADS = 256 };

template <typename T> struct acc {
	typedef float type;
};
template <> struct acc<double> {
	typedef double type;
};

__device__ inline float to_acc(float v)
{
	return v;
}
__device__ inline double to_acc(double v)
{
	return v;
}
__device__ inline float to_acc(__nv_bfloat16 v)
{
	return __bfloat162float(v);
}
template <typename T> __device__ inline T from_acc(typename acc<T>::type v);
template <> __device__ inline float from_acc<float>(float v)
{
	return v;
}
template <> __device__ inline double from_acc<double>(double v)
{
	return v;
}
template <> __device__ inline __nv_bfloat16 from_acc<__nv_bfloat16>(float v)
{
	return __float2bfloat16_rn(v);
}

__device__ inline float gelu_f(float x)
{
	return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
}
__device__ inline double gelu_f(double x)
{
	return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
}
__device__ inline float dgelu_f(float x)
{
	float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752440f));
	float pdf = 0.39894228040143267794f * expf(-0.5f * x * x);
	return cdf + x * pdf;
}
__device__ inline double dgelu_f(double x)
{
	double cdf = 0.5 * (1.0 + erf(x * 0.70710678118654752440));
	double pdf = 0.39894228040143267794 * exp(-0.5 * x * x);
	return cdf + x * pdf;
}

template <typename T> __global__ void gelu_k(const T *a, T *g, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		g[i] = from_acc<T>(gelu_f(to_acc(a[i])));
}

template <typename T> __global__ void gelu_backward_k(T *a, const T *dg, size_t n)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
		a[i] = from_acc<T>(to_acc(dg[i]) * dgelu_f(to_acc(a[i])));
}

/* One block: each thread sums a fixed stride of elements in double, then a
 * fixed tree; dy written on the way. */
template <typename T> __global__ void mse_k(const T *y, const T *t, T *dy, size_t n, double *loss)
{
	__shared__ double part[THREADS];
	double sum = 0;
	const double scale = 2.0 / (double)n;
	for (size_t i = threadIdx.x; i < n; i += THREADS) {
		typename acc<T>::type e = to_acc(y[i]) - to_acc(t[i]);
		sum += (double)e * (double)e;
		dy[i] = from_acc<T>((typename acc<T>::type)(scale * (double)e));
	}
	part[threadIdx.x] = sum;
	__syncthreads();
	for (int s = THREADS / 2; s > 0; s >>= 1) {
		if ((int)threadIdx.x < s)
			part[threadIdx.x] += part[threadIdx.x + s];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		*loss = part[0] / (double)n;
}

template <typename S, typename D> __global__ void cast_k(const S *s, D *d, size_t n);
#define CAST(S, D, EXPR)                                                                                               \
	template <> __global__ void cast_k<S, D>(const S *s, D *d, size_t n)                                           \
	{                                                                                                              \
		for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;                                  \
		     i += (size_t)gridDim.x * blockDim.x)                                                              \
			d[i] = EXPR;                                                                                   \
	}
CAST(float, __nv_bfloat16, __float2bfloat16_rn(s[i]))
CAST(__nv_bfloat16, float, __bfloat162float(s[i]))
CAST(float, double, (double)s[i])
CAST(double, float, (float)s[i])
CAST(float, float, s[i])

static unsigned blocks(size_t n)
{
	size_t b = (n + THREADS - 1) / THREADS;
	return (unsigned)(b < 1 ? 1 : b > 4096 ? 4096 : b);
}

extern "C" int pt_k_gelu(int dtype, const void *a, void *g, size_t n, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;
	if (dtype == DT_F64)
		gelu_k<double><<<blocks(n), THREADS, 0, s>>>((const double *)a, (double *)g, n);
	else if (dtype == DT_BF16)
		gelu_k<__nv_bfloat16><<<blocks(n), THREADS, 0, s>>>((const __nv_bfloat16 *)a, (__nv_bfloat16 *)g, n);
	else
		gelu_k<float><<<blocks(n), THREADS, 0, s>>>((const float *)a, (float *)g, n);
	return (int)cudaGetLastError();
}

extern "C" int pt_k_gelu_backward(int dtype, void *a, const void *dg, size_t n, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;
	if (dtype == DT_F64)
		gelu_backward_k<double><<<blocks(n), THREADS, 0, s>>>((double *)a, (const double *)dg, n);
	else if (dtype == DT_BF16)
		gelu_backward_k<__nv_bfloat16>
		    <<<blocks(n), THREADS, 0, s>>>((__nv_bfloat16 *)a, (const __nv_bfloat16 *)dg, n);
	else
		gelu_backward_k<float><<<blocks(n), THREADS, 0, s>>>((float *)a, (const float *)dg, n);
	return (int)cudaGetLastError();
}

extern "C" int pt_k_mse(int dtype, const void *y, const void *t, void *dy, size_t n, double *loss, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;
	if (dtype == DT_F64)
		mse_k<double><<<1, THREADS, 0, s>>>((const double *)y, (const double *)t, (double *)dy, n, loss);
	else if (dtype == DT_BF16)
		mse_k<__nv_bfloat16><<<1, THREADS, 0, s>>>((const __nv_bfloat16 *)y, (const __nv_bfloat16 *)t,
							   (__nv_bfloat16 *)dy, n, loss);
	else
		mse_k<float><<<1, THREADS, 0, s>>>((const float *)y, (const float *)t, (float *)dy, n, loss);
	return (int)cudaGetLastError();
}

extern "C" int pt_k_cast(int from, int to, const void *src, void *dst, size_t n, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;
	if (from == DT_F32 && to == DT_BF16)
		cast_k<float, __nv_bfloat16><<<blocks(n), THREADS, 0, s>>>((const float *)src, (__nv_bfloat16 *)dst, n);
	else if (from == DT_BF16 && to == DT_F32)
		cast_k<__nv_bfloat16, float><<<blocks(n), THREADS, 0, s>>>((const __nv_bfloat16 *)src, (float *)dst, n);
	else if (from == DT_F32 && to == DT_F64)
		cast_k<float, double><<<blocks(n), THREADS, 0, s>>>((const float *)src, (double *)dst, n);
	else if (from == DT_F64 && to == DT_F32)
		cast_k<double, float><<<blocks(n), THREADS, 0, s>>>((const double *)src, (float *)dst, n);
	else if (from == DT_F32 && to == DT_F32)
		cast_k<float, float><<<blocks(n), THREADS, 0, s>>>((const float *)src, (float *)dst, n);
	else
		return (int)cudaErrorInvalidValue;
	return (int)cudaGetLastError();
}
