/*
 * tests/unit/test_trace.c — libtrace: a round trip of every event kind, the
 * checks that refuse bad files (missing, empty, not SQLite, truncated,
 * another program's, a newer schema), no half-written output, the hot path
 * under concurrency with forced stalls (nothing lost, order kept), and the
 * tick-to-ns mapping; a schema-1 trace (before ops and comms were stored
 * WITHOUT ROWID) still read; a cursor's order whatever the size of the
 * windows it reads in.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <time.h>

#include "libtrace/internal.h"
#include "testutil.h"

static void write_small_trace(const char *path)
{
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	tu_log_reset();
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_rank_info ri = {.rank = 0, .device = 3, .theory_bubble_ns = 42, .theory_peak_act = 7, .nchunks = 2};
	snprintf(ri.label, sizeof ri.label, "rank 0");
	assert_int_equal(pt_rec_rank(rec, &ri), 0);
	assert_int_equal(pt_rec_meta(rec, "schedule", "test"), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	pt_event e = tu_event(0, 0, PT_OP_FB, 100, 200);
	e.op.chunk = 1;
	e.op.mb = 3;
	e.op.chunk2 = 0;
	e.op.mb2 = 2;
	e.step = 5;
	pt_emit(b, &e);
	e = tu_event(0, 1, PT_OP_SEND, 150, 180);
	e.op.payload = PT_GRAD;
	e.op.peer = 1;
	e.op.seq = 9;
	e.op.batch = 4;
	e.op.bytes = 1 << 20;
	e.posted_ns = 120;
	pt_emit(b, &e);
	e = tu_event(0, 7, PT_OP_KERNEL, 110, 130);
	e.name = pt_rec_intern(rec, "gemm<scr>");
	e.corr = 77;
	e.ext = pt_ext_id(0, 5);
	e.device = 3;
	pt_emit(b, &e);
	e = tu_event(0, 7, PT_OP_MEMCPY, 131, 140);
	e.op.bytes = 4096;
	e.op.payload = 8;
	e.name = pt_rec_intern(rec, "gemm<scr>");
	pt_emit(b, &e);
	e = tu_event(0, 1234, PT_OP_RANGE, 90, 210);
	e.name = pt_rec_intern(rec, "F0:3");
	e.op.payload = 2; /* depth */
	e.op.seq = (int32_t)pt_rec_intern(rec, "pipetrace");
	pt_emit(b, &e);
	assert_int_equal(pt_rec_close(rec), 0);
}

