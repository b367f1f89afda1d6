/*
 * viewer/cmd_view.c — `pipetrace view`: the schedule grid of one or more
 * traces in the terminal (grid.c), or one self-contained HTML report of them
 * (html.c). Several traces share one time scale, so schedules compare at a
 * glance. This file parses options, opens traces and picks the output.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "viewer.h"

static void help(void)
{
	printf("usage: pipetrace view [options] TRACE.db [TRACE.db ...]\n"
	       "       pipetrace view --html REPORT.html [options] TRACE.db [TRACE.db ...]\n\n"
	       "Draw the schedule grid of a recorded run in the terminal: one row per rank, time\n"
	       "across, each op a cell coloured by kind and chunk (direction) and labelled with its\n"
	       "microbatch, bubbles as gaps; GPU streams and threads, when the trace has them, as\n"
	       "density rows under their rank. With --html, write one self-contained HTML file\n"
	       "instead (zoom, pan, hover, metrics, in-flight activations; several traces are\n"
	       "compared on one time scale). docs/viewer.md tells how to read both.\n\n"
	       "Options:\n"
	       "      --html FILE     write the HTML report to FILE (no network needed to open it)\n"
	       "  -f, --force         replace FILE if it exists\n"
	       "      --width N       columns to draw in (default: COLUMNS, the terminal's width, else 120)\n"
	       "      --comm          draw each rank's message lane under it (transfers; exposed in red)\n"
	       "      --color WHEN    auto (default: colour when stdout is a terminal and NO_COLOR is\n"
	       "                      unset), always, never\n"
	       "  -q, --quiet         print nothing on success (--html)\n"
	       "  -h, --help          this help\n\n"
	       "Exit status: 0 ok, 1 failure, 2 bad usage or a file that is not a pipetrace trace.\n"
	       "A failed --html leaves nothing at FILE.\n");
}

static const char *meta_or(pt_trace *t, const char *k, const char *def)
{
	const char *v = pt_trace_meta(t, k);
	return v && *v ? v : def;
}

/* One trace's grid (m its metrics), scaled to [window start, + span]. */
static int draw(pt_trace *t, const pt_metrics *m, pt_grid_opts *o, int64_t span)
{
	o->t0 = m->win_start;
	o->t1 = m->win_start + span;
	/* the run's shape, with what the trace says of it */
	const char *dot = o->color ? " \xc2\xb7 " : " - ";
	char title[512];
	int n = snprintf(title, sizeof title, "%s%s%d rank%s", meta_or(t, "schedule", "trace"), dot, m->nranks,
			 m->nranks == 1 ? "" : "s");
	static const char *const keys[][2] = {{"microbatches", " microbatches"}, {"backend", " backend"},
					      {"comm_mode", " comm"}};
	for (int i = 0; i < 3 && n < (int)sizeof title; i++)
		if (pt_trace_meta(t, keys[i][0]))
			n += snprintf(title + n, sizeof title - (size_t)n, "%s%s%s", dot, pt_trace_meta(t, keys[i][0]),
				      keys[i][1]);
	if (n < (int)sizeof title)
		snprintf(title + n, sizeof title - (size_t)n, "%s%s", dot, pt_trace_path(t));
	int err = pt_grid_begin(stdout, o, title);
	for (int i = 0; i < m->nranks && !err; i++) {
		pt_vrank r;
		if ((err = pt_vrank_load(t, m->rank[i].rank, &r)))
			break;
		err = pt_grid_rank(stdout, o, &r);
		pt_vrank_fini(&r);
	}
	if (!err) {
		pt_grid_summary s = {.bubble_ratio = m->bubble_ratio,
				     .theory_ratio = m->theory_bubble_ratio,
				     .overlap_ratio = m->overlap_ratio,
				     .formula = pt_trace_meta(t, "theory.bubble_formula")};
		err = pt_grid_end(stdout, o, &s);
	}
	return err;
}

/* The time quantum of a simulated run with free or latency-only links: its
 * op costs and latency are all its times are made of. 0 otherwise. */
