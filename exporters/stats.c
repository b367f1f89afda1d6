/*
 * exporters/stats.c — `pipetrace stats`: the metrics of a trace as a table
 * for people or one JSON object for scripts (the baseline format of
 * `pipetrace check`), with the schedule's analytic values, the idle
 * breakdown and the sim's prediction beside them; several traces go to
 * compare.c's side-by-side table. Computing the metrics is metrics.c's job,
 * predicting them the runner's (pt_predict); this file only presents them.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "cli/cli.h"
#include "exporters.h"
#include "runner/runner.h"

/* ------------------------------------------------------------------ text */

double pt_unit_div(int64_t scale, const char **name)
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

static void idle_row(FILE *out, const char *name, int64_t bubble, const int64_t *phase, const int64_t *cause,
		     double div)
{
	fprintf(out, "%-6s", name);
	cell(out, bubble, div);
	for (int k = 0; k < 3; k++)
		cell(out, phase[k], div);
	for (int k = 0; k < 3; k++)
		cell(out, cause[k], div);
	fprintf(out, "\n");
}

/* The bubble split by plan phase and by what it waited for. */
static void print_idle(const pt_metrics *m, double div, const char *u, FILE *out)
{
	fprintf(out, "\nidle: each rank's bubble by the phase of the op that ends each gap, and by what it waited\n"
		     "for: a message in transfer (comm), a message not yet sent (dependency), or nothing\n"
		     "recorded (other); times in %s\n",
		u);
	fprintf(out, "%-6s %10s %10s %10s %10s %10s %10s %10s\n", "rank", "bubble", "warm-up", "steady", "cool-down",
		"comm", "dependency", "other");
	int64_t bubble = 0;
	for (int i = 0; i < m->nranks; i++) {
		const pt_rank_metrics *r = &m->rank[i];
		char name[16];
		snprintf(name, sizeof name, "r%d", r->rank);
		if (r->has_idle) {
			idle_row(out, name, r->bubble, r->idle_phase, r->idle_cause, div);
			bubble += r->bubble;
		} else {
			fprintf(out, "%-6s", name);
			cell(out, r->bubble, div);
			fprintf(out, "   (no plan: no breakdown)\n");
		}
	}
	idle_row(out, "total", bubble, m->idle_phase, m->idle_cause, div);
}

static const char *meta_or(pt_trace *t, const char *k, const char *def)
{
	const char *v = pt_trace_meta(t, k);
	return v && *v ? v : def;
}

/* An imported profile has no plan and no theory: what it has is GPU time,
 * so say that in words before the table. */
static void imported_summary(pt_trace *t, const pt_metrics *m, double div, const char *u, FILE *out)
{
	int64_t window = m->win_end - m->win_start;
	fprintf(out, "GPU span %.3f %s \xc2\xb7 compute busy %.3f %s \xc2\xb7 communication busy %.3f %s",
		(double)window / div, u, (double)m->busy / div, u, (double)m->comm / div, u);
	if (m->comm > 0)
		fprintf(out, " \xc2\xb7 hidden under compute %.3f %s (%.2f%%) \xc2\xb7 exposed %.3f %s",
			(double)m->overlap / div, u, 100 * m->overlap_ratio, (double)m->exposed / div, u);
	if (m->nranks > 1)
		fprintf(out, " (sums over %d ranks)", m->nranks);
	fprintf(out, "\n");
	int any = 0;
	for (int k = PT_OP_F; k <= PT_OP_FB; k++) {
		if (!m->nops[k])
			continue;
		fprintf(out, "%s %lld %s", any ? " \xc2\xb7" : "ops labelled from annotations:", (long long)m->nops[k],
			pt_kind_name(k));
		any = 1;
	}
	if (any)
		fprintf(out, "\n");
	(void)t;
}

