/*
 * runner/cuda_cuda.c — the cuda backend: the executor's table (exec.h)
 * filled with cuBLAS GEMMs and kernels.h's kernels on each rank's streams,
 * a transport (xfer_*.c), and what a run owns on its devices.
 *
 * Each rank has a compute stream, a second compute stream for FB, and a
 * communication stream, a cuBLAS handle per compute stream and one CUDA
 * event pair per plan step. Rank threads only queue work: an op's events
 * are recorded on the compute stream around it, its launches are tagged
 * with an NVTX range (domain pipetrace, "F0:3") and a CUPTI external
 * correlation id, and after the step, once every stream is drained, the
 * events give each op's device interval on CLOCK_MONOTONIC: at step start
 * each rank records an origin event on its idle compute stream and takes
 * the CPU clock on both sides of its completion (the midpoint is the
 * origin; half the gap, usually a few microseconds, is its uncertainty,
 * kept in meta cuda.clock_err_ns).
 *
 * FB runs as two concurrent streams: the forward on the compute stream,
 * the backward on the rank's fb stream, forked from and joined back into
 * the compute stream by events. The two halves touch different chunks'
 * activations and scratch (their weights are only read, their gradients
 * only written by the backward), so nothing orders them; the GPU overlaps
 * their kernels wherever one half leaves SMs idle, which the small GEMMs
 * of a pipeline stage do, and the trace shows the overlap as kernels on two
 * streams under one op. Interleaving sub-blocks on one stream would need
 * the GEMMs split by hand and gains only where communication sits inside
 * the pair; here it is in the batches around it (exec.c).
 *
 * cuBLAS is loaded on the first run (cublas_cuda.c), not linked: linked,
 * its cuBLASLt costs every pipetrace command 0.1 s and 210 MB. GELU is
 * pipetrace's kernel, not a cuBLASLt epilogue: cuBLASLt's is the tanh
 * approximation, and the check compares with the exact erf form.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "cuda_priv.h"
#include "kernels.h"

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int pt_cu_check(cudaError_t e, const char *what)
{
	if (e == cudaSuccess)
		return 0;
	int nodev = e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver || e == cudaErrorInvalidDevice;
	return pt_logerr(nodev ? PT_ENODEV : PT_EIO, "cuda backend: %s failed: %s (%s)", what, cudaGetErrorString(e),
			 cudaGetErrorName(e));
}

int pt_cublas_check(cublasStatus_t s, const char *what)
{
	if (s == CUBLAS_STATUS_SUCCESS)
		return 0;
	return pt_logerr(PT_EIO, "cuda backend: %s failed: cuBLAS status %d", what, (int)s);
}

#define CU(call)   pt_cu_check((call), #call)
#define BLAS(call) pt_cublas_check((call), #call)

int pt_cuda_devices(int *count)
{
	*count = 0;
	cudaError_t e = cudaGetDeviceCount(count);
	if (e != cudaSuccess) {
		*count = 0;
		int rt = 0;
		cudaRuntimeGetVersion(&rt);
		return pt_logerr(PT_ENODEV, "cuda backend: no CUDA device: %s (cudaGetDeviceCount: %s)",
				 e == cudaErrorInsufficientDriver
				     ? (rt ? "no NVIDIA driver is loaded, or it is older than the CUDA runtime this "
					     "pipetrace was built with"
					   : "no NVIDIA driver")
				 : e == cudaErrorNoDevice ? "the driver sees no GPU"
							  : "CUDA cannot start",
				 cudaGetErrorName(e));
	}
	if (*count < 1)
		return pt_logerr(PT_ENODEV, "cuda backend: no CUDA device on this machine");
	return 0;
}

static size_t esz_of(int dtype)
{
	return dtype == PT_DTYPE_F64 ? 8 : dtype == PT_DTYPE_BF16 ? 2 : 4;
}
static size_t pad(size_t b)
{
	return (b + 255) & ~(size_t)255;
}

/* --------------------------------------------------------------- GEMM */

/* Row-major C (M x N) = op(A) op(B) (+ C when acc), as pt_gemm; cuBLAS is
 * column-major, so it computes C^T = op(B)^T op(A)^T. c32: C is fp32
 * (bf16 runs' weight gradients). fp32 runs do not use TF32. */
