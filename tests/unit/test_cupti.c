/*
 * tests/unit/test_cupti.c — the CUPTI collector without a GPU: activity
 * records built here (as CUPTI's buffers would hold them) go through
 * pt_cupti_record into a trace, and the rows are checked: kernels, copies,
 * memsets, syncs and runtime calls land on the right rank and stream, a
 * kernel inherits the op id of the call that launched it (external
 * correlation, resolved when the trace closes, whatever the record order),
 * records without timestamps are counted, not invented; and a cuda backend
 * run's records (an FB's kernels on two streams tied to its op, NCCL on the
 * comm stream, warm-up activity dropped).
 */
#include "testutil.h"

#include "config.h"

#ifdef PT_HAVE_CUPTI
#include <cupti.h>

static void test_records_to_rows(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "cupti.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	tu_log_reset();
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_cupti *c;
	assert_int_equal(pt_cupti_create(rec, &c), 0);
	assert_int_equal(pt_cupti_map_stream(c, 0, 7, 2), 0);  /* rank 2's compute stream */
	assert_int_equal(pt_cupti_map_stream(c, 0, 27, 2), 0); /* rank 2's comm stream */

	/* the kernel first: its launch's records come in a later buffer */
	CUpti_ActivityKernel10 k;
	memset(&k, 0, sizeof k);
	k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
	k.start = 5000;
	k.end = 9000;
	k.deviceId = 0;
	k.contextId = 1;
	k.streamId = 7;
	k.correlationId = 100;
	k.name = "gemm_kernel<float>";
	assert_int_equal(pt_cupti_record(c, &k), 0);

	CUpti_ActivityExternalCorrelation x;
	memset(&x, 0, sizeof x);
	x.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
	x.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
	x.externalId = (uint64_t)pt_ext_id(2, 17);
	x.correlationId = 100;
	assert_int_equal(pt_cupti_record(c, &x), 0);
	CUpti_ActivityAPI api;
	memset(&api, 0, sizeof api);
	api.kind = CUPTI_ACTIVITY_KIND_RUNTIME;
	api.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000;
	api.start = 4000;
	api.end = 4500;
	api.threadId = 4242;
	api.correlationId = 100;
	assert_int_equal(pt_cupti_record(c, &api), 0);

	/* a copy on the comm stream, peer to peer, launched outside any op */
	CUpti_ActivityMemcpyPtoP4 p;
	memset(&p, 0, sizeof p);
	p.kind = CUPTI_ACTIVITY_KIND_MEMCPY2;
	p.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_PTOP;
	p.bytes = 1 << 20;
	p.start = 6000;
	p.end = 7000;
	p.deviceId = 0;
	p.streamId = 27;
	p.dstDeviceId = 1;
	p.correlationId = 101;
	assert_int_equal(pt_cupti_record(c, &p), 0);

	CUpti_ActivityMemset4 ms;
	memset(&ms, 0, sizeof ms);
	ms.kind = CUPTI_ACTIVITY_KIND_MEMSET;
	ms.bytes = 4096;
	ms.start = 3000;
	ms.end = 3100;
	ms.deviceId = 1;
	ms.streamId = 3; /* unmapped: rank = device */
	ms.correlationId = 102;
	assert_int_equal(pt_cupti_record(c, &ms), 0);

	CUpti_ActivitySynchronization2 sy;
	memset(&sy, 0, sizeof sy);
	sy.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
	sy.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT;
	sy.start = 8000;
	sy.end = 8500;
	sy.contextId = 1; /* device 0, learnt from the kernel */
	sy.streamId = 27;
	sy.correlationId = 103;
	assert_int_equal(pt_cupti_record(c, &sy), 0);

	/* a context synchronize (cudaDeviceSynchronize): CUPTI gives it no
	 * stream, and its context has run no kernel yet, so no device either.
	 * It must not land on stream 0, the runner's compute stream. */
	CUpti_ActivitySynchronization2 cs;
	memset(&cs, 0, sizeof cs);
	cs.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
	cs.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE;
	cs.start = 9100;
	cs.end = 9900;
	cs.contextId = 9;
	cs.streamId = CUPTI_SYNCHRONIZATION_INVALID_VALUE;
	cs.cudaEventId = CUPTI_SYNCHRONIZATION_INVALID_VALUE;
	cs.correlationId = 105;
	assert_int_equal(pt_cupti_record(c, &cs), 0);

	/* no timestamps: counted, not recorded */
	CUpti_ActivityKernel10 k0 = k;
	k0.start = k0.end = 0;
	k0.correlationId = 104;
	assert_int_equal(pt_cupti_record(c, &k0), 0);

	assert_int_equal(pt_cupti_stop(c), 0);
	pt_cupti_destroy(c);
	assert_int_equal(pt_rec_close(rec), 0);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	assert_int_equal(pt_trace_meta_int(t, "cupti.kernels", -1), 1);
	assert_int_equal(pt_trace_meta_int(t, "cupti.dropped", -1), 1);
	pt_cursor *cur;
	assert_int_equal(pt_cursor_open(t, NULL, &cur), 0);
	pt_event e;
	int seen = 0;
	while (pt_cursor_next(cur, &e) == 1) {
		switch (e.op.kind) {
		case PT_OP_KERNEL:
			seen |= 1;
			assert_int_equal(e.rank, 2);
			assert_int_equal(e.stream, 7);
			assert_int_equal(e.device, 0);
			assert_int_equal(e.start_ns, 5000);
			assert_int_equal(e.end_ns, 9000);
			assert_int_equal(e.corr, 100);
			assert_int_equal(e.ext, pt_ext_id(2, 17)); /* resolved through the runtime call */
			assert_string_equal(pt_trace_string(t, e.name), "gemm_kernel<float>");
			break;
		case PT_OP_RUNTIME:
			seen |= 2;
			assert_int_equal(e.stream, 4242);
			assert_int_equal(e.ext, pt_ext_id(2, 17));
			/* CUPTI's "cudaLaunchKernel_v7000" without its version tag */
			assert_string_equal(pt_trace_string(t, e.name), "cudaLaunchKernel");
			break;
		case PT_OP_MEMCPY:
			seen |= 4;
			assert_int_equal(e.rank, 2);
			assert_int_equal(e.stream, 27);
			assert_int_equal(e.op.bytes, 1 << 20);
			assert_int_equal(e.op.payload, CUPTI_ACTIVITY_MEMCPY_KIND_PTOP);
			assert_int_equal(e.ext, 0);
			break;
		case PT_OP_MEMSET:
			seen |= 8;
			assert_int_equal(e.rank, 1);
			assert_int_equal(e.device, 1);
			assert_int_equal(e.op.bytes, 4096);
			break;
		case PT_OP_SYNC:
			if (e.op.payload == CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE) {
				seen |= 32;
				assert_int_equal(e.stream, PT_STREAM_NONE);
				assert_int_not_equal(e.stream, PT_STREAM_MAIN);
				assert_int_equal(e.device, -1);
				assert_int_equal(e.start_ns, 9100);
				break;
			}
			seen |= 16;
			assert_int_equal(e.device, 0);
			assert_int_equal(e.rank, 2);
			assert_int_equal(e.stream, 27);
			assert_int_equal(e.op.payload, CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT);
			break;
		default:
			fail_msg("unexpected kind %d", e.op.kind);
		}
	}
	pt_cursor_close(cur);
	assert_int_equal(seen, 63);
	assert_int_equal(pt_trace_count(t, NULL), 6);
	pt_trace_close(t);
}

