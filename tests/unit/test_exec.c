/*
 * tests/unit/test_exec.c — the executor on its own, under a fake backend
 * whose "math" writes each (stage, global microbatch)'s identity into its
 * buffers and checks what arrives: every F sees the output of the stage
 * before it for the same microbatch (through messages or a same-rank
 * hand-off), every B the gradient of the stage after it, every W the very
 * slot its I left, and I/W pairs balance. Also: a backend failure on one
 * rank stops every rank without a hang and the next step runs clean; the
 * pool holds the plan's peak. The transport is the real one (chan.c). And the
 * hooks of a device backend (cuda), and ranks split over two executors as
 * over two processes under mpirun, their traces merged.
 */
#include <pthread.h>

#include "testutil.h"
#include "tu_plan.h"

#include "runner/chan.h"
#include "runner/exec.h"
#include "runner/runner.h"

enum { WORDS = 4 }; /* a message: stage, gmb, kind, check */

struct fslot {
	int64_t x[WORDS], y[WORDS], dy[WORDS], dx[WORDS];
	int deferred; /* I ran, W not yet: (stage << 20 | gmb) + 1 */
};

struct fake {
	const pt_plan *plan;
	pt_chan *chan;
	pthread_mutex_t mu;
	int errors;	     /* wrong data seen */
	char first_error[256];
	int fwd, bwd, wgt;   /* calls */
	int fail_rank;	     /* forward fails here on its fail_at-th call, -1 none */
	int fail_at, calls_on_fail_rank;
};

static void bad(struct fake *f, const char *fmt, int a, int b, int c, int d)
{
	pthread_mutex_lock(&f->mu);
	if (!f->errors++)
		snprintf(f->first_error, sizeof f->first_error, fmt, a, b, c, d);
	pthread_mutex_unlock(&f->mu);
}

static int f_slot_create(void *be, int rank, void **out)
{
	(void)be, (void)rank;
	*out = calloc(1, sizeof(struct fslot));
	return *out ? 0 : PT_ENOMEM;
}
static void f_slot_destroy(void *be, void *s) { (void)be, free(s); }
static void *f_slot_buf(void *be, void *slot, enum pt_buf w)
{
	(void)be;
	struct fslot *s = slot;
	return w == PT_BUF_X ? (void *)s->x : w == PT_BUF_Y ? (void *)s->y : w == PT_BUF_DY ? (void *)s->dy : s->dx;
}

static int f_forward(void *be, const pt_work *w)
{
	struct fake *f = be;
	struct fslot *s = w->slot;
	pthread_mutex_lock(&f->mu);
	f->fwd++;
	int fail = w->rank == f->fail_rank && ++f->calls_on_fail_rank == f->fail_at;
	pthread_mutex_unlock(&f->mu);
	if (fail)
		return pt_logerr(PT_EIO, "fake: rank %d fails on purpose", w->rank);
	if (!w->first && (s->x[0] != w->stage - 1 || s->x[1] != w->gmb || s->x[2] != PT_BUF_Y))
		bad(f, "F stage %d gmb %d got the output of stage %d gmb %d", w->stage, w->gmb, (int)s->x[0],
		    (int)s->x[1]);
	s->y[0] = w->stage, s->y[1] = w->gmb, s->y[2] = PT_BUF_Y;
	if (w->last)
		s->dy[0] = w->stage + 1, s->dy[1] = w->gmb, s->dy[2] = PT_BUF_DX; /* the loss's gradient */
	return 0;
}

static int f_backward(void *be, const pt_work *w, int defer)
{
	struct fake *f = be;
	struct fslot *s = w->slot;
	pthread_mutex_lock(&f->mu);
	f->bwd++;
	pthread_mutex_unlock(&f->mu);
	if (s->dy[0] != w->stage + 1 || s->dy[1] != w->gmb || s->dy[2] != PT_BUF_DX)
		bad(f, "B stage %d gmb %d got the gradient of stage %d gmb %d", w->stage, w->gmb, (int)s->dy[0] - 1,
		    (int)s->dy[1]);
	if (s->y[0] != w->stage || s->y[1] != w->gmb)
		bad(f, "B stage %d gmb %d runs on the slot of stage %d gmb %d", w->stage, w->gmb, (int)s->y[0],
		    (int)s->y[1]);
	s->dx[0] = w->stage, s->dx[1] = w->gmb, s->dx[2] = PT_BUF_DX;
	if (defer)
		s->deferred = (w->stage << 20 | w->gmb) + 1;
	return 0;
}