static int gemm(cublasHandle_t h, int dtype, int c32, int ta, int tb, int M, int N, int K, const void *A, int lda,
		const void *B, int ldb, int acc, void *C, int ldc)
{
	pt_colmajor_gemm g = pt_gemm_colmajor(ta, tb, M, N, K, A, lda, B, ldb);
	cublasOperation_t oa = g.transa ? CUBLAS_OP_T : CUBLAS_OP_N, ob = g.transb ? CUBLAS_OP_T : CUBLAS_OP_N;
	if (dtype == PT_DTYPE_F64) {
		double one = 1, beta = acc ? 1 : 0;
		return BLAS(pt_cublas.gemm_ex(h, oa, ob, g.m, g.n, g.k, &one, g.a, CUDA_R_64F, g.lda, g.b, CUDA_R_64F, g.ldb,
					 &beta, C, CUDA_R_64F, ldc, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT));
	}
	float one = 1, beta = acc ? 1.0f : 0.0f;
	cudaDataType ab = dtype == PT_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
	cudaDataType ct = dtype == PT_DTYPE_BF16 && !c32 ? CUDA_R_16BF : CUDA_R_32F;
	cublasComputeType_t ctype = dtype == PT_DTYPE_F32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
	return BLAS(pt_cublas.gemm_ex(h, oa, ob, g.m, g.n, g.k, &one, g.a, ab, g.lda, g.b, ab, g.ldb, &beta, C, ct, ldc,
				 ctype, CUBLAS_GEMM_DEFAULT));
}

/* ---------------------------------------------------------- the table */

static int set_dev(pt_cuda *c, int rank)
{
	return CU(cudaSetDevice(c->rk[rank].dev));
}

static int slot_create(void *be, int rank, void **out)
{
	pt_cuda *c = be;
	const size_t nh = c->nh_bytes;
	pt_mlp_slot *s = calloc(1, sizeof *s);
	void *mem = NULL;
	int err = s ? set_dev(c, rank) : PT_ENOMEM;
	if (!err)
		err = CU(cudaMalloc(&mem, PT_MLP_SLOT_NH * nh));
	if (err) {
		free(s);
		return err == PT_ENOMEM ? pt_logerr(err, "cuda backend: out of memory for an activation slot") : err;
	}
	pt_mlp_slot_layout(s, mem, nh);
	*out = s;
	return 0;
}

static void slot_destroy(void *be, void *slot)
{
	(void)be;
	pt_mlp_slot *s = slot;
	if (s)
		cudaFree(s->x); /* the block's start */
	free(s);
}

static void *slot_buf(void *be, void *slot, enum pt_buf which)
{
	(void)be;
	return pt_mlp_slot_buf(slot, which);
}

static struct pt_cuda_param *param_of(pt_cuda *c, const pt_work *w)
{
	return &c->par[w->rank * c->plan->chunks + w->chunk];
}

static int forward(void *be, const pt_work *w)
{
	pt_cuda *c = be;
	struct pt_cuda_rank *r = &c->rk[w->rank];
	pt_mlp_slot *s = w->slot;
	struct pt_cuda_param *p = param_of(c, w);
	const int n = c->m.n, h = c->m.h, f = 4 * h, dt = c->o.dtype;
	if (w->gmb < 0 || w->gmb >= c->G)
		return pt_logerr(PT_EPLAN, "rank %d: microbatch %d is outside the run", w->rank, w->gmb);
	r->cur = r->compute; /* an FB's forward half too */
	r->cur_blas = r->blas;
	s->xin = w->first ? r->data + (size_t)w->gmb * c->nh_bytes : s->x;
	int err = gemm(r->blas, dt, 0, 0, 1, n, f, h, s->xin, h, p->w1, h, 0, s->a, f);
	if (!err)
		err = CU((cudaError_t)pt_k_gelu(dt, s->a, s->g, (size_t)n * f, r->compute));
	if (!err)
		err = gemm(r->blas, dt, 0, 0, 1, n, h, f, s->g, f, p->w2, f, 0, s->y, h);
	if (!err && w->last)
		err = CU((cudaError_t)pt_k_mse(dt, s->y, r->data + (size_t)(c->G + w->gmb) * c->nh_bytes, s->dy,
					       (size_t)n * h, r->loss + w->gmb, r->compute));
	return err;
}

static int weight_grad_on(pt_cuda *c, struct pt_cuda_rank *r, const pt_work *w, cublasHandle_t b)
{
	pt_mlp_slot *s = w->slot;
	struct pt_cuda_param *p = param_of(c, w);
	const int n = c->m.n, h = c->m.h, f = 4 * h, dt = c->o.dtype;
	(void)r;
	int err = gemm(b, dt, 1, 1, 0, h, f, n, s->dy, h, s->g, f, 1, p->dw2, f);	    /* dw2 += dy^T g */
	return err ? err : gemm(b, dt, 1, 1, 0, f, h, n, s->a, f, s->xin, h, 1, p->dw1, h); /* dw1 += da^T x */
}

