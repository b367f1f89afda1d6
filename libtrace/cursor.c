/*
 * libtrace/cursor.c — cursors: the events a query selects, in (start, rank,
 * stream, table) order with bounded memory, read in windows of time (below).
 * Opening a trace and everything else it answers is reader.c's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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

#define TIME_MAX PT_TIME_MAX_

/* v in [lo, hi], else the row is damage, which a cast would hide (a kind
 * or chunk wider than its field, a time no run has): *bad names the column. */
#define FITS(v, lo, hi, col) ((v) >= (lo) && (v) <= (hi) ? 1 : (*bad = (col), *badv = (v), 0))
#define TIME_OK(v, col) FITS(v, -TIME_MAX, TIME_MAX, col)

/* Decode the row into e: 1, or 0 with *bad and *badv set (e unusable). */
static int row_to_event(sqlite3_stmt *st, int table, pt_event *e, const char **bad, int64_t *badv)
{
#define I(i) sqlite3_column_int(st, i)
#define I64(i) sqlite3_column_int64(st, i)
	memset(e, 0, sizeof *e);
	e->rank = I(0);
	e->stream = (uint32_t)I64(1);
	e->step = -1;
	e->device = -1;
	int64_t kind, chunk, chunk2, payload;
	switch (table) {
	case PT_TBL_OPS:
		e->step = I(2);
		kind = I64(3), chunk = I64(4), chunk2 = I64(6);
		if (!FITS(kind, 0, UINT8_MAX, "kind") || !FITS(chunk, INT16_MIN, INT16_MAX, "chunk") ||
		    !FITS(chunk2, INT16_MIN, INT16_MAX, "chunk2"))
			return 0;
		e->op = pt_op_make((int)kind, (int)chunk, I(5));
		e->op.chunk2 = (int16_t)chunk2;
		e->op.mb2 = I(7);
		e->start_ns = I64(8);
		e->end_ns = I64(9);
		e->posted_ns = e->start_ns;
		return TIME_OK(e->start_ns, "start_ns") && TIME_OK(e->end_ns, "end_ns");
	case PT_TBL_COMMS:
		e->step = I(2);
		kind = I64(3), payload = I64(4), chunk = I64(5);
		if (!FITS(kind, 0, UINT8_MAX, "kind") || !FITS(payload, 0, UINT8_MAX, "payload") ||
		    !FITS(chunk, INT16_MIN, INT16_MAX, "chunk"))
			return 0;
		e->op = pt_op_make((int)kind, (int)chunk, I(6));
		e->op.payload = (uint8_t)payload;
		e->op.peer = I(7);
		e->op.seq = I(8);
		e->op.batch = I(9);
		e->op.bytes = I64(10);
		e->posted_ns = I64(11);
		e->start_ns = I64(12);
		e->end_ns = I64(13);
		return TIME_OK(e->posted_ns, "posted_ns") && TIME_OK(e->start_ns, "start_ns") &&
		       TIME_OK(e->end_ns, "end_ns");
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
	return TIME_OK(e->start_ns, "start_ns") && TIME_OK(e->end_ns, "end_ns");
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

/* How many ranks q reads; the i-th is pt_query_rank_(q, lo, i). */
int pt_cursor_open(pt_trace *t, const pt_query *q, pt_cursor **out)
{
	*out = NULL;
	pt_query all = pt_query_all();
	if (!q)
		q = &all;
	unsigned sources = pt_query_sources_(q);
	int lo, nr = pt_query_nranks_(t, q, &lo);
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
		c->ranks[i] = pt_query_rank_(q, lo, i);
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
			err = pt_trace_fail_(t, rc, "reading events");
		ntab++;
	}
	/* A cursor runs a statement per rank and table and window, each of which
	 * would be a transaction of its own (a lock, a look for a hot journal, a
	 * check that the file has not changed: 2.5 system calls a statement, a
	 * third of the time at 2048 ranks): one read transaction spans them, as
	 * long as a cursor is open on the connection. */
	if (!err && t->cursors++ == 0 && sqlite3_get_autocommit(t->db) &&
	    (rc = sqlite3_exec(t->db, "BEGIN", NULL, NULL, NULL)) != SQLITE_OK)
		err = pt_trace_fail_(t, rc, "reading events");
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
		const char *col;
		int64_t v;
		if (!row_to_event(st, tbl, &c->ev[c->nev], &col, &v)) {
			int rank = sqlite3_column_int(st, 0);
			sqlite3_reset(st);
			return pt_logerr(PT_ECORRUPT, "%s: damaged trace: a row of '%s' (rank %d) has %s %lld",
					 c->t->path, pt_tables[tbl].name, rank, col, (long long)v);
		}
		c->nev++;
	}
	sqlite3_reset(st); /* let go of its pages */
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return pt_trace_fail_(c->t, rc, "reading events");
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

