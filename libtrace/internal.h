/*
 * libtrace/internal.h — what libtrace's own files share and nobody else sees:
 * the schema text, the clock, and the layout of a hot-path record. Public
 * declarations live in include/pipetrace/trace.h only.
 */
#ifndef PT_LIBTRACE_INTERNAL_H
#define PT_LIBTRACE_INTERNAL_H

#include <sqlite3.h>
#include <stdint.h>

#include "pipetrace/trace.h"

/* --- schema (schema.c) --- */

/* The DDL of PT_SCHEMA_VERSION, run inside one transaction on a new file. */
extern const char pt_schema_sql[];
/* The staging tables ops and comms rows are recorded into (temp.ops_rows,
 * temp.comms_rows), and their sorted copy into the trace at the end. */
extern const char pt_stage_sql[];
extern const char pt_unstage_sql[];
/* Indexes, built once at the end of recording (bulk inserts go faster first). */
extern const char pt_index_sql[];

/* The event tables, in one order that rec.c and reader.c share. */
enum {
	PT_TBL_OPS,
	PT_TBL_COMMS,
	PT_TBL_KERNELS,
	PT_TBL_MEMCPY,
	PT_TBL_MEMSET,
	PT_TBL_SYNC,
	PT_TBL_RUNTIME,
	PT_TBL_RANGES,
	PT_NTABLES
};
struct pt_table {
	const char *name;
	unsigned source; /* enum pt_source bit */
};
extern const struct pt_table pt_tables[PT_NTABLES];
int pt_table_of_kind(int kind);

/*
 * Check the first 100 bytes of path: SQLite magic, and a file at least as long
 * as the page count its header declares (truncation). Logs and returns
 * PT_ENOENT, PT_ENOTDB, PT_ECORRUPT or PT_EIO; 0 when it looks whole.
 */
int pt_schema_check_file(const char *path);

/* Check an open connection: application_id, user_version and the tables the
 * reader needs. Logs with path and returns PT_EFOREIGN / PT_EVERSION /
 * PT_ECORRUPT. */
int pt_schema_check_db(sqlite3 *db, const char *path);

/* Map an SQLite result code to a PT_E* code. */
int pt_sqlite_err(int rc);

/* --- the open trace (reader.c), shared with its cursors (cursor.c) --- */

struct kv {
	char *key, *value;
};

struct pt_trace {
	char *path;
	sqlite3 *db;
	struct kv *meta;
	int nmeta;
	pt_rank_info *ranks;
	int nranks;
	int min_rank, max_rank; /* over ranks, ops and comms */
	struct stream {
		int rank;
		uint32_t stream;
		int role;
		char *name;
	} *streams;
	int nstreams;
	int has[PT_NTABLES]; /* the table has rows */
	int64_t page_size, cache_kib; /* the file's page size; the page cache asked for */
	int64_t cache_max_kib;	      /* the most cursors may grow it to */
	char **strings;	     /* [id], loaded on first use */
	uint32_t nstrings;
	int strings_loaded;
	int cursors; /* open cursors: while any is, one read transaction */
	sqlite3_stmt *plan_st; /* pt_trace_plan_read's, prepared on first use */
};

/* Times past 2^56 ns (over two years) are no run's: a row holding one is
 * damaged. Well below INT64_MAX, so that sums over thousands of ranks cannot
 * overflow. */
#define PT_TIME_MAX_ (INT64_C(1) << 56)
/* The highest rank a trace may hold (an import's limit too): a rank beyond,
 * or below 0, is damage; a cursor over all ranks walks them one by one. */
#define PT_RANK_MAX_ (1 << 20)

