/*
 * runner/run_progress.c — the progress line `pipetrace run` draws on a
 * terminal while a real backend's steps and check run (cpu, cuda).
 */
#include <stdio.h>
#include <time.h>

#include "cli/cli.h"
#include "cmd.h"

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void run_progress(void *ctx, size_t done, size_t total)
{
	struct run_progress *p = ctx;
	int64_t t = now_ns();
	if (!p->tty || t - p->t0 < 500000000 || (t - p->last < 100000000 && done < total))
		return;
	p->last = t;
	fprintf(stderr, "\rpipetrace run: %s %zu/%zu (%.0f%%)\033[K", p->what, done, total,
		total ? 100.0 * (double)done / (double)total : 100.0);
	fflush(stderr);
	p->shown = 1;
}

void run_progress_start(struct run_progress *p, const char *what, int quiet)
{
	p->what = what;
	p->t0 = p->last = now_ns();
	p->tty = !quiet && cli_isatty(stderr);
	p->shown = 0;
}

void run_progress_end(struct run_progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r\033[K");
	p->shown = 0;
}