static void test_round_trip(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "rt.db");
	write_small_trace(path);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	assert_string_equal(pt_trace_meta(t, "schedule"), "test");
	assert_string_equal(pt_trace_meta(t, "tool"), "pipetrace");
	assert_int_equal(pt_trace_meta_int(t, "rec.events", -1), 5);
	assert_int_equal(pt_trace_nranks(t), 1);
	pt_rank_info ri;
	assert_int_equal(pt_trace_rank(t, 0, &ri), 0);
	assert_int_equal(ri.device, 3);
	assert_int_equal(ri.theory_bubble_ns, 42);
	assert_int_equal(ri.theory_peak_act, 7);
	assert_string_equal(ri.label, "rank 0");
	assert_int_equal(pt_trace_rank(t, 9, &ri), PT_EINVAL);

	pt_query q = pt_query_all();
	assert_int_equal(pt_trace_count(t, &q), 5);
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	pt_event e;
	int kinds[5], n = 0;
	int64_t last = -1;
	while (pt_cursor_next(c, &e) == 1) {
		assert_true(e.start_ns >= last); /* time order across tables */
		last = e.start_ns;
		kinds[n++] = e.op.kind;
		switch (e.op.kind) {
		case PT_OP_FB:
			assert_int_equal(e.op.chunk, 1);
			assert_int_equal(e.op.mb, 3);
			assert_int_equal(e.op.chunk2, 0);
			assert_int_equal(e.op.mb2, 2);
			assert_int_equal(e.step, 5);
			break;
		case PT_OP_SEND:
			assert_int_equal(e.op.payload, PT_GRAD);
			assert_int_equal(e.op.peer, 1);
			assert_int_equal(e.op.seq, 9);
			assert_int_equal(e.op.batch, 4);
			assert_int_equal(e.op.bytes, 1 << 20);
			assert_int_equal(e.posted_ns, 120);
			break;
		case PT_OP_KERNEL:
			assert_string_equal(pt_trace_string(t, e.name), "gemm<scr>");
			assert_int_equal(e.corr, 77);
			assert_int_equal(e.ext, pt_ext_id(0, 5));
			assert_int_equal(e.device, 3);
			assert_int_equal(e.stream, 7);
			break;
		case PT_OP_MEMCPY:
			assert_int_equal(e.op.bytes, 4096);
			assert_int_equal(e.op.payload, 8);
			break;
		case PT_OP_RANGE:
			assert_string_equal(pt_trace_string(t, e.name), "F0:3");
			assert_string_equal(pt_trace_string(t, (uint32_t)e.op.seq), "pipetrace");
			assert_int_equal(e.op.payload, 2);
			assert_int_equal(e.stream, 1234);
			break;
		}
	}
	pt_cursor_close(c);
	assert_int_equal(n, 5);
	int want[] = {PT_OP_RANGE, PT_OP_FB, PT_OP_KERNEL, PT_OP_MEMCPY, PT_OP_SEND};
	assert_memory_equal(kinds, want, sizeof want);
	assert_string_equal(pt_trace_string(t, 0), "");
	assert_string_equal(pt_trace_string(t, 999), "");

	/* filters: kinds, time window, rank */
	q.kinds = 1u << PT_OP_KERNEL | 1u << PT_OP_SEND;
	assert_int_equal(pt_trace_count(t, &q), 2);
	q = pt_query_all();
	q.from_ns = 135;
	q.to_ns = 160;
	assert_int_equal(pt_trace_count(t, &q), 4); /* FB, MEMCPY, SEND, RANGE */
	q = pt_query_all();
	q.rank = 1;
	assert_int_equal(pt_trace_count(t, &q), 0);
	q.sources = PT_SRC_OPS;
	q.rank = 0;
	assert_int_equal(pt_trace_count(t, &q), 1);
	pt_trace_close(t);
}

static void test_bad_files(void **state)
{
	(void)state;
	char path[512];
	pt_trace *t = NULL;

	tu_log_reset();
	assert_int_equal(pt_trace_open("/nonexistent/trace.db", &t), PT_ENOENT);
	assert_logged("/nonexistent/trace.db: no such file");

	tu_path(path, sizeof path, "empty.db");
	tu_write_file(path, "", 0);
	tu_log_reset();
	assert_int_equal(pt_trace_open(path, &t), PT_ENOTDB);
	assert_logged("empty.db: empty file, not a trace database");

	tu_path(path, sizeof path, "text.db");
	tu_write_file(path, "schedule,ranks\ndualpipe,8\n", 26);
	tu_log_reset();
	assert_int_equal(pt_trace_open(path, &t), PT_ENOTDB);
	assert_logged("text.db: not an SQLite database");

	/* another program's SQLite database */
	tu_path(path, sizeof path, "other.db");
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE notes(x); INSERT INTO notes VALUES (1)", 0, 0, 0), SQLITE_OK);
	sqlite3_close(db);
	tu_log_reset();
	assert_int_equal(pt_trace_open(path, &t), PT_EFOREIGN);
	assert_logged("other.db: an SQLite database, but not a pipetrace trace");

	/* an Nsight Systems export gets a pointer to `import` */
	tu_path(path, sizeof path, "report.sqlite");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE StringIds(id INTEGER PRIMARY KEY, value TEXT)", 0, 0, 0),
			 SQLITE_OK);
	sqlite3_close(db);
	tu_log_reset();
	assert_int_equal(pt_trace_open(path, &t), PT_EFOREIGN);
	assert_logged("looks like an Nsight Systems export: use `pipetrace import`");

	/* a newer schema */
	tu_path(path, sizeof path, "newer.db");
	write_small_trace(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", 0, 0, 0), SQLITE_OK);
	sqlite3_close(db);
	tu_log_reset();
	assert_int_equal(pt_trace_open(path, &t), PT_EVERSION);
	assert_logged("written with trace schema 99");

	/* a table dropped */
	tu_path(path, sizeof path, "damaged.db");
	write_small_trace(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE comms", 0, 0, 0), SQLITE_OK);
	sqlite3_close(db);
	tu_log_reset();
	assert_int_equal(pt_trace_open(path, &t), PT_ECORRUPT);
	assert_logged("table 'comms' is missing");

	/* truncated: a real trace cut in half */
	tu_path(path, sizeof path, "trunc.db");
	write_small_trace(path);
	size_t len = 0;
	char *data = tu_read_file(path, &len);
	assert_non_null(data);
	tu_write_file(path, data, len / 2);
	free(data);
	tu_log_reset();
	assert_int_equal(pt_trace_open(path, &t), PT_ECORRUPT);
	assert_logged("trunc.db: truncated database");

	/* a directory */
	tu_log_reset();
	assert_int_equal(pt_trace_open(tu_tmpdir(), &t), PT_ENOTDB);
	assert_logged("is a directory");
	assert_null(t);
}

static int count_files(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;
	if (p) {
		if (fscanf(p, "%d", &n) != 1)
			n = -1;
		pclose(p);
	}
	return n;
}

static void test_no_half_written_output(void **state)
{
	(void)state;
	char dir[512], path[600];
	tu_path(dir, sizeof dir, "out");
	mkdir(dir, 0755);
	snprintf(path, sizeof path, "%s/t.db", dir);
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL};
	tu_log_reset();
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	pt_event e = tu_event(0, 0, PT_OP_F, 0, 1);
	pt_emit(b, &e);
	/* while recording, only the temporary file exists, and not at path */
	assert_false(tu_exists(path));
	assert_int_equal(count_files(dir), 1);
	pt_rec_abort(rec);
	assert_int_equal(count_files(dir), 0);

	/* an existing file is not replaced unless asked */
	tu_write_file(path, "keep me", 7);
	tu_log_reset();
	assert_int_equal(pt_rec_create(path, &ro, &rec), PT_EEXIST);
	assert_logged("already exists");
	size_t len = 0;
	char *kept = tu_read_file(path, &len);
	assert_string_equal(kept, "keep me");
	free(kept);
	ro.overwrite = 1;
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	assert_int_equal(pt_rec_close(rec), 0);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_trace_close(t);
	assert_int_equal(count_files(dir), 1);

	/* an unwritable place */
	tu_log_reset();
	assert_int_equal(pt_rec_create("/nonexistent/dir/t.db", &ro, &rec), PT_ENOENT);
	assert_logged("/nonexistent/dir/t.db: cannot write here");
}

