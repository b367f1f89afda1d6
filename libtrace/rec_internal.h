/*
 * libtrace/rec_internal.h — what the recorder's three files share: the
 * thread buffers (tbuf.c, the producers' side), the writer (writer.c: rows,
 * SQL, the writer thread, interned strings) and the recording's lifecycle
 * (rec.c: create, describe, close). Private to libtrace.
 */
#ifndef PT_REC_INTERNAL_H
#define PT_REC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "internal.h"

#define ROWS_PER_INSERT 32	     /* rows per multi-row INSERT (measured best) */
#define ROWS_PER_COMMIT (1 << 20) /* bounded transaction size */
#define MAX_OPEN 64		     /* nesting depth of pt_begin per thread */

struct chunk {
	_Atomic uint32_t full; /* 0: the producer's, 1: the writer's */
	uint32_t count;
	pt_event *ev;
};

struct pt_tbuf {
	/* producer side, touched on every event; first, as trace.h's inline
	 * hot path reads it */
	struct pt_tbuf_hot_ hot;
	uint32_t cur;
	struct chunk *chunks;
	uint32_t nchunks;
	uint64_t stalls;
	/* writer side */
	uint32_t wnext, wready;
	int nopen;
	pt_event open[MAX_OPEN];
	/* registry */
	pt_rec *rec;
	pthread_t owner;
	struct pt_tbuf *next;
};

#define NTBL PT_NTABLES

#define MAXCOLS 14

/* A row as bound: its column values, converted once, and which are NULL. */
struct row {
	int64_t v[MAXCOLS];
	uint32_t nulls;
};

struct stage {
	sqlite3_stmt *one, *many;
	int n;
	struct row rows[ROWS_PER_INSERT];
};

struct pt_rec {
	char *path, *tmp;
	sqlite3 *db;
	pthread_mutex_t db_lock; /* one user of db at a time */
	pthread_mutex_t reg_lock;
	pt_tbuf *tbufs;
	pthread_t writer;
	int writer_started;
	atomic_int stop;
	/* waking an idle writer: it sets `sleeping`, then looks for full
	 * chunks once more; a producer marks a chunk full, then signals if it
	 * sees `sleeping` (seq_cst both ways, so one of them sees the other) */
	pthread_mutex_t wake_mu;
	pthread_cond_t wake_cv;
	atomic_int sleeping;
	int wake_pending;
	enum pt_clock clock;
	int tsc;
	int64_t t0_mono; /* CLOCK_MONOTONIC at trace time 0 */
	int64_t t0_tick;
	pt_tickmap tm;
	struct stage stage[NTBL];
	uint64_t rows, rows_uncommitted, unclosed, unmatched;
	int64_t insert_ns; /* time spent inserting rows (the writer's throughput) */
	/* interned strings: open addressing, ids from 1 */
	pthread_mutex_t str_lock;
	struct str_slot {
		uint64_t hash;
		uint32_t id;
		char *s;
	} *strs;
	uint32_t nstrs, capstrs;
	sqlite3_stmt *ins_str;
	int err; /* first writer failure */
	uint32_t chunk_events, nchunks;
};

/* writer.c */
int sql_exec(pt_rec *r, const char *sql);
int prepare_insert(pt_rec *r, const char *table, const char *cols, int ncols, int nrows, sqlite3_stmt **out);
int prepare_inserts(pt_rec *r);
int flush_stage(pt_rec *r, int tbl);
int drain(pt_rec *r);
int drain_all(pt_rec *r);
void *writer_main(void *arg);
/* Wake the writer if it naps (a chunk was handed over, or it must stop). */
void pt_writer_wake(pt_rec *r);
void strings_free(pt_rec *r);

/* tbuf.c */
void tbuf_free(pt_tbuf *b);
void tbuf_forget(pt_rec *r); /* drop the calling thread's cached buffer of r */

#endif
