/*
 * libtrace/rec.c — the recorder: the hot path and the writer thread.
 *
 * Each recording thread owns a ring of fixed-size chunks of pt_event records.
 * The hot path (pt_begin/pt_end/pt_emit) fills the current chunk with plain
 * stores: no lock, no allocation, no system call. A full chunk is handed to the
 * writer by one release store; the writer drains full chunks in ring order,
 * pairs begins with ends, converts clock ticks to ns and inserts rows with
 * multi-row prepared statements inside batched transactions. When a thread
 * laps the writer it waits (counted as a stall) rather than dropping events.
 * An idle writer naps longer and longer (200 µs up to 10 ms) and a producer
 * handing over a chunk wakes it: polling at a fixed 200 µs cost a tenth of a
 * core on virtual machines where every wake-up is expensive.
 *
 * The database is built in a temporary file beside the target and renamed
 * over it by pt_rec_close only, so no reader ever sees a half-written trace.
 * This file does not read traces (reader.c) nor define the schema (schema.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

static __thread pt_rec *tl_rec;
static __thread pt_tbuf *tl_buf;

/* ----------------------------------------------------------- SQL helpers */

static int exec(pt_rec *r, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(r->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		pt_log(PT_LOG_ERROR, "%s: writing the trace failed: %s", r->path, msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return pt_sqlite_err(rc) ? pt_sqlite_err(rc) : PT_ESQL;
	}
	return 0;
}

/* Columns of each event table, in the order bind_row binds them. */
static const struct cols {
	const char *names;
	int n;
} table_cols[NTBL] = {
	[PT_TBL_OPS] = {"rank,stream,step,kind,chunk,mb,chunk2,mb2,start_ns,end_ns", 10},
	[PT_TBL_COMMS] = {"rank,stream,step,kind,payload,chunk,mb,peer,seq,batch,bytes,posted_ns,start_ns,end_ns", 14},
	[PT_TBL_KERNELS] = {"rank,stream,device,start_ns,end_ns,name,corr,ext", 8},
	[PT_TBL_MEMCPY] = {"rank,stream,device,start_ns,end_ns,name,corr,ext,bytes,copy_kind", 10},
	[PT_TBL_MEMSET] = {"rank,stream,device,start_ns,end_ns,name,corr,ext,bytes", 9},
	[PT_TBL_SYNC] = {"rank,stream,device,start_ns,end_ns,name,corr,ext,sync_type", 9},
	[PT_TBL_RUNTIME] = {"rank,stream,device,start_ns,end_ns,name,corr,ext", 8},
	[PT_TBL_RANGES] = {"rank,stream,device,start_ns,end_ns,name,corr,ext,depth,domain", 10},
};

static int prepare_insert(pt_rec *r, const char *table, const char *cols, int ncols, int nrows,
			  sqlite3_stmt **out)
{
	size_t cap = 64 + strlen(table) + strlen(cols) + (size_t)nrows * ((size_t)ncols * 2 + 4);
	char *sql = malloc(cap);
	if (!sql)
		return PT_ENOMEM;
	size_t p = (size_t)snprintf(sql, cap, "INSERT INTO %s(%s) VALUES ", table, cols);
	for (int i = 0; i < nrows; i++) {
		sql[p++] = i ? ',' : ' ';
		sql[p++] = '(';
		for (int c = 0; c < ncols; c++) {
			if (c)
				sql[p++] = ',';
			sql[p++] = '?';
		}
		sql[p++] = ')';
	}
	sql[p] = '\0';
	int rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return pt_logerr(PT_ESQL, "%s: preparing inserts: %s", r->path, sqlite3_errmsg(r->db));
	return 0;
}

/* Column values of event e for table tbl, in table_cols order; a negative
 * optional id is NULL. */
static void to_row(int tbl, const pt_event *e, struct row *w)
{
	const pt_op *o = &e->op;
	int64_t *v = w->v;
	uint32_t nulls = 0;
	int k = 0;
#define OPT(x)                                                                                                         \
	do {                                                                                                           \
		int64_t x_ = (x);                                                                                      \
		if (x_ < 0)                                                                                            \
			nulls |= 1u << k;                                                                              \
		v[k++] = x_;                                                                                           \
	} while (0)
	v[k++] = e->rank;
	v[k++] = e->stream;
	if (tbl == PT_TBL_OPS || tbl == PT_TBL_COMMS) {
		OPT(e->step);
		v[k++] = o->kind;
	}
	switch (tbl) {
	case PT_TBL_OPS:
		v[k++] = o->chunk;
		v[k++] = o->mb;
		OPT(o->kind == PT_OP_FB ? o->chunk2 : -1);
		OPT(o->kind == PT_OP_FB ? o->mb2 : -1);
		break;
	case PT_TBL_COMMS:
		v[k++] = o->payload;
		v[k++] = o->chunk;
		v[k++] = o->mb;
		v[k++] = o->peer;
		v[k++] = o->seq;
		v[k++] = o->batch;
		v[k++] = o->bytes;
		v[k++] = e->posted_ns;
		break;
	default:
		OPT(e->device);
		break;
	}
	v[k++] = e->start_ns;
	v[k++] = e->end_ns;
	if (tbl >= PT_TBL_KERNELS) {
		OPT(e->name ? (int64_t)e->name : -1);
		OPT(e->corr ? e->corr : -1);
		OPT(e->ext ? e->ext : -1);
		switch (tbl) {
		case PT_TBL_MEMCPY:
			v[k++] = o->bytes;
			v[k++] = o->payload;
			break;
		case PT_TBL_MEMSET:
			v[k++] = o->bytes;
			break;
		case PT_TBL_SYNC:
			v[k++] = o->payload;
			break;
		case PT_TBL_RANGES:
			v[k++] = o->payload;
			OPT(o->seq > 0 ? o->seq : -1);
			break;
		}
	}
#undef OPT
	w->nulls = nulls;
}

static int bind_row(sqlite3_stmt *st, int k, int ncols, const struct row *w)
{
	for (int c = 0; c < ncols; c++, k++) {
		if (w->nulls & (1u << c))
			sqlite3_bind_null(st, k);
		else
			sqlite3_bind_int64(st, k, w->v[c]);
	}
	return k;
}

static int step_stmt(pt_rec *r, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		pt_log(PT_LOG_ERROR, "%s: writing events failed: %s", r->path, sqlite3_errmsg(r->db));
		return pt_sqlite_err(rc) ? pt_sqlite_err(rc) : PT_ESQL;
	}
	return 0;
}

