/*
 * runner/sim.c — the sim backend: a plan executed in virtual time.
 *
 * Each rank walks its plan in order with one compute stream and one
 * communication stream. A message's transfer starts when its send is posted
 * and its directed link is free (transfers on a link keep their posting
 * order, as NCCL's do) and lasts latency + bytes/bandwidth; its receive
 * completes when both the data has arrived and the receive is posted. So a
 * receive waits for its send and a send waits for no one — the rule of
 * torch's _simulate_comms_compute and of the specs' dependency simulators.
 * In flush mode a rank posts each batch before its next compute op and waits
 * for all of it (DualPipe's public semantics); in overlap mode receives are
 * posted one compute op early, a compute op waits only for the receives it
 * consumes, and sends never block compute.
 *
 * With `strict`, a transfer also waits for its receive to be posted (strict
 * rendezvous): spec/dualpipe.md §1.2 says DualPipe never deadlocks even so,
 * and the tests hold it to that.
 *
 * There is no global clock loop: ranks advance as far as their inputs allow
 * and wake the ranks whose messages they post, so the run costs O(ops). The
 * result is fully determined by the plan, the costs and the mode.
 */
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "runner.h"

/* What the walk needs of one step. The ranks take turns a few steps at a
 * time, too many streams for the hardware prefetcher, so each step the walk
 * touches costs a cache miss or more: prepare() gathers these 16 bytes per
 * step in one sequential pass, and the walk reads them instead of the 40-byte
 * op, its batch neighbours and three side arrays. Durations sit in a table
 * (run.dur): most steps share a handful of them, and 16 bytes fit four steps
 * to a cache line. */
struct sstep {
	int32_t a, b; /* compute: the receives its inputs come from, -1 when none;
			 message: the partner's rank, -1 when unpaired, and its step */
	int32_t dur;  /* run.dur[dur]: compute: its duration; SEND: its time on the wire; RECV: 0 */
	uint8_t kind;
	uint8_t last; /* message: the last of its batch */
};

struct simr {
	size_t pc;
	int64_t t;	    /* compute stream free at */
	int64_t prev_start; /* start of the last compute op (overlap: receive prefetch) */
	int done, queued;
	int posted_upto;	/* ops before this index are posted */
	const struct sstep *ss; /* [step] */
	size_t n;		/* steps */
};

struct run {
	const pt_plan *plan;
	const pt_cost *cost;
	int mode;
	int strict;
	pt_sim_step **st;
	struct sstep **ss; /* [rank][step] */
	struct simr *rs;
	int *queue, qhead, qtail, qcap;
	struct pt_links *links; /* [sender] */
	int64_t span;	     /* the latest end so far: the makespan once done */
	int64_t *dur;	     /* [sstep.dur]: [kind] pt_cost_op, then wire times as prepare() meets them */
	int ndur, capdur;
	int64_t wire_bytes; /* the message size of dur[ndur - 1], -1 before the first */
};

static void enqueue(struct run *x, int r)
{
	if (x->rs[r].queued || x->rs[r].done)
		return;
	x->rs[r].queued = 1;
	x->queue[x->qtail] = r;
	x->qtail = (x->qtail + 1) % x->qcap;
}

/* Time the transfer of send (a, i): it starts once posted (and, if strict,
 * once its receive is posted too) and the link is free. Both ends record it. */
static int transfer(struct run *x, int a, size_t i)
{
	const struct sstep *e = &x->ss[a][i];
	int b = e->a;
	size_t j = (size_t)e->b;
	int64_t ready = x->st[a][i].posted;
	if (x->strict && x->st[b][j].posted > ready)
		ready = x->st[b][j].posted;
	if (pt_link_transfer(&x->links[a], b, ready, x->dur[e->dur], x->cost->latency, &x->st[a][i].start,
			     &x->st[a][i].end))
		return PT_ENOMEM;
	if (x->st[a][i].end > x->span)
		x->span = x->st[a][i].end;
	return 0;
}

/* When step i of rank r is complete: a send when its transfer ends, a
 * receive when it is posted and its data has arrived; -1 while unknown. */
static int64_t done_at(const struct run *x, int r, size_t i)
{
	const pt_sim_step *s = &x->st[r][i];
	if (s->end < 0)
		return -1;
	return s->posted > s->end ? s->posted : s->end;
}