struct worker {
	pt_rec *rec;
	int rank, n;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	pt_tbuf *b = pt_rec_thread(w->rec);
	pt_op op = pt_op_make(PT_OP_F, 0, 0);
	for (int i = 0; i < w->n; i++) {
		op.mb = i;
		pt_begin(b, w->rank, 0, i, &op);
		pt_end(b, w->rank, 0);
	}
	return NULL;
}

/* 4 threads, tiny buffers so producers lap the writer: every event arrives,
 * in order, with positive durations; the stalls are counted, not hidden. */
static void test_hot_path_concurrency(void **state)
{
	(void)state;
	for (int clock = PT_CLOCK_MONOTONIC; clock <= PT_CLOCK_TSC; clock++) {
		char path[512];
		tu_path(path, sizeof path, "mt.db");
		pt_rec *rec;
		pt_rec_opts ro = {.clock = clock, .overwrite = 1, .chunk_events = 64, .chunks = 2};
		tu_log_reset();
		assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
		enum { T = 4, N = 50000 };
		pthread_t th[T];
		struct worker w[T];
		for (int i = 0; i < T; i++) {
			w[i] = (struct worker){rec, i, N};
			pthread_create(&th[i], NULL, work, &w[i]);
		}
		for (int i = 0; i < T; i++)
			pthread_join(th[i], NULL);
		assert_int_equal(pt_rec_close(rec), 0);
		pt_trace *t;
		assert_int_equal(pt_trace_open(path, &t), 0);
		assert_int_equal(pt_trace_meta_int(t, "rec.events", -1), T * N);
		assert_int_equal(pt_trace_meta_int(t, "rec.dropped", -1), 0);
		assert_true(pt_trace_meta_int(t, "rec.stalls", -1) >= 0);
		for (int r = 0; r < T; r++) {
			pt_query q = pt_query_all();
			q.rank = r;
			pt_cursor *c;
			assert_int_equal(pt_cursor_open(t, &q, &c), 0);
			pt_event e;
			int next = 0;
			int64_t prev_end = INT64_MIN;
			while (pt_cursor_next(c, &e) == 1) {
				assert_int_equal(e.step, next);
				assert_int_equal(e.op.mb, next);
				assert_true(e.end_ns >= e.start_ns);
				assert_true(e.start_ns >= prev_end);
				prev_end = e.end_ns;
				next++;
			}
			assert_int_equal(next, N);
			pt_cursor_close(c);
		}
		pt_trace_close(t);
	}
}

