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
#include <sys/mman.h>

#include "runner.h"

struct simr {
	size_t pc;
	int64_t t;	    /* compute stream free at */
	int64_t prev_start; /* start of the last compute op (overlap: receive prefetch) */
	int done, queued;
	int posted_upto;     /* ops before this index are posted */
	int32_t *partner_rank; /* [step] for messages */
	int32_t *partner_op;   /* [step] */
	int32_t *need;	       /* [step * 2 + k]: receives a compute op consumes, -1 */
};

/* A directed link's next free time, kept per sender (ranks talk to few peers). */
struct link {
	int b;
	int64_t free_at;
};

struct links {
	struct link *v;
	int n, cap;
};

struct run {
	const pt_plan *plan;
	const pt_cost *cost;
	int mode;
	int strict;
	pt_sim_step **st;
	struct simr *rs;
	int *queue, qhead, qtail, qcap;
	struct links *links; /* [sender] */
	int64_t span;	     /* the latest end so far: the makespan once done */
};

static void enqueue(struct run *x, int r)
{
	if (x->rs[r].queued || x->rs[r].done)
		return;
	x->rs[r].queued = 1;
	x->queue[x->qtail] = r;
	x->qtail = (x->qtail + 1) % x->qcap;
}

static int64_t *link_free(struct run *x, int a, int b)
{
	struct links *l = &x->links[a];
	for (int i = 0; i < l->n; i++)
		if (l->v[i].b == b)
			return &l->v[i].free_at;
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 4;
		struct link *v = realloc(l->v, (size_t)cap * sizeof *v);
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = (struct link){b, 0};
	return &l->v[l->n++].free_at;
}

/* Time the transfer of send (a, i): it starts once posted (and, if strict,
 * once its receive is posted too) and the link is free. Both ends record it. */