static int f_weight(void *be, const pt_work *w)
{
	struct fake *f = be;
	struct fslot *s = w->slot;
	pthread_mutex_lock(&f->mu);
	f->wgt++;
	pthread_mutex_unlock(&f->mu);
	if (s->deferred != (w->stage << 20 | w->gmb) + 1)
		bad(f, "W stage %d gmb %d got a slot deferred as %d/%d", w->stage, w->gmb, (s->deferred - 1) >> 20,
		    (s->deferred - 1) & 0xfffff);
	s->deferred = 0;
	return 0;
}

static int f_copy(void *be, int rank, void *dst, enum pt_buf db, void *src, enum pt_buf sb)
{
	(void)rank;
	memcpy(f_slot_buf(be, dst, db), f_slot_buf(be, src, sb), WORDS * sizeof(int64_t));
	return 0;
}

static int f_begin(void *be, const pt_rec *rec) { return pt_chan_start(((struct fake *)be)->chan, rec); }
static void f_end(void *be) { pt_chan_stop(((struct fake *)be)->chan); }
static int f_post(void *be, pt_msg *m) { return pt_chan_post(((struct fake *)be)->chan, m); }
static int f_wait(void *be, pt_msg *m) { return pt_chan_wait(((struct fake *)be)->chan, m); }
static void f_abort(void *be) { pt_chan_abort(((struct fake *)be)->chan); }

static const pt_exec_ops fake_ops = {.slot_create = f_slot_create,
				     .slot_destroy = f_slot_destroy,
				     .slot_buf = f_slot_buf,
				     .msg_bytes = WORDS * sizeof(int64_t),
				     .forward = f_forward,
				     .backward = f_backward,
				     .weight_grad = f_weight,
				     .copy = f_copy,
				     .step_begin = f_begin,
				     .step_end = f_end,
				     .post = f_post,
				     .wait = f_wait,
				     .abort = f_abort};

static void setup(struct fake *f, const pt_plan *p, pt_exec **x)
{
	memset(f, 0, sizeof *f);
	f->plan = p;
	f->fail_rank = -1;
	pthread_mutex_init(&f->mu, NULL);
	assert_int_equal(pt_chan_create(p, fake_ops.msg_bytes, &f->chan), 0);
	assert_int_equal(pt_exec_create(p, &fake_ops, f, x), 0);
}

static void teardown(struct fake *f, pt_exec *x)
{
	pt_exec_destroy(x);
	pt_chan_destroy(f->chan);
	pthread_mutex_destroy(&f->mu);
}

static int count(const pt_plan *p, int kind)
{
	int n = 0;
	for (int r = 0; r < p->ranks; r++)
		for (size_t i = 0; i < p->rank[r].n; i++)
			n += p->rank[r].ops[i].kind == kind;
	return n;
}

/* Data reaches the right (stage, microbatch) in every schedule and mode. */
static void test_data_routing(void **state)
{
	(void)state;
	for (int s = 0; s < PT_SCHED_COUNT; s++) {
		for (int P = 1; P <= 6; P++) {
			int N = s == PT_SCHED_INTERLEAVED ? 2 * P : 2 * P + 2;
			if (s == PT_SCHED_DUALPIPE && P % 2)
				continue;
			pt_plan *p = make(s, P, N);
			for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
				struct fake f;
				pt_exec *x;
				setup(&f, p, &x);
				pt_exec_step_opts so = {.mode = mode};
				pt_exec_result res;
				tu_log_reset();
				if (pt_exec_step(x, &so, &res))
					fail_msg("%s P=%d %s:\n%s", p->name, P, pt_comm_name(mode), tu_log_buf);
				if (f.errors)
					fail_msg("%s P=%d %s: %d wrong deliveries, first: %s", p->name, P,
						 pt_comm_name(mode), f.errors, f.first_error);
				int nf = count(p, PT_OP_F) + count(p, PT_OP_FB);
				int nb = count(p, PT_OP_B) + count(p, PT_OP_I) + count(p, PT_OP_FB);
				assert_int_equal(f.fwd, nf);
				assert_int_equal(f.bwd, nb);
				assert_int_equal(f.wgt, count(p, PT_OP_W));
				teardown(&f, x);
			}
			pt_plan_destroy(p);
		}
	}
}

