/*
 * tests/unit/test_idle.c — the idle breakdown of docs/metrics.md: two runs
 * worked out on paper (1F1B on 2 ranks, 2 microbatches, 0.5 ms links, in
 * flush and in overlap mode), the split's sums over every schedule and
 * mode, and hand-made traces for what the sim never produces (an op that
 * started late with its inputs there, a rank without a plan).
 */
#include "tu_sim.h"

#define US 1000LL

struct want {
	int64_t phase[3], cause[3];
};

static void expect(const pt_rank_metrics *r, const struct want *w)
{
	assert_true(r->has_idle);
	for (int k = 0; k < 3; k++) {
		if (r->idle_phase[k] != w->phase[k] || r->idle_cause[k] != w->cause[k])
			fail_msg("rank %d: phases %lld/%lld/%lld causes %lld/%lld/%lld ns; paper: %lld/%lld/%lld, "
				 "%lld/%lld/%lld",
				 r->rank, (long long)r->idle_phase[0], (long long)r->idle_phase[1],
				 (long long)r->idle_phase[2], (long long)r->idle_cause[0], (long long)r->idle_cause[1],
				 (long long)r->idle_cause[2], (long long)w->phase[0], (long long)w->phase[1],
				 (long long)w->phase[2], (long long)w->cause[0], (long long)w->cause[1],
				 (long long)w->cause[2]);
	}
}

/*
 * 1F1B, P=2, N=2, F=1 ms, B=2 ms, latency 0.5 ms, flush. r0: F0 [0,1],
 * flush of sA0 until 1.5, F1 [1.5,2.5], batch {sA1, rG0}: G0 sent by r1 at
 * 4.5, through at 5.0, B0 [5,7], rG1 sent at 8.0, through 8.5, B1 [8.5,10.5].
 * r1: rA0 (sent 1, through 1.5), F0 [1.5,2.5], B0 [2.5,4.5], batch {sG0,
 * rA1} until 5.0, F1 [5,6], B1 [6,8], then nothing until 10.5.
 * r0's gaps: [1,1.5] before F1 (steady): in transfer; [2.5,5] before B0
 * (steady): G0 not sent until 4.5, then 0.5 in transfer; [7,8.5] before B1
 * (cool-down): 1 not sent, 0.5 in transfer.
 * r1's: [0,1.5] before F0 (steady: the last stage has no warm-up): 1 not
 * sent, 0.5 in transfer; [4.5,5] before F1: its own send in transfer;
 * [8,10.5] the tail: cool-down, dependency.
 */
/* Simulate 1F1B on 2 ranks, 2 microbatches, 0.5 ms links in mode and
 * compare the window and both ranks' split with the paper's. */
static void by_hand(int mode, int64_t window, const struct want *r0, const struct want *r1)
{
	pt_plan *p = tu_plan(PT_SCHED_1F1B, 2, 2, 0);
	pt_cost c = pt_cost_default();
	c.latency = 500 * US;
	char path[512];
	tu_record_sim(p, &c, mode, "byhand.db", path, sizeof path);
	pt_trace *t;
	pt_metrics *m = tu_metrics(path, &t);
	assert_int_equal(m->win_end - m->win_start, window);
	expect(&m->rank[0], r0);
	expect(&m->rank[1], r1);
	assert_true(m->has_idle);
	for (int k = 0; k < 3; k++) {
		assert_int_equal(m->idle_phase[k], r0->phase[k] + r1->phase[k]);
		assert_int_equal(m->idle_cause[k], r0->cause[k] + r1->cause[k]);
	}
	pt_metrics_destroy(m);
	pt_trace_close(t);
	pt_plan_destroy(p);
}

static void test_by_hand_flush(void **state)
{
	(void)state;
	struct want r0 = {{0, 3000 * US, 1500 * US}, {1500 * US, 3000 * US, 0}};
	struct want r1 = {{0, 2000 * US, 2500 * US}, {1000 * US, 3500 * US, 0}};
	by_hand(PT_COMM_FLUSH, 10500 * US, &r0, &r1);
}