static int commit_if_due(pt_rec *r, int force)
{
	if (!r->rows_uncommitted || (!force && r->rows_uncommitted < ROWS_PER_COMMIT))
		return 0;
	r->rows_uncommitted = 0;
	return exec(r, "COMMIT; BEGIN");
}

static int flush_stage(pt_rec *r, int tbl)
{
	struct stage *s = &r->stage[tbl];
	int err = 0;
	if (!s->n)
		return 0;
	int64_t t0 = pt_mono_ns();
	int ncols = table_cols[tbl].n;
	if (s->n == ROWS_PER_INSERT) {
		int k = 1;
		for (int i = 0; i < s->n; i++)
			k = bind_row(s->many, k, ncols, &s->rows[i]);
		err = step_stmt(r, s->many);
	} else {
		for (int i = 0; i < s->n && !err; i++) {
			bind_row(s->one, 1, ncols, &s->rows[i]);
			err = step_stmt(r, s->one);
		}
	}
	r->rows += (uint64_t)s->n;
	r->rows_uncommitted += (uint64_t)s->n;
	s->n = 0;
	r->insert_ns += pt_mono_ns() - t0;
	return err;
}

/* Stage one finished event (times already in trace ns). db_lock held. */
static int put_row(pt_rec *r, const pt_event *e)
{
	int tbl = pt_table_of_kind(e->op.kind);
	struct stage *s = &r->stage[tbl];
	to_row(tbl, e, &s->rows[s->n++]);
	if (s->n < ROWS_PER_INSERT)
		return 0;
	int err = flush_stage(r, tbl);
	return err ? err : commit_if_due(r, 0);
}

/* ------------------------------------------------------------ the writer */

static int64_t to_ns(pt_rec *r, int64_t t)
{
	switch (r->clock) {
	case PT_CLOCK_VIRTUAL:
		return t;
	case PT_CLOCK_MONOTONIC:
		return t - r->t0_mono;
	case PT_CLOCK_TSC:
		if (!r->tsc)
			return t - r->t0_mono;
		return pt_tickmap_ns(&r->tm, t) - r->t0_mono;
	}
	return t;
}

