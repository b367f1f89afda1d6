/*
 * tests/unit/test_cpu.c — the cpu backend: every schedule, run for real on
 * threads, against the sequential reference (losses bitwise, gradients by
 * DualPipe's measure, below 1e-13 in fp64) in both communication modes; the
 * planted bugs the check must catch; the trace it records, read back and
 * held to the executor's semantics (each plan step once, compute in plan
 * order, every consumed receive finished before its op starts, flush mode
 * waiting for whole batches, overlap mode posting receives one op early,
 * both ends of a message agreeing); the memory refusal; the GEMMs.
 * Sizes are tiny (hidden 32, 16 rows): what is tested is the execution.
 */
#include <math.h>

#include "testutil.h"
#include "tu_plan.h"

#include "exporters/exporters.h"
#include "runner/cpu.h"
#include "runner/runner.h"

static pt_cpu_opts tiny(int dtype)
{
	pt_cpu_opts o = pt_cpu_defaults();
	o.hidden = 32;
	o.seq = 8;
	o.mb_size = 2;
	o.dtype = dtype;
	return o;
}

/* Run one step of (sched, P, N) and check it; fault planted when nonzero. */
static void run_checked(pt_plan *p, int mode, int dtype, int fault, pt_rec *rec, pt_cpu_check *chk,
			pt_exec_result *res)
{
	pt_cpu_opts o = tiny(dtype);
	pt_cpu *c = NULL;
	tu_log_reset();
	if (pt_cpu_create(p, &o, &c))
		fail_msg("%s: cpu backend setup failed:\n%s", p->name, tu_log_buf);
	pt_exec_step_opts so = {.mode = mode, .rec = rec, .fault = fault};
	if (pt_cpu_step(c, &so, res))
		fail_msg("%s %s: step failed:\n%s", p->name, pt_comm_name(mode), tu_log_buf);
	assert_int_equal(pt_cpu_check_run(c, NULL, NULL, chk), 0);
	pt_cpu_destroy(c);
}

struct sweep {
	int sched, P, N[2];
};

static const struct sweep sweeps[] = {
	{PT_SCHED_DUALPIPE, 4, {8, 12}}, {PT_SCHED_DUALPIPEV, 4, {8, 11}}, {PT_SCHED_1F1B, 4, {4, 9}},
	{PT_SCHED_ZB1P, 4, {4, 9}},	 {PT_SCHED_GPIPE, 4, {4, 9}},	  {PT_SCHED_INTERLEAVED, 4, {4, 8}},
	{PT_SCHED_ZBV, 4, {4, 9}},	 {PT_SCHED_DUALPIPE, 8, {16, 16}},
};

/* The claim: for every schedule, losses bitwise equal to the
 * sequential reference, gradients within 1e-13, in fp64, both comm modes. */
static void test_every_schedule_matches_reference(void **state)
{
	(void)state;
	for (size_t s = 0; s < sizeof sweeps / sizeof sweeps[0]; s++) {
		for (int k = 0; k < 2; k++) {
			if (k && sweeps[s].N[1] == sweeps[s].N[0])
				continue;
			pt_plan *p = make(sweeps[s].sched, sweeps[s].P, sweeps[s].N[k]);
			for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
				pt_cpu_check chk;
				pt_exec_result res;
				run_checked(p, mode, PT_DTYPE_F64, 0, NULL, &chk, &res);
				if (!chk.ok || chk.equal != p->mbs[0] + p->mbs[1])
					fail_msg("%s P=%d N=%d %s: %d/%d losses equal, worst gradient error %.3g "
						 "(stage %d W%d)",
						 p->name, p->ranks, p->microbatches, pt_comm_name(mode), chk.equal,
						 chk.mbs, chk.worst, chk.worst_stage, chk.worst_w);
				assert_true(chk.worst < 1e-13);
				assert_int_equal(chk.params, 2 * p->nstages);
				if (mode == PT_COMM_FLUSH && res.slots_grown)
					fail_msg("%s N=%d: the pool sized from the plan was short by %d slot(s)",
						 p->name, p->microbatches, res.slots_grown);
			}
			pt_plan_destroy(p);
		}
	}
}

