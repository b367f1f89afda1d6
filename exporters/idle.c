/*
 * exporters/idle.c — the idle breakdown of docs/metrics.md: each gap of a
 * rank's compute union is put in the plan phase of the op that ends it and
 * split, instant by instant, into waiting on a dependency (a message the op
 * waited for had not been sent yet), waiting on communication (it had been
 * sent, it had not arrived) and other (everything it waited for was there).
 * What an op waits for comes from the plan and the run's communication mode:
 * in flush mode the batches posted since the previous compute op, in overlap
 * mode the receives of its own inputs. "Sent" is when the sender posted the
 * message (read from the sender's row), "done" when the message completed on
 * this rank. Memory is one rank's plan and messages at a time.
 */
#include <stdlib.h>
#include <string.h>

#include "idle.h"

/* A receive of this rank: by sender and sequence (to find the sender's row),
 * or by what it carries (to find the op that consumes it). */
struct recv {
	int64_t k1, k2;
	size_t step;
};

static int cmp_recv(const void *a, const void *b)
{
	const struct recv *x = a, *y = b;
	if (x->k1 != y->k1)
		return x->k1 < y->k1 ? -1 : 1;
	if (x->k2 != y->k2)
		return x->k2 < y->k2 ? -1 : 1;
	return x->step < y->step ? -1 : x->step > y->step;
}

