/*
 * runner/mlp.c — the math of one stage of the cpu backend's model, the MLP
 * chunk of DualPipe's examples: Linear(h -> 4h, no bias), GELU (the exact,
 * erf form, torch's default), Linear(4h -> h, no bias), MSE at the end of a
 * pipeline; its forward, its backward split as zero-bubble schedules split
 * it (input gradient now, weight gradients later), weight initialisation and
 * data, in fp32 or fp64. Pure functions of their arguments: no state, no
 * threads, no allocation; the GEMMs are pt_gemm's. The pipeline and the
 * sequential reference both call exactly these, which is why their losses
 * can be compared bit for bit. This file knows nothing about ranks or plans.
 */
#include <math.h>
#include <string.h>

#include "cpu.h"

const char *pt_dtype_name(int dtype)
{
	return dtype == PT_DTYPE_F64 ? "fp64" : dtype == PT_DTYPE_BF16 ? "bf16" : "fp32";
}

int pt_dtype_parse(const char *name)
{
	if (!strcmp(name, "fp32") || !strcmp(name, "float32"))
		return PT_DTYPE_F32;
	if (!strcmp(name, "fp64") || !strcmp(name, "float64"))
		return PT_DTYPE_F64;
	if (!strcmp(name, "bf16") || !strcmp(name, "bfloat16"))
		return PT_DTYPE_BF16;
	return -1;
}

/* ------------------------------------------------------ random numbers */

static uint64_t splitmix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Value i of stream s under seed, uniform in [-a, a): counter-based, so any
 * thread computes any value without shared state. */
static double uniform(uint64_t seed, uint64_t s, uint64_t i, double a)
{
	uint64_t u = splitmix(splitmix(seed ^ splitmix(s)) + i);
	return ((double)(u >> 11) * 0x1.0p-53 * 2.0 - 1.0) * a;
}

static void fill(const pt_mlp *m, void *out, size_t count, uint64_t seed, uint64_t stream, double a)
{
	if (m->dtype == PT_DTYPE_F64) {
		double *v = out;
		for (size_t i = 0; i < count; i++)
			v[i] = uniform(seed, stream, i, a);
	} else {
		float *v = out;
		for (size_t i = 0; i < count; i++)
			v[i] = (float)uniform(seed, stream, i, a);
	}
}

enum { STREAM_W1 = 1, STREAM_W2 = 2, STREAM_INPUT = 3, STREAM_TARGET = 4 };

void pt_mlp_init_weights(const pt_mlp *m, uint64_t seed, int stage, void *w1, void *w2)
{
	size_t hh = (size_t)m->h * 4 * (size_t)m->h;
	fill(m, w1, hh, seed, ((uint64_t)stage << 8) | STREAM_W1, 1.0 / sqrt((double)m->h));
	fill(m, w2, hh, seed, ((uint64_t)stage << 8) | STREAM_W2, 1.0 / sqrt(4.0 * m->h));
}

void pt_mlp_data(const pt_mlp *m, uint64_t seed, int gmb, int target, void *out)
{
	fill(m, out, (size_t)m->n * (size_t)m->h, seed,
	     (1ull << 62) | ((uint64_t)gmb << 8) | (target ? STREAM_TARGET : STREAM_INPUT), sqrt(3.0));
}

/* -------------------------------------------------------- element-wise */

#define INV_SQRT2 0.70710678118654752440
#define INV_SQRT2PI 0.39894228040143267794

static void gelu(const pt_mlp *m, const void *a, void *g, size_t count)
{
	if (m->dtype == PT_DTYPE_F64) {
		const double *x = a;
		double *y = g;
		for (size_t i = 0; i < count; i++)
			y[i] = 0.5 * x[i] * (1.0 + erf(x[i] * INV_SQRT2));
	} else {
		const float *x = a;
		float *y = g;
		for (size_t i = 0; i < count; i++)
			y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)INV_SQRT2));
	}
}

