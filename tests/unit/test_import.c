/*
 * tests/unit/test_import.c — the pieces of `pipetrace import`: exact
 * µs-to-ns reading of timestamps, the names rules (communication kernels,
 * annotations that are ops, --op-map), libtrace's passes over a finished
 * recording (labelling ops from ranges with the launching-thread rule,
 * nesting, shifting), and the Kineto reader on the JSON shapes real traces
 * take (array format, string tids, baseTimeNanoseconds, fractional times,
 * phases it does not import).
 */
#include "importers/import.h"
#include "testutil.h"

static void test_us_to_ns(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int64_t ns;
	} ok[] = {
	    {"1740461679471346", 1740461679471346000LL},
	    {"198093488368.463", 198093488368463LL},
	    {"0.5", 500},
	    {"12", 12000},
	    {"12.3456", 12346}, /* a fourth decimal rounds */
	    {"12.3454", 12345},
	    {"-2.25", -2250},
	    {"1.5e3", 1500000},
	    {".25", 250},
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		int64_t ns = 0;
		assert_int_equal(imp_us_to_ns(ok[i].s, strlen(ok[i].s), &ns), 0);
		assert_int_equal(ns, ok[i].ns);
	}
	int64_t ns;
	assert_int_equal(imp_us_to_ns("abc", 3, &ns), -1);
	assert_int_equal(imp_us_to_ns("", 0, &ns), -1);
	assert_int_equal(imp_us_to_ns("1e400", 5, &ns), -1);
	/* a double would have lost the last digits here */
	assert_int_equal(imp_us_to_ns("1740461679471346.123", 20, &ns), 0);
	assert_int_equal(ns, 1740461679471346123LL);
}

static void test_comm_kernels(void **state)
{
	(void)state;
	imp_rules r;
	assert_int_equal(imp_rules_init(&r, NULL), 0);
	const char *comm[] = {
	    "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevKernelArgsStorage<4096ul>)",
	    "void ncclKernel_AllGather_RING_LL_Sum_int8_t(ncclWorkElem)",
	    "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t",
	    "void dpsk::ep::internode::combine<false, 8, __nv_bfloat16, 8, 2, 16, 24>(int4*, float*)",
	    "void dpsk::ep::internode::cached_notify<false>(int, int)",
	    "void deep_ep::intranode::dispatch<8, 768, 8192>(int4*, float*)",
	    "void deep_ep::internode_ll::combine<false>(void*)",
	    "c10d::symmetric_memory::one_shot_all_reduce_kernel<float, 4>",
	    "void vllm::cross_device_reduce_1stage<half, 8>(...)",
	    "rcclGenericKernel",
	};
	const char *compute[] = {
	    "void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_dp>(...)",
	    "void dpsk::ep::cuda::get_dispatch_layout<256, 32, 8>(long const*, int*)",
	    "void deep_ep::layout::get_dispatch_layout<256, 32, 8>(long const*)",
	    "void cuda::per_token_cast_to_fp8_with_channels<__nv_bfloat16, 128>(...)",
	    "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>",
	    "flash_fwd_kernel",
	};
	for (size_t i = 0; i < sizeof comm / sizeof comm[0]; i++)
		if (!imp_is_comm_kernel(&r, comm[i]))
			fail_msg("not taken for communication: %s", comm[i]);
	for (size_t i = 0; i < sizeof compute / sizeof compute[0]; i++)
		if (imp_is_comm_kernel(&r, compute[i]))
			fail_msg("taken for communication: %s", compute[i]);
	imp_rules_fini(&r);
	tu_log_reset();
	assert_int_equal(imp_rules_init(&r, "gemm|("), PT_EINVAL);
	assert_logged("--comm-kernels: 'gemm|(' is not a valid regular expression");
	imp_rules_fini(&r);
	assert_int_equal(imp_rules_init(&r, "GEMM"), 0); /* case-insensitive */
	assert_true(imp_is_comm_kernel(&r, "my_gemm_kernel"));
	assert_false(imp_is_comm_kernel(&r, "ncclKernel"));
	imp_rules_fini(&r);
}

