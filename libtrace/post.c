/*
 * libtrace/post.c — passes over a recording before it is closed, for traces
 * that arrive whole rather than live (imports): move the timeline so that it
 * starts at 0, rebuild the nesting depth of ranges, and label pipeline ops
 * from annotated ranges by projecting each range onto the GPU work it
 * launched (the kernels, copies and memsets whose launching CUDA call, found
 * by correlation id, started inside it). Each pass works in SQL inside the
 * recording's open transaction, streaming rows in sorted order, so memory
 * stays bounded by the nesting depth and the number of labelled ranges, not
 * by the trace. It does not parse any input format (the importers do) and
 * does not decide which names mean which op (the caller's labels say).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "internal.h"

static int sql_fail(pt_rec *rec, sqlite3 *db, const char *what)
{
	return pt_logerr(PT_ESQL, "%s: %s: %s", pt_rec_path_(rec), what, sqlite3_errmsg(db));
}

/* ------------------------------------------------------------------ shift */

int pt_rec_shift(pt_rec *rec, int64_t delta_ns)
{
	int err;
	sqlite3 *db = pt_rec_post_begin_(rec, &err);
	if (!db)
		return err;
	for (int t = 0; t < PT_NTABLES && !err && delta_ns; t++) {
		char sql[160];
		snprintf(sql, sizeof sql, "UPDATE %s SET start_ns = start_ns + ?1, end_ns = end_ns + ?1%s",
			 pt_tables[t].name, t == PT_TBL_COMMS ? ", posted_ns = posted_ns + ?1" : "");
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
			err = sql_fail(rec, db, "shifting times");
			break;
		}
		sqlite3_bind_int64(st, 1, delta_ns);
		if (sqlite3_step(st) != SQLITE_DONE)
			err = sql_fail(rec, db, "shifting times");
		sqlite3_finalize(st);
	}
	return pt_rec_post_end_(rec, err);
}

/* ---------------------------------------------------------------- nesting */

int pt_nest_enter(pt_nest *s, int64_t start, int64_t end)
{
	while (s->n && s->end[s->n - 1] <= start)
		s->n--;
	if (pt_grow(&s->end, &s->cap, s->n + 1, sizeof *s->end))
		return -1;
	int depth = (int)s->n;
	s->end[s->n++] = end;
	return depth;
}

int pt_rec_nest_ranges(pt_rec *rec)
{
	int err;
	sqlite3 *db = pt_rec_post_begin_(rec, &err);
	if (!db)
		return err;
	sqlite3_stmt *sel = NULL, *upd = NULL;
	pt_nest stk = {0};
	if (sqlite3_prepare_v2(db,
			       "SELECT id, rank, stream, coalesce(domain, -1), start_ns, end_ns, depth FROM ranges"
			       " ORDER BY rank, stream, coalesce(domain, -1), start_ns, end_ns DESC",
			       -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE ranges SET depth = ? WHERE id = ?", -1, &upd, NULL) != SQLITE_OK) {
		err = sql_fail(rec, db, "nesting ranges");
		goto out;
	}
	int64_t key[3] = {-1, -1, -2};
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t k[3] = {sqlite3_column_int64(sel, 1), sqlite3_column_int64(sel, 2),
				sqlite3_column_int64(sel, 3)};
		if (memcmp(k, key, sizeof k)) {
			memcpy(key, k, sizeof k);
			stk.n = 0;
		}
		int depth = pt_nest_enter(&stk, sqlite3_column_int64(sel, 4), sqlite3_column_int64(sel, 5));
		if (depth < 0) {
			err = PT_ENOMEM;
			goto out;
		}
		if (depth > 255) /* the reader's depth is a byte */
			depth = 255;
		if (depth == sqlite3_column_int(sel, 6))
			continue;
		sqlite3_bind_int(upd, 1, depth);
		sqlite3_bind_int64(upd, 2, sqlite3_column_int64(sel, 0));
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		if (rc != SQLITE_DONE) {
			err = sql_fail(rec, db, "nesting ranges");
			goto out;
		}
	}
	if (rc != SQLITE_DONE)
		err = sql_fail(rec, db, "nesting ranges");
out:
	free(stk.end);
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return pt_rec_post_end_(rec, err);
}

/* --------------------------------------------------------------- labelling */

#define MAX_STREAMS 4 /* streams tracked per labelled range; the busiest wins */

/* One labelled range and the GPU work attributed to it so far. */
struct lrange {
	int64_t start, end;
	int32_t rank, device;
	uint32_t stream; /* the launching thread (CPU ranges) or the GPU stream */
	uint32_t label;	 /* index into the caller's labels */
	int ns;
	struct {
		uint32_t stream;
		int32_t device;
		int64_t first, last, busy;
	} s[MAX_STREAMS];
};

