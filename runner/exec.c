/*
 * runner/exec.c — the executor of the real backends: one thread per rank
 * walks its plan in order, with the semantics runner/sim.c models, and calls
 * the backend's table (exec.h) for the math, the activation storage and the
 * transport.
 *
 * A comm batch is posted when the rank reaches it; in flush mode the rank
 * then waits for every message of the batch (DeepSeek's DualPipe), in
 * overlap mode it goes on, having posted the receives of the next batch
 * before its previous compute op, and a compute op waits only for the
 * receives it consumes (pt_plan_inputs). Each (chunk, microbatch) gets an
 * activation slot from a per-rank pool at its first touch (a receive posted
 * for it, or its forward) and gives it back once its B or W has run and its
 * sends are posted; a slot whose sends are still in flight is not reused
 * until they finish. I pushes one weight-gradient group on a FIFO and W runs
 * the group its plan op names — the FIFO's head for DualPipe, whose plans
 * come from that FIFO (spec/dualpipe.md §1.4), and torch's per-stage store
 * for the others. FB runs its forward, then its full backward: the pair has
 * no communication inside it to hide (its messages are in the batches around
 * it), so interleaving sub-blocks would only change cache behaviour.
 * Nothing here knows what a stage computes or how bytes travel.
 *
 * A device backend (cuda) only queues work from the rank threads; its
 * op_begin/op_end hooks bracket each op's issue, and the intervals that
 * matter (when the device ran the op, when the bytes moved) are known only
 * once the device has finished, so they are recorded after the step, from
 * the backend (device_results). A process may run only some of the ranks
 * (one process per GPU under mpirun): the others get no thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "exec.h"
#include "libtrace/grow.h"

struct xslot {
	void *mem;
	atomic_int sends; /* sends from it still in flight */
	int holds;	  /* uses left before it goes back: compute + sends to post */
	struct xslot *next;
};

struct wgroup {
	int chunk, mb;
	struct xslot *s;
};

struct xrank {
	struct pt_exec *x;
	int r;
	const pt_rank_plan *rp;
	int32_t *need;	    /* [2n] receives each compute op consumes */
	pt_msg *msg;	    /* [n] */
	uint8_t *posted;    /* [n] */
	int64_t *dur;	    /* [n] compute op durations, clock ticks */
	struct xslot **tab; /* [chunks * maxmb] live slot of (chunk, mb) */
	uint8_t *nsend;	    /* [chunks * maxmb] SENDs the plan makes from (chunk, mb) */
	struct xslot *free;
	struct xslot **all;
	int nall;
	size_t call;
	struct wgroup *wq;
	int wn, wcap;
	int pool, grown, w_seen;
	int64_t end_mono;
	pthread_t th;
};

struct pt_exec {
	const pt_plan *plan;
	const pt_exec_ops *ops;
	void *be;
	int maxmb;
	uint8_t *local; /* [ranks] this process runs the rank */
	int device;	/* ops->op_time: device intervals, recorded after the step */
	struct xrank *rk;
	/* one step */
	const pt_exec_step_opts *o;
	pthread_mutex_t mu;
	pthread_cond_t cv;   /* to the caller: a rank is ready or finished */
	pthread_cond_t gate; /* to the ranks: go */
	int ready, go, finished, started, err;
	int64_t cpu_end; /* process CPU time when the last rank finished */
	atomic_int abort;
	atomic_size_t done_ops;
};

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

int64_t pt_exec_now(const pt_rec *rec) { return rec ? pt_rec_ticks(rec) : mono_ns(); }

/* ------------------------------------------------------------- the plan */

static int maxmb(const pt_plan *p) { return p->mbs[0] > p->mbs[1] ? p->mbs[0] : p->mbs[1]; }

/* Index of (chunk, mb) in a rank's slot table, -1 when out of range. */
static int slot_index(const pt_plan *p, int m, int chunk, int mb)
{
	if (chunk < 0 || chunk >= p->chunks || mb < 0 || mb >= m)
		return -1;
	return chunk * m + mb;
}

