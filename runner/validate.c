/*
 * runner/validate.c — is a plan sound? Four checks, each naming the op at
 * fault: (1) every (pipeline, stage, microbatch) has exactly one F and one B,
 * or one I and one W; (2) every op's inputs exist earlier on its rank — the
 * previous stage's forward (here or received), the next stage's gradient,
 * the I a W belongs to, the op whose output a SEND carries; (3) between every
 * two ranks the k-th send matches the k-th receive; (4) a rendezvous
 * simulation (sim.c, flush mode) finishes. Before them, the layout they
 * index by is checked (every chunk placed, every stage held once), and each
 * op's kind, chunk, microbatch and peer before it is counted: a plan read
 * back from a trace is data from a file. It reports the first problem only:
 * one clear message beats fifty consequences.
 */
#include <stdlib.h>
#include <string.h>

#include "runner.h"

static const char *opname(const pt_op *o, char *buf)
{
	pt_op_name(o, PT_NAME_SPEC, buf, 64);
	return buf;
}

static int bad(int r, size_t step, const pt_op *o, const char *what)
{
	char n[64];
	return pt_logerr(PT_EPLAN, "invalid plan: rank %d, step %zu (%s): %s", r, step, opname(o, n), what);
}

static int mbs_of(const pt_plan *p, int rank, int chunk)
{
	return p->mbs[pt_plan_chunk(p, rank, chunk)->pipe];
}

/* Chunk c and microbatch mb of op i on rank r exist: 0, or PT_EPLAN
 * (logged). mbs: each chunk of r's microbatch count. */
static inline int check_range(const pt_plan *p, int r, size_t i, const pt_op *o, int c, int mb, const int *mbs)
{
	char msg[160];
	if (c < 0 || c >= p->chunks) {
		snprintf(msg, sizeof msg, "chunk %d does not exist (this plan has %d per rank)", c, p->chunks);
		return bad(r, i, o, msg);
	}
	if (mb < 0 || mb >= mbs[c]) {
		snprintf(msg, sizeof msg, "microbatch %d is out of range (0..%d)", mb, mbs[c] - 1);
		return bad(r, i, o, msg);
	}
	return 0;
}

/* (0) the layout the other checks index by: one or two pipelines with their
 * microbatch counts, every chunk of every rank at a (pipeline, stage) of the
 * plan, and each of those held by exactly one chunk (holder[] agreeing). A
 * plan read from a file can say anything here; the counts below would index
 * by it. */
static int check_layout(const pt_plan *p)
{
	if (p->ranks < 1 || p->chunks < 1 || p->npipes < 1 || p->npipes > 2 || p->nstages < 1)
		return pt_logerr(PT_EPLAN, "invalid plan: %d ranks of %d chunks, %d pipelines of %d stages", p->ranks,
				 p->chunks, p->npipes, p->nstages);
	for (int k = 0; k < 2; k++)
		if (p->mbs[k] < 0 || (k >= p->npipes && p->mbs[k]))
			return pt_logerr(PT_EPLAN, "invalid plan: pipeline %d has %d microbatches", k, p->mbs[k]);
	int held = p->ranks * p->chunks;
	for (int r = 0; r < p->ranks; r++) {
		for (int c = 0; c < p->chunks; c++) {
			const pt_chunk_info *ci = pt_plan_chunk(p, r, c);
			if (ci->pipe < 0 || ci->pipe >= p->npipes || ci->stage < 0 || ci->stage >= p->nstages) {
				if (ci->pipe < 0 && ci->stage < 0)
					return pt_logerr(PT_EPLAN, "invalid plan: rank %d, chunk %d is not placed on any stage",
							 r, c);
				return pt_logerr(PT_EPLAN,
						 "invalid plan: rank %d, chunk %d sits at pipeline %d, stage %d; the plan "
						 "has %d pipeline(s) of %d stages",
						 r, c, ci->pipe, ci->stage, p->npipes, p->nstages);
			}
			int h = p->holder[ci->pipe * p->nstages + ci->stage];
			if (h != r * p->chunks + c) {
				if (h < 0 || h >= held)
					return pt_logerr(PT_EPLAN,
							 "invalid plan: rank %d, chunk %d sits at pipeline %d, stage %d, "
							 "which the plan says nobody holds",
							 r, c, ci->pipe, ci->stage);
				return pt_logerr(PT_EPLAN,
						 "invalid plan: rank %d, chunk %d and rank %d, chunk %d both sit at pipeline "
						 "%d, stage %d",
						 r, c, h / p->chunks, h % p->chunks, ci->pipe, ci->stage);
			}
		}
	}
	/* every chunk holds its own stage, so a stage no chunk holds remains */
	for (int i = 0; i < p->npipes * p->nstages; i++)
		if (p->holder[i] < 0 || p->holder[i] >= held)
			return pt_logerr(PT_EPLAN, "invalid plan: no chunk holds pipeline %d, stage %d", i / p->nstages,
					 i % p->nstages);
	return 0;
}

