/*
 * exporters/export_feed.c — reads an export's events on threads of their
 * own, so that SQLite's work (about 0.4-0.8 µs a row, more than half of an
 * export) overlaps the formatting and writing. Two readers split the ranks
 * (each its own database connection, SQLite connections being one thread's at
 * a time); each walks one cursor and fills batches of events in a small ring
 * (8 x 1024 events); the export takes their events one by one, merged back in
 * the cursor's order. It does not interpret events.
 */
#include <pthread.h>
#include <stdlib.h>

#include "export_internal.h"

#define BATCH	1024
#define NBATCH	8
#define READERS 2

struct reader {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pt_trace *t;   /* the connection it reads */
	pt_trace *own; /* the same when it is a second connection, or NULL for the caller's */
	pt_cursor *c;
	pt_event *ev;	     /* NBATCH * BATCH */
	int count[NBATCH];   /* events in each filled batch */
	unsigned head, tail; /* batches filled, batches released (both only grow) */
	int done, err, stop, started;
	/* the consumer's side: the batch being taken, and where in it */
	const pt_event *cur;
	int n, pos, held;
};

struct pt_feed {
	struct reader r[READERS];
	int nr;
	int32_t *ranks; /* the ranks each reader reads, one after the other */
};

static void *reader_main(void *arg)
{
	struct reader *f = arg;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (f->head - f->tail == NBATCH && !f->stop)
			pthread_cond_wait(&f->cv, &f->mu);
		unsigned slot = f->head % NBATCH;
		int stop = f->stop;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			break;
		int n = 0, got = 1;
		pt_event *b = f->ev + (size_t)slot * BATCH;
		while (n < BATCH && (got = pt_cursor_next(f->c, &b[n])) == 1)
			n++;
		pthread_mutex_lock(&f->mu);
		f->count[slot] = n;
		if (n)
			f->head++;
		if (got <= 0) {
			f->done = 1;
			f->err = got < 0 ? got : 0;
		}
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		if (got <= 0)
			break;
	}
	return NULL;
}

static void reader_stop(struct reader *f)
{
	if (f->started) {
		pthread_mutex_lock(&f->mu);
		f->stop = 1;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
	}
	pt_cursor_close(f->c);
	if (f->t && !f->own)
		pt_trace_set_cache_max(f->t, 32768); /* the caller's connection: its default again */
	pt_trace_close(f->own);
	free(f->ev);
}

/* Start reader f on q, over t or (own) a connection of its own to t's file. */
static int reader_start(struct reader *f, pt_trace *t, int own, const pt_query *q)
{
	f->ev = malloc((size_t)NBATCH * BATCH * sizeof *f->ev);
	if (!f->ev)
		return PT_ENOMEM;
	int err = own ? pt_trace_open(pt_trace_path(t), &f->own) : 0;
	if (!err) {
		f->t = own ? f->own : t;
		/* the readers share the page cache one connection would have */
		pt_trace_set_cache_max(f->t, 16384 / READERS);
		err = pt_cursor_open(f->t, q, &f->c);
	}
	if (err)
		return err;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	if (pthread_create(&f->thread, NULL, reader_main, f) != 0) {
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		return PT_ENOMEM;
	}
	f->started = 1;
	return 0;
}

int pt_feed_start(pt_trace *t, const pt_query *q, pt_feed **out)
{
	*out = NULL;
	pt_feed *f = calloc(1, sizeof *f);
	if (!f)
		return PT_ENOMEM;
	(void)pt_trace_string(t, 1); /* load the strings now: the thread will own the connection */
	/* The ranks, split in two halves of consecutive ranks: events of
	 * different ranks never tie in the merge. */
	int lo = 0, n = q->ranks ? q->nranks : q->rank >= 0 ? 1 : pt_trace_rank_range(t, &lo, NULL);
	int err = 0;
	if (n < READERS) {
		f->nr = 1;
		err = reader_start(&f->r[0], t, 0, q);
	} else {
		f->ranks = malloc((size_t)n * sizeof *f->ranks);
		if (!f->ranks) {
			free(f);
			return PT_ENOMEM;
		}
		for (int i = 0; i < n; i++)
			f->ranks[i] = q->ranks ? q->ranks[i] : lo + i;
		for (int k = 0, at = 0; k < READERS && !err; k++) {
			int m = (n - at) / (READERS - k);
			pt_query qk = *q;
			qk.rank = -1;
			qk.ranks = f->ranks + at;
			qk.nranks = m;
			at += m;
			f->nr++;
			err = reader_start(&f->r[k], t, k > 0, &qk);
		}
	}
	if (err) {
		pt_feed_stop(f);
		return err;
	}
	*out = f;
	return 0;
}

/* Make reader f's current batch one with events left: release the one used
 * up, wait for the next. 1 when there is one, 0 when f is done, or f's
 * error. */
static int refill(struct reader *f)
{
	if (f->pos < f->n)
		return 1;
	pthread_mutex_lock(&f->mu);
	if (f->held) {
		f->tail++;
		f->held = 0;
		pthread_cond_broadcast(&f->cv);
	}
	while (f->head == f->tail && !f->done)
		pthread_cond_wait(&f->cv, &f->mu);
	int rc = 1;
	if (f->head == f->tail) {
		rc = f->err;
		f->n = f->pos = 0;
	} else {
		unsigned slot = f->tail % NBATCH;
		f->cur = f->ev + (size_t)slot * BATCH;
		f->n = f->count[slot];
		f->pos = 0;
		f->held = 1;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int pt_feed_next(pt_feed *f, const pt_event **ev)
{
	int best = -1;
	for (int k = 0; k < f->nr; k++) {
		struct reader *r = &f->r[k];
		int got = refill(r);
		if (got < 0)
			return got;
		if (!got)
			continue;
		if (best < 0) {
			best = k;
			continue;
		}
		const pt_event *a = &r->cur[r->pos], *b = &f->r[best].cur[f->r[best].pos];
		if (a->start_ns < b->start_ns || (a->start_ns == b->start_ns && a->rank < b->rank))
			best = k;
	}
	if (best < 0)
		return 0;
	struct reader *r = &f->r[best];
	*ev = &r->cur[r->pos++];
	return 1;
}

void pt_feed_stop(pt_feed *f)
{
	if (!f)
		return;
	for (int k = 0; k < f->nr; k++)
		reader_stop(&f->r[k]);
	free(f->ranks);
	free(f);
}
