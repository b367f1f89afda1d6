/*
 * libtrace/reader.c — the one way to read a trace. Opening checks that the
 * file is a whole pipetrace database (schema.c); cursors deliver events in
 * time order with bounded memory by merging one index-ordered statement per
 * (table, rank) through a small heap, so a 2048-rank trace streams as easily as
 * a 2-rank one. Writing is rec.c's job; what the events mean is the consumers'.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
};

static int sql_fail(pt_trace *t, int rc, const char *what)
{
	int err = pt_sqlite_err(rc);
	if (err == PT_OK || err == PT_ESQL)
		err = PT_ECORRUPT;
	return pt_logerr(err, "%s: %s: %s", t->path, what, sqlite3_errmsg(t->db));
}

static int load_meta(pt_trace *t)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(t->db, "SELECT key, value FROM meta", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(t, rc, "reading meta");
	int err = 0, cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (t->nmeta == cap) {
			cap = cap ? cap * 2 : 32;
			struct kv *m = realloc(t->meta, (size_t)cap * sizeof *m);
			if (!m) {
				err = PT_ENOMEM;
				break;
			}
			t->meta = m;
		}
		const char *k = (const char *)sqlite3_column_text(st, 0);
		const char *v = (const char *)sqlite3_column_text(st, 1);
		t->meta[t->nmeta].key = strdup(k ? k : "");
		t->meta[t->nmeta].value = strdup(v ? v : "");
		if (!t->meta[t->nmeta].key || !t->meta[t->nmeta].value) {
			free(t->meta[t->nmeta].key);
			free(t->meta[t->nmeta].value);
			err = PT_ENOMEM;
			break;
		}
		t->nmeta++;
	}
	sqlite3_finalize(st);
	if (!err && rc != SQLITE_DONE)
		err = sql_fail(t, rc, "reading meta");
	return err;
}

static int load_ranks(pt_trace *t)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(t->db,
				    "SELECT rank, device, theory_bubble_ns, theory_peak_act, nchunks, label"
				    " FROM ranks ORDER BY rank",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(t, rc, "reading ranks");
	int err = 0, cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (t->nranks == cap) {
			cap = cap ? cap * 2 : 16;
			pt_rank_info *r = realloc(t->ranks, (size_t)cap * sizeof *r);
			if (!r) {
				err = PT_ENOMEM;
				break;
			}
			t->ranks = r;
		}
		pt_rank_info *ri = &t->ranks[t->nranks++];
		memset(ri, 0, sizeof *ri);
		ri->rank = sqlite3_column_int(st, 0);
		ri->device = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 1);
		ri->theory_bubble_ns =
			sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
		ri->theory_peak_act = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 3);
		ri->nchunks = sqlite3_column_int(st, 4);
		const char *l = (const char *)sqlite3_column_text(st, 5);
		snprintf(ri->label, sizeof ri->label, "%s", l ? l : "");
	}
	sqlite3_finalize(st);
	if (!err && rc != SQLITE_DONE)
		err = sql_fail(t, rc, "reading ranks");
	if (err)
		return err;

	/* The rank range events use, which cursors over all ranks walk, and
	 * which tables have rows at all (cursors skip the empty ones). */
	t->min_rank = t->nranks ? t->ranks[0].rank : 0;
	t->max_rank = t->nranks ? t->ranks[t->nranks - 1].rank : -1;
	for (int i = 0; i < PT_NTABLES; i++) {
		char q[128];
		/* min and max apart: SQLite answers a lone one with one probe of
		 * the (rank, ...) key, both in one SELECT with a scan of every row */
		snprintf(q, sizeof q, "SELECT (SELECT min(rank) FROM %s), (SELECT max(rank) FROM %s)",
			 pt_tables[i].name, pt_tables[i].name);
		rc = sqlite3_prepare_v2(t->db, q, -1, &st, NULL);
		if (rc != SQLITE_OK)
			return sql_fail(t, rc, "reading events");
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			int lo = sqlite3_column_int(st, 0), hi = sqlite3_column_int(st, 1);
			t->has[i] = 1;
			if (t->max_rank < t->min_rank) {
				t->min_rank = lo;
				t->max_rank = hi;
			}
			if (lo < t->min_rank)
				t->min_rank = lo;
			if (hi > t->max_rank)
				t->max_rank = hi;
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sql_fail(t, rc, "reading events");
	}
	return 0;
}

