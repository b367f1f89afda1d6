/*
 * importers/import.c — `pipetrace import`: PyTorch-profiler (Kineto) JSON
 * traces and Nsight Systems SQLite exports into one trace.db, like the one
 * `pipetrace run` records, so that stats, exports and views serve profiles
 * pipetrace did not make. This file reads the command line, tells the inputs'
 * formats apart, feeds each input to its reader (kineto.c; libtrace's nsys
 * reader through a callback) and the sink (sink.c), and prints what was
 * imported. It parses no format itself.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "import.h"

static void help(void)
{
	printf("usage: pipetrace import [options] FILE [FILE...] [-o TRACE.db]\n\n"
	       "Turn a profile recorded by another tool into a pipetrace trace database, for\n"
	       "`pipetrace stats` and every other reader of traces:\n"
	       "  - PyTorch profiler (Kineto) traces: Chrome-trace JSON, .json or .json.gz, one file\n"
	       "    per rank (its distributedInfo.rank says which), several into one database;\n"
	       "  - Nsight Systems SQLite exports (`nsys export --type sqlite`): one rank per process\n"
	       "    that ran GPU kernels.\n"
	       "GPU kernels, copies, memsets and synchronisations per device and stream, CUDA runtime\n"
	       "calls, CPU ops and annotations per thread are kept, with the correlation ids that tie\n"
	       "kernels to their launches. A stream whose kernel time is mostly communication kernels\n"
	       "(NCCL, DeepEP's dispatch/combine, NVSHMEM, ...) is a communication stream, any other a\n"
	       "compute stream. Annotations named like attn(F), mlp(B), mlp(W) or F0:3 become pipeline\n"
	       "ops (F, B or I, W) spanning the GPU work they launched. docs/import.md has the rules.\n\n"
	       "Options:\n"
	       "  -o, --output FILE         the trace database to write (default trace.db)\n"
	       "  -f, --force               replace FILE if it exists\n"
	       "      --comm-streams LIST   these stream ids carry communication, on every rank (e.g. 27\n"
	       "                            or 27,31); every other stream is compute\n"
	       "      --comm-kernels REGEX  kernels that communicate (POSIX extended, case-insensitive)\n"
	       "                            instead of the built-in pattern:\n"
	       "                            %s\n"
	       "      --op-map REGEX=KIND   annotations whose whole name matches REGEX are ops of KIND\n"
	       "                            (F, B, I, W, FB, or none); repeatable, first match wins,\n"
	       "                            before the built-in names\n"
	       "      --no-progress         no progress bar (by default one is drawn on a terminal)\n"
	       "  -q, --quiet               print nothing on success\n"
	       "  -h, --help                this help\n\n"
	       "Exit status: 0 imported, 1 failure, 2 bad usage or bad input (malformed JSON, a file\n"
	       "that is not a trace, an incomplete nsys export). Nothing is left at FILE unless every\n"
	       "input was imported.\n",
	       imp_comm_default);
}

/* The format of path, from its first bytes: SQLite is an nsys export,
 * anything else is read as JSON (plain or gzip). */
static int sniff(const char *path, enum imp_format *fmt)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return pt_logerr(errno == ENOENT ? PT_ENOENT : PT_EIO, "%s: %s", path,
				 errno == ENOENT ? "no such file" : strerror(errno));
	char h[16] = {0};
	size_t n = fread(h, 1, sizeof h, f);
	fclose(f);
	*fmt = n == sizeof h && !memcmp(h, "SQLite format 3", 16) ? IMP_NSYS : IMP_KINETO;
	return 0;
}

static int parse_streams(const char *s, uint32_t **out, int *n)
{
	char *copy = strdup(s);
	if (!copy)
		return -1;
	int rc = 0;
	for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long v;
		if (cli_parse_int("--comm-streams", tok, 0, 0xffffffffL, &v)) {
			rc = -1;
			break;
		}
		uint32_t *nv = realloc(*out, (size_t)(*n + 1) * sizeof *nv);
		if (!nv) {
			rc = -1;
			break;
		}
		*out = nv;
		nv[(*n)++] = (uint32_t)v;
	}
	free(copy);
	if (!rc && !*n) {
		fprintf(stderr, "pipetrace import: --comm-streams: '%s' names no stream\n", s);
		rc = -1;
	}
	return rc;
}

/* ------------------------------------------------------------------ nsys */

struct nsys_ctx {
	imp *im;
	int base;      /* rank of the export's first process */
	int64_t epoch; /* added to its times: ns since 1970 */
};

static int nsys_row(void *ctx, const pt_nsys_row *row)
{
	struct nsys_ctx *c = ctx;
	if (row->ev.rank < 0) {
		imp_skip(c->im, "from a process without GPU kernels");
		return 0;
	}
	pt_event ev = row->ev;
	ev.rank += c->base;
	ev.start_ns += c->epoch;
	ev.end_ns += c->epoch;
	return imp_emit(c->im, &ev, row->name, row->domain);
}

