/*
 * runner/chan.c — point-to-point channels between the rank threads of one
 * process, the cpu backend's transport.
 *
 * Each directed pair of ranks (a -> b) is one link with two queues: the
 * sends a has posted to b and the receives b has posted from a, each in
 * posting order; the k-th send matches the k-th receive, whatever their
 * labels, as NCCL matches them. A communication thread per rank progresses
 * the links that leave it, so copies run beside compute: once a send is
 * posted and the link's earlier transfers are done, the thread copies its
 * data straight into the matching receive's buffer when that receive is
 * posted, or else into a staging buffer from which it is copied when the
 * receive comes. A send therefore never waits for its receiver (the sim's
 * rule: a receive waits for its send, a send waits for no one), and a plan
 * the validator accepts cannot deadlock here. A message's start/end is the
 * copy out of the sender's buffer (SEND) or into the receiver's (RECV), so
 * both ends share one interval unless the data was staged. This file does
 * not decide when messages are posted or waited for (exec.c does).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "libtrace/grow.h"

struct link {
	int to;
	pt_msg **send, **recv; /* posted, in order */
	void **staged;	       /* [k]: transfer k's data when its receive was late */
	int nsend, nrecv;      /* capacity: what the plan holds */
	int sposted, rposted;  /* posted so far */
	int moved, received;   /* transfers done, receives completed */
};

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

struct crank {
	struct pt_chan *c;
	int r;
	pthread_mutex_t mu; /* guards the links leaving r */
	pthread_cond_t cv;  /* work for r's communication thread */
	struct link *out;
	int nout;
	int stop;
	void **pool; /* free staging buffers */
	int npool;
	size_t cpool;
	pthread_t th;
	int running;
};

struct pt_chan {
	int ranks;
	size_t bytes;
	struct crank *cr;
	struct waiter *w; /* [rank]: where rank threads wait */
	const pt_rec *rec;
	atomic_int abort;
	atomic_int staged_max; /* staging buffers alive at once, at most, over all ranks */
	atomic_int staged_now;
};

static struct link *link_of(struct pt_chan *c, int a, int b)
{
	if (a < 0 || a >= c->ranks)
		return NULL;
	struct crank *cr = &c->cr[a];
	for (int i = 0; i < cr->nout; i++)
		if (cr->out[i].to == b)
			return &cr->out[i];
	return NULL;
}

static struct link *link_add(struct crank *cr, int b)
{
	for (int i = 0; i < cr->nout; i++)
		if (cr->out[i].to == b)
			return &cr->out[i];
	struct link *v = realloc(cr->out, (size_t)(cr->nout + 1) * sizeof *v);
	if (!v)
		return NULL;
	cr->out = v;
	memset(&v[cr->nout], 0, sizeof *v);
	v[cr->nout].to = b;
	return &v[cr->nout++];
}

