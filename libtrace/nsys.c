/*
 * libtrace/nsys.c — the reader of Nsight Systems SQLite exports (`nsys export
 * --type sqlite`, schema of spec/tracing.md §3): it checks that a file is one,
 * then walks its CUPTI activity tables (kernels, copies, memsets,
 * synchronisations, runtime calls) and its NVTX ranges, resolving names
 * through StringIds and NVTX domains through their creation rows, and hands
 * each row to a callback as a pt_event. nsys does not store the nesting of
 * push/pop ranges; this file rebuilds it per thread and per domain, by reading
 * them sorted. It lives in libtrace because libtrace is the only code that
 * opens SQLite files; it writes nothing and does not decide what a row means
 * for the pipeline (which stream communicates, which range is an op): the
 * importer does.
 */
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "internal.h"

#define TID_BITS 0x1000000LL /* globalTid = ... | PID << 24 | TID */

struct dom {
	int64_t proc; /* globalTid / TID_BITS of the process that created it */
	int64_t id;
	char *name;
};

struct pt_nsys {
	char *path;
	sqlite3 *db;
	int64_t epoch;
	int64_t *procs; /* process keys (globalPid / TID_BITS), sorted: index = rank */
	int nprocs;
	int has[5]; /* optional tables present (order of optional[]) */
	struct dom *doms;
	size_t ndoms;
};

static const char *const required[] = {"StringIds", "TARGET_INFO_SESSION_START_TIME", "CUPTI_ACTIVITY_KIND_KERNEL"};
static const char *const optional[] = {"CUPTI_ACTIVITY_KIND_MEMCPY", "CUPTI_ACTIVITY_KIND_MEMSET",
				       "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION", "CUPTI_ACTIVITY_KIND_RUNTIME",
				       "NVTX_EVENTS"};
enum { T_MEMCPY, T_MEMSET, T_SYNC, T_RUNTIME, T_NVTX };

/* What each table is read with (columns as in spec/tracing.md §3). */
static const char sql_kernel[] =
    "SELECT k.start, k.end, k.deviceId, k.streamId, k.correlationId, k.globalPid, k.demangledName, s.value"
    " FROM CUPTI_ACTIVITY_KIND_KERNEL k LEFT JOIN StringIds s ON s.id = k.demangledName";
static const char *const sql_optional[] = {
    [T_MEMCPY] = "SELECT start, end, deviceId, streamId, correlationId, globalPid, bytes, copyKind"
		 " FROM CUPTI_ACTIVITY_KIND_MEMCPY",
    [T_MEMSET] = "SELECT start, end, deviceId, streamId, correlationId, globalPid, bytes"
		 " FROM CUPTI_ACTIVITY_KIND_MEMSET",
    [T_SYNC] = "SELECT start, end, deviceId, streamId, correlationId, globalPid, syncType"
	       " FROM CUPTI_ACTIVITY_KIND_SYNCHRONIZATION",
    [T_RUNTIME] = "SELECT r.start, r.end, r.globalTid, r.correlationId, r.nameId, s.value"
		  " FROM CUPTI_ACTIVITY_KIND_RUNTIME r LEFT JOIN StringIds s ON s.id = r.nameId",
    /* push/pop (59) and start/end (60) ranges, sorted so that nesting can be
     * rebuilt per thread and domain with one stack */
    [T_NVTX] = "SELECT e.start, e.end, e.eventType, e.globalTid, coalesce(e.domainId, 0), e.textId,"
	       " coalesce(s.value, e.text) FROM NVTX_EVENTS e LEFT JOIN StringIds s ON s.id = e.textId"
	       " WHERE e.eventType IN (59, 60) AND e.end IS NOT NULL AND e.start IS NOT NULL"
	       " ORDER BY e.globalTid, coalesce(e.domainId, 0), e.start, e.end DESC",
};
static const char sql_domains[] = "SELECT e.globalTid / 16777216, e.domainId, coalesce(s.value, e.text)"
				  " FROM NVTX_EVENTS e LEFT JOIN StringIds s ON s.id = e.textId"
				  " WHERE e.eventType = 75";

void pt_nsys_close(pt_nsys *n)
{
	if (!n)
		return;
	if (n->db)
		sqlite3_close(n->db);
	for (size_t i = 0; i < n->ndoms; i++)
		free(n->doms[i].name);
	free(n->doms);
	free(n->procs);
	free(n->path);
	free(n);
}