/* (1) ranges, then exactly-once counts per (pipeline, stage, microbatch):
 * counts_rank on every rank, then counts_finish. */
struct counts {
	int (*cnt)[4]; /* [cell]: F, B, I, W */
	size_t *base;	/* the rank at hand's chunks: the first cell of each */
	int *mbs;	/* and its microbatches */
	int mbmax;
};

static int counts_init(const pt_plan *p, struct counts *x)
{
	x->mbmax = p->mbs[0] > p->mbs[1] ? p->mbs[0] : p->mbs[1];
	size_t cells = (size_t)p->npipes * (size_t)p->nstages * (size_t)(x->mbmax ? x->mbmax : 1);
	x->cnt = calloc(cells, sizeof *x->cnt);
	x->base = malloc((size_t)p->chunks * sizeof *x->base);
	x->mbs = malloc((size_t)p->chunks * sizeof *x->mbs);
	return x->cnt && x->base && x->mbs ? 0 : PT_ENOMEM;
}

static void counts_fini(struct counts *x)
{
	free(x->cnt);
	free(x->base);
	free(x->mbs);
}

static int counts_rank(const pt_plan *p, struct counts *x, int r, const pt_op *ops, size_t n)
{
	char msg[160];
	int err = 0;
	for (int c = 0; c < p->chunks; c++) {
		const pt_chunk_info *ci = pt_plan_chunk(p, r, c);
		x->base[c] = ((size_t)ci->pipe * (size_t)p->nstages + (size_t)ci->stage) * (size_t)x->mbmax;
		x->mbs[c] = mbs_of(p, r, c);
	}
	for (size_t i = 0; i < n && !err; i++) {
		const pt_op *o = &ops[i];
		/* cnt has room for F, B, I and W only */
		if (!pt_kind_is_compute(o->kind) && !pt_kind_is_comm(o->kind)) {
			if (pt_kind_is_activity(o->kind))
				snprintf(msg, sizeof msg,
					 "a %s is activity below the ops, not a plan op (F, B, I, W, FB, SEND, RECV)",
					 pt_kind_name(o->kind));
			else
				snprintf(msg, sizeof msg, "unknown op kind %d", o->kind);
			err = bad(r, i, o, msg);
			break;
		}
		if ((err = check_range(p, r, i, o, o->chunk, o->mb, x->mbs)))
			break;
		if (pt_kind_is_comm(o->kind)) {
			if (o->peer < 0 || o->peer >= p->ranks || o->peer == r) {
				snprintf(msg, sizeof msg, "peer rank %d is not another rank of the plan", o->peer);
				err = bad(r, i, o, msg);
			} else if (o->payload != PT_ACT && o->payload != PT_GRAD) {
				snprintf(msg, sizeof msg, "payload %d is neither an activation nor a gradient",
					 o->payload);
				err = bad(r, i, o, msg);
			}
		} else if (o->kind != PT_OP_FB) {
			x->cnt[x->base[o->chunk] + (size_t)o->mb][o->kind - PT_OP_F]++;
		} else { /* its forward, then its backward */
			x->cnt[x->base[o->chunk] + (size_t)o->mb][0]++;
			if (!(err = check_range(p, r, i, o, o->chunk2, o->mb2, x->mbs)))
				x->cnt[x->base[o->chunk2] + (size_t)o->mb2][1]++;
		}
	}
	return err;
}

