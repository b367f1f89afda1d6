/*
 * tests/tools/synth.h — traces made through libtrace's recorder (pt_rec_*)
 * for the viewer's tests and benchmark, with what runner traces lack: GPU
 * activity (kernels, copies, ranges) and names that are hostile to a web
 * page or a terminal. Header-only: tests/unit/test_viewer.c, the mktrace tool
 * (tests/tools/mktrace.c, for the browser tests) and bench/bench_view.c
 * include it. Not a schedule generator: the ops follow a fixed pattern.
 */
#ifndef PT_SYNTH_H
#define PT_SYNTH_H

#include <stdio.h>
#include <string.h>

#include "pipetrace/trace.h"

/* The names the markup trace carries; a page that runs any of them sets
 * window.__pt_pwned or opens an alert. */
static const char *const synth_markup_names[] = {
	"<script>alert(1)</script>",
	"</script><script>window.__pt_pwned=1</script>",
	"<img src=x onerror=\"window.__pt_pwned=1\">",
	"a & b > c < d \"quoted\" 'single'",
	"line\xe2\x80\xa8separator\xe2\x80\xa9paragraph",
	"\xce\xbc" "s-scale kernel \xe2\x86\x92 ok",
	"quote\"\xe2\x80\xa8" "after an escape",
	"\x1b]0;terminal title\x07\x1b[2J",
};
#define SYNTH_MARKUP_STREAM "<img src=x onerror=\"window.__pt_pwned=2\">"
#define SYNTH_MARKUP_SCHEDULE "<script>window.__pt_pwned=3</script>"
#define SYNTH_MARKUP_RANK "<b onmouseover=\"window.__pt_pwned=4\">r</b>"

static inline int synth_begin(const char *path, pt_rec **rec)
{
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	return pt_rec_create(path, &ro, rec);
}

/* Describe rank r (label) and its streams: n (id, role, name) triples. */
static inline int synth_rank(pt_rec *rec, int r, const char *label, int n, const uint32_t *ids, const int *roles,
			     const char *const *names)
{
	pt_rank_info ri = {.rank = r, .device = r, .theory_bubble_ns = -1, .theory_peak_act = -1, .nchunks = 1};
	snprintf(ri.label, sizeof ri.label, "%s", label);
	int err = pt_rec_rank(rec, &ri);
	for (int i = 0; i < n && !err; i++)
		err = pt_rec_stream(rec, r, ids[i], (enum pt_stream_role)roles[i], names[i]);
	return err;
}

static inline void synth_op(pt_tbuf *b, int rank, uint32_t stream, int kind, int chunk, int mb, int64_t t, int64_t d)
{
	pt_event ev;
	memset(&ev, 0, sizeof ev);
	ev.rank = rank;
	ev.stream = stream;
	ev.step = -1;
	ev.device = -1;
	ev.op = pt_op_make(kind, chunk, mb);
	ev.start_ns = ev.posted_ns = t;
	ev.end_ns = t + d;
	pt_emit(b, &ev);
}

static inline void synth_activity(pt_tbuf *b, int rank, uint32_t stream, int kind, uint32_t name, int64_t t, int64_t d)
{
	pt_event ev;
	memset(&ev, 0, sizeof ev);
	ev.rank = rank;
	ev.stream = stream;
	ev.step = -1;
	ev.device = rank;
	ev.name = name;
	ev.op = pt_op_make(kind, -1, -1);
	ev.start_ns = ev.posted_ns = t;
	ev.end_ns = t + d;
	pt_emit(b, &ev);
}

/*
 * Two ranks, each with forwards and backwards on stream 0 and, on GPU stream
 * 7 (named with markup), one kernel per op named from synth_markup_names;
 * meta and rank labels with markup too. 0 or a PT_E* code.
 */
