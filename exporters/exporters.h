/*
 * exporters/exporters.h — everything that turns a trace into numbers or
 * files: the metrics of docs/metrics.md (this header), and the output
 * formats. Consumers only: they read traces through libtrace's reader and
 * never write one.
 */
#ifndef PT_EXPORTERS_H
#define PT_EXPORTERS_H

#include <stdio.h>
#include <yajl/yajl_gen.h>

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
} pt_rank_metrics;

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
} pt_metrics;

/* Compute the metrics of an open trace, rank by rank, in bounded memory. */
int pt_metrics_compute(pt_trace *t, pt_metrics **out);
void pt_metrics_destroy(pt_metrics *m);

/* Print the metrics as a table (text) or as one JSON object. */
int pt_metrics_print_text(pt_trace *t, const pt_metrics *m, FILE *out);
int pt_metrics_print_json(pt_trace *t, const pt_metrics *m, FILE *out);

/* JSON through yajl, for the outputs that write it (stats --json, the HTML
 * report): a string; then a key and its value, where *_or_null writes null
 * for a negative integer and pt_json_num null for NaN. */
void pt_json_str(yajl_gen g, const char *s);
void pt_json_int(yajl_gen g, const char *key, int64_t v);
void pt_json_int_or_null(yajl_gen g, const char *key, int64_t v);
void pt_json_num(yajl_gen g, const char *key, double v);

#endif
