/*
 * exporters/exporters.h — everything that turns a trace into numbers or
 * files: the metrics of docs/metrics.md, and the export formats (Perfetto
 * protobuf, Chrome JSON, CSV). Consumers only: they read traces through
 * libtrace's reader and never write one.
 */
#ifndef PT_EXPORTERS_H
#define PT_EXPORTERS_H

#include <stdio.h>
#include <yajl/yajl_gen.h>
#include <string.h>

#include "pipetrace/trace.h"

/* One rank's measured figures (ns unless said otherwise). */
typedef struct pt_rank_metrics {
	int rank;
	int64_t first, last;	  /* its own span: first start, last end (any stream) */
	int64_t busy;		  /* |C|: union of its compute intervals */
	int64_t comm;		  /* |M|: union of its communication intervals */
	int64_t overlap;	  /* |C ∩ M| */
	int64_t bubble;		  /* |window| - busy */
	int64_t span_bubble;	  /* (last - first) - busy */
	int64_t exposed;	  /* comm - overlap */
	int peak_act;		  /* peak in-flight chunk activations */
	int64_t theory_bubble;	  /* -1 when no formula */
	int theory_peak;	  /* -1 when none */
	int64_t ncompute, ncomm; /* events counted as compute, as communication */
	/* The bubble split two ways (docs/metrics.md, "Idle breakdown"); has_idle
	 * is 0 when the rank has no plan or no compute op to attribute it by. */
	int has_idle;
	int64_t idle_phase[3]; /* [enum pt_phase]: warm-up, steady, cool-down */
	int64_t idle_cause[3]; /* [enum pt_idle_cause] */
	int64_t first_compute, last_compute; /* the compute union's first start and last end */
	int lead_phase_;		     /* private: the gate of the gap before the first op */
	int64_t lead_sent_, lead_done_;
	int64_t sim_bubble;		     /* the sim's prediction (pt_metrics.has_sim); -1 when none */
	int64_t nops[PT_OP_FB + 1]; /* its ops by kind (F, B, I, W, FB), labels included */
} pt_rank_metrics;

/* What an idle moment waited for. */
enum pt_idle_cause {
	PT_IDLE_COMM = 0, /* a message it needed was sent but not yet through */
	PT_IDLE_DEP = 1,  /* a message it needed was not even sent: the producer was behind */
	PT_IDLE_OTHER = 2 /* nothing recorded explains it (zero in the sim) */
};

typedef struct pt_metrics {
	int nranks;
	pt_rank_metrics *rank;
	int64_t win_start, win_end; /* the global window: first start, last end, all ranks */
	int64_t busy, bubble, comm, exposed, overlap; /* sums over ranks */
	double bubble_ratio;	 /* Σ bubble / (P · |window|) */
	double overlap_ratio;	 /* Σ |C∩M| / Σ |M|; NaN when there is no communication time */
	double theory_bubble_ratio; /* Σ theory / Σ (busy + theory); NaN when no formula */
	int64_t theory_bubble;	    /* per rank when every rank has the same formula value, else -1 */
	int theory_peak;	    /* max over ranks, -1 when none */
	int has_idle;		    /* some rank has an idle breakdown */
	int64_t idle_phase[3], idle_cause[3]; /* sums over the ranks that have one */
	/* What the sim predicts for this run under costs calibrated on it (filled
	 * by the caller, e.g. `stats` through the runner's pt_predict). */
	int has_sim;
	int64_t sim_makespan;
	double sim_bubble_ratio;
	int64_t sim_op[PT_OP_FB + 1]; /* calibrated ns per op, [PT_OP_F] .. [PT_OP_FB] */
	int64_t sim_latency; /* ns */
	double sim_bandwidth; /* bytes/s, 0 unlimited */
	char sim_derived[32]; /* kinds derived rather than measured, "I W"; "" when none */
	int ops_are_labels;	    /* meta ops.from = annotations: ops only name GPU work (imports) */
	int64_t nops[PT_OP_FB + 1]; /* ops by kind, all ranks */
} pt_metrics;

/* Compute the metrics of an open trace, rank by rank, in bounded memory. */
int pt_metrics_compute(pt_trace *t, pt_metrics **out);

