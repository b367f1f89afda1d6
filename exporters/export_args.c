/*
 * exporters/export_args.c — an event's arguments, the same for every format:
 * what its kind has (chunk, microbatch, plan step; peer, bytes, sequence for
 * messages; device, correlation ids, sizes for GPU activity), those set.
 */
#include "exporters.h"

static const char *const arg_keys[PT_ARG_MAX] = {
    [PT_ARG_KIND] = "kind",
    [PT_ARG_CHUNK] = "chunk",
    [PT_ARG_MB] = "mb",
    [PT_ARG_CHUNK2] = "chunk2",
    [PT_ARG_MB2] = "mb2",
    [PT_ARG_STEP] = "step",
    [PT_ARG_PEER] = "peer",
    [PT_ARG_PAYLOAD] = "payload",
    [PT_ARG_SEQ] = "seq",
    [PT_ARG_BATCH] = "batch",
    [PT_ARG_BYTES] = "bytes",
    [PT_ARG_POSTED] = "posted_ns",
    [PT_ARG_DEVICE] = "device",
    [PT_ARG_CORR] = "corr",
    [PT_ARG_EXT] = "ext",
    [PT_ARG_COPY_KIND] = "copy_kind",
    [PT_ARG_SYNC_TYPE] = "sync_type",
    [PT_ARG_DEPTH] = "depth",
    [PT_ARG_DOMAIN] = "domain",
};

static int add_int(pt_arg *out, int n, int id, int64_t v)
{
	out[n] = (pt_arg){id, arg_keys[id], NULL, v};
	return n + 1;
}

static int add_str(pt_arg *out, int n, int id, const char *s)
{
	out[n] = (pt_arg){id, arg_keys[id], s, 0};
	return n + 1;
}

int pt_export_args(pt_export *x, const pt_event *ev, int brief, pt_arg *out)
{
	const pt_op *op = &ev->op;
	int kind = op->kind, n = 0;
	/* what the name of an op says (pt_op_name): its kind, chunk(s),
	 * microbatch(es), and for a message its payload and peer */
	int named = brief && !pt_kind_is_activity(kind);
	if (kind != PT_OP_RUNTIME && kind != PT_OP_RANGE && !brief)
		n = add_str(out, n, PT_ARG_KIND, pt_kind_name(kind));
	if (!pt_kind_is_activity(kind)) {
		if ((kind == PT_OP_SEND || kind == PT_OP_RECV) && !named)
			n = add_str(out, n, PT_ARG_PAYLOAD, op->payload == PT_GRAD ? "grad" : "act");
		if (op->chunk >= 0 && !named)
			n = add_int(out, n, PT_ARG_CHUNK, op->chunk);
		if (op->mb >= 0 && !named)
			n = add_int(out, n, PT_ARG_MB, op->mb);
		if (kind == PT_OP_FB && !named) {
			n = add_int(out, n, PT_ARG_CHUNK2, op->chunk2);
			n = add_int(out, n, PT_ARG_MB2, op->mb2);
		}
		if (ev->step >= 0)
			n = add_int(out, n, PT_ARG_STEP, ev->step);
		if (kind == PT_OP_SEND || kind == PT_OP_RECV) {
			if (!named)
				n = add_int(out, n, PT_ARG_PEER, op->peer);
			if (op->seq >= 0)
				n = add_int(out, n, PT_ARG_SEQ, op->seq);
			if (op->batch >= 0)
				n = add_int(out, n, PT_ARG_BATCH, op->batch);
			n = add_int(out, n, PT_ARG_BYTES, op->bytes);
			if (!brief || ev->posted_ns != ev->start_ns)
				n = add_int(out, n, PT_ARG_POSTED, ev->posted_ns);
		}
		return n;
	}
	if (ev->device >= 0)
		n = add_int(out, n, PT_ARG_DEVICE, ev->device);
	if (kind == PT_OP_MEMCPY || kind == PT_OP_MEMSET)
		n = add_int(out, n, PT_ARG_BYTES, op->bytes);
	if (kind == PT_OP_MEMCPY)
		n = add_int(out, n, PT_ARG_COPY_KIND, op->payload);
	if (kind == PT_OP_SYNC)
		n = add_int(out, n, PT_ARG_SYNC_TYPE, op->payload);
	if (kind == PT_OP_RANGE) {
		n = add_int(out, n, PT_ARG_DEPTH, op->payload);
		if (op->seq > 0)
			n = add_str(out, n, PT_ARG_DOMAIN, pt_trace_string(pt_export_trace(x), (uint32_t)op->seq));
	}
	if (ev->corr)
		n = add_int(out, n, PT_ARG_CORR, ev->corr);
	if (ev->ext)
		n = add_int(out, n, PT_ARG_EXT, ev->ext);
	return n;
}