/* fp32 keeps the bitwise loss equality (same kernels, same order per mb). */
static void test_fp32_losses_bitwise(void **state)
{
	(void)state;
	const int scheds[] = {PT_SCHED_DUALPIPE, PT_SCHED_ZBV};
	for (int i = 0; i < 2; i++) {
		pt_plan *p = make(scheds[i], 4, 8);
		pt_cpu_check chk;
		pt_exec_result res;
		run_checked(p, PT_COMM_OVERLAP, PT_DTYPE_F32, 0, NULL, &chk, &res);
		assert_int_equal(chk.equal, chk.mbs);
		assert_true(chk.ok);
		pt_plan_destroy(p);
	}
}

/* A planted bug fails the check: a W dropped, two microbatches swapped. */
static void test_planted_bugs_fail_the_check(void **state)
{
	(void)state;
	const int wscheds[] = {PT_SCHED_DUALPIPE, PT_SCHED_ZB1P, PT_SCHED_ZBV, PT_SCHED_DUALPIPEV};
	for (int i = 0; i < 4; i++) {
		pt_plan *p = make(wscheds[i], 4, 8);
		pt_cpu_check chk;
		pt_exec_result res;
		run_checked(p, PT_COMM_FLUSH, PT_DTYPE_F64, PT_FAULT_SKIP_W, NULL, &chk, &res);
		if (chk.ok || chk.worst < 1e-6)
			fail_msg("%s: a skipped W went unnoticed (worst %.3g)", p->name, chk.worst);
		assert_int_equal(chk.equal, chk.mbs); /* losses come before any W */
		pt_plan_destroy(p);
	}
	const int sscheds[] = {PT_SCHED_DUALPIPE, PT_SCHED_1F1B, PT_SCHED_INTERLEAVED};
	for (int i = 0; i < 3; i++) {
		pt_plan *p = make(sscheds[i], 4, 8);
		pt_cpu_check chk;
		pt_exec_result res;
		run_checked(p, PT_COMM_OVERLAP, PT_DTYPE_F64, PT_FAULT_SWAP_MB, NULL, &chk, &res);
		if (chk.ok || chk.equal != chk.mbs - 2 || chk.first_bad != 0)
			fail_msg("%s: swapped microbatches went unnoticed (%d/%d equal, first bad %d)", p->name,
				 chk.equal, chk.mbs, chk.first_bad);
		assert_true(chk.worst > 1e-6);
		pt_plan_destroy(p);
	}
}

/* ------------------------------------------------------ the trace */

struct rec_ev {
	int seen;
	pt_event ev;
};

/* Read every event of a recorded cpu run into [rank][step]. */
static struct rec_ev **read_events(pt_trace *t, const pt_plan *p)
{
	struct rec_ev **e = calloc((size_t)p->ranks, sizeof *e);
	for (int r = 0; r < p->ranks; r++)
		e[r] = calloc(p->rank[r].n, sizeof **e);
	pt_query q = pt_query_all();
	pt_cursor *cur;
	assert_int_equal(pt_cursor_open(t, &q, &cur), 0);
	pt_event ev;
	int rc;
	while ((rc = pt_cursor_next(cur, &ev)) == 1) {
		assert_true(ev.rank >= 0 && ev.rank < p->ranks);
		assert_true(ev.step >= 0 && (size_t)ev.step < p->rank[ev.rank].n);
		struct rec_ev *x = &e[ev.rank][ev.step];
		if (x->seen)
			fail_msg("rank %d step %d recorded twice", ev.rank, ev.step);
		x->seen = 1;
		x->ev = ev;
		assert_int_equal(ev.op.kind, p->rank[ev.rank].ops[ev.step].kind);
		assert_int_equal(ev.stream, pt_kind_is_comm(ev.op.kind) ? PT_STREAM_P2P : PT_STREAM_MAIN);
	}
	assert_int_equal(rc, 0);
	pt_cursor_close(cur);
	return e;
}

