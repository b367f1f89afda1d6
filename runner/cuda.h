/*
 * runner/cuda.h — the cuda backend: the cpu backend's model and plans run
 * on GPUs. Compute is cuBLAS GEMMs plus pipetrace's own element-wise
 * kernels (kernels.h) on each rank's compute stream; messages travel on
 * each rank's communication stream, through NCCL (xfer_nccl.c) or
 * device-to-device copies (xfer_cuda.c), ordered against compute with CUDA
 * events; every op is bracketed by CUDA events (its device interval), an
 * NVTX range and a CUPTI external correlation id. The executor (exec.h)
 * walks the plans as for the cpu backend.
 *
 * Layers, one header: where ranks run (gpu_map.c: pure, also in builds
 * without CUDA; cuda_mpi.c: the process group under mpirun), the backend
 * (cuda_cuda.c), its transports (xfer_*.c), its check (cuda_check_cuda.c)
 * and the command (run_cuda.c; cuda.c without CUDA). Private to runner/.
 */
#ifndef PT_RUNNER_CUDA_H
#define PT_RUNNER_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "exec.h"

/* --------------------------------------------- processes and devices */

/* The processes of a run: one (size 1) unless launched by mpirun. */
typedef struct pt_procs {
	int size, rank; /* MPI_COMM_WORLD */
	int local_rank; /* among the processes of this node */
	int mpi;	/* MPI_Init was called (pt_procs_fini finalizes) */
} pt_procs;

/* Join the process group: under mpirun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
 * PMIX_RANK in the environment) MPI_Init; else a group of one. PT_ENOTSUP,
 * logged, when launched by mpirun with several processes but built without
 * MPI. */
int pt_procs_init(pt_procs *p);
/* Broadcast bytes from process 0 (the NCCL unique id). */
int pt_procs_bcast(pt_procs *p, void *buf, size_t bytes);
/* Element-wise sum of n doubles over every process, in place. */
int pt_procs_sum(pt_procs *p, double *v, size_t n);
/* The worst of every process's code (so all fail together): 0 when all are 0. */
int pt_procs_agree(pt_procs *p, int err);
/*
 * How far this process's CLOCK_REALTIME runs ahead of process 0's, by
 * ping-pong with process 0 (the exchange of least round trip of 20, the
 * offset its midpoint says); rtt gets that round trip. 0 and 0 for process
 * 0 and for a group of one. Collective.
 */
int pt_procs_clock_offset(pt_procs *p, int64_t *offset_ns, int64_t *rtt_ns);
void pt_procs_fini(pt_procs *p);

/* How a run's ranks sit on devices. */
enum pt_topo {
	PT_TOPO_SHARED = 0, /* every rank of this process on one GPU, own streams each */
	PT_TOPO_LOCAL,	    /* one process drives several GPUs (--gpus N) */
	PT_TOPO_MPI,	    /* one process per rank and GPU, under mpirun */
};
const char *pt_topo_name(int topo);

typedef struct pt_gpu_map {
	int topo;
	int ranks;	/* the plan's */
	int ngpus;	/* devices this process uses */
	int *device;	/* [ranks]: the rank's device in this process, -1 when another process runs it */
	uint8_t *local; /* [ranks]: this process runs the rank */
} pt_gpu_map;

/*
 * Place `ranks` ranks: in a group of one, over `gpus` devices (0: one per
 * rank, at most `visible`) in contiguous blocks, rank r on device
 * r * gpus / ranks (pipeline neighbours share a device where they must);
 * under mpirun (procs->size > 1) one rank per process, on device
 * local_rank % visible. PT_EINVAL, logged with the numbers, when gpus >
 * visible or gpus > ranks, when visible < 1, or when the process count is
 * not the rank count. Pure: no CUDA call.
 */
int pt_gpu_map_make(int ranks, int gpus, int visible, const pt_procs *procs, pt_gpu_map *out);
void pt_gpu_map_free(pt_gpu_map *m);

/* "run.db" -> "run.rank3.db" (before the last ".db", else appended);
 * returns the length snprintf would. */