/* Post message i of rank r at time t, and time what that makes known. */
static int post(struct run *x, int r, size_t i, int64_t t)
{
	x->st[r][i].posted = t;
	const struct sstep *e = &x->ss[r][i];
	int q = e->a;
	if (q < 0)
		return 0; /* unpaired: validate.c names it; the run deadlocks on it */
	size_t j = (size_t)e->b;
	int send = e->kind == PT_OP_SEND;
	int a = send ? r : q, b = send ? q : r;
	size_t si = send ? i : j, ri = send ? j : i;
	int err = 0;
	if (x->st[a][si].end < 0 && x->st[a][si].posted >= 0 && (!x->strict || x->st[b][ri].posted >= 0))
		err = transfer(x, a, si);
	if (x->st[a][si].end >= 0 && x->st[b][ri].posted >= 0) {
		x->st[b][ri].start = x->st[a][si].start;
		x->st[b][ri].end = x->st[a][si].end;
	}
	/* Wake the partner only when this post can let it go on: a rank waits
	 * only on messages it has posted, so a receiver that has not posted its
	 * receive is not waiting for this send; and a sender waits on no
	 * receive unless strict. Waking it anyway cost a visit per message. */
	if (send ? x->st[b][ri].posted >= 0 : x->strict)
		enqueue(x, q);
	return err;
}

enum { PREFETCH = 16 }; /* steps ahead; 8 and 32 measured slower */

/* Advance rank r as far as it can. */
static int step_rank(struct run *x, int r)
{
	struct simr *s = &x->rs[r];
	const struct sstep *ss = s->ss;
	pt_sim_step *st = x->st[r];
	while (s->pc < s->n) {
		const struct sstep *e = &ss[s->pc];
		/* A visit runs a few steps and blocks; fetch this rank's next
		 * steps for its next visit. */
		if (s->pc + PREFETCH < s->n) {
			__builtin_prefetch(&ss[s->pc + PREFETCH]);
			__builtin_prefetch(&st[s->pc + PREFETCH], 1);
		}
		if (pt_kind_is_comm(e->kind)) {
			size_t end = s->pc;
			while (!ss[end].last)
				end++;
			end++; /* past the batch */
			for (size_t i = (size_t)s->posted_upto > s->pc ? (size_t)s->posted_upto : s->pc; i < end; i++) {
				int64_t at = s->t;
				if (x->mode == PT_COMM_OVERLAP && ss[i].kind == PT_OP_RECV)
					at = s->prev_start;
				int err = post(x, r, i, at);
				if (err)
					return err;
			}
			if ((size_t)s->posted_upto < end)
				s->posted_upto = (int)end;
			if (x->mode == PT_COMM_FLUSH) {
				int64_t done = s->t;
				for (size_t i = s->pc; i < end; i++) {
					int64_t d = done_at(x, r, i);
					if (d < 0)
						return 0; /* blocked: a partner has not posted yet */
					if (d > done)
						done = d;
				}
				s->t = done;
			}
			s->pc = end;
			continue;
		}
		int64_t start = s->t;
		int32_t need[2] = {e->a, e->b};
		for (int k = 0; k < 2; k++) {
			if (need[k] < 0)
				continue;
			int64_t d = done_at(x, r, (size_t)need[k]);
			if (d < 0)
				return 0; /* blocked on an input */
			if (d > start)
				start = d;
		}
		st[s->pc].posted = st[s->pc].start = start;
		st[s->pc].end = start + x->dur[e->dur];
		s->prev_start = start;
		s->t = st[s->pc].end;
		if (s->t > x->span)
			x->span = s->t;
		s->pc++;
	}
	s->done = 1;
	return 0;
}

/* The messages between one pair of ranks in one direction, by seq:
 * the steps of the SEND and of the RECV numbered seq, -1 while unseen. */
struct msg_pair {
	int32_t send, recv;
};

struct pair_tab {
	int peer; /* the sender; the table belongs to the receiver */
	struct msg_pair *pair;
	int cap;
};

struct pairing {
	struct pair_tab **tabs; /* [receiver] */
	int *ntabs, *caps;
};