/* Converted times land inside the CLOCK_MONOTONIC readings taken around
 * them (a correctness check of the tick map, not a speed test). */
static void test_tick_conversion(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "clk.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_TSC, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	int64_t origin = pt_rec_origin(rec);
	int64_t before[5], after[5];
	pt_op op = pt_op_make(PT_OP_W, 0, 0);
	for (int i = 0; i < 5; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		before[i] = ts.tv_sec * 1000000000LL + ts.tv_nsec - origin;
		op.mb = i;
		pt_begin(b, 0, 0, i, &op);
		struct timespec nap = {0, 3000000};
		nanosleep(&nap, NULL);
		pt_end(b, 0, 0);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		after[i] = ts.tv_sec * 1000000000LL + ts.tv_nsec - origin;
	}
	assert_int_equal(pt_rec_close(rec), 0);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_cursor *c;
	pt_query q = pt_query_all();
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	pt_event e;
	int i = 0;
	while (pt_cursor_next(c, &e) == 1) {
		/* 2 µs of slack for the interpolation between samples */
		assert_true(e.start_ns >= before[i] - 2000);
		assert_true(e.end_ns <= after[i] + 2000);
		assert_true(e.end_ns - e.start_ns >= 3000000 - 2000); /* nanosleep sleeps at least that */
		i++;
	}
	assert_int_equal(i, 5);
	pt_cursor_close(c);
	pt_trace_close(t);
}

/* One tick converts to one ns, however far apart two threads' buffers are
 * drained: the two ends of a message record the same ticks and must agree. */
static void *emit_late(void *arg)
{
	pt_rec *rec = ((void **)arg)[0];
	const pt_event *ev = ((void **)arg)[1];
	pt_tbuf *b = pt_rec_thread(rec);
	if (b)
		pt_emit_ticks(b, ev);
	return NULL;
}

static void test_same_tick_same_ns(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "tick.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_TSC, .overwrite = 1, .chunk_events = 2, .chunks = 4};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	struct timespec nap = {0, 3000000};
	nanosleep(&nap, NULL);
	int64_t t0 = pt_rec_ticks(rec);
	nanosleep(&nap, NULL);
	pt_event ev;
	memset(&ev, 0, sizeof ev);
	ev.op = pt_op_make(PT_OP_SEND, 0, 0);
	ev.start_ns = ev.posted_ns = t0;
	ev.end_ns = pt_rec_ticks(rec);
	ev.stream = 1;
	pt_emit_ticks(b, &ev); /* fills a chunk: the writer converts it now */
	ev.rank = 1;
	ev.op.kind = PT_OP_RECV;
	pt_event filler = ev;
	filler.rank = 2;
	pt_emit_ticks(b, &filler);
	pt_emit_ticks(b, &filler);  /* hands the full chunk over */
	for (int i = 0; i < 4; i++) /* the writer samples the clock meanwhile */
		nanosleep(&nap, NULL);
	void *arg[2] = {rec, &ev};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, emit_late, arg), 0);
	pthread_join(th, NULL); /* converted at close */
	assert_int_equal(pt_rec_close(rec), 0);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_query q = pt_query_all();
	q.kinds = 1u << PT_OP_SEND | 1u << PT_OP_RECV;
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	int64_t start[2] = {-1, -1}, end[2] = {-1, -1};
	pt_event e;
	while (pt_cursor_next(c, &e) == 1)
		if (e.rank < 2) {
			start[e.rank] = e.start_ns;
			end[e.rank] = e.end_ns;
		}
	pt_cursor_close(c);
	pt_trace_close(t);
	assert_true(start[0] >= 0 && start[1] >= 0);
	assert_int_equal(start[0], start[1]);
	assert_int_equal(end[0], end[1]);
}

