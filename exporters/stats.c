/*
 * exporters/stats.c — `pipetrace stats`: the metrics of a trace as a table
 * for people or one JSON object for scripts (the baseline format of
 * `pipetrace check`). Computing the metrics is metrics.c's job; this file
 * only presents them, with the schedule's analytic values beside them.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "cli/cli.h"
#include "exporters.h"

/* ------------------------------------------------------------------ text */

static double unit_div(int64_t scale, const char **name)
{
	if (scale >= 10000000000LL) {
		*name = "s";
		return 1e9;
	}
	if (scale >= 10000000) {
		*name = "ms";
		return 1e6;
	}
	if (scale >= 10000) {
		*name = "us";
		return 1e3;
	}
	*name = "ns";
	return 1;
}

static void cell(FILE *out, int64_t v, double div)
{
	if (v < 0)
		fprintf(out, " %10s", "-");
	else
		fprintf(out, " %10.3f", (double)v / div);
}

static void pct(FILE *out, double x)
{
	if (isnan(x))
		fprintf(out, " %8s", "n/a");
	else
		fprintf(out, " %7.2f%%", 100 * x);
}

static const char *meta_or(pt_trace *t, const char *k, const char *def)
{
	const char *v = pt_trace_meta(t, k);
	return v && *v ? v : def;
}

int pt_metrics_print_text(pt_trace *t, const pt_metrics *m, FILE *out)
{
	const char *u;
	int64_t window = m->win_end - m->win_start;
	double div = unit_div(window, &u);
	fprintf(out, "%s \xc2\xb7 %d ranks \xc2\xb7 %s microbatches \xc2\xb7 %s backend \xc2\xb7 %s comm \xc2\xb7 %s\n",
		meta_or(t, "schedule", "?"), m->nranks, meta_or(t, "microbatches", "?"), meta_or(t, "backend", "?"),
		meta_or(t, "comm_mode", "?"), pt_trace_path(t));
	fprintf(out, "window %.3f %s   bubble ratio", (double)window / div, u);
	pct(out, m->bubble_ratio);
	if (!isnan(m->theory_bubble_ratio)) {
		fprintf(out, " (theory");
		pct(out, m->theory_bubble_ratio);
		fprintf(out, ")");
	}
	fprintf(out, "   overlap");
	pct(out, m->overlap_ratio);
	if (isnan(m->overlap_ratio))
		fprintf(out, " (no communication time)");
	fprintf(out, "\n");
	const char *formula = pt_trace_meta(t, "theory.bubble_formula");
	if (formula)
		fprintf(out, "theory: bubble per rank %s\n", formula);
	fprintf(out, "\ntimes in %s\n", u);
	fprintf(out, "%-6s %10s %10s %10s %10s %10s %10s %8s %5s %6s\n", "rank", "busy", "bubble", "theory",
		"span-bub", "comm", "exposed", "overlap", "peak", "theory");
	for (int i = 0; i < m->nranks; i++) {
		const pt_rank_metrics *r = &m->rank[i];
		char name[16];
		snprintf(name, sizeof name, "r%d", r->rank);
		fprintf(out, "%-6s", name);
		cell(out, r->busy, div);
		cell(out, r->bubble, div);
		cell(out, r->theory_bubble, div);
		cell(out, r->span_bubble, div);
		cell(out, r->comm, div);
		cell(out, r->exposed, div);
		pct(out, r->comm > 0 ? (double)r->overlap / (double)r->comm : NAN);
		fprintf(out, " %5d", r->peak_act);
		if (r->theory_peak >= 0)
			fprintf(out, " %6d\n", r->theory_peak);
		else
			fprintf(out, " %6s\n", "-");
	}
	fprintf(out, "%-6s", "total");
	cell(out, m->busy, div);
	cell(out, m->bubble, div);
	int64_t tsum = 0;
	for (int i = 0; i < m->nranks; i++)
		tsum = tsum >= 0 && m->rank[i].theory_bubble >= 0 ? tsum + m->rank[i].theory_bubble : -1;
	cell(out, m->nranks ? tsum : -1, div);
	int64_t span = 0;
	for (int i = 0; i < m->nranks; i++)
		span += m->rank[i].span_bubble;
	cell(out, span, div);
	cell(out, m->comm, div);
	cell(out, m->exposed, div);
	pct(out, m->overlap_ratio);
	fprintf(out, "\n");
	return ferror(out) ? PT_EIO : 0;
}

/* ------------------------------------------------------------------ JSON */

static void jmeta_int(yajl_gen g, pt_trace *t, const char *k)
{
	pt_json_str(g, k);
	const char *v = pt_trace_meta(t, k);
	char *end;
	long long x = v ? strtoll(v, &end, 10) : 0;
	if (v && *v && !*end)
		yajl_gen_integer(g, x);
	else
		yajl_gen_null(g);
}

