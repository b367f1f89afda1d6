/*
 * exporters/check_report.c — `pipetrace check`: the command, and the three
 * shapes of its result: a table on stdout for people, JUnit XML (one test
 * case per gated metric, failures carrying the numbers) for CI test
 * reporters, and Markdown for CI job pages. Comparing is check.c's job. The
 * report files are written to a temporary file beside their path and
 * renamed at the end; the XML is escaped by hand, since libxml2 would be a
 * new dependency for a dozen fixed elements.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "exporters.h"

/* ------------------------------------------------------------ formatting */

/* The ns scale of a check: its baseline makespan, so every time reads in
 * one unit. */
static int64_t scale_of(const pt_check *c)
{
	for (int i = 0; i < c->nrows; i++)
		if (c->row[i].unit == PT_CHECK_NS && !isnan(c->row[i].base))
			return (int64_t)c->row[i].base;
	return 0;
}

static void fmt_value(const pt_check *c, const pt_check_row *r, double v, char *buf, size_t size)
{
	if (isnan(v)) {
		snprintf(buf, size, "n/a");
		return;
	}
	const char *u;
	switch (r->unit) {
	case PT_CHECK_NS: {
		double div = pt_unit_div(scale_of(c), &u);
		snprintf(buf, size, "%.3f %s", v / div, u);
		break;
	}
	case PT_CHECK_RATIO: snprintf(buf, size, "%.4f", v); break;
	default: snprintf(buf, size, "%.0f", v);
	}
}

static void fmt_delta(const pt_check *c, const pt_check_row *r, char *buf, size_t size)
{
	if (isnan(r->base) || isnan(r->cur)) {
		snprintf(buf, size, "-");
		return;
	}
	double d = r->cur - r->base;
	const char *u;
	int n;
	switch (r->unit) {
	case PT_CHECK_NS: {
		double div = pt_unit_div(scale_of(c), &u);
		n = snprintf(buf, size, "%+.3f %s", d / div, u);
		break;
	}
	case PT_CHECK_RATIO: n = snprintf(buf, size, "%+.4f", d); break;
	default: n = snprintf(buf, size, "%+.0f", d);
	}
	if (r->unit == PT_CHECK_NS && r->base != 0 && n > 0 && (size_t)n < size)
		snprintf(buf + n, size - (size_t)n, " (%+.2f%%)", 100 * d / fabs(r->base));
}

static void fmt_tol(const pt_check *c, const pt_check_row *r, char *buf, size_t size)
{
	char sign = r->worse > 0 ? '+' : '-';
	const char *u;
	if (r->off)
		snprintf(buf, size, "off");
	else if (r->rel)
		snprintf(buf, size, "%c%g%%", sign, 100 * r->tol);
	else if (r->unit == PT_CHECK_NS) {
		double div = pt_unit_div(scale_of(c), &u);
		snprintf(buf, size, "%c%.3f %s", sign, r->tol / div, u);
	} else
		snprintf(buf, size, "%c%g", sign, r->tol);
}

static const char *verdict_word(int v)
{
	static const char *const w[] = {[PT_CHECK_OK] = "ok",
					[PT_CHECK_BETTER] = "better",
					[PT_CHECK_REGRESSION] = "REGRESSION",
					[PT_CHECK_NA] = "n/a",
					[PT_CHECK_OFF] = "off"};
	return w[v];
}

/* Exact numbers, for machines: ns and counts as integers. */
static void fmt_exact(const pt_check_row *r, double v, char *buf, size_t size)
{
	if (isnan(v))
		snprintf(buf, size, "n/a");
	else if (r->unit == PT_CHECK_RATIO)
		snprintf(buf, size, "%.9g", v);
	else
		snprintf(buf, size, "%.0f", v);
}

/* "makespan_ns: 27000000 -> 35000000 (+8000000); regresses past 27540000 (+2%)" */
static void explain(const pt_check_row *r, char *buf, size_t size)
{
	char b[32], cur[32], d[32], lim[32], tol[32];
	fmt_exact(r, r->base, b, sizeof b);
	fmt_exact(r, r->cur, cur, sizeof cur);
	fmt_exact(r, r->cur - r->base, d, sizeof d);
	fmt_exact(r, r->limit, lim, sizeof lim);
	if (r->rel)
		snprintf(tol, sizeof tol, "%c%g%%", r->worse > 0 ? '+' : '-', 100 * r->tol);
	else
		snprintf(tol, sizeof tol, "%c%.9g", r->worse > 0 ? '+' : '-', r->tol);
	if (isnan(r->base) || isnan(r->cur))
		snprintf(buf, size, "%s: baseline %s, current %s: not compared", r->name, b, cur);
	else
		snprintf(buf, size, "%s: baseline %s, current %s, delta %s%s; allowed %s %s (tolerance %s)", r->name, b,
			 cur, r->cur >= r->base ? "+" : "", d, r->worse > 0 ? "up to" : "down to", lim, tol);
}

