/*
 * tests/unit/test_export.c — the exporters on a trace made here through
 * pt_rec_*: ops, overlapping messages, and the GPU activity no backend
 * records yet (kernels, copies, memsets, syncs, runtime calls, nested
 * ranges) with names that need escaping. Each format's file is checked by
 * tests/e2e/check_export.py against the database (protoc decode, structure,
 * every row exported once with its name and times); here, what is specific:
 * flows from launches to kernels, lanes for overlapping messages, escaping,
 * filters, the registry, and that a failed export leaves no file.
 */
#include <yajl/yajl_tree.h>

#include "exporters/export_internal.h"
#include "exporters/exporters.h"
#include "testutil.h"

#define CHECKER PT_TEST_DATA "/../e2e/check_export.py"

static const char *const kernel_name = "gemm<\"q\",\\b> </script><script>alert(1)</script>, done";

static void msg(pt_tbuf *b, int kind, int rank, int peer, int seq, int step, int64_t s, int64_t e)
{
	pt_event ev = tu_event(rank, PT_STREAM_P2P, kind, s, e);
	ev.op.peer = peer;
	ev.op.seq = seq;
	ev.op.mb = seq;
	ev.op.batch = 0;
	ev.op.bytes = 1 << 20;
	ev.step = step;
	pt_emit(b, &ev);
}

static void activity(pt_rec *rec, pt_tbuf *b, int kind, uint32_t stream, int64_t s, int64_t e, const char *name,
		     int64_t corr, int64_t ext)
{
	pt_event ev = tu_event(0, stream, kind, s, e);
	ev.device = kind == PT_OP_RUNTIME || (kind == PT_OP_RANGE && stream > 1000) ? -1 : 3;
	ev.name = name ? pt_rec_intern(rec, name) : 0;
	ev.corr = corr;
	ev.ext = ext;
	if (kind == PT_OP_MEMCPY || kind == PT_OP_MEMSET)
		ev.op.bytes = 4096;
	if (kind == PT_OP_MEMCPY)
		ev.op.payload = 1;
	pt_emit(b, &ev);
}

/* Two ranks: compute ops, four messages (two overlapping on one stream), and
 * on rank 0 a CPU thread with nested ranges and launches, a GPU stream with
 * the kernels, copies and syncs they launched. */
