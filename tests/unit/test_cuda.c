/*
 * tests/unit/test_cuda.c — the cuda backend. Without a GPU (every build
 * machine, CI): where ranks go in each topology and what is refused, the
 * per-process database names, the check's tolerances, and the sequential
 * reference the check shares with the cpu backend (pt_mlp_reference gives
 * the cpu check's numbers). With a GPU (skipped, saying why, where there
 * is none or the build has no CUDA): every schedule's numerics against the
 * cpu reference in each dtype and comm mode; a recorded step whose kernels
 * each lie inside the interval of the op that launched them, on that op's
 * rank's compute streams (an FB's backward half on the second one), and
 * whose copy / NCCL traffic is on the comm stream, outside every op.
 */
#include <math.h>

#include "testutil.h"
#include "tu_plan.h"

#include "config.h"
#ifdef PT_HAVE_CUPTI
#include <cupti.h>
#endif
#include "runner/cpu.h"
#include "runner/cuda.h"
#include "runner/runner.h"
#ifdef PT_HAVE_CUDA
#include <dlfcn.h>

#include "runner/cuda_priv.h"
#endif

static void test_gpu_map(void **state)
{
	(void)state;
	pt_gpu_map m;
	pt_procs one = {.size = 1};
	/* one shared GPU */
	assert_int_equal(pt_gpu_map_make(4, 1, 8, &one, &m), 0);
	assert_int_equal(m.topo, PT_TOPO_SHARED);
	for (int r = 0; r < 4; r++)
		assert_true(m.device[r] == 0 && m.local[r]);
	pt_gpu_map_free(&m);
	/* the default: one GPU per rank while there are enough */
	assert_int_equal(pt_gpu_map_make(4, 0, 8, &one, &m), 0);
	assert_int_equal(m.topo, PT_TOPO_LOCAL);
	assert_int_equal(m.ngpus, 4);
	for (int r = 0; r < 4; r++)
		assert_int_equal(m.device[r], r);
	assert_string_equal(pt_cuda_transport(&m),
#ifdef PT_HAVE_NCCL
			    "nccl"
#else
			    "copy"
#endif
	);
	pt_gpu_map_free(&m);
	/* 8 ranks on 2 GPUs: blocks, neighbours together */
	assert_int_equal(pt_gpu_map_make(8, 2, 2, &one, &m), 0);
	int want[8] = {0, 0, 0, 0, 1, 1, 1, 1};
	for (int r = 0; r < 8; r++)
		assert_int_equal(m.device[r], want[r]);
	assert_string_equal(pt_cuda_transport(&m), "copy"); /* NCCL cannot put two ranks on one GPU */
	pt_gpu_map_free(&m);
	/* mpirun: one rank per process, the node's next GPU */
	pt_procs mpi = {.size = 4, .rank = 2, .local_rank = 2};
	assert_int_equal(pt_gpu_map_make(4, 0, 2, &mpi, &m), 0);
	assert_int_equal(m.topo, PT_TOPO_MPI);
	assert_true(m.local[2] && !m.local[0] && !m.local[1] && !m.local[3]);
	assert_int_equal(m.device[2], 0);
	assert_int_equal(m.device[0], -1);
	assert_string_equal(pt_cuda_transport(&m), "nccl");
	pt_gpu_map_free(&m);
	/* refused, naming the numbers */
	tu_log_reset();
	assert_int_equal(pt_gpu_map_make(4, 3, 2, &one, &m), PT_EINVAL);
	assert_logged("--gpus 3, but this machine shows 2 CUDA devices");
	assert_int_equal(pt_gpu_map_make(2, 4, 8, &one, &m), PT_EINVAL);
	assert_logged("--gpus 4 is more GPUs than the plan's 2 ranks");
	assert_int_equal(pt_gpu_map_make(8, 0, 8, &mpi, &m), PT_EINVAL);
	assert_logged("4 processes run a plan of 8 ranks (launch with -np 8)");
	assert_int_equal(pt_gpu_map_make(4, 0, 0, &one, &m), PT_ENODEV);
}