/* Prepare sql on the export; a failure means the table lacks a column we
 * read (PT_EINVAL, naming it). */
static int prepare(pt_nsys *n, const char *table, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(n->db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	*st = NULL;
	return pt_logerr(PT_EINVAL, "%s: table %s is not as pipetrace knows it (%s): an export of another nsys schema?",
			 n->path, table, sqlite3_errmsg(n->db));
}

static int load_processes(pt_nsys *n)
{
	sqlite3_stmt *st;
	int err = prepare(n, required[2],
			  "SELECT DISTINCT globalPid / 16777216 FROM CUPTI_ACTIVITY_KIND_KERNEL"
			  " WHERE globalPid IS NOT NULL ORDER BY 1",
			  &st);
	if (err)
		return err;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((err = pt_grow(&n->procs, &cap, (size_t)n->nprocs + 1, sizeof *n->procs)))
			break;
		n->procs[n->nprocs++] = sqlite3_column_int64(st, 0);
	}
	if (!err && rc != SQLITE_DONE)
		err = pt_logerr(PT_ECORRUPT, "%s: cannot read the kernels: %s", n->path, sqlite3_errmsg(n->db));
	sqlite3_finalize(st);
	return err;
}

static int load_domains(pt_nsys *n)
{
	sqlite3_stmt *st;
	int err = prepare(n, "NVTX_EVENTS", sql_domains, &st);
	if (err)
		return err;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 2);
		if (!name)
			continue;
		if ((err = pt_grow(&n->doms, &cap, n->ndoms + 1, sizeof *n->doms)))
			break;
		struct dom *d = &n->doms[n->ndoms];
		d->proc = sqlite3_column_int64(st, 0);
		d->id = sqlite3_column_int64(st, 1);
		if (!(d->name = strdup(name))) {
			err = PT_ENOMEM;
			break;
		}
		n->ndoms++;
	}
	if (!err && rc != SQLITE_DONE)
		err = pt_logerr(PT_ECORRUPT, "%s: cannot read NVTX domains: %s", n->path, sqlite3_errmsg(n->db));
	sqlite3_finalize(st);
	return err;
}

int pt_nsys_open(const char *path, pt_nsys **out)
{
	*out = NULL;
	int err = pt_schema_check_file(path);
	if (err)
		return err;
	pt_nsys *n = calloc(1, sizeof *n);
	if (!n || !(n->path = strdup(path))) {
		free(n);
		return PT_ENOMEM;
	}
	if (sqlite3_open_v2(path, &n->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		err = pt_logerr(PT_EIO, "%s: cannot open: %s", path, n->db ? sqlite3_errmsg(n->db) : "out of memory");
		goto fail;
	}
	int found = 0, missing = -1;
	for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
		int e = pt_table_exists(n->db, required[i]);
		if (e < 0) {
			err = pt_logerr(PT_ECORRUPT, "%s: cannot read the database: %s", path, sqlite3_errmsg(n->db));
			goto fail;
		}
		found += e;
		if (!e && missing < 0)
			missing = (int)i;
	}
	for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
		n->has[i] = pt_table_exists(n->db, optional[i]) == 1;
		found += n->has[i];
	}
	if (pt_table_exists(n->db, "kinds") == 1 && pt_table_exists(n->db, "ops") == 1) {
		err = pt_logerr(PT_EFOREIGN, "%s: already a pipetrace trace, not an Nsight Systems export", path);
		goto fail;
	}
	if (!found) {
		err = pt_logerr(PT_EFOREIGN,
				"%s: an SQLite database, but not an Nsight Systems export (none of its tables: "
				"StringIds, CUPTI_ACTIVITY_KIND_KERNEL, ...)",
				path);
		goto fail;
	}
	if (missing >= 0) {
		err =
		    pt_logerr(PT_EINVAL, "%s: an incomplete Nsight Systems export: table %s is missing%s", path,
			      required[missing],
			      missing == 2 ? " (no GPU kernels were traced: profile with `nsys profile -t cuda`)" : "");
		goto fail;
	}
	sqlite3_stmt *st;
	if ((err = prepare(n, required[1], "SELECT utcEpochNs FROM TARGET_INFO_SESSION_START_TIME LIMIT 1", &st)))
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW)
		n->epoch = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	/* Every query must compile against this export's columns. */
	if ((err = prepare(n, required[2], sql_kernel, &st)))
		goto fail;
	sqlite3_finalize(st);
	for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
		if (!n->has[i])
			continue;
		if ((err = prepare(n, optional[i], sql_optional[i], &st)))
			goto fail;
		sqlite3_finalize(st);
	}
	if ((err = load_processes(n)) || (n->has[T_NVTX] && (err = load_domains(n))))
		goto fail;
	*out = n;
	return 0;