static void write_gpu_trace(const char *path)
{
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	tu_log_reset();
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	for (int r = 0; r < 2; r++) {
		pt_rank_info ri = {.rank = r, .device = r, .theory_bubble_ns = -1, .theory_peak_act = -1, .nchunks = 1};
		snprintf(ri.label, sizeof ri.label, "rank %d \xc2\xb7 stage %d", r, r);
		assert_int_equal(pt_rec_rank(rec, &ri), 0);
		assert_int_equal(pt_rec_stream(rec, r, PT_STREAM_MAIN, PT_STREAM_COMPUTE, "compute"), 0);
		assert_int_equal(pt_rec_stream(rec, r, PT_STREAM_P2P, PT_STREAM_COMM, "p2p"), 0);
	}
	assert_int_equal(pt_rec_stream(rec, 0, 7, PT_STREAM_COMPUTE, "cuda stream 7"), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	pt_event ev = tu_event(0, PT_STREAM_MAIN, PT_OP_F, 100, 500);
	ev.step = 0;
	pt_emit(b, &ev);
	ev = tu_event(1, PT_STREAM_MAIN, PT_OP_F, 700, 1100);
	ev.step = 1;
	pt_emit(b, &ev);
	ev = tu_event(1, PT_STREAM_MAIN, PT_OP_B, 1100, 1900);
	ev.step = 3;
	pt_emit(b, &ev);
	ev = tu_event(0, PT_STREAM_MAIN, PT_OP_B, 2000, 2800);
	ev.step = 5;
	pt_emit(b, &ev);
	msg(b, PT_OP_SEND, 0, 1, 0, 1, 500, 700);
	msg(b, PT_OP_RECV, 1, 0, 0, 0, 500, 700);
	msg(b, PT_OP_SEND, 0, 1, 1, 2, 600, 650); /* overlaps the first: a second lane */
	msg(b, PT_OP_RECV, 1, 0, 1, 2, 600, 650);
	msg(b, PT_OP_SEND, 1, 0, 0, 4, 1900, 2000);
	msg(b, PT_OP_RECV, 0, 1, 0, 4, 1900, 2000);
	int64_t ext = pt_ext_id(0, 0);
	activity(rec, b, PT_OP_RANGE, 4242, 90, 520, "step 0", 0, 0);
	activity(rec, b, PT_OP_RANGE, 4242, 100, 510, "F0:0", 0, ext);
	activity(rec, b, PT_OP_RUNTIME, 4242, 110, 130, "cudaLaunchKernel", 1, ext);
	activity(rec, b, PT_OP_RUNTIME, 4242, 140, 160, "cudaMemcpyAsync", 2, ext);
	activity(rec, b, PT_OP_RUNTIME, 4242, 170, 180, "cudaMemsetAsync", 3, ext);
	activity(rec, b, PT_OP_RUNTIME, 4242, 190, 400, "cudaStreamSynchronize", 4, ext);
	activity(rec, b, PT_OP_KERNEL, 7, 150, 300, kernel_name, 1, ext);
	activity(rec, b, PT_OP_MEMCPY, 7, 300, 350, "Memcpy HtoD", 2, ext);
	activity(rec, b, PT_OP_MEMSET, 7, 350, 360, NULL, 3, ext);
	activity(rec, b, PT_OP_SYNC, 7, 360, 400, "sync", 4, ext);
	activity(rec, b, PT_OP_SYNC, PT_STREAM_NONE, 410, 420, "sync", 0, 0); /* a context synchronize */
	assert_int_equal(pt_rec_close(rec), 0);
}

static int have(const char *cmd)
{
	char buf[256];
	snprintf(buf, sizeof buf, "command -v %s >/dev/null 2>&1", cmd);
	return system(buf) == 0;
}

static const char *db_path(void)
{
	static char path[512];
	if (!path[0]) {
		tu_path(path, sizeof path, "gpu.db");
		write_gpu_trace(path);
	}
	return path;
}

static int64_t export_to(const char *fmt, const char *name, const pt_export_opts *o, char *out, size_t size)
{
	pt_trace *t;
	assert_int_equal(pt_trace_open(db_path(), &t), 0);
	tu_path(out, size, name);
	int64_t n = -1;
	assert_int_equal(pt_export_file(t, pt_format_by_name(fmt), o, out, &n), 0);
	pt_trace_close(t);
	return n;
}

/* Run the checker; its last line in *summary. */
static int check(const char *file, const char *extra, char *summary, size_t size)
{
	char cmd[2048], log[600];
	tu_path(log, sizeof log, "check.log");
	snprintf(cmd, sizeof cmd, "python3 %s %s --db %s %s >%s 2>&1", CHECKER, file, db_path(), extra, log);
	int rc = system(cmd);
	char *text = tu_read_file(log, NULL);
	if (text && summary)
		snprintf(summary, size, "%s", text);
	if (rc != 0)
		fprintf(stderr, "# checker: %s\n", text ? text : "(no output)");
	free(text);
	return rc;
}

static void test_formats_pass_the_checker(void **state)
{
	(void)state;
	if (!have("python3") || !have("protoc"))
		skip();
	char out[512], summary[600];
	static const char *const f[][2] = {
	    {"perfetto", "gpu.pftrace"}, {"chrome-json", "gpu.json"}, {"csv", "gpu.csv"}};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(export_to(f[i][0], f[i][1], NULL, out, sizeof out), 21);
		assert_int_equal(check(out, "", summary, sizeof summary), 0);
		assert_non_null(strstr(summary, "ok: 21 slices"));
		if (i < 2) /* 3 messages, and the launches of the kernel, the copy and the memset */
			assert_non_null(strstr(summary, ", 6 flows"));
	}
	/* a synchronize with no stream has a track of its own, not the ops' */
	assert_int_equal(export_to("csv", "gpu.csv", NULL, out, sizeof out), 21);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "grep -q '^0,4294967295,device-wide,SYNC,sync,410,420,' %s", out);
	assert_int_equal(system(cmd), 0);
	/* the activation counter: +1 at each F's start, -1 at each B's end */
	assert_int_equal(export_to("perfetto", "gpu.pftrace", NULL, out, sizeof out), 21);
	assert_int_equal(check(out, "", summary, sizeof summary), 0);
	assert_non_null(strstr(summary, "peak activations {\"0\": 1, \"1\": 1}"));
}