static int backward(void *be, const pt_work *w, int defer)
{
	pt_cuda *c = be;
	struct pt_cuda_rank *r = &c->rk[w->rank];
	pt_mlp_slot *s = w->slot;
	struct pt_cuda_param *p = param_of(c, w);
	const int n = c->m.n, h = c->m.h, f = 4 * h, dt = c->o.dtype;
	/* inside an FB the backward half runs on the fb stream */
	r->cur = r->in_fb ? r->fb : r->compute;
	r->cur_blas = r->in_fb ? r->blas_fb : r->blas;
	void *dg = r->in_fb ? r->dg_fb : r->dg;
	int err = gemm(r->cur_blas, dt, 0, 0, 0, n, f, h, s->dy, h, p->w2, f, 0, dg, f); /* dg = dy w2 */
	if (!err)
		err = CU((cudaError_t)pt_k_gelu_backward(dt, s->a, dg, (size_t)n * f, r->cur)); /* a <- da */
	if (!err && !w->first)
		err = gemm(r->cur_blas, dt, 0, 0, 0, n, h, f, s->a, f, p->w1, h, 0, s->dx, h); /* dx = da w1 */
	if (!err && !defer)
		err = weight_grad_on(c, r, w, r->cur_blas);
	return err;
}

static int weight_grad(void *be, const pt_work *w)
{
	pt_cuda *c = be;
	struct pt_cuda_rank *r = &c->rk[w->rank];
	r->cur = r->compute;
	r->cur_blas = r->blas;
	return weight_grad_on(c, r, w, r->blas);
}

static int copy(void *be, int rank, void *dst, enum pt_buf dbuf, void *src, enum pt_buf sbuf)
{
	pt_cuda *c = be;
	struct pt_cuda_rank *r = &c->rk[rank];
	return CU(cudaMemcpyAsync(slot_buf(be, dst, dbuf), slot_buf(be, src, sbuf),
				  (size_t)c->m.n * (size_t)c->m.h * c->m.esz, cudaMemcpyDeviceToDevice, r->cur));
}

/* ------------------------------------------------- ops on the device */

int pt_cuda_comm_after_compute(pt_cuda *c, int rank)
{
	struct pt_cuda_rank *r = &c->rk[rank];
	int err = CU(cudaEventRecord(r->ready, r->compute));
	return err ? err : CU(cudaStreamWaitEvent(r->comm, r->ready, 0));
}

void pt_cuda_issued(pt_cuda *c, pt_msg *m)
{
	atomic_store_explicit(&c->rk[m->rank].issued[m->step], 1, memory_order_release);
}

int pt_cuda_compute_after(pt_cuda *c, pt_msg *m)
{
	struct pt_cuda_rank *r = &c->rk[m->rank];
	int err = CU(cudaStreamWaitEvent(r->compute, pt_cuda_ev(c, m, 1), 0));
	if (err)
		return err;
	if (m->op->kind == PT_OP_SEND) {
		for (int i = 0; i < r->nsent; i++)
			if (r->sent[i] == m) {
				r->sent[i] = r->sent[--r->nsent];
				break;
			}
		if (m->pending)
			atomic_fetch_sub_explicit(m->pending, 1, memory_order_release);
	}
	atomic_store_explicit(&m->done, 1, memory_order_release);
	return 0;
}

/* Sends whose transfer has finished on the device: their buffers are free
 * (so the executor's pool can reuse the slot) without ordering compute. */
static void poll_sends(pt_cuda *c, struct pt_cuda_rank *r)
{
	for (int i = 0; i < r->nsent;) {
		pt_msg *m = r->sent[i];
		/* an event never recorded reads as complete: issued ones only */
		if (atomic_load_explicit(&r->issued[m->step], memory_order_acquire) &&
		    cudaEventQuery(pt_cuda_ev(c, m, 1)) == cudaSuccess) {
			r->sent[i] = r->sent[--r->nsent];
			if (m->pending)
				atomic_fetch_sub_explicit(m->pending, 1, memory_order_release);
			atomic_store_explicit(&m->done, 1, memory_order_release);
		} else {
			i++;
		}
	}
}

/* CUPTI's runtime records name the calling thread: tie this step's rank
 * thread (the executor starts new ones each step) to its rank. */
