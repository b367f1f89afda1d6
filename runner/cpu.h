/*
 * runner/cpu.h — the cpu backend: a plan executed for real on threads of
 * this process. Every stage is the MLP chunk of DualPipe's examples
 * (Linear h->4h, GELU, Linear 4h->h, no biases) on a (mb-size * seq, hidden)
 * activation, the loss an MSE at the end of each pipeline; ranks run on
 * exec.c's executor, messages travel through chan.c's channels, and a
 * sequential reference run checks the result. Three layers, one header:
 * GEMM (gemm_openblas.c, or gemm.c's own kernel), the stage math (mlp.c),
 * and the backend (cpu.c, cpu_check.c); stage.c holds what the cuda backend
 * shares with it (the activation slot, the step's FLOPs). Private to runner/.
 */
#ifndef PT_RUNNER_CPU_H
#define PT_RUNNER_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "exec.h"

/* bf16 is the cuda backend's only (the cpu backend refuses it). */
enum pt_dtype { PT_DTYPE_F32 = 0, PT_DTYPE_F64 = 1, PT_DTYPE_BF16 = 2 };

/* "fp32" / "fp64" / "bf16", and back (-1 when none). */
const char *pt_dtype_name(int dtype);
int pt_dtype_parse(const char *name);

/* ------------------------------------------------------------------ GEMM */

/*
 * C (M x N, row stride ldc) = op(A) * op(B), plus C itself when acc; all
 * row-major, op(X) the transpose of X when its flag is set (A is K x M then,
 * else M x K; B is N x K, else K x N). dtype says float or double. Runs on
 * the calling thread only, deterministically: the same call on the same
 * inputs gives the same bits. Thread-safe after pt_gemm_init.
 */
void pt_gemm(int dtype, int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb, int acc,
	     void *C, int ldc);
/* Set the GEMM up once per process (OpenBLAS: one thread per call). */
void pt_gemm_init(void);
/* What pt_gemm runs, e.g. "OpenBLAS 0.3.21 (Haswell kernels, pthread
 * build, 1 thread per call)"; valid after pt_gemm_init. */
const char *pt_gemm_name(void);
/* The blocked kernel of gemm.c, in every build (pt_gemm when OpenBLAS is
 * not compiled in; benchmarks compare the two). Same contract as pt_gemm. */
void pt_gemm_blocked(int dtype, int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb,
		     int acc, void *C, int ldc);

/* ------------------------------------------------------- the stage math */

typedef struct pt_mlp {
	int n;	    /* rows: mb-size * seq */
	int h;	    /* hidden */
	int dtype;  /* enum pt_dtype */
	size_t esz; /* bytes per element */
} pt_mlp;

/* Weights of model stage `stage` as torch's Linear initialises them
 * (uniform within ±1/sqrt(fan_in)), from a counter-based generator: the
 * same (seed, stage) gives the same bits anywhere. w1 is 4h x h, w2 h x 4h. */
void pt_mlp_init_weights(const pt_mlp *m, uint64_t seed, int stage, void *w1, void *w2);

/* The input (target = 0) or the target (1) of global microbatch gmb: n x h
 * values of unit variance, determined by (seed, gmb). */
void pt_mlp_data(const pt_mlp *m, uint64_t seed, int gmb, int target, void *out);

/* Forward: a = x w1^T (n x 4h), g = GELU(a), y = g w2^T (n x h). */
void pt_mlp_forward(const pt_mlp *m, const void *w1, const void *w2, const void *x, void *a, void *g, void *y);

/* MSE of y against t, summed in double in index order; dy = 2 (y - t) / (n h). */
double pt_mlp_loss(const pt_mlp *m, const void *y, const void *t, void *dy);

/* Backward for the input: dg = dy w2 (into the n x 4h scratch dg), then
 * da = dg * GELU'(a) in place of a, then dx = da w1 unless dx is NULL (the
 * first stage has no input gradient to pass on). */
void pt_mlp_backward_input(const pt_mlp *m, const void *w1, const void *w2, const void *dy, void *a, void *dg,
			   void *dx);

/* Weight gradients, accumulated: dw2 += dy^T g, dw1 += da^T x. */
void pt_mlp_weight_grad(const pt_mlp *m, const void *dy, const void *g, const void *da, const void *x, void *dw1,
			void *dw2);

/* Floating-point operations of the GEMMs in one op of this kind (F, B, I,
 * W, FB); `first` when the stage is a pipeline's first (no dx). */
double pt_mlp_flops(const pt_mlp *m, int kind, int first);

/* --------------------------- what the cpu and cuda backends share (stage.c) */

/* One (chunk, microbatch)'s activations, in host or device memory: x the
 * received input, a the pre-activation (then its gradient), g = GELU(a), y the
 * output, dy its gradient, dx the input's gradient; xin what the forward read
 * (x, or the microbatch's input at a first stage). */
typedef struct pt_mlp_slot {
	void *x, *a, *g, *y, *dy, *dx;
	const void *xin;
} pt_mlp_slot;

/* A slot's size in n x h buffers: x, a (4), g (4), y, dy, dx. */
enum { PT_MLP_SLOT_NH = 12 };

/* Lay s out over mem, PT_MLP_SLOT_NH * nh bytes (nh: one n x h buffer, with
 * any padding the backend wants between buffers); xin = x. mem stays the
 * caller's: s->x is its start. Never fails. */
void pt_mlp_slot_layout(pt_mlp_slot *s, void *mem, size_t nh);

/* The buffer of s an executor name stands for (exec.h); NULL for none. */
void *pt_mlp_slot_buf(const pt_mlp_slot *s, enum pt_buf which);