static int load_streams(pt_trace *t)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(t->db, "SELECT rank, stream, role, name FROM streams ORDER BY rank, stream", -1,
				    &st, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(t, rc, "reading streams");
	int err = 0, cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (t->nstreams == cap) {
			cap = cap ? cap * 2 : 16;
			struct stream *s = realloc(t->streams, (size_t)cap * sizeof *s);
			if (!s) {
				err = PT_ENOMEM;
				break;
			}
			t->streams = s;
		}
		struct stream *s = &t->streams[t->nstreams];
		s->rank = sqlite3_column_int(st, 0);
		s->stream = (uint32_t)sqlite3_column_int64(st, 1);
		s->role = sqlite3_column_int(st, 2);
		const char *n = (const char *)sqlite3_column_text(st, 3);
		s->name = strdup(n ? n : "");
		if (!s->name) {
			err = PT_ENOMEM;
			break;
		}
		t->nstreams++;
	}
	sqlite3_finalize(st);
	if (!err && rc != SQLITE_DONE)
		err = sql_fail(t, rc, "reading streams");
	return err;
}

static void pragma_value(pt_trace *t, const char *sql, int64_t *v)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
}

int pt_trace_open(const char *path, pt_trace **out)
{
	*out = NULL;
	int err = pt_schema_check_file(path);
	if (err)
		return err;
	pt_trace *t = calloc(1, sizeof *t);
	if (!t)
		return PT_ENOMEM;
	t->path = strdup(path);
	if (!t->path) {
		free(t);
		return PT_ENOMEM;
	}
	int rc = sqlite3_open_v2(path, &t->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		err = pt_logerr(pt_sqlite_err(rc) == PT_ENOTDB ? PT_ENOTDB : PT_EIO, "%s: cannot open: %s", path,
				t->db ? sqlite3_errmsg(t->db) : sqlite3_errstr(rc));
		goto fail;
	}
	/* A small page cache: readers stream, they do not need the file in RAM
	 * (cursors over many ranks grow it a little, see pt_cursor_open). */
	sqlite3_exec(t->db, "PRAGMA cache_size=-4096", NULL, NULL, NULL);
	t->cache_kib = 4096;
	t->cache_max_kib = 32768;
	if ((err = pt_schema_check_db(t->db, path)) || (err = load_meta(t)) || (err = load_ranks(t)) ||
	    (err = load_streams(t)))
		goto fail;
	t->page_size = 4096;
	pragma_value(t, "PRAGMA page_size", &t->page_size);
	*out = t;
	return 0;
fail:
	pt_trace_close(t);
	return err;
}

void pt_trace_close(pt_trace *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nmeta; i++) {
		free(t->meta[i].key);
		free(t->meta[i].value);
	}
	for (int i = 0; i < t->nstreams; i++)
		free(t->streams[i].name);
	free(t->streams);
	for (uint32_t i = 0; i < t->nstrings; i++)
		free(t->strings[i]);
	free(t->strings);
	free(t->meta);
	free(t->ranks);
	if (t->db)
		sqlite3_close(t->db);
	free(t->path);
	free(t);
}

const char *pt_trace_path(const pt_trace *t) { return t->path; }

const char *pt_trace_meta(pt_trace *t, const char *key)
{
	for (int i = 0; i < t->nmeta; i++)
		if (strcmp(t->meta[i].key, key) == 0)
			return t->meta[i].value;
	return NULL;
}

int64_t pt_trace_meta_int(pt_trace *t, const char *key, int64_t def)
{
	const char *v = pt_trace_meta(t, key);
	if (!v || !*v)
		return def;
	char *end;
	long long x = strtoll(v, &end, 10);
	return *end ? def : (int64_t)x;
}

int pt_trace_meta_at(pt_trace *t, int i, const char **key, const char **value)
{
	if (i >= 0 && i < t->nmeta) {
		if (key)
			*key = t->meta[i].key;
		if (value)
			*value = t->meta[i].value;
	}
	return t->nmeta;
}

int pt_trace_nranks(pt_trace *t) { return t->nranks; }

void pt_trace_set_cache_max(pt_trace *t, int64_t kib)
{
	t->cache_max_kib = kib > 4096 ? kib : 4096;
}

int pt_trace_rank_range(pt_trace *t, int *lo, int *hi)
{
	if (lo)
		*lo = t->min_rank;
	if (hi)
		*hi = t->max_rank;
	return t->max_rank >= t->min_rank ? t->max_rank - t->min_rank + 1 : 0;
}

int pt_trace_rank(pt_trace *t, int rank, pt_rank_info *out)
{
	for (int i = 0; i < t->nranks; i++) {
		if (t->ranks[i].rank == rank) {
			*out = t->ranks[i];
			return 0;
		}
	}
	return PT_EINVAL;
}