static int nsys_thread(void *ctx, int rank, uint32_t tid, const char *name)
{
	struct nsys_ctx *c = ctx;
	return imp_thread_name(c->im, c->base + rank, tid, name);
}

static int import_nsys(imp *im, const char *path, int *next_rank)
{
	pt_nsys *n;
	int err = pt_nsys_open(path, &n);
	if (err)
		return err;
	struct nsys_ctx c = {.im = im, .base = *next_rank, .epoch = pt_nsys_epoch_ns(n)};
	for (int i = 0; i < pt_nsys_nprocs(n) && !err; i++)
		err = imp_rank(im, c.base + i, path, 0);
	if (!err)
		err = pt_nsys_thread_names(n, nsys_thread, &c);
	if (!err)
		err = pt_nsys_read(n, nsys_row, &c);
	*next_rank += pt_nsys_nprocs(n);
	pt_nsys_close(n);
	return err;
}

/* --------------------------------------------------------------- summary */

static void summary(const imp *im, const char *output, int ninputs)
{
	const int64_t *c = im->count;
	printf("imported %d %s (%s) -> %s: %d rank%s, %lld kernels, %lld copies, %lld memsets, %lld syncs, "
	       "%lld runtime calls, %lld ranges\n",
	       ninputs, ninputs == 1 ? "file" : "files",
	       im->format == IMP_NSYS ? "Nsight Systems export" : "Kineto JSON", output, im->nranks,
	       im->nranks == 1 ? "" : "s", (long long)c[PT_OP_KERNEL], (long long)c[PT_OP_MEMCPY],
	       (long long)c[PT_OP_MEMSET], (long long)c[PT_OP_SYNC], (long long)c[PT_OP_RUNTIME],
	       (long long)c[PT_OP_RANGE]);
	int shown = 0, more = 0;
	for (int r = 0; r < im->capranks; r++) {
		if (!im->ranks[r].used)
			continue;
		if (shown == 8) {
			more++;
			continue;
		}
		shown++;
		printf("  rank %d:", r);
		int any = 0;
		for (uint32_t prev = 0, first = 1;; first = 0) { /* GPU streams in id order */
			const struct imp_stream *s = NULL;
			for (size_t i = 0; i < im->nstreams; i++) {
				const struct imp_stream *x = &im->streams[i];
				if (x->rank == r && x->gpu && (x->kernels || x->comm_ns) && (first || x->id > prev) &&
				    (!s || x->id < s->id))
					s = x;
			}
			if (!s)
				break;
			prev = s->id;
			int64_t t = s->comm_ns + s->comp_ns;
			printf("%s stream %u ", any ? " \xc2\xb7" : "", s->id);
			if (!imp_stream_is_comm(im, s))
				printf("compute (%lld kernels)", (long long)s->kernels);
			else if (im->ncomm_streams)
				printf("communication (%lld kernels; --comm-streams)", (long long)s->kernels);
			else
				printf("communication (%lld kernels, %.1f%% of their time in communication kernels)",
				       (long long)s->kernels, t ? 100.0 * (double)s->comm_ns / (double)t : 0.0);
			any = 1;
		}
		printf("%s\n", any ? "" : " no GPU kernels");
	}
	if (more)
		printf("  ... and %d more rank%s\n", more, more == 1 ? "" : "s");
	const pt_label_stats *l = &im->labels;
	if (l->ranges) {
		printf("  ops from annotations:");
		int any = 0;
		for (int k = PT_OP_F; k <= PT_OP_FB; k++)
			if (l->kinds[k]) {
				printf("%s %lld %s", any ? " \xc2\xb7" : "", (long long)l->kinds[k], pt_kind_name(k));
				any = 1;
			}
		printf("%s (%lld annotated ranges", any ? "" : " none", (long long)l->ranges);
		if (l->idle)
			printf("; %lld launched no GPU work", (long long)l->idle);
		printf(")\n");
	}
	if (im->nskips) {
		printf("  not imported:");
		for (int i = 0; i < im->nskips; i++)
			printf("%s %lld %s", i ? " \xc2\xb7" : "", (long long)im->skips[i].n, im->skips[i].why);
		printf("\n");
	}
}

/* --------------------------------------------------------------- command */

/* Messages go where libtrace's default sends them, after clearing the
 * progress bar's line. */
static void log_cb(void *ctx, enum pt_log_level level, const char *msg)
{
	imp *im = ctx;
	if (level > PT_LOG_WARN)
		return;
	if (im->progress_shown) {
		fprintf(stderr, "\r\033[K");
		im->progress_shown = 0;
	}
	fprintf(stderr, "pipetrace: %s%s\n", level == PT_LOG_WARN ? "warning: " : "", msg);
}

