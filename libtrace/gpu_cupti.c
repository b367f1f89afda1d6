/*
 * libtrace/gpu_cupti.c — GPU activity from CUPTI into a trace.
 *
 * CUPTI hands over buffers of activity records; each record becomes one
 * event through the recorder's ordinary hot path, on the CUPTI thread's own
 * buffer, so the completion callback returns fast and never touches SQLite.
 * GPU timestamps come from a registered CLOCK_MONOTONIC source, which puts
 * them on the trace clock. Launches are tied to plan ops by external
 * correlation: the runner pushes pt_ext_id(rank, step) around each op, CUPTI
 * stamps the runtime and driver calls made meanwhile, and the recorder later
 * copies that id onto the kernels and copies those calls launched
 * (pt_rec_close joins on the correlation id), whatever order the buffers
 * arrive in.
 *
 * It does not start CUDA, choose devices or name streams by itself: the
 * backend maps its streams and threads to ranks. Built only with CUPTI.
 */
#include <cupti.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "grow.h"
#include "internal.h"

#define BUF_SIZE (8u << 20) /* CUPTI recommends 1-10 MB */
#define BUF_MAX 64	     /* 512 MB at most in flight; past that records drop, counted */
#define EXT_SLOTS 65536	     /* runtime correlation id -> external id, recent calls */

struct map3 {
	int device;
	uint32_t stream;
	int rank;
};

struct pt_cupti {
	pt_rec *rec;
	int64_t origin;
	pthread_mutex_t lock; /* the maps below; buffers */
	struct map3 *streams;
	int nstreams;
	size_t capstreams;
	struct tmap {
		uint32_t tid;
		int rank;
	} threads[1024];
	int nthreads;
	uint32_t ctx_device[256]; /* contextId -> device + 1, from kernel records */
	/* external ids of recent runtime calls, by correlation id */
	struct {
		uint32_t corr;
		uint64_t ext;
	} ext[EXT_SLOTS];
	int started;
	int buffers_out;
	_Atomic int64_t skip_before; /* raw CUPTI time: earlier activity is dropped */
	uint64_t kernels, copies, calls, no_timestamp, dropped, skipped;
};

static pt_cupti *active; /* CUPTI's callbacks take no context pointer */

static uint32_t gettid_u32(void) { return (uint32_t)syscall(SYS_gettid); }

static uint64_t CUPTIAPI mono_clock(void) { return (uint64_t)pt_mono_ns(); }

/* Under the lock: CUPTI's thread delivers buffers whenever it likes, while
 * the backend may still be mapping streams (which reallocates the array). */
static int rank_of_stream(pt_cupti *c, int device, uint32_t stream)
{
	int rank = device >= 0 ? device : 0; /* one process per GPU, or rank = device */
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->nstreams; i++)
		if (c->streams[i].stream == stream && (c->streams[i].device == device || device < 0)) {
			rank = c->streams[i].rank;
			break;
		}
	pthread_mutex_unlock(&c->lock);
	return rank;
}

static int rank_of_thread(pt_cupti *c, uint32_t tid)
{
	int rank = 0;
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->nthreads; i++)
		if (c->threads[i].tid == tid) {
			rank = c->threads[i].rank;
			break;
		}
	pthread_mutex_unlock(&c->lock);
	return rank;
}

static int64_t trace_ns(pt_cupti *c, uint64_t ts) { return (int64_t)ts - c->origin; }

/* "cudaLaunchKernel_v7000" -> "cudaLaunchKernel": the suffix is CUPTI's
 * version tag, not part of the API's name. */
static void api_name(CUpti_CallbackDomain dom, CUpti_CallbackId cbid, char *buf, size_t size)
{
	const char *name = NULL;
	if (cuptiGetCallbackName(dom, cbid, &name) != CUPTI_SUCCESS || !name) {
		snprintf(buf, size, "%s#%u", dom == CUPTI_CB_DOMAIN_DRIVER_API ? "cu" : "cuda", cbid);
		return;
	}
	snprintf(buf, size, "%s", name);
	char *v = strstr(buf, "_v");
	if (v && v[2] >= '0' && v[2] <= '9' && strspn(v + 2, "0123456789") == strlen(v + 2))
		*v = '\0';
}

static void emit(pt_cupti *c, pt_event *e)
{
	pt_tbuf *b = pt_rec_thread(c->rec);
	if (b)
		pt_emit(b, e);
}

