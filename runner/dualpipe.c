/*
 * runner/dualpipe.c — DualPipe and DualPipeV, op for op and message for
 * message. Each rank runs the 8-step program of spec/dualpipe.md §1.3 built
 * from the communication primitives of §1.2 (RECV_F, SEND_F, RECV_B, SEND_B
 * appended to a pending list; FLUSH turning the list into one batch before
 * every compute op), so the batches come out exactly as in its Appendix C.
 * DualPipeV is the same program with H→P, h→r, M→N, mid→(r = P−1) and no
 * direction swap (§2). Validation is validate.c's job.
 */
#include <stdlib.h>
#include <string.h>

#include "runner.h"

#define MAXPEND 16

struct gen {
	pt_plan *plan;
	int r, P, v;	/* v: DualPipeV */
	int H, h, s, M; /* §1.1 */
	int mid;
	int64_t bytes;
	int tag; /* current step S1..S8 */
	/* per direction: next microbatch of each kind of event */
	int fwd[2], bwd[2], recv_f[2], send_f[2], recv_b[2], send_b[2];
	/* deferred weight-gradient groups (FIFO of (direction, mb)) */
	int *wq_d, *wq_mb;
	int wq_head, wq_tail;
	struct pend {
		uint8_t kind, payload;
		int16_t d;
		int32_t mb, peer;
	} pending[MAXPEND]; /* posted at the next FLUSH, as ops */
	int npending;
	int nbatch;
	int nsent[2], nrecv[2]; /* messages so far to / from the lower and the higher neighbour */
	int err;
};

/* Direction of local phase p. */
static int dir(const struct gen *g, int p) { return g->v ? p : (p ^ g->s); }

static int first(const struct gen *g, int d) { return d == 0 ? g->r == 0 : g->r == g->P - 1; }
static int last(const struct gen *g, int d) { return d == 0 ? g->r == g->P - 1 : g->r == 0; }
/* The neighbour that feeds direction d's forward input, and the other one. */
static int up(const struct gen *g, int d) { return d == 0 ? g->r - 1 : g->r + 1; }
static int down(const struct gen *g, int d) { return d == 0 ? g->r + 1 : g->r - 1; }

static int phase_of(int tag) { return tag <= 3 ? PT_WARMUP : tag <= 5 ? PT_STEADY : PT_COOLDOWN; }

/* An op of the current step, every optional field cleared (pt_op_make's
 * values). */
static inline pt_op op_init(const struct gen *g, int kind, int chunk, int mb)
{
	return (pt_op){.kind = (uint8_t)kind,
		       .phase = (uint8_t)phase_of(g->tag),
		       .tag = (uint8_t)g->tag,
		       .chunk = (int16_t)chunk,
		       .chunk2 = -1,
		       .mb = mb,
		       .mb2 = -1,
		       .peer = -1,
		       .seq = -1,
		       .batch = -1};
}

/* Append op_init's op to the rank and return it, to be completed in place;
 * NULL once out of memory. The generator makes one op per plan step, and
 * making each in a temporary and copying it (40 bytes, once or twice) was a
 * good part of planning. */
static pt_op *next_op(struct gen *g, int kind, int chunk, int mb)
{
	pt_rank_plan *rp = &g->plan->rank[g->r];
	if (g->err)
		return NULL;
	if (rp->n == rp->cap) { /* rare: pt_plan_push grows the list */
		pt_op o = op_init(g, kind, chunk, mb);
		return (g->err = pt_plan_push(g->plan, g->r, &o)) ? NULL : &rp->ops[rp->n - 1];
	}
	pt_op *o = &rp->ops[rp->n++];
	*o = op_init(g, kind, chunk, mb);
	return o;
}

static void pend(struct gen *g, int kind, int payload, int d, int mb, int peer)
{
	if (g->npending == MAXPEND) {
		g->err = PT_EINVAL; /* cannot happen: a batch holds at most 4 messages */
		return;
	}
	g->pending[g->npending++] = (struct pend){(uint8_t)kind, (uint8_t)payload, (int16_t)d, mb, peer};
}

static void RECV_F(struct gen *g, int p)
{
	int d = dir(g, p);
	if (!first(g, d))
		pend(g, PT_OP_RECV, PT_ACT, d, g->recv_f[d]++, up(g, d));
}

static void SEND_F(struct gen *g, int p)
{
	int d = dir(g, p);
	if (!last(g, d))
		pend(g, PT_OP_SEND, PT_ACT, d, g->send_f[d]++, down(g, d));
}

