/*
 * exporters/export_internal.h — private to the export driver (export.c): a
 * cursor read on a thread of its own, delivered in batches (export_feed.c),
 * and a small hash map (export_map.c). Not installed.
 */
#ifndef PT_EXPORT_INTERNAL_H
#define PT_EXPORT_INTERNAL_H

#include "pipetrace/trace.h"

typedef struct pt_feed pt_feed;

/*
 * Open a cursor over q and start reading it on a new thread. From then until
 * pt_feed_stop the thread owns t's database connection: the caller may use
 * only what pt_trace_open loaded (ranks, streams, meta) and the strings,
 * which this loads first; no cursor, count or plan. PT_ENOMEM or the
 * cursor's error.
 */
int pt_feed_start(pt_trace *t, const pt_query *q, pt_feed **out);

/* The next batch of events, in the cursor's order: 1 and *ev, *n set (the
 * batch stays valid until pt_feed_release), 0 at the end, or the reader's
 * PT_E* error. */
int pt_feed_next(pt_feed *f, const pt_event **ev, int *n);
void pt_feed_release(pt_feed *f);

/* Stop the thread (also mid-way), close the cursor, free. NULL is a no-op. */
void pt_feed_stop(pt_feed *f);

/* uint64 keys (never ~0) to ints; zero-initialise, then put/get; free. */
struct pt_map {
	uint64_t *key;
	int *val;
	size_t n, cap; /* cap: a power of two */
};
/* The value of key, or -1. */
int pt_map_get(const struct pt_map *m, uint64_t key);
/* Add key (not there yet) with val; PT_ENOMEM. */
int pt_map_put(struct pt_map *m, uint64_t key, int val);
void pt_map_free(struct pt_map *m);

#endif