/* The same, on (k1, k2) only. */
static int cmp_recv_key(const void *a, const void *b)
{
	const struct recv *x = a, *y = b;
	if (x->k1 != y->k1)
		return x->k1 < y->k1 ? -1 : 1;
	return x->k2 < y->k2 ? -1 : x->k2 > y->k2;
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Read the rank's messages into sent/done per step; receives are first given
 * the transfer's start as "sent", then the sender's posting time where the
 * sender's row is in the trace. */
static int load_messages(pt_trace *t, int rank, struct idle_rank *ir)
{
	struct recv *rv = NULL;
	size_t nrv = 0, cap = 0;
	pt_query q = pt_query_all();
	q.sources = PT_SRC_COMMS;
	q.rank = rank;
	pt_cursor *c;
	int err = pt_cursor_open(t, &q, &c), got;
	if (err)
		return err;
	pt_event ev;
	while ((got = pt_cursor_next(c, &ev)) == 1) {
		if (ev.step < 0 || (size_t)ev.step >= ir->n)
			continue;
		size_t i = (size_t)ev.step;
		if (ev.op.kind == PT_OP_SEND) {
			ir->sent[i] = ev.posted_ns;
			ir->done[i] = ev.end_ns;
			continue;
		}
		ir->sent[i] = ev.start_ns;
		ir->done[i] = max64(ev.posted_ns, ev.end_ns);
		if (nrv == cap) {
			cap = cap ? 2 * cap : 64;
			struct recv *v = realloc(rv, cap * sizeof *v);
			if (!v) {
				err = PT_ENOMEM;
				break;
			}
			rv = v;
		}
		rv[nrv++] = (struct recv){ev.op.peer, ev.op.seq, i};
	}
	if (got < 0)
		err = got;
	pt_cursor_close(c);
	if (!err && nrv)
		qsort(rv, nrv, sizeof *rv, cmp_recv);
	/* each sender's rows once: its SENDs to this rank, matched by sequence */
	for (size_t lo = 0, hi; !err && lo < nrv; lo = hi) {
		for (hi = lo; hi < nrv && rv[hi].k1 == rv[lo].k1; hi++)
			;
		q.rank = (int)rv[lo].k1;
		q.kinds = 1u << PT_OP_SEND;
		if (q.rank < 0 || (err = pt_cursor_open(t, &q, &c)))
			continue;
		while ((got = pt_cursor_next(c, &ev)) == 1) {
			if (ev.op.peer != rank)
				continue;
			struct recv key = {rv[lo].k1, ev.op.seq, 0};
			struct recv *m = bsearch(&key, rv + lo, hi - lo, sizeof *rv, cmp_recv_key);
			if (m)
				ir->sent[m->step] = ev.posted_ns;
		}
		if (got < 0)
			err = got;
		pt_cursor_close(c);
	}
	free(rv);
	return err;
}

/* Overlap mode: the gate of compute step x is the receives of its inputs,
 * each the latest receive of that (payload, chunk, microbatch) before x. */
static void gate_inputs(const pt_op *ops, size_t x, const struct recv *rv, size_t nrv, int64_t *sent,
			int64_t *done, const struct idle_rank *ir)
{
	const pt_op *o = &ops[x];
	struct recv want[2];
	int nw = 0;
	if (o->kind == PT_OP_F || o->kind == PT_OP_FB)
		want[nw++] = (struct recv){(int64_t)PT_ACT << 16 | (uint16_t)o->chunk, o->mb, x};
	if (o->kind == PT_OP_B || o->kind == PT_OP_I)
		want[nw++] = (struct recv){(int64_t)PT_GRAD << 16 | (uint16_t)o->chunk, o->mb, x};
	if (o->kind == PT_OP_FB)
		want[nw++] = (struct recv){(int64_t)PT_GRAD << 16 | (uint16_t)o->chunk2, o->mb2, x};
	for (int k = 0; k < nw; k++) {
		/* the first entry after (key, x), then one back */
		size_t lo = 0, hi = nrv;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (cmp_recv(&rv[mid], &want[k]) <= 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == 0 || cmp_recv_key(&rv[lo - 1], &want[k]) != 0)
			continue;
		size_t r = rv[lo - 1].step;
		if (ir->done[r] < 0)
			continue; /* not recorded: says nothing */
		*sent = max64(*sent, ir->sent[r]);
		*done = max64(*done, ir->done[r]);
	}
}

int idle_prepare(pt_trace *t, int rank, int flush, struct idle_rank *ir)
{
	memset(ir, 0, sizeof *ir);
	pt_op *ops = NULL;
	struct recv *rv = NULL;
	int err = pt_trace_plan(t, rank, &ops, &ir->n);
	if (err || !ir->n)
		goto out;
	ir->phase = malloc(ir->n);
	ir->sent = malloc(ir->n * sizeof *ir->sent);
	ir->done = malloc(ir->n * sizeof *ir->done);
	rv = malloc(ir->n * sizeof *rv);
	if (!ir->phase || !ir->sent || !ir->done || !rv) {
		err = PT_ENOMEM;
		goto out;
	}
	size_t nrv = 0;
	for (size_t i = 0; i < ir->n; i++) {
		ir->phase[i] = ops[i].phase <= PT_COOLDOWN ? ops[i].phase : PT_STEADY;
		ir->sent[i] = ir->done[i] = -1;
		if (ops[i].kind == PT_OP_RECV)
			rv[nrv++] = (struct recv){(int64_t)ops[i].payload << 16 | (uint16_t)ops[i].chunk, ops[i].mb, i};
	}
	if ((err = load_messages(t, rank, ir)))
		goto out;
	qsort(rv, nrv, sizeof *rv, cmp_recv);
	/* Replace each compute step's sent/done by its gate's; message steps
	 * keep theirs, which the gates read (a step reads only earlier ones in
	 * flush mode, and only receives in overlap mode, so in place is safe). */
	int64_t bs = -1, bd = -1; /* flush: the batches since the last compute op */
	for (size_t i = 0; i < ir->n; i++) {
		if (pt_kind_is_comm(ops[i].kind)) {
			if (ir->done[i] >= 0) {
				bs = max64(bs, ir->sent[i]);
				bd = max64(bd, ir->done[i]);
			}
			continue;
		}
		int64_t gs = -1, gd = -1;
		if (flush) {
			gs = bs;
			gd = bd;
		} else if (pt_kind_is_compute(ops[i].kind)) {
			gate_inputs(ops, i, rv, nrv, &gs, &gd, ir);
		}
		ir->sent[i] = gs;
		ir->done[i] = gd;
		bs = bd = -1;
	}
	ir->have = 1;
	ir->last_phase = PT_WARMUP;
out:
	free(ops);
	free(rv);
	if (err)
		idle_release(ir);
	return err;
}

void idle_release(struct idle_rank *ir)
{
	free(ir->phase);
	free(ir->sent);
	free(ir->done);
	memset(ir, 0, sizeof *ir);
}

/* The phase and gate of the op an event is; unplanned events (kernels, ops
 * of a trace that does not number its steps) take the phase of the last
 * planned op and no gate. */
static void gate_of(const struct idle_rank *ir, const pt_event *ev, int *phase, int64_t *sent, int64_t *done)
{
	if (pt_kind_is_compute(ev->op.kind) && ev->step >= 0 && (size_t)ev->step < ir->n) {
		*phase = ir->phase[ev->step];
		*sent = ir->sent[ev->step];
		*done = ir->done[ev->step];
		return;
	}
	*phase = ir->last_phase;
	*sent = *done = -1;
}

void idle_seen(struct idle_rank *ir, const pt_event *ev)
{
	if (ir->have && pt_kind_is_compute(ev->op.kind) && ev->step >= 0 && (size_t)ev->step < ir->n)
		ir->last_phase = ir->phase[ev->step];
}

static int64_t clamp(int64_t x, int64_t a, int64_t b) { return x < a ? a : x > b ? b : x; }

/* Add [a, b) in phase, waiting for messages sent by `sent` and done by `done`. */
static void attribute(pt_rank_metrics *m, int64_t a, int64_t b, int phase, int64_t sent, int64_t done)
{
	if (b <= a)
		return;
	int64_t s = clamp(sent, a, b), d = clamp(done, a, b);
	if (d < s)
		d = s;
	m->idle_phase[phase] += b - a;
	m->idle_cause[PT_IDLE_DEP] += s - a;
	m->idle_cause[PT_IDLE_COMM] += d - s;
	m->idle_cause[PT_IDLE_OTHER] += b - d;
}

void idle_gap(struct idle_rank *ir, pt_rank_metrics *m, int64_t a, int64_t b, const pt_event *ev)
{
	if (!ir->have)
		return;
	int phase;
	int64_t sent, done;
	gate_of(ir, ev, &phase, &sent, &done);
	attribute(m, a, b, phase, sent, done);
}

void idle_lead(struct idle_rank *ir, pt_rank_metrics *m, const pt_event *ev)
{
	if (!ir->have)
		return;
	m->has_idle = 1;
	gate_of(ir, ev, &m->lead_phase_, &m->lead_sent_, &m->lead_done_);
}

void idle_finish(pt_rank_metrics *m, int64_t win_start, int64_t win_end)
{
	if (!m->has_idle)
		return;
	attribute(m, win_start, m->first_compute, m->lead_phase_, m->lead_sent_, m->lead_done_);
	/* after its last op a rank has nothing left to do: it waits for the
	 * others, the pipeline's dependencies, in the cool-down */
	attribute(m, m->last_compute, win_end, PT_COOLDOWN, win_end, win_end);
}