static void test_labels(void **state)
{
	(void)state;
	imp_rules r;
	assert_int_equal(imp_rules_init(&r, NULL), 0);
	pt_op op;
	size_t part = 0;
	assert_int_equal(imp_label(&r, "attn(F)", &op, &part), 1);
	assert_int_equal(op.kind, PT_OP_F);
	assert_int_equal(part, 4);
	assert_int_equal(imp_label(&r, "mlp(B)", &op, &part), 2); /* B or I: the trace decides */
	assert_int_equal(op.kind, PT_OP_B);
	assert_int_equal(part, 3);
	assert_int_equal(imp_label(&r, "mlp(W)", &op, &part), 1);
	assert_int_equal(op.kind, PT_OP_W);
	assert_int_equal(imp_label(&r, "dispatch(F)", &op, &part), 1);
	assert_int_equal(imp_label(&r, "F0:3", &op, &part), 1);
	assert_int_equal(op.kind, PT_OP_F);
	assert_int_equal(op.chunk, 0);
	assert_int_equal(op.mb, 3);
	assert_int_equal(imp_label(&r, "F0:7|B1:3", &op, &part), 1);
	assert_int_equal(op.kind, PT_OP_FB);
	assert_int_equal(op.chunk2, 1);
	assert_int_equal(op.mb2, 3);
	const char *none[] = {"ProfilerStep#1", "1F1B", "aten::mm", "(F)", "attn(X)", "attn(F) ", ""};
	for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
		if (imp_label(&r, none[i], &op, &part))
			fail_msg("'%s' taken for an op", none[i]);
	/* --op-map: whole names, first match wins, before the built-in rules */
	assert_int_equal(imp_rules_add_map(&r, "fwd_layer[0-9]+=F"), 0);
	assert_int_equal(imp_rules_add_map(&r, "dispatch.*=none"), 0);
	assert_int_equal(imp_rules_add_map(&r, "mlp\\(B\\)=B"), 0);
	assert_int_equal(imp_label(&r, "fwd_layer12", &op, &part), 1);
	assert_int_equal(op.kind, PT_OP_F);
	assert_int_equal(imp_label(&r, "xfwd_layer12", &op, &part), 0);
	assert_int_equal(imp_label(&r, "dispatch(F)", &op, &part), 0);
	assert_int_equal(imp_label(&r, "mlp(B)", &op, &part), 1); /* pinned: no B-or-I question */
	tu_log_reset();
	assert_int_equal(imp_rules_add_map(&r, "x=Q"), PT_EINVAL);
	assert_logged("unknown kind 'Q'");
	assert_int_equal(imp_rules_add_map(&r, "no-equals"), PT_EINVAL);
	imp_rules_fini(&r);
}

/* ------------------------------------------------- libtrace's passes */

static pt_event act(int kind, uint32_t stream, int device, int64_t s, int64_t e, int64_t corr)
{
	pt_event ev;
	memset(&ev, 0, sizeof ev);
	ev.stream = stream;
	ev.step = -1;
	ev.device = device;
	ev.corr = corr;
	ev.op = pt_op_make(kind, -1, -1);
	ev.start_ns = ev.posted_ns = s;
	ev.end_ns = e;
	return ev;
}