int pt_trace_rank_at(pt_trace *t, int i, pt_rank_info *out)
{
	if (i < 0 || i >= t->nranks)
		return PT_EINVAL;
	*out = t->ranks[i];
	return 0;
}

int pt_trace_streams(pt_trace *t, int rank, uint32_t *ids, int max)
{
	int n = 0;
	for (int i = 0; i < t->nstreams; i++)
		if (t->streams[i].rank == rank && n < max)
			ids[n++] = t->streams[i].stream;
	return n;
}

static int load_strings(pt_trace *t)
{
	sqlite3_stmt *st;
	t->strings_loaded = 1;
	int rc = sqlite3_prepare_v2(t->db, "SELECT id, value FROM strings ORDER BY id", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(t, rc, "reading strings");
	uint32_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (id <= 0 || id > 0x7fffffff)
			continue;
		if ((uint32_t)id >= cap) {
			uint32_t c = cap ? cap : 256;
			while (c <= (uint32_t)id)
				c *= 2;
			char **v = realloc(t->strings, c * sizeof *v);
			if (!v)
				break;
			memset(v + cap, 0, (c - cap) * sizeof *v);
			t->strings = v;
			cap = c;
		}
		const char *txt = (const char *)sqlite3_column_text(st, 1);
		free(t->strings[id]);
		t->strings[id] = strdup(txt ? txt : "");
		if ((uint32_t)id + 1 > t->nstrings)
			t->nstrings = (uint32_t)id + 1;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sql_fail(t, rc, "reading strings");
}

const char *pt_trace_string(pt_trace *t, uint32_t id)
{
	if (!t->strings_loaded)
		load_strings(t);
	if (id == 0 || id >= t->nstrings || !t->strings[id])
		return "";
	return t->strings[id];
}

int pt_trace_stream(pt_trace *t, int rank, uint32_t stream, enum pt_stream_role *role, const char **name)
{
	for (int i = 0; i < t->nstreams; i++) {
		if (t->streams[i].rank == rank && t->streams[i].stream == stream) {
			if (role)
				*role = (enum pt_stream_role)t->streams[i].role;
			if (name)
				*name = t->streams[i].name;
			return 0;
		}
	}
	return PT_EINVAL;
}

int pt_trace_chunks(pt_trace *t, int rank, pt_chunk_info *out, int max)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(t->db, "SELECT chunk, pipe, stage FROM chunks WHERE rank=? ORDER BY chunk", -1,
				    &st, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(t, rc, "reading chunks");
	sqlite3_bind_int(st, 1, rank);
	int n = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n < max) {
			out[n].rank = rank;
			out[n].chunk = sqlite3_column_int(st, 0);
			out[n].pipe = sqlite3_column_int(st, 1);
			out[n].stage = sqlite3_column_int(st, 2);
		}
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sql_fail(t, rc, "reading chunks");
	return n < max ? n : max;
}

static int col_int(sqlite3_stmt *st, int i, int def)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? def : sqlite3_column_int(st, i);
}

int pt_trace_plan(pt_trace *t, int rank, pt_op **ops, size_t *n)
{
	*ops = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(t->db,
				    "SELECT kind, chunk, mb, chunk2, mb2, payload, peer, seq, batch, bytes, phase, tag"
				    " FROM plan WHERE rank=? ORDER BY step",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sql_fail(t, rc, "reading the plan");
	sqlite3_bind_int(st, 1, rank);
	size_t cap = 0;
	int err = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == cap) {
			cap = cap ? cap * 2 : 256;
			pt_op *o = realloc(*ops, cap * sizeof *o);
			if (!o) {
				err = PT_ENOMEM;
				break;
			}
			*ops = o;
		}
		pt_op *o = &(*ops)[(*n)++];
		*o = pt_op_make(sqlite3_column_int(st, 0), col_int(st, 1, -1), col_int(st, 2, -1));
		o->chunk2 = (int16_t)col_int(st, 3, -1);
		o->mb2 = col_int(st, 4, -1);
		o->payload = (uint8_t)col_int(st, 5, 0);
		o->peer = col_int(st, 6, -1);
		o->seq = col_int(st, 7, -1);
		o->batch = col_int(st, 8, -1);
		o->bytes = sqlite3_column_int64(st, 9);
		o->phase = (uint8_t)col_int(st, 10, 0);
		o->tag = (uint8_t)col_int(st, 11, 0);
	}
	sqlite3_finalize(st);
	if (!err && rc != SQLITE_DONE)
		err = sql_fail(t, rc, "reading the plan");
	if (err) {
		free(*ops);
		*ops = NULL;
		*n = 0;
	}
	return err;
}

/* ---------------------------------------------------------------- cursors */