static void RECV_B(struct gen *g, int p)
{
	int d = dir(g, p);
	if (!last(g, d))
		pend(g, PT_OP_RECV, PT_GRAD, d, g->recv_b[d]++, down(g, d));
}

static void SEND_B(struct gen *g, int p)
{
	int d = dir(g, p);
	if (!first(g, d))
		pend(g, PT_OP_SEND, PT_GRAD, d, g->send_b[d]++, up(g, d));
}

static void FLUSH(struct gen *g)
{
	if (!g->npending)
		return;
	for (int i = 0; i < g->npending; i++) {
		const struct pend *m = &g->pending[i];
		pt_op *o = next_op(g, m->kind, m->d, m->mb);
		if (!o)
			return;
		o->payload = m->payload;
		o->peer = m->peer;
		o->bytes = g->bytes;
		o->batch = g->nbatch;
		/* seq: the message's position on its (sender, receiver) pair; this
		 * rank's messages are made in plan order */
		o->seq = m->kind == PT_OP_SEND ? g->nsent[m->peer > g->r]++ : g->nrecv[m->peer > g->r]++;
	}
	g->npending = 0;
	g->plan->rank[g->r].nbatches = ++g->nbatch;
}

static void FWD(struct gen *g, int p, int recv, int send)
{
	int d = dir(g, p);
	if (recv)
		RECV_F(g, p);
	FLUSH(g);
	next_op(g, PT_OP_F, d, g->fwd[d]++);
	if (send)
		SEND_F(g, p);
}

static void BWD(struct gen *g, int p, int zb, int recv, int send)
{
	int d = dir(g, p);
	if (recv)
		RECV_B(g, p);
	FLUSH(g);
	int mb = g->bwd[d]++;
	next_op(g, zb ? PT_OP_I : PT_OP_B, d, mb);
	if (zb) {
		g->wq_d[g->wq_tail] = d;
		g->wq_mb[g->wq_tail++] = mb;
	}
	if (send)
		SEND_B(g, p);
}

static void FB(struct gen *g, int p0, int p1, int recv0)
{
	int d0 = dir(g, p0), d1 = dir(g, p1);
	if (recv0)
		RECV_F(g, p0);
	RECV_B(g, p1);
	FLUSH(g);
	pt_op *o = next_op(g, PT_OP_FB, d0, g->fwd[d0]++);
	int mb1 = g->bwd[d1]++;
	if (o) {
		o->chunk2 = (int16_t)d1;
		o->mb2 = mb1;
	}
	SEND_F(g, p0);
	SEND_B(g, p1);
}

static void WGT(struct gen *g)
{
	FLUSH(g);
	if (g->wq_head == g->wq_tail) {
		g->err = PT_EINVAL; /* the program never pops an empty queue */
		return;
	}
	int d = g->wq_d[g->wq_head], mb = g->wq_mb[g->wq_head];
	g->wq_head++;
	next_op(g, PT_OP_W, d, mb);
}

/* The 8 steps of §1.3 for rank g->r. */
static void program(struct gen *g)
{
	const int H = g->H, h = g->h, M = g->M, mid = g->mid;

	g->tag = 1;
	for (int i = 0; i < 2 * (H - h - 1); i++)
		FWD(g, 0, 1, 1);

	g->tag = 2;
	RECV_F(g, 0);
	for (int i = 0; i <= h; i++) {
		FWD(g, 0, 0, mid);
		RECV_F(g, 0);
		FWD(g, 1, 1, !mid || i < h);
		if (!mid)
			SEND_F(g, 0);
	}

	g->tag = 3;
	for (int i = 0; i < H - h - 1; i++) {
		BWD(g, 1, 1, 1, 1);
		RECV_F(g, 1);
		WGT(g);
		FWD(g, 1, 0, 1);
	}

	g->tag = 4;
	for (int i = 0; i <= M - 2 * H + h; i++) {
		if (i == 0 && mid) {
			/* the middle ranks deliberately do not overlap their first pair */
			FWD(g, 0, 0, 0);
			SEND_F(g, 1);
			BWD(g, 1, 0, 1, 0);
			SEND_F(g, 0);
			SEND_B(g, 1);
		} else {
			FB(g, 0, 1, i != 0);
		}
		FB(g, 1, 0, 1);
	}

	g->tag = 5;
	for (int i = 0; i < H - h - 1; i++) {
		BWD(g, 1, 0, 1, 1);
		FB(g, 1, 0, 1);
	}

	g->tag = 6;
	/* 2(h+1) backwards alternating phase 1, 0: the first h+1 full, the rest I */
	for (int k = 0; k < 2 * (h + 1); k++)
		BWD(g, k % 2 == 0 ? 1 : 0, k >= h + 1, 1, 1);

	g->tag = 7;
	for (int i = 0; i < H - h - 1; i++) {
		WGT(g);
		BWD(g, 0, 1, 1, 1);
	}

	g->tag = 8;
	for (int i = 0; i < h + 1; i++)
		WGT(g);
	FLUSH(g);
}

