/*
 * runner/comm.c — attach point-to-point messages to a plan of compute ops.
 *
 * Every cross-rank edge of the pipeline becomes one SEND on the producer and
 * one RECV on the consumer. As in DualPipe's own code, an op's sends go out in
 * the batch before the rank's next compute op, together with that op's
 * receives. Since NCCL matches messages between two ranks by posting order
 * only, a receive is pulled into an earlier batch when the sender emits its
 * messages in another order than the receiver consumes them (V-shaped
 * schedules mix activations and gradients on one pair). DualPipe's plans carry
 * their own batches (dualpipe.c) and do not come through here.
 */
#include <stdlib.h>
#include <string.h>

#include "libtrace/grow.h"
#include "runner.h"

struct item {
	int batch; /* the batch before compute op `batch`; ncompute is the trailing one */
	int cls;   /* 0 send, 1 recv, 2 compute: the order inside a batch */
	int order; /* creation order, or (for receives) the sequence */
	pt_op op;
};

struct rank_items {
	struct item *v;
	int n, ncompute;
	size_t cap;
};

static int push_item(struct rank_items *ri, int batch, int cls, int order, const pt_op *op)
{
	if (pt_grow(&ri->v, &ri->cap, (size_t)ri->n + 1, sizeof *ri->v))
		return PT_ENOMEM;
	ri->v[ri->n++] = (struct item){batch, cls, order, *op};
	return 0;
}

static pt_op message(int kind, int payload, int chunk, int mb, int peer, int64_t bytes)
{
	pt_op op = pt_op_make(kind, chunk, mb);
	op.payload = (uint8_t)payload;
	op.peer = peer;
	op.bytes = bytes;
	return op;
}

/* The messages one compute half needs (recv) and produces (send). */
static int edges(const pt_plan *p, struct rank_items *ri, int r, int j, int kind, int c, int mb, int64_t bytes,
		 int *norder)
{
	int err = 0;
	int prev = pt_plan_neighbour(p, r, c, -1), next = pt_plan_neighbour(p, r, c, +1);
	int prev_rank = prev < 0 ? -1 : prev / p->chunks, next_rank = next < 0 ? -1 : next / p->chunks;
	if (kind == PT_OP_F) {
		pt_op in = message(PT_OP_RECV, PT_ACT, c, mb, prev_rank, bytes);
		pt_op outm = message(PT_OP_SEND, PT_ACT, c, mb, next_rank, bytes);
		if (prev >= 0 && prev_rank != r)
			err = push_item(ri, j, 1, (*norder)++, &in);
		if (!err && next >= 0 && next_rank != r)
			err = push_item(ri, j + 1, 0, (*norder)++, &outm);
	} else if (kind == PT_OP_B || kind == PT_OP_I) {
		pt_op in = message(PT_OP_RECV, PT_GRAD, c, mb, next_rank, bytes);
		pt_op outm = message(PT_OP_SEND, PT_GRAD, c, mb, prev_rank, bytes);
		if (next >= 0 && next_rank != r)
			err = push_item(ri, j, 1, (*norder)++, &in);
		if (!err && prev >= 0 && prev_rank != r)
			err = push_item(ri, j + 1, 0, (*norder)++, &outm);
	}
	return err;
}

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->batch != y->batch)
		return x->batch < y->batch ? -1 : 1;
	if (x->cls != y->cls)
		return x->cls < y->cls ? -1 : 1;
	if (x->cls == 1 && x->op.peer != y->op.peer)
		return x->op.peer < y->op.peer ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