pt_query pt_query_all(void)
{
	pt_query q;
	memset(&q, 0, sizeof q);
	q.rank = -1;
	q.from_ns = INT64_MIN;
	q.to_ns = INT64_MAX;
	return q;
}

/*
 * A cursor reads the trace in windows of time, one after the other: for each
 * window [w0, w1) it runs one statement per table for each rank in turn (the
 * same prepared statement, bound again), appending each (rank, table)'s rows
 * as a run in one buffer, then merges the runs by (start, rank, stream,
 * table). Memory is that buffer, whatever the number of ranks or events: a
 * statement a rank kept open instead (the cursor of before) cost ~7.5 KiB and
 * pinned its pages, 50 MB at 2048 ranks. Because windows split the events by
 * start time and each run keeps its statement's order, the merge delivers
 * exactly what one merge over every rank's whole statement would.
 * The window's width adapts to about a quarter of the buffer's capacity; a
 * window that overflows it ends earlier on the spot (rows past the new end
 * dropped, ranks read so far keep their shorter runs), so the buffer never
 * grows past it unless more than that many events start in one nanosecond.
 */
size_t pt_cursor_cap_ = 32768;

struct run {
	int32_t pos, end; /* the run's rows still to deliver: ev[pos, end) */
	int table;
};

struct pt_cursor {
	pt_trace *t;
	sqlite3_stmt *st[PT_NTABLES]; /* one per table read, else NULL */
	int32_t *ranks;
	int nr;
	int64_t to_ns, from_ns, kinds;
	int64_t w0;    /* the next window starts here */
	int64_t last;  /* the latest start any selected row has */
	int64_t width; /* of the next window */
	pt_event *ev;  /* the window's rows, run after run */
	size_t nev, cap;
	struct run *run; /* at most nr * PT_NTABLES */
	int nrun;
	int *heap; /* indexes into run, ordered by their head rows */
	int nheap;
	int done;
	int nwin;  /* windows read */
	int began; /* counted in t->cursors */
};

/* Per table: the SELECT's columns (after rank, stream), its filter is shared. */
/* NULLs become the event's "none" in SQL (ifnull), so that each column is
 * one sqlite3_column call: at a million rows a second, the second call that
 * asking for a column's type takes costs a fifth of the reading time. */
#define N1(c) "ifnull(" c ",-1)"
#define N0(c) "ifnull(" c ",0)"
static const char *const table_select[PT_NTABLES] = {
	[PT_TBL_OPS] = N1("step") ", kind, " N1("chunk") ", " N1("mb") ", " N1("chunk2") ", " N1("mb2")
		       ", start_ns, end_ns",
	[PT_TBL_COMMS] = N1("step") ", kind, " N0("payload") ", " N1("chunk") ", " N1("mb") ", " N1("peer") ", " N1(
		"seq") ", " N1("batch") ", " N0("bytes") ", " N0("posted_ns") ", start_ns, end_ns",
	[PT_TBL_KERNELS] = N1("device") ", start_ns, end_ns, " N0("name") ", " N0("corr") ", " N0("ext"),
	[PT_TBL_MEMCPY] = N1("device") ", start_ns, end_ns, " N0("name") ", " N0("corr") ", " N0("ext") ", " N0(
		"bytes") ", " N0("copy_kind"),
	[PT_TBL_MEMSET] = N1("device") ", start_ns, end_ns, " N0("name") ", " N0("corr") ", " N0("ext") ", " N0("bytes"),
	[PT_TBL_SYNC] = N1("device") ", start_ns, end_ns, " N0("name") ", " N0("corr") ", " N0("ext") ", " N0(
		"sync_type"),
	[PT_TBL_RUNTIME] = N1("device") ", start_ns, end_ns, " N0("name") ", " N0("corr") ", " N0("ext"),
	[PT_TBL_RANGES] = N1("device") ", start_ns, end_ns, " N0("name") ", " N0("corr") ", " N0("ext") ", " N0(
		"depth") ", " N1("domain"),
};
#undef N0
#undef N1

static const int table_kind[PT_NTABLES] = {
	[PT_TBL_KERNELS] = PT_OP_KERNEL, [PT_TBL_MEMCPY] = PT_OP_MEMCPY,   [PT_TBL_MEMSET] = PT_OP_MEMSET,
	[PT_TBL_SYNC] = PT_OP_SYNC,	 [PT_TBL_RUNTIME] = PT_OP_RUNTIME, [PT_TBL_RANGES] = PT_OP_RANGE,
};