/*
 * The same in overlap mode: receives posted one op early, sends never
 * block. r0: F0 [0,1], F1 [1,2], B0 waits for G0 (sent 4.5, through 5.0):
 * [5,7]; B1 for G1 (sent 7.5, through 8.0): [8,10]. r1: F0 waits for A0
 * (sent 1, through 1.5): [1.5,2.5], B0 [2.5,4.5], F1 [4.5,5.5] (A1 long
 * there), B1 [5.5,7.5], then idle until 10.
 */
static void test_by_hand_overlap(void **state)
{
	(void)state;
	struct want r0 = {{0, 3000 * US, 1000 * US}, {1000 * US, 3000 * US, 0}};
	struct want r1 = {{0, 1500 * US, 2500 * US}, {500 * US, 3500 * US, 0}};
	by_hand(PT_COMM_OVERLAP, 10000 * US, &r0, &r1);
}

/* Over every schedule and mode with costly links: the split adds up to the
 * bubble both ways, and in the sim every idle moment has a recorded cause. */
static void test_sums(void **state)
{
	(void)state;
	pt_cost c = {.f = 1300000, .b = 2100000, .i = 1200000, .w = 900000, .fb = 3100000,
		     .latency = 20000, .bandwidth = 10e9};
	for (int s = 0; s < PT_SCHED_COUNT; s++) {
		for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
			pt_plan *p = tu_plan(s, 4, 8, 8 << 20);
			char path[512];
			tu_record_sim(p, &c, mode, "sums.db", path, sizeof path);
			pt_trace *t;
			pt_metrics *m = tu_metrics(path, &t);
			int64_t comm = 0;
			for (int r = 0; r < m->nranks; r++) {
				const pt_rank_metrics *x = &m->rank[r];
				assert_true(x->has_idle);
				int64_t ph = x->idle_phase[0] + x->idle_phase[1] + x->idle_phase[2];
				int64_t ca = x->idle_cause[0] + x->idle_cause[1] + x->idle_cause[2];
				if (ph != x->bubble || ca != x->bubble || x->idle_cause[PT_IDLE_OTHER] != 0)
					fail_msg("%s %s rank %d: bubble %lld, phases sum %lld, causes sum %lld, other %lld",
						 p->name, pt_comm_name(mode), r, (long long)x->bubble, (long long)ph,
						 (long long)ca, (long long)x->idle_cause[PT_IDLE_OTHER]);
				comm += x->idle_cause[PT_IDLE_COMM];
			}
			assert_true(comm > 0); /* 8 MiB over 10 GB/s is seen waiting */
			pt_metrics_destroy(m);
			pt_trace_close(t);
			pt_plan_destroy(p);
		}
	}
	/* free links: nothing is ever in transfer */
	pt_cost def = pt_cost_default();
	pt_plan *p = tu_plan(PT_SCHED_DUALPIPE, 8, 20, 0);
	char path[512];
	tu_record_sim(p, &def, PT_COMM_FLUSH, "free.db", path, sizeof path);
	pt_trace *t;
	pt_metrics *m = tu_metrics(path, &t);
	assert_int_equal(m->idle_cause[PT_IDLE_COMM], 0);
	assert_int_equal(m->idle_cause[PT_IDLE_DEP], m->bubble);
	pt_metrics_destroy(m);
	pt_trace_close(t);
	pt_plan_destroy(p);
}

/* Rank 0 has a plan of two F ops and starts the second 5 ns late with no
 * input to wait for: "other", in the second op's phase. Rank 1 has ops but
 * no plan: no breakdown. */