fail:
	pt_nsys_close(n);
	return err;
}

int64_t pt_nsys_epoch_ns(const pt_nsys *n)
{
	return n->epoch;
}
int pt_nsys_nprocs(const pt_nsys *n)
{
	return n->nprocs;
}
int64_t pt_nsys_pid(const pt_nsys *n, int i)
{
	return i >= 0 && i < n->nprocs ? n->procs[i] % TID_BITS : -1;
}

/* The rank of a process key: its index among the processes with kernels. */
static int32_t rank_of(const pt_nsys *n, int64_t proc)
{
	int lo = 0, hi = n->nprocs;
	while (lo < hi) {
		int mid = (lo + hi) / 2;
		if (n->procs[mid] < proc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->nprocs && n->procs[lo] == proc ? lo : -1;
}

static const char *domain_name(const pt_nsys *n, int64_t proc, int64_t id)
{
	for (size_t i = 0; i < n->ndoms; i++)
		if (n->doms[i].id == id && n->doms[i].proc == proc)
			return n->doms[i].name;
	return NULL;
}

static const char *copy_name(int kind)
{
	static const char *const names[] = {"Memcpy",	   "Memcpy HtoD", "Memcpy DtoH", "Memcpy HtoA",
					    "Memcpy AtoH", "Memcpy AtoA", "Memcpy AtoD", "Memcpy DtoA",
					    "Memcpy DtoD", "Memcpy HtoH", "Memcpy PtoP"};
	return kind > 0 && kind < (int)(sizeof names / sizeof names[0]) ? names[kind] : names[0];
}

static const char *sync_name(int type)
{
	static const char *const names[] = {"Unknown Sync", "Event Sync", "Stream Wait Event", "Stream Sync",
					    "Context Sync"};
	return type > 0 && type < 5 ? names[type] : names[0];
}

/* "cudaLaunchKernel_v7000" -> "cudaLaunchKernel" (as Kineto and HTA name calls). */
static const char *strip_version(const char *s, char *buf, size_t size)
{
	const char *u = s ? strrchr(s, '_') : NULL;
	if (!u || u[1] != 'v' || !u[2] || (size_t)(u - s) >= size)
		return s;
	for (const char *p = u + 2; *p; p++)
		if (*p < '0' || *p > '9')
			return s;
	memcpy(buf, s, (size_t)(u - s));
	buf[u - s] = '\0';
	return buf;
}

static int64_t col(sqlite3_stmt *st, int i, int64_t def)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? def : sqlite3_column_int64(st, i);
}

/* Fill the fields every GPU activity row shares (columns 0-5). */
static void gpu_row(const pt_nsys *n, sqlite3_stmt *st, int kind, pt_nsys_row *r)
{
	memset(r, 0, sizeof *r);
	pt_event *e = &r->ev;
	e->start_ns = e->posted_ns = sqlite3_column_int64(st, 0);
	e->end_ns = sqlite3_column_int64(st, 1);
	e->device = (int32_t)col(st, 2, -1);
	e->stream = (uint32_t)col(st, 3, -1);
	e->corr = col(st, 4, 0);
	e->rank = rank_of(n, col(st, 5, 0) / TID_BITS);
	e->step = -1;
	e->op = pt_op_make(kind, -1, -1);
}

/* Fill the fields of a row on a CPU thread: times in columns 0-1, the
 * thread's globalTid in column tcol. */
static void cpu_row(const pt_nsys *n, sqlite3_stmt *st, int kind, int tcol, pt_nsys_row *r)
{
	memset(r, 0, sizeof *r);
	int64_t tid = col(st, tcol, 0);
	r->ev.start_ns = r->ev.posted_ns = sqlite3_column_int64(st, 0);
	r->ev.end_ns = sqlite3_column_int64(st, 1);
	r->ev.rank = rank_of(n, tid / TID_BITS);
	r->ev.stream = (uint32_t)(tid % TID_BITS);
	r->ev.device = -1;
	r->ev.step = -1;
	r->ev.op = pt_op_make(kind, -1, -1);
}

static int walk(pt_nsys *n, int table, int (*fn)(void *, const pt_nsys_row *), void *ctx)
{
	const char *name = table < 0 ? required[2] : optional[table];
	sqlite3_stmt *st;
	int err = prepare(n, name, table < 0 ? sql_kernel : sql_optional[table], &st);
	if (err)
		return err;
	pt_nsys_row r;
	pt_nest nest = {0};
	int64_t group[2] = {-1, -1};
	char buf[256];
	int rc = SQLITE_DONE;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		switch (table) {
		case -1:
			gpu_row(n, st, PT_OP_KERNEL, &r);
			r.name_key = (uint32_t)col(st, 6, 0);
			r.name = (const char *)sqlite3_column_text(st, 7);
			break;
		case T_MEMCPY:
			gpu_row(n, st, PT_OP_MEMCPY, &r);
			r.ev.op.bytes = col(st, 6, 0);
			r.ev.op.payload = (uint8_t)col(st, 7, 0);
			r.name = copy_name(r.ev.op.payload);
			break;
		case T_MEMSET:
			gpu_row(n, st, PT_OP_MEMSET, &r);
			r.ev.op.bytes = col(st, 6, 0);
			r.name = "Memset";
			break;
		case T_SYNC:
			gpu_row(n, st, PT_OP_SYNC, &r);
			r.ev.op.payload = (uint8_t)col(st, 6, 0);
			r.name = sync_name(r.ev.op.payload);
			break;
		case T_RUNTIME:
			cpu_row(n, st, PT_OP_RUNTIME, 2, &r);
			r.ev.corr = col(st, 3, 0);
			r.name_key = (uint32_t)col(st, 4, 0);
			r.name = strip_version((const char *)sqlite3_column_text(st, 5), buf, sizeof buf);
			break;
		case T_NVTX: {
			cpu_row(n, st, PT_OP_RANGE, 3, &r);
			int64_t tid = col(st, 3, 0), dom = col(st, 4, 0);
			r.name_key = (uint32_t)col(st, 5, 0);
			r.name = (const char *)sqlite3_column_text(st, 6);
			r.domain = dom ? domain_name(n, tid / TID_BITS, dom) : NULL;
			if (sqlite3_column_int(st, 2) == 59) { /* push/pop: nests per thread and domain */
				if (tid != group[0] || dom != group[1]) {
					group[0] = tid;
					group[1] = dom;
					nest.n = 0;
				}
				int depth = pt_nest_enter(&nest, r.ev.start_ns, r.ev.end_ns);
				if (depth < 0) {
					err = PT_ENOMEM;
					continue;
				}
				r.ev.op.payload = (uint8_t)(depth > 255 ? 255 : depth);
			}
			break;
		}
		}
		err = fn(ctx, &r);
	}
	if (!err && rc != SQLITE_DONE)
		err = pt_logerr(PT_ECORRUPT, "%s: cannot read %s: %s", n->path, name, sqlite3_errmsg(n->db));
	free(nest.end);
	sqlite3_finalize(st);
	return err;
}

