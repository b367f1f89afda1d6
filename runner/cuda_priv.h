/*
 * runner/cuda_priv.h — the inside of a cuda backend run, shared by
 * cuda_cuda.c (the backend), xfer_cuda.c and xfer_nccl.c (its transports)
 * and cuda_check_cuda.c (its check); nobody else sees it. Built with CUDA
 * only.
 */
#ifndef PT_RUNNER_CUDA_PRIV_H
#define PT_RUNNER_CUDA_PRIV_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdatomic.h>

#include "cuda.h"

/* Weights and gradients of one rank's chunk, in device memory; gradients
 * are fp32 when the dtype is bf16 (accumulated over microbatches). */
struct pt_cuda_param {
	void *w1, *w2, *dw1, *dw2;
};

struct pt_cuda_rank {
	int rank, dev, n;		/* n: plan steps */
	cudaStream_t compute, fb, comm; /* fb: an FB's backward half */
	cublasHandle_t blas, blas_fb;
	cudaEvent_t *ev; /* [2n]: device start and end of plan step i */
	cudaEvent_t origin, fork, join, ready;
	int64_t origin_ns, origin_err_ns; /* CLOCK_MONOTONIC of origin, and its uncertainty */
	void *dg, *dg_fb;		  /* n x 4h scratch of each stream */
	char *data;			  /* G inputs then G targets, where a first / last stage runs */
	double *loss;			  /* [G] device, on ranks with a last stage */
	cudaStream_t cur;		  /* the stream the op being issued runs on */
	cublasHandle_t cur_blas;
	int in_fb;
	int bound; /* this step's thread is bound to the rank for CUPTI's runtime records */
	/* transport, this step */
	pt_msg **sent; /* sends posted and not yet done */
	int nsent;
	pt_msg **group; /* NCCL: posted, not yet issued */
	int ngroup;
	int *batch_left; /* [batches]: messages of the batch not posted yet */
	int nbatch;
	atomic_uchar *issued; /* [n]: the message's transfer is queued on a stream (any thread) */
	pt_msg **msg;	      /* [n]: the executor's message of each step, once posted */
	void *nccl;	      /* ncclComm_t */
};

/* A transport: how messages of one run travel (xfer_cuda.c: copies;
 * xfer_nccl.c: NCCL). Calls come from rank threads as exec.h describes. */
struct pt_cuda_xfer {
	const char *name;
	int (*begin)(pt_cuda *c);
	int (*post)(pt_cuda *c, pt_msg *m);
	/* queue on the rank's compute stream a wait for m (issuing it first
	 * when it is still held back); may block until the peer has posted */
	int (*wait)(pt_cuda *c, pt_msg *m);
	int (*flush)(pt_cuda *c, int rank); /* issue what is held back, whole batch or not */
	void (*abort)(pt_cuda *c);
	void (*end)(pt_cuda *c);
	void (*destroy)(pt_cuda *c);
};

struct pt_cuda {
	const pt_plan *plan;
	pt_cuda_opts o;
	const pt_gpu_map *map;
	pt_procs *procs;
	pt_mlp m; /* the host view: n, h, dtype (bf16: weights and data), element size */
	size_t nh_bytes;
	int G;
	struct pt_cuda_param *par; /* [rank * chunks + chunk], local ranks */
	struct pt_cuda_rank *rk;   /* [ranks] */
	double *loss;		   /* [G] host, of the last step */
	int stepped;
	pt_exec *x;
	pt_exec_ops ops;
	const struct pt_cuda_xfer *xfer;
	void *xstate; /* the transport's */
	pt_rec *rec;
	pt_cupti *cupti;
	int64_t clock_err_ns; /* the largest origin uncertainty of the last step */
};

/* Log a CUDA / cuBLAS failure naming the call; PT_ENODEV for a missing
 * device or driver, else PT_EIO. 0 for success. */
int pt_cu_check(cudaError_t e, const char *what);
int pt_cublas_check(cublasStatus_t s, const char *what);

/* The cuBLAS entry points the backend calls, resolved at run time
 * (cublas_cuda.c says why): pt_cublas_load() once before the first use. */
typedef struct pt_cublas_api {
	cublasStatus_t (*create)(cublasHandle_t *h);
	cublasStatus_t (*destroy)(cublasHandle_t h);
	cublasStatus_t (*set_stream)(cublasHandle_t h, cudaStream_t s);
	cublasStatus_t (*gemm_ex)(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
				  const void *alpha, const void *a, cudaDataType at, int lda, const void *b,
				  cudaDataType bt, int ldb, const void *beta, void *c, cudaDataType ct, int ldc,
				  cublasComputeType_t compute, cublasGemmAlgo_t algo);
} pt_cublas_api;
extern pt_cublas_api pt_cublas;
int pt_cublas_load(void);

/* The message's start and end events (its step's, on its rank). */
static inline cudaEvent_t pt_cuda_ev(pt_cuda *c, const pt_msg *m, int end)
{
	return c->rk[m->rank].ev[2 * m->step + end];
}

/* Order the rank's comm stream after the compute issued so far (buffers a
 * message reads or writes), from the rank's thread. */
int pt_cuda_comm_after_compute(pt_cuda *c, int rank);

/* A message's transfer and its events are queued (from any thread). */
void pt_cuda_issued(pt_cuda *c, pt_msg *m);

/* Make the rank's compute stream wait for m's end; a send is then done. */
int pt_cuda_compute_after(pt_cuda *c, pt_msg *m);

int pt_xfer_copy_init(pt_cuda *c);
/* PT_ENOTSUP (logged) in a build without NCCL. */
int pt_xfer_nccl_init(pt_cuda *c);

#endif