/* Floating-point operations of one step's compute ops (an FB counts as its F
 * and its B) on the ranks of p whose entry in ranks[p->ranks] is nonzero, or
 * on every rank when ranks is NULL. */
double pt_mlp_plan_flops(const pt_mlp *m, const pt_plan *p, const uint8_t *ranks);

/* ---------------------------------------------------------- the backend */

typedef struct pt_cpu_opts {
	int hidden;  /* default 256 */
	int seq;     /* default 64 */
	int mb_size; /* default 2 */
	int dtype;   /* default PT_DTYPE_FP32 */
	uint64_t seed; /* default 233, the examples' */
} pt_cpu_opts;

pt_cpu_opts pt_cpu_defaults(void);

/* Bytes of every activation / gradient message under o. */
int64_t pt_cpu_msg_bytes(const pt_cpu_opts *o);

/* What a run needs, in bytes, and what this machine has. */
typedef struct pt_cpu_mem {
	double params;	  /* weights and gradients of every rank's chunks */
	double acts;	  /* the activation pools and per-rank scratch */
	double data;	  /* inputs and targets of every microbatch */
	double reference; /* the sequential reference of the check */
	double total;
	double avail; /* MemAvailable, or the cgroup's limit when lower; 0 if unknown */
} pt_cpu_mem;

/* Estimate the memory a run of plan under o needs, before anything large
 * is allocated. PT_EINVAL for sizes out of range (logged). */
int pt_cpu_memory(const pt_plan *plan, const pt_cpu_opts *o, pt_cpu_mem *out);

/* PT_EINVAL, logged with the size needed, the size available and the
 * breakdown, when the run (params, acts, data) and, with_reference, the
 * check's reference need more than m->avail; 0 otherwise, and when the
 * available memory is unknown. */
int pt_cpu_refuse_if_short(const pt_cpu_mem *m, int with_reference);

typedef struct pt_cpu pt_cpu;

/*
 * Set up a run of plan (validated, borrowed until pt_cpu_destroy): weights
 * of every rank's chunks (a DualPipe stage's two copies alike), inputs and
 * targets, activation pools, channels. Refuses with PT_EINVAL, naming the
 * size needed and the size available, when the run would not fit in memory
 * (checked before anything large is allocated). PT_ENOMEM.
 */
int pt_cpu_create(const pt_plan *plan, const pt_cpu_opts *o, pt_cpu **out);

/* Run one step (gradients zeroed first). See pt_exec_step. */
int pt_cpu_step(pt_cpu *c, const pt_exec_step_opts *so, pt_exec_result *res);

/* Per-microbatch losses of the last step, by global microbatch (NULL
 * before a step), and how many. */
const double *pt_cpu_losses(const pt_cpu *c, int *n);

/* The check of the last step against a sequential reference. */
typedef struct pt_cpu_check {
	int mbs;	 /* microbatches */
	int equal;	 /* of them, losses bitwise equal to the reference's */
	int first_bad;	 /* the first that differs, -1 */
	double loss, ref_loss; /* its two values */
	int params;	 /* parameter tensors compared (2 per model stage) */
	double worst;	 /* largest 1 - 2Σxy/Σ(x²+y²) over them */
	int worst_stage; /* its model stage */
	int worst_w;	 /* 1 or 2: which Linear */
	double limit;	 /* what passes: 1e-13 */
	int ok;		 /* every loss equal and worst < limit */
} pt_cpu_check;

/*
 * Run the model unpartitioned, microbatch by microbatch (forward, loss, full
 * backward, gradients accumulated), with the same kernels, and compare:
 * losses bit for bit, and each parameter's gradient (a DualPipe stage's two
 * copies summed first) by 1 - 2Σxy/Σ(x²+y²) computed in double, the measure
 * of DualPipe's examples. progress (may be NULL) gets microbatches done.
 * PT_ENOMEM; PT_EINVAL before any step.
 */
int pt_cpu_check_run(pt_cpu *c, void (*progress)(void *ctx, size_t done, size_t total), void *ctx,
		     pt_cpu_check *out);

/*
 * The sequential reference both backends' checks compare with (cpu_check.c):
 * the model of nstages stages under (m, seed) run unpartitioned, microbatch
 * after microbatch in global order (forward through every stage, loss, full
 * backward, gradients accumulated) on G global microbatches, with mlp.c's
 * functions. Fills loss[G] and accumulates into the caller's zeroed dw1[s],
 * dw2[s] (m->dtype, 4h x h and h x 4h). progress may be NULL. PT_ENOMEM.
 */
int pt_mlp_reference(const pt_mlp *m, uint64_t seed, int nstages, int G, double *loss, void *const *dw1,
		     void *const *dw2, void (*progress)(void *ctx, size_t done, size_t total), void *ctx);

/* Σ(x-y)²/Σ(x²+y²) in double (= 1 - 2Σxy/Σ(x²+y²)) of count values: x the
 * sum of ncopy arrays (a DualPipe stage's copies), y the reference; both in
 * m->dtype. 1 when only x is nonzero, NaN propagates. */
double pt_grad_error(const pt_mlp *m, const void *const *copies, int ncopy, const void *ref, size_t count);

/* Write the run's cpu.* meta keys (sizes, dtype, seed, GEMM, flops). */
int pt_cpu_meta(const pt_cpu *c, pt_rec *rec);

/* Floating-point operations of one step's compute. */
double pt_cpu_step_flops(const pt_cpu *c);

void pt_cpu_destroy(pt_cpu *c);

#endif