static void test_hand_made(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "hand.db");
	pt_rec *rec = tu_hand_create(path, 2);
	pt_op plan[2] = {pt_op_make(PT_OP_F, 0, 0), pt_op_make(PT_OP_F, 0, 1)};
	plan[0].phase = PT_WARMUP;
	plan[1].phase = PT_STEADY;
	assert_int_equal(pt_rec_plan(rec, 0, plan, 2), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	struct {
		int rank, step;
		int64_t s, e;
	} evs[] = {{0, 0, 2, 10}, {0, 1, 15, 25}, {1, -1, 0, 30}};
	for (int i = 0; i < 3; i++) {
		pt_event e = tu_event(evs[i].rank, PT_STREAM_MAIN, PT_OP_F, evs[i].s, evs[i].e);
		e.step = evs[i].step;
		e.op.mb = i;
		pt_emit(b, &e);
	}
	assert_int_equal(pt_rec_close(rec), 0);
	pt_trace *t;
	pt_metrics *m = tu_metrics(path, &t);
	/* window [0,30]: r0 idle [0,2] before step 0 (warm-up), [10,15] before
	 * step 1 (steady), [25,30] the tail (cool-down, dependency) */
	struct want r0 = {{2, 5, 5}, {0, 5, 7}};
	expect(&m->rank[0], &r0);
	assert_false(m->rank[1].has_idle);
	assert_int_equal(m->idle_phase[PT_STEADY], 5);
	pt_metrics_destroy(m);
	pt_trace_close(t);
}

/* Two 10 ns transfers posted together on one link: the second queues behind
 * the first. Rank 1's F waits for it; its sender posted it at 0, so the
 * whole wait is communication, although the transfer itself began at 10. */
static void test_queued_transfer(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "queued.db");
	pt_rec *rec = tu_hand_create(path, 2);
	assert_int_equal(pt_rec_meta(rec, "comm_mode", "overlap"), 0);
	pt_op p0[2], p1[3];
	for (int k = 0; k < 2; k++) {
		p0[k] = pt_op_make(PT_OP_SEND, 0, k);
		p1[k] = pt_op_make(PT_OP_RECV, 0, k);
		p0[k].peer = 1, p1[k].peer = 0;
		p0[k].seq = p1[k].seq = k;
		p0[k].payload = p1[k].payload = PT_ACT;
	}
	p1[2] = pt_op_make(PT_OP_F, 0, 1);
	p1[2].phase = PT_WARMUP;
	assert_int_equal(pt_rec_plan(rec, 0, p0, 2), 0);
	assert_int_equal(pt_rec_plan(rec, 1, p1, 3), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	for (int k = 0; k < 2; k++) {
		for (int r = 0; r < 2; r++) {
			pt_event e = tu_event(r, PT_STREAM_P2P, r ? PT_OP_RECV : PT_OP_SEND, 10 * k, 10 * k + 10);
			e.op = r ? p1[k] : p0[k];
			e.step = k;
			e.posted_ns = 0;
			pt_emit(b, &e);
		}
	}
	pt_event f = tu_event(0, PT_STREAM_MAIN, PT_OP_F, 0, 40); /* rank 0 computes throughout */
	pt_emit(b, &f);
	f = tu_event(1, PT_STREAM_MAIN, PT_OP_F, 20, 40);
	f.op = p1[2];
	f.step = 2;
	pt_emit(b, &f);
	assert_int_equal(pt_rec_close(rec), 0);
	pt_trace *t;
	pt_metrics *m = tu_metrics(path, &t);
	struct want r1 = {{20, 0, 0}, {20, 0, 0}};
	expect(&m->rank[1], &r1);
	pt_metrics_destroy(m);
	pt_trace_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_by_hand_flush),
		cmocka_unit_test(test_by_hand_overlap),
		cmocka_unit_test(test_sums),
		cmocka_unit_test(test_hand_made),
		cmocka_unit_test(test_queued_transfer),
	};
	int rc = cmocka_run_group_tests_name("idle", tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