/* A row's cells as people read them. */
struct cells {
	char base[48], cur[48], delta[64], tol[32];
};

static void cells(const pt_check *c, const pt_check_row *r, struct cells *x)
{
	fmt_value(c, r, r->base, x->base, sizeof x->base);
	fmt_value(c, r, r->cur, x->cur, sizeof x->cur);
	fmt_delta(c, r, x->delta, sizeof x->delta);
	fmt_tol(c, r, x->tol, sizeof x->tol);
}

/* ------------------------------------------------------------------ text */

int pt_check_print(const pt_check *c, const char *trace, const char *baseline, FILE *out)
{
	fprintf(out, "check %s against %s\n  baseline: %s\n  current:  %s\n\n", trace, baseline, c->base_desc,
		c->cur_desc);
	fprintf(out, "%-22s %14s %14s %24s %12s  %s\n", "metric", "baseline", "current", "delta", "tolerance",
		"verdict");
	for (int i = 0; i < c->nrows; i++) {
		const pt_check_row *r = &c->row[i];
		struct cells x;
		cells(c, r, &x);
		fprintf(out, "%-22s %14s %14s %24s %12s  %s\n", r->name, x.base, x.cur, x.delta, x.tol,
			verdict_word(r->verdict));
	}
	if (c->nregress) {
		fprintf(out, "\n%d regression%s:", c->nregress, c->nregress > 1 ? "s" : "");
		for (int i = 0, k = 0; i < c->nrows; i++)
			if (c->row[i].verdict == PT_CHECK_REGRESSION)
				fprintf(out, "%s %s", k++ ? "," : "", c->row[i].name);
		fprintf(out, "\n");
	} else {
		fprintf(out, "\nall %d metrics within tolerance\n", c->nrows);
	}
	return ferror(out) ? PT_EIO : 0;
}

/* --------------------------------------------------------- report files */

struct report {
	const pt_check *c;
	const char *trace, *baseline;
};

/* Build path through fn in a temporary file beside it, then rename. */
static int write_atomic(const char *path, void (*fn)(FILE *, const struct report *), const struct report *rep)
{
	size_t len = strlen(path) + 32;
	char *tmp = malloc(len);
	if (!tmp)
		return PT_ENOMEM;
	int fd = -1;
	for (int k = 0; k < 100 && fd < 0; k++) {
		snprintf(tmp, len, "%s.tmp%ld.%d", path, (long)getpid(), k);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	int err = 0;
	if (fd < 0) {
		err = pt_logerr(errno == ENOENT || errno == ENOTDIR ? PT_ENOENT : PT_EINVAL, "%s: cannot write here: %s",
				path, strerror(errno));
		free(tmp);
		return err;
	}
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		err = PT_ENOMEM;
	} else {
		fn(f, rep);
		int bad = ferror(f);
		if (fclose(f) || bad)
			err = pt_logerr(PT_EIO, "%s: write failed: %s", path, strerror(errno));
	}
	if (!err && rename(tmp, path))
		err = pt_logerr(errno == EISDIR || errno == EACCES ? PT_EINVAL : PT_EIO, "%s: cannot write here: %s",
				path, strerror(errno));
	if (err)
		unlink(tmp);
	free(tmp);
	return err;
}

/* XML text or attribute content: the five entities, line breaks kept as
 * character references inside attributes, and the control characters XML
 * 1.0 forbids replaced. */
static void xml(FILE *f, const char *s, int attr)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		case '\n': fputs(attr ? "&#10;" : "\n", f); break;
		case '\t': fputs(attr ? "&#9;" : "\t", f); break;
		case '\r': fputs("&#13;", f); break;
		default: fputc(*p < 0x20 ? '?' : *p, f);
		}
	}
}

static void xml_property(FILE *f, const char *name, const char *value)
{
	fprintf(f, "      <property name=\"%s\" value=\"", name);
	xml(f, value, 1);
	fputs("\"/>\n", f);
}