/* Mark m done and wake its rank. */
static void complete(struct pt_chan *c, pt_msg *m)
{
	if (m->pending)
		atomic_fetch_sub_explicit(m->pending, 1, memory_order_release);
	struct waiter *w = &c->w[m->rank];
	pthread_mutex_lock(&w->mu);
	atomic_store_explicit(&m->done, 1, memory_order_release);
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void *staging_get(struct crank *cr)
{
	struct pt_chan *c = cr->c;
	int now = atomic_fetch_add(&c->staged_now, 1) + 1;
	int max = atomic_load(&c->staged_max);
	while (now > max && !atomic_compare_exchange_weak(&c->staged_max, &max, now))
		;
	if (cr->npool)
		return cr->pool[--cr->npool];
	return malloc(c->bytes ? c->bytes : 1);
}

static int staging_put(struct crank *cr, void *buf)
{
	atomic_fetch_sub(&cr->c->staged_now, 1);
	if (pt_grow(&cr->pool, &cr->cpool, (size_t)cr->npool + 1, sizeof *cr->pool)) {
		free(buf);
		return 0;
	}
	cr->pool[cr->npool++] = buf;
	return 0;
}

/* One unit of progress on link l, with cr->mu held (dropped around copies;
 * only this thread moves the link's counters). Staged data is delivered
 * first, so a receive is never completed out of order. Returns 1 when
 * something moved, -1 when a staging buffer could not be had. */
static int progress(struct crank *cr, struct link *l)
{
	struct pt_chan *c = cr->c;
	if (l->received < l->rposted && l->received < l->moved) { /* staged, now wanted */
		int k = l->received;
		pt_msg *r = l->recv[k];
		void *stage = l->staged[k];
		pthread_mutex_unlock(&cr->mu);
		int64_t t0 = pt_exec_now(c->rec);
		memcpy(r->buf, stage, c->bytes);
		int64_t t1 = pt_exec_now(c->rec);
		pthread_mutex_lock(&cr->mu);
		l->staged[k] = NULL;
		staging_put(cr, stage);
		r->start = t0;
		r->end = t1;
		l->received++;
		complete(c, r);
		return 1;
	}
	if (l->moved < l->sposted) {
		int k = l->moved;
		pt_msg *s = l->send[k], *r = k < l->rposted && k == l->received ? l->recv[k] : NULL;
		void *stage = r ? NULL : staging_get(cr);
		if (!r && !stage)
			return -1;
		pthread_mutex_unlock(&cr->mu);
		int64_t t0 = pt_exec_now(c->rec);
		memcpy(r ? r->buf : stage, s->buf, c->bytes);
		int64_t t1 = pt_exec_now(c->rec);
		pthread_mutex_lock(&cr->mu);
		s->start = t0;
		s->end = t1;
		l->moved++;
		if (r) {
			r->start = t0;
			r->end = t1;
			l->received++;
			complete(c, r);
		} else {
			l->staged[k] = stage;
		}
		complete(c, s);
		return 1;
	}
	return 0;
}

static void *comm_main(void *arg)
{
	struct crank *cr = arg;
	pthread_mutex_lock(&cr->mu);
	while (!cr->stop) {
		int moved = 0;
		for (int i = 0; i < cr->nout; i++) {
			int p = progress(cr, &cr->out[i]);
			if (p < 0) {
				pt_log(PT_LOG_ERROR, "rank %d: out of memory for a %zu-byte staging buffer", cr->r,
				       cr->c->bytes);
				pthread_mutex_unlock(&cr->mu);
				pt_chan_abort(cr->c);
				pthread_mutex_lock(&cr->mu);
				cr->stop = 1;
				break;
			}
			moved |= p;
		}
		if (!moved && !cr->stop)
			pthread_cond_wait(&cr->cv, &cr->mu);
	}
	pthread_mutex_unlock(&cr->mu);
	return NULL;
}

int pt_chan_post(pt_chan *c, pt_msg *m)
{
	int send = m->op->kind == PT_OP_SEND;
	int a = send ? m->rank : m->op->peer, b = send ? m->op->peer : m->rank;
	struct link *l = link_of(c, a, b);
	if (!l)
		return pt_logerr(PT_EPLAN, "rank %d: no link between ranks %d and %d", m->rank, a, b);
	struct crank *cr = &c->cr[a];
	int err = 0;
	pthread_mutex_lock(&cr->mu);
	if (send && l->sposted < l->nsend)
		l->send[l->sposted++] = m;
	else if (!send && l->rposted < l->nrecv)
		l->recv[l->rposted++] = m;
	else
		err = PT_EPLAN;
	pthread_cond_signal(&cr->cv);
	pthread_mutex_unlock(&cr->mu);
	if (err)
		return pt_logerr(err, "rank %d: more messages on link %d->%d than the plan has", m->rank, a, b);
	return 0;
}

int pt_chan_wait(pt_chan *c, pt_msg *m)
{
	struct waiter *w = &c->w[m->rank];
	int aborted = 0;
	pthread_mutex_lock(&w->mu);
	while (!atomic_load_explicit(&m->done, memory_order_acquire) && !(aborted = atomic_load(&c->abort)))
		pthread_cond_wait(&w->cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
	return aborted ? PT_EINVAL : 0;
}

void pt_chan_abort(pt_chan *c)
{
	atomic_store(&c->abort, 1);
	for (int r = 0; r < c->ranks; r++) {
		pthread_mutex_lock(&c->w[r].mu);
		pthread_cond_broadcast(&c->w[r].cv);
		pthread_mutex_unlock(&c->w[r].mu);
	}
}

int pt_chan_start(pt_chan *c, const pt_rec *rec)
{
	c->rec = rec;
	atomic_store(&c->abort, 0);
	atomic_store(&c->staged_now, 0);
	int err = 0;
	for (int a = 0; a < c->ranks; a++) {
		struct crank *cr = &c->cr[a];
		for (int i = 0; i < cr->nout; i++) {
			struct link *l = &cr->out[i];
			for (int k = 0; k < l->nsend; k++)
				if (l->staged[k]) { /* left by an aborted step */
					staging_put(cr, l->staged[k]);
					l->staged[k] = NULL;
				}
			l->sposted = l->rposted = l->moved = l->received = 0;
		}
		cr->stop = 0;
	}
	atomic_store(&c->staged_now, 0);
	for (int a = 0; a < c->ranks && !err; a++) {
		if (pthread_create(&c->cr[a].th, NULL, comm_main, &c->cr[a]) != 0)
			err = pt_logerr(PT_ENOMEM, "cannot start the communication thread of rank %d", a);
		else
			c->cr[a].running = 1;
	}
	if (err)
		pt_chan_stop(c);
	return err;
}

void pt_chan_stop(pt_chan *c)
{
	for (int a = 0; a < c->ranks; a++) {
		struct crank *cr = &c->cr[a];
		if (!cr->running)
			continue;
		pthread_mutex_lock(&cr->mu);
		cr->stop = 1;
		pthread_cond_signal(&cr->cv);
		pthread_mutex_unlock(&cr->mu);
		pthread_join(cr->th, NULL);
		cr->running = 0;
	}
}

int pt_chan_staged_max(const pt_chan *c) { return atomic_load(&((pt_chan *)c)->staged_max); }

int pt_chan_create(const pt_plan *p, size_t bytes, pt_chan **out)
{
	*out = NULL;
	pt_chan *c = calloc(1, sizeof *c);
	if (!c)
		return PT_ENOMEM;
	c->ranks = p->ranks;
	c->bytes = bytes;
	c->cr = calloc((size_t)p->ranks, sizeof *c->cr);
	c->w = calloc((size_t)p->ranks, sizeof *c->w);
	int err = 0;
	if (!c->cr || !c->w) {
		free(c->cr);
		free(c->w);
		free(c);
		return PT_ENOMEM;
	}
	for (int r = 0; r < p->ranks; r++) {
		c->cr[r].c = c;
		c->cr[r].r = r;
		pthread_mutex_init(&c->cr[r].mu, NULL);
		pthread_cond_init(&c->cr[r].cv, NULL);
		pthread_mutex_init(&c->w[r].mu, NULL);
		pthread_cond_init(&c->w[r].cv, NULL);
	}
	/* count each link's sends (at the sender) and receives (at the receiver) */
	for (int r = 0; r < p->ranks && !err; r++) {
		for (size_t i = 0; i < p->rank[r].n && !err; i++) {
			const pt_op *o = &p->rank[r].ops[i];
			if (!pt_kind_is_comm(o->kind))
				continue;
			int send = o->kind == PT_OP_SEND;
			int a = send ? r : o->peer, b = send ? o->peer : r;
			if (a < 0 || a >= p->ranks || b < 0 || b >= p->ranks) {
				err = pt_logerr(PT_EPLAN, "rank %d step %zu: peer %d is not a rank", r, i, o->peer);
				break;
			}
			struct link *l = link_add(&c->cr[a], b);
			if (!l)
				err = PT_ENOMEM;
			else if (send)
				l->nsend++;
			else
				l->nrecv++;
		}
	}
	for (int a = 0; a < p->ranks && !err; a++) {
		for (int i = 0; i < c->cr[a].nout && !err; i++) {
			struct link *l = &c->cr[a].out[i];
			l->send = calloc((size_t)(l->nsend ? l->nsend : 1), sizeof *l->send);
			l->staged = calloc((size_t)(l->nsend ? l->nsend : 1), sizeof *l->staged);
			l->recv = calloc((size_t)(l->nrecv ? l->nrecv : 1), sizeof *l->recv);
			if (!l->send || !l->staged || !l->recv)
				err = PT_ENOMEM;
		}
	}
	if (err) {
		pt_chan_destroy(c);
		return err;
	}
	*out = c;
	return 0;
}

void pt_chan_destroy(pt_chan *c)
{
	if (!c)
		return;
	pt_chan_stop(c);
	for (int a = 0; a < c->ranks; a++) {
		struct crank *cr = &c->cr[a];
		for (int i = 0; i < cr->nout; i++) {
			struct link *l = &cr->out[i];
			for (int k = 0; l->staged && k < l->nsend; k++)
				free(l->staged[k]);
			free(l->send);
			free(l->recv);
			free(l->staged);
		}
		free(cr->out);
		for (int i = 0; i < cr->npool; i++)
			free(cr->pool[i]);
		free(cr->pool);
		pthread_mutex_destroy(&cr->mu);
		pthread_cond_destroy(&cr->cv);
		pthread_mutex_destroy(&c->w[a].mu);
		pthread_cond_destroy(&c->w[a].cv);
	}
	free(c->cr);
	free(c->w);
	free(c);
}
