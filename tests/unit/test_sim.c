/*
 * tests/unit/test_sim.c — the sim backend and the metrics, end to end: each
 * plan is simulated, recorded into a real trace database, read back and
 * measured, and every rank's bubble and peak activations are compared with
 * the spec's formulas (spec/dualpipe.md §3, spec/schedules.md §2). Also:
 * determinism, link costs against hand-computed timings, and the metrics of
 * hand-built traces (unions, overlap, activity on communication streams).
 */
#include "tu_sim.h"

/* plan -> sim -> trace.db -> metrics */
static pt_metrics *measure(const pt_plan *p, const pt_cost *cost, int mode, const char *name)
{
	char path[512];
	tu_record_sim(p, cost, mode, name, path, sizeof path);
	pt_trace *t;
	pt_metrics *m = tu_metrics(path, &t);
	pt_trace_close(t);
	return m;
}

/* Every rank's bubble is the formula's and the peak activations the spec's. */
static void check_formula(int sched, int P, int N, int mode, int64_t want_bubble, const int *want_peak)
{
	pt_plan *p = make(sched, P, N);
	pt_cost cost = pt_cost_default();
	pt_metrics *m = measure(p, &cost, mode, "sweep.db");
	assert_int_equal(m->nranks, P);
	for (int r = 0; r < P; r++) {
		if (m->rank[r].bubble != want_bubble)
			fail_msg("%s P=%d N=%d %s: rank %d bubble %lld ns, formula %lld ns", pt_sched_name(sched), P, N,
				 pt_comm_name(mode), r, (long long)m->rank[r].bubble, (long long)want_bubble);
		if (m->rank[r].theory_bubble != want_bubble)
			fail_msg("%s P=%d N=%d: rank %d stored theory %lld, formula %lld", pt_sched_name(sched), P, N,
				 r, (long long)m->rank[r].theory_bubble, (long long)want_bubble);
		if (m->rank[r].peak_act != want_peak[r] || m->rank[r].theory_peak != want_peak[r])
			fail_msg("%s P=%d N=%d: rank %d peak activations %d (theory %d), spec %d", pt_sched_name(sched),
				 P, N, r, m->rank[r].peak_act, m->rank[r].theory_peak, want_peak[r]);
	}
	pt_metrics_destroy(m);
	pt_plan_destroy(p);
}

#define MS 1000000LL

/* DualPipe: (P/2-1)(FB+B-3W) with F=1, B=2, W=1, FB=3 ms; peak P+1 on every rank */
static void test_dualpipe_bubble_formula(void **state)
{
	(void)state;
	int peak[16];
	for (int P = 2; P <= 16; P += 2) {
		for (int r = 0; r < P; r++)
			peak[r] = P + 1;
		for (int N = 2 * P; N <= 2 * P + 11; N++) {
			if (N % 2)
				continue; /* DualPipe needs an even count */
			for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++)
				check_formula(PT_SCHED_DUALPIPE, P, N, mode, (P / 2 - 1) * (3 + 2 - 3) * MS, peak);
		}
	}
}

/* DualPipeV: (P-1)(FB+B-3W) per rank, 2P+1 chunk activations (stages + 1) */
static void test_dualpipev_bubble_formula(void **state)
{
	(void)state;
	int peak[16];
	for (int P = 1; P <= 16; P++) {
		for (int r = 0; r < P; r++)
			peak[r] = 2 * P + 1;
		for (int N = 2 * P; N <= 2 * P + 11; N++)
			for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++)
				check_formula(PT_SCHED_DUALPIPEV, P, N, mode, (P - 1) * (3 + 2 - 3) * MS, peak);
	}
}

/* 1F1B: (P-1)(F+B); peak min(P-r, N). ZB-H1: (P-1)(F+B-2W) = (P-1)(F+I-W); peak P-r */
static void test_1f1b_zb1p_bubble_formula(void **state)
{
	(void)state;
	int peak[16];
	for (int P = 2; P <= 16; P++) {
		for (int N = P; N <= P + 11; N++) {
			for (int r = 0; r < P; r++)
				peak[r] = P - r < N ? P - r : N;
			for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
				check_formula(PT_SCHED_1F1B, P, N, mode, (P - 1) * (1 + 2) * MS, peak);
				check_formula(PT_SCHED_ZB1P, P, N, mode, (P - 1) * (1 + 1 - 1) * MS, peak);
			}
		}
	}
}

/* GPipe (P-1)(F+B), peak N; interleaved (P-1)(F+B) per chunk op; ZB-V (P-1)F */
static void test_other_schedules(void **state)
{
	(void)state;
	int peak[16];
	for (int P = 2; P <= 8; P++) {
		for (int N = P; N <= 2 * P; N++) {
			for (int r = 0; r < P; r++)
				peak[r] = N;
			check_formula(PT_SCHED_GPIPE, P, N, PT_COMM_FLUSH, (P - 1) * 3 * MS, peak);
		}
		for (int N = P; N <= 4 * P; N += P) {
			for (int r = 0; r < P; r++) {
				/* min(2(P-1-r) + (v-1)g + 1, vN) with v=2, g=P */
				peak[r] = 2 * (P - 1 - r) + P + 1;
				if (peak[r] > 2 * N)
					peak[r] = 2 * N;
			}
			check_formula(PT_SCHED_INTERLEAVED, P, N, PT_COMM_FLUSH, (P - 1) * 3 * MS, peak);
		}
		for (int N = 2 * P; N <= 3 * P; N++) {
			for (int r = 0; r < P; r++)
				peak[r] = 2 * P;
			check_formula(PT_SCHED_ZBV, P, N, PT_COMM_OVERLAP, (P - 1) * 1 * MS, peak);
		}
	}
}

