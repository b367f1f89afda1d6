/*
 * exporters/cmd_export.c — `pipetrace export`: a trace database to a
 * Perfetto, Chrome JSON or CSV file, whole or cut by ranks, time window and
 * kinds. Parses the command line, picks the format (flag, or the output's
 * extension), shows progress on a terminal and reports what it wrote; the
 * export itself is export.c's and the formats' work.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "exporters.h"
#include "libtrace/grow.h"

static void help(void)
{
	printf("usage: pipetrace export TRACE.db [-o FILE] [options]\n\n"
	       "Write a trace as a file for trace viewers: Perfetto protobuf (open it in\n"
	       "https://ui.perfetto.dev), Chrome trace-event JSON, or CSV. One process track per\n"
	       "rank, one track per stream, slices named like the ops (F0:3, F0:7|B1:3,\n"
	       "SEND A0:3 \xe2\x86\x92 r2) with their arguments, a flow from every SEND to its RECV, and\n"
	       "each rank's in-flight activations as a counter. docs/export.md tells more.\n\n"
	       "Options:\n"
	       "  -o, --output FILE    the file to write (default: TRACE with the format's\n"
	       "                       extension, e.g. trace.pftrace); - for stdout\n"
	       "  -F, --format NAME    the format; by default the output's extension picks it:\n");
	for (int i = 0; pt_formats[i]; i++)
		printf("                         %-12s %s (%s)\n", pt_formats[i]->name, pt_formats[i]->what,
		       pt_formats[i]->exts);
	printf("      --ranks LIST     only these ranks, e.g. 0-3,7\n"
	       "      --from TIME      only events ending at or after TIME on the trace's timeline\n"
	       "      --to TIME        ... and starting before TIME (e.g. --from 10ms --to 25.5ms)\n"
	       "      --kinds LIST     only these kinds: F,B,I,W,FB,SEND,RECV,KERNEL,MEMCPY,MEMSET,\n"
	       "                       SYNC,RUNTIME,RANGE (compute = F,B,I,W,FB; comm = SEND,RECV)\n"
	       "      --no-args        leave out the per-slice arguments (a smaller file)\n"
	       "      --all-args       Perfetto: also the arguments a slice's name and category\n"
	       "                       already say (kind, chunk, mb, payload, peer)\n"
	       "  -f, --force          replace FILE if it exists\n"
	       "  -q, --quiet          print nothing on success, show no progress\n"
	       "  -h, --help           this help\n\n"
	       "Exit status: 0 written, 1 failure, 2 bad usage or input (not a trace, an unknown\n"
	       "format, an unwritable FILE). Nothing is left at FILE unless the export finished.\n");
}

/* "0-3,7" -> a malloc'ed list of ranks. */
static int parse_ranks(const char *s, int32_t **out, int *n)
{
	*out = NULL;
	*n = 0;
	size_t cap = 0;
	const char *p = s;
	while (*p) {
		char *end;
		long a = strtol(p, &end, 10), b;
		if (end == p || a < 0 || a > 0x7fffffff)
			goto bad;
		b = a;
		if (*end == '-') {
			const char *q = end + 1;
			b = strtol(q, &end, 10);
			if (end == q || b < a || b > 0x7fffffff)
				goto bad;
		}
		if (*end && *end != ',')
			goto bad;
		if (b - a > 1 << 22)
			goto bad;
		for (long r = a; r <= b; r++) {
			if (pt_grow(out, &cap, (size_t)*n + 1, sizeof **out))
				goto bad;
			(*out)[(*n)++] = (int32_t)r;
		}
		p = *end ? end + 1 : end;
		if (*end && !*p)
			goto bad;
	}
	if (*n)
		return 0;
bad:
	free(*out);
	*out = NULL;
	fprintf(stderr, "pipetrace export: --ranks: '%s' is not a list of ranks (e.g. 0-3,7)\n", s);
	return -1;
}

static int parse_kinds(const char *s, uint32_t *kinds)
{
	*kinds = 0;
	char *list = strdup(s), *save = NULL;
	if (!list)
		return -1;
	int bad = 0;
	for (char *tok = strtok_r(list, ",", &save); tok && !bad; tok = strtok_r(NULL, ",", &save)) {
		if (!strcasecmp(tok, "compute")) {
			*kinds |= 1u << PT_OP_F | 1u << PT_OP_B | 1u << PT_OP_I | 1u << PT_OP_W | 1u << PT_OP_FB;
			continue;
		}
		if (!strcasecmp(tok, "comm")) {
			*kinds |= 1u << PT_OP_SEND | 1u << PT_OP_RECV;
			continue;
		}
		int k;
		for (k = 1; k < PT_OP_KIND_MAX; k++)
			if (!strcasecmp(tok, pt_kind_name(k)))
				break;
		if (k == PT_OP_KIND_MAX) {
			fprintf(stderr,
				"pipetrace export: --kinds: unknown kind '%s' (F, B, I, W, FB, SEND, RECV, KERNEL, "
				"MEMCPY, MEMSET, SYNC, RUNTIME, RANGE, compute, comm)\n",
				tok);
			bad = 1;
		}
		*kinds |= 1u << k;
	}
	if (!bad && !*kinds) {
		fprintf(stderr, "pipetrace export: --kinds: an empty list\n");
		bad = 1;
	}
	free(list);
	return bad ? -1 : 0;
}

/* Ctrl-C or a kill: the export stops, removes its temporary file, and the
 * command exits with the usual status for the signal. */
static volatile int interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