int pt_gen_dualpipe(const pt_plan_params *pp, pt_plan **out)
{
	const int P = pp->ranks, N = pp->microbatches, v = pp->sched == PT_SCHED_DUALPIPEV;
	*out = NULL;
	if (!v) {
		if (P % 2)
			return pt_logerr(PT_EINVAL, "dualpipe needs an even number of ranks (got --ranks %d)", P);
		if (N % 2 || N < 2 * P)
			return pt_logerr(PT_EINVAL,
					 "dualpipe needs an even number of microbatches, at least 2 x ranks "
					 "(got --microbatches %d with --ranks %d: use an even number >= %d)",
					 N, P, 2 * P);
	} else if (N < 2 * P) {
		return pt_logerr(PT_EINVAL,
				 "dualpipev needs at least 2 x ranks microbatches (got --microbatches %d with "
				 "--ranks %d: use >= %d)",
				 N, P, 2 * P);
	}
	pt_plan *plan;
	int err = pt_plan_alloc(pp->sched, P, 2, v ? 1 : 2, v ? 2 * P : P, &plan);
	if (err)
		return err;
	for (int r = 0; r < P; r++) {
		if (v) {
			pt_plan_place(plan, r, 0, 0, r);
			pt_plan_place(plan, r, 1, 0, 2 * P - 1 - r);
		} else {
			pt_plan_place(plan, r, 0, 0, r);
			pt_plan_place(plan, r, 1, 1, P - 1 - r);
		}
	}
	plan->mbs[0] = v ? N : N / 2;
	plan->mbs[1] = v ? 0 : N / 2;

	/* Each direction: M F and M B, at most 2 messages each, plus W;
	 * DualPipe's middle ranks take 10.3 M steps (P=64, N=1024), so 11 M
	 * spares them a reallocation (pt_plan_push grows a list anyway). */
	size_t *cap = malloc((size_t)P * sizeof *cap);
	if (!cap) {
		pt_plan_destroy(plan);
		return PT_ENOMEM;
	}
	for (int r = 0; r < P; r++)
		cap[r] = (size_t)(v ? N : N / 2) * 11 + 16;
	err = pt_plan_reserve(plan, cap);
	free(cap);

	/* DualPipeV's two chunks share one pipeline: chunk 1 is stage 2P-1-r of
	 * it, but its microbatches are still numbered per leg, 0..N-1. */
	for (int r = 0; r < P && !err; r++) {
		struct gen g;
		memset(&g, 0, sizeof g);
		g.plan = plan;
		g.r = r;
		g.P = P;
		g.v = v;
		g.bytes = pp->bytes;
		if (v) {
			g.H = P;
			g.h = r;
			g.s = 0;
			g.M = N;
			g.mid = r == P - 1;
		} else {
			g.H = P / 2;
			g.h = r < P - 1 - r ? r : P - 1 - r;
			g.s = r >= g.H;
			g.M = N / 2;
			g.mid = g.h == g.H - 1;
		}
		g.wq_d = malloc(sizeof(int) * (size_t)(2 * g.M + 2));
		g.wq_mb = malloc(sizeof(int) * (size_t)(2 * g.M + 2));
		if (!g.wq_d || !g.wq_mb)
			g.err = PT_ENOMEM;
		else
			program(&g);
		if (!g.err && g.wq_head != g.wq_tail)
			g.err = PT_EINVAL;
		free(g.wq_d);
		free(g.wq_mb);
		err = g.err;
		if (err == PT_EINVAL)
			pt_log(PT_LOG_ERROR, "internal error: the DualPipe program is inconsistent on rank %d", r);
	}
	if (err) {
		pt_plan_destroy(plan);
		return err;
	}
	*out = plan;
	return 0;
}
