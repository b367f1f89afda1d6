/*
 * exporters/compare.c — `pipetrace stats a.db b.db …`: several runs in one
 * table, a row per trace, each measured figure beside what the schedule's
 * formula predicts under that run's costs, and each run's bubble per rank
 * against the first trace's. It presents metrics computed by metrics.c and
 * says nothing per rank: `stats` on one trace does.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "exporters.h"

/* Σ theory over ranks, or -1 when some rank has no formula. */
static int64_t theory_sum(const pt_metrics *m)
{
	int64_t sum = 0;
	for (int i = 0; i < m->nranks; i++) {
		if (m->rank[i].theory_bubble < 0)
			return -1;
		sum += m->rank[i].theory_bubble;
	}
	return m->nranks ? sum : -1;
}

static int peak(const pt_metrics *m)
{
	int p = 0;
	for (int i = 0; i < m->nranks; i++)
		if (m->rank[i].peak_act > p)
			p = m->rank[i].peak_act;
	return p;
}

static void num(FILE *out, int w, double v, int have)
{
	if (have)
		fprintf(out, " %*.3f", w, v);
	else
		fprintf(out, " %*s", w, "-");
}

static void pct(FILE *out, int w, double x)
{
	if (isnan(x))
		fprintf(out, " %*s", w, "n/a");
	else
		fprintf(out, " %*.2f%%", w - 1, 100 * x);
}

static const char *meta_or(pt_trace *t, const char *k, const char *def)
{
	const char *v = pt_trace_meta(t, k);
	return v && *v ? v : def;
}

int pt_metrics_compare_text(pt_trace *const *t, pt_metrics *const *m, int n, FILE *out)
{
	int64_t scale = 0;
	int w = 5, same = 1;
	for (int i = 0; i < n; i++) {
		int64_t span = m[i]->win_end - m[i]->win_start;
		if (span > scale)
			scale = span;
		int len = (int)strlen(pt_trace_path(t[i]));
		if (len > w)
			w = len < 40 ? len : 40;
		same &= m[i]->nranks == m[0]->nranks &&
			!strcmp(meta_or(t[i], "microbatches", "?"), meta_or(t[0], "microbatches", "?"));
	}
	const char *u;
	double div = pt_unit_div(scale, &u);
	fprintf(out, "%d traces side by side; times in %s; theory: the schedule's formula under the run's costs\n", n,
		u);
	if (!same)
		fprintf(out, "note: the traces differ in ranks or microbatches; compare them with care\n");
	fprintf(out, "\n%-*s %-11s %-7s %4s %5s %10s %8s %8s %11s %8s %8s %8s %10s %5s %6s\n", w, "trace", "schedule",
		"comm", "P", "N", "makespan", "bubble", "theory", "bubble/rank", "theory", "vs 1st", "overlap",
		"exposed", "peak", "theory");
	double first = 0;
	for (int i = 0; i < n; i++) {
		const pt_metrics *x = m[i];
		const char *path = pt_trace_path(t[i]);
		size_t len = strlen(path);
		fprintf(out, "%-*s %-11s %-7s %4d %5s", w, len > 40 ? path + len - 40 : path,
			meta_or(t[i], "schedule", "?"), meta_or(t[i], "comm_mode", "?"), x->nranks,
			meta_or(t[i], "microbatches", "?"));
		num(out, 10, (double)(x->win_end - x->win_start) / div, 1);
		pct(out, 8, x->bubble_ratio);
		pct(out, 8, x->theory_bubble_ratio);
		double per = x->nranks ? (double)x->bubble / x->nranks / div : 0;
		int64_t ts = theory_sum(x);
		num(out, 11, per, 1);
		num(out, 8, ts >= 0 ? (double)ts / x->nranks / div : 0, ts >= 0);
		if (i == 0) {
			first = per;
			fprintf(out, " %8s", "-");
		} else {
			fprintf(out, " %+8.3f", per - first);
		}
		pct(out, 8, x->overlap_ratio);
		num(out, 10, (double)x->exposed / div, 1);
		fprintf(out, " %5d", peak(x));
		if (x->theory_peak >= 0)
			fprintf(out, " %6d\n", x->theory_peak);
		else
			fprintf(out, " %6s\n", "-");
	}
	fprintf(out, "\nbubble/rank is the mean over ranks of each rank's bubble, vs 1st its difference from the\n"
		     "first trace's; exposed is summed over ranks; peak is the largest rank's.\n");
	return ferror(out) ? PT_EIO : 0;
}