/* The recorded run obeys the executor's rules. */
static void check_semantics(const pt_plan *p, int mode, struct rec_ev **e)
{
	for (int r = 0; r < p->ranks; r++) {
		const pt_rank_plan *rp = &p->rank[r];
		int32_t *need = malloc(2 * rp->n * sizeof *need);
		assert_int_equal(pt_plan_inputs(p, r, need), 0);
		int64_t prev_end = INT64_MIN;
		size_t last_compute = (size_t)-1;
		for (size_t i = 0; i < rp->n; i++) {
			const pt_op *o = &rp->ops[i];
			if (!e[r][i].seen)
				fail_msg("rank %d step %zu (%s) was not recorded", r, i, pt_kind_name(o->kind));
			const pt_event *ev = &e[r][i].ev;
			assert_true(ev->start_ns <= ev->end_ns);
			if (pt_kind_is_comm(o->kind)) {
				assert_true(ev->posted_ns <= ev->start_ns); /* a copy starts once posted */
				assert_int_equal(ev->op.seq, o->seq);
				continue;
			}
			/* compute runs in plan order, one op at a time */
			if (ev->start_ns < prev_end)
				fail_msg("rank %d step %zu starts before step %zu ends", r, i, last_compute);
			prev_end = ev->end_ns;
			/* every receive it consumes finished before it began */
			for (int k = 0; k < 2; k++) {
				int j = need[i * 2 + k];
				if (j >= 0 && e[r][j].ev.end_ns > ev->start_ns)
					fail_msg("rank %d step %zu started before its input (step %d) arrived", r, i, j);
			}
			/* the comm ops just before it */
			for (size_t j = i; j-- > 0 && pt_kind_is_comm(rp->ops[j].kind);) {
				const pt_event *m = &e[r][j].ev;
				if (mode == PT_COMM_FLUSH && m->end_ns > ev->start_ns)
					fail_msg("flush: rank %d step %zu started before its batch's step %zu ended", r,
						 i, j);
			}
			/* overlap: the next batch's receives were posted before it began */
			for (size_t j = i + 1; mode == PT_COMM_OVERLAP && j < rp->n && pt_kind_is_comm(rp->ops[j].kind);
			     j++)
				if (rp->ops[j].kind == PT_OP_RECV && e[r][j].ev.posted_ns > ev->start_ns)
					fail_msg("overlap: rank %d's receive at step %zu was posted after step %zu began",
						 r, j, i);
			last_compute = i;
		}
		free(need);
	}
	/* both ends of each message: the k-th send a->b is the k-th receive */
	for (int a = 0; a < p->ranks; a++) {
		for (size_t i = 0; i < p->rank[a].n; i++) {
			const pt_op *s = &p->rank[a].ops[i];
			if (s->kind != PT_OP_SEND)
				continue;
			const pt_rank_plan *bp = &p->rank[s->peer];
			size_t j = 0;
			while (j < bp->n && !(bp->ops[j].kind == PT_OP_RECV && bp->ops[j].peer == a &&
					      bp->ops[j].seq == s->seq))
				j++;
			assert_true(j < bp->n);
			const pt_event *se = &e[a][i].ev, *re = &e[s->peer][j].ev;
			/* the data left the sender before (or as) it reached the receiver */
			if (se->start_ns > re->start_ns || se->end_ns > re->end_ns)
				fail_msg("%s: send r%d step %zu [%lld, %lld] posted %lld, receive r%d step %zu [%lld, %lld] posted %lld",
					 p->name, a, i, (long long)se->start_ns, (long long)se->end_ns, (long long)se->posted_ns, s->peer, j,
					 (long long)re->start_ns, (long long)re->end_ns, (long long)re->posted_ns);
			assert_true(re->end_ns >= re->posted_ns || re->start_ns == se->start_ns);
		}
	}
}