static int bind_thread(pt_cuda *c, struct pt_cuda_rank *r)
{
	if (r->bound || !c->rec || !c->cupti)
		return 0;
	r->bound = 1;
	return pt_cupti_bind_thread(c->cupti, r->rank);
}

static int op_begin(void *be, int rank, int step, const pt_op *op)
{
	pt_cuda *c = be;
	struct pt_cuda_rank *r = &c->rk[rank];
	/* no flush of held-back NCCL messages here: a batch goes out whole
	 * (xfer_nccl.c says why) */
	int err = set_dev(c, rank);
	if (!err)
		err = bind_thread(c, r);
	if (err)
		return err;
	poll_sends(c, r);
	if (c->rec && c->o.trace) {
		char name[48];
		pt_op_name(op, PT_NAME_SPEC, name, sizeof name);
		pt_nvtx_push(name);
		if (c->cupti)
			pt_cupti_push_op(rank, step);
	}
	err = CU(cudaEventRecord(r->ev[2 * step], r->compute));
	r->in_fb = op->kind == PT_OP_FB;
	if (!err && r->in_fb) { /* the backward half forks off here */
		err = CU(cudaEventRecord(r->fork, r->compute));
		if (!err)
			err = CU(cudaStreamWaitEvent(r->fb, r->fork, 0));
	}
	return err;
}

static int op_end(void *be, int rank, int step, const pt_op *op)
{
	pt_cuda *c = be;
	struct pt_cuda_rank *r = &c->rk[rank];
	(void)op;
	int err = 0;
	if (r->in_fb) { /* join */
		err = CU(cudaEventRecord(r->join, r->fb));
		if (!err)
			err = CU(cudaStreamWaitEvent(r->compute, r->join, 0));
		r->in_fb = 0;
	}
	r->cur = r->compute;
	if (!err)
		err = CU(cudaEventRecord(r->ev[2 * step + 1], r->compute));
	if (c->rec && c->o.trace) {
		if (c->cupti)
			pt_cupti_pop_op();
		pt_nvtx_pop();
	}
	return err;
}

/* CLOCK_MONOTONIC ns of an event of rank r. */
static int event_ns(struct pt_cuda_rank *r, cudaEvent_t e, int64_t *ns)
{
	float ms = 0;
	int err = CU(cudaEventElapsedTime(&ms, r->origin, e));
	*ns = r->origin_ns + (int64_t)llround((double)ms * 1e6);
	return err;
}

static int op_time(void *be, int rank, int step, int64_t *start, int64_t *end)
{
	pt_cuda *c = be;
	struct pt_cuda_rank *r = &c->rk[rank];
	int err = event_ns(r, r->ev[2 * step], start);
	return err ? err : event_ns(r, r->ev[2 * step + 1], end);
}

static int step_begin(void *be, const pt_rec *rec)
{
	(void)rec;
	pt_cuda *c = be;
	int err = 0;
	c->clock_err_ns = 0;
	for (int k = 0; k < c->plan->ranks && !err; k++) {
		struct pt_cuda_rank *r = &c->rk[k];
		if (!c->map->local[k])
			continue;
		r->nsent = r->ngroup = 0;
		r->bound = 0;
		for (int i = 0; i < r->n; i++)
			atomic_store(&r->issued[i], 0);
		memset(r->msg, 0, (size_t)r->n * sizeof *r->msg);
		for (int b = 0; b < r->nbatch; b++)
			r->batch_left[b] = 0;
		for (int i = 0; i < r->n; i++) {
			const pt_op *o = &c->plan->rank[k].ops[i];
			if (pt_kind_is_comm(o->kind) && o->batch >= 0 && o->batch < r->nbatch)
				r->batch_left[o->batch]++;
		}
		if ((err = set_dev(c, k)) || (err = CU(cudaDeviceSynchronize())))
			break;
		int64_t t0 = mono_ns();
		if ((err = CU(cudaEventRecord(r->origin, r->compute))) || (err = CU(cudaEventSynchronize(r->origin))))
			break;
		int64_t t1 = mono_ns();
		r->origin_ns = t0 + (t1 - t0) / 2;
		r->origin_err_ns = (t1 - t0 + 1) / 2;
		if (r->origin_err_ns > c->clock_err_ns)
			c->clock_err_ns = r->origin_err_ns;
	}
	return err ? err : c->xfer->begin(c);
}

