/*
 * tests/unit/test_whatif.c — costs calibrated on a recorded run and the
 * sim's prediction: calibrating on a sim trace gives back its costs, and
 * re-simulating the same plan with them reproduces its makespan and every
 * rank's bubble exactly (many schedules, both communication modes, costly
 * links); kinds a run did not execute are derived and flagged; the link fit
 * with several message sizes recovers latency and bandwidth; a trace with
 * nothing to calibrate on is refused with a message naming it. The walk
 * that reads a plan from the trace as it goes (pt_sim_replay) times it as
 * pt_sim_run does, in windows of any size.
 */
#include <math.h>
#include <sqlite3.h>

#include "tu_sim.h"

#define MS 1000000LL

static pt_cost odd_costs(void)
{
	pt_cost c = {.f = 1300000, .b = 2100000, .i = 1200000, .w = 900000, .fb = 3100000};
	c.latency = 5000;
	c.bandwidth = 50e9;
	return c;
}

/* Calibrate on the trace at path (asserted to succeed). */
static void calibrate(const char *path, pt_cost *c, pt_calib *ci)
{
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	tu_log_reset();
	if (pt_cost_calibrate(t, c, ci))
		fail_msg("%s:\n%s", path, tu_log_buf);
	pt_trace_close(t);
}

/* Calibrate on a recording of (plan, cost, mode) and re-simulate. */
static void roundtrip(int sched, int P, int N, int mode, const pt_cost *cost, int64_t bytes)
{
	pt_plan *p = tu_plan(sched, P, N, bytes);
	char path[512];
	int64_t span = tu_record_sim(p, cost, mode, "measured.db", path, sizeof path);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_cost c;
	pt_calib ci;
	assert_int_equal(pt_cost_calibrate(t, &c, &ci), 0);
	const int64_t want[] = {0, cost->f, cost->b, cost->i, cost->w, cost->fb};
	const int64_t got[] = {0, c.f, c.b, c.i, c.w, c.fb};
	unsigned used = pt_plan_kinds(p);
	for (int k = PT_OP_F; k <= PT_OP_FB; k++) {
		if (!(used & (1u << k)))
			continue;
		assert_true(ci.nops[k] > 0);
		if (got[k] != want[k])
			fail_msg("%s: calibrated %s = %lld ns, ran with %lld", p->name, pt_kind_name(k),
				 (long long)got[k], (long long)want[k]);
	}
	/* one message size: wire + latency is what a message costs, always */
	assert_int_equal(pt_cost_wire(&c, bytes) + c.latency, pt_cost_wire(cost, bytes) + cost->latency);
	pt_sim *sim;
	assert_int_equal(pt_sim_run(p, &c, mode, &sim), 0);
	if (sim->makespan != span)
		fail_msg("%s %s: re-simulated makespan %lld ns, measured %lld (link: %s)", p->name, pt_comm_name(mode),
			 (long long)sim->makespan, (long long)span, ci.link_method);
	pt_sim_destroy(sim);
	/* and through pt_predict, per rank, against the metrics of the trace */
	pt_metrics *m;
	assert_int_equal(pt_metrics_compute(t, &m), 0);
	pt_prediction *pr;
	tu_log_reset();
	if (pt_predict(t, &pr))
		fail_msg("%s: no prediction:\n%s", p->name, tu_log_buf);
	assert_int_equal(pr->makespan, m->win_end - m->win_start);
	assert_int_equal(pr->nranks, m->nranks);
	for (int r = 0; r < P; r++) {
		assert_int_equal(pr->busy[r], m->rank[r].busy);
		assert_int_equal(pr->bubble[r], m->rank[r].bubble);
	}
	assert_true(fabs(pr->bubble_ratio - m->bubble_ratio) < 1e-12);
	pt_prediction_destroy(pr);
	pt_metrics_destroy(m);
	pt_trace_close(t);
	pt_plan_destroy(p);
}

static void test_calibrate_and_resimulate(void **state)
{
	(void)state;
	pt_cost def = pt_cost_default(), odd = odd_costs();
	pt_cost slow = odd;
	slow.latency = 40000;
	slow.bandwidth = 10e9;
	for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
		roundtrip(PT_SCHED_DUALPIPE, 8, 20, mode, &def, 0);
		roundtrip(PT_SCHED_DUALPIPE, 8, 20, mode, &odd, 64 << 20);
		roundtrip(PT_SCHED_DUALPIPEV, 4, 10, mode, &slow, 16 << 20);
		roundtrip(PT_SCHED_1F1B, 4, 8, mode, &odd, 16 << 20);
		roundtrip(PT_SCHED_ZB1P, 6, 12, mode, &slow, 8 << 20);
		roundtrip(PT_SCHED_GPIPE, 4, 8, mode, &odd, 1 << 20);
		roundtrip(PT_SCHED_INTERLEAVED, 4, 8, mode, &slow, 4 << 20);
		roundtrip(PT_SCHED_ZBV, 4, 8, mode, &odd, 4 << 20);
	}
}

