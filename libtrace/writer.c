/*
 * libtrace/writer.c — the writer thread: it drains the full chunks of every
 * thread buffer in ring order, pairs begins with ends, converts clock ticks
 * to ns, and inserts rows through 32-row prepared statements inside batched
 * transactions; it also interns strings. It does not create or close the
 * database (rec.c) nor fill buffers (tbuf.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rec_internal.h"

/* ----------------------------------------------------------- SQL helpers */

int sql_exec(pt_rec *r, const char *sql)
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

/* Columns of each event table, in the order bind_row binds them; for ops and
 * comms, those of their staging tables (schema.c, pt_stage_sql). */
static const struct cols {
	const char *names;
	int n;
} table_cols[NTBL] = {
	[PT_TBL_OPS] = {"rank_stream,step_mb2,mb_chunk_chunk2,kind,start_ns,end_ns", 6},
	[PT_TBL_COMMS] = {"rank_stream,peer_seq,batch_step,mb_chunk_payload_kind,bytes,posted_ns,start_ns,end_ns", 8},
	[PT_TBL_KERNELS] = {"rank,stream,device,start_ns,end_ns,name,corr,ext", 8},
	[PT_TBL_MEMCPY] = {"rank,stream,device,start_ns,end_ns,name,corr,ext,bytes,copy_kind", 10},
	[PT_TBL_MEMSET] = {"rank,stream,device,start_ns,end_ns,name,corr,ext,bytes", 9},
	[PT_TBL_SYNC] = {"rank,stream,device,start_ns,end_ns,name,corr,ext,sync_type", 9},
	[PT_TBL_RUNTIME] = {"rank,stream,device,start_ns,end_ns,name,corr,ext", 8},
	[PT_TBL_RANGES] = {"rank,stream,device,start_ns,end_ns,name,corr,ext,depth,domain", 10},
};

int prepare_insert(pt_rec *r, const char *table, const char *cols, int ncols, int nrows,
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

/* Two 32-bit fields in one integer, hi sign-extended when unpacked (>> 32),
 * lo as its 32 bits (& 0xffffffff); the staging tables' packing (schema.c). */
static int64_t pack32(int64_t hi, uint32_t lo) { return (int64_t)((uint64_t)hi << 32 | lo); }

/* Column values of event e for table tbl, in table_cols order; a negative
 * optional id is NULL. Ops and comms go to their staging tables packed,
 * several fields to a column (fewer columns make a cheaper insert: 10 columns
 * cost 1.6x what 6 do, measured), with negative optional ids kept as they are: the
 * unpacking makes them NULL (pt_unstage_sql). */
static void to_row(int tbl, const pt_event *e, struct row *w)
{
	const pt_op *o = &e->op;
	int64_t *v = w->v;
	uint32_t nulls = 0;
	int k = 0;
	if (tbl == PT_TBL_OPS) {
		int chunk2 = o->kind == PT_OP_FB ? o->chunk2 : -1, mb2 = o->kind == PT_OP_FB ? o->mb2 : -1;
		v[0] = pack32(e->rank, e->stream);
		v[1] = pack32(e->step, (uint32_t)mb2);
		v[2] = (int64_t)((uint64_t)(int64_t)o->mb << 32 | (uint64_t)(uint16_t)o->chunk << 16 |
				 (uint16_t)chunk2);
		v[3] = o->kind;
		v[4] = e->start_ns;
		v[5] = e->end_ns;
		w->nulls = 0;
		return;
	}
	if (tbl == PT_TBL_COMMS) {
		v[0] = pack32(e->rank, e->stream);
		v[1] = pack32(o->peer, (uint32_t)o->seq);
		v[2] = pack32(o->batch, (uint32_t)e->step);
		v[3] = (int64_t)((uint64_t)(int64_t)o->mb << 32 | (uint64_t)(uint16_t)o->chunk << 16 |
				 (uint64_t)o->payload << 8 | o->kind);
		v[4] = o->bytes;
		v[5] = e->posted_ns;
		v[6] = e->start_ns;
		v[7] = e->end_ns;
		w->nulls = 0;
		return;
	}
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
	return sql_exec(r, "COMMIT; BEGIN");
}

int flush_stage(pt_rec *r, int tbl)
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
int drain(pt_rec *r)
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

/* An idle writer naps longer and longer (200 µs up to 10 ms) and a producer
 * handing over a chunk wakes it: polling at a fixed 200 µs cost a tenth of a
 * core on virtual machines where every wake-up is expensive. */
void *writer_main(void *arg)
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

void pt_writer_wake(pt_rec *r)
{
	pthread_mutex_lock(&r->wake_mu);
	r->wake_pending = 1;
	pthread_cond_signal(&r->wake_cv);
	pthread_mutex_unlock(&r->wake_mu);
}

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

/* Drain everything, partial chunks included (the writer thread has stopped
 * and so have the producers). */
int drain_all(pt_rec *r)
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


int prepare_inserts(pt_rec *r)
{
	int err = 0;
	for (int t = 0; t < NTBL && !err; t++) {
		/* ops and comms go to their staging tables (schema.c, pt_stage_sql) */
		const char *table = t == PT_TBL_OPS     ? "temp.ops_rows"
				    : t == PT_TBL_COMMS ? "temp.comms_rows"
							: pt_tables[t].name;
		err = prepare_insert(r, table, table_cols[t].names, table_cols[t].n, 1, &r->stage[t].one);
		if (!err)
			err = prepare_insert(r, table, table_cols[t].names, table_cols[t].n, ROWS_PER_INSERT,
					     &r->stage[t].many);
	}
	if (!err && sqlite3_prepare_v3(r->db, "INSERT INTO strings(id, value) VALUES (?, ?)", -1,
				       SQLITE_PREPARE_PERSISTENT, &r->ins_str, NULL) != SQLITE_OK)
		err = pt_logerr(PT_ESQL, "%s: %s", r->path, sqlite3_errmsg(r->db));
	return err;
}

void strings_free(pt_rec *r)
{
	for (uint32_t i = 0; i < r->capstrs; i++)
		free(r->strs[i].s);
	free(r->strs);
	r->strs = NULL;
	r->capstrs = r->nstrs = 0;
}