/* Every stream drained; every message's times from its events. */
static void step_end(void *be)
{
	pt_cuda *c = be;
	c->xfer->end(c);
	for (int k = 0; k < c->plan->ranks; k++) {
		struct pt_cuda_rank *r = &c->rk[k];
		if (!c->map->local[k] || set_dev(c, k))
			continue;
		if (CU(cudaDeviceSynchronize()))
			continue;
		for (int i = 0; i < r->n; i++) {
			pt_msg *m = r->msg[i];
			if (!m || !atomic_load(&r->issued[i]) || event_ns(r, r->ev[2 * i], &m->start) ||
			    event_ns(r, r->ev[2 * i + 1], &m->end))
				continue;
		}
	}
}

static int post(void *be, pt_msg *m)
{
	pt_cuda *c = be;
	struct pt_cuda_rank *r = &c->rk[m->rank];
	int err = set_dev(c, m->rank);
	if (!err)
		err = bind_thread(c, r);
	r->msg[m->step] = m;
	if (m->op->kind == PT_OP_SEND)
		r->sent[r->nsent++] = m;
	return err ? err : c->xfer->post(c, m);
}

static int wait_msg(void *be, pt_msg *m)
{
	pt_cuda *c = be;
	int err = set_dev(c, m->rank);
	return err ? err : c->xfer->wait(c, m);
}

static void abort_all(void *be)
{
	pt_cuda *c = be;
	c->xfer->abort(c);
}

/* ----------------------------------------------------------- lifetime */

/* Weights or data made on the host by mlp.c (fp32 for fp32 and bf16 runs,
 * fp64 for fp64), then copied to the device in the run's dtype: bf16 is
 * rounded on the device (pt_k_cast, round to nearest even). */
static int upload(pt_cuda *c, void *dev, const void *host, size_t count)
{
	if (c->o.dtype != PT_DTYPE_BF16)
		return CU(cudaMemcpy(dev, host, count * c->m.esz, cudaMemcpyHostToDevice));
	void *tmp = NULL;
	int err = CU(cudaMalloc(&tmp, count * 4));
	if (!err)
		err = CU(cudaMemcpy(tmp, host, count * 4, cudaMemcpyHostToDevice));
	if (!err)
		err = CU((cudaError_t)pt_k_cast(PT_DTYPE_F32, PT_DTYPE_BF16, tmp, dev, count, NULL));
	if (!err)
		err = CU(cudaDeviceSynchronize());
	cudaFree(tmp);
	return err;
}

