/*
 * exporters/idle.c — the idle breakdown of docs/metrics.md: each gap of a
 * rank's compute union is put in the plan phase of the op that ends it and
 * split, instant by instant, into waiting on a dependency (a message the op
 * waited for had not been sent yet), waiting on communication (it had been
 * sent, it had not arrived) and other (everything it waited for was there).
 * What an op waits for comes from the plan and the run's communication mode:
 * in flush mode the batches posted since the previous compute op, in overlap
 * mode the receives of its own inputs. "Sent" is when the sender posted the
 * message, "done" when the message completed on this rank. The rank's own
 * rows give both, except for a transfer that may have queued behind the
 * previous one on its link: its sender's row says when it was posted. Memory
 * is one rank's plan, messages and gaps at a time.
 */
#include <stdlib.h>
#include <string.h>

#include "idle.h"
#include "libtrace/grow.h"

/* A receive as recorded: from whom and which, where in the plan, the transfer. */
struct idle_recv {
	int32_t peer, seq; /* as pt_op holds them */
	size_t step;
	int64_t start, end;
	int queued; /* it may have waited for the previous transfer on its link */
};

/* [a, b) idle, ended by plan step `step` (-1: an unplanned event) in `phase`;
 * lead: the gap before the first compute event, whose start is the window's. */
struct idle_gap {
	int64_t a, b;
	int64_t step;
	int phase, lead;
};

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* What the breakdown keeps of a plan op: 16 bytes, not pt_op's 40 (a
 * rank's plan is the largest thing `stats` holds). */
struct idle_op {
	uint8_t kind, phase, payload;
	int16_t chunk, chunk2;
	int32_t mb, mb2;
};

int idle_prepare(pt_trace *t, int rank, int flush, const pt_metrics_feed *feed, struct idle_rank *ir)
{
	/* the buffers stay from rank to rank: freed and allocated again, these
	 * large blocks left the heap fragmented (20 MB of free memory in the
	 * 10M-event trace's peak) */
	ir->have = 0;
	ir->rank = rank;
	ir->flush = flush;
	ir->n = ir->nrv = ir->ngap = 0;
	ir->err = 0;
	pt_op buf[1024];
	size_t got;
	int64_t step = 0;
	int err;
	/* read in blocks: steps are 0..n-1 (pt_trace_plan's contract), so
	 * ops[i] is step i */
	while (!(err = pt_trace_plan_read(t, rank, &step, buf, 1024, &got)) && got) {
		if (feed && feed->plan)
			feed->plan(feed->arg, rank, buf, got);
		if ((err = pt_grow(&ir->ops, &ir->capops, ir->n + got, sizeof *ir->ops)))
			break;
		for (size_t i = 0; i < got; i++) {
			const pt_op *o = &buf[i];
			ir->ops[ir->n++] =
			    (struct idle_op){o->kind, o->phase, o->payload, o->chunk, o->chunk2, o->mb, o->mb2};
		}
	}
	if (err || !ir->n)
		return err;
	if ((err = pt_grow(&ir->sent, &ir->capsent, ir->n, sizeof *ir->sent)) ||
	    (err = pt_grow(&ir->done, &ir->capdone, ir->n, sizeof *ir->done)))
		return err;
	for (size_t i = 0; i < ir->n; i++)
		ir->sent[i] = ir->done[i] = -1;
	ir->have = 1;
	ir->last_phase = PT_WARMUP;
	return 0;
}

void idle_release(struct idle_rank *ir)
{
	free(ir->ops);
	free(ir->sent);
	free(ir->done);
	free(ir->rv);
	free(ir->gap);
	free(ir->cv);
	free(ir->seq);
	free(ir->posted);
	memset(ir, 0, sizeof *ir);
}

static int planned(const struct idle_rank *ir, const pt_event *ev)
{
	return ev->step >= 0 && (size_t)ev->step < ir->n && ir->ops[ev->step].kind == ev->op.kind;
}