static void test_op_names(void **state)
{
	(void)state;
	char buf[64];
	pt_op o;
	assert_int_equal(pt_op_parse("F0:7|B1:3", &o), 0);
	assert_int_equal(o.kind, PT_OP_FB);
	pt_op_name(&o, PT_NAME_SPEC, buf, sizeof buf);
	assert_string_equal(buf, "F0:7|B1:3");
	assert_int_equal(pt_op_parse("W12:345", &o), 0);
	assert_int_equal(o.chunk, 12);
	assert_int_equal(o.mb, 345);
	assert_int_equal(pt_op_parse("B1:3|F0:7", &o), PT_EINVAL);
	assert_int_equal(pt_op_parse("F0", &o), PT_EINVAL);
	assert_int_equal(pt_op_parse("X0:1", &o), PT_EINVAL);
	o = pt_op_make(PT_OP_SEND, 0, 3);
	o.payload = PT_ACT;
	o.peer = 2;
	pt_op_name(&o, PT_NAME_SPEC, buf, sizeof buf);
	assert_string_equal(buf, "sA0:3>2");
	pt_op_name(&o, PT_NAME_LONG, buf, sizeof buf);
	assert_string_equal(buf, "SEND A0:3 \xe2\x86\x92 r2");
	o.kind = PT_OP_RECV;
	o.payload = PT_GRAD;
	pt_op_name(&o, PT_NAME_SPEC, buf, sizeof buf);
	assert_string_equal(buf, "rG0:3<2");
	assert_string_equal(pt_kind_name(PT_OP_KERNEL), "KERNEL");
	assert_string_equal(pt_kind_name(99), "?");
	assert_int_equal(pt_op_name(&o, PT_NAME_SPEC, buf, 4), 7); /* snprintf-like */
	assert_string_equal(buf, "rG0");
	/* ops labelled from annotations know neither chunk nor microbatch */
	o = pt_op_make(PT_OP_I, -1, -1);
	pt_op_name(&o, PT_NAME_SPEC, buf, sizeof buf);
	assert_string_equal(buf, "I");
	o = pt_op_make(PT_OP_F, 1, -1);
	pt_op_name(&o, PT_NAME_SPEC, buf, sizeof buf);
	assert_string_equal(buf, "F1");
}

/* Two processes' activity merged into one trace may share correlation ids:
 * each kernel takes the op of its own rank's runtime call. */
static void test_ext_by_rank(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "ext.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	for (int r = 0; r < 2; r++) {
		pt_rank_info ri = {.rank = r, .device = r, .theory_bubble_ns = -1, .theory_peak_act = -1};
		assert_int_equal(pt_rec_rank(rec, &ri), 0);
		pt_event call = tu_event(r, 100 + r, PT_OP_RUNTIME, 10, 20);
		call.corr = 5;
		call.ext = pt_ext_id(r, 7 + r);
		pt_emit(b, &call);
		pt_event k = tu_event(r, 7, PT_OP_KERNEL, 30, 40);
		k.corr = 5;
		pt_emit(b, &k);
	}
	assert_int_equal(pt_rec_close(rec), 0);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_cursor *cur;
	assert_int_equal(pt_cursor_open(t, NULL, &cur), 0);
	pt_event e;
	int kernels = 0;
	while (pt_cursor_next(cur, &e) == 1)
		if (e.op.kind == PT_OP_KERNEL) {
			assert_int_equal(e.ext, pt_ext_id(e.rank, 7 + e.rank));
			kernels++;
		}
	assert_int_equal(kernels, 2);
	pt_cursor_close(cur);
	pt_trace_close(t);
}

/* The writer stages ops and comms with several fields packed to a column
 * (writer.c) and unpacks them at close: every field's extremes come back
 * as they went in, -1 ids included (NULL in the tables, -1 when read). */