static void test_rank_db_name(void **state)
{
	(void)state;
	char buf[64];
	pt_rank_db_name("run.db", 3, buf, sizeof buf);
	assert_string_equal(buf, "run.rank3.db");
	pt_rank_db_name("out/x.trace.db", 0, buf, sizeof buf);
	assert_string_equal(buf, "out/x.trace.rank0.db");
	pt_rank_db_name("trace", 12, buf, sizeof buf);
	assert_string_equal(buf, "trace.rank12");
}

static void test_check_limits(void **state)
{
	(void)state;
	double l32, g32, l64, g64, l16, g16;
	pt_cuda_check_limits(PT_DTYPE_F32, &l32, &g32);
	pt_cuda_check_limits(PT_DTYPE_F64, &l64, &g64);
	pt_cuda_check_limits(PT_DTYPE_BF16, &l16, &g16);
	/* tighter for more precise types, and never looser than bf16 could pass by chance */
	assert_true(l64 < l32 && l32 < l16 && l16 <= 0.05);
	assert_true(g64 < g32 && g32 < g16 && g16 <= 0.01);
	assert_string_equal(pt_dtype_name(PT_DTYPE_BF16), "bf16");
	assert_int_equal(pt_dtype_parse("bf16"), PT_DTYPE_BF16);
}

/* cuBLAS's definition of GEMM (column-major, as its documentation gives it):
 * C = op(a) op(b), op(x) = x or x^T, element (i, j) of a matrix at i + j ld. */
static void colmajor_gemm(const pt_colmajor_gemm *g, double *C, int ldc)
{
	const double *a = g->a, *b = g->b;
	for (int i = 0; i < g->m; i++)
		for (int j = 0; j < g->n; j++) {
			double s = 0;
			for (int p = 0; p < g->k; p++) {
				double x = g->transa ? a[p + i * g->lda] : a[i + p * g->lda];
				double y = g->transb ? b[j + p * g->ldb] : b[p + j * g->ldb];
				s += x * y;
			}
			C[i + j * ldc] = s;
		}
}

/* The cuda backend's GEMM arguments, through cuBLAS's definition, give the
 * cpu backend's row-major GEMM for every transposition, with padded
 * strides, bit for bit (small integers: exact in any order). */
static void test_gemm_colmajor(void **state)
{
	(void)state;
	pt_gemm_init();
	const int M = 5, N = 7, K = 3, pad = 2;
	for (int ta = 0; ta < 2; ta++)
		for (int tb = 0; tb < 2; tb++) {
			int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
			double A[64], B[64], want[64], got[64];
			for (int i = 0; i < 64; i++) {
				A[i] = (i * 7) % 11 - 5;
				B[i] = (i * 5) % 13 - 6;
				want[i] = got[i] = 0;
			}
			pt_gemm_blocked(PT_DTYPE_F64, ta, tb, M, N, K, A, lda, B, ldb, 0, want, ldc);
			pt_colmajor_gemm g = pt_gemm_colmajor(ta, tb, M, N, K, A, lda, B, ldb);
			colmajor_gemm(&g, got, ldc);
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j++)
					if (got[i * ldc + j] != want[i * ldc + j])
						fail_msg("ta=%d tb=%d: C[%d][%d] = %g, want %g", ta, tb, i, j,
							 got[i * ldc + j], want[i * ldc + j]);
		}
}

/* NVTX ranges with no tool attached (or no NVTX in the build): harmless. */
static void test_nvtx_without_a_tool(void **state)
{
	(void)state;
	pt_nvtx_push("F0:3");
	pt_nvtx_push("F0:7|B1:3");
	pt_nvtx_pop();
	pt_nvtx_pop();
}

#ifdef PT_HAVE_CUDA
/* cuBLAS is not in the process until a cuda run loads it (linked, its
 * cuBLASLt costs every command 210 MB), and then all four entry points
 * resolve. Needs the toolkit's library, not a GPU. */