static pt_event base_event(int kind)
{
	pt_event e;
	memset(&e, 0, sizeof e);
	e.step = -1;
	e.device = -1;
	e.op = pt_op_make(kind, -1, -1);
	return e;
}

/* An event of GPU activity on (device, stream), or 0 when CUPTI could not
 * time it (start = end = 0: its device buffer ran out), which is counted.
 * device UINT32_MAX: not known (the event's device is -1). */
static int gpu_event(pt_cupti *c, int kind, uint32_t device, uint32_t stream, uint64_t start, uint64_t end,
		     uint32_t corr, pt_event *e)
{
	if (start == 0 && end == 0) {
		c->no_timestamp++;
		return 0;
	}
	if ((int64_t)end < atomic_load_explicit(&c->skip_before, memory_order_relaxed)) {
		c->skipped++;
		return 0;
	}
	*e = base_event(kind);
	e->device = (int32_t)device;
	e->stream = stream;
	e->rank = rank_of_stream(c, e->device, stream);
	e->start_ns = e->posted_ns = trace_ns(c, start);
	e->end_ns = trace_ns(c, end);
	e->corr = corr;
	return 1;
}

int pt_cupti_record(pt_cupti *c, const void *record)
{
	const CUpti_Activity *a = record;
	pt_event e;
	switch (a->kind) {
	case CUPTI_ACTIVITY_KIND_KERNEL:
	case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
		const CUpti_ActivityKernel10 *k = record;
		if (!gpu_event(c, PT_OP_KERNEL, k->deviceId, k->streamId, k->start, k->end, k->correlationId, &e))
			return 0;
		e.name = pt_rec_intern(c->rec, k->name ? k->name : "?");
		if (k->contextId < 256)
			c->ctx_device[k->contextId] = k->deviceId + 1;
		c->kernels++;
		break;
	}
	case CUPTI_ACTIVITY_KIND_MEMCPY: {
		const CUpti_ActivityMemcpy6 *m = record;
		if (!gpu_event(c, PT_OP_MEMCPY, m->deviceId, m->streamId, m->start, m->end, m->correlationId, &e))
			return 0;
		e.op.bytes = (int64_t)m->bytes;
		e.op.payload = m->copyKind;
		c->copies++;
		break;
	}
	case CUPTI_ACTIVITY_KIND_MEMCPY2: {
		const CUpti_ActivityMemcpyPtoP4 *m = record;
		if (!gpu_event(c, PT_OP_MEMCPY, m->deviceId, m->streamId, m->start, m->end, m->correlationId, &e))
			return 0;
		e.op.bytes = (int64_t)m->bytes;
		e.op.payload = m->copyKind;
		e.op.peer = (int32_t)m->dstDeviceId;
		c->copies++;
		break;
	}
	case CUPTI_ACTIVITY_KIND_MEMSET: {
		const CUpti_ActivityMemset4 *m = record;
		if (!gpu_event(c, PT_OP_MEMSET, m->deviceId, m->streamId, m->start, m->end, m->correlationId, &e))
			return 0;
		e.op.bytes = (int64_t)m->bytes;
		break;
	}
	case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION: {
		/* No device field: learnt from the context's kernels (-1 until one
		 * is seen). Event and context synchronizes have no stream
		 * (CUPTI_SYNCHRONIZATION_INVALID_VALUE): they go on a stream of
		 * their own, not on stream 0, which is the runner's compute stream,
		 * where they would read as an op's time. */
		const CUpti_ActivitySynchronization2 *s = record;
		uint32_t dev = s->contextId < 256 ? c->ctx_device[s->contextId] : 0;
		uint32_t stream = s->streamId == CUPTI_SYNCHRONIZATION_INVALID_VALUE ? PT_STREAM_NONE : s->streamId;
		if (!gpu_event(c, PT_OP_SYNC, dev ? dev - 1 : UINT32_MAX, stream, s->start, s->end, s->correlationId,
			       &e))
			return 0;
		e.op.payload = (uint8_t)s->type;
		break;
	}
	case CUPTI_ACTIVITY_KIND_RUNTIME:
	case CUPTI_ACTIVITY_KIND_DRIVER: {
		const CUpti_ActivityAPI *api = record;
		char name[128];
		api_name(a->kind == CUPTI_ACTIVITY_KIND_DRIVER ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API,
			 api->cbid, name, sizeof name);
		if ((int64_t)api->end < atomic_load_explicit(&c->skip_before, memory_order_relaxed)) {
			c->skipped++;
			return 0;
		}
		e = base_event(PT_OP_RUNTIME);
		e.stream = api->threadId;
		e.rank = rank_of_thread(c, api->threadId);
		e.start_ns = e.posted_ns = trace_ns(c, api->start);
		e.end_ns = trace_ns(c, api->end);
		e.corr = api->correlationId;
		e.name = pt_rec_intern(c->rec, name);
		uint32_t slot = api->correlationId % EXT_SLOTS;
		if (c->ext[slot].corr == api->correlationId && c->ext[slot].ext)
			e.ext = (int64_t)c->ext[slot].ext;
		c->calls++;
		break;
	}
	case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
		/* written just before the API record it tags */
		const CUpti_ActivityExternalCorrelation *x = record;
		if (x->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) {
			uint32_t slot = x->correlationId % EXT_SLOTS;
			c->ext[slot].corr = x->correlationId;
			c->ext[slot].ext = x->externalId;
		}
		return 0;
	}
	default:
		return 0;
	}
	emit(c, &e);
	return 0;
}