static void test_packed_fields_round_trip(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "packed.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	enum { N = 4 };
	const int32_t ranks[N] = {0, 1, 65537, 1 << 20}; /* the reader's highest */
	const uint32_t streams[N] = {0, 1, 0x80000000u, 0xffffffffu};
	const int32_t steps[N] = {-1, 0, 65536, 2147483647};
	const int16_t chunks[N] = {-1, 0, 32767, -32768};
	const int32_t mbs[N] = {-1, 0, 65536, 2147483647};
	const int32_t peers[N] = {-1, 0, 65537, 2147483647};
	const int64_t bytes[N] = {0, 1, (int64_t)1 << 40, INT64_MAX};
	pt_event want[2 * N];
	for (int i = 0; i < N; i++) {
		pt_event e = tu_event(ranks[i], streams[i], i % 2 ? PT_OP_FB : PT_OP_W, 10 * i, 10 * i + 5);
		e.step = steps[i];
		e.op.chunk = chunks[i];
		e.op.mb = mbs[i];
		e.op.chunk2 = e.op.kind == PT_OP_FB ? chunks[N - 1 - i] : -1;
		e.op.mb2 = e.op.kind == PT_OP_FB ? mbs[N - 1 - i] : -1;
		want[i] = e;
		pt_emit(b, &e);
		e = tu_event(ranks[i], streams[i], i % 2 ? PT_OP_SEND : PT_OP_RECV, 10 * i + 1, 10 * i + 3);
		e.step = steps[N - 1 - i];
		e.op.payload = i % 2 ? PT_GRAD : PT_ACT;
		e.op.chunk = chunks[i];
		e.op.mb = mbs[i];
		e.op.peer = peers[i];
		e.op.seq = mbs[N - 1 - i];
		e.op.batch = steps[i];
		e.op.bytes = bytes[i];
		e.posted_ns = 10 * i;
		want[N + i] = e;
		pt_emit(b, &e);
	}
	assert_int_equal(pt_rec_close(rec), 0);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_query q = pt_query_all();
	q.sources = PT_SRC_OPS | PT_SRC_COMMS;
	int seen = 0;
	for (int i = 0; i < 2 * N; i++) {
		const pt_event *w = &want[i];
		q.rank = w->rank;
		pt_cursor *c;
		assert_int_equal(pt_cursor_open(t, &q, &c), 0);
		pt_event e;
		int found = 0;
		while (pt_cursor_next(c, &e) == 1) {
			if (e.op.kind != w->op.kind || e.start_ns != w->start_ns)
				continue;
			found = 1;
			assert_int_equal(e.rank, w->rank);
			assert_int_equal(e.stream, w->stream);
			assert_int_equal(e.step, w->step);
			assert_int_equal(e.end_ns, w->end_ns);
			assert_int_equal(e.op.chunk, w->op.chunk);
			assert_int_equal(e.op.mb, w->op.mb);
			if (pt_kind_is_comm(w->op.kind)) {
				assert_int_equal(e.op.payload, w->op.payload);
				assert_int_equal(e.op.peer, w->op.peer);
				assert_int_equal(e.op.seq, w->op.seq);
				assert_int_equal(e.op.batch, w->op.batch);
				assert_int_equal(e.op.bytes, w->op.bytes);
				assert_int_equal(e.posted_ns, w->posted_ns);
			} else {
				assert_int_equal(e.op.chunk2, w->op.chunk2);
				assert_int_equal(e.op.mb2, w->op.mb2);
			}
		}
		pt_cursor_close(c);
		if (!found)
			fail_msg("event %d (kind %d, rank %d) not read back", i, w->op.kind, w->rank);
		seen++;
	}
	assert_int_equal(seen, 2 * N);
	pt_trace_close(t);
}

/* A schema-1 trace, as pipetrace wrote it before ops and comms were stored
 * WITHOUT ROWID (its DDL, verbatim): still read, in time order. */