/* Turn one buffered record into rows. db_lock held. */
static int consume(pt_rec *r, pt_tbuf *b, const pt_event *e)
{
	pt_event ev;
	switch (e->flags_) {
	case PT_REC_COMPLETE:
		ev = *e;
		ev.flags_ = 0;
		return put_row(r, &ev);
	case PT_REC_COMPLETE_TICKS:
		ev = *e;
		ev.flags_ = 0;
		ev.start_ns = to_ns(r, e->start_ns);
		ev.end_ns = to_ns(r, e->end_ns);
		ev.posted_ns = to_ns(r, e->posted_ns);
		return put_row(r, &ev);
	case PT_REC_BEGIN:
		if (b->nopen == MAX_OPEN) {
			r->unclosed++;
			return 0;
		}
		b->open[b->nopen++] = *e;
		return 0;
	case PT_REC_END:
		for (int i = b->nopen - 1; i >= 0; i--) {
			if (b->open[i].rank != e->rank || b->open[i].stream != e->stream)
				continue;
			ev = b->open[i];
			memmove(&b->open[i], &b->open[i + 1], (size_t)(b->nopen - i - 1) * sizeof ev);
			b->nopen--;
			ev.flags_ = 0;
			ev.start_ns = to_ns(r, ev.start_ns);
			ev.posted_ns = ev.start_ns;
			ev.end_ns = to_ns(r, e->start_ns);
			return put_row(r, &ev);
		}
		r->unmatched++;
		return 0;
	}
	return 0;
}

/* Drain the full chunks of every buffer, in ring order. db_lock held. */
static int drain(pt_rec *r)
{
	int err = 0, any = 0;
	pthread_mutex_lock(&r->reg_lock);
	pt_tbuf *list = r->tbufs;
	pthread_mutex_unlock(&r->reg_lock);
	/* Decide which chunks to drain, then take the clock sample: every tick
	 * converted below was read before that sample, so it is interpolated. */
	for (pt_tbuf *b = list; b; b = b->next) {
		uint32_t k = 0, i = b->wnext;
		while (k < b->nchunks && atomic_load_explicit(&b->chunks[i].full, memory_order_acquire)) {
			k++;
			i = (i + 1) % b->nchunks;
		}
		b->wready = k;
		any |= k > 0;
	}
	if (!any)
		return 0;
	if (r->tsc)
		pt_tickmap_sample(&r->tm);
	for (pt_tbuf *b = list; b && !err; b = b->next) {
		for (; b->wready && !err; b->wready--) {
			struct chunk *c = &b->chunks[b->wnext];
			for (uint32_t i = 0; i < c->count && !err; i++)
				err = consume(r, b, &c->ev[i]);
			atomic_store_explicit(&c->full, 0, memory_order_release);
			b->wnext = (b->wnext + 1) % b->nchunks;
		}
	}
	return err;
}

/* Whether some buffer has a full chunk waiting for the writer. */
static int work_waiting(pt_rec *r)
{
	int any = 0;
	pthread_mutex_lock(&r->reg_lock);
	for (pt_tbuf *b = r->tbufs; b && !any; b = b->next)
		any = atomic_load(&b->chunks[b->wnext].full) != 0;
	pthread_mutex_unlock(&r->reg_lock);
	return any;
}

enum { NAP_MIN_NS = 200000, NAP_MAX_NS = 10000000 };

static void *writer_main(void *arg)
{
	pt_rec *r = arg;
	int64_t nap = NAP_MIN_NS;
	while (!atomic_load(&r->stop)) {
		pthread_mutex_lock(&r->db_lock);
		uint64_t before = r->rows + r->stage[0].n + r->stage[1].n;
		int err = r->err ? 0 : drain(r);
		if (err && !r->err)
			r->err = err;
		int busy = !r->err && r->rows + r->stage[0].n + r->stage[1].n != before;
		if (r->tsc && !r->err && !busy)
			pt_tickmap_sample(&r->tm);
		pthread_mutex_unlock(&r->db_lock);
		if (busy) {
			nap = NAP_MIN_NS;
			continue;
		}
		/* idle: nap, each time longer, unless a chunk is handed over */
		pthread_mutex_lock(&r->wake_mu);
		atomic_store(&r->sleeping, 1);
		if (!r->wake_pending && !atomic_load(&r->stop) && !work_waiting(r)) {
			struct timespec until;
			clock_gettime(CLOCK_REALTIME, &until);
			int64_t ns = until.tv_nsec + nap;
			until.tv_sec += ns / 1000000000;
			until.tv_nsec = ns % 1000000000;
			pthread_cond_timedwait(&r->wake_cv, &r->wake_mu, &until);
		}
		r->wake_pending = 0;
		atomic_store(&r->sleeping, 0);
		pthread_mutex_unlock(&r->wake_mu);
		nap = nap * 2 > NAP_MAX_NS ? NAP_MAX_NS : nap * 2;
	}
	return NULL;
}

