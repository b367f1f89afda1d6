/*
 * viewer/viewer.h — the schedule viewer: a terminal grid (grid.c) and a
 * self-contained HTML report (html.c), both drawn from one model of a rank's
 * activity: its lanes (the compute ops, the messages, each GPU stream, each
 * CPU thread), each a list of intervals in start order (model.c). The model
 * comes from a trace, read through libtrace's reader one rank at a time, or
 * from a plan simulated in memory (no trace at all: `schedule --grid`). The
 * viewer only reads: it never writes a trace.
 */
#ifndef PT_VIEWER_H
#define PT_VIEWER_H

#include <stdio.h>

#include "exporters/exporters.h"
#include "pipetrace/trace.h"
#include "runner/runner.h"

/* ------------------------------------------------------------------ model */

/* What a lane holds; lanes of a rank come in this order. */
enum pt_lane_kind {
	PT_LANE_OPS = 0,    /* pipeline compute ops (F, B, I, W, FB) */
	PT_LANE_COMMS = 1,  /* pipeline messages (SEND, RECV) */
	PT_LANE_GPU = 2,    /* kernels, copies, memsets, syncs on one GPU stream */
	PT_LANE_RANGES = 3, /* annotated ranges on one stream or thread */
	PT_LANE_CPU = 4,    /* CUDA runtime/driver calls on one CPU thread */
};

/* One interval: an executed op, a message, or a piece of activity. */
typedef struct pt_span {
	int64_t start, end;
	int64_t posted; /* messages: when posted; else start */
	uint32_t name;	/* activity: string id in the trace; 0 for ops and messages */
	int32_t step;	/* plan step, -1 when none */
	pt_op op;
} pt_span;

typedef struct pt_lane {
	int kind;		  /* enum pt_lane_kind */
	uint32_t stream;	  /* stream (or thread) id */
	int role;		  /* enum pt_stream_role, or -1 when the trace does not say */
	char label[64];		  /* the stream's name, or "stream 7", "thread 42" */
	pt_span *span;		  /* in start order */
	size_t n, cap;
	int64_t max_dur;	  /* the longest span */
} pt_lane;

typedef struct pt_vrank {
	int rank;
	char label[64]; /* "rank 3 · stages 3,4", or "r3" */
	pt_lane *lane;	/* in enum pt_lane_kind order, then by stream */
	int nlanes;
} pt_vrank;

/*
 * Read one rank of a trace into r (the caller's storage; release it with
 * pt_vrank_fini): every event the reader has for that rank, sorted into
 * lanes. Memory grows with that rank's events only. Returns 0 or a PT_E* code
 * (PT_EINVAL when the rank is not in the trace).
 */
int pt_vrank_load(pt_trace *t, int rank, pt_vrank *r);

/* Fill r with rank `rank` of a finished simulation: its compute ops and its
 * messages, as a trace of that run would hold them. PT_ENOMEM. */
int pt_vrank_from_sim(const pt_sim *sim, int rank, pt_vrank *r);

/* Release what a load or from_sim took; r may be zeroed or NULL. */
void pt_vrank_fini(pt_vrank *r);

/* ------------------------------------------------------------------- grid */

/* What a grid could not show: ops too short for a column of their own at
 * this width (each column shows one op), and the shortest of them. */
typedef struct pt_grid_fit {
	int64_t hidden;
	int64_t min_dur;
} pt_grid_fit;

typedef struct pt_grid_opts {
	int width;	/* the whole line, labels included (>= 20) */
	int color;	/* ANSI colours (256-colour palette) and underline; else plain ASCII */
	int comm;	/* draw each rank's message lane under it */
	int64_t t0, t1; /* the time the grid spans, left to right */
	int64_t quantum; /* when > 0, every op time is a multiple of it (a simulated run's
			    costs): the scale becomes a whole number of columns per quantum,
			    so equal ops get equal cells, as in DualPipe's figure */
	pt_grid_fit *fit; /* when set, pt_grid_rank counts the ops it hid and
			     pt_grid_end says which width would show them */
} pt_grid_opts;

/* What the legend line under a grid says about the run; NaN / NULL for unknown. */
typedef struct pt_grid_summary {
	double bubble_ratio, theory_ratio, overlap_ratio;
	const char *formula; /* the schedule's bubble formula */
} pt_grid_summary;

/*
 * The grid, in three calls: a title line and the time axis; one block per
 * rank (its compute row, its message lane under it when o->comm, then one
 * row per other lane it has: GPU streams, ranges, CPU threads); the legend.
 * Plain mode (o->color 0) writes ASCII only: cells are "F0:3", "F3"/"f3"
 * (lower case: odd chunk, DualPipe's reverse direction) or "F"/"f" (a pair:
 * "F0:7|B1:3", "F7|b3", "&7", "&") by the room
 * they have, idle time is '.', and docs/viewer.md describes how to read it
 * back. A column shows one op: where ops are shorter than a column, some
 * hide behind their neighbours, and with o->fit set the legend says so and
 * names a width that shows them all. Each returns 0, or PT_EIO when out
 * reports an error.
 */
int pt_grid_begin(FILE *out, const pt_grid_opts *o, const char *title);
int pt_grid_rank(FILE *out, const pt_grid_opts *o, const pt_vrank *r);
int pt_grid_end(FILE *out, const pt_grid_opts *o, const pt_grid_summary *s);

/* The greatest common divisor of the positive values (0 when none): the
 * quantum of a run whose times are sums of these costs. */
int64_t pt_grid_quantum(const int64_t *v, int n);

/* Whether to colour for --color WHEN: "auto" (stdout is a terminal and
 * NO_COLOR is unset or empty), "always", "never": 1 or 0; -1 for another word. */
int pt_grid_color(const char *when);

/* The width to draw at: COLUMNS when set to a number, else stdout's terminal
 * width (TIOCGWINSZ), else 120. */
int pt_grid_term_width(void);

/*
 * Simulate plan under the default costs (runner's pt_sim_run, in memory) and
 * draw its grid, with the schedule's analytic bubble beside the measured one.
 * Errors of the simulation come back as their PT_E* code.
 */
int pt_grid_plan(const pt_plan *plan, FILE *out, const pt_grid_opts *o);

/* ------------------------------------------------------------------- HTML */

typedef struct pt_html_opts {
	int progress; /* report progress on stderr, rank by rank */
} pt_html_opts;

/* What pt_html_write wrote. */
typedef struct pt_html_stats {
	int64_t events; /* intervals embedded, all traces */
	int64_t bytes;	/* size of the file */
} pt_html_stats;

/*
 * Write one self-contained HTML report of the n open traces to path: the
 * timeline of every rank and stream (zoom, pan, hover), bubbles and exposed
 * communication highlighted, the metrics with their analytic values,
 * in-flight activations over time, and with n > 1 a comparison on one time
 * scale. No network, fonts or scripts from elsewhere: the page's script and
 * style are embedded at build time from viewer/assets/. Every name from a
 * trace travels as JSON with <, >, & and U+2028/9 escaped, and the page
 * inserts it as text. The file is written beside path and renamed over it at
 * the end: on error nothing is left at path. Returns 0 or a PT_E* code
 * (PT_EIO naming path when it cannot be written); st may be NULL.
 */
int pt_html_write(pt_trace **traces, int n, const char *path, const pt_html_opts *o, pt_html_stats *st);

/* One asset embedded from viewer/assets/ (report.js, ...): its bytes and
 * length, or NULL when there is none by that name. Generated at build time. */
const char *pt_asset(const char *name, size_t *len);

#endif
