/*
 * libtrace/reader.c — the one way to read a trace. Opening checks that the
 * file is a whole pipetrace database (schema.c) and loads its metadata,
 * ranks, streams and strings; queries count events and find their span.
 * Cursors, which deliver the events, are cursor.c's. Writing is rec.c's job;
 * what the events mean is the consumers'.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "internal.h"

int pt_trace_fail_(pt_trace *t, int rc, const char *what)
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
		return pt_trace_fail_(t, rc, "reading meta");
	int err = 0;
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = pt_grow(&t->meta, &cap, (size_t)t->nmeta + 1, sizeof *t->meta)))
			break;
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
		err = pt_trace_fail_(t, rc, "reading meta");
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
		return pt_trace_fail_(t, rc, "reading ranks");
	int err = 0;
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = pt_grow(&t->ranks, &cap, (size_t)t->nranks + 1, sizeof *t->ranks)))
			break;
		pt_rank_info *ri = &t->ranks[t->nranks++];
		memset(ri, 0, sizeof *ri);
		int64_t rank = sqlite3_column_int64(st, 0);
		if (rank < 0 || rank > PT_RANK_MAX_) {
			err = pt_logerr(PT_ECORRUPT, "%s: damaged trace: 'ranks' has rank %lld (ranks are 0 to %d)", t->path,
					(long long)rank, PT_RANK_MAX_);
			break;
		}
		ri->rank = (int)rank;
		ri->device = sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 1);
		ri->theory_bubble_ns =
			sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
		ri->theory_peak_act = sqlite3_column_type(st, 3) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 3);
		if (ri->theory_bubble_ns < -1 || ri->theory_bubble_ns > PT_TIME_MAX_) {
			err = pt_logerr(PT_ECORRUPT, "%s: damaged trace: rank %d's theory_bubble_ns is %lld", t->path,
					ri->rank, (long long)ri->theory_bubble_ns);
			break;
		}
		ri->nchunks = sqlite3_column_int(st, 4);
		const char *l = (const char *)sqlite3_column_text(st, 5);
		snprintf(ri->label, sizeof ri->label, "%s", l ? l : "");
	}
	sqlite3_finalize(st);
	if (!err && rc != SQLITE_DONE)
		err = pt_trace_fail_(t, rc, "reading ranks");
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
			return pt_trace_fail_(t, rc, "reading events");
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			int64_t lo64 = sqlite3_column_int64(st, 0), hi64 = sqlite3_column_int64(st, 1);
			if (lo64 < 0 || hi64 > PT_RANK_MAX_) {
				sqlite3_finalize(st);
				return pt_logerr(PT_ECORRUPT, "%s: damaged trace: '%s' has rank %lld (ranks are 0 to %d)",
						 t->path, pt_tables[i].name, (long long)(lo64 < 0 ? lo64 : hi64),
						 PT_RANK_MAX_);
			}
			int lo = (int)lo64, hi = (int)hi64;
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
			return pt_trace_fail_(t, rc, "reading events");
	}
	return 0;
}

static int load_streams(pt_trace *t)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(t->db, "SELECT rank, stream, role, name FROM streams ORDER BY rank, stream", -1,
				    &st, NULL);
	if (rc != SQLITE_OK)
		return pt_trace_fail_(t, rc, "reading streams");
	int err = 0;
	size_t cap = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = pt_grow(&t->streams, &cap, (size_t)t->nstreams + 1, sizeof *t->streams)))
			break;
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
		err = pt_trace_fail_(t, rc, "reading streams");
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
	sqlite3_finalize(t->plan_st);
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
		return pt_trace_fail_(t, rc, "reading strings");
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
	return rc == SQLITE_DONE ? 0 : pt_trace_fail_(t, rc, "reading strings");
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
		return pt_trace_fail_(t, rc, "reading chunks");
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
		return pt_trace_fail_(t, rc, "reading chunks");
	return n < max ? n : max;
}

/* A plan row's columns, as plan_row decodes them. SQLite fills in the
 * absent values, cheaper than a type test per column here: reading plans
 * is most of what `stats` spends on its prediction. */