/* Walk rank r's plan as the executor does, receives posted one compute op
 * early, and count the (chunk, mb) pairs alive at once. nsend gets the
 * sends per pair when not NULL. */
static int walk_peak(const pt_plan *p, int r, uint8_t *nsend)
{
	const pt_rank_plan *rp = &p->rank[r];
	const int m = maxmb(p), nslots = p->chunks * m;
	int *holds = calloc((size_t)nslots, sizeof *holds);
	uint8_t *sends = nsend ? nsend : calloc((size_t)nslots, 1);
	uint8_t *touched = calloc((size_t)nslots, 1);
	int live = 0, peak = 0;
	if (!holds || !sends || !touched) {
		peak = PT_ENOMEM;
		goto out;
	}
	memset(sends, 0, (size_t)nslots);
	for (size_t i = 0; i < rp->n; i++) {
		const pt_op *o = &rp->ops[i];
		int k = slot_index(p, m, o->chunk, o->mb);
		if (o->kind == PT_OP_SEND && k >= 0 && sends[k] < 255)
			sends[k]++;
	}
#define TOUCH(c, mb)                                                                                                   \
	do {                                                                                                           \
		int k_ = slot_index(p, m, (c), (mb));                                                                  \
		if (k_ >= 0 && !touched[k_]) {                                                                         \
			touched[k_] = 1;                                                                               \
			holds[k_] = 1 + sends[k_];                                                                     \
			if (++live > peak)                                                                             \
				peak = live;                                                                           \
		}                                                                                                      \
	} while (0)
#define DROP(c, mb)                                                                                                    \
	do {                                                                                                           \
		int k_ = slot_index(p, m, (c), (mb));                                                                  \
		if (k_ >= 0 && touched[k_] && holds[k_] > 0 && --holds[k_] == 0)                                        \
			live--;                                                                                        \
	} while (0)
	for (size_t i = 0; i < rp->n; i++) {
		const pt_op *o = &rp->ops[i];
		if (pt_kind_is_comm(o->kind)) {
			if (o->kind == PT_OP_RECV)
				TOUCH(o->chunk, o->mb);
			else
				DROP(o->chunk, o->mb);
			continue;
		}
		for (size_t j = i + 1; j < rp->n && pt_kind_is_comm(rp->ops[j].kind); j++)
			if (rp->ops[j].kind == PT_OP_RECV)
				TOUCH(rp->ops[j].chunk, rp->ops[j].mb);
		if (o->kind == PT_OP_F || o->kind == PT_OP_FB) {
			TOUCH(o->chunk, o->mb);
			int nb = pt_plan_neighbour(p, r, o->chunk, +1);
			if (nb >= 0 && nb / p->chunks == r)
				TOUCH(nb % p->chunks, o->mb);
		}
		if (o->kind == PT_OP_B || o->kind == PT_OP_W)
			DROP(o->chunk, o->mb);
		if (o->kind == PT_OP_FB)
			DROP(o->chunk2, o->mb2);
	}
#undef TOUCH
#undef DROP
out:
	free(holds);
	if (!nsend)
		free(sends);
	free(touched);
	return peak;
}

int pt_exec_pool_size(const pt_plan *plan, int rank) { return walk_peak(plan, rank, NULL); }

/* ---------------------------------------------------------------- slots */

static int slot_new(struct xrank *xr, struct xslot **out)
{
	struct pt_exec *x = xr->x;
	if (pt_grow(&xr->all, &xr->call, (size_t)xr->nall + 1, sizeof *xr->all))
		return PT_ENOMEM;
	struct xslot *s = calloc(1, sizeof *s);
	if (!s)
		return PT_ENOMEM;
	int err = x->ops->slot_create(x->be, xr->r, &s->mem);
	if (err) {
		free(s);
		return err;
	}
	xr->all[xr->nall++] = s;
	*out = s;
	return 0;
}