static void test_label_ranges(void **state)
{
	(void)state;
	char path[300];
	tu_path(path, sizeof path, "label.db");
	tu_log_reset();
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	uint32_t fwd = pt_rec_intern(rec, "fwd"), bwd = pt_rec_intern(rec, "bwd"), idle = pt_rec_intern(rec, "idle");
	pt_event e;
	/* rank 0: "fwd" on thread 10 [0,100) and "bwd" on thread 11 [50,150) overlap in time */
	e = act(PT_OP_RANGE, 10, -1, 0, 100, 0), e.name = fwd, pt_emit(b, &e);
	e = act(PT_OP_RANGE, 11, -1, 50, 150, 0), e.name = bwd, pt_emit(b, &e);
	e = act(PT_OP_RANGE, 10, -1, 200, 300, 0), e.name = idle, pt_emit(b, &e);
	/* launches: thread 10 at 60 -> fwd only (its own thread); thread 11 at 70 ->
	 * bwd only; thread 12 at 80 (no labelled range of its own) -> both */
	e = act(PT_OP_RUNTIME, 10, -1, 60, 61, 1), pt_emit(b, &e);
	e = act(PT_OP_RUNTIME, 11, -1, 70, 71, 2), pt_emit(b, &e);
	e = act(PT_OP_RUNTIME, 12, -1, 80, 81, 3), pt_emit(b, &e);
	e = act(PT_OP_RUNTIME, 10, -1, 10, 11, 4), pt_emit(b, &e);
	e = act(PT_OP_KERNEL, 7, 0, 1000, 1100, 1), pt_emit(b, &e);
	e = act(PT_OP_KERNEL, 8, 0, 1050, 1300, 2), pt_emit(b, &e);
	e = act(PT_OP_MEMCPY, 7, 0, 1400, 1500, 3), pt_emit(b, &e);
	e = act(PT_OP_KERNEL, 9, 0, 900, 920, 4), pt_emit(b, &e);
	/* rank 1: only a GPU-side range names an op */
	e = act(PT_OP_RANGE, 5, 1, 40, 90, 0), e.rank = 1, e.name = fwd, pt_emit(b, &e);
	pt_range_label labels[] = {
	    {.rank = -1, .name = fwd, .op = pt_op_make(PT_OP_F, -1, -1)},
	    {.rank = 0, .name = bwd, .op = pt_op_make(PT_OP_I, -1, -1)},
	    {.rank = 0, .name = idle, .op = pt_op_make(PT_OP_W, -1, -1)},
	};
	pt_label_stats ls;
	assert_int_equal(pt_rec_label_ranges(rec, labels, 3, &ls), 0);
	assert_int_equal(ls.ranges, 4);
	assert_int_equal(ls.ops, 3);
	assert_int_equal(ls.idle, 1);
	assert_int_equal(ls.kinds[PT_OP_F], 2);
	assert_int_equal(ls.kinds[PT_OP_I], 1);
	assert_int_equal(pt_rec_close(rec), 0);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_query q = pt_query_all();
	q.sources = PT_SRC_OPS;
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	struct {
		int rank, kind;
		uint32_t stream;
		int64_t s, e;
	} want[] = {
	    /* rank 1's GPU range, as is */
	    {1, PT_OP_F, 5, 40, 90},
	    /* fwd: corr 4 (900-920 on 9), corr 1 (1000-1100 on 7), corr 3 (1400-1500 on 7): stream 7 wins */
	    {0, PT_OP_F, 7, 1000, 1500},
	    /* bwd: corr 2 (1050-1300 on 8) and corr 3 (on 7): 250 ns on 8 against 100 on 7 */
	    {0, PT_OP_I, 8, 1050, 1300},
	};
	pt_event ev;
	size_t n = 0;
	while (pt_cursor_next(c, &ev) == 1) {
		assert_true(n < sizeof want / sizeof want[0]);
		assert_int_equal(ev.rank, want[n].rank);
		assert_int_equal(ev.op.kind, want[n].kind);
		assert_int_equal(ev.stream, want[n].stream);
		assert_int_equal(ev.start_ns, want[n].s);
		assert_int_equal(ev.end_ns, want[n].e);
		assert_int_equal(ev.step, -1);
		n++;
	}
	assert_int_equal(n, sizeof want / sizeof want[0]);
	pt_cursor_close(c);
	pt_trace_close(t);
}