#define PLAN_COLS                                                                                                    \
	"kind, coalesce(chunk, -1), coalesce(mb, -1), coalesce(chunk2, -1), coalesce(mb2, -1), coalesce(payload, 0), " \
	"coalesce(peer, -1), coalesce(seq, -1), coalesce(batch, -1), bytes, coalesce(phase, 0), coalesce(tag, 0)"

/* The columns that a pt_op holds in fewer bits than SQLite (in plan_row's
 * v[] in this order): a value that does not fit is corruption, not
 * something to wrap silently (kind 257 would read back as F, chunk 65536
 * as 0). */
static const struct {
	int col;
	int64_t lo, hi;
	const char *name;
} narrow[] = {{0, 0, UINT8_MAX, "kind"},	 {1, INT16_MIN, INT16_MAX, "chunk"}, {3, INT16_MIN, INT16_MAX, "chunk2"},
	      {5, 0, UINT8_MAX, "payload"}, {10, 0, UINT8_MAX, "phase"},	 {11, 0, UINT8_MAX, "tag"}};

/* One plan row of rank's step `step` as an op; PT_ECORRUPT (logged, naming
 * the file, rank, step and column) for a value its field cannot hold. Each
 * column is read once: this runs for every op `stats` re-simulates. */
static int plan_row(pt_trace *t, sqlite3_stmt *st, int rank, int64_t step, pt_op *o)
{
	int64_t v[sizeof narrow / sizeof *narrow];
	for (size_t i = 0; i < sizeof narrow / sizeof *narrow; i++) {
		v[i] = sqlite3_column_int64(st, narrow[i].col);
		if (v[i] < narrow[i].lo || v[i] > narrow[i].hi)
			return pt_logerr(PT_ECORRUPT, "%s: the plan of rank %d, step %lld: %s %lld is out of range",
					 t->path, rank, (long long)step, narrow[i].name, (long long)v[i]);
	}
	memset(o, 0, sizeof *o);
	o->kind = (uint8_t)v[0];
	o->chunk = (int16_t)v[1];
	o->mb = sqlite3_column_int(st, 2);
	o->chunk2 = (int16_t)v[2];
	o->mb2 = sqlite3_column_int(st, 4);
	o->payload = (uint8_t)v[3];
	o->peer = sqlite3_column_int(st, 6);
	o->seq = sqlite3_column_int(st, 7);
	o->batch = sqlite3_column_int(st, 8);
	o->bytes = sqlite3_column_int64(st, 9);
	o->phase = (uint8_t)v[4];
	o->tag = (uint8_t)v[5];
	return 0;
}

int pt_trace_plan(pt_trace *t, int rank, pt_op **ops, size_t *n)
{
	*ops = NULL;
	*n = 0;
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(t->db, "SELECT " PLAN_COLS " FROM plan WHERE rank=? ORDER BY step", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return pt_trace_fail_(t, rc, "reading the plan");
	sqlite3_bind_int(st, 1, rank);
	size_t cap = 0;
	int err = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = pt_grow(ops, &cap, *n + 1, sizeof **ops)) ||
		    (err = plan_row(t, st, rank, (int64_t)*n, &(*ops)[*n])))
			break;
		(*n)++;
	}
	sqlite3_finalize(st);
	if (!err && rc != SQLITE_DONE)
		err = pt_trace_fail_(t, rc, "reading the plan");
	if (err) {
		free(*ops);
		*ops = NULL;
		*n = 0;
	}
	return err;
}