int pt_cupti_create(pt_rec *rec, pt_cupti **out)
{
	*out = NULL;
	pt_cupti *c = calloc(1, sizeof *c);
	if (!c)
		return PT_ENOMEM;
	c->rec = rec;
	c->origin = pt_rec_origin(rec);
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

static void CUPTIAPI buffer_requested(uint8_t **buf, size_t *size, size_t *max_records)
{
	pt_cupti *c = active;
	*buf = NULL;
	*size = 0;
	*max_records = 0;
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	int ok = c->buffers_out < BUF_MAX;
	if (ok)
		c->buffers_out++;
	pthread_mutex_unlock(&c->lock);
	if (!ok)
		return; /* legal from CUPTI API v27 on: the records drop and are counted */
	void *p = NULL;
	if (posix_memalign(&p, 8, BUF_SIZE) != 0) {
		pthread_mutex_lock(&c->lock);
		c->buffers_out--;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	*buf = p;
	*size = BUF_SIZE;
}

static void CUPTIAPI buffer_completed(CUcontext ctx, uint32_t stream, uint8_t *buf, size_t size, size_t valid)
{
	(void)size;
	pt_cupti *c = active;
	CUpti_Activity *rec = NULL;
	if (c && valid > 0) {
		while (cuptiActivityGetNextRecord(buf, valid, &rec) == CUPTI_SUCCESS)
			pt_cupti_record(c, rec);
		size_t dropped = 0;
		if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS)
			c->dropped += dropped;
	}
	free(buf);
	if (c) {
		pthread_mutex_lock(&c->lock);
		c->buffers_out--;
		pthread_mutex_unlock(&c->lock);
	}
}

static int cupti_fail(CUptiResult r, const char *what)
{
	const char *msg = NULL;
	cuptiGetResultString(r, &msg);
	return pt_logerr(r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED ? PT_ENODEV : PT_ENODEV,
			 "CUPTI: %s failed: %s%s", what, msg ? msg : "unknown error",
			 r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED
				 ? " (another profiler such as nsys or the PyTorch profiler holds CUPTI)"
				 : "");
}

/* DRIVER besides RUNTIME: cuBLAS launches its kernels through the driver
 * API (cuLaunchKernelEx, as libraries and NCCL may too), so a GEMM kernel's
 * correlation id names a driver call, and only that call's record carries
 * the external id that ties the kernel to its op. */
static const CUpti_ActivityKind kinds[] = {
	CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
	CUPTI_ACTIVITY_KIND_MEMCPY2,	       CUPTI_ACTIVITY_KIND_MEMSET,
	CUPTI_ACTIVITY_KIND_SYNCHRONIZATION,  CUPTI_ACTIVITY_KIND_RUNTIME,
	CUPTI_ACTIVITY_KIND_DRIVER,	       CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
};

int pt_cupti_start(pt_cupti *c)
{
	if (active && active != c)
		return pt_logerr(PT_EINVAL, "CUPTI: one collector per process");
	CUptiResult r;
	active = c;
	/* before callbacks and kinds, once per process: thread ids as gettid,
	 * and our clock (registering it again per session corrupts records) */
	static int clock_set;
	if ((r = cuptiSetThreadIdType(CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM)) != CUPTI_SUCCESS)
		return cupti_fail(r, "cuptiSetThreadIdType");
	if (!clock_set) {
		if ((r = cuptiActivityRegisterTimestampCallback(mono_clock)) != CUPTI_SUCCESS)
			return cupti_fail(r, "cuptiActivityRegisterTimestampCallback");
		clock_set = 1;
	}
	if ((r = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed)) != CUPTI_SUCCESS)
		return cupti_fail(r, "cuptiActivityRegisterCallbacks");
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if ((r = cuptiActivityEnable(kinds[i])) != CUPTI_SUCCESS)
			return cupti_fail(r, "cuptiActivityEnable");
	c->started = 1;
	return 0;
}