/* What else wants the rows the metrics read (stats' prediction): each event
 * the sweep reads -- every op, message, kernel, copy and memset of each
 * rank, each rank's in time order -- and each rank's plan, in step order,
 * in blocks. A nonzero return stops the sweep and is returned. Either
 * callback may be NULL. */
typedef struct pt_metrics_feed {
	int (*event)(void *arg, const pt_event *ev);
	void (*plan)(void *arg, int rank, const pt_op *ops, size_t n);
	void *arg;
} pt_metrics_feed;

/* pt_metrics_compute, handing what it reads to feed (NULL: none): one read
 * of the trace for both. */
int pt_metrics_compute_each(pt_trace *t, const pt_metrics_feed *feed, pt_metrics **out);
void pt_metrics_destroy(pt_metrics *m);

/* Print the metrics as a table (text) or as one JSON object (the format is
 * docs/cli.md's, `stats --json`). PT_EIO when out fails. */
int pt_metrics_print_text(pt_trace *t, const pt_metrics *m, FILE *out);
int pt_metrics_print_json(pt_trace *t, const pt_metrics *m, FILE *out);

/* Several traces side by side: one table with a row per trace and the
 * analytic values beside the measured ones, or {"traces": [...]} holding
 * each trace's pt_metrics_print_json object. */
int pt_metrics_compare_text(pt_trace *const *t, pt_metrics *const *m, int n, FILE *out);
int pt_metrics_compare_json(pt_trace *const *t, pt_metrics *const *m, int n, FILE *out);

/* ------------------------------------------------ check: the CI gate */

enum pt_check_unit { PT_CHECK_NS, PT_CHECK_RATIO, PT_CHECK_COUNT };
enum pt_check_verdict {
	PT_CHECK_OK,	     /* within tolerance */
	PT_CHECK_BETTER,     /* improved by more than the tolerance: time for a new baseline */
	PT_CHECK_REGRESSION, /* worse by more than the tolerance */
	PT_CHECK_NA,	     /* undefined in the baseline or the trace (no communication) */
	PT_CHECK_OFF,	     /* not gated (--tolerance METRIC=off) */
};

/* One gated metric compared. */
typedef struct pt_check_row {
	char name[48];	/* "makespan_ns", "rank_bubble_ns[3]" */
	int unit;	/* enum pt_check_unit */
	int worse;	/* +1: an increase is a regression; -1: a decrease is */
	double base, cur; /* NaN when undefined */
	double tol;	/* the allowance: absolute, or a fraction of base when rel */
	int rel, off;
	double limit;	/* the value past which the metric regresses */
	int verdict;	/* enum pt_check_verdict */
} pt_check_row;

typedef struct pt_check {
	pt_check_row *row;
	int nrows;
	size_t cap;
	int nregress;
	char schedule[64];
	char base_desc[512], cur_desc[512]; /* "zb1p · 4 ranks · 8 microbatches · sim backend · …" */
} pt_check;

/*
 * Compare a trace's metrics m with the baseline at path (`stats --json` of
 * one trace) under the given tolerance lists ("bubble_ratio=+0.005,
 * makespan_ns=+2%,…", applied over pt_check_defaults, later ones winning; a
 * value is +X or -X in the direction that regresses, X% of the baseline's
 * value, a duration for *_ns metrics, or `off`). Refuses (PT_EINVAL, logged
 * naming the file and what is wrong) a baseline that is not valid JSON (with
 * the byte offset), lacks a field, has one of the wrong type, holds several
 * traces, or was recorded for another schedule, rank count or microbatch
 * count; a malformed tolerance likewise. PT_ENOENT when the baseline is
 * missing. On success *out holds one row per gated metric.
 */
int pt_check_create(const char *path, pt_trace *t, const pt_metrics *m, const char *const *tolerances,
		    int ntolerances, pt_check **out);
void pt_check_destroy(pt_check *c);

/* The default tolerances, as a --tolerance list. */
void pt_check_defaults(char *buf, size_t size);

/* Reports of a check: the table for people, JUnit XML (one test case per
 * metric) and Markdown (for CI job pages). The file writers build a
 * temporary file beside path and rename it at the end; PT_EINVAL when the
 * path cannot be written (logged), PT_EIO on a write error. */
int pt_check_print(const pt_check *c, const char *trace, const char *baseline, FILE *out);
int pt_check_write_junit(const pt_check *c, const char *trace, const char *baseline, const char *path);
int pt_check_write_markdown(const pt_check *c, const char *trace, const char *baseline, const char *path);