/* The slot of (chunk, mb); with create, taken from the pool at first touch. */
static int slot_get(struct xrank *xr, int chunk, int mb, int create, struct xslot **out)
{
	struct pt_exec *x = xr->x;
	int k = slot_index(x->plan, x->maxmb, chunk, mb);
	if (k < 0)
		return pt_logerr(PT_EPLAN, "rank %d: chunk %d microbatch %d is outside the plan", xr->r, chunk, mb);
	if (xr->tab[k] || !create) {
		if (!xr->tab[k])
			return pt_logerr(PT_EPLAN, "rank %d: chunk %d microbatch %d used before its forward", xr->r,
					 chunk, mb);
		*out = xr->tab[k];
		return 0;
	}
	struct xslot **pp = &xr->free, *s = NULL;
	for (; *pp; pp = &(*pp)->next) {
		if (atomic_load_explicit(&(*pp)->sends, memory_order_acquire) == 0) {
			s = *pp;
			*pp = s->next;
			break;
		}
	}
	if (!s) {
		int err = slot_new(xr, &s);
		if (err)
			return err;
		xr->grown++;
	}
	s->holds = 1 + xr->nsend[k];
	s->next = NULL;
	xr->tab[k] = s;
	*out = s;
	return 0;
}

/* One use of (chunk, mb) done; the last gives the slot back. */
static void slot_drop(struct xrank *xr, int chunk, int mb)
{
	int k = slot_index(xr->x->plan, xr->x->maxmb, chunk, mb);
	struct xslot *s = k < 0 ? NULL : xr->tab[k];
	if (!s || --s->holds > 0)
		return;
	xr->tab[k] = NULL;
	s->next = xr->free;
	xr->free = s;
}

/* -------------------------------------------------------------- compute */

static void work_of(struct xrank *xr, int chunk, int mb, pt_work *w)
{
	const pt_plan *p = xr->x->plan;
	const pt_chunk_info *ci = pt_plan_chunk(p, xr->r, chunk);
	w->rank = xr->r;
	w->chunk = chunk;
	w->pipe = ci->pipe;
	w->stage = ci->stage;
	w->mb = mb;
	w->gmb = ci->pipe == 0 ? mb : p->mbs[0] + mb;
	w->first = pt_plan_neighbour(p, xr->r, chunk, -1) < 0;
	w->last = pt_plan_neighbour(p, xr->r, chunk, +1) < 0;
	w->slot = NULL;
}

static int do_forward(struct xrank *xr, int chunk, int mb)
{
	struct pt_exec *x = xr->x;
	struct xslot *s, *t;
	pt_work w;
	work_of(xr, chunk, mb, &w);
	int err = slot_get(xr, chunk, mb, 1, &s);
	if (err)
		return err;
	w.slot = s->mem;
	if (x->o->fault == PT_FAULT_SWAP_MB && w.first && w.pipe == 0 && mb < 2 && x->plan->mbs[0] >= 2)
		w.gmb = 1 - mb;
	if ((err = x->ops->forward(x->be, &w)))
		return err;
	int nb = pt_plan_neighbour(x->plan, xr->r, chunk, +1);
	if (nb >= 0 && nb / x->plan->chunks == xr->r) { /* the next stage is ours: hand over */
		if ((err = slot_get(xr, nb % x->plan->chunks, mb, 1, &t)))
			return err;
		err = x->ops->copy(x->be, xr->r, t->mem, PT_BUF_X, s->mem, PT_BUF_Y);
	}
	return err;
}

static int do_backward(struct xrank *xr, int chunk, int mb, int defer)
{
	struct pt_exec *x = xr->x;
	struct xslot *s, *t;
	pt_work w;
	work_of(xr, chunk, mb, &w);
	int err = slot_get(xr, chunk, mb, 0, &s);
	if (err)
		return err;
	w.slot = s->mem;
	if ((err = x->ops->backward(x->be, &w, defer)))
		return err;
	int pb = pt_plan_neighbour(x->plan, xr->r, chunk, -1);
	if (pb >= 0 && pb / x->plan->chunks == xr->r) {
		if ((err = slot_get(xr, pb % x->plan->chunks, mb, 0, &t)))
			return err;
		if ((err = x->ops->copy(x->be, xr->r, t->mem, PT_BUF_DY, s->mem, PT_BUF_DX)))
			return err;
	}
	if (!defer) {
		slot_drop(xr, chunk, mb);
		return 0;
	}
	if (xr->wn == xr->wcap)
		return pt_logerr(PT_EPLAN, "rank %d: more I than the plan holds", xr->r);
	xr->wq[xr->wn++] = (struct wgroup){chunk, mb, s};
	return 0;
}