static void test_nest_and_shift(void **state)
{
	(void)state;
	char path[300];
	tu_path(path, sizeof path, "nest.db");
	tu_log_reset();
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	uint32_t d1 = pt_rec_intern(rec, "cpu_op"), d2 = pt_rec_intern(rec, "user_annotation");
	struct {
		uint32_t stream, domain;
		int64_t s, e;
		int depth;
	} r[] = {
	    {1, d1, -50, 100, 0}, {1, d1, -40, 30, 1}, {1, d1, -40, -35, 2}, /* same start: the longer outside */
	    {1, d1, 30, 60, 1},	  {1, d2, 0, 10, 0},   {2, d1, 0, 10, 0},    {1, d1, 100, 110, 0},
	};
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
		pt_event e = act(PT_OP_RANGE, r[i].stream, -1, r[i].s, r[i].e, 0);
		e.op.seq = (int32_t)r[i].domain;
		e.name = (uint32_t)i + 1;
		pt_emit(b, &e);
	}
	pt_event k = act(PT_OP_KERNEL, 7, 0, -10, 5, 0);
	pt_emit(b, &k);
	assert_int_equal(pt_rec_nest_ranges(rec), 0);
	assert_int_equal(pt_rec_shift(rec, 50), 0);
	assert_int_equal(pt_rec_close(rec), 0);
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_query q = pt_query_all();
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	pt_event ev;
	int seen = 0;
	while (pt_cursor_next(c, &ev) == 1) {
		if (ev.op.kind == PT_OP_KERNEL) {
			assert_int_equal(ev.start_ns, 40);
			assert_int_equal(ev.end_ns, 55);
			seen++;
			continue;
		}
		size_t i = ev.name - 1;
		assert_int_equal(ev.start_ns, r[i].s + 50);
		assert_int_equal(ev.end_ns, r[i].e + 50);
		if (ev.op.payload != r[i].depth)
			fail_msg("range %zu: depth %d, expected %d", i, ev.op.payload, r[i].depth);
		seen++;
	}
	assert_int_equal(seen, (int)(sizeof r / sizeof r[0]) + 1);
	pt_cursor_close(c);
	pt_trace_close(t);
}

/* ---------------------------------------------------- the Kineto reader */

/* Import one JSON text; returns the reader's result, the trace open in *t. */
static int import_text(const char *json, const char *name, pt_trace **t, imp_rules *rules, imp *im)
{
	char in[300], out[300];
	tu_path(in, sizeof in, name);
	tu_path(out, sizeof out, "k.db");
	tu_write_file(in, json, strlen(json));
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(out, &ro, &rec), 0);
	assert_int_equal(imp_rules_init(rules, NULL), 0);
	imp_init(im, rec, rules, IMP_KINETO, 1);
	im->input = in;
	int err = imp_kineto_file(im, in, 0);
	if (!err)
		err = imp_finish(im, NULL);
	if (err) {
		pt_rec_abort(rec);
		return err;
	}
	assert_int_equal(pt_rec_close(rec), 0);
	assert_int_equal(pt_trace_open(out, t), 0);
	return 0;
}