/* Format ns for people in the unit `scale` suggests ("6.000 ms"); the
 * divisor and the unit's name. */
double pt_unit_div(int64_t scale, const char **name);

/* JSON through yajl, for the outputs that write it (stats --json, the HTML
 * report): a string; then a key and its value, where *_or_null writes null
 * for a negative integer and pt_json_num null for NaN. */
void pt_json_str(yajl_gen g, const char *s);
void pt_json_int(yajl_gen g, const char *key, int64_t v);
void pt_json_int_or_null(yajl_gen g, const char *key, int64_t v);
void pt_json_num(yajl_gen g, const char *key, double v);

/* ---------------------------------------------------------------- export */

/*
 * Exports, uftrace-style: one driver (export.c) streams the selected events
 * out of one cursor in time order and hands them to a format, a struct of
 * optional callbacks; a new format is one file and one row of the registry
 * in export.c. Nothing holds the whole trace: the driver keeps only the
 * slices still open, and formats keep bounded state.
 */

/* What to export. Start from pt_export_opts_all() and narrow. */
typedef struct pt_export_opts {
	const int32_t *ranks; /* NULL: every rank; else nranks rank ids */
	int nranks;
	int64_t from_ns, to_ns; /* events ending at or after from and starting before to */
	uint32_t kinds;		/* bit (1 << kind) per wanted kind; 0: all */
	int no_args;		/* leave the per-slice arguments out (a smaller file) */
	int all_args;		/* Perfetto: also the arguments its name and category say */
	/* Called every few thousand events with the share of the time span done,
	 * and once more with done = 1 at the end; NULL for none. */
	void (*progress)(void *ctx, double frac, int64_t events, int done);
	void *progress_ctx;
	/* When set and it becomes nonzero (a signal handler), the export stops
	 * within a thousand events, removes its file and returns PT_EIO. */
	volatile int *cancel;
} pt_export_opts;

pt_export_opts pt_export_opts_all(void);

/* The driver's state; formats read it through the accessors below. */
typedef struct pt_export pt_export;

/* Flow ids never collide across their three uses. */
enum pt_flow_type { PT_FLOW_MESSAGE = 1, PT_FLOW_LAUNCH = 2, PT_FLOW_OP = 3 };

/* One event as a format receives it. */
typedef struct pt_xev {
	const pt_event *ev;
	const char *name; /* "F0:3", "SEND A0:3 → r2", a kernel's name; never NULL */
	size_t name_len;
	const char *cat; /* the kind's name: "F", "SEND", "KERNEL", ... */
	int kind;	 /* ev->op.kind */
	int slot;	 /* dense id of the event's (rank, stream); see pt_export_slot */
	int lane;	 /* with event_end: the row of its stream it sits on, where it
			    overlaps no other slice except by nesting (ranges); else 0 */
	int64_t dur;	 /* end - start, never negative */
	/* Flows: ids are unique per flow; 0 when none. A message flows from its
	 * SEND to its RECV; a launch from a runtime call to the kernel, copy or
	 * memset with its correlation id; an op's flow passes through the
	 * activity whose ext names it. */
	uint64_t flow_begin[2];
	uint64_t flow_step;
	uint64_t flow_end;
	/* With event_end: a flow_end there belongs to a slice that began before
	 * its flow did (a RECV before its SEND); flow_ts is when the flow began,
	 * a time inside the slice. 0 with event. */
	int64_t flow_ts;
	/* In-flight activations on the event's rank right after this point (+1
	 * at a forward's start, -1 at its backward's end), or -1 when this point
	 * does not change them. */
	int act;
} pt_xev;

/* An output format: every callback optional. Each returns 0 or a PT_E* code,
 * which stops the export. */
typedef struct pt_format {
	const char *name; /* --format value: "perfetto" */
	const char *exts; /* extensions that select it, space-separated: ".pftrace .perfetto-trace" */
	const char *what; /* one line for --help */
	size_t state_size; /* private state, zeroed, at pt_export_state() */
	int (*header)(pt_export *x);
	int (*event)(pt_export *x, const pt_xev *e); /* at the event's start, in time order */
	/* At the event's end, in time order with the starts (ends first at equal
	 * times). Setting it makes the driver keep the open slices and lanes. */
	int (*event_end)(pt_export *x, const pt_xev *e);
	int (*footer)(pt_export *x);
	void (*fini)(pt_export *x); /* free the state's allocations, also after a failure */
} pt_format;

