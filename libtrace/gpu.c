/*
 * libtrace/gpu.c — the CUPTI collector's entry points in a build without
 * CUPTI: each says why it cannot work and returns PT_ENOTSUP, so callers
 * never need an #ifdef. With CUPTI, gpu_cupti.c provides them and this file
 * compiles to nothing.
 */
#include "config.h"
#include "internal.h"

#ifndef PT_HAVE_CUPTI
static int no_cupti(void)
{
	return pt_logerr(PT_ENOTSUP, "this pipetrace was built without CUPTI (install the CUDA toolkit and "
				     "rebuild; `pipetrace --version` lists the features)");
}

int pt_cupti_create(pt_rec *rec, pt_cupti **out)
{
	(void)rec;
	*out = NULL;
	return no_cupti();
}
int pt_cupti_start(pt_cupti *c) { return (void)c, no_cupti(); }
int pt_cupti_map_stream(pt_cupti *c, int device, uint32_t stream_id, int rank)
{
	(void)c, (void)device, (void)stream_id, (void)rank;
	return no_cupti();
}
int pt_cupti_bind_stream(pt_cupti *c, int rank, int device, void *cuda_stream, enum pt_stream_role role,
			 const char *name)
{
	(void)c, (void)rank, (void)device, (void)cuda_stream, (void)role, (void)name;
	return no_cupti();
}
int pt_cupti_bind_thread(pt_cupti *c, int rank) { return (void)c, (void)rank, no_cupti(); }
int pt_cupti_push_op(int32_t rank, int32_t step) { return (void)rank, (void)step, PT_ENOTSUP; }
int pt_cupti_pop_op(void) { return PT_ENOTSUP; }
int pt_cupti_flush(pt_cupti *c, int forced) { return (void)c, (void)forced, PT_ENOTSUP; }
void pt_cupti_skip_before(pt_cupti *c, int64_t mono_ns) { (void)c, (void)mono_ns; }
int pt_cupti_stop(pt_cupti *c) { return (void)c, PT_ENOTSUP; }
void pt_cupti_destroy(pt_cupti *c) { (void)c; }
int pt_cupti_record(pt_cupti *c, const void *record) { return (void)c, (void)record, no_cupti(); }
#endif