static int transfer(struct run *x, int a, size_t i)
{
	const pt_op *o = &x->plan->rank[a].ops[i];
	int b = x->rs[a].partner_rank[i];
	size_t j = (size_t)x->rs[a].partner_op[i];
	int64_t ready = x->st[a][i].posted;
	if (x->strict && x->st[b][j].posted > ready)
		ready = x->st[b][j].posted;
	int64_t *lf = link_free(x, a, b);
	if (!lf)
		return PT_ENOMEM;
	int64_t start = ready > *lf ? ready : *lf;
	int64_t wire = pt_cost_wire(x->cost, o->bytes);
	*lf = start + wire;
	x->st[a][i].start = start;
	x->st[a][i].end = start + wire + x->cost->latency;
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
	int q = x->rs[r].partner_rank[i];
	if (q < 0)
		return 0; /* unpaired: validate.c names it; the run deadlocks on it */
	size_t j = (size_t)x->rs[r].partner_op[i];
	int send = x->plan->rank[r].ops[i].kind == PT_OP_SEND;
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
	const pt_rank_plan *rp = &x->plan->rank[r];
	pt_sim_step *st = x->st[r];
	while (s->pc < rp->n) {
		const pt_op *o = &rp->ops[s->pc];
		/* A visit runs a few steps and blocks; the ranks take turns, too
		 * many streams for the hardware prefetcher, so nearly every step
		 * missed the cache. Fetch this rank's next steps for its next
		 * visit. */
		if (s->pc + PREFETCH < rp->n) {
			__builtin_prefetch(&rp->ops[s->pc + PREFETCH]);
			__builtin_prefetch(&st[s->pc + PREFETCH], 1);
		}
		if (pt_kind_is_comm(o->kind)) {
			size_t end = s->pc;
			while (end < rp->n && pt_kind_is_comm(rp->ops[end].kind) && rp->ops[end].batch == o->batch)
				end++;
			for (size_t i = (size_t)s->posted_upto > s->pc ? (size_t)s->posted_upto : s->pc; i < end; i++) {
				int64_t at = s->t;
				if (x->mode == PT_COMM_OVERLAP && rp->ops[i].kind == PT_OP_RECV)
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
		for (int k = 0; k < 2; k++) {
			int need = s->need[s->pc * 2 + k];
			if (need < 0)
				continue;
			int64_t d = done_at(x, r, (size_t)need);
			if (d < 0)
				return 0; /* blocked on an input */
			if (d > start)
				start = d;
		}
		st[s->pc].posted = st[s->pc].start = start;
		st[s->pc].end = start + pt_cost_op(x->cost, o->kind);
		s->prev_start = start;
		s->t = st[s->pc].end;
		if (s->t > x->span)
			x->span = s->t;
		s->pc++;
	}
	s->done = 1;
	return 0;
}

/* Receives at one rank from one peer, indexed by seq. */
struct peer_tab {
	int peer;
	size_t *at; /* [seq] -> step, (size_t)-1 when absent */
	int n, cap;
};

static struct peer_tab *peer_of(struct peer_tab **tabs, int *ntabs, int *cap, int peer)
{
	for (int i = 0; i < *ntabs; i++)
		if ((*tabs)[i].peer == peer)
			return &(*tabs)[i];
	if (*ntabs == *cap) {
		int c = *cap ? *cap * 2 : 4;
		struct peer_tab *t = realloc(*tabs, (size_t)c * sizeof *t);
		if (!t)
			return NULL;
		*tabs = t;
		*cap = c;
	}
	struct peer_tab *t = &(*tabs)[(*ntabs)++];
	memset(t, 0, sizeof *t);
	t->peer = peer;
	return t;
}

/* Pair every message with its partner: the k-th SEND from a to b is the k-th
 * RECV at b from a (seq k on both). Unpaired messages keep partner rank -1;
 * validate.c names them, and a run deadlocks on them. */
static int pair_messages(struct run *x)
{
	const pt_plan *p = x->plan;
	int err = 0;
	struct peer_tab **tabs = calloc((size_t)p->ranks, sizeof *tabs);
	int *ntabs = calloc((size_t)p->ranks, sizeof *ntabs), *caps = calloc((size_t)p->ranks, sizeof *caps);
	if (!tabs || !ntabs || !caps) {
		err = PT_ENOMEM;
		goto out;
	}
	for (int b = 0; b < p->ranks && !err; b++) {
		const pt_rank_plan *rp = &p->rank[b];
		for (size_t i = 0; i < rp->n; i++) {
			x->rs[b].partner_rank[i] = -1;
			x->rs[b].partner_op[i] = 0;
			const pt_op *o = &rp->ops[i];
			if (o->kind != PT_OP_RECV || o->seq < 0)
				continue;
			struct peer_tab *t = peer_of(&tabs[b], &ntabs[b], &caps[b], o->peer);
			if (!t) {
				err = PT_ENOMEM;
				break;
			}
			if (o->seq >= t->cap) {
				int c = t->cap ? t->cap : 64;
				while (c <= o->seq)
					c *= 2;
				size_t *at = realloc(t->at, (size_t)c * sizeof *at);
				if (!at) {
					err = PT_ENOMEM;
					break;
				}
				for (int k = t->cap; k < c; k++)
					at[k] = (size_t)-1;
				t->at = at;
				t->cap = c;
			}
			t->at[o->seq] = i;
		}
	}
	for (int a = 0; a < p->ranks && !err; a++) {
		const pt_rank_plan *rp = &p->rank[a];
		for (size_t i = 0; i < rp->n; i++) {
			const pt_op *o = &rp->ops[i];
			if (o->kind != PT_OP_SEND || o->peer < 0 || o->peer >= p->ranks || o->seq < 0)
				continue;
			int b = o->peer;
			struct peer_tab *t = NULL;
			for (int k = 0; k < ntabs[b]; k++)
				if (tabs[b][k].peer == a)
					t = &tabs[b][k];
			if (!t || o->seq >= t->cap || t->at[o->seq] == (size_t)-1)
				continue;
			size_t j = t->at[o->seq];
			x->rs[a].partner_rank[i] = b;
			x->rs[a].partner_op[i] = (int32_t)j;
			x->rs[b].partner_rank[j] = a;
			x->rs[b].partner_op[j] = (int32_t)i;
		}
	}
out:
	for (int r = 0; tabs && r < p->ranks; r++) {
		for (int k = 0; k < ntabs[r]; k++)
			free(tabs[r][k].at);
		free(tabs[r]);
	}
	free(tabs);
	free(ntabs);
	free(caps);
	return err;
}

/* Large, short-lived arrays: mapped directly and backed by huge pages where
 * the kernel allows, since faulting in tens of MB page by page costs more
 * than the simulation itself on some virtual machines. */
static void *big_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (size >= (2u << 20))
		madvise(p, size, MADV_HUGEPAGE);
#endif
	return p;
}

void pt_sim_destroy(pt_sim *sim)
{
	if (!sim)
		return;
	if (sim->block_)
		munmap(sim->block_, sim->block_size_);
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
			int n0 = s->need[s->pc * 2], n1 = s->need[s->pc * 2 + 1];
			w = (size_t)(n0 >= 0 && done_at(x, r, (size_t)n0) < 0 ? n0 : n1);
		}
		pt_op_name(o, PT_NAME_SPEC, name, sizeof name);
		pt_op_name(&rp->ops[w], PT_NAME_SPEC, pname, sizeof pname);
		int q = s->partner_rank[w];
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
	int err = 0;
	pt_sim *sim = calloc(1, sizeof *sim);
	x.rs = calloc((size_t)P, sizeof *x.rs);
	x.qcap = P + 1;
	x.queue = malloc((size_t)x.qcap * sizeof *x.queue);
	x.links = calloc((size_t)P, sizeof *x.links);
	if (!sim || !x.rs || !x.queue || !x.links) {
		err = PT_ENOMEM;
		goto out;
	}
	sim->plan = plan;
	sim->step = calloc((size_t)P, sizeof *sim->step);
	if (!sim->step) {
		err = PT_ENOMEM;
		goto out;
	}
	x.st = sim->step;
	/* one block: steps, then partner ranks, partner steps, inputs */
	size_t total = 0;
	for (int r = 0; r < P; r++)
		total += plan->rank[r].n + 1;
	size_t bytes = total * (sizeof(pt_sim_step) + 4 * sizeof(int32_t));
	sim->block_ = big_alloc(bytes);
	if (!sim->block_) {
		err = PT_ENOMEM;
		goto out;
	}
	sim->block_size_ = bytes;
	pt_sim_step *steps = sim->block_;
	int32_t *ints = (int32_t *)(steps + total);
	for (int r = 0; r < P; r++) {
		size_t n = plan->rank[r].n;
		sim->step[r] = steps;
		x.rs[r].partner_rank = ints;
		x.rs[r].partner_op = ints + (n + 1);
		x.rs[r].need = ints + 2 * (n + 1);
		steps += n + 1;
		ints += 4 * (n + 1);
		/* every time unknown: -1 in each field, all bytes 0xff */
		memset(sim->step[r], 0xff, n * sizeof(pt_sim_step));
		if ((err = pt_plan_inputs(plan, r, x.rs[r].need)))
			goto out;
	}
	if ((err = pair_messages(&x)))
		goto out;
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