int pt_plan_attach_comms(pt_plan *p, int64_t bytes)
{
	const int P = p->ranks, v = p->chunks;
	int mbmax = p->mbs[0] > p->mbs[1] ? p->mbs[0] : p->mbs[1];
	int err = 0;
	struct rank_items *ri = calloc((size_t)P, sizeof *ri);
	/* expected[rank][chunk][payload][mb]: the seq a receive will match */
	int *expected = malloc((size_t)v * 2 * (size_t)mbmax * sizeof *expected);
	int *sendcnt = calloc((size_t)P, sizeof *sendcnt); /* per peer, reset per sender */
	int *pos = NULL;
	if (!ri || !expected || !sendcnt) {
		err = PT_ENOMEM;
		goto out;
	}

	/* 1. items: receives before, sends after each compute op */
	for (int r = 0; r < P && !err; r++) {
		int norder = 0;
		pt_rank_plan *rp = &p->rank[r];
		for (size_t j = 0; j < rp->n && !err; j++) {
			pt_op *o = &rp->ops[j];
			int jj = (int)j;
			if (o->kind == PT_OP_FB) {
				err = edges(p, &ri[r], r, jj, PT_OP_F, o->chunk, o->mb, bytes, &norder);
				if (!err)
					err = edges(p, &ri[r], r, jj, PT_OP_B, o->chunk2, o->mb2, bytes, &norder);
			} else {
				err = edges(p, &ri[r], r, jj, o->kind, o->chunk, o->mb, bytes, &norder);
			}
			if (!err)
				err = push_item(&ri[r], jj, 2, norder++, o);
		}
		ri[r].ncompute = (int)rp->n;
	}
	if (err)
		goto out;

	/* 2. sends get their sequence on (sender, receiver) in posting order */
	for (int a = 0; a < P; a++) {
		qsort(ri[a].v, (size_t)ri[a].n, sizeof *ri[a].v, cmp_item);
		for (int k = 0; k < ri[a].n; k++) {
			pt_op *o = &ri[a].v[k].op;
			if (o->kind == PT_OP_SEND && o->peer >= 0)
				o->seq = sendcnt[o->peer]++;
		}
		for (int k = 0; k < ri[a].n; k++)
			if (ri[a].v[k].op.kind == PT_OP_SEND && ri[a].v[k].op.peer >= 0)
				sendcnt[ri[a].v[k].op.peer] = 0;
	}

	/* 3. receives take the sequence of the send they match, and move to an
	 *    earlier batch where the pair's order requires it */
	for (int b = 0; b < P && !err; b++) {
		for (size_t i = 0; i < (size_t)v * 2 * (size_t)mbmax; i++)
			expected[i] = -1;
		for (int a = 0; a < P; a++) {
			for (int k = 0; k < ri[a].n; k++) {
				const pt_op *o = &ri[a].v[k].op;
				if (o->kind != PT_OP_SEND || o->peer != b)
					continue;
				/* the receiver's chunk for this message */
				int h = pt_plan_neighbour(p, a, o->chunk, o->payload == PT_ACT ? +1 : -1);
				if (h < 0 || h / v != b || o->mb < 0 || o->mb >= mbmax)
					continue;
				expected[((size_t)(h % v) * 2 + o->payload) * (size_t)mbmax + (size_t)o->mb] = o->seq;
			}
		}
		int maxseq = 0;
		for (int k = 0; k < ri[b].n; k++) {
			pt_op *o = &ri[b].v[k].op;
			if (o->kind != PT_OP_RECV)
				continue;
			o->seq = expected[((size_t)o->chunk * 2 + o->payload) * (size_t)mbmax + (size_t)o->mb];
			if (o->seq + 1 > maxseq)
				maxseq = o->seq + 1;
		}
		free(pos);
		pos = malloc(((size_t)maxseq + 1) * sizeof *pos);
		if (!pos) {
			err = PT_ENOMEM;
			break;
		}
		for (int a = 0; a < P; a++) {
			if (a == b)
				continue;
			for (int s = 0; s <= maxseq; s++)
				pos[s] = -1;
			for (int k = 0; k < ri[b].n; k++) {
				struct item *it = &ri[b].v[k];
				if (it->op.kind == PT_OP_RECV && it->op.peer == a && it->op.seq >= 0)
					pos[it->op.seq] = it->batch;
			}
			int limit = ri[b].ncompute + 1;
			for (int s = maxseq - 1; s >= 0; s--) {
				if (pos[s] < 0)
					continue;
				if (pos[s] > limit)
					pos[s] = limit;
				limit = pos[s];
			}
			for (int k = 0; k < ri[b].n; k++) {
				struct item *it = &ri[b].v[k];
				if (it->op.kind == PT_OP_RECV && it->op.peer == a && it->op.seq >= 0) {
					it->batch = pos[it->op.seq];
					it->order = it->op.seq;
				}
			}
		}
	}
	if (err)
		goto out;

	/* 4. rebuild each rank's list; number the non-empty batches */
	for (int r = 0; r < P && !err; r++) {
		qsort(ri[r].v, (size_t)ri[r].n, sizeof *ri[r].v, cmp_item);
		pt_rank_plan *rp = &p->rank[r];
		rp->n = 0;
		rp->nbatches = 0;
		int cur = -1, id = -1;
		for (int k = 0; k < ri[r].n && !err; k++) {
			struct item *it = &ri[r].v[k];
			if (it->cls != 2) {
				if (it->batch != cur) {
					cur = it->batch;
					id++;
				}
				it->op.batch = id;
			}
			err = pt_plan_push(p, r, &it->op);
		}
	}
out:
	if (ri)
		for (int r = 0; r < P; r++)
			free(ri[r].v);
	free(ri);
	free(expected);
	free(sendcnt);
	free(pos);
	return err;
}