static int do_weight(struct xrank *xr, int chunk, int mb)
{
	struct pt_exec *x = xr->x;
	int i = 0;
	while (i < xr->wn && (xr->wq[i].chunk != chunk || xr->wq[i].mb != mb))
		i++;
	if (i == xr->wn)
		return pt_logerr(PT_EPLAN, "rank %d: W%d:%d has no deferred group (no I%d:%d before it)", xr->r, chunk,
				 mb, chunk, mb);
	struct wgroup g = xr->wq[i];
	memmove(&xr->wq[i], &xr->wq[i + 1], (size_t)(xr->wn - i - 1) * sizeof *xr->wq);
	xr->wn--;
	int skip = x->o->fault == PT_FAULT_SKIP_W && xr->r == 0 && xr->w_seen == 0;
	xr->w_seen++;
	if (!skip) {
		pt_work w;
		work_of(xr, chunk, mb, &w);
		w.slot = g.s->mem;
		int err = x->ops->weight_grad(x->be, &w);
		if (err)
			return err;
	}
	slot_drop(xr, chunk, mb);
	return 0;
}

static int compute(struct xrank *xr, const pt_op *o)
{
	switch (o->kind) {
	case PT_OP_F: return do_forward(xr, o->chunk, o->mb);
	case PT_OP_B: return do_backward(xr, o->chunk, o->mb, 0);
	case PT_OP_I: return do_backward(xr, o->chunk, o->mb, 1);
	case PT_OP_W: return do_weight(xr, o->chunk, o->mb);
	case PT_OP_FB: {
		int err = do_forward(xr, o->chunk, o->mb);
		return err ? err : do_backward(xr, o->chunk2, o->mb2, 0);
	}
	}
	return pt_logerr(PT_EPLAN, "rank %d: '%s' is not a compute op", xr->r, pt_kind_name(o->kind));
}

/* -------------------------------------------------------------- messages */

static int post(struct xrank *xr, size_t j)
{
	struct pt_exec *x = xr->x;
	const pt_op *o = &xr->rp->ops[j];
	pt_msg *m = &xr->msg[j];
	struct xslot *s;
	int send = o->kind == PT_OP_SEND;
	int err = slot_get(xr, o->chunk, o->mb, !send, &s);
	if (err)
		return err;
	enum pt_buf which = send ? (o->payload == PT_ACT ? PT_BUF_Y : PT_BUF_DX)
				 : (o->payload == PT_ACT ? PT_BUF_X : PT_BUF_DY);
	m->op = o;
	m->rank = xr->r;
	m->step = (int)j;
	m->buf = x->ops->slot_buf(x->be, s->mem, which);
	m->bytes = x->ops->msg_bytes;
	m->pending = send ? &s->sends : NULL;
	m->start = m->end = 0;
	atomic_store_explicit(&m->done, 0, memory_order_relaxed);
	if (send)
		atomic_fetch_add_explicit(&s->sends, 1, memory_order_relaxed);
	m->posted = x->device ? mono_ns() : pt_exec_now(x->o->rec);
	xr->posted[j] = 1;
	if ((err = x->ops->post(x->be, m)))
		return err;
	if (send)
		slot_drop(xr, o->chunk, o->mb);
	return 0;
}

static int wait_msg(struct xrank *xr, size_t j)
{
	if (atomic_load_explicit(&xr->msg[j].done, memory_order_acquire))
		return 0;
	return xr->x->ops->wait(xr->x->be, &xr->msg[j]);
}

/* ------------------------------------------------------------ the ranks */