/* The link of a dualpipe flush run queues transfers: the fit must find the
 * wire time and the latency apart, not only their sum. */
static void test_link_split(void **state)
{
	(void)state;
	pt_cost cost = odd_costs();
	pt_plan *p = tu_plan(PT_SCHED_DUALPIPE, 8, 20, 64 << 20);
	char path[512];
	tu_record_sim(p, &cost, PT_COMM_FLUSH, "split.db", path, sizeof path);
	pt_cost c;
	pt_calib ci;
	calibrate(path, &c, &ci);
	assert_true(ci.nqueued > 0);
	assert_int_equal(ci.nsizes, 1);
	assert_int_equal(ci.nmsgs, (int64_t)pt_plan_count(p, 1) / 2);
	assert_int_equal(c.latency, 5000);
	assert_int_equal(pt_cost_wire(&c, 64 << 20), pt_cost_wire(&cost, 64 << 20));
	assert_true(fabs(c.bandwidth - 50e9) / 50e9 < 1e-5);
	pt_plan_destroy(p);
}

/* Kinds a schedule does not execute come from those it does. */
static void test_derived_kinds(void **state)
{
	(void)state;
	pt_cost def = pt_cost_default();
	char path[512];
	pt_plan *p = tu_plan(PT_SCHED_1F1B, 4, 8, 0);
	tu_record_sim(p, &def, PT_COMM_FLUSH, "1f1b.db", path, sizeof path);
	pt_cost c;
	pt_calib ci;
	calibrate(path, &c, &ci);
	assert_int_equal(ci.derived, (1u << PT_OP_I) | (1u << PT_OP_W) | (1u << PT_OP_FB));
	assert_int_equal(ci.missing, 0);
	assert_int_equal(c.f, 1 * MS);
	assert_int_equal(c.b, 2 * MS);
	assert_int_equal(c.i, 1 * MS);
	assert_int_equal(c.w, 1 * MS);
	assert_int_equal(c.fb, 3 * MS);
	assert_int_equal(c.latency, 0);
	assert_true(c.bandwidth == 0);
	pt_plan_destroy(p);

	pt_cost zc = {.f = 3 * MS, .b = 7 * MS, .i = 4 * MS, .w = 2 * MS, .fb = 9 * MS};
	p = tu_plan(PT_SCHED_ZB1P, 4, 8, 0);
	tu_record_sim(p, &zc, PT_COMM_FLUSH, "zb.db", path, sizeof path);
	calibrate(path, &c, &ci);
	assert_int_equal(ci.derived, (1u << PT_OP_B) | (1u << PT_OP_FB));
	assert_int_equal(c.b, 6 * MS); /* I + W, not the 7 ms the run never used */
	assert_int_equal(c.fb, 9 * MS); /* F + B */
	pt_plan_destroy(p);
}

/* A hand-made trace: events of one rank (no plan), kinds and sizes given. */
struct hand {
	int kind;
	int64_t bytes, start, end;
};

static void write_hand(const char *path, const struct hand *ev, size_t n)
{
	pt_rec *rec = tu_hand_create(path, 2);
	pt_tbuf *b = pt_rec_thread(rec);
	for (size_t i = 0; i < n; i++) {
		uint32_t stream = pt_kind_is_comm(ev[i].kind) ? PT_STREAM_P2P : PT_STREAM_MAIN;
		pt_event e = tu_event(0, stream, ev[i].kind, ev[i].start, ev[i].end);
		e.op.mb = (int)i;
		e.op.bytes = ev[i].bytes;
		e.op.peer = 1;
		e.op.seq = (int)i;
		pt_emit(b, &e);
	}
	assert_int_equal(pt_rec_close(rec), 0);
}

/* Several message sizes: latency and bandwidth from a straight line; the
 * medians keep one slow outlier from bending it. */