static void junit(FILE *f, const struct report *rep)
{
	const pt_check *c = rep->c;
	int skipped = 0;
	for (int i = 0; i < c->nrows; i++)
		skipped += c->row[i].verdict == PT_CHECK_NA || c->row[i].verdict == PT_CHECK_OFF;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(f, "<testsuites name=\"pipetrace check\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\">\n",
		c->nrows, c->nregress, skipped);
	fprintf(f, "  <testsuite name=\"pipetrace check: ");
	xml(f, rep->trace, 1);
	fprintf(f, "\" tests=\"%d\" failures=\"%d\" errors=\"0\" skipped=\"%d\" time=\"0\">\n", c->nrows, c->nregress,
		skipped);
	fputs("    <properties>\n", f);
	xml_property(f, "trace", rep->trace);
	xml_property(f, "baseline", rep->baseline);
	xml_property(f, "current run", c->cur_desc);
	xml_property(f, "baseline run", c->base_desc);
	fputs("    </properties>\n", f);
	for (int i = 0; i < c->nrows; i++) {
		const pt_check_row *r = &c->row[i];
		char why[400], t[32];
		explain(r, why, sizeof why);
		fmt_tol(c, r, t, sizeof t);
		fprintf(f, "    <testcase classname=\"pipetrace.check.");
		xml(f, c->schedule, 1);
		fprintf(f, "\" name=\"%s\" time=\"0\"", r->name);
		switch (r->verdict) {
		case PT_CHECK_REGRESSION:
			fputs(">\n      <failure type=\"regression\" message=\"", f);
			xml(f, why, 1);
			fputs("\">", f);
			char b[32], cur[32];
			fmt_exact(r, r->base, b, sizeof b);
			fmt_exact(r, r->cur, cur, sizeof cur);
			fprintf(f, "baseline  %s\ncurrent   %s\ntolerance %s\n", b, cur, t);
			fputs("</failure>\n    </testcase>\n", f);
			break;
		case PT_CHECK_NA:
		case PT_CHECK_OFF:
			fprintf(f, ">\n      <skipped message=\"%s\"/>\n    </testcase>\n",
				r->verdict == PT_CHECK_OFF ? "not gated (--tolerance off)"
							   : "undefined in the baseline or the trace (no communication time)");
			break;
		default:
			fputs(">\n      <system-out>", f);
			xml(f, why, 0);
			fputs("</system-out>\n    </testcase>\n", f);
		}
	}
	fputs("  </testsuite>\n</testsuites>\n", f);
}

int pt_check_write_junit(const pt_check *c, const char *trace, const char *baseline, const char *path)
{
	struct report rep = {c, trace, baseline};
	return write_atomic(path, junit, &rep);
}

/* Markdown inline text: ASCII punctuation that could start markup escaped. */
static void md(FILE *f, const char *s)
{
	for (const char *p = s; *p; p++) {
		if (strchr("\\`*_{}[]<>()#+-!|~", *p))
			fputc('\\', f);
		fputc(*p == '\n' ? ' ' : *p, f);
	}
}

static void markdown(FILE *f, const struct report *rep)
{
	const pt_check *c = rep->c;
	if (c->nregress) {
		fprintf(f, "### pipetrace check: \xe2\x9d\x8c %d of %d metrics regressed\n\n", c->nregress, c->nrows);
	} else {
		fprintf(f, "### pipetrace check: \xe2\x9c\x85 all %d metrics within tolerance\n\n", c->nrows);
	}
	fputs("Trace ", f);
	md(f, rep->trace);
	fputs(" (", f);
	md(f, c->cur_desc);
	fputs(") against baseline ", f);
	md(f, rep->baseline);
	fputs(" (", f);
	md(f, c->base_desc);
	fputs(").\n\n| metric | baseline | current | delta | tolerance | verdict |\n|:--|--:|--:|--:|--:|:--|\n", f);
	static const char *const mark[] = {[PT_CHECK_OK] = "\xe2\x9c\x85 ok",
					   [PT_CHECK_BETTER] = "\xe2\x9c\x85 better",
					   [PT_CHECK_REGRESSION] = "\xe2\x9d\x8c **regression**",
					   [PT_CHECK_NA] = "\xe2\x9e\x96 n/a",
					   [PT_CHECK_OFF] = "\xe2\x9e\x96 off"};
	for (int i = 0; i < c->nrows; i++) {
		const pt_check_row *r = &c->row[i];
		struct cells x;
		cells(c, r, &x);
		fprintf(f, "| `%s` | %s | %s | %s | %s | %s |\n", r->name, x.base, x.cur, x.delta, x.tol,
			mark[r->verdict]);
	}
	int better = 0;
	for (int i = 0; i < c->nrows; i++)
		better += c->row[i].verdict == PT_CHECK_BETTER;
	if (better)
		fprintf(f, "\n%d metric%s improved beyond the tolerance: consider recording a new baseline.\n", better,
			better > 1 ? "s" : "");
}

int pt_check_write_markdown(const pt_check *c, const char *trace, const char *baseline, const char *path)
{
	struct report rep = {c, trace, baseline};
	return write_atomic(path, markdown, &rep);
}

/* --------------------------------------------------------------- command */