/* ZB-V has no span bubble when F = I = W (spec/schedules.md §2) */
static void test_zbv_zero_span_bubble(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_ZBV, 4, 8);
	pt_cost c = pt_cost_default();
	pt_metrics *m = measure(p, &c, PT_COMM_FLUSH, "zbv.db");
	for (int r = 0; r < 4; r++)
		assert_int_equal(m->rank[r].span_bubble, 0);
	pt_metrics_destroy(m);
	pt_plan_destroy(p);
}

/* Same inputs, same database contents. */
static void test_deterministic(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 8, 20);
	pt_cost c = pt_cost_default();
	c.latency = 3000;
	c.bandwidth = 25e9;
	char a[512], b[512];
	for (int i = 0; i < 2; i++) {
		pt_sim *sim;
		assert_int_equal(pt_sim_run(p, &c, PT_COMM_OVERLAP, &sim), 0);
		pt_rec *rec;
		pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
		assert_int_equal(pt_rec_create(tu_path(i ? b : a, sizeof a, i ? "b.db" : "a.db"), &ro, &rec), 0);
		pt_run_info info = {.backend = "sim", .comm_mode = PT_COMM_OVERLAP, .cost = &c, .bytes = 1 << 20};
		assert_int_equal(pt_run_begin(rec, p, &info), 0);
		assert_int_equal(pt_sim_emit(sim, rec), 0);
		assert_int_equal(pt_rec_close(rec), 0);
		pt_sim_destroy(sim);
	}
	pt_trace *ta, *tb;
	assert_int_equal(pt_trace_open(a, &ta), 0);
	assert_int_equal(pt_trace_open(b, &tb), 0);
	pt_cursor *ca, *cb;
	pt_query q = pt_query_all();
	assert_int_equal(pt_cursor_open(ta, &q, &ca), 0);
	assert_int_equal(pt_cursor_open(tb, &q, &cb), 0);
	pt_event ea, eb;
	int n = 0, ga, gb;
	while ((ga = pt_cursor_next(ca, &ea)) == 1) {
		gb = pt_cursor_next(cb, &eb);
		assert_int_equal(gb, 1);
		assert_memory_equal(&ea, &eb, sizeof ea);
		n++;
	}
	assert_int_equal(pt_cursor_next(cb, &eb), 0);
	assert_true(n > 500);
	assert_string_equal(pt_trace_meta(ta, "cost"), pt_trace_meta(tb, "cost"));
	assert_string_equal(pt_trace_meta(ta, "epoch_ns"), "0");
	pt_cursor_close(ca);
	pt_cursor_close(cb);
	pt_trace_close(ta);
	pt_trace_close(tb);
	pt_plan_destroy(p);
}

/* GPipe on 2 ranks, 2 microbatches, 8 MB messages over 4 GB/s + 1 ms latency:
 * each transfer holds its link 2 ms and arrives 1 ms later. By hand, in
 * overlap mode (sends never block compute):
 *   r0: F0 [0,1] F1 [1,2]; sends A0 [1,4], A1 [3,6] (link busy 1..3, 3..5)
 *   r1: F0 [4,5] F1 [6,7] B0 [7,9] B1 [9,11]; sends G0 [9,12], G1 [11,14]
 *   r0: B0 [12,14] B1 [14,16]                        -> makespan 16 ms
 * In flush mode a batch also waits for its own sends to complete:
 *   r0: F0 [0,1], A0 [1,4], F1 [4,5], A1 [5,8]; r1: F0 [4,5], F1 [8,9],
 *   B0 [9,11], G0 [11,14], B1 [14,16], G1 [16,19]; r0: B0 [14,16], B1 [19,21]
 *                                                     -> makespan 21 ms */