void idle_message(struct idle_rank *ir, const pt_event *ev)
{
	if (!ir->have || !planned(ir, ev))
		return;
	size_t i = (size_t)ev->step;
	if (ev->op.kind == PT_OP_SEND) {
		ir->sent[i] = ev->posted_ns;
		ir->done[i] = ev->end_ns;
		return;
	}
	ir->sent[i] = ev->start_ns; /* unless it queued: see idle_end_rank */
	ir->done[i] = max64(ev->posted_ns, ev->end_ns);
	if (!ir->err && !(ir->err = pt_grow(&ir->rv, &ir->caprv, ir->nrv + 1, sizeof *ir->rv)))
		ir->rv[ir->nrv++] = (struct idle_recv){ev->op.peer, ev->op.seq, i, ev->start_ns, ev->end_ns, 0};
}

static int phase_of(const struct idle_rank *ir, int64_t step)
{
	int ph = step >= 0 ? ir->ops[step].phase : ir->last_phase;
	return ph <= PT_COOLDOWN ? ph : PT_STEADY;
}

void idle_compute(struct idle_rank *ir, const pt_event *ev, int gap, int64_t a, int first)
{
	if (!ir->have)
		return;
	int64_t step = planned(ir, ev) && pt_kind_is_compute(ev->op.kind) ? ev->step : -1;
	if ((gap || first) && !ir->err &&
	    !(ir->err = pt_grow(&ir->gap, &ir->capgap, ir->ngap + 1, sizeof *ir->gap)))
		ir->gap[ir->ngap++] = (struct idle_gap){a, ev->start_ns, step, phase_of(ir, step), first};
	if (step >= 0)
		ir->last_phase = phase_of(ir, step);
}

static int cmp_recv(const void *a, const void *b)
{
	const struct idle_recv *x = a, *y = b;
	if (x->peer != y->peer)
		return x->peer < y->peer ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* A transfer that began while the previous one on its link (the previous
 * receive from that sender) was under way may have waited for the link:
 * only its sender knows when it was posted. Ask the reader for those
 * senders' posted times (three columns of their SEND rows, not a cursor
 * over their messages: that was a third of `stats --no-sim`). */
static int sender_times(pt_trace *t, struct idle_rank *ir)
{
	struct idle_recv *rv = ir->rv;
	size_t n = ir->nrv;
	if (!n)
		return 0; /* no receives (rv may be NULL): qsort must not see it */
	qsort(rv, n, sizeof *rv, cmp_recv);
	int err = pt_grow(&ir->seq, &ir->capseq, n, sizeof *ir->seq);
	if (!err)
		err = pt_grow(&ir->posted, &ir->capposted, n, sizeof *ir->posted);
	int64_t *seq = ir->seq, *posted = ir->posted;
	for (size_t lo = 0, hi; !err && lo < n; lo = hi) {
		int any = 0;
		for (hi = lo; hi < n && rv[hi].peer == rv[lo].peer; hi++) {
			const struct idle_recv *p = hi > lo ? &rv[hi - 1] : NULL;
			rv[hi].queued = p && (int64_t)p->seq + 1 == rv[hi].seq && p->start < rv[hi].start &&
					rv[hi].start <= p->end;
			any |= rv[hi].queued;
		}
		if (!any || rv[lo].peer < 0)
			continue;
		/* the queued ones' seqs, ascending, and their starts as the
		 * fallback when the sender's row is not in the trace */
		size_t nq = 0;
		for (size_t i = lo; i < hi; i++)
			if (rv[i].queued && (!nq || seq[nq - 1] != rv[i].seq)) {
				seq[nq] = rv[i].seq;
				posted[nq++] = ir->sent[rv[i].step];
			}
		if ((err = pt_trace_send_posted(t, (int)rv[lo].peer, ir->rank, seq, nq, posted)))
			break;
		for (size_t i = lo, k = 0; i < hi; i++) {
			while (k < nq && seq[k] < rv[i].seq)
				k++;
			if (rv[i].queued && k < nq && seq[k] == rv[i].seq)
				ir->sent[rv[i].step] = posted[k];
		}
	}
	return err;
}