static void jmeta_str(yajl_gen g, pt_trace *t, const char *k)
{
	pt_json_str(g, k);
	const char *v = pt_trace_meta(t, k);
	if (v)
		pt_json_str(g, v);
	else
		yajl_gen_null(g);
}

static void print_cb(void *ctx, const char *s, size_t n) { fwrite(s, 1, n, (FILE *)ctx); }

int pt_metrics_print_json(pt_trace *t, const pt_metrics *m, FILE *out)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return PT_ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	yajl_gen_config(g, yajl_gen_print_callback, print_cb, out);
	yajl_gen_map_open(g);
	pt_json_str(g, "trace");
	pt_json_str(g, pt_trace_path(t));
	jmeta_str(g, t, "schedule");
	pt_json_int(g, "ranks", m->nranks);
	jmeta_int(g, t, "microbatches");
	jmeta_str(g, t, "backend");
	jmeta_str(g, t, "comm_mode");
	jmeta_str(g, t, "cost");
	pt_json_int(g, "window_start_ns", m->win_start);
	pt_json_int(g, "window_end_ns", m->win_end);
	pt_json_int(g, "makespan_ns", m->win_end - m->win_start);
	pt_json_num(g, "bubble_ratio", m->bubble_ratio);
	pt_json_num(g, "overlap_ratio", m->overlap_ratio);
	pt_json_int(g, "busy_ns", m->busy);
	pt_json_int(g, "bubble_ns", m->bubble);
	pt_json_int(g, "comm_ns", m->comm);
	pt_json_int(g, "exposed_comm_ns", m->exposed);
	pt_json_str(g, "per_rank");
	yajl_gen_array_open(g);
	for (int i = 0; i < m->nranks; i++) {
		const pt_rank_metrics *r = &m->rank[i];
		yajl_gen_map_open(g);
		pt_json_int(g, "rank", r->rank);
		pt_json_int(g, "busy_ns", r->busy);
		pt_json_int(g, "bubble_ns", r->bubble);
		pt_json_int(g, "span_bubble_ns", r->span_bubble);
		pt_json_int(g, "comm_ns", r->comm);
		pt_json_int(g, "exposed_comm_ns", r->exposed);
		pt_json_num(g, "overlap_ratio", r->comm > 0 ? (double)r->overlap / (double)r->comm : NAN);
		pt_json_int(g, "peak_activations", r->peak_act);
		pt_json_int(g, "first_ns", r->first);
		pt_json_int(g, "last_ns", r->last);
		pt_json_int(g, "compute_events", r->ncompute);
		pt_json_int(g, "comm_events", r->ncomm);
		pt_json_int_or_null(g, "theory_bubble_ns", r->theory_bubble);
		pt_json_int_or_null(g, "theory_peak_activations", r->theory_peak);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	pt_json_str(g, "theory");
	yajl_gen_map_open(g);
	jmeta_str(g, t, "theory.bubble_formula");
	pt_json_int_or_null(g, "bubble_ns_per_rank", m->theory_bubble);
	pt_json_num(g, "bubble_ratio", m->theory_bubble_ratio);
	pt_json_int_or_null(g, "peak_activations", m->theory_peak);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_free(g);
	return ferror(out) ? PT_EIO : 0;
}

/* --------------------------------------------------------------- command */

static void help(void)
{
	printf("usage: pipetrace stats [--json] TRACE.db\n\n"
	       "Per-rank busy time, bubble (idle compute time over the global window), span bubble\n"
	       "(over the rank's own span), communication time, exposed communication, overlap (share\n"
	       "of communication hidden under compute) and peak in-flight activations, with the\n"
	       "schedule's analytic values beside them. docs/metrics.md defines each figure.\n\n"
	       "Options:\n"
	       "      --json     one JSON object (the baseline format of `pipetrace check`)\n"
	       "  -h, --help     this help\n\n"
	       "Exit status: 0 ok, 1 failure, 2 bad usage or a file that is not a pipetrace trace.\n");
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	int json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 'h': help(); return CLI_OK;
		default: return cli_usage("stats", "unknown option");
		}
	}
	if (optind >= argc)
		return cli_usage("stats", "which trace? e.g. pipetrace stats trace.db");
	if (argc - optind > 1)
		return cli_usage("stats", "one trace at a time (got %d)", argc - optind);
	pt_trace *t;
	int err = pt_trace_open(argv[optind], &t);
	if (err)
		return cli_status(err);
	pt_metrics *m;
	err = pt_metrics_compute(t, &m);
	if (!err) {
		err = json ? pt_metrics_print_json(t, m, stdout) : pt_metrics_print_text(t, m, stdout);
		if (!err && fflush(stdout))
			err = PT_EIO;
		pt_metrics_destroy(m);
	}
	pt_trace_close(t);
	return cli_status(err);
}