/* One rank failing stops all of them, with its code; the next step is clean. */
static void test_failure_stops_every_rank(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 8);
	for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
		struct fake f;
		pt_exec *x;
		setup(&f, p, &x);
		f.fail_rank = 2;
		f.fail_at = 3;
		pt_exec_step_opts so = {.mode = mode};
		pt_exec_result res;
		tu_log_reset();
		assert_int_equal(pt_exec_step(x, &so, &res), PT_EIO);
		assert_logged("fake: rank 2 fails on purpose");
		f.fail_rank = -1;
		f.fwd = f.bwd = f.wgt = 0;
		tu_log_reset();
		assert_int_equal(pt_exec_step(x, &so, &res), 0);
		assert_int_equal(f.errors, 0);
		assert_int_equal(f.fwd, count(p, PT_OP_F) + count(p, PT_OP_FB));
		teardown(&f, x);
	}
	pt_plan_destroy(p);
}

/* The pool sized from the plan is its peak: DualPipe holds P+1 live
 * activations per rank (spec §3), plus the receives posted early. */
static void test_pool_is_the_plans_peak(void **state)
{
	(void)state;
	for (int P = 2; P <= 8; P += 2) {
		pt_plan *p = make(PT_SCHED_DUALPIPE, P, 2 * P + 4);
		for (int r = 0; r < P; r++) {
			int pool = pt_exec_pool_size(p, r);
			if (pool < P + 1 || pool > P + 3)
				fail_msg("DualPipe P=%d rank %d: pool of %d slots, peak activations %d", P, r, pool,
					 P + 1);
		}
		pt_plan_destroy(p);
	}
	pt_plan *g = make(PT_SCHED_GPIPE, 4, 10);
	assert_int_equal(pt_exec_pool_size(g, 0), 10); /* GPipe keeps them all */
	pt_plan_destroy(g);
}

/* A device backend (op_time set): op_begin/op_end bracket every compute op
 * on its rank's thread, nothing is recorded while the step runs, and the
 * trace's ops are op_time's intervals (CLOCK_MONOTONIC ns, moved to the
 * trace's time 0), the medians theirs too. */
static _Atomic int begun, ended, unbalanced;
static int64_t dev_base;
static int d_begin(void *be, int rank, int step, const pt_op *op)
{
	(void)be, (void)rank, (void)step;
	unbalanced += !pt_kind_is_compute(op->kind);
	begun++;
	return 0;
}
static int d_end(void *be, int rank, int step, const pt_op *op)
{
	(void)be, (void)rank, (void)step, (void)op;
	ended++;
	return 0;
}
static int d_time(void *be, int rank, int step, int64_t *s, int64_t *e)
{
	(void)be;
	*s = dev_base + rank * 1000000 + step * 1000;
	*e = *s + 700 + 100 * (step % 2); /* medians: 700 or 800 */
	return 0;
}

static void test_device_hooks(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 8);
	pt_exec_ops ops = fake_ops;
	ops.op_begin = d_begin;
	ops.op_end = d_end;
	ops.op_time = d_time;
	struct fake f;
	pt_exec *x;
	memset(&f, 0, sizeof f);
	f.plan = p;
	f.fail_rank = -1;
	pthread_mutex_init(&f.mu, NULL);
	assert_int_equal(pt_chan_create(p, ops.msg_bytes, &f.chan), 0);
	assert_int_equal(pt_exec_create(p, &ops, &f, &x), 0);
	char path[512];
	tu_path(path, sizeof path, "device.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_MONOTONIC, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	dev_base = pt_rec_origin(rec) + 5000000;
	pt_exec_step_opts so = {.mode = PT_COMM_OVERLAP, .rec = rec};
	pt_exec_result res;
	assert_int_equal(pt_exec_step(x, &so, &res), 0);
	assert_int_equal(f.errors, 0);
	int ncompute = (int)pt_plan_count(p, 0);
	assert_int_equal(begun, ncompute);
	assert_int_equal(ended, ncompute);
	assert_int_equal(unbalanced, 0);
	assert_true(res.median.f == 700 || res.median.f == 800);
	pt_run_info info = {.backend = "test", .cost = &res.median, .plan_source = "generated"};
	assert_int_equal(pt_run_begin(rec, p, &info), 0);
	assert_int_equal(pt_rec_close(rec), 0);
	pt_exec_destroy(x);
	pt_chan_destroy(f.chan);
	pthread_mutex_destroy(&f.mu);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_query q = pt_query_all();
	q.sources = PT_SRC_OPS;
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	pt_event e;
	int n = 0;
	while (pt_cursor_next(c, &e) == 1) {
		assert_int_equal(e.start_ns, 5000000 + e.rank * 1000000 + e.step * 1000);
		assert_int_equal(e.end_ns - e.start_ns, 700 + 100 * (e.step % 2));
		n++;
	}
	pt_cursor_close(c);
	assert_int_equal(n, ncompute);
	q.sources = PT_SRC_COMMS;
	assert_int_equal(pt_trace_count(t, &q), (int64_t)pt_plan_count(p, 1));
	pt_trace_close(t);
	pt_plan_destroy(p);
}