static void wake_writer(pt_rec *r)
{
	pthread_mutex_lock(&r->wake_mu);
	r->wake_pending = 1;
	pthread_cond_signal(&r->wake_cv);
	pthread_mutex_unlock(&r->wake_mu);
}

/* ------------------------------------------------------------- producers */

static void tbuf_free(pt_tbuf *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; b->chunks && i < b->nchunks; i++)
		free(b->chunks[i].ev);
	free(b->chunks);
	free(b);
}

pt_tbuf *pt_rec_thread(pt_rec *rec)
{
	if (tl_rec == rec && tl_buf)
		return tl_buf;
	pthread_t self = pthread_self();
	pthread_mutex_lock(&rec->reg_lock);
	for (pt_tbuf *b = rec->tbufs; b; b = b->next) {
		if (pthread_equal(b->owner, self)) {
			pthread_mutex_unlock(&rec->reg_lock);
			tl_rec = rec;
			tl_buf = b;
			return b;
		}
	}
	pthread_mutex_unlock(&rec->reg_lock);

	pt_tbuf *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->rec = rec;
	b->owner = self;
	b->hot.tsc = rec->tsc;
	b->nchunks = rec->nchunks;
	b->hot.cap = rec->chunk_events;
	b->chunks = calloc(b->nchunks, sizeof *b->chunks);
	if (!b->chunks) {
		tbuf_free(b);
		return NULL;
	}
	for (uint32_t i = 0; i < b->nchunks; i++) {
		size_t bytes = (size_t)b->hot.cap * sizeof(pt_event);
		b->chunks[i].ev = malloc(bytes);
		if (!b->chunks[i].ev) {
			tbuf_free(b);
			return NULL;
		}
		/* Live clocks: fault every page in now, so the hot path never
		 * does. A virtual clock (sim, import) is not timing itself. */
		if (rec->clock != PT_CLOCK_VIRTUAL)
			for (size_t off = 0; off < bytes; off += 4096)
				((volatile char *)b->chunks[i].ev)[off] = 0;
	}
	b->hot.ev = b->chunks[0].ev;
	pthread_mutex_lock(&rec->reg_lock);
	b->next = rec->tbufs;
	rec->tbufs = b;
	pthread_mutex_unlock(&rec->reg_lock);
	tl_rec = rec;
	tl_buf = b;
	return b;
}

/* Hand the current chunk to the writer and take the next one. */
void pt_tbuf_advance_(pt_tbuf *b)
{
	struct chunk *c = &b->chunks[b->cur];
	c->count = b->hot.pos;
	atomic_store(&c->full, 1); /* seq_cst: pairs with the writer's `sleeping` */
	if (atomic_load(&b->rec->sleeping))
		wake_writer(b->rec);
	b->cur = (b->cur + 1) % b->nchunks;
	c = &b->chunks[b->cur];
	if (atomic_load_explicit(&c->full, memory_order_acquire)) {
		b->stalls++;
		struct timespec nap = {0, 50000};
		while (atomic_load_explicit(&c->full, memory_order_acquire))
			nanosleep(&nap, NULL);
	}
	b->hot.ev = c->ev;
	b->hot.pos = 0;
}

int64_t pt_mono_ticks_(void) { return pt_mono_ns(); }

int64_t pt_rec_ticks(const pt_rec *rec)
{
	if (rec->clock == PT_CLOCK_VIRTUAL)
		return 0;
	return rec->tsc ? pt_tsc_read() : pt_mono_ns();
}

void pt_emit(pt_tbuf *b, const pt_event *ev)
{
	pt_event *e = pt_slot_(b);
	*e = *ev;
	e->flags_ = PT_REC_COMPLETE;
}

void pt_emit_ticks(pt_tbuf *b, const pt_event *ev)
{
	pt_event *e = pt_slot_(b);
	*e = *ev;
	e->flags_ = PT_REC_COMPLETE_TICKS;
}

int64_t pt_rec_origin(const pt_rec *rec) { return rec->clock == PT_CLOCK_VIRTUAL ? 0 : rec->t0_mono; }