static const char schema1_sql[] =
    "PRAGMA application_id=1347703363; PRAGMA user_version=1;"
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;"
    "CREATE TABLE kinds(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
    "CREATE TABLE strings(id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);"
    "CREATE TABLE ranks(rank INTEGER PRIMARY KEY, device INTEGER, theory_bubble_ns INTEGER,"
    " theory_peak_act INTEGER, nchunks INTEGER, label TEXT);"
    "CREATE TABLE streams(rank INTEGER NOT NULL, stream INTEGER NOT NULL, role INTEGER NOT NULL,"
    " name TEXT, PRIMARY KEY(rank, stream)) WITHOUT ROWID;"
    "CREATE TABLE chunks(rank INTEGER NOT NULL, chunk INTEGER NOT NULL, pipe INTEGER NOT NULL,"
    " stage INTEGER NOT NULL, PRIMARY KEY(rank, chunk)) WITHOUT ROWID;"
    "CREATE TABLE plan(rank INTEGER NOT NULL, step INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " chunk INTEGER, mb INTEGER, chunk2 INTEGER, mb2 INTEGER, payload INTEGER, peer INTEGER,"
    " seq INTEGER, batch INTEGER, bytes INTEGER, phase INTEGER, tag INTEGER,"
    " PRIMARY KEY(rank, step)) WITHOUT ROWID;"
    "CREATE TABLE ops(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " step INTEGER, kind INTEGER NOT NULL, chunk INTEGER, mb INTEGER, chunk2 INTEGER,"
    " mb2 INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL);"
    "CREATE TABLE comms(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " step INTEGER, kind INTEGER NOT NULL, payload INTEGER, chunk INTEGER, mb INTEGER,"
    " peer INTEGER, seq INTEGER, batch INTEGER, bytes INTEGER, posted_ns INTEGER,"
    " start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL);"
    "CREATE TABLE kernels(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " device INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, name INTEGER, corr INTEGER, ext INTEGER);"
    "CREATE TABLE memcpy(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " device INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, name INTEGER, corr INTEGER, ext INTEGER,"
    " bytes INTEGER, copy_kind INTEGER);"
    "CREATE TABLE memset(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " device INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, name INTEGER, corr INTEGER, ext INTEGER,"
    " bytes INTEGER);"
    "CREATE TABLE sync(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " device INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, name INTEGER, corr INTEGER, ext INTEGER,"
    " sync_type INTEGER);"
    "CREATE TABLE runtime(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " device INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, name INTEGER, corr INTEGER, ext INTEGER);"
    "CREATE TABLE ranges(id INTEGER PRIMARY KEY, rank INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " device INTEGER, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, name INTEGER, corr INTEGER, ext INTEGER,"
    " depth INTEGER, domain INTEGER);"
    "INSERT INTO ranks VALUES (0,-1,NULL,NULL,1,'rank 0'),(1,-1,NULL,NULL,1,'rank 1');"
    "INSERT INTO streams VALUES (0,0,0,'compute'),(0,1,1,'p2p'),(1,0,0,'compute'),(1,1,1,'p2p');"
    /* rows in the order a writer meets them: ranks interleaved, rowids in that order */
    "INSERT INTO ops VALUES (1,1,0,0,1,0,0,NULL,NULL,500,900),(2,0,0,0,1,0,0,NULL,NULL,0,400),"
    "(3,0,0,1,1,0,1,NULL,NULL,400,800),(4,1,0,1,2,0,0,NULL,NULL,900,1300),(5,0,0,2,1,0,2,NULL,NULL,400,450);"
    "INSERT INTO comms VALUES (1,0,1,1,6,0,0,0,1,0,NULL,64,400,400,500);"
    "CREATE INDEX ops_rank_start ON ops(rank, start_ns);"
    "CREATE INDEX comms_rank_start ON comms(rank, start_ns);";

static void test_schema1_readable(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "schema1.db");
	remove(path);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema1_sql, 0, 0, 0), SQLITE_OK);
	sqlite3_close(db);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	assert_int_equal(pt_trace_count(t, NULL), 6);
	int lo, hi;
	assert_int_equal(pt_trace_rank_range(t, &lo, &hi), 2);
	assert_int_equal(lo, 0);
	assert_int_equal(hi, 1);
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, NULL, &c), 0);
	/* (start, rank, stream) order; ops starting together on one stream in
	 * row order */
	static const struct {
		int rank, kind, mb;
		int64_t start, end;
	} want[] = {{0, PT_OP_F, 0, 0, 400},	  {0, PT_OP_F, 1, 400, 800}, {0, PT_OP_F, 2, 400, 450},
		    {0, PT_OP_SEND, 0, 400, 500}, {1, PT_OP_F, 0, 500, 900}, {1, PT_OP_B, 0, 900, 1300}};
	pt_event ev;
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		assert_int_equal(pt_cursor_next(c, &ev), 1);
		assert_int_equal(ev.rank, want[i].rank);
		assert_int_equal(ev.op.kind, want[i].kind);
		assert_int_equal(ev.op.mb, want[i].mb);
		assert_int_equal(ev.start_ns, want[i].start);
		assert_int_equal(ev.end_ns, want[i].end);
	}
	assert_int_equal(ev.step, 1);
	assert_int_equal(pt_cursor_next(c, &ev), 0);
	pt_cursor_close(c);
	pt_trace_close(t);
}