static int counts_finish(const pt_plan *p, const struct counts *x)
{
	int err = 0;
	for (int r = 0; r < p->ranks && !err; r++) {
		for (int c = 0; c < p->chunks && !err; c++) {
			const pt_chunk_info *ci = pt_plan_chunk(p, r, c);
			for (int mb = 0; mb < mbs_of(p, r, c) && !err; mb++) {
				size_t cell = ((size_t)ci->pipe * (size_t)p->nstages + (size_t)ci->stage) *
						      (size_t)x->mbmax +
					      (size_t)mb;
				int f = x->cnt[cell][0], b = x->cnt[cell][1], in = x->cnt[cell][2], w = x->cnt[cell][3];
				const char *what = NULL;
				if (f != 1)
					what = f ? "more than one forward" : "no forward";
				else if (!((b == 1 && in == 0 && w == 0) || (b == 0 && in == 1 && w == 1)))
					what = b + in == 0	     ? "no backward (B or I)"
					       : b + in > 1	     ? "more than one backward"
					       : in == 1 && w == 0 ? "an I without its W"
					       : in == 1	     ? "more than one W"
					       : w > 0		     ? "a W after a full backward B"
								     : "an inconsistent backward";
				if (what) {
					err = pt_logerr(PT_EPLAN,
							"invalid plan: rank %d, chunk %d (stage %d), microbatch %d: %s "
							"(F %d, B %d, I %d, W %d)",
							r, c, ci->stage, mb, what, f, b, in, w);
				}
			}
		}
	}
	return err;
}

/* Where a chunk's input comes from and its gradient goes, seen from its
 * rank: the chunk there when the neighbouring stage is on the same rank,
 * else the rank holding it; -1 for none (the pipeline's ends). */
struct nbr {
	int prev_here, prev_rank, next_here, next_rank;
};

enum { F_DONE = 1, B_DONE = 2, I_DONE = 4, GOT_ACT = 8, GOT_GRAD = 16 };

/* One rank's state for check_inputs: s[chunk * mbmax + mb], F_DONE etc. */
struct rstate {
	unsigned char *s;
	size_t mbmax;
	const struct nbr *nb; /* [chunk] */
	int r;
};

/* The forward of (c, mb) as op i: its input is here, or was received. */
static inline int input_f(const struct rstate *x, size_t i, const pt_op *o, int c, int mb)
{
	const struct nbr *n = &x->nb[c];
	unsigned char *cell = &x->s[(size_t)c * x->mbmax + (size_t)mb];
	char msg[160];
	int err = 0;
	if (n->prev_here >= 0 && !(x->s[(size_t)n->prev_here * x->mbmax + (size_t)mb] & F_DONE)) {
		snprintf(msg, sizeof msg, "its input, the forward of chunk %d on this rank, comes later or never",
			 n->prev_here);
		err = bad(x->r, i, o, msg);
	} else if (n->prev_rank >= 0 && !(*cell & GOT_ACT)) {
		snprintf(msg, sizeof msg, "no earlier receive of its input activation from rank %d", n->prev_rank);
		err = bad(x->r, i, o, msg);
	}
	*cell |= F_DONE;
	return err;
}

/* The backward (B or I: kind) of (c, mb) as op i: after its forward, and its
 * output gradient is here or was received. */