static void row_to_event(sqlite3_stmt *st, int table, pt_event *e)
{
#define I(i) sqlite3_column_int(st, i)
#define I64(i) sqlite3_column_int64(st, i)
	memset(e, 0, sizeof *e);
	e->rank = I(0);
	e->stream = (uint32_t)I64(1);
	e->step = -1;
	e->device = -1;
	switch (table) {
	case PT_TBL_OPS:
		e->step = I(2);
		e->op = pt_op_make(I(3), I(4), I(5));
		e->op.chunk2 = (int16_t)I(6);
		e->op.mb2 = I(7);
		e->start_ns = I64(8);
		e->end_ns = I64(9);
		e->posted_ns = e->start_ns;
		return;
	case PT_TBL_COMMS:
		e->step = I(2);
		e->op = pt_op_make(I(3), I(5), I(6));
		e->op.payload = (uint8_t)I(4);
		e->op.peer = I(7);
		e->op.seq = I(8);
		e->op.batch = I(9);
		e->op.bytes = I64(10);
		e->posted_ns = I64(11);
		e->start_ns = I64(12);
		e->end_ns = I64(13);
		return;
	}
	e->op = pt_op_make(table_kind[table], -1, -1);
	e->device = I(2);
	e->start_ns = I64(3);
	e->end_ns = I64(4);
	e->posted_ns = e->start_ns;
	e->name = (uint32_t)I64(5);
	e->corr = I64(6);
	e->ext = I64(7);
	switch (table) {
	case PT_TBL_MEMCPY:
		e->op.bytes = I64(8);
		e->op.payload = (uint8_t)I(9);
		break;
	case PT_TBL_MEMSET:
		e->op.bytes = I64(8);
		break;
	case PT_TBL_SYNC:
		e->op.payload = (uint8_t)I(8);
		break;
	case PT_TBL_RANGES:
		e->op.payload = (uint8_t)I(8);
		e->op.seq = I(9);
		break;
	}
#undef I
#undef I64
}

static int before(const struct pt_cursor *c, int a, int b)
{
	const struct run *ra = &c->run[a], *rb = &c->run[b];
	const pt_event *x = &c->ev[ra->pos], *y = &c->ev[rb->pos];
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns;
	if (x->rank != y->rank)
		return x->rank < y->rank;
	if (x->stream != y->stream)
		return x->stream < y->stream;
	return ra->table < rb->table;
}

static void sift_down(struct pt_cursor *c, int i)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, m = i;
		if (l < c->nheap && before(c, c->heap[l], c->heap[m]))
			m = l;
		if (r < c->nheap && before(c, c->heap[r], c->heap[m]))
			m = r;
		if (m == i)
			return;
		int tmp = c->heap[i];
		c->heap[i] = c->heap[m];
		c->heap[m] = tmp;
		i = m;
	}
}

static unsigned wanted_sources(const pt_query *q)
{
	unsigned sources = q->sources ? q->sources : PT_SRC_ALL;
	if (q->kinds) {
		/* drop tables none of whose kinds are wanted */
		unsigned need = 0;
		for (int k = 1; k < PT_OP_KIND_MAX; k++)
			if (q->kinds & (1u << k))
				need |= pt_kind_source(k);
		sources &= need;
	}
	return sources;
}

/*
 * A cursor resumes each (rank, table) window after window on the leaf page
 * where it stopped, under parents it shares with the others: when those
 * pages do not fit the page cache, each costs a read() again each window. So
 * grow the cache to a page per (rank, table) and some, from 4 MiB up to at
 * most 32 MiB (or what pt_trace_set_cache_max says); it never shrinks while
 * the trace is open.
 */
static void grow_cache(pt_trace *t, int pages)
{
	int64_t want_kib = (int64_t)pages * t->page_size / 1024;
	if (want_kib > t->cache_max_kib)
		want_kib = t->cache_max_kib;
	if (want_kib <= t->cache_kib)
		return;
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA cache_size=-%lld", (long long)want_kib);
	if (sqlite3_exec(t->db, sql, NULL, NULL, NULL) == SQLITE_OK)
		t->cache_kib = want_kib;
}

/* How many ranks q reads; the i-th is q_rank(q, lo, i). */
static int q_nranks(const pt_trace *t, const pt_query *q, int *lo)
{
	*lo = q->rank >= 0 ? q->rank : t->min_rank;
	int hi = q->rank >= 0 ? q->rank : t->max_rank;
	return q->ranks ? q->nranks : hi >= *lo ? hi - *lo + 1 : 0;
}

static int q_rank(const pt_query *q, int lo, int i) { return q->ranks ? q->ranks[i] : lo + i; }

