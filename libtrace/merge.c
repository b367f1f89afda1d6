/*
 * libtrace/merge.c — per-process traces of one run onto one timeline. Under
 * mpirun every process records its own database; each knows the realtime of
 * its time 0 (meta epoch_ns) and how far its clock ran ahead of the
 * reference clock when the run started (meta clock.offset_ns, measured by the
 * runner). Merging moves every event to the reference clock, re-interns the
 * strings, and writes one trace through the recorder. It reads and writes
 * only through libtrace's own reader and recorder; it does not re-measure
 * clocks.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* meta keys that describe one recording, not the run */
static int per_recording(const char *key)
{
	return !strncmp(key, "rec.", 4) || !strcmp(key, "epoch_ns") || !strcmp(key, "clock.offset_ns") ||
	       !strcmp(key, "schema_version") || !strcmp(key, "tool") || !strcmp(key, "tool_version");
}

static int same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

/* Re-intern string `id` of input t into rec, through a per-input cache. */
struct remap {
	uint32_t *to;
	uint32_t cap;
};

static uint32_t remap(struct remap *m, pt_trace *t, pt_rec *rec, uint32_t id)
{
	if (id == 0)
		return 0;
	if (id >= m->cap) {
		uint32_t cap = m->cap ? m->cap : 256;
		while (cap <= id)
			cap *= 2;
		uint32_t *to = realloc(m->to, cap * sizeof *to);
		if (!to)
			return 0;
		memset(to + m->cap, 0, (cap - m->cap) * sizeof *to);
		m->to = to;
		m->cap = cap;
	}
	if (!m->to[id])
		m->to[id] = pt_rec_intern(rec, pt_trace_string(t, id));
	return m->to[id];
}

static int copy_layout(pt_trace *t, pt_rec *rec)
{
	int err = 0;
	for (int i = 0; i < pt_trace_nranks(t) && !err; i++) {
		pt_rank_info ri;
		if ((err = pt_trace_rank_at(t, i, &ri)) || (err = pt_rec_rank(rec, &ri)))
			break;
		pt_chunk_info ch[64];
		int nc = pt_trace_chunks(t, ri.rank, ch, 64);
		if (nc < 0)
			return nc;
		for (int c = 0; c < nc && !err; c++)
			err = pt_rec_chunk(rec, &ch[c]);
		uint32_t ids[256];
		int ns = pt_trace_streams(t, ri.rank, ids, 256);
		for (int k = 0; k < ns && !err; k++) {
			enum pt_stream_role role;
			const char *name;
			if (!pt_trace_stream(t, ri.rank, ids[k], &role, &name))
				err = pt_rec_stream(rec, ri.rank, ids[k], role, name);
		}
		pt_op *ops;
		size_t n;
		if (!err && !(err = pt_trace_plan(t, ri.rank, &ops, &n))) {
			if (n)
				err = pt_rec_plan(rec, ri.rank, ops, n);
			free(ops);
		}
	}
	return err;
}

int pt_merge(const char *const *inputs, int n, const char *out_path, const pt_merge_opts *opts)
{
	pt_merge_opts none = {0};
	if (!opts)
		opts = &none;
	if (n < 1)
		return pt_logerr(PT_EINVAL, "merge: no input traces");
	pt_trace **t = calloc((size_t)n, sizeof *t);
	int64_t *shift = calloc((size_t)n, sizeof *shift);
	struct remap *maps = calloc((size_t)n, sizeof *maps);
	pt_rec *rec = NULL;
	int err = (!t || !shift || !maps) ? PT_ENOMEM : 0;
	for (int i = 0; i < n && !err; i++)
		err = pt_trace_open(inputs[i], &t[i]);
	if (err)
		goto out;

	/* one run: same shape, disjoint ranks */
	static const char *const keys[] = {"schedule", "ranks", "microbatches", "backend", "comm_mode"};
	for (int i = 1; i < n && !err; i++) {
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			const char *a = pt_trace_meta(t[0], keys[k]), *b = pt_trace_meta(t[i], keys[k]);
			if (!same(a, b)) {
				err = pt_logerr(PT_EINVAL, "merge: %s and %s are not from one run: %s is '%s' in one and '%s' in the other",
						inputs[0], inputs[i], keys[k], a ? a : "(none)", b ? b : "(none)");
				break;
			}
		}
		for (int r = 0; r < pt_trace_nranks(t[i]) && !err; r++) {
			pt_rank_info ri, other;
			pt_trace_rank_at(t[i], r, &ri);
			for (int j = 0; j < i && !err; j++)
				if (pt_trace_rank(t[j], ri.rank, &other) == 0)
					err = pt_logerr(PT_EINVAL, "merge: rank %d is in both %s and %s", ri.rank, inputs[j],
							inputs[i]);
		}
	}
	if (err)
		goto out;

	/* the reference time of each input's time 0; the earliest becomes 0 */
	int64_t base = INT64_MAX;
	for (int i = 0; i < n; i++) {
		shift[i] = pt_trace_meta_int(t[i], "epoch_ns", 0) - pt_trace_meta_int(t[i], "clock.offset_ns", 0);
		if (shift[i] < base)
			base = shift[i];
	}
	for (int i = 0; i < n; i++)
		shift[i] -= base;

	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = opts->overwrite};
	if ((err = pt_rec_create(out_path, &ro, &rec)))
		goto out;
	for (int i = 0, m = pt_trace_meta_at(t[0], -1, NULL, NULL); i < m && !err; i++) {
		const char *k, *v;
		pt_trace_meta_at(t[0], i, &k, &v);
		if (!per_recording(k))
			err = pt_rec_meta(rec, k, v);
	}
	if (!err)
		err = pt_rec_meta_int(rec, "epoch_ns", base);
	if (!err)
		err = pt_rec_meta_int(rec, "merge.inputs", n);
	for (int i = 0; i < n && !err; i++)
		err = copy_layout(t[i], rec);

	int64_t total = 0, done = 0;
	for (int i = 0; i < n; i++)
		total += pt_trace_count(t[i], NULL);
	pt_tbuf *b = err ? NULL : pt_rec_thread(rec);
	if (!err && !b)
		err = PT_ENOMEM;
	for (int i = 0; i < n && !err; i++) {
		pt_cursor *c;
		if ((err = pt_cursor_open(t[i], NULL, &c)))
			break;
		pt_event ev;
		int got;
		while ((got = pt_cursor_next(c, &ev)) == 1) {
			ev.start_ns += shift[i];
			ev.end_ns += shift[i];
			ev.posted_ns += shift[i];
			ev.name = remap(&maps[i], t[i], rec, ev.name);
			if (ev.op.kind == PT_OP_RANGE && ev.op.seq > 0)
				ev.op.seq = (int32_t)remap(&maps[i], t[i], rec, (uint32_t)ev.op.seq);
			pt_emit(b, &ev);
			if (opts->progress && (++done & 0xffff) == 0)
				opts->progress(opts->ctx, done, total);
		}
		if (got < 0)
			err = got;
		pt_cursor_close(c);
	}
	if (!err && opts->progress)
		opts->progress(opts->ctx, total, total);
	if (!err) {
		err = pt_rec_close(rec);
		rec = NULL;
	}
out:
	pt_rec_abort(rec);
	for (int i = 0; t && i < n; i++) {
		pt_trace_close(t[i]);
		if (maps)
			free(maps[i].to);
	}
	free(t);
	free(shift);
	free(maps);
	return err;
}