static inline int input_b(const struct rstate *x, size_t i, const pt_op *o, int kind, int c, int mb)
{
	const struct nbr *n = &x->nb[c];
	unsigned char *cell = &x->s[(size_t)c * x->mbmax + (size_t)mb];
	char msg[160];
	int err = 0;
	if (!(*cell & F_DONE)) {
		err = bad(x->r, i, o, "backward before its forward");
	} else if (n->next_here >= 0 && !(x->s[(size_t)n->next_here * x->mbmax + (size_t)mb] & (B_DONE | I_DONE))) {
		snprintf(msg, sizeof msg, "its input, the backward of chunk %d on this rank, comes later or never",
			 n->next_here);
		err = bad(x->r, i, o, msg);
	} else if (n->next_rank >= 0 && !(*cell & GOT_GRAD)) {
		snprintf(msg, sizeof msg, "no earlier receive of its output gradient from rank %d", n->next_rank);
		err = bad(x->r, i, o, msg);
	}
	*cell |= kind == PT_OP_B ? B_DONE : I_DONE;
	return err;
}

/* (2) inputs exist earlier on the rank. Ranks depend on each other only
 * through messages, which (3) checks; a same-rank dependency needs the
 * producer earlier in the same list, so one rank's state at a time will do. */
struct inputs {
	unsigned char *s;
	struct nbr *nb;
	size_t cells;
	int mbmax;
};

static int inputs_init(const pt_plan *p, struct inputs *x)
{
	x->mbmax = p->mbs[0] > p->mbs[1] ? p->mbs[0] : p->mbs[1];
	x->cells = (size_t)p->chunks * (size_t)(x->mbmax ? x->mbmax : 1);
	x->s = malloc(x->cells);
	x->nb = malloc((size_t)p->chunks * sizeof *x->nb);
	return x->s && x->nb ? 0 : PT_ENOMEM;
}

static void inputs_fini(struct inputs *x)
{
	free(x->s);
	free(x->nb);
}

static int inputs_rank(const pt_plan *p, struct inputs *in, int r, const pt_op *ops, size_t n)
{
	unsigned char *s = in->s;
	struct nbr *nb = in->nb;
	size_t mbmax = (size_t)in->mbmax;
	struct rstate x = {s, mbmax, nb, r};
	int err = 0;
	memset(s, 0, in->cells);
	for (int c = 0; c < p->chunks; c++) {
		const pt_chunk_info *ci = pt_plan_chunk(p, r, c);
		int prev = ci->stage > 0 ? p->holder[ci->pipe * p->nstages + ci->stage - 1] : -1;
		int next = ci->stage + 1 < p->nstages ? p->holder[ci->pipe * p->nstages + ci->stage + 1] : -1;
		nb[c].prev_here = prev >= 0 && prev / p->chunks == r ? prev % p->chunks : -1;
		nb[c].prev_rank = prev >= 0 && prev / p->chunks != r ? prev / p->chunks : -1;
		nb[c].next_here = next >= 0 && next / p->chunks == r ? next % p->chunks : -1;
		nb[c].next_rank = next >= 0 && next / p->chunks != r ? next / p->chunks : -1;
	}
	for (size_t i = 0; i < n && !err; i++) {
		const pt_op *o = &ops[i];
		unsigned char *cell = &s[(size_t)o->chunk * mbmax + (size_t)o->mb];
		switch (o->kind) {
		case PT_OP_F:
			err = input_f(&x, i, o, o->chunk, o->mb);
			break;
		case PT_OP_FB: /* its forward, then its backward */
			if (!(err = input_f(&x, i, o, o->chunk, o->mb)))
				err = input_b(&x, i, o, PT_OP_B, o->chunk2, o->mb2);
			break;
		case PT_OP_B:
		case PT_OP_I:
			err = input_b(&x, i, o, o->kind, o->chunk, o->mb);
			break;
		case PT_OP_W:
			if (!(*cell & I_DONE))
				err = bad(r, i, o, "weight gradients before the I that defers them");
			break;
		case PT_OP_SEND:
			if (o->payload == PT_ACT && !(*cell & F_DONE))
				err = bad(r, i, o, "sends an activation before the forward that makes it");
			else if (o->payload == PT_GRAD && !(*cell & (B_DONE | I_DONE)))
				err = bad(r, i, o, "sends a gradient before the backward that makes it");
			break;
		case PT_OP_RECV:
			*cell |= o->payload == PT_ACT ? GOT_ACT : GOT_GRAD;
			break;
		}
	}
	return err;
}