/* The registry: NULL-terminated, in --help order. */
extern const pt_format *const pt_formats[];

/* The format named name, or the one whose extension ends path; NULL if none. */
const pt_format *pt_format_by_name(const char *name);
const pt_format *pt_format_by_path(const char *path);

/*
 * Export the events of t that opts selects to path in format f. The file is
 * written to a temporary file beside path and renamed over it at the end, so
 * a failure leaves nothing at path. Errors: PT_EIO (cannot write, with the
 * path and reason logged), reader errors (PT_ECORRUPT...), PT_ENOMEM.
 * *events (may be NULL) gets the number of events exported.
 */
int pt_export_file(pt_trace *t, const pt_format *f, const pt_export_opts *opts, const char *path,
		   int64_t *events);

/* --- for formats --- */

pt_trace *pt_export_trace(pt_export *x);
const pt_export_opts *pt_export_options(pt_export *x);
void *pt_export_state(pt_export *x);
/* Whether the export carries the in-flight activation counter (it needs the
 * forwards and the backwards, i.e. --kinds did not drop them). */
int pt_export_has_counter(pt_export *x);
/* Whether any GPU activity is exported (ops then begin their op flows). */
int pt_export_has_activity(pt_export *x);

/* Facts about a slot: its rank, stream, stream name ("compute", "stream 7",
 * "thread 1234"), and its position among its rank's streams (for sort order);
 * the rank's label ("rank 3 · stages 3,4") and position among the ranks. */
typedef struct pt_slot_info {
	int32_t rank;
	uint32_t stream;
	int cpu;	     /* stream is a CPU thread id (runtime calls, CPU ranges) */
	int order;	     /* position among its rank's streams */
	int rank_idx;	     /* dense id of its rank (order of first appearance) */
	const char *name;    /* borrowed */
	const char *label;   /* borrowed */
} pt_slot_info;
void pt_export_slot(pt_export *x, int slot, pt_slot_info *out);

/* An event's arguments (what depends on its kind: chunk, microbatch, plan
 * step, peer, bytes, correlation ids, ...), those that are set. */
enum pt_arg_id {
	PT_ARG_KIND = 1,
	PT_ARG_CHUNK,
	PT_ARG_MB,
	PT_ARG_CHUNK2,
	PT_ARG_MB2,
	PT_ARG_STEP,
	PT_ARG_PEER,
	PT_ARG_PAYLOAD,
	PT_ARG_SEQ,
	PT_ARG_BATCH,
	PT_ARG_BYTES,
	PT_ARG_POSTED,
	PT_ARG_DEVICE,
	PT_ARG_CORR,
	PT_ARG_EXT,
	PT_ARG_COPY_KIND,
	PT_ARG_SYNC_TYPE,
	PT_ARG_DEPTH,
	PT_ARG_DOMAIN,
	PT_ARG_MAX
};
typedef struct pt_arg {
	int id;		 /* enum pt_arg_id */
	const char *key; /* "chunk", "mb", "step", ... */
	const char *str; /* a string value ("F", "act", a domain name), or NULL */
	int64_t val;	 /* else an integer */
} pt_arg;
/* Fill out[] (room for PT_ARG_MAX) with ev's arguments; returns how many.
 * With brief set, only those that neither the slice's name nor its category
 * says: not the kind (the category), nor an op's chunk, microbatch, payload
 * and peer (`F0:3`, `F0:7|B1:3`, `SEND A0:3 → r2`), nor a message's
 * posted_ns when it is the slice's start. */
int pt_export_args(pt_export *x, const pt_event *ev, int brief, pt_arg *out);

/* Buffered output: append bytes / a string. Errors surface at the end. */
void pt_export_write(pt_export *x, const void *p, size_t n);
static inline void pt_export_puts(pt_export *x, const char *s) { pt_export_write(x, s, strlen(s)); }

/* Make room for n bytes in the output buffer and return where to write them;
 * then pt_export_commit the bytes actually written (<= n). For encoders that
 * build straight into the buffer. n <= 1 MiB. */
unsigned char *pt_export_reserve(pt_export *x, size_t n);
void pt_export_commit(pt_export *x, size_t n);

#endif
