/*
 * runner/validate.c — is a plan sound? Four checks, each naming the op at
 * fault: (1) every (pipeline, stage, microbatch) has exactly one F and one B,
 * or one I and one W; (2) every op's inputs exist earlier on its rank — the
 * previous stage's forward (here or received), the next stage's gradient,
 * the I a W belongs to, the op whose output a SEND carries; (3) between every
 * two ranks the k-th send matches the k-th receive; (4) a rendezvous
 * simulation (sim.c, flush mode) finishes. It reports the first problem only:
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

/* (1) ranges, then exactly-once counts per (pipeline, stage, microbatch) */
static int check_counts(const pt_plan *p)
{
	int mbmax = p->mbs[0] > p->mbs[1] ? p->mbs[0] : p->mbs[1];
	size_t cells = (size_t)p->npipes * (size_t)p->nstages * (size_t)(mbmax ? mbmax : 1);
	/* counts[cell][k]: F, B, I, W */
	int(*cnt)[4] = calloc(cells, sizeof *cnt);
	if (!cnt)
		return PT_ENOMEM;
	int err = 0;
	char msg[160];
	for (int r = 0; r < p->ranks && !err; r++) {
		const pt_rank_plan *rp = &p->rank[r];
		for (size_t i = 0; i < rp->n && !err; i++) {
			const pt_op *o = &rp->ops[i];
			if (o->kind < PT_OP_F || o->kind >= PT_OP_KIND_MAX) {
				err = bad(r, i, o, "unknown op kind");
				break;
			}
			int halves = o->kind == PT_OP_FB ? 2 : 1;
			for (int h = 0; h < halves && !err; h++) {
				int c = h ? o->chunk2 : o->chunk, mb = h ? o->mb2 : o->mb;
				if (c < 0 || c >= p->chunks) {
					snprintf(msg, sizeof msg, "chunk %d does not exist (this plan has %d per rank)", c,
						 p->chunks);
					err = bad(r, i, o, msg);
					break;
				}
				if (mb < 0 || mb >= mbs_of(p, r, c)) {
					snprintf(msg, sizeof msg, "microbatch %d is out of range (0..%d)", mb,
						 mbs_of(p, r, c) - 1);
					err = bad(r, i, o, msg);
					break;
				}
				if (pt_kind_is_comm(o->kind)) {
					if (o->peer < 0 || o->peer >= p->ranks || o->peer == r) {
						snprintf(msg, sizeof msg, "peer rank %d is not another rank of the plan",
							 o->peer);
						err = bad(r, i, o, msg);
					}
					continue;
				}
				const pt_chunk_info *ci = pt_plan_chunk(p, r, c);
				size_t cell = ((size_t)ci->pipe * (size_t)p->nstages + (size_t)ci->stage) * (size_t)mbmax +
					      (size_t)mb;
				int k = o->kind == PT_OP_FB ? (h ? 1 : 0) : o->kind - PT_OP_F;
				cnt[cell][k]++;
			}
		}
	}
	for (int r = 0; r < p->ranks && !err; r++) {
		for (int c = 0; c < p->chunks && !err; c++) {
			const pt_chunk_info *ci = pt_plan_chunk(p, r, c);
			for (int mb = 0; mb < mbs_of(p, r, c) && !err; mb++) {
				size_t cell = ((size_t)ci->pipe * (size_t)p->nstages + (size_t)ci->stage) * (size_t)mbmax +
					      (size_t)mb;
				int f = cnt[cell][0], b = cnt[cell][1], in = cnt[cell][2], w = cnt[cell][3];
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
	free(cnt);
	return err;
}

/* (2) inputs exist earlier on the rank */
static int check_inputs(const pt_plan *p)
{
	int mbmax = p->mbs[0] > p->mbs[1] ? p->mbs[0] : p->mbs[1];
	size_t cells = (size_t)p->chunks * (size_t)(mbmax ? mbmax : 1);
	enum { F_DONE = 1, B_DONE = 2, I_DONE = 4, GOT_ACT = 8, GOT_GRAD = 16 };
	unsigned char **st = calloc((size_t)p->ranks, sizeof *st);
	if (!st)
		return PT_ENOMEM;
	int err = 0;
	for (int r = 0; r < p->ranks && !err; r++)
		if (!(st[r] = calloc(cells, 1)))
			err = PT_ENOMEM;
	/* Ranks depend on each other only through messages, which (3) checks; a
	 * same-rank dependency needs the producer earlier in the same list. */
	for (int r = 0; r < p->ranks && !err; r++) {
		const pt_rank_plan *rp = &p->rank[r];
		unsigned char *s = st[r];
		for (size_t i = 0; i < rp->n && !err; i++) {
			const pt_op *o = &rp->ops[i];
			int halves = o->kind == PT_OP_FB ? 2 : 1;
			for (int h = 0; h < halves && !err; h++) {
				int kind = o->kind == PT_OP_FB ? (h ? PT_OP_B : PT_OP_F) : o->kind;
				int c = h ? o->chunk2 : o->chunk, mb = h ? o->mb2 : o->mb;
				size_t cell = (size_t)c * (size_t)mbmax + (size_t)mb;
				const pt_chunk_info *ci = pt_plan_chunk(p, r, c);
				int prev = ci->stage > 0 ? p->holder[ci->pipe * p->nstages + ci->stage - 1] : -1;
				int next = ci->stage + 1 < p->nstages ? p->holder[ci->pipe * p->nstages + ci->stage + 1]
								      : -1;
				char msg[160];
				switch (kind) {
				case PT_OP_F:
					if (prev >= 0 && prev / p->chunks == r &&
					    !(st[r][(size_t)(prev % p->chunks) * (size_t)mbmax + (size_t)mb] & F_DONE)) {
						snprintf(msg, sizeof msg,
							 "its input, the forward of chunk %d on this rank, comes later or never",
							 prev % p->chunks);
						err = bad(r, i, o, msg);
					} else if (prev >= 0 && prev / p->chunks != r && !(s[cell] & GOT_ACT)) {
						snprintf(msg, sizeof msg,
							 "no earlier receive of its input activation from rank %d",
							 prev / p->chunks);
						err = bad(r, i, o, msg);
					}
					s[cell] |= F_DONE;
					break;
				case PT_OP_B:
				case PT_OP_I:
					if (!(s[cell] & F_DONE)) {
						err = bad(r, i, o, "backward before its forward");
					} else if (next >= 0 && next / p->chunks == r &&
						   !(st[r][(size_t)(next % p->chunks) * (size_t)mbmax + (size_t)mb] &
						     (B_DONE | I_DONE))) {
						snprintf(msg, sizeof msg,
							 "its input, the backward of chunk %d on this rank, comes later or never",
							 next % p->chunks);
						err = bad(r, i, o, msg);
					} else if (next >= 0 && next / p->chunks != r && !(s[cell] & GOT_GRAD)) {
						snprintf(msg, sizeof msg,
							 "no earlier receive of its output gradient from rank %d",
							 next / p->chunks);
						err = bad(r, i, o, msg);
					}
					s[cell] |= kind == PT_OP_B ? B_DONE : I_DONE;
					break;
				case PT_OP_W:
					if (!(s[cell] & I_DONE))
						err = bad(r, i, o, "weight gradients before the I that defers them");
					break;
				case PT_OP_SEND:
					if (o->payload == PT_ACT && !(s[cell] & F_DONE))
						err = bad(r, i, o, "sends an activation before the forward that makes it");
					else if (o->payload == PT_GRAD && !(s[cell] & (B_DONE | I_DONE)))
						err = bad(r, i, o, "sends a gradient before the backward that makes it");
					break;
				case PT_OP_RECV:
					s[cell] |= o->payload == PT_ACT ? GOT_ACT : GOT_GRAD;
					break;
				}
			}
		}
	}
	for (int r = 0; r < p->ranks; r++)
		free(st ? st[r] : NULL);
	free(st);
	return err;
}

struct msgref {
	int peer, kind;
	size_t step;
};

static int cmp_msg(const void *a, const void *b)
{
	const struct msgref *x = a, *y = b;
	if (x->peer != y->peer)
		return x->peer < y->peer ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return x->step < y->step ? -1 : x->step > y->step;
}

static int collect(const pt_plan *p, int r, struct msgref **out, size_t *n)
{
	const pt_rank_plan *rp = &p->rank[r];
	*n = 0;
	*out = malloc((rp->n + 1) * sizeof **out);
	if (!*out)
		return PT_ENOMEM;
	for (size_t i = 0; i < rp->n; i++)
		if (pt_kind_is_comm(rp->ops[i].kind))
			(*out)[(*n)++] = (struct msgref){rp->ops[i].peer, rp->ops[i].kind, i};
	qsort(*out, *n, sizeof **out, cmp_msg);
	return 0;
}

/* (3) sends and receives pair up in posting order, and carry the same thing */
static int check_pairs(const pt_plan *p)
{
	struct msgref **m = calloc((size_t)p->ranks, sizeof *m);
	size_t *n = calloc((size_t)p->ranks, sizeof *n);
	int err = (!m || !n) ? PT_ENOMEM : 0;
	for (int r = 0; r < p->ranks && !err; r++)
		err = collect(p, r, &m[r], &n[r]);
	for (int a = 0; a < p->ranks && !err; a++) {
		for (size_t i = 0; i < n[a] && !err;) {
			if (m[a][i].kind != PT_OP_SEND) {
				i++;
				continue;
			}
			int b = m[a][i].peer;
			size_t s0 = i;
			while (i < n[a] && m[a][i].peer == b && m[a][i].kind == PT_OP_SEND)
				i++;
			size_t ns = i - s0;
			/* b's receives from a */
			size_t r0 = 0, nr = 0;
			while (r0 < n[b] && !(m[b][r0].peer == a && m[b][r0].kind == PT_OP_RECV))
				r0++;
			while (r0 + nr < n[b] && m[b][r0 + nr].peer == a && m[b][r0 + nr].kind == PT_OP_RECV)
				nr++;
			size_t k;
			for (k = 0; k < ns && k < nr && !err; k++) {
				const pt_op *so = &p->rank[a].ops[m[a][s0 + k].step];
				const pt_op *ro = &p->rank[b].ops[m[b][r0 + k].step];
				const pt_chunk_info *sc = pt_plan_chunk(p, a, so->chunk);
				const pt_chunk_info *rc = pt_plan_chunk(p, b, ro->chunk);
				int want = so->payload == PT_ACT ? 1 : -1;
				char sn[64], rn[64];
				if (so->seq != (int)k || ro->seq != (int)k) {
					err = pt_logerr(PT_EPLAN,
							"invalid plan: rank %d -> rank %d, message %zu: sequence numbers "
							"out of posting order (%s at step %zu has %d, %s at step %zu has %d)",
							a, b, k, opname(so, sn), m[a][s0 + k].step, so->seq, opname(ro, rn),
							m[b][r0 + k].step, ro->seq);
				} else if (so->payload != ro->payload || so->mb != ro->mb || sc->pipe != rc->pipe ||
					   rc->stage != sc->stage + want) {
					err = pt_logerr(PT_EPLAN,
							"invalid plan: rank %d -> rank %d, message %zu: rank %d sends %s "
							"(step %zu) but rank %d receives %s (step %zu) at that position",
							a, b, k, a, opname(so, sn), m[a][s0 + k].step, b, opname(ro, rn),
							m[b][r0 + k].step);
				}
			}
			if (!err && ns != nr) {
				const pt_op *extra = ns > nr ? &p->rank[a].ops[m[a][s0 + nr].step]
							     : &p->rank[b].ops[m[b][r0 + ns].step];
				char en[64];
				err = pt_logerr(PT_EPLAN,
						"invalid plan: rank %d sends %zu messages to rank %d, which receives %zu "
						"(first unmatched: %s on rank %d, step %zu)",
						a, ns, b, nr, opname(extra, en), ns > nr ? a : b,
						ns > nr ? m[a][s0 + nr].step : m[b][r0 + ns].step);
			}
		}
	}
	/* receives from a rank that sends nothing to us */
	for (int b = 0; b < p->ranks && !err; b++) {
		for (size_t i = 0; i < n[b] && !err; i++) {
			if (m[b][i].kind != PT_OP_RECV)
				continue;
			int a = m[b][i].peer, found = 0;
			for (size_t j = 0; j < n[a] && !found; j++)
				found = m[a][j].peer == b && m[a][j].kind == PT_OP_SEND;
			if (!found)
				err = bad(b, m[b][i].step, &p->rank[b].ops[m[b][i].step],
					  "receives from a rank that sends nothing here");
		}
	}
	for (int r = 0; m && r < p->ranks; r++)
		free(m[r]);
	free(m);
	free(n);
	return err;
}

int pt_plan_validate(const pt_plan *p)
{
	int err = check_counts(p);
	if (!err)
		err = check_inputs(p);
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