/* a <- dg * GELU'(a), GELU'(x) = Φ(x) + x φ(x) */
static void gelu_backward(const pt_mlp *m, void *a, const void *dg, size_t count)
{
	if (m->dtype == PT_DTYPE_F64) {
		double *x = a;
		const double *d = dg;
		for (size_t i = 0; i < count; i++) {
			double cdf = 0.5 * (1.0 + erf(x[i] * INV_SQRT2));
			double pdf = INV_SQRT2PI * exp(-0.5 * x[i] * x[i]);
			x[i] = d[i] * (cdf + x[i] * pdf);
		}
	} else {
		float *x = a;
		const float *d = dg;
		for (size_t i = 0; i < count; i++) {
			float cdf = 0.5f * (1.0f + erff(x[i] * (float)INV_SQRT2));
			float pdf = (float)INV_SQRT2PI * expf(-0.5f * x[i] * x[i]);
			x[i] = d[i] * (cdf + x[i] * pdf);
		}
	}
}

/* ------------------------------------------------------------ the stage */

void pt_mlp_forward(const pt_mlp *m, const void *w1, const void *w2, const void *x, void *a, void *g, void *y)
{
	const int n = m->n, h = m->h, f = 4 * m->h;
	pt_gemm(m->dtype, 0, 1, n, f, h, x, h, w1, h, 0, a, f); /* a = x w1^T */
	gelu(m, a, g, (size_t)n * f);
	pt_gemm(m->dtype, 0, 1, n, h, f, g, f, w2, f, 0, y, h); /* y = g w2^T */
}

double pt_mlp_loss(const pt_mlp *m, const void *y, const void *t, void *dy)
{
	const size_t count = (size_t)m->n * (size_t)m->h;
	double sum = 0;
	if (m->dtype == PT_DTYPE_F64) {
		const double *a = y, *b = t;
		double *d = dy, scale = 2.0 / (double)count;
		for (size_t i = 0; i < count; i++) {
			double e = a[i] - b[i];
			sum += e * e;
			d[i] = scale * e;
		}
	} else {
		const float *a = y, *b = t;
		float *d = dy, scale = (float)(2.0 / (double)count);
		for (size_t i = 0; i < count; i++) {
			float e = a[i] - b[i];
			sum += (double)e * (double)e;
			d[i] = scale * e;
		}
	}
	return sum / (double)count;
}

void pt_mlp_backward_input(const pt_mlp *m, const void *w1, const void *w2, const void *dy, void *a, void *dg,
			   void *dx)
{
	const int n = m->n, h = m->h, f = 4 * m->h;
	pt_gemm(m->dtype, 0, 0, n, f, h, dy, h, w2, f, 0, dg, f); /* dg = dy w2 */
	gelu_backward(m, a, dg, (size_t)n * f);			  /* a <- da */
	if (dx)
		pt_gemm(m->dtype, 0, 0, n, h, f, a, f, w1, h, 0, dx, h); /* dx = da w1 */
}

void pt_mlp_weight_grad(const pt_mlp *m, const void *dy, const void *g, const void *da, const void *x, void *dw1,
			void *dw2)
{
	const int n = m->n, h = m->h, f = 4 * m->h;
	pt_gemm(m->dtype, 1, 0, h, f, n, dy, h, g, f, 1, dw2, f); /* dw2 += dy^T g */
	pt_gemm(m->dtype, 1, 0, f, h, n, da, f, x, h, 1, dw1, h); /* dw1 += da^T x */
}

double pt_mlp_flops(const pt_mlp *m, int kind, int first)
{
	double one = 2.0 * m->n * (double)m->h * 4.0 * m->h; /* one n x h x 4h GEMM */
	double input = first ? 1 : 2;			     /* dg, and dx past the first stage */
	switch (kind) {
	case PT_OP_F: return 2 * one;
	case PT_OP_B: return (input + 2) * one;
	case PT_OP_I: return input * one;
	case PT_OP_W: return 2 * one;
	case PT_OP_FB: return (2 + input + 2) * one;
	}
	return 0;
}