static void kernel(pt_cupti *c, uint32_t stream, uint32_t corr, uint64_t start, uint64_t end, const char *name)
{
	CUpti_ActivityKernel10 k;
	memset(&k, 0, sizeof k);
	k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
	k.start = start;
	k.end = end;
	k.deviceId = 0;
	k.contextId = 1;
	k.streamId = stream;
	k.correlationId = corr;
	k.name = name;
	assert_int_equal(pt_cupti_record(c, &k), 0);
}

/* A launch call: a runtime cudaLaunchKernel, or (driver) the
 * cuLaunchKernelEx cuBLAS and NCCL make, with the external correlation
 * record CUPTI writes before it while an op's id is pushed. */
static void launch_api(pt_cupti *c, int driver, uint32_t corr, int64_t ext, uint64_t start, uint32_t tid)
{
	if (ext) {
		CUpti_ActivityExternalCorrelation x;
		memset(&x, 0, sizeof x);
		x.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
		x.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
		x.externalId = (uint64_t)ext;
		x.correlationId = corr;
		assert_int_equal(pt_cupti_record(c, &x), 0);
	}
	CUpti_ActivityAPI api;
	memset(&api, 0, sizeof api);
	api.kind = driver ? CUPTI_ACTIVITY_KIND_DRIVER : CUPTI_ACTIVITY_KIND_RUNTIME;
	api.cbid = driver ? CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx : CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000;
	api.start = start;
	api.end = start + 10;
	api.threadId = tid;
	api.correlationId = corr;
	assert_int_equal(pt_cupti_record(c, &api), 0);
}

