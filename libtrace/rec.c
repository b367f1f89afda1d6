/*
 * libtrace/rec.c — a recording's lifecycle: create the database in a
 * temporary file beside its target, describe the run (meta, ranks, streams,
 * chunks, plans), and on close drain every buffer, build the indexes, link
 * GPU activity to the ops that launched it, commit and rename the file into
 * place. A failed or abandoned recording leaves nothing at its path. The hot
 * path lives in tbuf.c and trace.h, the writer thread in writer.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rec_internal.h"

/* ---------------------------------------------------------- create/close */

/* Finalize every statement and close the connection; NULL-safe, repeatable. */
static int close_db(pt_rec *r)
{
	for (int t = 0; t < NTBL; t++) {
		sqlite3_finalize(r->stage[t].one);
		sqlite3_finalize(r->stage[t].many);
		r->stage[t].one = r->stage[t].many = NULL;
	}
	sqlite3_finalize(r->ins_str);
	r->ins_str = NULL;
	int rc = r->db ? sqlite3_close(r->db) : SQLITE_OK;
	r->db = NULL;
	return rc;
}

static void rec_free(pt_rec *r)
{
	if (!r)
		return;
	close_db(r);
	strings_free(r);
	pthread_mutex_destroy(&r->str_lock);
	pthread_mutex_destroy(&r->wake_mu);
	pthread_cond_destroy(&r->wake_cv);
	pt_tbuf *b = r->tbufs;
	while (b) {
		pt_tbuf *n = b->next;
		tbuf_free(b);
		b = n;
	}
	tbuf_forget(r);
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
	if ((err = sql_exec(r, pragmas)) || (err = sql_exec(r, pt_stage_sql)) || (err = sql_exec(r, "BEGIN")) ||
	    (err = sql_exec(r, pt_schema_sql)))
		goto fail;
	if ((err = prepare_inserts(r)))
		goto fail;

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
		close_db(r);
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

/* Kernels, copies, memsets and syncs take the external id (the op that
 * launched them) of the runtime call with their correlation id: CUPTI tags
 * only the calls, and their records may come in any order. Correlation ids
 * are unique per process only: a call of the activity's own rank wins over
 * another process's call that happens to share its id. */
static int resolve_ext(pt_rec *r)
{
	static const char *const tables[] = {"kernels", "memcpy", "memset", "sync"};
	int err = sql_exec(r, "CREATE INDEX IF NOT EXISTS runtime_corr ON runtime(corr) WHERE ext IS NOT NULL");
	for (size_t i = 0; i < sizeof tables / sizeof tables[0] && !err; i++) {
		char sql[512];
		snprintf(sql, sizeof sql,
			 "UPDATE %s SET ext = COALESCE("
			 "(SELECT r.ext FROM runtime r WHERE r.corr = %s.corr AND r.ext IS NOT NULL AND r.rank = %s.rank"
			 " LIMIT 1),"
			 "(SELECT r.ext FROM runtime r WHERE r.corr = %s.corr AND r.ext IS NOT NULL LIMIT 1))"
			 " WHERE ext IS NULL AND corr IS NOT NULL",
			 tables[i], tables[i], tables[i], tables[i]);
		err = sql_exec(r, sql);
	}
	return err;
}

static void stop_writer(pt_rec *r)
{
	if (!r->writer_started)
		return;
	atomic_store(&r->stop, 1);
	pt_writer_wake(r);
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
		err = sql_exec(r, pt_unstage_sql);
	if (!err)
		err = sql_exec(r, pt_index_sql);
	if (!err)
		err = resolve_ext(r);
	if (!err) {
		snprintf(buf, sizeof buf, "%lld", (long long)(pt_mono_ns() - t_finish));
		err = meta_locked(r, "rec.index_ns", buf);
	}
	if (!err) {
		snprintf(buf, sizeof buf, "PRAGMA user_version=%d", PT_SCHEMA_VERSION);
		err = sql_exec(r, buf);
	}
	if (!err)
		err = sql_exec(r, "COMMIT");
	if (close_db(r) != SQLITE_OK && !err)
		err = pt_logerr(PT_ESQL, "%s: closing the database failed", r->path);
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
		close_db(r);
	}
	unlink(r->tmp);
	rec_free(r);
}

/* ------------------------------------ for the passes of post.c (imports) */

sqlite3 *pt_rec_post_begin_(pt_rec *r, int *err)
{
	pthread_mutex_lock(&r->db_lock);
	*err = r->err ? r->err : drain_all(r);
	if (!*err)
		return r->db;
	if (!r->err)
		r->err = *err;
	pthread_mutex_unlock(&r->db_lock);
	return NULL;
}

int pt_rec_post_end_(pt_rec *r, int err)
{
	if (err && !r->err)
		r->err = err;
	pthread_mutex_unlock(&r->db_lock);
	return err;
}

const char *pt_rec_path_(const pt_rec *r) { return r->path; }