static void test_link_fit_sizes(void **state)
{
	(void)state;
	const double bw = 10e9;
	const int64_t lat = 10000;
	struct hand ev[40];
	size_t n = 0;
	ev[n++] = (struct hand){PT_OP_F, 0, 0, 1000};
	int64_t t0 = 2000;
	for (int rep = 0; rep < 3; rep++)
		for (int64_t b = 1 << 20; b <= 32 << 20; b *= 2) {
			int64_t d = lat + (int64_t)llround((double)b * 1e9 / bw);
			ev[n++] = (struct hand){PT_OP_SEND, b, t0, t0 + d};
			t0 += 10 * MS;
		}
	ev[n++] = (struct hand){PT_OP_SEND, 1 << 20, t0, t0 + 50 * MS}; /* an outlier */
	char path[512];
	tu_path(path, sizeof path, "sizes.db");
	write_hand(path, ev, n);
	pt_cost c;
	pt_calib ci;
	calibrate(path, &c, &ci);
	assert_int_equal(ci.nsizes, 6);
	assert_int_equal(ci.nmsgs, 19);
	if (llabs(c.latency - lat) > 2 || fabs(c.bandwidth - bw) / bw > 1e-6)
		fail_msg("fitted latency %lld ns, bandwidth %g B/s; want %lld, %g", (long long)c.latency, c.bandwidth,
			 (long long)lat, bw);
	assert_int_equal(ci.missing, (1u << PT_OP_B) | (1u << PT_OP_I) | (1u << PT_OP_W) | (1u << PT_OP_FB));
	assert_int_equal(c.b, -1);
}

static int feed(void *cal, const pt_event *ev) { return pt_calib_event(cal, ev); }

/* Calibrate as stats does: fed by the metrics' sweep. */
static void calibrate_fed(const char *path, pt_cost *c, pt_calib *ci)
{
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_calibrator *cal;
	assert_int_equal(pt_calib_create(&cal), 0);
	pt_metrics *m;
	pt_metrics_feed f = {feed, NULL, cal};
	assert_int_equal(pt_metrics_compute_each(t, &f, &m), 0);
	assert_int_equal(pt_calib_finish(cal, t, c, ci), 0);
	pt_calib_destroy(cal);
	pt_metrics_destroy(m);
	pt_trace_close(t);
}

/* Calibrate on path with the exact tallies and again with tallies forced
 * to count buckets and read the rows twice, each by its own reads and fed
 * by the metrics' sweep: the same medians, exactly. */
static void same_coarse(const char *path)
{
	pt_cost a, b;
	pt_calib ia, ib;
	calibrate(path, &a, &ia);
	size_t cap = pt_calib_cap_;
	for (int fed = 0; fed < 2; fed++)
		for (size_t c = 3; c <= cap; c = c == 3 ? cap : cap + 1) {
			pt_calib_cap_ = c;
			if (fed)
				calibrate_fed(path, &b, &ib);
			else
				calibrate(path, &b, &ib);
			pt_calib_cap_ = cap;
			assert_memory_equal(&a, &b, sizeof a);
			assert_memory_equal(&ia, &ib, sizeof ia);
		}
}

/* Medians of jittered durations (odd and even counts, values in many
 * buckets), per size, over all sizes and of queued spacings, are the same
 * whether the calibration held exact counts or took a second read. */
static void test_calibrate_coarse(void **state)
{
	(void)state;
	uint64_t x = 88172645463325252ull;
#define RND() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
	char path[512];
	/* several sizes, durations falling with size: the all-sizes median */
	tu_path(path, sizeof path, "jitter.db");
	pt_rec *rec = tu_hand_create(path, 2);
	pt_tbuf *tb = pt_rec_thread(rec);
	int64_t t0 = 0;
	for (int i = 0; i < 2001; i++) {
		int kind = i % 2 ? PT_OP_F : PT_OP_B;
		int64_t d = (kind == PT_OP_F ? MS : 2 * MS) + (int64_t)(RND() % 50000);
		pt_event e = tu_event(0, PT_STREAM_MAIN, kind, t0, t0 + d);
		pt_emit(tb, &e);
		t0 += 3 * MS;
	}
	for (int i = 0; i < 1000; i++) {
		int64_t bytes = (int64_t)(1 + i % 4) << 20, d = 400000 / (1 + i % 4) + (int64_t)(RND() % 90000);
		pt_event e = tu_event(0, PT_STREAM_P2P, PT_OP_SEND, t0, t0 + d);
		e.op.bytes = bytes;
		e.op.peer = 1;
		e.op.seq = i;
		pt_emit(tb, &e);
		t0 += MS;
	}
	assert_int_equal(pt_rec_close(rec), 0);
	same_coarse(path);
	/* one size, transfers queued on their link: the wire time's median */
	tu_path(path, sizeof path, "queued.db");
	rec = tu_hand_create(path, 2);
	tb = pt_rec_thread(rec);
	t0 = 0;
	pt_event f = tu_event(0, PT_STREAM_MAIN, PT_OP_F, 0, MS);
	pt_emit(tb, &f);
	for (int i = 0; i < 999; i++) {
		int64_t d = 300000 + (int64_t)(RND() % 200000);
		pt_event e = tu_event(0, PT_STREAM_P2P, PT_OP_SEND, t0, t0 + d);
		e.posted_ns = t0 - 1;
		e.op.bytes = 1 << 20;
		e.op.peer = 1;
		e.op.seq = i;
		pt_emit(tb, &e);
		t0 += d / 2 + (int64_t)(RND() % 1000);
	}
	assert_int_equal(pt_rec_close(rec), 0);
	same_coarse(path);
#undef RND
}