int pt_metrics_print_text(pt_trace *t, const pt_metrics *m, FILE *out)
{
	const char *u;
	int64_t window = m->win_end - m->win_start;
	double div = pt_unit_div(window, &u);
	const char *schedule = meta_or(t, "schedule", "?");
	int imported = !strcmp(schedule, "imported");
	if (imported)
		fprintf(out, "imported from %s \xc2\xb7 %d rank%s \xc2\xb7 %s \xc2\xb7 %s\n",
			meta_or(t, "backend", "?"), m->nranks, m->nranks == 1 ? "" : "s",
			meta_or(t, "import.source", "?"), pt_trace_path(t));
	else
		fprintf(
		    out,
		    "%s \xc2\xb7 %d ranks \xc2\xb7 %s microbatches \xc2\xb7 %s backend \xc2\xb7 %s comm \xc2\xb7 %s\n",
		    schedule, m->nranks, meta_or(t, "microbatches", "?"), meta_or(t, "backend", "?"),
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
	if (m->has_sim) {
		fprintf(out, "sim:    makespan %.3f %s, bubble ratio %.2f%% when this plan is re-simulated with costs\n"
			     "        calibrated on this trace:",
			(double)m->sim_makespan / div, u, 100 * m->sim_bubble_ratio);
		for (int k = PT_OP_F; k <= PT_OP_FB; k++)
			if (m->sim_op[k] >= 0)
				fprintf(out, " %s=%.3f %s", pt_kind_name(k), (double)m->sim_op[k] / div, u);
		if (m->sim_derived[0])
			fprintf(out, " (derived: %s)", m->sim_derived);
		if (m->sim_latency || m->sim_bandwidth > 0) {
			fprintf(out, "\n        link latency %.3f us, bandwidth ", (double)m->sim_latency / 1e3);
			if (m->sim_bandwidth > 0)
				fprintf(out, "%.4g GB/s", m->sim_bandwidth / 1e9);
			else
				fprintf(out, "unlimited");
		} else
			fprintf(out, ", free links");
		fprintf(out, "\n");
	}
	if (imported)
		imported_summary(t, m, div, u, out);
	fprintf(out, "\ntimes in %s\n", u);
	fprintf(out, "%-6s %10s %10s %10s %10s %10s %10s %10s %8s %5s %6s\n", "rank", "busy", "bubble", "theory", "sim",
		"span-bub", "comm", "exposed", "overlap", "peak", "theory");
	for (int i = 0; i < m->nranks; i++) {
		const pt_rank_metrics *r = &m->rank[i];
		char name[16];
		snprintf(name, sizeof name, "r%d", r->rank);
		fprintf(out, "%-6s", name);
		cell(out, r->busy, div);
		cell(out, r->bubble, div);
		cell(out, r->theory_bubble, div);
		cell(out, r->sim_bubble, div);
		cell(out, r->span_bubble, div);
		cell(out, r->comm, div);
		cell(out, r->exposed, div);
		pct(out, r->comm > 0 ? (double)r->overlap / (double)r->comm : NAN);
		if (m->ops_are_labels) /* labels carry no chunk or microbatch to count activations by */
			fprintf(out, " %5s", "-");
		else
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
	int64_t ssum = 0;
	for (int i = 0; i < m->nranks; i++)
		ssum = ssum >= 0 && m->rank[i].sim_bubble >= 0 ? ssum + m->rank[i].sim_bubble : -1;
	cell(out, m->nranks ? ssum : -1, div);
	int64_t span = 0;
	for (int i = 0; i < m->nranks; i++)
		span += m->rank[i].span_bubble;
	cell(out, span, div);
	cell(out, m->comm, div);
	cell(out, m->exposed, div);
	pct(out, m->overlap_ratio);
	fprintf(out, "\n");
	if (m->has_idle)
		print_idle(m, div, u, out);
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

/* "key": the meta value `meta` as a string, or null. */
static void jmeta_str_as(yajl_gen g, pt_trace *t, const char *key, const char *meta)
{
	pt_json_str(g, key);
	const char *v = pt_trace_meta(t, meta);
	if (v)
		pt_json_str(g, v);
	else
		yajl_gen_null(g);
}

static void jmeta_str(yajl_gen g, pt_trace *t, const char *k) { jmeta_str_as(g, t, k, k); }

static void print_cb(void *ctx, const char *s, size_t n) { fwrite(s, 1, n, (FILE *)ctx); }

/* {"warmup_ns": …, …, "other_ns": …} */
static void jidle(yajl_gen g, const char *k, int have, const int64_t *phase, const int64_t *cause)
{
	pt_json_str(g, k);
	if (!have) {
		yajl_gen_null(g);
		return;
	}
	yajl_gen_map_open(g);
	pt_json_int(g, "warmup_ns", phase[PT_WARMUP]);
	pt_json_int(g, "steady_ns", phase[PT_STEADY]);
	pt_json_int(g, "cooldown_ns", phase[PT_COOLDOWN]);
	pt_json_int(g, "comm_wait_ns", cause[PT_IDLE_COMM]);
	pt_json_int(g, "dependency_ns", cause[PT_IDLE_DEP]);
	pt_json_int(g, "other_ns", cause[PT_IDLE_OTHER]);
	yajl_gen_map_close(g);
}

static void jsim(yajl_gen g, const pt_metrics *m)
{
	pt_json_str(g, "sim");
	if (!m->has_sim) {
		yajl_gen_null(g);
		return;
	}
	yajl_gen_map_open(g);
	pt_json_int(g, "makespan_ns", m->sim_makespan);
	pt_json_num(g, "bubble_ratio", m->sim_bubble_ratio);
	pt_json_str(g, "cost_ns");
	yajl_gen_map_open(g);
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		pt_json_int_or_null(g, pt_kind_name(k), m->sim_op[k]);
	yajl_gen_map_close(g);
	pt_json_int(g, "latency_ns", m->sim_latency);
	pt_json_num(g, "bandwidth_Bps", m->sim_bandwidth);
	pt_json_str(g, "derived");
	pt_json_str(g, m->sim_derived);
	yajl_gen_map_close(g);
}

static yajl_gen json_open(FILE *out)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return NULL;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_indent_string, "  ");
	yajl_gen_config(g, yajl_gen_print_callback, print_cb, out);
	return g;
}

/* One trace's object. */
static void json_trace(yajl_gen g, pt_trace *t, const pt_metrics *m)
{
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
	pt_json_int(g, "overlap_ns", m->overlap);
	pt_json_str(g, "ops_from");
	const char *from = pt_trace_meta(t, "ops.from");
	if (from)
		pt_json_str(g, from);
	else
		yajl_gen_null(g);
	pt_json_str(g, "ops");
	yajl_gen_map_open(g);
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		pt_json_int(g, pt_kind_name(k), m->nops[k]);
	yajl_gen_map_close(g);
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
		pt_json_int(g, "overlap_ns", r->overlap);
		pt_json_num(g, "overlap_ratio", r->comm > 0 ? (double)r->overlap / (double)r->comm : NAN);
		pt_json_int(g, "peak_activations", r->peak_act);
		pt_json_int(g, "first_ns", r->first);
		pt_json_int(g, "last_ns", r->last);
		pt_json_int(g, "compute_events", r->ncompute);
		pt_json_int(g, "comm_events", r->ncomm);
		pt_json_int_or_null(g, "theory_bubble_ns", r->theory_bubble);
		pt_json_int_or_null(g, "theory_peak_activations", r->theory_peak);
		pt_json_int_or_null(g, "sim_bubble_ns", r->sim_bubble);
		jidle(g, "idle", r->has_idle, r->idle_phase, r->idle_cause);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	pt_json_str(g, "theory");
	yajl_gen_map_open(g);
	jmeta_str_as(g, t, "bubble_formula", "theory.bubble_formula");
	pt_json_int_or_null(g, "bubble_ns_per_rank", m->theory_bubble);
	pt_json_num(g, "bubble_ratio", m->theory_bubble_ratio);
	pt_json_int_or_null(g, "peak_activations", m->theory_peak);
	yajl_gen_map_close(g);
	jidle(g, "idle", m->has_idle, m->idle_phase, m->idle_cause);
	jsim(g, m);
	yajl_gen_map_close(g);
}

int pt_metrics_print_json(pt_trace *t, const pt_metrics *m, FILE *out)
{
	yajl_gen g = json_open(out);
	if (!g)
		return PT_ENOMEM;
	json_trace(g, t, m);
	yajl_gen_free(g);
	return ferror(out) ? PT_EIO : 0;
}

int pt_metrics_compare_json(pt_trace *const *t, pt_metrics *const *m, int n, FILE *out)
{
	yajl_gen g = json_open(out);
	if (!g)
		return PT_ENOMEM;
	yajl_gen_map_open(g);
	pt_json_str(g, "traces");
	yajl_gen_array_open(g);
	for (int i = 0; i < n; i++)
		json_trace(g, t[i], m[i]);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_free(g);
	return ferror(out) ? PT_EIO : 0;
}

/* --------------------------------------------------------------- command */

static void help(void)
{
	printf("usage: pipetrace stats [--json] [--no-sim] TRACE.db [TRACE.db ...]\n\n"
	       "Per-rank busy time, bubble (idle compute time over the global window), span bubble\n"
	       "(over the rank's own span), communication time, exposed communication, overlap (share\n"
	       "of communication hidden under compute) and peak in-flight activations, with the\n"
	       "schedule's analytic values beside them; the bubble split by phase (warm-up, steady,\n"
	       "cool-down) and by what it waited for (communication, a dependency); and what the sim\n"
	       "predicts when it re-runs the trace's plan with costs calibrated on the trace.\n"
	       "With several traces, one comparison table (e.g. dualpipe vs 1f1b vs zb1p).\n"
	       "docs/metrics.md defines each figure.\n\n"
	       "Options:\n"
	       "      --json     one JSON object (the baseline format of `pipetrace check`); with\n"
	       "                 several traces, {\"traces\": [one object per trace]}\n"
	       "      --no-sim   skip the sim's prediction (it reads and re-simulates the whole plan)\n"
	       "  -h, --help     this help\n\n"
	       "Exit status: 0 ok, 1 failure, 2 bad usage or a file that is not a pipetrace trace.\n");
}

/* Put the sim's prediction beside the measurement, when the trace holds a
 * plan to re-simulate. A trace without one gets none, silently; a plan that
 * cannot be re-simulated gets a warning and no prediction. */
static void add_sim(pt_trace *t, pt_metrics *m, pt_calibrator *cal, const pt_plan_digest *dg)
{
	pt_rank_info ri;
	pt_op *ops = NULL;
	size_t n = 0;
	if (pt_trace_nranks(t) < 1 || pt_trace_rank_at(t, 0, &ri) || pt_trace_plan(t, ri.rank, &ops, &n) || !n) {
		free(ops);
		return;
	}
	free(ops);
	pt_prediction *pr;
	if (pt_predict_fed(t, cal, dg, &pr)) {
		pt_log(PT_LOG_WARN, "%s: no sim prediction (see above)", pt_trace_path(t));
		return;
	}
	m->has_sim = 1;
	m->sim_makespan = pr->makespan;
	m->sim_bubble_ratio = pr->bubble_ratio;
	const int64_t op[] = {[PT_OP_F] = pr->cost.f, [PT_OP_B] = pr->cost.b, [PT_OP_I] = pr->cost.i,
			      [PT_OP_W] = pr->cost.w, [PT_OP_FB] = pr->cost.fb};
	memcpy(m->sim_op, op, sizeof op);
	m->sim_latency = pr->cost.latency;
	m->sim_bandwidth = pr->cost.bandwidth;
	size_t len = 0;
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		if (pr->calib.derived & (1u << k))
			len += (size_t)snprintf(m->sim_derived + len, sizeof m->sim_derived - len, "%s%s", len ? " " : "",
						pt_kind_name(k));
	for (int i = 0; i < m->nranks && i < pr->nranks; i++)
		m->rank[i].sim_bubble = m->rank[i].rank == i ? pr->bubble[i] : -1;
	pt_prediction_destroy(pr);
}

/* What the prediction takes from the metrics' reads. */
struct sim_feed {
	pt_calibrator *cal;
	pt_plan_digest *dg;
};

static int feed_event(void *arg, const pt_event *ev) { return pt_calib_event(((struct sim_feed *)arg)->cal, ev); }

static void feed_plan(void *arg, int rank, const pt_op *ops, size_t n)
{
	pt_plan_digest_ops(((struct sim_feed *)arg)->dg, rank, ops, n);
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
						 {"no-sim", no_argument, NULL, 's'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	int json = 0, sim = 1, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = 1; break;
		case 's': sim = 0; break;
		case 'h': help(); return CLI_OK;
		default: return cli_usage("stats", "unknown option");
		}
	}
	if (optind >= argc)
		return cli_usage("stats", "which trace? e.g. pipetrace stats trace.db");
	int n = argc - optind, err = 0;
	pt_trace **t = calloc((size_t)n, sizeof *t);
	pt_metrics **m = calloc((size_t)n, sizeof *m);
	if (!t || !m)
		err = PT_ENOMEM;
	for (int i = 0; i < n && !err; i++) {
		if (n > 1 && cli_isatty(stderr))
			fprintf(stderr, "\rreading %d/%d: %s\033[K", i + 1, n, argv[optind + i]);
		err = pt_trace_open(argv[optind + i], &t[i]);
		/* The page cache as export's readers share it: a cursor over
		 * every rank (the calibration's second read, when its values are
		 * too varied to count) would grow it to 32 MiB at 2048 ranks,
		 * half of stats' memory, for no time saved (1.6 s either way). */
		if (!err)
			pt_trace_set_cache_max(t[i], 16384);
		/* the calibration and the plan's first read ride on the
		 * metrics' reads: one read of the ops, messages and plan for both */
		struct sim_feed sf = {NULL, NULL};
		pt_metrics_feed feed = {feed_event, feed_plan, &sf};
		if (!err && sim && !(err = pt_calib_create(&sf.cal)))
			err = pt_plan_digest_create(t[i], &sf.dg);
		if (!err)
			err = pt_metrics_compute_each(t[i], sim ? &feed : NULL, &m[i]);
		if (!err && sim)
			add_sim(t[i], m[i], sf.cal, sf.dg);
		pt_calib_destroy(sf.cal);
		pt_plan_digest_destroy(sf.dg);
	}
	if (n > 1 && cli_isatty(stderr))
		fprintf(stderr, "\r\033[K");
	if (!err) {
		if (n == 1)
			err = json ? pt_metrics_print_json(t[0], m[0], stdout) : pt_metrics_print_text(t[0], m[0], stdout);
		else
			err = json ? pt_metrics_compare_json(t, m, n, stdout) : pt_metrics_compare_text(t, m, n, stdout);
		if (!err && fflush(stdout))
			err = PT_EIO;
	}
	for (int i = 0; t && m && i < n; i++) {
		pt_metrics_destroy(m[i]);
		pt_trace_close(t[i]);
	}
	free(t);
	free(m);
	return cli_status(err);
}