/* pair_of's slow path: add the table of a -> b, or grow it to hold seq. */
static struct msg_pair *pair_grow(struct pairing *pg, int a, int b, int seq)
{
	struct pair_tab *t = NULL;
	for (int k = 0; k < pg->ntabs[b] && !t; k++)
		if (pg->tabs[b][k].peer == a)
			t = &pg->tabs[b][k];
	if (!t) {
		if (pg->ntabs[b] == pg->caps[b]) {
			int c = pg->caps[b] ? pg->caps[b] * 2 : 4;
			struct pair_tab *v = realloc(pg->tabs[b], (size_t)c * sizeof *v);
			if (!v)
				return NULL;
			pg->tabs[b] = v;
			pg->caps[b] = c;
		}
		t = &pg->tabs[b][pg->ntabs[b]++];
		memset(t, 0, sizeof *t);
		t->peer = a;
	}
	if (seq >= t->cap) {
		int c = t->cap ? t->cap : 64;
		while (c <= seq)
			c *= 2;
		struct msg_pair *v = realloc(t->pair, (size_t)c * sizeof *v);
		if (!v)
			return NULL;
		memset(&v[t->cap], 0xff, (size_t)(c - t->cap) * sizeof *v);
		t->pair = v;
		t->cap = c;
	}
	return &t->pair[seq];
}

/* The entry of message seq from a to b, or NULL (PT_ENOMEM). */
static inline struct msg_pair *pair_of(struct pairing *pg, int a, int b, int seq)
{
	for (struct pair_tab *t = pg->tabs[b], *end = t + pg->ntabs[b]; t < end; t++)
		if (t->peer == a) {
			if (seq < t->cap)
				return &t->pair[seq];
			break;
		}
	return pair_grow(pg, a, b, seq);
}

/* Make send (a, i) and receive (b, j) each other's partner. */
static void link_pair(struct run *x, int a, int32_t i, int b, int32_t j)
{
	x->ss[a][i].a = b;
	x->ss[a][i].b = j;
	x->ss[b][j].a = a;
	x->ss[b][j].b = i;
}

/*
 * One pass over rank r's ops: its steps' times unknown (-1), and its
 * sstep[] filled. A message pairs with the other side's message of the same
 * seq on the same pair of ranks (the k-th SEND from a to b is the k-th RECV
 * at b from a: validate.c checks the numbering); whichever of the two comes
 * second in this pass links them, while the first is likely still in cache,
 * pipeline neighbours being near in rank order. Unpaired messages stay so
 * (partner rank -1); validate.c names them, and a run deadlocks on them.
 */
static int prepare(struct run *x, int r, struct pairing *pg)
{
	const pt_rank_plan *rp = &x->plan->rank[r];
	struct sstep *ss = x->ss[r];
	pt_sim_step *st = x->st[r];
	pt_inputs in;
	int err = 0;
	/* A batch as the walk takes it: consecutive messages of one batch
	 * number; the walk finds its end by the last one's mark. */
	int in_batch = 0;
	int32_t batch = 0;
	pt_inputs_init(&in);
	for (size_t i = 0; i < rp->n; i++) {
		const pt_op *o = &rp->ops[i];
		struct sstep *e = &ss[i];
		int comm = pt_kind_is_comm(o->kind);
		if (in_batch && (!comm || o->batch != batch)) {
			ss[i - 1].last = 1;
			in_batch = 0;
		}
		st[i] = (pt_sim_step){-1, -1, -1};
		e->kind = o->kind;
		e->last = 0;
		if (!comm) {
			int32_t need[2];
			if ((err = pt_inputs_step(&in, rp->ops, i, need)))
				break;
			e->a = need[0];
			e->b = need[1];
			e->dur = pt_kind_is_compute(o->kind) ? o->kind : 0;
			continue;
		}
		if (!in_batch) {
			in_batch = 1;
			batch = o->batch;
		}
		e->a = -1;
		e->b = 0;
		e->dur = 0;
		if (o->kind == PT_OP_SEND) {
			/* every message of a plan has the same size, nearly
			 * always: a new wire time only when the size changes */
			if (o->bytes != x->wire_bytes) {
				if (x->ndur == x->capdur) {
					int cap = x->capdur * 2;
					int64_t *v = realloc(x->dur, (size_t)cap * sizeof *v);
					if (!v) {
						err = PT_ENOMEM;
						break;
					}
					x->dur = v;
					x->capdur = cap;
				}
				x->wire_bytes = o->bytes;
				x->dur[x->ndur++] = pt_cost_wire(x->cost, o->bytes);
			}
			e->dur = x->ndur - 1;
		}
		if (o->kind == PT_OP_RECV) {
			int32_t none[2];
			if ((err = pt_inputs_step(&in, rp->ops, i, none))) /* opens it */
				break;
		}
		if (o->seq < 0)
			continue;
		if (o->kind == PT_OP_RECV) {
			struct msg_pair *m = pair_of(pg, o->peer, r, o->seq);
			if (!m) {
				err = PT_ENOMEM;
				break;
			}
			m->recv = (int32_t)i;
			if (m->send >= 0)
				link_pair(x, o->peer, m->send, r, m->recv);
		} else if (o->peer >= 0 && o->peer < x->plan->ranks) {
			struct msg_pair *m = pair_of(pg, r, o->peer, o->seq);
			if (!m) {
				err = PT_ENOMEM;
				break;
			}
			m->send = (int32_t)i;
			if (m->recv >= 0)
				link_pair(x, r, m->send, o->peer, m->recv);
		}
	}
	if (in_batch && !err)
		ss[rp->n - 1].last = 1;
	pt_inputs_fini(&in);
	return err;
}