int pt_cupti_map_stream(pt_cupti *c, int device, uint32_t stream_id, int rank)
{
	pthread_mutex_lock(&c->lock);
	int err = pt_grow(&c->streams, &c->capstreams, (size_t)c->nstreams + 1, sizeof *c->streams);
	if (!err)
		c->streams[c->nstreams++] = (struct map3){device, stream_id, rank};
	pthread_mutex_unlock(&c->lock);
	return err;
}

int pt_cupti_bind_stream(pt_cupti *c, int rank, int device, void *cuda_stream, enum pt_stream_role role,
			 const char *name)
{
	uint32_t id = 0;
	CUptiResult r = cuptiGetStreamIdEx(NULL, (CUstream)cuda_stream, 0, &id);
	if (r != CUPTI_SUCCESS)
		return cupti_fail(r, "cuptiGetStreamIdEx");
	int err = pt_cupti_map_stream(c, device, id, rank);
	return err ? err : pt_rec_stream(c->rec, rank, id, role, name);
}

int pt_cupti_bind_thread(pt_cupti *c, int rank)
{
	uint32_t tid = gettid_u32();
	int err = 0;
	pthread_mutex_lock(&c->lock);
	if (c->nthreads < (int)(sizeof c->threads / sizeof c->threads[0]))
		c->threads[c->nthreads++] = (struct tmap){tid, rank};
	else
		err = pt_logerr(PT_EINVAL, "CUPTI: more than %zu recording threads",
				sizeof c->threads / sizeof c->threads[0]);
	pthread_mutex_unlock(&c->lock);
	return err;
}

int pt_cupti_push_op(int32_t rank, int32_t step)
{
	CUptiResult r = cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0,
								(uint64_t)pt_ext_id(rank, step));
	return r == CUPTI_SUCCESS ? 0 : PT_ENODEV;
}

int pt_cupti_pop_op(void)
{
	uint64_t id;
	CUptiResult r = cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &id);
	return r == CUPTI_SUCCESS ? 0 : PT_ENODEV;
}

int pt_cupti_flush(pt_cupti *c, int forced)
{
	if (!c->started)
		return 0;
	CUptiResult r = cuptiActivityFlushAll(forced ? CUPTI_ACTIVITY_FLAG_FLUSH_FORCED : 0);
	return r == CUPTI_SUCCESS ? 0 : cupti_fail(r, "cuptiActivityFlushAll");
}

void pt_cupti_skip_before(pt_cupti *c, int64_t mono_ns)
{
	atomic_store_explicit(&c->skip_before, mono_ns, memory_order_relaxed);
}

int pt_cupti_stop(pt_cupti *c)
{
	int err = 0;
	if (c->started) {
		err = pt_cupti_flush(c, 1);
		for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
			cuptiActivityDisable(kinds[i]);
		c->started = 0;
	}
	if (c->no_timestamp || c->dropped)
		pt_log(PT_LOG_WARN, "CUPTI: %llu records without timestamps and %llu dropped (buffers full)",
		       (unsigned long long)c->no_timestamp, (unsigned long long)c->dropped);
	if (!err)
		err = pt_rec_meta_int(c->rec, "cupti.kernels", (int64_t)c->kernels);
	if (!err)
		err = pt_rec_meta_int(c->rec, "cupti.dropped", (int64_t)(c->no_timestamp + c->dropped));
	if (!err && c->skipped)
		err = pt_rec_meta_int(c->rec, "cupti.skipped", (int64_t)c->skipped);
	return err;
}

void pt_cupti_destroy(pt_cupti *c)
{
	if (!c)
		return;
	if (active == c)
		active = NULL;
	pthread_mutex_destroy(&c->lock);
	free(c->streams);
	free(c);
}