static void launch(pt_cupti *c, uint32_t corr, int64_t ext, uint64_t start, uint32_t tid)
{
	launch_api(c, 0, corr, ext, start, tid);
}

/* What the cuda backend's run leaves in CUPTI's buffers: an FB op whose
 * forward kernels run on the compute stream and backward kernels on the
 * second stream, all tied to the op; an NCCL kernel on the comm stream
 * launched outside any op (a message); and warm-up activity before the
 * recorded step, dropped and counted (pt_cupti_skip_before). */
static void test_cuda_run_records(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "cupti-run.db");
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_cupti *c;
	assert_int_equal(pt_cupti_create(rec, &c), 0);
	/* rank 1: compute 13, fb 14, comm 15 */
	for (uint32_t s = 13; s <= 15; s++)
		assert_int_equal(pt_cupti_map_stream(c, 0, s, 1), 0);
	pt_cupti_skip_before(c, 1000);
	/* warm-up: ended before the step */
	launch(c, 1, pt_ext_id(1, 4), 100, 77);
	kernel(c, 13, 1, 200, 900, "warmup_gemm");
	/* FB at step 4 of rank 1 */
	const int64_t fb = pt_ext_id(1, 4);
	launch(c, 10, fb, 1100, 77);
	launch(c, 11, fb, 1120, 77);
	launch(c, 12, fb, 1140, 77);
	kernel(c, 13, 10, 1200, 1500, "gemm_fwd");
	kernel(c, 14, 11, 1210, 1600, "gemm_bwd");
	kernel(c, 14, 12, 1600, 1700, "gelu_backward");
	/* cuBLAS launches through the driver API: the GEMM is tied to its op
	 * by the driver call's record */
	launch_api(c, 1, 14, fb, 1160, 77);
	kernel(c, 14, 14, 1700, 1800, "cublas_gemm_bwd");
	/* a message: NCCL's kernel on the comm stream, no op */
	launch(c, 13, 0, 1300, 77);
	kernel(c, 15, 13, 1350, 1900, "ncclDevKernel_SendRecv");
	assert_int_equal(pt_cupti_stop(c), 0);
	pt_cupti_destroy(c);
	assert_int_equal(pt_rec_close(rec), 0);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	assert_int_equal(pt_trace_meta_int(t, "cupti.skipped", -1), 2);
	assert_int_equal(pt_trace_meta_int(t, "cupti.kernels", -1), 5);
	pt_query q = pt_query_all();
	q.sources = PT_SRC_KERNELS;
	pt_cursor *cur;
	assert_int_equal(pt_cursor_open(t, &q, &cur), 0);
	pt_event e;
	int n = 0;
	while (pt_cursor_next(cur, &e) == 1) {
		const char *name = pt_trace_string(t, e.name);
		assert_int_equal(e.rank, 1);
		if (!strcmp(name, "gemm_fwd")) {
			assert_int_equal(e.stream, 13);
			assert_int_equal(e.ext, fb);
		} else if (!strcmp(name, "gemm_bwd") || !strcmp(name, "gelu_backward") ||
			   !strcmp(name, "cublas_gemm_bwd")) {
			assert_int_equal(e.stream, 14);
			assert_int_equal(e.ext, fb);
		} else if (!strcmp(name, "ncclDevKernel_SendRecv")) {
			assert_int_equal(e.stream, 15);
			assert_int_equal(e.ext, 0);
		} else {
			fail_msg("unexpected kernel %s", name);
		}
		n++;
	}
	pt_cursor_close(cur);
	assert_int_equal(n, 5);
	q.sources = PT_SRC_RUNTIME;
	assert_int_equal(pt_trace_count(t, &q), 5);
	pt_trace_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(test_records_to_rows),
					   cmocka_unit_test(test_cuda_run_records)};
	int rc = cmocka_run_group_tests_name("cupti", tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
#else
int main(void)
{
	printf("1..1\nok 1 - CUPTI collector # SKIP this build has no CUPTI\n");
	return 0;
}
#endif