/* FNV-1a */
static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int str_grow(pt_rec *r)
{
	uint32_t cap = r->capstrs ? r->capstrs * 2 : 1024;
	struct str_slot *n = calloc(cap, sizeof *n);
	if (!n)
		return PT_ENOMEM;
	for (uint32_t i = 0; i < r->capstrs; i++) {
		if (!r->strs[i].s)
			continue;
		uint32_t j = (uint32_t)r->strs[i].hash & (cap - 1);
		while (n[j].s)
			j = (j + 1) & (cap - 1);
		n[j] = r->strs[i];
	}
	free(r->strs);
	r->strs = n;
	r->capstrs = cap;
	return 0;
}

uint32_t pt_rec_intern(pt_rec *r, const char *s)
{
	if (!s)
		return 0;
	uint64_t h = str_hash(s);
	uint32_t id = 0;
	pthread_mutex_lock(&r->str_lock);
	if ((r->nstrs + 1) * 2 > r->capstrs && str_grow(r)) {
		pthread_mutex_unlock(&r->str_lock);
		return 0;
	}
	uint32_t j = (uint32_t)h & (r->capstrs - 1);
	while (r->strs[j].s) {
		if (r->strs[j].hash == h && strcmp(r->strs[j].s, s) == 0) {
			id = r->strs[j].id;
			goto out;
		}
		j = (j + 1) & (r->capstrs - 1);
	}
	char *copy = strdup(s);
	if (!copy)
		goto out;
	pthread_mutex_lock(&r->db_lock);
	sqlite3_bind_int64(r->ins_str, 1, (int64_t)r->nstrs + 1);
	sqlite3_bind_text(r->ins_str, 2, s, -1, SQLITE_STATIC);
	int rc = sqlite3_step(r->ins_str);
	sqlite3_reset(r->ins_str);
	pthread_mutex_unlock(&r->db_lock);
	if (rc != SQLITE_DONE) {
		pt_log(PT_LOG_ERROR, "%s: storing a string: %s", r->path, sqlite3_errstr(rc));
		free(copy);
		goto out;
	}
	id = ++r->nstrs;
	r->strs[j] = (struct str_slot){h, id, copy};
out:
	pthread_mutex_unlock(&r->str_lock);
	return id;
}

/* ---------------------------------------------------------- create/close */

static void rec_free(pt_rec *r)
{
	if (!r)
		return;
	for (int t = 0; t < NTBL; t++) {
		sqlite3_finalize(r->stage[t].one);
		sqlite3_finalize(r->stage[t].many);
	}
	sqlite3_finalize(r->ins_str);
	if (r->db)
		sqlite3_close(r->db);
	for (uint32_t i = 0; i < r->capstrs; i++)
		free(r->strs[i].s);
	free(r->strs);
	pthread_mutex_destroy(&r->str_lock);
	pthread_mutex_destroy(&r->wake_mu);
	pthread_cond_destroy(&r->wake_cv);
	pt_tbuf *b = r->tbufs;
	while (b) {
		pt_tbuf *n = b->next;
		tbuf_free(b);
		b = n;
	}
	if (tl_rec == r) {
		tl_rec = NULL;
		tl_buf = NULL;
	}
	pt_tickmap_fini(&r->tm);
	pthread_mutex_destroy(&r->db_lock);
	pthread_mutex_destroy(&r->reg_lock);
	free(r->path);
	free(r->tmp);
	free(r);
}

static char *temp_path(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
	const char *base = slash ? slash + 1 : path;
	size_t cap = strlen(path) + 64;
	char *tmp = malloc(cap);
	if (tmp)
		snprintf(tmp, cap, "%.*s.%s.tmp-%ld-%lx", (int)dirlen, path, base, (long)getpid(),
			 (unsigned long)(pt_mono_ns() & 0xffffff));
	return tmp;
}

