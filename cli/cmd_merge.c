/*
 * cli/cmd_merge.c — `pipetrace merge`: the per-process databases of one run
 * (mpirun writes run.rank<N>.db) into one trace on one timeline. The work is
 * libtrace's pt_merge; this is its command line and progress bar.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "pipetrace/trace.h"

static void help(void)
{
	printf("usage: pipetrace merge IN.db [IN.db ...] -o OUT.db [--force]\n\n"
	       "Merge the per-process traces of one run (under mpirun each process writes\n"
	       "run.rank<N>.db) into one trace. Every event moves to the reference clock using\n"
	       "the clock offset each process measured at start; the inputs must come from one\n"
	       "run (same schedule, ranks, microbatches, backend) and hold different ranks.\n\n"
	       "Options:\n"
	       "  -o, --output FILE   the merged trace (required)\n"
	       "  -f, --force         replace FILE if it exists\n"
	       "  -h, --help          this help\n\n"
	       "Exit status: 0 merged, 1 failure, 2 bad usage or inputs that do not belong together.\n");
}

static void progress(void *ctx, int64_t done, int64_t total)
{
	(void)ctx;
	if (total > 0)
		fprintf(stderr, "\rmerging: %3d%% (%lld of %lld events)", (int)(100 * done / total), (long long)done,
			(long long)total);
	if (done == total)
		fputc('\n', stderr);
}

int cmd_merge(int argc, char **argv)
{
	static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
						 {"force", no_argument, NULL, 'f'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *output = NULL;
	int force = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'f': force = 1; break;
		case 'h': help(); return CLI_OK;
		default: return cli_usage("merge", "unknown option");
		}
	}
	if (!output)
		return cli_usage("merge", "say where the merged trace goes: -o OUT.db");
	if (optind >= argc)
		return cli_usage("merge", "which traces? e.g. pipetrace merge run.rank*.db -o run.db");
	int rc = cli_check_output("merge", output, force);
	if (rc)
		return rc;
	for (int i = optind; i < argc; i++)
		if (!strcmp(argv[i], output))
			return cli_usage("merge", "%s is both an input and the output", output);
	pt_merge_opts mo = {.overwrite = force, .progress = cli_isatty(stderr) ? progress : NULL};
	int err = pt_merge((const char *const *)argv + optind, argc - optind, output, &mo);
	if (!err)
		printf("merged %d traces -> %s\n", argc - optind, output);
	return cli_status(err);
}