/* Log an SQLite failure on t's file ("<path>: <what>: <message>"); the PT_E* code. */
int pt_trace_fail_(pt_trace *t, int rc, const char *what);
/* The tables (enum pt_source bits) q reads, narrowed by its kinds. */
unsigned pt_query_sources_(const pt_query *q);
/* How many ranks q reads on t; the i-th is pt_query_rank_(q, *lo, i). */
int pt_query_nranks_(const pt_trace *t, const pt_query *q, int *lo);
int pt_query_rank_(const pt_query *q, int lo, int i);

/* Events a cursor's window holds (reader.c; 32768 = 3.4 MB). Tests shrink it
 * to walk many small windows; set it before opening cursors. */
extern size_t pt_cursor_cap_;

/* --- clock (clock.c) --- */

/* ns of CLOCK_MONOTONIC and CLOCK_REALTIME. */
int64_t pt_mono_ns(void);
int64_t pt_real_ns(void);

/* Whether the CPU's cycle counter is invariant and can be read here. */
int pt_tsc_usable(void);

/* Read the cycle counter (only meaningful when pt_tsc_usable()). */
static inline int64_t pt_tsc_read(void)
{
#if defined(__x86_64__) || defined(__i386__)
	uint32_t lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (int64_t)(((uint64_t)hi << 32) | lo);
#elif defined(__aarch64__)
	uint64_t v;
	__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
	return (int64_t)v;
#else
	return pt_mono_ns();
#endif
}

/*
 * Ticks-to-ns map: (tick, ns) samples taken by the writer over the run; a
 * tick is converted by linear interpolation between the two samples around
 * it (extrapolated past the ends). Single-threaded (the writer's).
 */
typedef struct pt_tickmap {
	int64_t *tick;
	int64_t *ns;
	size_t n, cap;
	int pinned; /* a tick was converted against the newest sample: keep it */
} pt_tickmap;

/* Take one bracketed sample (tick read on both sides of the ns read). The
 * newest sample is replaced rather than kept when it is under 10 ms from the
 * one before, unless a conversion has used it: so a tick converts to the
 * same ns whenever it is converted (both ends of a message, drained at
 * different times, agree). */
int pt_tickmap_sample(pt_tickmap *m);
/* Convert a tick (marks the newest sample used when it brackets the tick). */
int64_t pt_tickmap_ns(pt_tickmap *m, int64_t tick);
void pt_tickmap_fini(pt_tickmap *m);

/* --- hot-path records (rec.c) --- */

/* pt_event.flags_ holds the record type inside buffers (trace.h's inline
 * pt_begin/pt_end write 2 and 3). */
enum { PT_REC_COMPLETE = 1, PT_REC_BEGIN = 2, PT_REC_END = 3, PT_REC_COMPLETE_TICKS = 4 };

/* --- post passes (rec.c gives post.c the database) --- */

/*
 * Write every event emitted so far (partial buffers included; begins still
 * open are dropped, as at close), then hold the recorder's database lock and
 * return its connection, inside the recording's open transaction; NULL with
 * *err set when the recording has failed. Every producer must have stopped
 * using its buffer, and none may emit until pt_rec_post_end_, which records
 * a failure err in the recorder (pt_rec_close then fails too), releases the
 * lock and returns err.
 */
sqlite3 *pt_rec_post_begin_(pt_rec *r, int *err);
int pt_rec_post_end_(pt_rec *r, int err);
const char *pt_rec_path_(const pt_rec *r);

/* Open ranges' ends, innermost last, for rebuilding nesting (post.c, nsys.c). */
typedef struct pt_nest {
	int64_t *end;
	size_t n, cap;
} pt_nest;

/* Enter a range that starts at start (ranges of s ended by then are closed):
 * returns its depth (the ranges still open around it) and pushes its end;
 * -1 on ENOMEM. Ranges must arrive by start, longest first at equal starts.
 * Free s->end when done. */
int pt_nest_enter(pt_nest *s, int64_t start, int64_t end);

/* Whether db has a table of that name: 1, 0, or -1 on an SQLite failure. */
int pt_table_exists(sqlite3 *db, const char *name);

#endif