int cmd_import(int argc, char **argv)
{
	static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
						 {"force", no_argument, NULL, 'f'},
						 {"comm-streams", required_argument, NULL, 2001},
						 {"comm-kernels", required_argument, NULL, 2002},
						 {"op-map", required_argument, NULL, 2003},
						 {"no-progress", no_argument, NULL, 2004},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *output = "trace.db", *comm_re = NULL;
	const char **maps = NULL;
	uint32_t *comm_streams = NULL;
	int force = 0, quiet = 0, progress = 1, nmaps = 0, ncomm = 0, c, status = CLI_USAGE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:fqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case 2001:
			if (parse_streams(optarg, &comm_streams, &ncomm))
				goto out;
			break;
		case 2002: comm_re = optarg; break;
		case 2003: {
			const char **m = realloc(maps, (size_t)(nmaps + 1) * sizeof *m);
			if (!m) {
				status = CLI_FAIL;
				goto out;
			}
			maps = m;
			maps[nmaps++] = optarg;
			break;
		}
		case 2004: progress = 0; break;
		case 'h':
			help();
			status = CLI_OK;
			goto out;
		default: cli_usage("import", "unknown option"); goto out;
		}
	}
	int ninputs = argc - optind;
	if (ninputs < 1) {
		cli_usage("import", "which profile? e.g. pipetrace import trace.json -o run.db");
		goto out;
	}
	if ((status = cli_check_output("import", output, force)))
		goto out;
	enum imp_format fmt = 0;
	for (int i = optind; i < argc; i++) {
		enum imp_format f = IMP_KINETO;
		int err = sniff(argv[i], &f);
		if (err) {
			status = cli_status(err);
			goto out;
		}
		if (fmt && f != fmt) {
			status = cli_usage(
			    "import", "%s: cannot mix Kineto JSON and Nsight Systems exports in one import", argv[i]);
			goto out;
		}
		fmt = f;
	}

	imp_rules rules;
	int err = imp_rules_init(&rules, comm_re);
	for (int i = 0; i < nmaps && !err; i++)
		err = imp_rules_add_map(&rules, maps[i]);
	pt_rec *rec = NULL;
	imp im;
	imp_init(&im, NULL, &rules, fmt, ninputs);
	if (!err) {
		pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = force};
		err = pt_rec_create(output, &ro, &rec);
	}
	im.rec = rec;
	im.comm_streams = comm_streams;
	im.ncomm_streams = ncomm;
	im.progress = progress && !quiet && cli_isatty(stderr);
	if (im.progress)
		pt_log_set(log_cb, &im);
	int next_rank = 0;
	struct stat st;
	for (int i = 0; i < ninputs; i++)
		im.progress_total += stat(argv[optind + i], &st) == 0 ? (uint64_t)st.st_size : 0;
	for (int i = 0; i < ninputs && !err; i++) {
		im.input = argv[optind + i];
		im.input_index = i;
		err = fmt == IMP_NSYS ? import_nsys(&im, im.input, &next_rank) : imp_kineto_file(&im, im.input, i);
		im.progress_base += stat(im.input, &st) == 0 ? (uint64_t)st.st_size : 0;
	}
	/* meta: what the trace is and where it came from */
	size_t cap = 64;
	for (int i = optind; i < argc; i++)
		cap += strlen(argv[i]) + 2;
	char *sources = malloc(cap), streams[256] = "";
	if (!err && !sources)
		err = PT_ENOMEM;
	if (!err) {
		sources[0] = '\0';
		for (int i = optind; i < argc; i++)
			strcat(strcat(sources, i > optind ? ", " : ""), argv[i]);
		for (int i = 0, p = 0; i < ncomm && p < (int)sizeof streams - 12; i++)
			p += snprintf(streams + p, sizeof streams - (size_t)p, "%s%u", i ? "," : "", comm_streams[i]);
		const char *meta[] = {"schedule",
				      "imported",
				      "backend",
				      fmt == IMP_NSYS ? "nsys" : "kineto",
				      "import.source",
				      sources,
				      "ops.from",
				      "annotations",
				      "import.comm_kernels",
				      rules.comm_src,
				      ncomm ? "import.comm_streams" : NULL,
				      streams,
				      NULL};
		err = imp_finish(&im, meta);
	}
	free(sources);
	if (!err) {
		err = pt_rec_close(rec);
		rec = NULL;
	}
	if (im.progress_shown) /* before any message below */
		fprintf(stderr, "\r\033[K");
	if (!err && !quiet)
		summary(&im, output, ninputs);
	pt_rec_abort(rec);
	if (im.progress)
		pt_log_set(NULL, NULL);
	imp_fini(&im);
	imp_rules_fini(&rules);
	status = cli_status(err);
out:
	free(maps);
	free(comm_streams);
	return status;
}