/* One rank's messages to or from one peer, in posting order. */
struct group {
	int peer, kind;
	size_t *step;
	size_t n, cap;
};

struct groups {
	struct group *v;
	int n, cap;
};

static struct group *group_of(struct groups *g, int peer, int kind, int create)
{
	for (int i = 0; i < g->n; i++)
		if (g->v[i].peer == peer && g->v[i].kind == kind)
			return &g->v[i];
	if (!create)
		return NULL;
	if (g->n == g->cap) {
		int cap = g->cap ? g->cap * 2 : 4;
		struct group *v = realloc(g->v, (size_t)cap * sizeof *v);
		if (!v)
			return NULL;
		g->v = v;
		g->cap = cap;
	}
	struct group *n = &g->v[g->n++];
	memset(n, 0, sizeof *n);
	n->peer = peer;
	n->kind = kind;
	return n;
}

static int collect(const pt_plan *p, int r, struct groups *g)
{
	const pt_rank_plan *rp = &p->rank[r];
	for (size_t i = 0; i < rp->n; i++) {
		const pt_op *o = &rp->ops[i];
		if (!pt_kind_is_comm(o->kind))
			continue;
		struct group *gr = group_of(g, o->peer, o->kind, 1);
		if (!gr)
			return PT_ENOMEM;
		if (gr->n == gr->cap) {
			size_t cap = gr->cap ? gr->cap * 2 : 64;
			size_t *v = realloc(gr->step, cap * sizeof *v);
			if (!v)
				return PT_ENOMEM;
			gr->step = v;
			gr->cap = cap;
		}
		gr->step[gr->n++] = i;
	}
	return 0;
}