static inline int synth_markup(const char *path)
{
	pt_rec *rec;
	int err = synth_begin(path, &rec);
	if (err)
		return err;
	pt_rec_meta(rec, "schedule", SYNTH_MARKUP_SCHEDULE);
	pt_rec_meta(rec, "backend", "synthetic");
	pt_tbuf *b = pt_rec_thread(rec);
	uint32_t ids[sizeof synth_markup_names / sizeof synth_markup_names[0]];
	int nnames = (int)(sizeof ids / sizeof ids[0]);
	for (int i = 0; i < nnames; i++)
		ids[i] = pt_rec_intern(rec, synth_markup_names[i]);
	const int64_t ms = 1000000;
	for (int r = 0; r < 2 && !err; r++) {
		static const uint32_t sids[] = {0, 7};
		static const int roles[] = {PT_STREAM_COMPUTE, PT_STREAM_COMPUTE};
		static const char *const snames[] = {"compute", SYNTH_MARKUP_STREAM};
		err = synth_rank(rec, r, SYNTH_MARKUP_RANK, 2, sids, roles, snames);
		int64_t t = r * ms;
		for (int mb = 0; mb < 4 && !err; mb++) {
			synth_op(b, r, 0, PT_OP_F, 0, mb, t, ms);
			synth_activity(b, r, 7, PT_OP_KERNEL, ids[(2 * mb) % nnames], t + ms / 10, ms * 8 / 10);
			t += ms;
		}
		for (int mb = 0; mb < 4 && !err; mb++) {
			synth_op(b, r, 0, PT_OP_B, 0, mb, t, 2 * ms);
			synth_activity(b, r, 7, PT_OP_KERNEL, ids[(2 * mb + 1) % nnames], t + ms / 10, ms * 18 / 10);
			t += 2 * ms;
		}
	}
	if (err) {
		pt_rec_abort(rec);
		return err;
	}
	return pt_rec_close(rec);
}

/*
 * A large trace: `ranks` ranks, each a run of forwards (1 ms) and backwards
 * (2 ms) with a 1F1B-like warm-up, every op split into `per_op` kernels of
 * twenty names on GPU stream 7, and every fourth op followed by a copy on
 * communication stream 9. About `events` events in all. 0 or a PT_E* code.
 */
static inline int synth_big(const char *path, int ranks, int64_t events, int per_op)
{
	pt_rec *rec;
	int err = synth_begin(path, &rec);
	if (err)
		return err;
	pt_rec_meta(rec, "schedule", "synthetic");
	pt_rec_meta(rec, "backend", "synthetic");
	pt_tbuf *b = pt_rec_thread(rec);
	uint32_t names[20];
	for (int i = 0; i < 20; i++) {
		char name[96];
		snprintf(name, sizeof name, "void gemm_kernel_%02d<float, 128, 64>(Params const&)", i);
		names[i] = pt_rec_intern(rec, name);
	}
	uint32_t copy = pt_rec_intern(rec, "ncclDevKernel_SendRecv");
	const int64_t ms = 1000000;
	int64_t ops_per_rank = events / ranks / (per_op + 1);
	for (int r = 0; r < ranks && !err; r++) {
		static const uint32_t sids[] = {0, 7, 9};
		static const int roles[] = {PT_STREAM_COMPUTE, PT_STREAM_COMPUTE, PT_STREAM_COMM};
		static const char *const snames[] = {"compute", "cuda stream 7", "nccl"};
		char label[32];
		snprintf(label, sizeof label, "rank %d", r);
		err = synth_rank(rec, r, label, 3, sids, roles, snames);
		int64_t t = r * ms, fwd = 0, bwd = 0;
		for (int64_t i = 0; i < ops_per_rank && !err; i++) {
			int back = i >= ranks - r && (i - (ranks - r)) % 2 == 0;
			int kind = back ? PT_OP_B : PT_OP_F;
			int64_t d = back ? 2 * ms : ms;
			synth_op(b, r, 0, kind, 0, (int)(back ? bwd++ : fwd++), t, d);
			int64_t slot = d / per_op;
			for (int k = 0; k < per_op; k++)
				synth_activity(b, r, 7, PT_OP_KERNEL, names[(i + k) % 20], t + k * slot, slot * 9 / 10);
			if (i % 4 == 3)
				synth_activity(b, r, 9, PT_OP_KERNEL, copy, t + d - ms / 4, ms / 2);
			t += d + (i % 7 == 0 ? ms / 5 : 0);
		}
	}
	if (err) {
		pt_rec_abort(rec);
		return err;
	}
	return pt_rec_close(rec);
}

#endif