static void attribute(struct lrange *r, uint32_t stream, int32_t device, int64_t s, int64_t e)
{
	int i;
	for (i = 0; i < r->ns; i++)
		if (r->s[i].stream == stream && r->s[i].device == device)
			break;
	if (i == r->ns) {
		if (r->ns == MAX_STREAMS)
			return;
		r->ns++;
		r->s[i].stream = stream;
		r->s[i].device = device;
		r->s[i].first = s;
		r->s[i].last = e;
		r->s[i].busy = 0;
	}
	if (s < r->s[i].first)
		r->s[i].first = s;
	if (e > r->s[i].last)
		r->s[i].last = e;
	r->s[i].busy += e - s;
}

/* Load the labelled ranges, sorted by (rank, start): CPU ranges (no device)
 * into *cpu, GPU ranges into *gpu. */
static int load_ranges(pt_rec *rec, sqlite3 *db, struct lrange **cpu, size_t *ncpu, struct lrange **gpu, size_t *ngpu)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
			       "SELECT r.rank, r.stream, coalesce(r.device, -1), r.start_ns, r.end_ns, l.idx, r.id"
			       " FROM ranges r JOIN temp.pt_labels l ON l.name = r.name AND l.rank IN (r.rank, -1)"
			       " ORDER BY r.rank, r.start_ns, r.id, l.rank < 0, l.idx",
			       -1, &st, NULL) != SQLITE_OK)
		return sql_fail(rec, db, "reading labelled ranges");
	size_t cap[2] = {0, 0};
	int rc, err = 0;
	int64_t last_id = -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* a range matched by a label for its rank and a label for every
		 * rank: the first (its rank's) wins */
		int64_t id = sqlite3_column_int64(st, 6);
		if (id == last_id)
			continue;
		last_id = id;
		struct lrange r;
		memset(&r, 0, sizeof r);
		r.rank = sqlite3_column_int(st, 0);
		r.stream = (uint32_t)sqlite3_column_int64(st, 1);
		r.device = sqlite3_column_int(st, 2);
		r.start = sqlite3_column_int64(st, 3);
		r.end = sqlite3_column_int64(st, 4);
		r.label = (uint32_t)sqlite3_column_int(st, 5);
		int g = r.device >= 0;
		struct lrange **v = g ? gpu : cpu;
		size_t *n = g ? ngpu : ncpu;
		if ((err = pt_grow(v, &cap[g], *n + 1, sizeof **v)))
			break;
		(*v)[(*n)++] = r;
	}
	if (!err && rc != SQLITE_DONE)
		err = sql_fail(rec, db, "reading labelled ranges");
	sqlite3_finalize(st);
	return err;
}

/*
 * Walk the launches of one activity table in (rank, time) order and credit
 * each launched interval to the labelled CPU ranges open at its launch: those
 * on the launching thread, or, when none is, those on the rank's other
 * threads (autograd runs backward on its own thread, inside the annotation the
 * main thread opened).
 */
static int sweep(pt_rec *rec, sqlite3 *db, const char *table, struct lrange *L, size_t n)
{
	char sql[400];
	snprintf(sql, sizeof sql,
		 "SELECT rt.rank, rt.start_ns, rt.stream, g.stream, coalesce(g.device, -1), g.start_ns, g.end_ns"
		 " FROM runtime rt JOIN %s g ON g.rank = rt.rank AND g.corr = rt.corr"
		 " WHERE rt.corr IS NOT NULL ORDER BY rt.rank, rt.start_ns",
		 table);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return sql_fail(rec, db, "projecting ranges onto the GPU");
	size_t *active = NULL, nact = 0, capact = 0;
	size_t lo = 0, hi = 0, next = 0; /* the rank's slice of L, and the next range to open */
	int32_t rank = INT32_MIN;
	int rc, err = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int32_t r = sqlite3_column_int(st, 0);
		int64_t t = sqlite3_column_int64(st, 1);
		uint32_t tid = (uint32_t)sqlite3_column_int64(st, 2);
		if (r != rank) {
			rank = r;
			nact = 0;
			lo = hi;
			while (lo < n && L[lo].rank < r)
				lo++;
			hi = lo;
			while (hi < n && L[hi].rank == r)
				hi++;
			next = lo;
		}
		if (lo == hi)
			continue;
		for (; next < hi && L[next].start <= t; next++) {
			if ((err = pt_grow(&active, &capact, nact + 1, sizeof *active)))
				goto out;
			active[nact++] = next;
		}
		size_t k = 0, same = 0;
		for (size_t i = 0; i < nact; i++) {
			if (L[active[i]].end <= t)
				continue; /* closed for good: launches only move forward */
			active[k++] = active[i];
			same += L[active[i]].stream == tid;
		}
		nact = k;
		uint32_t gs = (uint32_t)sqlite3_column_int64(st, 3);
		int32_t dev = sqlite3_column_int(st, 4);
		int64_t s = sqlite3_column_int64(st, 5), e = sqlite3_column_int64(st, 6);
		for (size_t i = 0; i < nact; i++)
			if (!same || L[active[i]].stream == tid)
				attribute(&L[active[i]], gs, dev, s, e);
	}
	if (rc != SQLITE_DONE)
		err = sql_fail(rec, db, "projecting ranges onto the GPU");