static void fail(struct pt_exec *x, int err)
{
	pthread_mutex_lock(&x->mu);
	if (!x->err)
		x->err = err;
	pthread_mutex_unlock(&x->mu);
	if (!atomic_exchange(&x->abort, 1))
		x->ops->abort(x->be);
}

static int run_rank(struct xrank *xr, pt_tbuf *tb)
{
	struct pt_exec *x = xr->x;
	const pt_rank_plan *rp = xr->rp;
	const pt_rec *rec = x->o->rec;
	const int flush = x->o->mode == PT_COMM_FLUSH;
	int err = 0;
	for (size_t i = 0; i < rp->n && !err; i++) {
		if (atomic_load_explicit(&x->abort, memory_order_relaxed))
			return 0;
		const pt_op *o = &rp->ops[i];
		if (pt_kind_is_comm(o->kind)) {
			size_t end = i;
			while (end < rp->n && pt_kind_is_comm(rp->ops[end].kind) && rp->ops[end].batch == o->batch)
				end++;
			for (size_t j = i; j < end && !err; j++)
				if (!xr->posted[j])
					err = post(xr, j);
			for (size_t j = i; flush && j < end && !err; j++)
				err = wait_msg(xr, j);
			i = end - 1;
			continue;
		}
		if (!flush) /* overlap: the next batch's receives go out before this op */
			for (size_t j = i + 1; j < rp->n && pt_kind_is_comm(rp->ops[j].kind) && !err; j++)
				if (rp->ops[j].kind == PT_OP_RECV && !xr->posted[j])
					err = post(xr, j);
		for (int k = 0; k < 2 && !err; k++)
			if (xr->need[i * 2 + k] >= 0)
				err = wait_msg(xr, (size_t)xr->need[i * 2 + k]);
		if (err)
			break;
		if (x->device) {
			err = x->ops->op_begin ? x->ops->op_begin(x->be, xr->r, (int)i, o) : 0;
			if (!err)
				err = compute(xr, o);
			if (!err && x->ops->op_end)
				err = x->ops->op_end(x->be, xr->r, (int)i, o);
			atomic_fetch_add_explicit(&x->done_ops, 1, memory_order_relaxed);
			continue;
		}
		int64_t t0 = pt_exec_now(rec);
		if (tb)
			pt_begin(tb, xr->r, PT_STREAM_MAIN, (int32_t)i, o);
		err = compute(xr, o);
		if (tb)
			pt_end(tb, xr->r, PT_STREAM_MAIN);
		xr->dur[i] = pt_exec_now(rec) - t0;
		atomic_fetch_add_explicit(&x->done_ops, 1, memory_order_relaxed);
	}
	/* every message finishes within the step, sends included */
	for (size_t j = 0; j < rp->n && !err; j++)
		if (pt_kind_is_comm(rp->ops[j].kind)) {
			if (!xr->posted[j])
				err = pt_logerr(PT_EPLAN, "rank %d: step %zu was never posted", xr->r, j);
			else
				err = wait_msg(xr, j);
		}
	for (size_t j = 0; tb && !x->device && j < rp->n && !err; j++) {
		if (!pt_kind_is_comm(rp->ops[j].kind))
			continue;
		const pt_msg *m = &xr->msg[j];
		pt_event ev;
		memset(&ev, 0, sizeof ev);
		ev.rank = xr->r;
		ev.step = (int32_t)j;
		ev.stream = PT_STREAM_P2P;
		ev.device = -1;
		ev.op = rp->ops[j];
		ev.posted_ns = m->posted;
		ev.start_ns = m->start;
		ev.end_ns = m->end;
		pt_emit_ticks(tb, &ev);
	}
	return err;
}