static const char *str_or_empty(yajl_val v)
{
	const char *s = v ? YAJL_GET_STRING(v) : NULL;
	return s ? s : "";
}

static void test_json_escapes_and_binds_flows(void **state)
{
	(void)state;
	char out[512], err[256];
	export_to("chrome-json", "esc.json", NULL, out, sizeof out);
	char *text = tu_read_file(out, NULL);
	assert_non_null(text);
	/* quotes and backslashes escaped; no raw </script> to end an HTML block */
	assert_non_null(strstr(text, "gemm<\\\"q\\\",\\\\b> <\\/script><script>alert(1)<\\/script>, done"));
	assert_null(strstr(text, "</script>"));
	yajl_val doc = yajl_tree_parse(text, err, sizeof err);
	assert_non_null(doc);
	const char *path[] = {"traceEvents", NULL};
	yajl_val evs = yajl_tree_get(doc, path, yajl_t_array);
	assert_non_null(evs);
	int kernels = 0, launches_s = 0, launches_f = 0, tids_p2p = 0;
	for (size_t i = 0; i < evs->u.array.len; i++) {
		yajl_val e = evs->u.array.values[i];
		const char *ph[] = {"ph", NULL}, *nm[] = {"name", NULL}, *cat[] = {"cat", NULL}, *tid[] = {"tid", NULL};
		const char *p = str_or_empty(yajl_tree_get(e, ph, yajl_t_string));
		const char *n = str_or_empty(yajl_tree_get(e, nm, yajl_t_string));
		if (!strcmp(p, "X") && !strcmp(str_or_empty(yajl_tree_get(e, cat, yajl_t_string)), "KERNEL")) {
			assert_string_equal(n, kernel_name);
			kernels++;
		}
		if (!strcmp(p, "s") && !strcmp(n, "launch"))
			launches_s++;
		if (!strcmp(p, "f") && !strcmp(n, "launch"))
			launches_f++;
		/* the overlapping messages got a row of their own: tid 1 << 24 | 1 */
		if (!strcmp(p, "M") && !strcmp(n, "thread_name") &&
		    YAJL_GET_INTEGER(yajl_tree_get(e, tid, yajl_t_number)) == (1 << 24 | 1))
			tids_p2p++;
	}
	assert_int_equal(kernels, 1);
	assert_int_equal(launches_s, 4); /* four runtime calls: sources */
	assert_int_equal(launches_f, 3); /* kernel, copy, memset: ends (a sync is no launch) */
	assert_int_equal(tids_p2p, 2);	 /* on both ranks */
	yajl_tree_free(doc);
	free(text);
}

static void test_filters(void **state)
{
	(void)state;
	char out[512], summary[600];
	pt_export_opts o = pt_export_opts_all();
	int32_t ranks[] = {1};
	o.ranks = ranks;
	o.nranks = 1;
	assert_int_equal(export_to("csv", "r1.csv", &o, out, sizeof out), 5); /* F, B, 2 RECV, 1 SEND */
	o = pt_export_opts_all();
	o.kinds = 1u << PT_OP_KERNEL | 1u << PT_OP_MEMCPY;
	assert_int_equal(export_to("perfetto", "k.pftrace", &o, out, sizeof out), 2);
	if (have("python3") && have("protoc")) {
		assert_int_equal(check(out, "--kinds KERNEL,MEMCPY", summary, sizeof summary), 0);
		assert_non_null(strstr(summary, "ok: 2 slices, 0 flows"));
	}
	/* a window: the ops and messages overlapping [600, 1200) */
	o = pt_export_opts_all();
	o.from_ns = 600;
	o.to_ns = 1200;
	int64_t n = export_to("perfetto", "w.pftrace", &o, out, sizeof out);
	pt_trace *t;
	assert_int_equal(pt_trace_open(db_path(), &t), 0);
	pt_query q = pt_query_all();
	q.from_ns = 600;
	q.to_ns = 1200;
	assert_int_equal(n, pt_trace_count(t, &q));
	pt_trace_close(t);
	if (have("python3") && have("protoc"))
		assert_int_equal(check(out, "--from 600 --to 1200", summary, sizeof summary), 0);
}