out:
	free(active);
	sqlite3_finalize(st);
	return err;
}

/* The ops found, emitted once the database lock is released (the writer
 * may need it to make room in the buffers). */
struct ops {
	pt_event *v;
	size_t n, cap;
};

static int add_op(struct ops *o, const pt_op *op, int32_t rank, uint32_t stream, int32_t device, int64_t s, int64_t e)
{
	if (pt_grow(&o->v, &o->cap, o->n + 1, sizeof *o->v))
		return PT_ENOMEM;
	pt_event *ev = &o->v[o->n++];
	memset(ev, 0, sizeof *ev);
	ev->rank = rank;
	ev->step = -1;
	ev->stream = stream;
	ev->device = device;
	ev->start_ns = ev->posted_ns = s;
	ev->end_ns = e;
	ev->op = *op;
	return 0;
}

int pt_rec_label_ranges(pt_rec *rec, const pt_range_label *labels, size_t n, pt_label_stats *stats)
{
	pt_label_stats zero = {0};
	if (!stats)
		stats = &zero;
	memset(stats, 0, sizeof *stats);
	if (!n)
		return 0;
	int err;
	sqlite3 *db = pt_rec_post_begin_(rec, &err);
	if (!db)
		return err;
	struct lrange *cpu = NULL, *gpu = NULL;
	size_t ncpu = 0, ngpu = 0;
	struct ops ops = {0};
	sqlite3_stmt *ins = NULL;
	char *msg = NULL;
	if (sqlite3_exec(db,
			 "DROP TABLE IF EXISTS temp.pt_labels;"
			 "CREATE TEMP TABLE pt_labels(rank INTEGER, name INTEGER, idx INTEGER)",
			 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO temp.pt_labels VALUES (?, ?, ?)", -1, &ins, NULL) != SQLITE_OK) {
		sqlite3_free(msg);
		err = sql_fail(rec, db, "labelling ranges");
		goto out;
	}
	for (size_t i = 0; i < n && !err; i++) {
		sqlite3_bind_int(ins, 1, labels[i].rank < 0 ? -1 : labels[i].rank);
		sqlite3_bind_int64(ins, 2, labels[i].name);
		sqlite3_bind_int64(ins, 3, (int64_t)i);
		if (sqlite3_step(ins) != SQLITE_DONE)
			err = sql_fail(rec, db, "labelling ranges");
		sqlite3_reset(ins);
	}
	if (!err)
		err = load_ranges(rec, db, &cpu, &ncpu, &gpu, &ngpu);
	static const char *const work[] = {"kernels", "memcpy", "memset"};
	for (size_t i = 0; i < sizeof work / sizeof work[0] && !err && ncpu; i++)
		err = sweep(rec, db, work[i], cpu, ncpu);
	stats->ranges = (int64_t)ncpu;
	for (size_t i = 0; i < ncpu && !err; i++) {
		struct lrange *r = &cpu[i];
		if (!r->ns) {
			stats->idle++;
			continue;
		}
		int m = 0;
		for (int j = 1; j < r->ns; j++)
			if (r->s[j].busy > r->s[m].busy)
				m = j;
		err = add_op(&ops, &labels[r->label].op, r->rank, r->s[m].stream, r->s[m].device, r->s[m].first,
			     r->s[m].last);
		stats->ops++;
		stats->kinds[labels[r->label].op.kind % PT_OP_KIND_MAX]++;
	}
	/* GPU-side ranges (a profiler's own projection) label a rank whose CPU
	 * annotations did not; both at once would count every op twice. */
	for (size_t i = 0, c = 0; i < ngpu && !err; i++) {
		while (c < ncpu && cpu[c].rank < gpu[i].rank)
			c++;
		if (c < ncpu && cpu[c].rank == gpu[i].rank)
			continue;
		err = add_op(&ops, &labels[gpu[i].label].op, gpu[i].rank, gpu[i].stream, gpu[i].device, gpu[i].start,
			     gpu[i].end);
		stats->ranges++;
		stats->ops++;
		stats->kinds[labels[gpu[i].label].op.kind % PT_OP_KIND_MAX]++;
	}
	if (!err && sqlite3_exec(db, "DROP TABLE temp.pt_labels", NULL, NULL, NULL) != SQLITE_OK)
		err = sql_fail(rec, db, "labelling ranges");
out:
	sqlite3_finalize(ins);
	free(cpu);
	free(gpu);
	err = pt_rec_post_end_(rec, err);
	pt_tbuf *b = err || !ops.n ? NULL : pt_rec_thread(rec);
	if (!err && ops.n && !b)
		err = PT_ENOMEM;
	for (size_t i = 0; b && i < ops.n; i++)
		pt_emit(b, &ops.v[i]);
	free(ops.v);
	return err;
}
