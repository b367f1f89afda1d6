/*
 * exporters/export_feed.c — reads an export's events on a thread of its own,
 * so that SQLite's work (about 0.7 µs a row, more than half of an export)
 * overlaps the formatting and writing on a second core. The thread walks one
 * cursor and fills batches of events in a small ring (8 x 1024 events, 1 MB);
 * the export takes them in order. It does not interpret events.
 */
#include <pthread.h>
#include <stdlib.h>

#include "export_internal.h"

#define BATCH  1024
#define NBATCH 8

struct pt_feed {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pt_cursor *c;
	pt_event *ev;	     /* NBATCH * BATCH */
	int count[NBATCH];   /* events in each filled batch */
	unsigned head, tail; /* batches filled, batches released (both only grow) */
	int done, err, stop, started;
};

static void *feed_main(void *arg)
{
	pt_feed *f = arg;
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

int pt_feed_start(pt_trace *t, const pt_query *q, pt_feed **out)
{
	*out = NULL;
	pt_feed *f = calloc(1, sizeof *f);
	if (!f)
		return PT_ENOMEM;
	f->ev = malloc((size_t)NBATCH * BATCH * sizeof *f->ev);
	if (!f->ev) {
		free(f);
		return PT_ENOMEM;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	(void)pt_trace_string(t, 1); /* load the strings now: the thread will own the connection */
	int err = pt_cursor_open(t, q, &f->c);
	if (!err && pthread_create(&f->thread, NULL, feed_main, f) != 0)
		err = PT_ENOMEM;
	f->started = !err;
	if (err) {
		pt_feed_stop(f);
		return err;
	}
	*out = f;
	return 0;
}

int pt_feed_next(pt_feed *f, const pt_event **ev, int *n)
{
	pthread_mutex_lock(&f->mu);
	while (f->head == f->tail && !f->done)
		pthread_cond_wait(&f->cv, &f->mu);
	int rc = 1;
	if (f->head == f->tail) {
		rc = f->err;
	} else {
		unsigned slot = f->tail % NBATCH;
		*ev = f->ev + (size_t)slot * BATCH;
		*n = f->count[slot];
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void pt_feed_release(pt_feed *f)
{
	pthread_mutex_lock(&f->mu);
	f->tail++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void pt_feed_stop(pt_feed *f)
{
	if (!f)
		return;
	if (f->started) {
		pthread_mutex_lock(&f->mu);
		f->stop = 1;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
	}
	pt_cursor_close(f->c);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f->ev);
	free(f);
}