static int rank_create(pt_cuda *c, int k, void *hostbuf)
{
	struct pt_cuda_rank *r = &c->rk[k];
	const pt_plan *p = c->plan;
	const size_t nh = c->nh_bytes, hh = (size_t)4 * c->m.h * c->m.h;
	const size_t dsz = c->o.dtype == PT_DTYPE_BF16 ? 4 : c->m.esz; /* gradients */
	r->rank = k;
	r->dev = c->map->device[k];
	r->n = (int)p->rank[k].n;
	r->ev = calloc(2 * (size_t)(r->n ? r->n : 1), sizeof *r->ev);
	r->sent = calloc((size_t)(r->n ? r->n : 1), sizeof *r->sent);
	r->group = calloc((size_t)(r->n ? r->n : 1), sizeof *r->group);
	r->issued = calloc((size_t)(r->n ? r->n : 1), sizeof *r->issued);
	r->msg = calloc((size_t)(r->n ? r->n : 1), sizeof *r->msg);
	for (int i = 0; i < r->n; i++)
		if (p->rank[k].ops[i].batch + 1 > r->nbatch)
			r->nbatch = p->rank[k].ops[i].batch + 1;
	r->batch_left = calloc((size_t)(r->nbatch ? r->nbatch : 1), sizeof *r->batch_left);
	if (!r->ev || !r->sent || !r->group || !r->issued || !r->msg || !r->batch_left)
		return PT_ENOMEM;
	int err = set_dev(c, k);
	if (!err)
		err = CU(cudaStreamCreateWithFlags(&r->compute, cudaStreamNonBlocking));
	if (!err)
		err = CU(cudaStreamCreateWithFlags(&r->fb, cudaStreamNonBlocking));
	if (!err)
		err = CU(cudaStreamCreateWithFlags(&r->comm, cudaStreamNonBlocking));
	if (!err)
		err = pt_cublas_load();
	if (!err)
		err = BLAS(pt_cublas.create(&r->blas));
	if (!err)
		err = BLAS(pt_cublas.create(&r->blas_fb));
	if (!err)
		err = BLAS(pt_cublas.set_stream(r->blas, r->compute));
	if (!err)
		err = BLAS(pt_cublas.set_stream(r->blas_fb, r->fb));
	cudaEvent_t *one[] = {&r->origin, &r->fork, &r->join, &r->ready};
	for (int i = 0; i < 4 && !err; i++)
		err = CU(cudaEventCreate(one[i]));
	for (int i = 0; i < 2 * r->n && !err; i++)
		err = CU(cudaEventCreate(&r->ev[i]));
	if (!err)
		err = CU(cudaMalloc(&r->dg, 4 * nh));
	if (!err)
		err = CU(cudaMalloc(&r->dg_fb, 4 * nh));
	int first = 0, last = 0;
	for (int ch = 0; ch < p->chunks; ch++) {
		first |= pt_plan_neighbour(p, k, ch, -1) < 0;
		last |= pt_plan_neighbour(p, k, ch, +1) < 0;
	}
	if (!err && (first || last)) {
		if (!(err = CU(cudaMalloc((void **)&r->data, 2 * (size_t)c->G * nh))))
			err = CU(cudaMalloc((void **)&r->loss, (size_t)(c->G ? c->G : 1) * sizeof(double)));
		for (int g = 0; g < c->G && !err; g++) {
			pt_mlp hm = c->m;
			hm.dtype = c->o.dtype == PT_DTYPE_F64 ? PT_DTYPE_F64 : PT_DTYPE_F32;
			hm.esz = hm.dtype == PT_DTYPE_F64 ? 8 : 4;
			for (int t = 0; t < 2 && !err; t++) {
				pt_mlp_data(&hm, c->o.seed, g, t, hostbuf);
				err =
				    upload(c, r->data + (size_t)(t * c->G + g) * nh, hostbuf, (size_t)c->m.n * c->m.h);
			}
		}
	}
	for (int ch = 0; ch < p->chunks && !err; ch++) {
		struct pt_cuda_param *q = &c->par[k * p->chunks + ch];
		void **b[] = {&q->w1, &q->w2, &q->dw1, &q->dw2};
		for (int i = 0; i < 4 && !err; i++)
			err = CU(cudaMalloc(b[i], hh * (i < 2 ? c->m.esz : dsz)));
		if (err)
			break;
		pt_mlp hm = c->m;
		hm.dtype = c->o.dtype == PT_DTYPE_F64 ? PT_DTYPE_F64 : PT_DTYPE_F32;
		hm.esz = hm.dtype == PT_DTYPE_F64 ? 8 : 4;
		char *w2 = (char *)hostbuf + hh * hm.esz;
		pt_mlp_init_weights(&hm, c->o.seed, pt_plan_chunk(p, k, ch)->stage, hostbuf, w2);
		if (!(err = upload(c, q->w1, hostbuf, hh)))
			err = upload(c, q->w2, w2, hh);
	}
	r->cur = r->compute;
	r->cur_blas = r->blas;
	return err;
}

int pt_cuda_create(const pt_plan *plan, const pt_cuda_opts *o, const pt_gpu_map *map, pt_procs *procs, pt_cuda **out)
{
	*out = NULL;
	if (o->hidden < 1 || o->seq < 1 || o->mb_size < 1 || (double)o->seq * o->mb_size > (double)(1 << 30))
		return pt_logerr(PT_EINVAL, "cuda backend: --hidden, --seq and --mb-size out of range");
	pt_cuda *c = calloc(1, sizeof *c);
	if (!c)
		return PT_ENOMEM;
	c->plan = plan;
	c->o = *o;
	c->map = map;
	c->procs = procs;
	c->m = (pt_mlp){.n = o->seq * o->mb_size, .h = o->hidden, .dtype = o->dtype, .esz = esz_of(o->dtype)};
	c->nh_bytes = pad((size_t)c->m.n * (size_t)c->m.h * c->m.esz);
	c->G = plan->mbs[0] + plan->mbs[1];
	const size_t hh = (size_t)4 * o->hidden * o->hidden, nh = (size_t)c->m.n * c->m.h;
	c->par = calloc((size_t)plan->ranks * plan->chunks, sizeof *c->par);
	c->rk = calloc((size_t)plan->ranks, sizeof *c->rk);
	c->loss = malloc((size_t)(c->G ? c->G : 1) * sizeof *c->loss);
	void *hostbuf = malloc(8 * (2 * hh > nh ? 2 * hh : nh));
	int err = !c->par || !c->rk || !c->loss || !hostbuf ? PT_ENOMEM : 0;
	for (int k = 0; k < plan->ranks && !err; k++)
		if (map->local[k])
			err = rank_create(c, k, hostbuf);
	free(hostbuf);
	if (map->topo == PT_TOPO_MPI) /* every process reaches NCCL's bootstrap, or none does */
		err = pt_procs_agree(procs, err);
	if (!err)
		err = !strcmp(pt_cuda_transport(map), "nccl") ? pt_xfer_nccl_init(c) : pt_xfer_copy_init(c);
	if (!err) {
		c->ops = (pt_exec_ops){.slot_create = slot_create,
				       .slot_destroy = slot_destroy,
				       .slot_buf = slot_buf,
				       .msg_bytes = nh * c->m.esz,
				       .forward = forward,
				       .backward = backward,
				       .weight_grad = weight_grad,
				       .copy = copy,
				       .step_begin = step_begin,
				       .step_end = step_end,
				       .post = post,
				       .wait = wait_msg,
				       .abort = abort_all,
				       .op_begin = op_begin,
				       .op_end = op_end,
				       .op_time = op_time};
		err = pt_exec_create_local(plan, &c->ops, c, map->local, &c->x);
	}
	if (err) {
		if (err == PT_ENOMEM)
			pt_log(PT_LOG_ERROR, "cuda backend: out of memory setting the run up");
		pt_cuda_destroy(c);
		return err;
	}
	*out = c;
	return 0;
}