static void test_link_costs_by_hand(void **state)
{
	(void)state;
	pt_plan_params pp = {.sched = PT_SCHED_GPIPE, .ranks = 2, .microbatches = 2, .bytes = 8000000};
	pt_plan *p;
	assert_int_equal(pt_plan_create(&pp, &p), 0);
	pt_cost c = pt_cost_default();
	c.latency = 1 * MS;
	c.bandwidth = 4e9;
	pt_sim *sim;
	assert_int_equal(pt_sim_run(p, &c, PT_COMM_FLUSH, &sim), 0);
	assert_int_equal(sim->makespan, 21 * MS);
	pt_sim_destroy(sim);
	assert_int_equal(pt_sim_run(p, &c, PT_COMM_OVERLAP, &sim), 0);
	assert_int_equal(sim->makespan, 16 * MS);
	pt_sim_destroy(sim);

	pt_metrics *m = measure(p, &c, PT_COMM_OVERLAP, "link.db");
	/* r0: compute [0,2] + [12,16] = 6 ms; comm [1,6] + [9,14] = 10 ms; overlap [1,2] + [12,14] = 3 ms */
	assert_int_equal(m->rank[0].busy, 6 * MS);
	assert_int_equal(m->rank[0].comm, 10 * MS);
	assert_int_equal(m->rank[0].overlap, 3 * MS);
	assert_int_equal(m->rank[0].exposed, 7 * MS);
	assert_int_equal(m->rank[0].bubble, 10 * MS);
	/* r1: compute [4,5] + [6,11] = 6 ms; overlap with [1,6] + [9,14]: [4,5] + [9,11] = 3 ms */
	assert_int_equal(m->rank[1].busy, 6 * MS);
	assert_int_equal(m->rank[1].overlap, 3 * MS);
	assert_int_equal(m->win_end - m->win_start, 16 * MS);
	pt_metrics_destroy(m);
	pt_plan_destroy(p);
}

/* overlap mode never takes longer than flush mode, and hides more */
static void test_overlap_beats_flush(void **state)
{
	(void)state;
	pt_cost c = pt_cost_default();
	c.latency = 20000;
	c.bandwidth = 50e9;
	pt_plan_params pp = {.sched = PT_SCHED_DUALPIPE, .ranks = 8, .microbatches = 20, .bytes = 32 << 20};
	pt_plan *p;
	assert_int_equal(pt_plan_create(&pp, &p), 0);
	pt_metrics *f = measure(p, &c, PT_COMM_FLUSH, "f.db"), *o = measure(p, &c, PT_COMM_OVERLAP, "o.db");
	assert_true(o->win_end - o->win_start <= f->win_end - f->win_start);
	assert_true(o->overlap_ratio >= f->overlap_ratio);
	assert_true(f->exposed > 0);
	pt_metrics_destroy(f);
	pt_metrics_destroy(o);
	pt_plan_destroy(p);
}

/* Metrics of a hand-built trace: two compute intervals overlapping each
 * other, a message, a kernel on a communication stream, one F/B pair. */
static void test_metrics_by_hand(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "hand.db");
	pt_rec *rec = tu_hand_create(path, 2);
	assert_int_equal(pt_rec_stream(rec, 0, 27, PT_STREAM_COMM, "deepep"), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	struct {
		int rank, kind;
		uint32_t stream;
		int64_t s, e;
	} evs[] = {
		{0, PT_OP_F, 0, 0, 10},	    /* compute [0,10] */
		{0, PT_OP_KERNEL, 7, 5, 15}, /* kernel on a compute stream: compute union [0,15] */
		{0, PT_OP_SEND, 1, 12, 20},  /* comm [12,20] */
		{0, PT_OP_KERNEL, 27, 18, 30}, /* comm-stream kernel: comm union [12,30] */
		{0, PT_OP_B, 0, 25, 28},    /* compute [25,28] */
		{0, PT_OP_RANGE, 9, 0, 100}, /* a range counts as neither */
		{1, PT_OP_F, 0, 40, 50},
	};
	for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
		pt_event e = tu_event(evs[i].rank, evs[i].stream, evs[i].kind, evs[i].s, evs[i].e);
		pt_emit(b, &e);
	}
	assert_int_equal(pt_rec_close(rec), 0);
	pt_trace *t;
	pt_metrics *m = tu_metrics(path, &t);
	const pt_rank_metrics *r0 = &m->rank[0];
	assert_int_equal(r0->busy, 15 + 3);
	assert_int_equal(r0->comm, 18);
	assert_int_equal(r0->overlap, 3 + 3); /* [12,15] and [25,28] */
	assert_int_equal(r0->exposed, 12);
	assert_int_equal(r0->first, 0);
	assert_int_equal(r0->last, 30);
	assert_int_equal(m->win_start, 0);
	assert_int_equal(m->win_end, 50);
	assert_int_equal(r0->bubble, 50 - 18);
	assert_int_equal(r0->span_bubble, 30 - 18);
	assert_int_equal(r0->peak_act, 1);
	assert_int_equal(m->rank[1].bubble, 40);
	assert_int_equal(m->rank[1].span_bubble, 0);
	assert_true(m->overlap_ratio > 0.333 && m->overlap_ratio < 0.334);
	assert_true(m->bubble_ratio > (32.0 + 40) / 100 - 1e-9 && m->bubble_ratio < (32.0 + 40) / 100 + 1e-9);
	pt_metrics_destroy(m);
	pt_trace_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dualpipe_bubble_formula), cmocka_unit_test(test_dualpipev_bubble_formula),
		cmocka_unit_test(test_1f1b_zb1p_bubble_formula), cmocka_unit_test(test_other_schedules),
		cmocka_unit_test(test_zbv_zero_span_bubble),	cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_link_costs_by_hand),	cmocka_unit_test(test_overlap_beats_flush),
		cmocka_unit_test(test_metrics_by_hand),
	};
	int rc = cmocka_run_group_tests_name("sim", tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