struct progress {
	double t0;
	int shown;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A bar on stderr, from half a second in (short exports show none). */
static void show_progress(void *ctx, double frac, int64_t events, int done)
{
	struct progress *p = ctx;
	double el = now() - p->t0;
	if (!p->shown && (done || el < 0.5))
		return;
	p->shown = 1;
	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	char bar[31];
	int fill = (int)(frac * 30);
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r  [%s] %3d%%  %lld events  %.1f s", bar, (int)(frac * 100), (long long)events, el);
	if (done)
		fprintf(stderr, "\n");
	fflush(stderr);
}

/* TRACE.db -> TRACE<ext>, ext the format's first extension. */
static char *default_output(const char *trace, const pt_format *f)
{
	size_t n = strlen(trace), k = strcspn(f->exts, " ");
	if (n > 3 && !strcmp(trace + n - 3, ".db"))
		n -= 3;
	char *o = malloc(n + k + 1);
	if (o) {
		memcpy(o, trace, n);
		memcpy(o + n, f->exts, k);
		o[n + k] = '\0';
	}
	return o;
}

static void human_size(double b, char *buf, size_t size)
{
	if (b >= 1 << 30)
		snprintf(buf, size, "%.1f GiB", b / (1 << 30));
	else if (b >= 1 << 20)
		snprintf(buf, size, "%.1f MiB", b / (1 << 20));
	else if (b >= 1 << 10)
		snprintf(buf, size, "%.1f KiB", b / (1 << 10));
	else
		snprintf(buf, size, "%.0f bytes", b);
}

int cmd_export(int argc, char **argv)
{
	enum { O_RANKS = 3001, O_FROM, O_TO, O_KINDS, O_NO_ARGS, O_ALL_ARGS };
	static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
						 {"format", required_argument, NULL, 'F'},
						 {"ranks", required_argument, NULL, O_RANKS},
						 {"from", required_argument, NULL, O_FROM},
						 {"to", required_argument, NULL, O_TO},
						 {"kinds", required_argument, NULL, O_KINDS},
						 {"no-args", no_argument, NULL, O_NO_ARGS},
						 {"all-args", no_argument, NULL, O_ALL_ARGS},
						 {"force", no_argument, NULL, 'f'},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *output = NULL, *format = NULL;
	int force = 0, quiet = 0, c, rc = CLI_USAGE;
	pt_export_opts o = pt_export_opts_all();
	int32_t *ranks = NULL;
	char *def_out = NULL;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:F:fqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'F': format = optarg; break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case O_RANKS:
			free(ranks);
			if (parse_ranks(optarg, &ranks, &o.nranks))
				goto out;
			o.ranks = ranks;
			break;
		case O_FROM:
			if (cli_parse_duration("--from", optarg, &o.from_ns))
				goto out;
			break;
		case O_TO:
			if (cli_parse_duration("--to", optarg, &o.to_ns))
				goto out;
			break;
		case O_KINDS:
			if (parse_kinds(optarg, &o.kinds))
				goto out;
			break;
		case O_NO_ARGS: o.no_args = 1; break;
		case O_ALL_ARGS: o.all_args = 1; break;
		case 'h':
			help();
			rc = CLI_OK;
			goto out;
		default: rc = cli_usage("export", "unknown option"); goto out;
		}
	}
	if (optind >= argc) {
		rc = cli_usage("export", "which trace? e.g. pipetrace export trace.db -o run.pftrace");
		goto out;
	}
	if (argc - optind > 1) {
		rc = cli_usage("export", "one trace at a time (got %d)", argc - optind);
		goto out;
	}
	if (o.to_ns <= o.from_ns) {
		rc = cli_usage("export", "--to must come after --from");
		goto out;
	}
	const char *trace = argv[optind];
	const pt_format *f = NULL;
	if (format) {
		f = pt_format_by_name(format);
		if (!f) {
			rc = cli_usage("export", "unknown format '%s' (perfetto, chrome-json, csv)", format);
			goto out;
		}
	} else if (output && strcmp(output, "-")) {
		f = pt_format_by_path(output);
		if (!f) {
			const char *dot = strrchr(output, '.');
			rc = cli_usage("export",
				       "%s: cannot tell the format from the extension '%s' (.pftrace, "
				       ".perfetto-trace, .json, .csv); pass --format",
				       output, dot && !strchr(dot, '/') ? dot : "");
			goto out;
		}
	} else {
		f = pt_formats[0];
	}
	if (!output) {
		output = def_out = default_output(trace, f);
		if (!output) {
			rc = CLI_FAIL;
			goto out;
		}
	}
	if (strcmp(output, "-") && (rc = cli_check_output("export", output, force)))
		goto out;

	pt_trace *t;
	int err = pt_trace_open(trace, &t);
	if (err) {
		rc = cli_status(err);
		goto out;
	}
	struct progress pr = {now(), 0};
	if (!quiet && cli_isatty(stderr)) {
		o.progress = show_progress;
		o.progress_ctx = &pr;
	}
	int64_t events = 0;
	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	o.cancel = &interrupted;
	err = pt_export_file(t, f, &o, output, &events);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	pt_trace_close(t);
	if (interrupted) {
		rc = 128 + interrupted;
		goto out;
	}
	if (!err && !quiet && strcmp(output, "-")) {
		struct stat st;
		char size[32] = "?";
		double bytes = stat(output, &st) == 0 ? (double)st.st_size : 0;
		human_size(bytes, size, sizeof size);
		printf("exported %lld events to %s (%s, %s", (long long)events, output, f->name, size);
		if (events)
			printf(", %.1f bytes per event", bytes / (double)events);
		printf(") in %.2f s\n", now() - pr.t0);
		if (!events)
			printf("note: the selection is empty (check --ranks, --from/--to, --kinds)\n");
	}
	rc = cli_status(err);
out:
	free(ranks);
	free(def_out);
	return rc;
}
