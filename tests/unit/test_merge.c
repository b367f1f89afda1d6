/*
 * tests/unit/test_merge.c — pt_merge on per-process traces whose clocks are
 * deliberately skewed: process 1's clock runs 5 µs ahead of the reference and
 * it started 300 ns before process 0. After merging, both ends of a message
 * and every op sit at their reference times; strings, plans and layout
 * survive; traces that do not belong together are refused.
 */
#include "testutil.h"

#define EPOCH 1000000000000LL

/* Write one process's trace holding `rank`, with its clock skew. Reference
 * times are converted to this process's local times. */
static void write_proc(const char *path, int rank, int64_t ref_t0, int64_t offset, const char *schedule)
{
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	/* what the process believes: its time 0 is at ref_t0 + offset on its own clock */
	assert_int_equal(pt_rec_meta_int(rec, "epoch_ns", ref_t0 + offset), 0);
	assert_int_equal(pt_rec_meta_int(rec, "clock.offset_ns", offset), 0);
	assert_int_equal(pt_rec_meta(rec, "schedule", schedule), 0);
	assert_int_equal(pt_rec_meta(rec, "ranks", "2"), 0);
	pt_rank_info ri = {.rank = rank, .device = rank, .theory_bubble_ns = -1, .theory_peak_act = -1, .nchunks = 1};
	assert_int_equal(pt_rec_rank(rec, &ri), 0);
	pt_chunk_info ci = {rank, 0, 0, rank};
	assert_int_equal(pt_rec_chunk(rec, &ci), 0);
	assert_int_equal(pt_rec_stream(rec, rank, 0, PT_STREAM_COMPUTE, "compute"), 0);
	assert_int_equal(pt_rec_stream(rec, rank, 1, PT_STREAM_COMM, "p2p"), 0);
	pt_op plan[2] = {pt_op_make(PT_OP_F, 0, 0), pt_op_make(rank ? PT_OP_RECV : PT_OP_SEND, 0, 0)};
	plan[1].peer = !rank;
	plan[1].seq = 0;
	assert_int_equal(pt_rec_plan(rec, rank, plan, 2), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	int64_t local = EPOCH - ref_t0; /* reference time r is local time r + local */
	pt_event e;
	memset(&e, 0, sizeof e);
	e.rank = rank;
	e.device = rank;
	e.step = 0;
	e.op = plan[0];
	e.start_ns = e.posted_ns = 1000 + 50 * rank + local;
	e.end_ns = 2000 + local;
	pt_emit(b, &e);
	e.step = 1;
	e.stream = 1;
	e.op = plan[1];
	e.posted_ns = 1900 + local;
	e.start_ns = 2000 + local;
	e.end_ns = 2100 + local;
	pt_emit(b, &e);
	memset(&e, 0, sizeof e);
	e.rank = rank;
	e.stream = 7;
	e.device = rank;
	e.step = -1;
	e.op = pt_op_make(PT_OP_KERNEL, -1, -1);
	/* a different string table in each process: ids collide, names differ */
	uint32_t pad = pt_rec_intern(rec, rank ? "padding-in-rank-1" : "gemm");
	(void)pad;
	e.name = pt_rec_intern(rec, rank ? "nccl_send" : "gemm");
	e.start_ns = 1200 + local;
	e.end_ns = 1800 + local;
	pt_emit(b, &e);
	assert_int_equal(pt_rec_close(rec), 0);
}

static void test_merge_aligns_clocks(void **state)
{
	(void)state;
	char a[512], b[512], out[512];
	tu_path(a, sizeof a, "run.rank0.db");
	tu_path(b, sizeof b, "run.rank1.db");
	tu_path(out, sizeof out, "run.db");
	write_proc(a, 0, EPOCH, 0, "dualpipe");
	write_proc(b, 1, EPOCH - 300, 5000, "dualpipe");
	const char *in[] = {a, b};
	tu_log_reset();
	assert_int_equal(pt_merge(in, 2, out, NULL), 0);
	pt_trace *t;
	assert_int_equal(pt_trace_open(out, &t), 0);
	assert_int_equal(pt_trace_meta_int(t, "epoch_ns", 0), EPOCH - 300);
	assert_string_equal(pt_trace_meta(t, "schedule"), "dualpipe");
	assert_int_equal(pt_trace_nranks(t), 2);
	pt_cursor *c;
	assert_int_equal(pt_cursor_open(t, NULL, &c), 0);
	pt_event e;
	int64_t send_s = -1, recv_s = -2, send_e = -1, recv_e = -2;
	int kernels = 0;
	while (pt_cursor_next(c, &e) == 1) {
		/* merged times are reference times + 300 (the earliest start) */
		if (e.op.kind == PT_OP_F)
			assert_int_equal(e.start_ns, 1000 + 50 * e.rank + 300);
		if (e.op.kind == PT_OP_SEND) {
			send_s = e.start_ns;
			send_e = e.end_ns;
			assert_int_equal(e.posted_ns, 1900 + 300);
		}
		if (e.op.kind == PT_OP_RECV) {
			recv_s = e.start_ns;
			recv_e = e.end_ns;
		}
		if (e.op.kind == PT_OP_KERNEL) {
			kernels++;
			assert_string_equal(pt_trace_string(t, e.name), e.rank ? "nccl_send" : "gemm");
			assert_int_equal(e.start_ns, 1200 + 300);
		}
	}
	pt_cursor_close(c);
	assert_int_equal(kernels, 2);
	assert_int_equal(send_s, recv_s); /* the two ends of one message agree */
	assert_int_equal(send_e, recv_e);
	pt_op *ops;
	size_t n;
	assert_int_equal(pt_trace_plan(t, 1, &ops, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ops[1].kind, PT_OP_RECV);
	free(ops);
	enum pt_stream_role role;
	assert_int_equal(pt_trace_stream(t, 1, 1, &role, NULL), 0);
	assert_int_equal(role, PT_STREAM_COMM);
	pt_trace_close(t);
}

static void test_merge_refuses_strangers(void **state)
{
	(void)state;
	char a[512], b[512], c[512], out[512];
	tu_path(a, sizeof a, "x.rank0.db");
	tu_path(b, sizeof b, "x.rank1.db");
	tu_path(c, sizeof c, "y.rank1.db");
	tu_path(out, sizeof out, "x.db");
	write_proc(a, 0, EPOCH, 0, "dualpipe");
	write_proc(b, 0, EPOCH, 0, "dualpipe"); /* rank 0 again */
	write_proc(c, 1, EPOCH, 0, "1f1b");	/* another schedule */
	const char *dup[] = {a, b}, *other[] = {a, c};
	tu_log_reset();
	assert_int_equal(pt_merge(dup, 2, out, NULL), PT_EINVAL);
	assert_logged("rank 0 is in both");
	assert_false(tu_exists(out));
	tu_log_reset();
	assert_int_equal(pt_merge(other, 2, out, NULL), PT_EINVAL);
	assert_logged("are not from one run: schedule is 'dualpipe' in one and '1f1b' in the other");
	assert_false(tu_exists(out));
	char junk[512];
	tu_path(junk, sizeof junk, "junk.db");
	tu_write_file(junk, "junk", 4);
	const char *bad[] = {a, junk};
	tu_log_reset();
	assert_int_equal(pt_merge(bad, 2, out, NULL), PT_ENOTDB);
	assert_logged("junk.db: not an SQLite database");
	assert_false(tu_exists(out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_aligns_clocks),
		cmocka_unit_test(test_merge_refuses_strangers),
	};
	int rc = cmocka_run_group_tests_name("merge", tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