static void test_cublas_loaded_on_demand(void **state)
{
	(void)state;
	char so[64];
	snprintf(so, sizeof so, "libcublas.so.%d", CUBLAS_VER_MAJOR);
	assert_null(dlopen(so, RTLD_NOW | RTLD_NOLOAD));
	assert_int_equal(pt_cublas_load(), 0);
	assert_non_null(dlopen(so, RTLD_NOW | RTLD_NOLOAD));
	assert_non_null(pt_cublas.create);
	assert_non_null(pt_cublas.destroy);
	assert_non_null(pt_cublas.set_stream);
	assert_non_null(pt_cublas.gemm_ex);
}
#endif

/* The reference the cuda check uses is the cpu check's: its losses equal,
 * bit for bit, what the cpu pipeline computes. */
static void test_shared_reference(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 8);
	pt_cpu_opts o = pt_cpu_defaults();
	o.hidden = 16, o.seq = 4, o.mb_size = 2, o.dtype = PT_DTYPE_F64;
	pt_cpu *c;
	assert_int_equal(pt_cpu_create(p, &o, &c), 0);
	pt_exec_step_opts so = {.mode = PT_COMM_FLUSH};
	pt_exec_result res;
	assert_int_equal(pt_cpu_step(c, &so, &res), 0);
	int G;
	const double *pl = pt_cpu_losses(c, &G);
	pt_mlp m = {.n = 8, .h = 16, .dtype = PT_DTYPE_F64, .esz = 8};
	const int S = p->nstages;
	double *loss = malloc((size_t)G * sizeof *loss);
	void *dw[16];
	for (int i = 0; i < 2 * S; i++)
		dw[i] = calloc(4 * 16 * 16, 8);
	assert_int_equal(pt_mlp_reference(&m, o.seed, S, G, loss, dw, dw + S, NULL, NULL), 0);
	for (int g = 0; g < G; g++)
		assert_memory_equal(&loss[g], &pl[g], sizeof loss[g]);
	pt_cpu_check chk;
	assert_int_equal(pt_cpu_check_run(c, NULL, NULL, &chk), 0);
	assert_true(chk.ok);
	for (int i = 0; i < 2 * S; i++)
		free(dw[i]);
	free(loss);
	pt_cpu_destroy(c);
	pt_plan_destroy(p);
}

/* ------------------------------------------------------- with a GPU */

static int ngpus;
static char no_gpu[256] = "this build has no CUDA";

#ifdef PT_HAVE_CUDA
static pt_cuda_opts tiny(int dtype)
{
	pt_cuda_opts o = {.hidden = 64, .seq = 8, .mb_size = 2, .dtype = dtype, .seed = 233, .trace = 1};
	return o;
}

static void test_numerics(void **state)
{
	(void)state;
	static const int scheds[][3] = {{PT_SCHED_DUALPIPE, 4, 8}, {PT_SCHED_DUALPIPEV, 4, 8},	 {PT_SCHED_1F1B, 4, 8},
					{PT_SCHED_ZB1P, 4, 8},	   {PT_SCHED_INTERLEAVED, 4, 8}, {PT_SCHED_ZBV, 4, 8}};
	for (size_t s = 0; s < sizeof scheds / sizeof scheds[0]; s++)
		for (int dtype = PT_DTYPE_F32; dtype <= PT_DTYPE_BF16; dtype++)
			for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++)
				for (int gpus = 1; gpus <= (ngpus >= 4 ? 2 : 1); gpus++) {
					pt_plan *p = make(scheds[s][0], scheds[s][1], scheds[s][2]);
					pt_procs one = {.size = 1};
					pt_gpu_map map;
					pt_cuda *c;
					pt_cuda_opts o = tiny(dtype);
					tu_log_reset();
					assert_int_equal(
					    pt_gpu_map_make(p->ranks, gpus == 1 ? 1 : 4, ngpus, &one, &map), 0);
					if (pt_cuda_create(p, &o, &map, &one, &c))
						fail_msg("%s: setup failed:\n%s", p->name, tu_log_buf);
					pt_exec_step_opts so = {.mode = mode};
					pt_exec_result res;
					if (pt_cuda_step(c, &so, &res))
						fail_msg("%s %s: step failed:\n%s", p->name, pt_comm_name(mode),
							 tu_log_buf);
					pt_cuda_check k;
					assert_int_equal(pt_cuda_check_run(c, &k), 0);
					if (!k.ok)
						fail_msg("%s %s %s on %s: %d/%d losses close, worst gradient error %g "
							 "(limit %g)",
							 p->name, pt_comm_name(mode), pt_dtype_name(dtype),
							 pt_topo_name(map.topo), k.close, k.mbs, k.worst, k.limit);
					pt_cuda_destroy(c);
					pt_gpu_map_free(&map);
					pt_plan_destroy(p);
				}
}