int pt_rank_db_name(const char *path, int rank, char *buf, size_t size);

/* ------------------------------------------------------------- GEMM */

/* A cuBLAS call's arguments (column-major): op(a) is m x k, op(b) k x n,
 * C m x n with leading dimension ldc; trans* 1 = transpose. */
typedef struct pt_colmajor_gemm {
	int transa, transb, m, n, k;
	const void *a;
	int lda;
	const void *b;
	int ldb;
} pt_colmajor_gemm;

/* The cuBLAS call computing pt_gemm's row-major C (M x N, ldc) = op(A)
 * op(B) (cpu.h says what ta, tb, lda, ldb mean): C's ldc stays. Pure. */
pt_colmajor_gemm pt_gemm_colmajor(int ta, int tb, int M, int N, int K, const void *A, int lda, const void *B, int ldb);

/* ----------------------------------------------------------- the backend */

typedef struct pt_cuda_opts {
	int hidden, seq, mb_size; /* as the cpu backend's */
	int dtype;		  /* enum pt_dtype: fp32, fp64 or bf16 */
	uint64_t seed;
	int trace; /* CUPTI (when built in) and NVTX around ops; CUDA events always */
} pt_cuda_opts;

/* The CUDA devices this process sees; 0 and PT_ENODEV (logged, with the
 * CUDA error: no driver, no device) when it sees none. */
int pt_cuda_devices(int *count);

/* The transport a map gets: "nccl" where every rank has a GPU of its own
 * and NCCL is built in, "nccl" under mpirun (which needs it), else "copy". */
const char *pt_cuda_transport(const pt_gpu_map *map);

typedef struct pt_cuda pt_cuda;

/*
 * Set a run up on the map's devices: weights of every local chunk, inputs
 * and targets where the first and last stages run, streams, cuBLAS
 * handles, events, the activation pools, the transport (under mpirun the
 * NCCL id goes through procs). plan, map and procs are borrowed.
 * PT_ENODEV / PT_ENOMEM / PT_ENOTSUP, logged.
 */
int pt_cuda_create(const pt_plan *plan, const pt_cuda_opts *o, const pt_gpu_map *map, pt_procs *procs, pt_cuda **out);

/* Recording of the next steps into rec (NULL: none): each rank's streams
 * are described in the trace and bound to CUPTI (cupti may be NULL), and
 * CUPTI's activity before `now` is dropped (the warm-up's). */
int pt_cuda_trace(pt_cuda *c, pt_rec *rec, pt_cupti *cupti);

/* One step (gradients zeroed first); see pt_exec_step. Op and message
 * intervals are the device's. */
int pt_cuda_step(pt_cuda *c, const pt_exec_step_opts *so, pt_exec_result *res);

/* The check of the last step (cuda_check_cuda.c): losses and gradients
 * against the cpu backend's sequential reference (pt_mlp_reference), with
 * a tolerance fitted to the dtype. Under mpirun every process takes part. */
typedef struct pt_cuda_check {
	int mbs, close;	       /* microbatches, and those whose loss is within loss_limit */
	int first_bad;	       /* the first that is not, -1 */
	double loss, ref_loss; /* its two values */
	double loss_limit;     /* |loss - ref| / |ref| that passes */
	double worst;	       /* largest Σ(x-y)²/Σ(x²+y²) over the parameters */
	int worst_stage, worst_w;
	double limit; /* what passes */
	int ok;
} pt_cuda_check;

/* The limits of the check for a dtype: loss (relative) and gradients. */
void pt_cuda_check_limits(int dtype, double *loss_limit, double *grad_limit);

int pt_cuda_check_run(pt_cuda *c, pt_cuda_check *out);

/* The run's cuda.* meta keys (sizes, dtype, devices, topology, transport,
 * clock alignment). */
int pt_cuda_meta(const pt_cuda *c, pt_rec *rec);

/* Floating-point operations of one step's compute on this process's ranks. */
double pt_cuda_step_flops(const pt_cuda *c);

void pt_cuda_destroy(pt_cuda *c);

#endif