/* Two "processes" in one, as under mpirun: two executors each running half
 * the ranks (pt_exec_create_local) over one transport, each recording only
 * its ranks into its own trace (pt_run_begin with `local`); the traces hold
 * disjoint ranks, and merge joins them into the whole run. */
static _Atomic int starts;
static int s_begin(void *be, const pt_rec *rec)
{
	(void)rec;
	return starts++ == 0 ? pt_chan_start(((struct fake *)be)->chan, NULL) : 0;
}
static void s_end(void *be)
{
	if (--starts == 0)
		pt_chan_stop(((struct fake *)be)->chan);
}

struct half {
	pt_exec *x;
	pt_exec_step_opts so;
	pt_exec_result res;
	int err;
};
static void *half_main(void *arg)
{
	struct half *h = arg;
	h->err = pt_exec_step(h->x, &h->so, &h->res);
	return NULL;
}

static void test_two_processes_merge(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 8);
	pt_exec_ops ops = fake_ops;
	ops.step_begin = s_begin;
	ops.step_end = s_end;
	struct fake f;
	memset(&f, 0, sizeof f);
	f.plan = p;
	f.fail_rank = -1;
	pthread_mutex_init(&f.mu, NULL);
	assert_int_equal(pt_chan_create(p, ops.msg_bytes, &f.chan), 0);
	const uint8_t local[2][4] = {{1, 1, 0, 0}, {0, 0, 1, 1}};
	struct half h[2];
	pt_rec *rec[2];
	char path[3][512];
	for (int i = 0; i < 2; i++) {
		memset(&h[i], 0, sizeof h[i]);
		assert_int_equal(pt_exec_create_local(p, &ops, &f, local[i], &h[i].x), 0);
		tu_path(path[i], sizeof path[i], i ? "run.rank1.db" : "run.rank0.db");
		pt_rec_opts ro = {.clock = PT_CLOCK_MONOTONIC, .overwrite = 1};
		assert_int_equal(pt_rec_create(path[i], &ro, &rec[i]), 0);
		h[i].so = (pt_exec_step_opts){.mode = PT_COMM_OVERLAP, .rec = rec[i]};
	}
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, half_main, &h[1]), 0);
	half_main(&h[0]);
	pthread_join(th, NULL);
	assert_int_equal(h[0].err, 0);
	assert_int_equal(h[1].err, 0);
	assert_int_equal(f.errors, 0);
	assert_int_equal(f.fwd, count(p, PT_OP_F) + count(p, PT_OP_FB)); /* both halves together: every op once */
	for (int i = 0; i < 2; i++) {
		pt_run_info info = {.backend = "test",
				    .comm_mode = PT_COMM_OVERLAP,
				    .cost = &h[i].res.median,
				    .plan_source = "generated",
				    .local = local[i]};
		assert_int_equal(pt_run_begin(rec[i], p, &info), 0);
		assert_int_equal(pt_rec_close(rec[i]), 0);
		pt_exec_destroy(h[i].x);
		pt_trace *t;
		assert_int_equal(pt_trace_open(path[i], &t), 0);
		assert_int_equal(pt_trace_nranks(t), 2);
		pt_query q = pt_query_all();
		q.sources = PT_SRC_OPS | PT_SRC_COMMS;
		int64_t mine = 0;
		for (int r = 0; r < 4; r++)
			if (local[i][r])
				mine += (int64_t)p->rank[r].n;
		assert_int_equal(pt_trace_count(t, &q), mine);
		pt_trace_close(t);
	}
	pt_chan_destroy(f.chan);
	pthread_mutex_destroy(&f.mu);
	tu_path(path[2], sizeof path[2], "run.db");
	const char *in[2] = {path[0], path[1]};
	pt_merge_opts mo = {.overwrite = 1};
	assert_int_equal(pt_merge(in, 2, path[2], &mo), 0);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path[2], &t), 0);
	assert_int_equal(pt_trace_nranks(t), 4);
	pt_query q = pt_query_all();
	q.sources = PT_SRC_OPS | PT_SRC_COMMS;
	assert_int_equal(pt_trace_count(t, &q), (int64_t)(pt_plan_count(p, 0) + pt_plan_count(p, 1)));
	pt_trace_close(t);
	pt_plan_destroy(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_processes_merge),
		cmocka_unit_test(test_data_routing),
		cmocka_unit_test(test_device_hooks),
		cmocka_unit_test(test_failure_stops_every_rank),
		cmocka_unit_test(test_pool_is_the_plans_peak),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
