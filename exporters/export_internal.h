/*
 * exporters/export_internal.h — private to the export driver (export.c): a
 * cursor read on threads of their own, delivered in order (export_feed.c),
 * a small hash map (export_map.c), and flow ids and the pairing of message
 * flows (export_flows.c). Not installed.
 */
#ifndef PT_EXPORT_INTERNAL_H
#define PT_EXPORT_INTERNAL_H

#include "pipetrace/trace.h"

typedef struct pt_feed pt_feed;

/*
 * Start reading q's events on two threads that split its ranks (one thread
 * for a single rank), the first on t's connection, the second on a
 * connection of its own. From then until pt_feed_stop the threads own t's
 * database connection: the caller may use only what pt_trace_open loaded
 * (ranks, streams, meta) and the strings, which this loads first; no cursor,
 * count or plan. PT_ENOMEM, or the error of opening the second connection or
 * a cursor.
 */
int pt_feed_start(pt_trace *t, const pt_query *q, pt_feed **out);

/* The next event in a cursor's order over q: 1 and *ev set (valid until the
 * next call), 0 at the end, or a reader's PT_E* error. */
int pt_feed_next(pt_feed *f, const pt_event **ev);

/* Stop the threads (also mid-way), close their cursors, free. NULL is a no-op. */
void pt_feed_stop(pt_feed *f);

/* uint64 keys (never ~0) to int64 values; zero-initialise, then
 * put/get/find/del; free. */
struct pt_map {
	uint64_t *key;
	int64_t *val;
	size_t n, cap; /* cap: a power of two */
};
/* The value of key, or -1 (for maps whose values are never negative). */
int pt_map_get(const struct pt_map *m, uint64_t key);
/* 1 and *val set when key is there, else 0. */
int pt_map_find(const struct pt_map *m, uint64_t key, int64_t *val);
/* Add key (not there yet) with val; PT_ENOMEM. */
int pt_map_put(struct pt_map *m, uint64_t key, int64_t val);
/* Remove key if it is there. */
void pt_map_del(struct pt_map *m, uint64_t key);
void pt_map_free(struct pt_map *m);

/* Flow ids: the type (enum pt_flow_type) in the top 2 bits. A message's
 * names its sender, receiver and sequence number; a launch's its rank and
 * correlation id. */
uint64_t pt_flow_id(int type, uint64_t v);
uint64_t pt_flow_message(int32_t from, int32_t to, int32_t seq);
uint64_t pt_flow_launch(int32_t rank, int64_t corr);

/* Message flows whose ends may not meet in time order (export_flows.c says
 * why): zero-initialise; events in time order; free. */
struct pt_msg_flows {
	struct pt_map sent;    /* flow -> its SEND's start, until its RECV takes it */
	struct pt_map orphans; /* RECVs that ended before their SEND began */
	int64_t lost;	       /* arrows that cannot be drawn */
};
/* A SEND began: 1 when its flow begins here, 0 when its RECV has already
 * ended (no arrow: counted in lost), or PT_ENOMEM. */
int pt_msg_flows_send(struct pt_msg_flows *m, uint64_t id, int64_t start);
/* A RECV began: 1 when its flow ends here, 0 when its SEND has not begun
 * (call pt_msg_flows_late at the RECV's end). */
int pt_msg_flows_recv(struct pt_msg_flows *m, uint64_t id);
/* Such a RECV ends: 1 and *since = its SEND's start when the flow ends
 * here, 0 when the SEND has not begun (no arrow), or PT_ENOMEM. */
int pt_msg_flows_late(struct pt_msg_flows *m, uint64_t id, int64_t *since);
void pt_msg_flows_free(struct pt_msg_flows *m);

#endif