/* Every event of q, in the cursor's order, read with windows of cap events. */
static pt_event *read_all(pt_trace *t, const pt_query *q, size_t cap, size_t *n)
{
	pt_cursor_cap_ = cap;
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, q, &c), 0);
	size_t len = 0, max = 1024;
	pt_event *all = malloc(max * sizeof *all);
	int got;
	while ((got = pt_cursor_next(c, &all[len])) == 1)
		if (++len == max)
			assert_non_null(all = realloc(all, (max *= 2) * sizeof *all));
	assert_int_equal(got, 0);
	pt_cursor_close(c);
	pt_cursor_cap_ = 32768;
	*n = len;
	return all;
}

/*
 * The cursor reads windows of time (reader.c): whatever their size, halved
 * on overflow or grown after sparse stretches, it delivers the same events in
 * the same (start, rank, stream, table) order. A trace of 6 ranks with ops,
 * messages and kernels on several streams, many starting together, dense and
 * sparse stretches, and a burst of 40 events in one nanosecond (more than a
 * window of 16 holds), read with windows of 2, 5, 16 and 32768 events.
 */
static void test_cursor_windows(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "windows.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	unsigned seed = 7;
	int64_t total = 0;
	for (int rank = 0; rank < 6; rank++) {
		int64_t t = rank * 3;
		for (int i = 0; i < 400; i++) {
			seed = seed * 1103515245u + 12345u;
			/* dense at first, a long gap, then sparse */
			t += i == 200 ? 1000000 : i < 200 ? (seed >> 16) % 3 : (seed >> 16) % 5000;
			int kind = (int[]){PT_OP_F, PT_OP_B, PT_OP_SEND, PT_OP_RECV, PT_OP_KERNEL}[(seed >> 8) % 5];
			pt_event e = tu_event(rank, (seed >> 4) % 3, kind, t, t + 1 + (seed >> 12) % 50);
			e.step = i;
			pt_emit(b, &e);
			total++;
		}
	}
	for (int i = 0; i < 40; i++) { /* a burst: 40 events at one ns on rank 2 */
		pt_event e = tu_event(2, (uint32_t)(i % 2), i % 2 ? PT_OP_SEND : PT_OP_F, 500000, 500010 + i);
		e.step = 1000 + i;
		pt_emit(b, &e);
		total++;
	}
	assert_int_equal(pt_rec_close(rec), 0);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_query qs[4];
	qs[0] = pt_query_all();
	qs[1] = pt_query_all();
	qs[1].from_ns = 300;
	qs[1].to_ns = 1200000;
	qs[2] = pt_query_all();
	qs[2].kinds = 1u << PT_OP_SEND | 1u << PT_OP_KERNEL;
	static const int32_t some[] = {1, 2, 5};
	qs[3] = pt_query_all();
	qs[3].ranks = some;
	qs[3].nranks = 3;
	for (int k = 0; k < 4; k++) {
		size_t n, m;
		pt_event *want = read_all(t, &qs[k], 32768, &n);
		if (k == 0)
			assert_int_equal(n, total);
		assert_true(n > 0);
		for (size_t i = 1; i < n; i++)
			assert_true(want[i - 1].start_ns <= want[i].start_ns);
		static const size_t caps[] = {2, 5, 16};
		for (int j = 0; j < 3; j++) {
			pt_event *got = read_all(t, &qs[k], caps[j], &m);
			assert_int_equal(m, n);
			for (size_t i = 0; i < n; i++)
				if (memcmp(&got[i], &want[i], sizeof *got)) {
					fail_msg("query %d, windows of %zu: event %zu differs (start %lld rank %d step %d, "
						 "expected start %lld rank %d step %d)",
						 k, caps[j], i, (long long)got[i].start_ns, got[i].rank, got[i].step,
						 (long long)want[i].start_ns, want[i].rank, want[i].step);
				}
			free(got);
		}
		free(want);
	}
	pt_trace_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_bad_files),
	    cmocka_unit_test(test_no_half_written_output),
	    cmocka_unit_test(test_hot_path_concurrency),
	    cmocka_unit_test(test_tick_conversion),
	    cmocka_unit_test(test_op_names),
	    cmocka_unit_test(test_same_tick_same_ns),
	    cmocka_unit_test(test_ext_by_rank),
	    cmocka_unit_test(test_packed_fields_round_trip),
	    cmocka_unit_test(test_schema1_readable),
	    cmocka_unit_test(test_cursor_windows),
	};
	int rc = cmocka_run_group_tests_name("trace", tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