/* What a plan receive carries, as one sortable key, with its step. */
struct carry {
	int64_t key;
	size_t step;
};

static int64_t carry_key(int payload, int chunk, int mb)
{
	return ((int64_t)payload << 48) | ((int64_t)(uint16_t)chunk << 32) | (uint32_t)mb;
}

static int cmp_carry(const void *a, const void *b)
{
	const struct carry *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->step < y->step ? -1 : x->step > y->step;
}

/* Overlap mode: the latest receive of `key` before step x, or -1. */
static int64_t input_of(const struct carry *cv, size_t n, int64_t key, size_t x)
{
	size_t lo = 0, hi = n;
	struct carry want = {key, x};
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (cmp_carry(&cv[mid], &want) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && cv[lo - 1].key == key ? (int64_t)cv[lo - 1].step : -1;
}

/* Replace each compute step's sent/done by its gate's: the latest sent and
 * done among the messages it waited for (message steps keep their own; a
 * gate reads only message steps, so in place is safe). */
static int gates(struct idle_rank *ir)
{
	const struct idle_op *ops = ir->ops;
	if (pt_grow(&ir->cv, &ir->capcv, ir->n, sizeof *ir->cv))
		return PT_ENOMEM;
	struct carry *cv = ir->cv;
	size_t ncv = 0;
	for (size_t i = 0; i < ir->n; i++)
		if (ops[i].kind == PT_OP_RECV)
			cv[ncv++] = (struct carry){carry_key(ops[i].payload, ops[i].chunk, ops[i].mb), i};
	qsort(cv, ncv, sizeof *cv, cmp_carry);
	int64_t bs = -1, bd = -1; /* flush: the batches since the last compute op */
	for (size_t i = 0; i < ir->n; i++) {
		const struct idle_op *o = &ops[i];
		if (pt_kind_is_comm(o->kind)) {
			if (ir->done[i] >= 0) {
				bs = max64(bs, ir->sent[i]);
				bd = max64(bd, ir->done[i]);
			}
			continue;
		}
		int64_t gs = bs, gd = bd;
		if (!ir->flush) {
			int64_t want[2];
			int nw = 0;
			if (o->kind == PT_OP_F || o->kind == PT_OP_FB)
				want[nw++] = carry_key(PT_ACT, o->chunk, o->mb);
			if (o->kind == PT_OP_B || o->kind == PT_OP_I)
				want[nw++] = carry_key(PT_GRAD, o->chunk, o->mb);
			if (o->kind == PT_OP_FB)
				want[nw++] = carry_key(PT_GRAD, o->chunk2, o->mb2);
			gs = gd = -1;
			for (int k = 0; k < nw; k++) {
				int64_t r = input_of(cv, ncv, want[k], i);
				if (r >= 0 && ir->done[r] >= 0) { /* unrecorded: says nothing */
					gs = max64(gs, ir->sent[r]);
					gd = max64(gd, ir->done[r]);
				}
			}
		}
		ir->sent[i] = gs;
		ir->done[i] = gd;
		bs = bd = -1;
	}
	return 0;
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

int idle_end_rank(pt_trace *t, struct idle_rank *ir, pt_rank_metrics *m)
{
	int err = ir->err;
	if (!ir->have || err)
		goto out;
	if ((err = sender_times(t, ir)) || (err = gates(ir)))
		goto out;
	for (size_t i = 0; i < ir->ngap; i++) {
		const struct idle_gap *g = &ir->gap[i];
		int64_t sent = g->step >= 0 ? ir->sent[g->step] : -1, done = g->step >= 0 ? ir->done[g->step] : -1;
		if (!g->lead) {
			attribute(m, g->a, g->b, g->phase, sent, done);
			continue;
		}
		m->has_idle = 1;
		m->lead_phase_ = g->phase;
		m->lead_sent_ = sent;
		m->lead_done_ = done;
	}
out:
	ir->have = 0;
	return err;
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