int pt_cursor_open(pt_trace *t, const pt_query *q, pt_cursor **out)
{
	*out = NULL;
	pt_query all = pt_query_all();
	if (!q)
		q = &all;
	unsigned sources = wanted_sources(q);
	int lo, nr = q_nranks(t, q, &lo);
	struct pt_cursor *c = calloc(1, sizeof *c);
	if (!c)
		return PT_ENOMEM;
	c->t = t;
	c->nr = nr;
	c->to_ns = q->to_ns;
	c->from_ns = q->from_ns;
	c->kinds = q->kinds ? (int64_t)q->kinds : 0xffffffffLL;
	c->ranks = malloc(((size_t)nr + 1) * sizeof *c->ranks);
	c->run = malloc(((size_t)nr * PT_NTABLES + 1) * sizeof *c->run);
	c->heap = malloc(((size_t)nr * PT_NTABLES + 1) * sizeof *c->heap);
	c->cap = pt_cursor_cap_ < 2 ? 2 : pt_cursor_cap_;
	c->ev = malloc(c->cap * sizeof *c->ev);
	if (!c->ranks || !c->run || !c->heap || !c->ev) {
		pt_cursor_close(c);
		return PT_ENOMEM;
	}
	for (int i = 0; i < nr; i++)
		c->ranks[i] = q_rank(q, lo, i);
	int ntab = 0, err = 0, rc;
	for (int tbl = 0; tbl < PT_NTABLES && !err; tbl++) {
		if (!(sources & pt_tables[tbl].source) || !t->has[tbl])
			continue;
		char sql[512];
		/* Filters only when asked: each costs a test on every row. */
		const char *kind_filter = !q->kinds		  ? ""
					  : tbl <= PT_TBL_COMMS ? " AND ((1 << kind) & ?4) != 0"
								  : " AND ?4 != 0";
		snprintf(sql, sizeof sql,
			 "SELECT rank, stream, %s FROM %s WHERE rank=?1 AND start_ns >= ?5 AND start_ns < ?2%s%s"
			 " ORDER BY start_ns, id",
			 table_select[tbl], pt_tables[tbl].name, q->from_ns == INT64_MIN ? "" : " AND end_ns >= ?3",
			 kind_filter);
		rc = sqlite3_prepare_v2(t->db, sql, -1, &c->st[tbl], NULL);
		if (rc != SQLITE_OK)
			err = sql_fail(t, rc, "reading events");
		ntab++;
	}
	/* A cursor runs a statement per rank and table and window, each of which
	 * would be a transaction of its own (a lock, a look for a hot journal, a
	 * check that the file has not changed: 2.5 system calls a statement, a
	 * third of the time at 2048 ranks): one read transaction spans them, as
	 * long as a cursor is open on the connection. */
	if (!err && t->cursors++ == 0 && sqlite3_get_autocommit(t->db) &&
	    (rc = sqlite3_exec(t->db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK)
		err = sql_fail(t, rc, "reading events");
	c->began = 1;
	/* The window walk needs the selection's first and last start. */
	int64_t first = INT64_MAX;
	c->last = INT64_MIN;
	if (!err && nr && ntab)
		err = pt_trace_span(t, q, &first, &c->last);
	if (err) {
		pt_cursor_close(c);
		return err;
	}
	if (c->last > c->to_ns - 1)
		c->last = c->to_ns - 1;
	c->w0 = first;
	c->done = first > c->last;
	/* The first window's width from the events the recorder counted (over
	 * the ranks read), as if spread evenly; later ones follow the density
	 * seen. Without the count, the first window spans everything and ends
	 * early where it overflows. */
	c->width = c->done ? 1 : c->last - first + 1;
	double events = (double)pt_trace_meta_int(t, "rec.events", 0) * nr / (t->nranks > 0 ? t->nranks : 1);
	if (events > (double)(c->cap / 4) && !c->done)
		c->width = (int64_t)((double)c->width * (double)(c->cap / 4) / events) + 1;
	grow_cache(t, nr * ntab + nr * ntab / 4 + 64);
	*out = c;
	return 0;
}

/* Drop the rows of every run that start at or after w1 (a halved window). */
static void cut_runs(struct pt_cursor *c, int64_t w1)
{
	size_t at = 0;
	int n = 0;
	for (int i = 0; i < c->nrun; i++) {
		struct run r = c->run[i];
		int32_t end = r.pos;
		while (end < r.end && c->ev[end].start_ns < w1)
			end++;
		if (end == r.pos)
			continue;
		if ((size_t)r.pos != at)
			memmove(&c->ev[at], &c->ev[r.pos], (size_t)(end - r.pos) * sizeof *c->ev);
		c->run[n++] = (struct run){.pos = (int32_t)at, .end = (int32_t)(at + (size_t)(end - r.pos)), .table = r.table};
		at += (size_t)(end - r.pos);
	}
	c->nrun = n;
	c->nev = at;
}

/* Read one (rank, table)'s rows of [w0, *w1) as a run. When the buffer
 * fills, the window ends earlier: where, with the density seen so far, all
 * the runs would fill a quarter of the buffer (done of all runs read, this
 * one included); what starts later is dropped. */
static int read_run(struct pt_cursor *c, int tbl, int32_t rank, int64_t w0, int64_t *w1, int done, int all)
{
	sqlite3_stmt *st = c->st[tbl];
again:
	sqlite3_reset(st);
	sqlite3_bind_int(st, 1, rank);
	sqlite3_bind_int64(st, 2, *w1);
	sqlite3_bind_int64(st, 3, c->from_ns);
	sqlite3_bind_int64(st, 4, c->kinds);
	sqlite3_bind_int64(st, 5, w0);
	size_t begin = c->nev;
	int rc, full = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (c->nev == c->cap) {
			if (*w1 - w0 > 1 && c->ev[c->nev - 1].start_ns > w0) {
				full = 1;
				break;
			}
			size_t cap = c->cap * 2; /* over cap events in one ns */
			pt_event *ev = realloc(c->ev, cap * sizeof *ev);
			if (!ev) {
				sqlite3_reset(st);
				return PT_ENOMEM;
			}
			c->ev = ev;
			c->cap = cap;
		}
		row_to_event(st, tbl, &c->ev[c->nev++]);
	}
	sqlite3_reset(st); /* let go of its pages */
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sql_fail(c->t, rc, "reading events");
	if (c->nev > begin)
		c->run[c->nrun++] = (struct run){.pos = (int32_t)begin, .end = (int32_t)c->nev, .table = tbl};
	if (full) {
		/* The rows so far cover [w0, s]: a quarter of the buffer for every
		 * run is (s - w0) * done / all / 4. When this run has rows here,
		 * every one it has before the new end is among them (s is its last):
		 * it is complete; else it is read again over the shorter window. */
		int64_t s = c->ev[c->nev - 1].start_ns;
		int64_t w = (int64_t)((double)(s - w0) * done / all / 4);
		int had = c->nev > begin;
		*w1 = w0 + (w < 1 ? 1 : w);
		cut_runs(c, *w1);
		if (!had)
			goto again;
	}
	return 0;
}

/* Read the next window that has rows into the buffer; 0 with nothing left. */
static int fill(struct pt_cursor *c)
{
	c->nev = 0;
	c->nrun = 0;
	c->nheap = 0;
	int ntab = 0;
	for (int tbl = 0; tbl < PT_NTABLES; tbl++)
		ntab += c->st[tbl] != NULL;
	while (!c->done && !c->nev) {
		int64_t w0 = c->w0;
		int64_t w1 = c->width > c->last - w0 ? c->last + 1 : w0 + c->width;
		/* Ranks forward in one window, backward in the next: the pages used
		 * last are used first again, so a page cache smaller than a page
		 * per (rank, table) still keeps most of them (in the same order
		 * each time, every page would be gone by its turn). The merge does
		 * not depend on the order of the runs. */
		int done = 0;
		for (int k = 0; k < c->nr; k++)
			for (int tbl = 0; tbl < PT_NTABLES; tbl++) {
				if (!c->st[tbl])
					continue;
				int i = c->nwin % 2 ? c->nr - 1 - k : k;
				int err = read_run(c, tbl, c->ranks[i], w0, &w1, ++done, c->nr * ntab);
				if (err)
					return err;
			}
		c->nwin++;
		c->w0 = w1;
		c->done = w1 > c->last;
		/* Aim the next window at a quarter of the buffer, room for the
		 * density to change; grow at most 8x a step. */
		int64_t span = w1 - w0;
		double want = c->nev ? (double)span * (double)(c->cap / 4) / (double)c->nev : (double)span * 8;
		if (want > (double)span * 8)
			want = (double)span * 8;
		c->width = want >= 9e18 ? INT64_MAX / 2 : want < 1 ? 1 : (int64_t)want;
	}
	for (int i = 0; i < c->nrun; i++)
		c->heap[c->nheap++] = i;
	for (int i = c->nheap / 2 - 1; i >= 0; i--)
		sift_down(c, i);
	return c->nheap > 0;
}

int pt_cursor_next(pt_cursor *c, pt_event *ev)
{
	if (c->nheap) {
		/* Step past the row returned last time. */
		struct run *r = &c->run[c->heap[0]];
		if (++r->pos == r->end)
			c->heap[0] = c->heap[--c->nheap];
		sift_down(c, 0);
	}
	if (!c->nheap) {
		int got = fill(c);
		if (got <= 0)
			return got;
	}
	*ev = c->ev[c->run[c->heap[0]].pos];
	return 1;
}

void pt_cursor_close(pt_cursor *c)
{
	if (!c)
		return;
	for (int i = 0; i < PT_NTABLES; i++)
		sqlite3_finalize(c->st[i]);
	if (c->began && --c->t->cursors == 0 && !sqlite3_get_autocommit(c->t->db))
		sqlite3_exec(c->t->db, "COMMIT", NULL, NULL, NULL);
	free(c->ranks);
	free(c->run);
	free(c->heap);
	free(c->ev);
	free(c);
}

int64_t pt_trace_count(pt_trace *t, const pt_query *q)
{
	pt_query all = pt_query_all();
	if (!q)
		q = &all;
	unsigned sources = wanted_sources(q);
	int64_t kinds = q->kinds ? (int64_t)q->kinds : 0xffffffffLL;
	int64_t total = 0;
	for (int tbl = 0; tbl < PT_NTABLES; tbl++) {
		if (!(sources & pt_tables[tbl].source) || !t->has[tbl])
			continue;
		char sql[256];
		snprintf(sql, sizeof sql,
			 "SELECT count(*) FROM %s WHERE (?1 < 0 OR rank=?1) AND start_ns < ?2"
			 " AND end_ns >= ?3%s",
			 pt_tables[tbl].name, tbl <= PT_TBL_COMMS ? " AND ((1 << kind) & ?4) != 0" : " AND ?4 != 0");
		sqlite3_stmt *st;
		int rc = sqlite3_prepare_v2(t->db, sql, -1, &st, NULL);
		if (rc != SQLITE_OK)
			return sql_fail(t, rc, "counting events");
		int nr = q->ranks ? q->nranks : 1;
		for (int i = 0; i < nr; i++) {
			sqlite3_reset(st);
			sqlite3_bind_int(st, 1, q->ranks ? q->ranks[i] : q->rank);
			sqlite3_bind_int64(st, 2, q->to_ns);
			sqlite3_bind_int64(st, 3, q->from_ns);
			sqlite3_bind_int64(st, 4, kinds);
			rc = sqlite3_step(st);
			if (rc != SQLITE_ROW)
				break;
			total += sqlite3_column_int64(st, 0);
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW)
			return sql_fail(t, rc, "counting events");
	}
	return total;
}

/* min(start_ns) or max(start_ns) of one rank in one table: a single
 * aggregate over the (rank, start_ns) index, which SQLite answers with one
 * index probe. */
static int span_probe(pt_trace *t, sqlite3_stmt *st, int rank, int64_t *v)
{
	sqlite3_reset(st);
	sqlite3_bind_int(st, 1, rank);
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return sql_fail(t, rc, "reading the time span");
	*v = sqlite3_column_type(st, 0) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(st, 0);
	return 0;
}

int pt_trace_span(pt_trace *t, const pt_query *q, int64_t *first, int64_t *last)
{
	pt_query all = pt_query_all();
	if (!q)
		q = &all;
	*first = INT64_MAX;
	*last = INT64_MIN;
	unsigned sources = wanted_sources(q);
	int lo, nr = q_nranks(t, q, &lo);
	for (int tbl = 0; tbl < PT_NTABLES; tbl++) {
		if (!(sources & pt_tables[tbl].source) || !t->has[tbl])
			continue;
		char sql[2][128];
		sqlite3_stmt *st[2] = {NULL, NULL};
		snprintf(sql[0], sizeof sql[0], "SELECT min(start_ns) FROM %s WHERE rank=?1", pt_tables[tbl].name);
		snprintf(sql[1], sizeof sql[1], "SELECT max(start_ns) FROM %s WHERE rank=?1", pt_tables[tbl].name);
		int err = 0;
		for (int k = 0; k < 2 && !err; k++) {
			int rc = sqlite3_prepare_v2(t->db, sql[k], -1, &st[k], NULL);
			if (rc != SQLITE_OK)
				err = sql_fail(t, rc, "reading the time span");
		}
		for (int i = 0; i < nr && !err; i++) {
			int r = q_rank(q, lo, i);
			int64_t a, b;
			if ((err = span_probe(t, st[0], r, &a)) || (err = span_probe(t, st[1], r, &b)))
				break;
			if (a != INT64_MIN && a < *first)
				*first = a;
			if (b != INT64_MIN && b > *last)
				*last = b;
		}
		sqlite3_finalize(st[0]);
		sqlite3_finalize(st[1]);
		if (err)
			return err;
	}
	return 0;
}