int pt_nsys_thread_names(pt_nsys *n, int (*fn)(void *ctx, int rank, uint32_t tid, const char *name), void *ctx)
{
	if (pt_table_exists(n->db, "ThreadNames") != 1)
		return 0;
	sqlite3_stmt *st;
	int err = prepare(n, "ThreadNames",
			  "SELECT t.globalTid, s.value FROM ThreadNames t JOIN StringIds s ON s.id = t.nameId"
			  " ORDER BY t.globalTid, t.priority DESC",
			  &st);
	if (err)
		return err;
	int rc;
	int64_t last = -1;
	while (!err && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t tid = sqlite3_column_int64(st, 0);
		int32_t rank = rank_of(n, tid / TID_BITS);
		const char *name = (const char *)sqlite3_column_text(st, 1);
		if (tid == last || rank < 0 || !name)
			continue;
		last = tid;
		err = fn(ctx, rank, (uint32_t)(tid % TID_BITS), name);
	}
	if (!err && rc != SQLITE_DONE)
		err = pt_logerr(PT_ECORRUPT, "%s: cannot read ThreadNames: %s", n->path, sqlite3_errmsg(n->db));
	sqlite3_finalize(st);
	return err;
}

int pt_nsys_read(pt_nsys *n, int (*fn)(void *ctx, const pt_nsys_row *row), void *ctx)
{
	int err = walk(n, -1, fn, ctx);
	for (int t = 0; t < (int)(sizeof optional / sizeof optional[0]) && !err; t++)
		if (n->has[t])
			err = walk(n, t, fn, ctx);
	return err;
}