/* Nothing to calibrate on, nothing to re-simulate: refused, naming the file. */
static void test_refusals(void **state)
{
	(void)state;
	struct hand ev[] = {{PT_OP_SEND, 100, 0, 10}};
	char path[512];
	tu_path(path, sizeof path, "nocompute.db");
	write_hand(path, ev, 1);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_cost c;
	pt_calib ci;
	tu_log_reset();
	assert_int_equal(pt_cost_calibrate(t, &c, &ci), PT_EINVAL);
	assert_logged("nocompute.db: no compute ops");
	pt_plan *p;
	tu_log_reset();
	assert_int_equal(pt_plan_from_trace(t, &p), PT_ENOTSUP);
	assert_null(p);
	pt_prediction *pr;
	assert_int_equal(pt_predict(t, &pr), PT_ENOTSUP);
	assert_null(pr);
	pt_trace_close(t);
}

/* The plan read back from a trace is the plan that ran. */
static void test_plan_from_trace(void **state)
{
	(void)state;
	pt_cost def = pt_cost_default();
	int scheds[] = {PT_SCHED_DUALPIPE, PT_SCHED_DUALPIPEV, PT_SCHED_INTERLEAVED, PT_SCHED_ZBV};
	for (size_t s = 0; s < sizeof scheds / sizeof scheds[0]; s++) {
		pt_plan *p = tu_plan(scheds[s], 4, 8, 1024);
		char path[512];
		tu_record_sim(p, &def, PT_COMM_OVERLAP, "back.db", path, sizeof path);
		pt_trace *t;
		assert_int_equal(pt_trace_open(path, &t), 0);
		pt_plan *q;
		assert_int_equal(pt_plan_from_trace(t, &q), 0);
		assert_int_equal(q->ranks, p->ranks);
		assert_int_equal(q->chunks, p->chunks);
		assert_int_equal(q->npipes, p->npipes);
		assert_int_equal(q->mbs[0], p->mbs[0]);
		assert_int_equal(q->mbs[1], p->mbs[1]);
		for (int r = 0; r < p->ranks; r++) {
			assert_int_equal(q->rank[r].n, p->rank[r].n);
			for (size_t i = 0; i < p->rank[r].n; i++) {
				const pt_op *a = &p->rank[r].ops[i], *b = &q->rank[r].ops[i];
				assert_int_equal(a->kind, b->kind);
				assert_int_equal(a->chunk, b->chunk);
				assert_int_equal(a->mb, b->mb);
				assert_int_equal(a->peer, b->peer);
				assert_int_equal(a->seq, b->seq);
				assert_int_equal(a->batch, b->batch);
				assert_int_equal(a->bytes, b->bytes);
			}
		}
		pt_plan_destroy(q);
		pt_trace_close(t);
		pt_plan_destroy(p);
	}
}

/* pt_sim_replay against pt_sim_run: the same window and per-rank compute
 * time, whatever the window of ops it reads at a time (1: every op a read;
 * 2: flush batches longer than it). */