static void test_registry(void **state)
{
	(void)state;
	assert_string_equal(pt_format_by_path("run.pftrace")->name, "perfetto");
	assert_string_equal(pt_format_by_path("a/b.perfetto-trace")->name, "perfetto");
	assert_string_equal(pt_format_by_path("x.json")->name, "chrome-json");
	assert_string_equal(pt_format_by_path("x.csv")->name, "csv");
	assert_null(pt_format_by_path("x.txt"));
	assert_null(pt_format_by_path("pftrace"));
	assert_null(pt_format_by_name("protobuf"));
	for (int i = 0; pt_formats[i]; i++)
		assert_ptr_equal(pt_format_by_name(pt_formats[i]->name), pt_formats[i]);
}

/* The driver's map against a plain array, through puts, finds and deletes
 * that leave long probe runs with holes in them (the in-flight messages). */
static void test_map(void **state)
{
	(void)state;
	enum { KEYS = 3000 };
	static int64_t ref[KEYS];
	static char in[KEYS];
	struct pt_map m;
	memset(&m, 0, sizeof m);
	int64_t v;
	assert_int_equal(pt_map_find(&m, 7, &v), 0);
	pt_map_del(&m, 7); /* an empty map */
	uint64_t r = 12345;
	size_t n = 0;
	for (int step = 0; step < 200000; step++) {
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		int k = (int)((r >> 33) % KEYS);
		uint64_t key = (uint64_t)k * 0x9e3779b97f4a7c15ULL >> 3; /* spread, never ~0 */
		if (!in[k] && (r >> 20) % 3) {
			ref[k] = (int64_t)(r >> 1) - (int64_t)(1LL << 61);
			assert_int_equal(pt_map_put(&m, key, ref[k]), 0);
			in[k] = 1;
			n++;
		} else if (in[k]) {
			assert_int_equal(pt_map_find(&m, key, &v), 1);
			assert_true(v == ref[k]);
			pt_map_del(&m, key);
			in[k] = 0;
			n--;
		}
		assert_int_equal(m.n, n);
		if (step % 997 == 0)
			for (int j = 0; j < KEYS; j++) {
				uint64_t kj = (uint64_t)j * 0x9e3779b97f4a7c15ULL >> 3;
				assert_int_equal(pt_map_find(&m, kj, &v), in[j]);
				if (in[j])
					assert_true(v == ref[j]);
			}
	}
	assert_int_equal(pt_map_get(&m, ~0ULL >> 1), -1);
	pt_map_free(&m);
}

static void test_unwritable_output_leaves_nothing(void **state)
{
	(void)state;
	pt_trace *t;
	assert_int_equal(pt_trace_open(db_path(), &t), 0);
	tu_log_reset();
	int err = pt_export_file(t, pt_format_by_name("perfetto"), NULL, "/nonexistent/dir/x.pftrace", NULL);
	assert_true(pt_err_is_input(err));
	assert_logged("/nonexistent/dir/x.pftrace: cannot write here");
	pt_trace_close(t);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp-", tu_tmpdir());
	assert_int_not_equal(system(cmd), 0); /* no temporary file left behind either */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registry),
	    cmocka_unit_test(test_map),
	    cmocka_unit_test(test_formats_pass_the_checker),
	    cmocka_unit_test(test_json_escapes_and_binds_flows),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_unwritable_output_leaves_nothing),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