static void test_recorded_trace_semantics(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "cpu.db");
	const int scheds[] = {PT_SCHED_DUALPIPE, PT_SCHED_DUALPIPEV, PT_SCHED_ZB1P, PT_SCHED_INTERLEAVED};
	for (int s = 0; s < 4; s++) {
		for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
			pt_plan *p = make(scheds[s], 4, 8);
			pt_rec *rec;
			pt_rec_opts ro = {.clock = PT_CLOCK_TSC, .overwrite = 1, .chunk_events = 64, .chunks = 4};
			assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
			pt_cpu_check chk;
			pt_exec_result res;
			run_checked(p, mode, PT_DTYPE_F64, 0, rec, &chk, &res);
			assert_true(chk.ok);
			assert_true(res.step_ns > 0);
			assert_int_equal(res.events, pt_plan_count(p, 0) + pt_plan_count(p, 1));
			assert_true(res.median.f > 0 && (res.median.b > 0 || res.median.i > 0));
			pt_run_info info = {.backend = "cpu", .comm_mode = mode, .cost = &res.median};
			assert_int_equal(pt_run_begin(rec, p, &info), 0);
			assert_int_equal(pt_rec_close(rec), 0);

			pt_trace *t;
			assert_int_equal(pt_trace_open(path, &t), 0);
			struct rec_ev **e = read_events(t, p);
			check_semantics(p, mode, e);
			for (int r = 0; r < p->ranks; r++)
				free(e[r]);
			free(e);
			/* stats reads it unchanged; peak activations are the plan's */
			pt_metrics *m;
			assert_int_equal(pt_metrics_compute(t, &m), 0);
			assert_int_equal(m->nranks, p->ranks);
			for (int r = 0; r < p->ranks; r++) {
				assert_true(m->rank[r].busy > 0);
				if (m->rank[r].theory_peak >= 0 && m->rank[r].peak_act != m->rank[r].theory_peak)
					fail_msg("%s rank %d: peak activations %d, theory %d", p->name, r,
						 m->rank[r].peak_act, m->rank[r].theory_peak);
			}
			assert_string_equal(pt_trace_meta(t, "backend"), "cpu");
			pt_metrics_destroy(m);
			pt_trace_close(t);
			pt_plan_destroy(p);
		}
	}
}

/* Steps repeat bit for bit: the pool, the channels and the FIFO reset. */
static void test_steps_repeat(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 8);
	pt_cpu_opts o = tiny(PT_DTYPE_F32);
	pt_cpu *c;
	assert_int_equal(pt_cpu_create(p, &o, &c), 0);
	pt_exec_step_opts so = {.mode = PT_COMM_OVERLAP};
	pt_exec_result res;
	double first[8];
	int n;
	for (int step = 0; step < 3; step++) {
		assert_int_equal(pt_cpu_step(c, &so, &res), 0);
		const double *l = pt_cpu_losses(c, &n);
		assert_int_equal(n, 8);
		for (int g = 0; g < n; g++) {
			if (!step)
				first[g] = l[g];
			else
				assert_memory_equal(&first[g], &l[g], sizeof(double));
		}
		so.mode = step % 2 ? PT_COMM_OVERLAP : PT_COMM_FLUSH;
	}
	pt_cpu_check chk;
	assert_int_equal(pt_cpu_check_run(c, NULL, NULL, &chk), 0);
	assert_true(chk.ok);
	pt_cpu_destroy(c);
	pt_plan_destroy(p);
}