/* (3) sends and receives pair up in posting order, and carry the same thing */
static int check_pairs(const pt_plan *p)
{
	struct groups *g = calloc((size_t)(unsigned)p->ranks, sizeof *g);
	int err = g ? 0 : PT_ENOMEM;
	for (int r = 0; r < p->ranks && !err; r++)
		err = collect(p, r, &g[r]);
	for (int a = 0; a < p->ranks && !err; a++) {
		for (int gi = 0; gi < g[a].n && !err; gi++) {
			const struct group *sg = &g[a].v[gi];
			if (sg->kind != PT_OP_SEND)
				continue;
			int b = sg->peer;
			const struct group *rg = group_of(&g[b], a, PT_OP_RECV, 0);
			size_t ns = sg->n, nr = rg ? rg->n : 0;
			for (size_t k = 0; k < ns && k < nr && !err; k++) {
				const pt_op *so = &p->rank[a].ops[sg->step[k]];
				const pt_op *ro = &p->rank[b].ops[rg->step[k]];
				const pt_chunk_info *sc = pt_plan_chunk(p, a, so->chunk);
				const pt_chunk_info *rc = pt_plan_chunk(p, b, ro->chunk);
				int want = so->payload == PT_ACT ? 1 : -1;
				char sn[64], rn[64];
				if (so->seq != (int)k || ro->seq != (int)k) {
					err = pt_logerr(PT_EPLAN,
							"invalid plan: rank %d -> rank %d, message %zu: sequence numbers "
							"out of posting order (%s at step %zu has %d, %s at step %zu has %d)",
							a, b, k, opname(so, sn), sg->step[k], so->seq, opname(ro, rn),
							rg->step[k], ro->seq);
				} else if (so->payload != ro->payload || so->mb != ro->mb || sc->pipe != rc->pipe ||
					   rc->stage != sc->stage + want) {
					err = pt_logerr(PT_EPLAN,
							"invalid plan: rank %d -> rank %d, message %zu: rank %d sends %s "
							"(step %zu) but rank %d receives %s (step %zu) at that position",
							a, b, k, a, opname(so, sn), sg->step[k], b, opname(ro, rn),
							rg->step[k]);
				}
			}
			if (!err && ns != nr) {
				size_t at = ns > nr ? sg->step[nr] : rg->step[ns];
				const pt_op *extra = ns > nr ? &p->rank[a].ops[at] : &p->rank[b].ops[at];
				char en[64];
				err = pt_logerr(PT_EPLAN,
						"invalid plan: rank %d sends %zu messages to rank %d, which receives %zu "
						"(first unmatched: %s on rank %d, step %zu)",
						a, ns, b, nr, opname(extra, en), ns > nr ? a : b, at);
			}
		}
	}
	/* receives from a rank that sends nothing here */
	for (int b = 0; b < p->ranks && !err; b++) {
		for (int gi = 0; gi < g[b].n && !err; gi++) {
			const struct group *rg = &g[b].v[gi];
			if (rg->kind == PT_OP_RECV && !group_of(&g[rg->peer], b, PT_OP_SEND, 0))
				err = bad(b, rg->step[0], &p->rank[b].ops[rg->step[0]],
					  "receives from a rank that sends nothing here");
		}
	}
	for (int r = 0; g && r < p->ranks; r++) {
		for (int gi = 0; gi < g[r].n; gi++)
			free(g[r].v[gi].step);
		free(g[r].v);
	}
	free(g);
	return err;
}

int pt_plan_check_ranks(const pt_plan *p, int (*get)(void *arg, int r, pt_op **ops, size_t *n), void *arg)
{
	/* The layout first, as pt_plan_validate: the tables are sized and
	 * indexed by it. Then each rank read once: its counts, then its inputs
	 * (the counts check the kinds, ranges and payloads that the inputs'
	 * state is indexed by). */
	struct counts cx = {0};
	struct inputs ix = {0};
	int err = check_layout(p);
	if (!err)
		err = counts_init(p, &cx);
	if (!err)
		err = inputs_init(p, &ix);
	for (int r = 0; r < p->ranks && !err; r++) {
		pt_op *ops = NULL;
		size_t n = 0;
		if (!(err = get(arg, r, &ops, &n)) && !(err = counts_rank(p, &cx, r, ops, n)))
			err = inputs_rank(p, &ix, r, ops, n);
		free(ops);
	}
	if (!err)
		err = counts_finish(p, &cx);
	counts_fini(&cx);
	inputs_fini(&ix);
	return err;
}

int pt_plan_validate(const pt_plan *p)
{
	/* (0) before anything is sized or indexed by the layout; (1) over
	 * every rank before (2) */
	struct counts cx = {0};
	struct inputs ix = {0};
	int err = check_layout(p);
	if (!err)
		err = counts_init(p, &cx);
	for (int r = 0; r < p->ranks && !err; r++)
		err = counts_rank(p, &cx, r, p->rank[r].ops, p->rank[r].n);
	if (!err)
		err = counts_finish(p, &cx);
	if (!err)
		err = inputs_init(p, &ix);
	for (int r = 0; r < p->ranks && !err; r++)
		err = inputs_rank(p, &ix, r, p->rank[r].ops, p->rank[r].n);
	counts_fini(&cx);
	inputs_fini(&ix);
	if (!err)
		err = check_pairs(p);
	if (!err) {
		pt_cost unit = pt_cost_default();
		pt_sim *sim;
		err = pt_sim_run(p, &unit, PT_COMM_FLUSH, &sim);
		pt_sim_destroy(sim);
	}
	return err;
}