static void help(void)
{
	char defs[256];
	pt_check_defaults(defs, sizeof defs);
	printf("usage: pipetrace check TRACE.db --baseline BASELINE.json [options]\n\n"
	       "The CI gate: compare a trace's metrics with a baseline that `pipetrace stats --json`\n"
	       "recorded earlier, and fail when one has regressed beyond its tolerance. Gated: makespan,\n"
	       "bubble ratio, each rank's bubble, overlap ratio, exposed communication, peak activations.\n"
	       "A baseline of another schedule, rank count or microbatch count is refused.\n\n"
	       "Options:\n"
	       "  -b, --baseline FILE     the baseline, made by `pipetrace stats --json TRACE.db > FILE`\n"
	       "  -t, --tolerance LIST    METRIC=VALUE,... over the defaults; VALUE is +X where an increase\n"
	       "                          is a regression and -X where a decrease is: X absolute, X%% of the\n"
	       "                          baseline's value, or a duration for *_ns (+1ms); `off` ungates.\n"
	       "                          rank_bubble_ns[R] sets one rank's. May be repeated. Defaults:\n"
	       "                          ");
	for (const char *p = defs; *p; p++) /* one per line */
		fputs(*p == ',' ? "\n                          " : (char[]){*p, 0}, stdout);
	printf("\n"
	       "      --junit FILE        also write JUnit XML, one test case per metric\n"
	       "      --markdown FILE     also write a Markdown summary (for CI job pages)\n"
	       "                          (report files are replaced when they exist)\n"
	       "  -q, --quiet             print nothing but errors and the regression line\n"
	       "  -h, --help              this help\n\n"
	       "Exit status: 0 every metric within tolerance, 3 a regression (named on stderr), 2 bad usage\n"
	       "or input (a malformed or foreign baseline, a bad tolerance, an unwritable report), 1 any\n"
	       "other failure. docs/ci.md shows a CI job using it.\n");
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {{"baseline", required_argument, NULL, 'b'},
						 {"tolerance", required_argument, NULL, 't'},
						 {"junit", required_argument, NULL, 1001},
						 {"markdown", required_argument, NULL, 1002},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *baseline = NULL, *junit_path = NULL, *md_path = NULL;
	const char **tols = calloc((size_t)argc + 1, sizeof *tols);
	int ntols = 0, quiet = 0, c, rc = CLI_OK;
	if (!tols)
		return CLI_FAIL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "b:t:qh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': baseline = optarg; break;
		case 't': tols[ntols++] = optarg; break;
		case 1001: junit_path = optarg; break;
		case 1002: md_path = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': help(); free(tols); return CLI_OK;
		default: free(tols); return cli_usage("check", "unknown option");
		}
	}
	if (optind >= argc)
		rc = cli_usage("check", "which trace? e.g. pipetrace check trace.db --baseline baseline.json");
	else if (argc - optind > 1)
		rc = cli_usage("check", "one trace at a time (got %d)", argc - optind);
	else if (!baseline)
		rc = cli_usage("check", "--baseline FILE is required (make one with pipetrace stats --json)");
	if (rc) {
		free(tols);
		return rc;
	}
	const char *trace = argv[optind];
	pt_trace *t = NULL;
	pt_metrics *m = NULL;
	pt_check *ck = NULL;
	int err = pt_trace_open(trace, &t);
	if (!err)
		err = pt_metrics_compute(t, &m);
	if (!err)
		err = pt_check_create(baseline, t, m, tols, ntols, &ck);
	if (!err && !quiet)
		err = pt_check_print(ck, trace, baseline, stdout);
	if (!err && fflush(stdout))
		err = PT_EIO;
	if (!err && junit_path)
		err = pt_check_write_junit(ck, trace, baseline, junit_path);
	if (!err && md_path)
		err = pt_check_write_markdown(ck, trace, baseline, md_path);
	rc = cli_status(err);
	if (!err && ck->nregress) {
		fprintf(stderr, "pipetrace check: %s regressed against %s:", trace, baseline);
		for (int i = 0, k = 0; i < ck->nrows; i++) {
			const pt_check_row *r = &ck->row[i];
			if (r->verdict != PT_CHECK_REGRESSION)
				continue;
			char b[48], cur[48];
			fmt_value(ck, r, r->base, b, sizeof b);
			fmt_value(ck, r, r->cur, cur, sizeof cur);
			fprintf(stderr, "%s %s (%s -> %s)", k++ ? "," : "", r->name, b, cur);
		}
		fprintf(stderr, "\n");
		rc = CLI_REGRESSION;
	}
	pt_check_destroy(ck);
	pt_metrics_destroy(m);
	pt_trace_close(t);
	free(tols);
	return rc;
}