/* A run that cannot fit is refused up front, naming the size. */
static void test_memory_refused(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_1F1B, 4, 8);
	pt_cpu_opts o = pt_cpu_defaults();
	o.hidden = 1 << 20; /* w1, w2 and their gradients, 4h^2 fp32 each: 64 TiB a stage */
	pt_cpu_mem mem;
	assert_int_equal(pt_cpu_memory(p, &o, &mem), 0);
	assert_true(mem.params == 4.0 * 1 * 2 * 2 * 4 * (double)(1 << 20) * (1 << 20) * 4);
	assert_true(mem.avail > 0); /* /proc/meminfo is readable on the test machines */
	pt_cpu *c = NULL;
	tu_log_reset();
	assert_int_equal(pt_cpu_create(p, &o, &c), PT_EINVAL);
	assert_null(c);
	assert_logged("cpu backend: this run needs 256.1 TiB of memory (weights and gradients 256.0 TiB");
	assert_logged("is available");
	o = pt_cpu_defaults();
	o.seq = 0;
	tu_log_reset();
	assert_int_equal(pt_cpu_create(p, &o, &c), PT_EINVAL);
	assert_logged("--seq");
	pt_plan_destroy(p);
}

/* Both GEMMs agree with a naive product, in every transpose pairing, and
 * give the same bits twice. */
static void test_gemm(void **state)
{
	(void)state;
	pt_gemm_init();
	enum { M = 37, N = 70, K = 300 };
	double *A = malloc(sizeof(double) * M * K), *B = malloc(sizeof(double) * K * N);
	double *C1 = malloc(sizeof(double) * M * N), *C2 = malloc(sizeof(double) * M * N),
	       *R = malloc(sizeof(double) * M * N);
	for (int i = 0; i < M * K; i++)
		A[i] = sin(i * 0.37);
	for (int i = 0; i < K * N; i++)
		B[i] = cos(i * 0.11);
	for (int ta = 0; ta < 2; ta++) {
		for (int tb = 0; tb < 2; tb++) {
			int lda = ta ? M : K, ldb = tb ? K : N;
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j++) {
					double s = 0.5; /* acc: C starts at 0.5 */
					for (int k = 0; k < K; k++)
						s += (ta ? A[k * lda + i] : A[i * lda + k]) *
						     (tb ? B[j * ldb + k] : B[k * ldb + j]);
					R[i * N + j] = s;
				}
			for (int which = 0; which < 2; which++) {
				for (int i = 0; i < M * N; i++)
					C1[i] = C2[i] = 0.5;
				if (which) {
					pt_gemm_blocked(PT_DTYPE_F64, ta, tb, M, N, K, A, lda, B, ldb, 1, C1, N);
					pt_gemm_blocked(PT_DTYPE_F64, ta, tb, M, N, K, A, lda, B, ldb, 1, C2, N);
				} else {
					pt_gemm(PT_DTYPE_F64, ta, tb, M, N, K, A, lda, B, ldb, 1, C1, N);
					pt_gemm(PT_DTYPE_F64, ta, tb, M, N, K, A, lda, B, ldb, 1, C2, N);
				}
				assert_memory_equal(C1, C2, sizeof(double) * M * N);
				for (int i = 0; i < M * N; i++)
					if (fabs(C1[i] - R[i]) > 1e-10 * (1 + fabs(R[i])))
						fail_msg("%s ta=%d tb=%d: C[%d] = %.17g, want %.17g",
							 which ? "blocked" : "pt_gemm", ta, tb, i, C1[i], R[i]);
			}
		}
	}
	free(A), free(B), free(C1), free(C2), free(R);
	assert_non_null(strstr(pt_gemm_name(), pt_gemm_name()[0] == 'O' ? "OpenBLAS" : "blocked"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_schedule_matches_reference),
		cmocka_unit_test(test_fp32_losses_bitwise),
		cmocka_unit_test(test_planted_bugs_fail_the_check),
		cmocka_unit_test(test_recorded_trace_semantics),
		cmocka_unit_test(test_steps_repeat),
		cmocka_unit_test(test_memory_refused),
		cmocka_unit_test(test_gemm),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
