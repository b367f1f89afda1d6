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

struct src {
	sqlite3_stmt *st;
	int table;
	pt_event ev;
};

struct pt_cursor {
	pt_trace *t;
	struct src *src;
	int nsrc;
	int *heap; /* indexes into src, ordered by (start, rank, stream, table) */
	int nheap;
	int primed;
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

static void row_to_event(struct src *s)
{
	sqlite3_stmt *st = s->st;
	pt_event *e = &s->ev;
#define I(i) sqlite3_column_int(st, i)
#define I64(i) sqlite3_column_int64(st, i)
	memset(e, 0, sizeof *e);
	e->rank = I(0);
	e->stream = (uint32_t)I64(1);
	e->step = -1;
	e->device = -1;
	switch (s->table) {
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
	e->op = pt_op_make(table_kind[s->table], -1, -1);
	e->device = I(2);
	e->start_ns = I64(3);
	e->end_ns = I64(4);
	e->posted_ns = e->start_ns;
	e->name = (uint32_t)I64(5);
	e->corr = I64(6);
	e->ext = I64(7);
	switch (s->table) {
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
	const pt_event *x = &c->src[a].ev, *y = &c->src[b].ev;
	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns;
	if (x->rank != y->rank)
		return x->rank < y->rank;
	if (x->stream != y->stream)
		return x->stream < y->stream;
	return c->src[a].table < c->src[b].table;
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

/* Step source s: 1 when it has a row, 0 when exhausted, <0 on error. */
static int advance_src(struct pt_cursor *c, int s)
{
	int rc = sqlite3_step(c->src[s].st);
	if (rc == SQLITE_ROW) {
		row_to_event(&c->src[s]);
		return 1;
	}
	if (rc == SQLITE_DONE)
		return 0;
	return sql_fail(c->t, rc, "reading events");
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
 * A cursor over n statements walks n places of each table at once: its index
 * leaf, the table leaf the row lives on and their parents. When those do not
 * fit the page cache (a trace recorded rank after rank, read in time order),
 * every row costs a read() and the cursor runs 7x slower. So grow the cache to
 * about 4 pages per statement, from 4 MiB up to at most 32 MiB (or what
 * pt_trace_set_cache_max says); it never shrinks while the trace is open.
 */
static void grow_cache(pt_trace *t, int nstatements)
{
	int64_t want_kib = (int64_t)nstatements * 4 * t->page_size / 1024;
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
	int ntab = 0;
	for (int tbl = 0; tbl < PT_NTABLES; tbl++)
		ntab += (sources & pt_tables[tbl].source) && t->has[tbl];
	struct pt_cursor *c = calloc(1, sizeof *c);
	if (!c)
		return PT_ENOMEM;
	c->t = t;
	c->src = calloc((size_t)nr * (size_t)ntab + 1, sizeof *c->src);
	c->heap = calloc((size_t)nr * (size_t)ntab + 1, sizeof *c->heap);
	if (!c->src || !c->heap) {
		pt_cursor_close(c);
		return PT_ENOMEM;
	}
	int64_t kinds = q->kinds ? (int64_t)q->kinds : 0xffffffffLL;
	grow_cache(t, nr * ntab);
	for (int tbl = 0; tbl < PT_NTABLES; tbl++) {
		if (!(sources & pt_tables[tbl].source) || !t->has[tbl])
			continue;
		char sql[512];
		/* Filters only when asked: each costs a test on every row. */
		const char *kind_filter = !q->kinds		  ? ""
					  : tbl <= PT_TBL_COMMS ? " AND ((1 << kind) & ?4) != 0"
								  : " AND ?4 != 0";
		snprintf(sql, sizeof sql,
			 "SELECT rank, stream, %s FROM %s WHERE rank=?1 AND start_ns < ?2%s%s ORDER BY start_ns, id",
			 table_select[tbl], pt_tables[tbl].name, q->from_ns == INT64_MIN ? "" : " AND end_ns >= ?3",
			 kind_filter);
		for (int i = 0; i < nr; i++) {
			int r = q_rank(q, lo, i);
			struct src *s = &c->src[c->nsrc];
			int rc = sqlite3_prepare_v2(t->db, sql, -1, &s->st, NULL);
			if (rc != SQLITE_OK) {
				int err = sql_fail(t, rc, "reading events");
				pt_cursor_close(c);
				return err;
			}
			s->table = tbl;
			sqlite3_bind_int(s->st, 1, r);
			sqlite3_bind_int64(s->st, 2, q->to_ns);
			sqlite3_bind_int64(s->st, 3, q->from_ns);
			sqlite3_bind_int64(s->st, 4, kinds);
			c->nsrc++;
		}
	}
	*out = c;
	return 0;
}

int pt_cursor_next(pt_cursor *c, pt_event *ev)
{
	if (!c->primed) {
		c->primed = 1;
		for (int s = 0; s < c->nsrc; s++) {
			int got = advance_src(c, s);
			if (got < 0)
				return got;
			if (got)
				c->heap[c->nheap++] = s;
		}
		for (int i = c->nheap / 2 - 1; i >= 0; i--)
			sift_down(c, i);
	} else if (c->nheap) {
		/* Refill the slot of the event returned last time. */
		int s = c->heap[0];
		int got = advance_src(c, s);
		if (got < 0)
			return got;
		if (!got)
			c->heap[0] = c->heap[--c->nheap];
		sift_down(c, 0);
	}
	if (!c->nheap)
		return 0;
	*ev = c->src[c->heap[0]].ev;
	return 1;
}

void pt_cursor_close(pt_cursor *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nsrc; i++)
		sqlite3_finalize(c->src[i].st);
	free(c->src);
	free(c->heap);
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