/* Record a DualPipe step with CUPTI and read it back. */
static void test_kernels_inside_ops(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 8);
	pt_procs one = {.size = 1};
	pt_gpu_map map;
	assert_int_equal(pt_gpu_map_make(p->ranks, 1, ngpus, &one, &map), 0);
	char path[512];
	tu_path(path, sizeof path, "cuda.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_MONOTONIC, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_cupti *cupti = NULL;
#ifdef PT_HAVE_CUPTI
	assert_int_equal(pt_cupti_create(rec, &cupti), 0);
	assert_int_equal(pt_cupti_start(cupti), 0);
#endif
	pt_cuda_opts o = tiny(PT_DTYPE_F32);
	pt_cuda *c;
	tu_log_reset();
	if (pt_cuda_create(p, &o, &map, &one, &c))
		fail_msg("setup failed:\n%s", tu_log_buf);
	pt_exec_step_opts so = {.mode = PT_COMM_OVERLAP};
	pt_exec_result res;
	assert_int_equal(pt_cuda_step(c, &so, &res), 0); /* warm-up, not recorded */
	assert_int_equal(pt_cuda_trace(c, rec, cupti), 0);
	so.rec = rec;
	assert_int_equal(pt_cuda_step(c, &so, &res), 0);
	if (cupti)
		assert_int_equal(pt_cupti_stop(cupti), 0);
	pt_run_info info = {.backend = "cuda", .comm_mode = so.mode, .cost = &res.median, .plan_source = "generated"};
	assert_int_equal(pt_run_begin(rec, p, &info), 0);
	assert_int_equal(pt_cuda_meta(c, rec), 0);
	assert_int_equal(pt_rec_close(rec), 0);
	pt_cupti_destroy(cupti);
	pt_cuda_destroy(c);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	int64_t slack = pt_trace_meta_int(t, "cuda.clock_err_ns", -1);
	assert_true(slack >= 0);
	slack += 2000; /* CUPTI's and the events' timestamps: a few us apart at most */
	/* every op's interval, by (rank, step) */
	size_t nops = 0;
	for (int r = 0; r < p->ranks; r++)
		nops += p->rank[r].n;
	int64_t *s0 = calloc(nops, sizeof *s0), *s1 = calloc(nops, sizeof *s1);
	size_t *base = calloc((size_t)p->ranks, sizeof *base);
	for (int r = 1; r < p->ranks; r++)
		base[r] = base[r - 1] + p->rank[r - 1].n;
	pt_query q = pt_query_all();
	q.sources = PT_SRC_OPS;
	pt_cursor *cur;
	pt_event e;
	assert_int_equal(pt_cursor_open(t, &q, &cur), 0);
	while (pt_cursor_next(cur, &e) == 1) {
		s0[base[e.rank] + (size_t)e.step] = e.start_ns;
		s1[base[e.rank] + (size_t)e.step] = e.end_ns;
	}
	pt_cursor_close(cur);
	q.sources = PT_SRC_KERNELS | PT_SRC_MEMCPY;
	assert_int_equal(pt_cursor_open(t, &q, &cur), 0);
	int kernels = 0, fb_second = 0, comm = 0;
	while (pt_cursor_next(cur, &e) == 1) {
		enum pt_stream_role role;
		const char *name = "";
		int known = pt_trace_stream(t, e.rank, e.stream, &role, &name) == 0;
		if (e.ext == 0) { /* a message (outside every op), or the step's set-up */
			int xfer = strstr(pt_trace_string(t, e.name), "nccl") != NULL;
#ifdef PT_HAVE_CUPTI
			xfer |= e.op.kind == PT_OP_MEMCPY && (e.op.payload == CUPTI_ACTIVITY_MEMCPY_KIND_DTOD ||
							      e.op.payload == CUPTI_ACTIVITY_MEMCPY_KIND_PTOP);
#endif
			if (xfer) {
				if (!known || role != PT_STREAM_COMM)
					fail_msg("rank %d: a transfer on stream %u, not the comm stream", e.rank,
						 e.stream);
				comm++;
			} else if (e.op.kind == PT_OP_KERNEL) {
				/* every compute kernel of the step runs inside an op: a
				 * GEMM without ext means its launch (cuBLAS goes through
				 * the driver API) left no tagged record */
				fail_msg("rank %d: kernel %s tied to no op", e.rank, pt_trace_string(t, e.name));
			}
			continue;
		}
		int rank = (int)(e.ext >> 32), step = (int)(e.ext & 0xffffffff) - 1;
		assert_int_equal(rank, e.rank);
		assert_true(known);
		assert_int_equal(role, PT_STREAM_COMPUTE);
		size_t k = base[rank] + (size_t)step;
		if (e.start_ns < s0[k] - slack || e.end_ns > s1[k] + slack)
			fail_msg("rank %d step %d: %s [%lld, %lld] outside its op [%lld, %lld]", rank, step,
				 pt_trace_string(t, e.name), (long long)e.start_ns, (long long)e.end_ns,
				 (long long)s0[k], (long long)s1[k]);
		fb_second += p->rank[rank].ops[step].kind == PT_OP_FB && strstr(name, "FB backward") != NULL;
		kernels++;
	}
	pt_cursor_close(cur);
#ifdef PT_HAVE_CUPTI
	assert_true(kernels > 0);
	assert_true(fb_second > 0);
	assert_true(comm > 0);
#endif
	free(s0), free(s1), free(base);
	pt_trace_close(t);
	pt_gpu_map_free(&map);
	pt_plan_destroy(p);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_gpu_map),	  cmocka_unit_test(test_check_limits),
	    cmocka_unit_test(test_rank_db_name),  cmocka_unit_test(test_shared_reference),
	    cmocka_unit_test(test_gemm_colmajor), cmocka_unit_test(test_nvtx_without_a_tool),
	};
	int rc = cmocka_run_group_tests_name("cuda (no GPU needed)", tests, NULL, NULL);
#ifdef PT_HAVE_CUDA
	const struct CMUnitTest lib[] = {cmocka_unit_test(test_cublas_loaded_on_demand)};
	rc |= cmocka_run_group_tests_name("cuda (the toolkit's libraries)", lib, NULL, NULL);
	pt_log_set(tu_log_cb, NULL);
	if (pt_cuda_devices(&ngpus) == 0) {
		const struct CMUnitTest gpu[] = {
		    cmocka_unit_test(test_numerics),
		    cmocka_unit_test(test_kernels_inside_ops),
		};
		rc |= cmocka_run_group_tests_name("cuda (on the GPU)", gpu, NULL, NULL);
	} else {
		snprintf(no_gpu, sizeof no_gpu, "%.200s", tu_log_len ? tu_log_buf : "no CUDA device");
		char *nl = strchr(no_gpu, '\n');
		if (nl)
			*nl = '\0';
	}
#endif
	if (!ngpus) {
		printf("ok - cuda numerics against the cpu reference # SKIP %s\n", no_gpu);
		printf("ok - cuda kernels inside their ops, comm on the comm stream # SKIP %s\n", no_gpu);
	}
	tu_tmp_cleanup();
	return rc;
}