int pt_rec_create(const char *path, const pt_rec_opts *opts, pt_rec **out)
{
	pt_rec_opts def = {0};
	if (!opts)
		opts = &def;
	*out = NULL;
	struct stat st;
	if (!opts->overwrite && stat(path, &st) == 0)
		return pt_logerr(PT_EEXIST, "%s: already exists; not replacing it", path);

	pt_rec *r = calloc(1, sizeof *r);
	if (!r)
		return PT_ENOMEM;
	pthread_mutex_init(&r->db_lock, NULL);
	pthread_mutex_init(&r->reg_lock, NULL);
	pthread_mutex_init(&r->str_lock, NULL);
	pthread_mutex_init(&r->wake_mu, NULL);
	pthread_cond_init(&r->wake_cv, NULL);
	r->clock = opts->clock;
	r->tsc = opts->clock == PT_CLOCK_TSC && pt_tsc_usable();
	r->chunk_events = opts->chunk_events ? opts->chunk_events : 4096;
	r->nchunks = opts->chunks ? opts->chunks : 16;
	if (r->nchunks < 2)
		r->nchunks = 2;
	r->path = strdup(path);
	r->tmp = temp_path(path);
	int err = 0;
	if (!r->path || !r->tmp) {
		err = PT_ENOMEM;
		goto fail;
	}
	int fd = open(r->tmp, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0) {
		/* a path the user cannot write to is bad input, not an I/O failure */
		int code = errno == ENOENT || errno == ENOTDIR				 ? PT_ENOENT
			   : errno == EACCES || errno == EROFS || errno == EISDIR || errno == EPERM ? PT_EINVAL
											   : PT_EIO;
		err = pt_logerr(code, "%s: cannot write here: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	int rc = sqlite3_open_v2(r->tmp, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		err = pt_logerr(PT_EIO, "%s: cannot create the database: %s", path,
				r->db ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
		goto fail;
	}
	char pragmas[256];
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA page_size=16384; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
		 "PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-32768;"
		 "PRAGMA application_id=%d; PRAGMA user_version=0;",
		 PT_APPLICATION_ID);
	if ((err = exec(r, pragmas)) || (err = exec(r, "BEGIN")) || (err = exec(r, pt_schema_sql)))
		goto fail;
	for (int t = 0; t < NTBL && !err; t++) {
		err = prepare_insert(r, pt_tables[t].name, table_cols[t].names, table_cols[t].n, 1, &r->stage[t].one);
		if (!err)
			err = prepare_insert(r, pt_tables[t].name, table_cols[t].names, table_cols[t].n,
					     ROWS_PER_INSERT, &r->stage[t].many);
	}
	if (err)
		goto fail;
	if (sqlite3_prepare_v3(r->db, "INSERT INTO strings(id, value) VALUES (?, ?)", -1, SQLITE_PREPARE_PERSISTENT,
			       &r->ins_str, NULL) != SQLITE_OK) {
		err = pt_logerr(PT_ESQL, "%s: %s", path, sqlite3_errmsg(r->db));
		goto fail;
	}

	/* Trace time 0 is now; the absolute epoch goes to meta. */
	r->t0_mono = pt_mono_ns();
	int64_t epoch = pt_real_ns();
	if (r->tsc)
		pt_tickmap_sample(&r->tm);
	const char *clock = r->clock == PT_CLOCK_VIRTUAL ? "virtual"
			    : r->tsc			  ? "tsc->CLOCK_MONOTONIC"
							  : "CLOCK_MONOTONIC";
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", r->clock == PT_CLOCK_VIRTUAL ? 0LL : (long long)epoch);
	if ((err = pt_rec_meta(r, "clock", clock)) || (err = pt_rec_meta(r, "epoch_ns", buf)) ||
	    (err = pt_rec_meta(r, "tool", "pipetrace")) || (err = pt_rec_meta(r, "tool_version", PT_VERSION)))
		goto fail;
	snprintf(buf, sizeof buf, "%d", PT_SCHEMA_VERSION);
	if ((err = pt_rec_meta(r, "schema_version", buf)))
		goto fail;

	if (pthread_create(&r->writer, NULL, writer_main, r) != 0) {
		err = pt_logerr(PT_ENOMEM, "%s: cannot start the writer thread", path);
		goto fail;
	}
	r->writer_started = 1;
	*out = r;
	return 0;
fail:
	if (r->tmp && r->db) {
		for (int t = 0; t < NTBL; t++) {
			sqlite3_finalize(r->stage[t].one);
			sqlite3_finalize(r->stage[t].many);
			r->stage[t].one = r->stage[t].many = NULL;
		}
		sqlite3_finalize(r->ins_str);
		r->ins_str = NULL;
		sqlite3_close(r->db);
		r->db = NULL;
	}
	if (r->tmp)
		unlink(r->tmp);
	rec_free(r);
	return err;
}

static int meta_locked(pt_rec *r, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(r->db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		return pt_logerr(PT_ESQL, "%s: writing meta '%s': %s", r->path, key, sqlite3_errmsg(r->db));
	return 0;
}

int pt_rec_meta(pt_rec *r, const char *key, const char *value)
{
	pthread_mutex_lock(&r->db_lock);
	int err = meta_locked(r, key, value);
	pthread_mutex_unlock(&r->db_lock);
	return err;
}

int pt_rec_meta_int(pt_rec *r, const char *key, int64_t value)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)value);
	return pt_rec_meta(r, key, buf);
}