void pt_sim_destroy(pt_sim *sim)
{
	if (!sim)
		return;
	pt_big_free(sim->block_, sim->block_size_);
	free(sim->step);
	free(sim);
}

static void report_deadlock(struct run *x)
{
	const pt_plan *p = x->plan;
	char name[64], pname[64];
	int shown = 0, stuck = 0;
	for (int r = 0; r < p->ranks; r++)
		stuck += !x->rs[r].done;
	pt_log(PT_LOG_ERROR, "plan deadlocks: %d of %d ranks cannot finish", stuck, p->ranks);
	for (int r = 0; r < p->ranks && shown < 8; r++) {
		struct simr *s = &x->rs[r];
		if (s->done)
			continue;
		shown++;
		const pt_rank_plan *rp = &p->rank[r];
		const pt_op *o = &rp->ops[s->pc];
		/* the first message this rank waits for */
		size_t w = s->pc;
		if (pt_kind_is_comm(o->kind)) {
			while (w < rp->n && pt_kind_is_comm(rp->ops[w].kind) && done_at(x, r, w) >= 0)
				w++;
		} else {
			int n0 = s->ss[s->pc].a, n1 = s->ss[s->pc].b;
			w = (size_t)(n0 >= 0 && done_at(x, r, (size_t)n0) < 0 ? n0 : n1);
		}
		pt_op_name(o, PT_NAME_SPEC, name, sizeof name);
		pt_op_name(&rp->ops[w], PT_NAME_SPEC, pname, sizeof pname);
		int q = s->ss[w].a;
		if (q < 0) {
			pt_log(PT_LOG_ERROR, "  r%d at step %zu (%s): %s has no matching message on rank %d", r,
			       s->pc, name, pname, rp->ops[w].peer);
		} else {
			char qname[64];
			const pt_rank_plan *qp = &p->rank[q];
			pt_op_name(&qp->ops[x->rs[q].pc < qp->n ? x->rs[q].pc : qp->n - 1], PT_NAME_SPEC, qname,
				   sizeof qname);
			pt_log(PT_LOG_ERROR,
			       "  r%d at step %zu (%s) waits for %s, which rank %d never gets to: it is stuck at "
			       "step %zu (%s)",
			       r, s->pc, name, pname, q, x->rs[q].pc, qname);
		}
	}
}

int pt_sim_run(const pt_plan *plan, const pt_cost *cost, int mode, pt_sim **out)
{
	return pt_sim_run_ex(plan, cost, mode, 0, out);
}