static void replay_one(int sched, int P, int N, int mode, const pt_cost *cost, int64_t bytes)
{
	pt_plan *p = tu_plan(sched, P, N, bytes);
	char path[512];
	tu_record_sim(p, cost, mode, "replay.db", path, sizeof path);
	pt_sim *sim;
	assert_int_equal(pt_sim_run(p, cost, mode, &sim), 0);
	int64_t lo = INT64_MAX, hi = INT64_MIN, *busy = calloc((size_t)P, sizeof *busy);
	for (int r = 0; r < P; r++) {
		for (size_t i = 0; i < p->rank[r].n; i++) {
			const pt_sim_step *s = &sim->step[r][i];
			lo = s->start < lo ? s->start : lo;
			hi = s->end > hi ? s->end : hi;
			if (pt_kind_is_compute(p->rank[r].ops[i].kind))
				busy[r] += s->end - s->start;
		}
	}
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	int64_t *got = calloc((size_t)P, sizeof *got);
	const size_t windows[] = {1, 2, 7, 0};
	for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
		int64_t glo, ghi;
		pt_replay_window_ = windows[w];
		tu_log_reset();
		if (pt_sim_replay(t, p, cost, mode, got, &glo, &ghi))
			fail_msg("%s %s, window %zu:\n%s", p->name, pt_comm_name(mode), windows[w], tu_log_buf);
		if (glo != lo || ghi != hi)
			fail_msg("%s %s, window %zu: [%lld, %lld], pt_sim_run [%lld, %lld]", p->name,
				 pt_comm_name(mode), windows[w], (long long)glo, (long long)ghi, (long long)lo,
				 (long long)hi);
		for (int r = 0; r < P; r++)
			assert_int_equal(got[r], busy[r]);
	}
	pt_replay_window_ = 0;
	free(got);
	free(busy);
	pt_trace_close(t);
	pt_sim_destroy(sim);
	pt_plan_destroy(p);
}

static void test_replay(void **state)
{
	(void)state;
	pt_cost def = pt_cost_default(), odd = odd_costs();
	for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
		replay_one(PT_SCHED_DUALPIPE, 8, 20, mode, &odd, 64 << 20);
		replay_one(PT_SCHED_DUALPIPEV, 4, 10, mode, &def, 0);
		replay_one(PT_SCHED_1F1B, 6, 12, mode, &odd, 16 << 20);
		replay_one(PT_SCHED_ZB1P, 6, 12, mode, &odd, 8 << 20);
		replay_one(PT_SCHED_GPIPE, 4, 8, mode, &odd, 1 << 20);
		replay_one(PT_SCHED_INTERLEAVED, 4, 8, mode, &odd, 4 << 20);
		replay_one(PT_SCHED_ZBV, 4, 8, mode, &odd, 4 << 20);
	}
}

/* A window of a rank's plan at a time reads what the whole rank reads, and
 * refuses what it refuses. */
static void test_plan_read(void **state)
{
	(void)state;
	pt_cost def = pt_cost_default();
	pt_plan *p = tu_plan(PT_SCHED_DUALPIPE, 4, 8, 1024);
	char path[512];
	tu_record_sim(p, &def, PT_COMM_FLUSH, "windows.db", path, sizeof path);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	for (int r = 0; r < p->ranks; r++) {
		pt_op *all, win[3];
		size_t n, got, at = 0;
		int64_t step = 0;
		assert_int_equal(pt_trace_plan(t, r, &all, &n), 0);
		assert_int_equal(n, p->rank[r].n);
		do {
			assert_int_equal(pt_trace_plan_read(t, r, &step, win, 3, &got), 0);
			assert_true(at + got <= n);
			assert_memory_equal(win, &all[at], got * sizeof *win);
			at += got;
			assert_int_equal(step, (int64_t)at);
		} while (got);
		assert_int_equal(at, n);
		free(all);
	}
	pt_trace_close(t);

	/* a value wider than its field is corruption, read a window at a time
	 * or whole: the ops before it, then PT_ECORRUPT naming it */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE plan SET chunk = 65536 WHERE rank = 1 AND step = 4", 0, 0, 0),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_op win[3];
	size_t got, at = 0;
	int64_t step = 0;
	int err;
	tu_log_reset();
	while (!(err = pt_trace_plan_read(t, 1, &step, win, 3, &got)) && got)
		at += got;
	assert_int_equal(err, PT_ECORRUPT);
	assert_int_equal(at + got, 4);
	assert_int_equal(step, 4);
	assert_logged("windows.db: the plan of rank 1, step 4: chunk 65536 is out of range");
	pt_op *all;
	size_t n;
	tu_log_reset();
	assert_int_equal(pt_trace_plan(t, 1, &all, &n), PT_ECORRUPT);
	assert_null(all);
	assert_logged("windows.db: the plan of rank 1, step 4: chunk 65536 is out of range");
	pt_trace_close(t);
	pt_plan_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_calibrate_and_resimulate),
		cmocka_unit_test(test_link_split),
		cmocka_unit_test(test_derived_kinds),
		cmocka_unit_test(test_link_fit_sizes),
		cmocka_unit_test(test_calibrate_coarse),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_plan_from_trace),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_plan_read),
	};
	int rc = cmocka_run_group_tests_name("whatif", tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