int pt_cuda_trace(pt_cuda *c, pt_rec *rec, pt_cupti *cupti)
{
	c->rec = rec;
	c->cupti = cupti;
	if (!rec || !cupti)
		return 0;
	int err = 0;
	for (int k = 0; k < c->plan->ranks && !err; k++) {
		struct pt_cuda_rank *r = &c->rk[k];
		if (!c->map->local[k])
			continue;
		err = pt_cupti_bind_stream(cupti, k, r->dev, r->compute, PT_STREAM_COMPUTE, "cuda compute");
		if (!err)
			err = pt_cupti_bind_stream(cupti, k, r->dev, r->fb, PT_STREAM_COMPUTE,
						   "cuda compute (FB backward)");
		if (!err)
			err = pt_cupti_bind_stream(cupti, k, r->dev, r->comm, PT_STREAM_COMM, "cuda comm");
	}
	if (!err) { /* what ran before (set-up, warm-up) is not this trace's */
		for (int k = 0; k < c->plan->ranks && !err; k++)
			if (c->map->local[k] && !(err = set_dev(c, k)))
				err = CU(cudaDeviceSynchronize());
		/* the cut first, then the flush: cuptiActivityFlushAll delivers
		 * the buffers before it returns, and their records must meet it */
		pt_cupti_skip_before(cupti, mono_ns());
		if (!err)
			err = pt_cupti_flush(cupti, 1);
	}
	return err;
}

int pt_cuda_step(pt_cuda *c, const pt_exec_step_opts *so, pt_exec_result *res)
{
	const pt_plan *p = c->plan;
	const size_t hh = (size_t)4 * c->o.hidden * c->o.hidden;
	const size_t dsz = c->o.dtype == PT_DTYPE_BF16 ? 4 : c->m.esz;
	int err = 0;
	for (int k = 0; k < p->ranks && !err; k++) {
		if (!c->map->local[k] || (err = set_dev(c, k)))
			continue;
		/* on the rank's compute stream, so a trace shows them there */
		cudaStream_t st = c->rk[k].compute;
		for (int ch = 0; ch < p->chunks && !err; ch++) {
			struct pt_cuda_param *q = &c->par[k * p->chunks + ch];
			if (!(err = CU(cudaMemsetAsync(q->dw1, 0, hh * dsz, st))))
				err = CU(cudaMemsetAsync(q->dw2, 0, hh * dsz, st));
		}
		if (!err && c->rk[k].loss) /* all ones: a NaN, for a loss never computed */
			err = CU(cudaMemsetAsync(c->rk[k].loss, 0xff, (size_t)c->G * sizeof(double), st));
		if (!err)
			err = CU(cudaStreamSynchronize(st));
	}
	if (!err)
		err = pt_exec_step(c->x, so, res);
	for (int g = 0; g < c->G; g++)
		c->loss[g] = NAN;
	double *tmp = malloc((size_t)(c->G ? c->G : 1) * sizeof *tmp);
	if (!tmp && !err)
		err = PT_ENOMEM;
	for (int k = 0; k < p->ranks && !err; k++) {
		if (!c->map->local[k] || !c->rk[k].loss)
			continue;
		/* on the compute stream: a trace shows the copy on a stream it knows */
		if ((err = set_dev(c, k)) ||
		    (err = CU(cudaMemcpyAsync(tmp, c->rk[k].loss, (size_t)c->G * sizeof *tmp, cudaMemcpyDeviceToHost,
					      c->rk[k].compute))) ||
		    (err = CU(cudaStreamSynchronize(c->rk[k].compute))))
			break;
		for (int g = 0; g < c->G; g++)
			if (!isnan(tmp[g]))
				c->loss[g] = tmp[g];
	}
	free(tmp);
	c->stepped = !err;
	return err;
}