int pt_sim_run_ex(const pt_plan *plan, const pt_cost *cost, int mode, int strict, pt_sim **out)
{
	*out = NULL;
	const int P = plan->ranks;
	struct run x;
	memset(&x, 0, sizeof x);
	x.plan = plan;
	x.cost = cost;
	x.mode = mode;
	x.strict = strict;
	struct pairing pg = {0};
	void *ss_block = NULL;
	size_t ss_size = 0;
	int err = 0;
	pt_sim *sim = calloc(1, sizeof *sim);
	x.rs = calloc((size_t)P, sizeof *x.rs);
	x.qcap = P + 1;
	x.queue = malloc((size_t)x.qcap * sizeof *x.queue);
	x.links = calloc((size_t)P, sizeof *x.links);
	x.capdur = PT_OP_FB + 9;
	x.dur = malloc((size_t)x.capdur * sizeof *x.dur);
	if (!sim || !x.rs || !x.queue || !x.links || !x.dur) {
		err = PT_ENOMEM;
		goto out;
	}
	for (x.ndur = 0; x.ndur <= PT_OP_FB; x.ndur++)
		x.dur[x.ndur] = pt_cost_op(cost, x.ndur);
	x.wire_bytes = -1;
	sim->plan = plan;
	sim->step = calloc((size_t)P, sizeof *sim->step);
	if (!sim->step) {
		err = PT_ENOMEM;
		goto out;
	}
	x.st = sim->step;
	/* one block for the steps (the result), one for the walk's sstep[]
	 * (freed at the end of the run) */
	size_t total = 0;
	for (int r = 0; r < P; r++)
		total += plan->rank[r].n + 1;
	sim->block_size_ = total * sizeof(pt_sim_step);
	sim->block_ = pt_big_alloc(sim->block_size_);
	ss_size = total * sizeof(struct sstep);
	ss_block = pt_big_alloc(ss_size);
	x.ss = calloc((size_t)P, sizeof *x.ss);
	pg.tabs = calloc((size_t)P, sizeof *pg.tabs);
	pg.ntabs = calloc((size_t)P, sizeof *pg.ntabs);
	pg.caps = calloc((size_t)P, sizeof *pg.caps);
	if (!sim->block_ || !ss_block || !x.ss || !pg.tabs || !pg.ntabs || !pg.caps) {
		err = PT_ENOMEM;
		goto out;
	}
	pt_sim_step *steps = sim->block_;
	struct sstep *ss = ss_block;
	for (int r = 0; r < P; r++) {
		size_t n = plan->rank[r].n;
		sim->step[r] = steps;
		x.ss[r] = ss;
		x.rs[r].ss = ss;
		x.rs[r].n = n;
		steps += n + 1;
		ss += n + 1;
		if ((err = prepare(&x, r, &pg)))
			goto out;
	}
	for (int r = 0; r < P; r++)
		enqueue(&x, r);
	while (x.qhead != x.qtail) {
		int r = x.queue[x.qhead];
		x.qhead = (x.qhead + 1) % x.qcap;
		x.rs[r].queued = 0;
		if ((err = step_rank(&x, r)))
			goto out;
	}
	for (int r = 0; r < P; r++) {
		if (!x.rs[r].done) {
			report_deadlock(&x);
			err = PT_EPLAN;
			goto out;
		}
	}
	/* every end was set by a compute op or a transfer, which kept the max */
	sim->makespan = x.span;
	*out = sim;
	sim = NULL;
out:
	for (int r = 0; pg.tabs && r < P; r++) {
		for (int k = 0; k < pg.ntabs[r]; k++)
			free(pg.tabs[r][k].pair);
		free(pg.tabs[r]);
	}
	free(pg.tabs);
	free(pg.ntabs);
	free(pg.caps);
	pt_big_free(ss_block, ss_size);
	free(x.ss);
	free(x.dur);
	free(x.rs);
	free(x.queue);
	for (int r = 0; x.links && r < P; r++)
		free(x.links[r].v);
	free(x.links);
	pt_sim_destroy(sim);
	return err;
}

int pt_sim_emit(const pt_sim *sim, pt_rec *rec)
{
	const pt_plan *p = sim->plan;
	pt_tbuf *b = pt_rec_thread(rec);
	if (!b)
		return PT_ENOMEM;
	for (int r = 0; r < p->ranks; r++) {
		int err = pt_rec_stream(rec, r, PT_STREAM_MAIN, PT_STREAM_COMPUTE, "compute");
		if (!err)
			err = pt_rec_stream(rec, r, PT_STREAM_P2P, PT_STREAM_COMM, "p2p");
		if (err)
			return err;
		const pt_rank_plan *rp = &p->rank[r];
		for (size_t i = 0; i < rp->n; i++) {
			pt_event ev;
			memset(&ev, 0, sizeof ev);
			ev.rank = r;
			ev.step = (int32_t)i;
			ev.op = rp->ops[i];
			ev.stream = pt_kind_is_comm(ev.op.kind) ? PT_STREAM_P2P : PT_STREAM_MAIN;
			ev.posted_ns = sim->step[r][i].posted;
			ev.start_ns = sim->step[r][i].start;
			ev.end_ns = sim->step[r][i].end;
			pt_emit(b, &ev);
		}
	}
	return 0;
}