static void *rank_main(void *arg)
{
	struct xrank *xr = arg;
	struct pt_exec *x = xr->x;
	pt_tbuf *tb = NULL;
	int err = 0;
	if (x->o->rec && !x->device && !(tb = pt_rec_thread(x->o->rec)))
		err = PT_ENOMEM;
	pthread_mutex_lock(&x->mu);
	x->ready++;
	pthread_cond_signal(&x->cv);
	while (!x->go)
		pthread_cond_wait(&x->gate, &x->mu);
	pthread_mutex_unlock(&x->mu);
	if (!err && !atomic_load(&x->abort))
		err = run_rank(xr, tb);
	xr->end_mono = mono_ns();
	if (err)
		fail(x, err);
	pthread_mutex_lock(&x->mu);
	if (++x->finished == x->started)
		x->cpu_end = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

/* ------------------------------------------------------------- the step */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Median duration (ns) of each compute op kind over all ranks. */
static int medians(struct pt_exec *x, double ns_per_tick, pt_cost *out)
{
	size_t total = 0;
	for (int r = 0; r < x->plan->ranks; r++)
		total += x->rk[r].rp->n;
	int64_t *v = malloc((total ? total : 1) * sizeof *v);
	if (!v)
		return PT_ENOMEM;
	memset(out, 0, sizeof *out);
	static const int kinds[] = {PT_OP_F, PT_OP_B, PT_OP_I, PT_OP_W, PT_OP_FB};
	int64_t *dst[] = {&out->f, &out->b, &out->i, &out->w, &out->fb};
	for (int k = 0; k < 5; k++) {
		size_t n = 0;
		for (int r = 0; r < x->plan->ranks; r++) {
			const struct xrank *xr = &x->rk[r];
			if (!x->local[r])
				continue;
			for (size_t i = 0; i < xr->rp->n; i++)
				if (xr->rp->ops[i].kind == kinds[k])
					v[n++] = xr->dur[i];
		}
		if (!n)
			continue;
		qsort(v, n, sizeof *v, cmp_i64);
		*dst[k] = (int64_t)((double)v[n / 2] * ns_per_tick + 0.5);
	}
	free(v);
	return 0;
}

static void reset_rank(struct xrank *xr)
{
	const pt_plan *p = xr->x->plan;
	memset(xr->posted, 0, xr->rp->n);
	memset(xr->tab, 0, (size_t)p->chunks * (size_t)xr->x->maxmb * sizeof *xr->tab);
	/* every slot back in the pool (a failed step may have left some out) */
	xr->free = NULL;
	for (int i = xr->nall - 1; i >= 0; i--) {
		atomic_store(&xr->all[i]->sends, 0);
		xr->all[i]->next = xr->free;
		xr->free = xr->all[i];
	}
	xr->wn = 0;
	xr->grown = 0;
	xr->w_seen = 0;
}

/* A device backend's step: every interval from the backend, in
 * CLOCK_MONOTONIC ns, recorded now on the calling thread. */
static int device_results(struct pt_exec *x, const pt_exec_step_opts *o, pt_exec_result *res)
{
	const pt_plan *p = x->plan;
	pt_tbuf *tb = o->rec ? pt_rec_thread(o->rec) : NULL;
	if (o->rec && !tb)
		return PT_ENOMEM;
	const int64_t origin = o->rec ? pt_rec_origin(o->rec) : 0;
	int64_t first = INT64_MAX, last = INT64_MIN;
	for (int r = 0; r < p->ranks; r++) {
		struct xrank *xr = &x->rk[r];
		if (!x->local[r])
			continue;
		res->slots += xr->nall;
		res->slots_grown += xr->grown;
		for (size_t i = 0; i < xr->rp->n; i++) {
			const pt_op *op = &xr->rp->ops[i];
			pt_event ev;
			memset(&ev, 0, sizeof ev);
			ev.rank = r;
			ev.step = (int32_t)i;
			ev.device = -1;
			ev.op = *op;
			if (pt_kind_is_comm(op->kind)) {
				const pt_msg *m = &xr->msg[i];
				ev.stream = PT_STREAM_P2P;
				ev.posted_ns = m->posted - origin;
				ev.start_ns = m->start - origin;
				ev.end_ns = m->end - origin;
			} else {
				int64_t s = 0, e = 0;
				int err = x->ops->op_time(x->be, r, (int)i, &s, &e);
				if (err)
					return err;
				xr->dur[i] = e - s;
				ev.stream = PT_STREAM_MAIN;
				ev.posted_ns = ev.start_ns = s - origin;
				ev.end_ns = e - origin;
			}
			if (ev.start_ns + origin < first)
				first = ev.start_ns + origin;
			if (ev.end_ns + origin > last)
				last = ev.end_ns + origin;
			if (tb)
				pt_emit(tb, &ev);
		}
	}
	res->step_ns = last > first ? last - first : 0;
	res->cpu_ns = 0;
	size_t total = pt_plan_count(p, 0);
	if (o->progress)
		o->progress(o->progress_ctx, total, total);
	res->events = o->rec ? pt_plan_count(p, 0) + pt_plan_count(p, 1) : 0;
	return medians(x, 1.0, &res->median);
}

int pt_exec_step(pt_exec *x, const pt_exec_step_opts *o, pt_exec_result *res)
{
	const pt_plan *p = x->plan;
	const int P = p->ranks;
	int err = 0, started = 0;
	memset(res, 0, sizeof *res);
	x->o = o;
	x->ready = x->go = x->finished = 0;
	x->err = 0;
	atomic_store(&x->abort, 0);
	atomic_store(&x->done_ops, 0);
	size_t total = pt_plan_count(p, 0);
	for (int r = 0; r < P; r++)
		reset_rank(&x->rk[r]);
	for (int r = 0; r < P && o->rec && !err; r++) {
		if (!x->local[r])
			continue;
		err = pt_rec_stream(o->rec, r, PT_STREAM_MAIN, PT_STREAM_COMPUTE, "compute");
		if (!err)
			err = pt_rec_stream(o->rec, r, PT_STREAM_P2P, PT_STREAM_COMM, "p2p");
	}
	if (err)
		return err;
	if ((err = x->ops->step_begin(x->be, o->rec)))
		return err;
	int *run = malloc((size_t)P * sizeof *run), nrun = 0;
	if (!run) {
		x->ops->step_end(x->be);
		return PT_ENOMEM;
	}
	for (int r = 0; r < P; r++)
		if (x->local[r])
			run[nrun++] = r;
	for (; started < nrun; started++) {
		if (pthread_create(&x->rk[run[started]].th, NULL, rank_main, &x->rk[run[started]]) != 0) {
			err = pt_logerr(PT_ENOMEM, "cannot start the thread of rank %d", run[started]);
			fail(x, err);
			break;
		}
	}
	/* every thread has its recording buffer before the clock starts */
	pthread_mutex_lock(&x->mu);
	while (x->ready < started)
		pthread_cond_wait(&x->cv, &x->mu);
	int64_t t0 = mono_ns(), t0_tick = pt_exec_now(o->rec), c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	x->started = started;
	x->go = 1;
	pthread_cond_broadcast(&x->gate);
	while (x->finished < started) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&x->cv, &x->mu, &until);
		if (o->progress && x->finished < started) {
			pthread_mutex_unlock(&x->mu);
			o->progress(o->progress_ctx, atomic_load(&x->done_ops), total);
			pthread_mutex_lock(&x->mu);
		}
	}
	pthread_mutex_unlock(&x->mu);
	for (int r = 0; r < started; r++)
		pthread_join(x->rk[run[r]].th, NULL);
	free(run);
	x->ops->step_end(x->be);
	if (!err)
		err = x->err;
	if (err)
		return err;
	int64_t end = t0, t1_tick = pt_exec_now(o->rec), t1 = mono_ns();
	if (x->device)
		return device_results(x, o, res);
	for (int r = 0; r < P; r++) {
		if (!x->local[r])
			continue;
		if (x->rk[r].end_mono > end)
			end = x->rk[r].end_mono;
		res->slots += x->rk[r].nall;
		res->slots_grown += x->rk[r].grown;
	}
	res->step_ns = end - t0;
	res->cpu_ns = x->cpu_end - c0;
	double ns_per_tick = t1_tick > t0_tick ? (double)(t1 - t0) / (double)(t1_tick - t0_tick) : 1.0;
	if (!o->rec)
		ns_per_tick = 1.0;
	if (o->progress)
		o->progress(o->progress_ctx, total, total);
	res->events = o->rec ? pt_plan_count(p, 0) + pt_plan_count(p, 1) : 0;
	return medians(x, ns_per_tick, &res->median);
}