int pt_trace_plan_read(pt_trace *t, int rank, int64_t *step, pt_op *ops, size_t max, size_t *n)
{
	*n = 0;
	int rc;
	if (!t->plan_st &&
	    (rc = sqlite3_prepare_v2(t->db,
				     "SELECT " PLAN_COLS ", step FROM plan WHERE rank=?1 AND step>=?2 ORDER BY step LIMIT ?3",
				     -1, &t->plan_st, NULL)) != SQLITE_OK)
		return pt_trace_fail_(t, rc, "reading the plan");
	sqlite3_stmt *st = t->plan_st;
	sqlite3_reset(st);
	sqlite3_bind_int(st, 1, rank);
	sqlite3_bind_int64(st, 2, *step);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max);
	int err = 0;
	while (*n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t s = sqlite3_column_int64(st, 12);
		if ((err = plan_row(t, st, rank, s, &ops[*n])))
			break;
		(*n)++;
		*step = s + 1;
	}
	if (!err && *n < max && rc != SQLITE_DONE)
		err = pt_trace_fail_(t, rc, "reading the plan");
	sqlite3_reset(st);
	return err;
}

int pt_trace_send_posted(pt_trace *t, int sender, int receiver, const int64_t *seq, size_t n, int64_t *posted)
{
	if (!n)
		return 0;
	sqlite3_stmt *st;
	/* the table's key order, (rank, start_ns, id): time order, as a cursor */
	int rc = sqlite3_prepare_v2(t->db, "SELECT peer, seq, posted_ns FROM comms WHERE rank=?1 AND kind=?2", -1, &st,
				    NULL);
	if (rc != SQLITE_OK)
		return pt_trace_fail_(t, rc, "reading messages");
	sqlite3_bind_int(st, 1, sender);
	sqlite3_bind_int(st, 2, PT_OP_SEND);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_int(st, 0) != receiver)
			continue;
		int64_t s = sqlite3_column_int(st, 1); /* int32, as pt_op.seq holds it */
		size_t lo = 0, hi = n;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (seq[mid] < s)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n && seq[lo] == s) {
			int64_t v = sqlite3_column_int64(st, 2);
			if (v < -PT_TIME_MAX_ || v > PT_TIME_MAX_) { /* as a cursor refuses it */
				sqlite3_finalize(st);
				return pt_logerr(PT_ECORRUPT, "%s: damaged trace: a row of 'comms' (rank %d) has posted_ns %lld",
						 t->path, sender, (long long)v);
			}
			posted[lo] = v;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : pt_trace_fail_(t, rc, "reading messages");
}

/* ---------------------------------------------------------------- queries */

pt_query pt_query_all(void)
{
	pt_query q;
	memset(&q, 0, sizeof q);
	q.rank = -1;
	q.from_ns = INT64_MIN;
	q.to_ns = INT64_MAX;
	return q;
}

unsigned pt_query_sources_(const pt_query *q)
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

int pt_query_nranks_(const pt_trace *t, const pt_query *q, int *lo)
{
	*lo = q->rank >= 0 ? q->rank : t->min_rank;
	int hi = q->rank >= 0 ? q->rank : t->max_rank;
	return q->ranks ? q->nranks : hi >= *lo ? hi - *lo + 1 : 0;
}

int pt_query_rank_(const pt_query *q, int lo, int i) { return q->ranks ? q->ranks[i] : lo + i; }

int64_t pt_trace_count(pt_trace *t, const pt_query *q)
{
	pt_query all = pt_query_all();
	if (!q)
		q = &all;
	unsigned sources = pt_query_sources_(q);
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
			return pt_trace_fail_(t, rc, "counting events");
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
			return pt_trace_fail_(t, rc, "counting events");
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
		return pt_trace_fail_(t, rc, "reading the time span");
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
	unsigned sources = pt_query_sources_(q);
	int lo, nr = pt_query_nranks_(t, q, &lo);
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
				err = pt_trace_fail_(t, rc, "reading the time span");
		}
		for (int i = 0; i < nr && !err; i++) {
			int r = pt_query_rank_(q, lo, i);
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