double pt_cuda_step_flops(const pt_cuda *c)
{
	return pt_mlp_plan_flops(&c->m, c->plan, c->map->local);
}

int pt_cuda_meta(const pt_cuda *c, pt_rec *rec)
{
	char buf[256];
	int err = 0;
	const int64_t v[] = {c->o.hidden, c->o.seq, c->o.mb_size, c->m.n, c->map->ngpus, c->clock_err_ns};
	const char *k[] = {"cuda.hidden", "cuda.seq", "cuda.mb_size", "cuda.rows", "cuda.gpus", "cuda.clock_err_ns"};
	for (int i = 0; i < 6 && !err; i++)
		err = pt_rec_meta_int(rec, k[i], v[i]);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)c->o.seed);
	if (!err)
		err = pt_rec_meta(rec, "cuda.seed", buf);
	if (!err)
		err = pt_rec_meta(rec, "cuda.dtype", pt_dtype_name(c->o.dtype));
	if (!err)
		err = pt_rec_meta(rec, "cuda.topology", pt_topo_name(c->map->topo));
	if (!err)
		err = pt_rec_meta(rec, "cuda.transport", c->xfer->name);
	if (!err)
		err = pt_rec_meta(rec, "cuda.fb", "two streams (forward on compute, backward on a second stream)");
	if (!err)
		err = pt_rec_meta(rec, "cuda.model", "Linear(h->4h, no bias) -> GELU -> Linear(4h->h, no bias); MSE");
	int dev = -1;
	for (int r = 0; r < c->plan->ranks && dev < 0; r++)
		if (c->map->local[r])
			dev = c->map->device[r];
	struct cudaDeviceProp prop;
	if (!err && dev >= 0 && cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
		snprintf(buf, sizeof buf, "%.200s (sm_%d%d)", prop.name, prop.major, prop.minor);
		err = pt_rec_meta(rec, "cuda.device", buf);
	}
	snprintf(buf, sizeof buf, "%.17g", pt_cuda_step_flops(c));
	if (!err)
		err = pt_rec_meta(rec, "cuda.flops_per_step", buf);
	return err;
}

void pt_cuda_destroy(pt_cuda *c)
{
	if (!c)
		return;
	pt_exec_destroy(c->x);
	if (c->xfer)
		c->xfer->destroy(c);
	for (int k = 0; c->rk && k < c->plan->ranks; k++) {
		struct pt_cuda_rank *r = &c->rk[k];
		if (!c->map->local[k])
			continue;
		cudaSetDevice(r->dev);
		for (int ch = 0; c->par && ch < c->plan->chunks; ch++) {
			struct pt_cuda_param *q = &c->par[k * c->plan->chunks + ch];
			cudaFree(q->w1), cudaFree(q->w2), cudaFree(q->dw1), cudaFree(q->dw2);
		}
		cudaFree(r->dg), cudaFree(r->dg_fb), cudaFree(r->data), cudaFree(r->loss);
		for (int i = 0; r->ev && i < 2 * r->n; i++)
			if (r->ev[i])
				cudaEventDestroy(r->ev[i]);
		cudaEvent_t one[] = {r->origin, r->fork, r->join, r->ready};
		for (int i = 0; i < 4; i++)
			if (one[i])
				cudaEventDestroy(one[i]);
		if (r->blas)
			pt_cublas.destroy(r->blas);
		if (r->blas_fb)
			pt_cublas.destroy(r->blas_fb);
		cudaStream_t s[] = {r->compute, r->fb, r->comm};
		for (int i = 0; i < 3; i++)
			if (s[i])
				cudaStreamDestroy(s[i]);
		free(r->ev), free(r->sent), free(r->group), free(r->issued), free(r->msg), free(r->batch_left);
	}
	free(c->rk);
	free(c->par);
	free(c->loss);
	free(c);
}