/* ------------------------------------------------------------ lifetime */

int pt_exec_create(const pt_plan *plan, const pt_exec_ops *ops, void *be, pt_exec **out)
{
	return pt_exec_create_local(plan, ops, be, NULL, out);
}

int pt_exec_create_local(const pt_plan *plan, const pt_exec_ops *ops, void *be, const uint8_t *local,
			 pt_exec **out)
{
	*out = NULL;
	pt_exec *x = calloc(1, sizeof *x);
	if (!x)
		return PT_ENOMEM;
	x->plan = plan;
	x->ops = ops;
	x->be = be;
	x->device = ops->op_time != NULL;
	if (!(x->local = malloc(plan->ranks > 0 ? (size_t)plan->ranks : 1))) {
		free(x);
		return PT_ENOMEM;
	}
	for (int r = 0; r < plan->ranks; r++)
		x->local[r] = local ? local[r] != 0 : 1;
	x->maxmb = maxmb(plan) > 0 ? maxmb(plan) : 1;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	pthread_cond_init(&x->gate, NULL);
	int err = 0;
	x->rk = calloc((size_t)plan->ranks, sizeof *x->rk);
	if (!x->rk) {
		err = PT_ENOMEM;
		goto fail;
	}
	const size_t nslots = (size_t)plan->chunks * (size_t)x->maxmb;
	for (int r = 0; r < plan->ranks && !err; r++) {
		struct xrank *xr = &x->rk[r];
		xr->x = x;
		xr->r = r;
		xr->rp = &plan->rank[r];
		size_t n = xr->rp->n ? xr->rp->n : 1;
		xr->need = malloc(2 * n * sizeof *xr->need);
		xr->msg = calloc(n, sizeof *xr->msg);
		xr->posted = calloc(n, 1);
		xr->dur = calloc(n, sizeof *xr->dur);
		xr->tab = calloc(nslots, sizeof *xr->tab);
		xr->nsend = calloc(nslots, 1);
		for (size_t i = 0; i < xr->rp->n; i++)
			xr->wcap += xr->rp->ops[i].kind == PT_OP_I;
		xr->wq = malloc((size_t)(xr->wcap ? xr->wcap : 1) * sizeof *xr->wq);
		if (!xr->need || !xr->msg || !xr->posted || !xr->dur || !xr->tab || !xr->nsend || !xr->wq) {
			err = PT_ENOMEM;
			break;
		}
		if ((err = pt_plan_inputs(plan, r, xr->need)))
			break;
		if (!x->local[r])
			continue; /* another process runs it: no pool */
		int peak = walk_peak(plan, r, xr->nsend);
		if (peak < 0) {
			err = peak;
			break;
		}
		xr->pool = peak;
		for (int k = 0; k < peak && !err; k++) {
			struct xslot *s;
			if (!(err = slot_new(xr, &s))) {
				s->next = xr->free;
				xr->free = s;
			}
		}
	}
	if (err)
		goto fail;
	*out = x;
	return 0;
fail:
	pt_exec_destroy(x);
	return err;
}

void pt_exec_destroy(pt_exec *x)
{
	if (!x)
		return;
	for (int r = 0; x->rk && r < x->plan->ranks; r++) {
		struct xrank *xr = &x->rk[r];
		for (int i = 0; i < xr->nall; i++) {
			x->ops->slot_destroy(x->be, xr->all[i]->mem);
			free(xr->all[i]);
		}
		free(xr->all);
		free(xr->need);
		free(xr->msg);
		free(xr->posted);
		free(xr->dur);
		free(xr->tab);
		free(xr->nsend);
		free(xr->wq);
	}
	free(x->rk);
	free(x->local);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	pthread_cond_destroy(&x->gate);
	free(x);
}