static int64_t run_quantum(pt_trace *t)
{
	const char *backend = pt_trace_meta(t, "backend");
	if (!backend || strcmp(backend, "sim") || pt_trace_meta_int(t, "link.bandwidth_Bps", 0) != 0)
		return 0;
	static const char *const keys[] = {"cost.F_ns", "cost.B_ns", "cost.I_ns", "cost.W_ns", "cost.FB_ns",
					   "link.latency_ns"};
	int64_t v[6];
	for (int i = 0; i < 6; i++)
		v[i] = pt_trace_meta_int(t, keys[i], 0);
	return pt_grid_quantum(v, 6);
}

/* The grids of n traces on one time scale: the longest window. */
static int draw_all(pt_trace **t, int n, pt_grid_opts *o)
{
	pt_metrics **m = calloc((size_t)n, sizeof *m);
	if (!m)
		return PT_ENOMEM;
	int err = 0;
	int64_t span = 1, q[2] = {0, 0};
	for (int i = 0; i < n && !err; i++) {
		err = pt_metrics_compute(t[i], &m[i]);
		if (!err && m[i]->win_end - m[i]->win_start > span)
			span = m[i]->win_end - m[i]->win_start;
		/* one quantum for all, or none when a trace has none */
		int64_t qi = run_quantum(t[i]);
		q[0] = i == 0 || (q[0] && qi) ? pt_grid_quantum((int64_t[]){q[0], qi}, 2) : 0;
	}
	o->quantum = q[0];
	pt_grid_fit fit = {0};
	o->fit = &fit;
	for (int i = 0; i < n && !err; i++) {
		if (i)
			putchar('\n');
		fit.hidden = fit.min_dur = 0;
		err = draw(t[i], m[i], o, span);
	}
	for (int i = 0; i < n; i++)
		pt_metrics_destroy(m[i]);
	free(m);
	return err;
}

int cmd_view(int argc, char **argv)
{
	static const struct option longopts[] = {{"html", required_argument, NULL, 1001},
						 {"force", no_argument, NULL, 'f'},
						 {"width", required_argument, NULL, 1002},
						 {"comm", no_argument, NULL, 1003},
						 {"color", required_argument, NULL, 1004},
						 {"colour", required_argument, NULL, 1004},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *html = NULL, *color = "auto";
	int force = 0, quiet = 0, c;
	long width = 0;
	pt_grid_opts o = {0};
	optind = 1;
	while ((c = getopt_long(argc, argv, "fqh", longopts, NULL)) != -1) {
		switch (c) {
		case 1001: html = optarg; break;
		case 'f': force = 1; break;
		case 1002:
			if (cli_parse_int("--width", optarg, 20, 100000, &width))
				return CLI_USAGE;
			break;
		case 1003: o.comm = 1; break;
		case 1004: color = optarg; break;
		case 'q': quiet = 1; break;
		case 'h': help(); return CLI_OK;
		default: return cli_usage("view", "unknown option");
		}
	}
	int n = argc - optind;
	if (n < 1)
		return cli_usage("view", "which trace? e.g. pipetrace view trace.db");
	if ((o.color = pt_grid_color(color)) < 0)
		return cli_usage("view", "--color must be auto, always or never, not '%s'", color);
	o.width = width ? (int)width : pt_grid_term_width();
	if (html) {
		int rc = cli_check_output("view", html, force);
		if (rc)
			return rc;
	}

	pt_trace **t = calloc((size_t)n, sizeof *t);
	if (!t)
		return CLI_FAIL;
	int err = 0;
	for (int i = 0; i < n && !err; i++)
		err = pt_trace_open(argv[optind + i], &t[i]);
	if (!err && html) {
		pt_html_opts ho = {.progress = !quiet && cli_isatty(stderr)};
		pt_html_stats st;
		err = pt_html_write(t, n, html, &ho, &st);
		if (!err && !quiet)
			printf("wrote %s: %d trace%s, %lld events, %.1f KiB\n", html, n, n > 1 ? "s" : "",
			       (long long)st.events, (double)st.bytes / 1024);
	} else if (!err) {
		err = draw_all(t, n, &o);
	}
	for (int i = 0; i < n; i++)
		pt_trace_close(t[i]);
	free(t);
	if (!err && fflush(stdout))
		err = pt_logerr(PT_EIO, "view: cannot write the output");
	return cli_status(err);
}