/* Run one prepared statement with int64 args (a NULL for INT64_MIN) and one
 * optional trailing text. */
static int insert_row(pt_rec *r, const char *sql, const int64_t *v, int n, const char *text)
{
	sqlite3_stmt *st;
	pthread_mutex_lock(&r->db_lock);
	int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		for (int i = 0; i < n; i++) {
			if (v[i] == INT64_MIN)
				sqlite3_bind_null(st, i + 1);
			else
				sqlite3_bind_int64(st, i + 1, v[i]);
		}
		if (text)
			sqlite3_bind_text(st, n + 1, text, -1, SQLITE_TRANSIENT);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	int err = 0;
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		err = pt_logerr(PT_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
	pthread_mutex_unlock(&r->db_lock);
	return err;
}

int pt_rec_rank(pt_rec *r, const pt_rank_info *in)
{
	int64_t v[5] = {in->rank, in->device < 0 ? INT64_MIN : in->device,
			in->theory_bubble_ns < 0 ? INT64_MIN : in->theory_bubble_ns,
			in->theory_peak_act < 0 ? INT64_MIN : in->theory_peak_act, in->nchunks};
	return insert_row(r,
			  "INSERT OR REPLACE INTO ranks(rank, device, theory_bubble_ns, theory_peak_act, nchunks,"
			  " label) VALUES (?,?,?,?,?,?)",
			  v, 5, in->label);
}

int pt_rec_stream(pt_rec *r, int rank, uint32_t stream, enum pt_stream_role role, const char *name)
{
	int64_t v[3] = {rank, stream, role};
	return insert_row(r, "INSERT OR REPLACE INTO streams(rank, stream, role, name) VALUES (?,?,?,?)", v, 3,
			  name ? name : "");
}

int pt_rec_chunk(pt_rec *r, const pt_chunk_info *c)
{
	int64_t v[4] = {c->rank, c->chunk, c->pipe, c->stage};
	return insert_row(r, "INSERT OR REPLACE INTO chunks(rank, chunk, pipe, stage) VALUES (?,?,?,?)", v, 4,
			  NULL);
}

int pt_rec_plan(pt_rec *r, int rank, const pt_op *ops, size_t n)
{
	sqlite3_stmt *st;
	int err = 0;
	pthread_mutex_lock(&r->db_lock);
	int rc = sqlite3_prepare_v2(r->db,
				    "INSERT OR REPLACE INTO plan(rank, step, kind, chunk, mb, chunk2, mb2, payload,"
				    " peer, seq, batch, bytes, phase, tag) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
				    -1, &st, NULL);
	if (rc != SQLITE_OK) {
		err = pt_logerr(PT_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
		goto out;
	}
	for (size_t i = 0; i < n && !err; i++) {
		const pt_op *o = &ops[i];
		int comm = pt_kind_is_comm(o->kind);
		int k = 1;
		sqlite3_bind_int(st, k++, rank);
		sqlite3_bind_int64(st, k++, (int64_t)i);
		sqlite3_bind_int(st, k++, o->kind);
		sqlite3_bind_int(st, k++, o->chunk);
		sqlite3_bind_int(st, k++, o->mb);
		if (o->kind == PT_OP_FB) {
			sqlite3_bind_int(st, k++, o->chunk2);
			sqlite3_bind_int(st, k++, o->mb2);
		} else {
			sqlite3_bind_null(st, k++);
			sqlite3_bind_null(st, k++);
		}
		if (comm) {
			sqlite3_bind_int(st, k++, o->payload);
			sqlite3_bind_int(st, k++, o->peer);
			sqlite3_bind_int(st, k++, o->seq);
			sqlite3_bind_int(st, k++, o->batch);
			sqlite3_bind_int64(st, k++, o->bytes);
		} else {
			for (int j = 0; j < 5; j++)
				sqlite3_bind_null(st, k++);
		}
		sqlite3_bind_int(st, k++, o->phase);
		sqlite3_bind_int(st, k++, o->tag);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			err = pt_logerr(PT_ESQL, "%s: writing the plan: %s", r->path, sqlite3_errmsg(r->db));
	}
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&r->db_lock);
	return err;
}

/* Drain everything, partial chunks included (the writer thread has stopped
 * and so have the producers). */
static int drain_all(pt_rec *r)
{
	int err = drain(r);
	if (r->tsc)
		pt_tickmap_sample(&r->tm);
	for (pt_tbuf *b = r->tbufs; b && !err; b = b->next) {
		/* The chunks the producer filled, then the one it is filling. */
		while (!err && atomic_load_explicit(&b->chunks[b->wnext].full, memory_order_acquire)) {
			struct chunk *c = &b->chunks[b->wnext];
			for (uint32_t i = 0; i < c->count && !err; i++)
				err = consume(r, b, &c->ev[i]);
			atomic_store_explicit(&c->full, 0, memory_order_release);
			b->wnext = (b->wnext + 1) % b->nchunks;
		}
		for (uint32_t i = 0; i < b->hot.pos && !err; i++)
			err = consume(r, b, &b->hot.ev[i]);
		b->hot.pos = 0;
		r->unclosed += (uint64_t)b->nopen;
		b->nopen = 0;
	}
	for (int t = 0; t < NTBL && !err; t++)
		err = flush_stage(r, t);
	return err;
}

static void stop_writer(pt_rec *r)
{
	if (!r->writer_started)
		return;
	atomic_store(&r->stop, 1);
	wake_writer(r);
	pthread_join(r->writer, NULL);
	r->writer_started = 0;
}

int pt_rec_close(pt_rec *r)
{
	if (!r)
		return PT_EINVAL;
	stop_writer(r);
	int err = r->err;
	if (!err)
		err = drain_all(r);
	uint64_t stalls = 0;
	for (pt_tbuf *b = r->tbufs; b; b = b->next)
		stalls += b->stalls;
	if (!err && (r->unclosed || r->unmatched))
		pt_log(PT_LOG_WARN, "%s: %llu begin(s) never ended and %llu end(s) without a begin were dropped",
		       r->path, (unsigned long long)r->unclosed, (unsigned long long)r->unmatched);
	char buf[32];
	if (!err) {
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)r->rows);
		err = meta_locked(r, "rec.events", buf);
	}
	if (!err) {
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)stalls);
		err = meta_locked(r, "rec.stalls", buf);
	}
	if (!err) {
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)(r->unclosed + r->unmatched));
		err = meta_locked(r, "rec.dropped", buf);
	}
	if (!err) {
		snprintf(buf, sizeof buf, "%lld", (long long)r->insert_ns);
		err = meta_locked(r, "rec.insert_ns", buf);
	}
	int64_t t_finish = pt_mono_ns();
	if (!err)
		err = exec(r, pt_index_sql);
	if (!err) {
		snprintf(buf, sizeof buf, "%lld", (long long)(pt_mono_ns() - t_finish));
		err = meta_locked(r, "rec.index_ns", buf);
	}
	if (!err) {
		snprintf(buf, sizeof buf, "PRAGMA user_version=%d", PT_SCHEMA_VERSION);
		err = exec(r, buf);
	}
	if (!err)
		err = exec(r, "COMMIT");
	for (int t = 0; t < NTBL; t++) {
		sqlite3_finalize(r->stage[t].one);
		sqlite3_finalize(r->stage[t].many);
		r->stage[t].one = r->stage[t].many = NULL;
	}
	sqlite3_finalize(r->ins_str);
	r->ins_str = NULL;
	if (sqlite3_close(r->db) != SQLITE_OK && !err)
		err = pt_logerr(PT_ESQL, "%s: closing the database failed", r->path);
	r->db = NULL;
	if (!err) {
		/* Make the file durable before it takes the target's name. */
		int fd = open(r->tmp, O_RDONLY);
		if (fd >= 0) {
			fsync(fd);
			close(fd);
		}
		if (rename(r->tmp, r->path) != 0)
			err = pt_logerr(PT_EIO, "%s: cannot move the finished trace into place: %s", r->path,
					strerror(errno));
	}
	if (err)
		unlink(r->tmp);
	rec_free(r);
	return err;
}

void pt_rec_abort(pt_rec *r)
{
	if (!r)
		return;
	stop_writer(r);
	if (r->db) {
		for (int t = 0; t < NTBL; t++) {
			sqlite3_finalize(r->stage[t].one);
			sqlite3_finalize(r->stage[t].many);
			r->stage[t].one = r->stage[t].many = NULL;
		}
		sqlite3_finalize(r->ins_str);
		r->ins_str = NULL;
		sqlite3_close(r->db);
		r->db = NULL;
	}
	unlink(r->tmp);
	rec_free(r);
}