static void test_kineto_shapes(void **state)
{
	(void)state;
	tu_log_reset();
	/* the JSON Array Format, string tids, a fractional ts, phases not imported */
	const char *arr =
	    "[{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"k\",\"pid\":0,\"tid\":\"stream 7\","
	    "\"ts\":1700000000000001.250,\"dur\":2.5},"
	    "{\"ph\":\"B\",\"name\":\"b\",\"pid\":1,\"tid\":1,\"ts\":1},"
	    "{\"ph\":\"E\",\"pid\":1,\"tid\":1,\"ts\":2},"
	    "{\"ph\":\"X\",\"cat\":\"cpu_op\",\"name\":\"aten::mm\",\"pid\":9,\"tid\":9,\"ts\":1700000000000000.5,"
	    "\"dur\":1,\"args\":{\"nested\":{\"ts\":5,\"name\":\"no\"},\"list\":[1,{\"name\":\"no\"}]}},"
	    "{\"ph\":\"X\",\"cat\":\"cpu_op\",\"name\":\"no ts\",\"pid\":9,\"tid\":9}]";
	pt_trace *t;
	imp_rules rules;
	imp im;
	assert_int_equal(import_text(arr, "arr.json", &t, &rules, &im), 0);
	assert_int_equal(im.count[PT_OP_KERNEL], 1);
	assert_int_equal(im.count[PT_OP_RANGE], 1);
	int skipped = 0;
	for (int i = 0; i < im.nskips; i++)
		skipped += (int)im.skips[i].n;
	assert_int_equal(skipped, 3); /* B, E, and the X without a timestamp */
	assert_string_equal(pt_trace_meta(t, "epoch_ns"), "1700000000000000000");
	pt_query q = pt_query_all();
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	pt_event ev;
	assert_int_equal(pt_cursor_next(c, &ev), 1);
	assert_int_equal(ev.op.kind, PT_OP_RANGE);
	assert_int_equal(ev.start_ns, 500);
	assert_string_equal(pt_trace_string(t, ev.name), "aten::mm"); /* not the args' names */
	assert_int_equal(pt_cursor_next(c, &ev), 1);
	assert_int_equal(ev.op.kind, PT_OP_KERNEL);
	assert_int_equal(ev.stream, 7);
	assert_int_equal(ev.start_ns, 1250);
	assert_int_equal(ev.end_ns, 3750);
	pt_cursor_close(c);
	pt_trace_close(t);
	imp_fini(&im);
	imp_rules_fini(&rules);

	/* baseTimeNanoseconds before the events: times are relative to it;
	 * distributedInfo gives the rank; args.stream/device win over pid/tid */
	const char *rel =
	    "{\"distributedInfo\":{\"rank\":3},\"baseTimeNanoseconds\":1743521598000000000,"
	    "\"traceEvents\":[{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"k\",\"pid\":0,\"tid\":99,"
	    "\"ts\":198093488368.463,\"dur\":0.001,\"args\":{\"stream\":13,\"device\":2,\"correlation\":5}}]}";
	assert_int_equal(import_text(rel, "rel.json", &t, &rules, &im), 0);
	assert_int_equal(pt_trace_nranks(t), 1);
	pt_rank_info ri;
	assert_int_equal(pt_trace_rank_at(t, 0, &ri), 0);
	assert_int_equal(ri.rank, 3);
	assert_int_equal(ri.device, 2);
	int64_t abs_ns = 1743521598000000000LL + 198093488368463LL;
	int64_t epoch = pt_trace_meta_int(t, "epoch_ns", -1);
	assert_int_equal(epoch, abs_ns / 1000000000 * 1000000000);
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	assert_int_equal(pt_cursor_next(c, &ev), 1);
	assert_int_equal(ev.start_ns + epoch, abs_ns);
	assert_int_equal(ev.end_ns - ev.start_ns, 1);
	assert_int_equal(ev.stream, 13);
	assert_int_equal(ev.device, 2);
	assert_int_equal(ev.corr, 5);
	pt_cursor_close(c);
	pt_trace_close(t);
	imp_fini(&im);
	imp_rules_fini(&rules);

	/* an event before the second of the first one read: time 0 moves back to it */
	const char *early = "{\"traceEvents\":[{\"ph\":\"X\",\"cat\":\"kernel\",\"name\":\"k\",\"pid\":0,\"tid\":7,"
			    "\"ts\":1700000001000000.5,\"dur\":1},{\"ph\":\"X\",\"cat\":\"cpu_op\",\"name\":\"op\","
			    "\"pid\":9,\"tid\":9,\"ts\":1700000000500000,\"dur\":2}]}";
	assert_int_equal(import_text(early, "early.json", &t, &rules, &im), 0);
	assert_string_equal(pt_trace_meta(t, "epoch_ns"), "1700000000500000000");
	assert_int_equal(pt_cursor_open(t, &q, &c), 0);
	assert_int_equal(pt_cursor_next(c, &ev), 1);
	assert_int_equal(ev.op.kind, PT_OP_RANGE);
	assert_int_equal(ev.start_ns, 0);
	assert_int_equal(ev.end_ns, 2000);
	assert_int_equal(pt_cursor_next(c, &ev), 1);
	assert_int_equal(ev.start_ns, 500000500);
	pt_cursor_close(c);
	pt_trace_close(t);
	imp_fini(&im);
	imp_rules_fini(&rules);

	/* not traces */
	tu_log_reset();
	assert_int_equal(import_text("{\"a\":[1,2]}", "na.json", &t, &rules, &im), PT_EINVAL);
	assert_logged("not a trace: the JSON object has no traceEvents array");
	imp_fini(&im);
	imp_rules_fini(&rules);
	tu_log_reset();
	assert_int_equal(import_text("{\"traceEvents\":[{\"ph\":\"X\" \"x\"}]}", "bad.json", &t, &rules, &im),
			 PT_EINVAL);
	assert_logged("bad.json: invalid JSON at byte 28");
	imp_fini(&im);
	imp_rules_fini(&rules);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_us_to_ns),	   cmocka_unit_test(test_comm_kernels),
	    cmocka_unit_test(test_labels),	   cmocka_unit_test(test_label_ranges),
	    cmocka_unit_test(test_nest_and_shift), cmocka_unit_test(test_kineto_shapes),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
