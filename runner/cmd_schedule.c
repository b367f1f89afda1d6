/*
 * runner/cmd_schedule.c — `pipetrace schedule`: generate (or read) a plan,
 * validate it, and print it: one line per rank in the specs' notation, or as
 * torch's action CSV.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cmd.h"
#include "viewer/viewer.h"

static void help(void)
{
	printf("usage: pipetrace schedule --schedule NAME --ranks P --microbatches N [options]\n"
	       "       pipetrace schedule --plan FILE.csv [options]\n\n"
	       "Generate a schedule's plan, validate it, and print it: one line per rank,\n"
	       "'r<rank>: <op> <op> ...'. F0:3 is the forward of chunk 0 (DualPipe: direction 0) on\n"
	       "its microbatch 3; B, I and W likewise; F0:7|B1:3 an overlapped pair.\n\n"
	       "Options:\n" PLAN_HELP
	       "      --format text|csv   text grid (default) or torch's action CSV\n"
	       "      --comms             show communication batches, e.g. [sA0:0>1 rA1:0<1]\n"
	       "      --steps             show DualPipe's steps S1..S8\n"
	       "      --validate          only validate; print 'ok' and the op counts\n"
	       "      --grid              draw the plan as a schedule grid, simulated with the default\n"
	       "                          costs (as `pipetrace view` draws a trace)\n"
	       "      --width N           --grid: columns (default: COLUMNS, the terminal's, else 120)\n"
	       "      --comm              --grid: draw each rank's message lane\n"
	       "      --color WHEN        --grid: auto (default; honours NO_COLOR), always, never\n"
	       "  -h, --help              this help\n\n"
	       "Exit status: 0 valid, 2 bad parameters or an invalid plan.\n");
}

int cmd_schedule(int argc, char **argv)
{
	static const struct option longopts[] = {PLAN_LONGOPTS,
						 {"format", required_argument, NULL, 2001},
						 {"comms", no_argument, NULL, 2002},
						 {"steps", no_argument, NULL, 2003},
						 {"validate", no_argument, NULL, 2004},
						 {"grid", no_argument, NULL, 2005},
						 {"width", required_argument, NULL, 2006},
						 {"comm", no_argument, NULL, 2007},
						 {"color", required_argument, NULL, 2008},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	struct plan_opts po = {0};
	const char *format = "text";
	unsigned flags = 0;
	int only_validate = 0, grid = 0, c;
	long width = 0;
	const char *color = "auto";
	pt_grid_opts go = {0};
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:p:n:h", longopts, NULL)) != -1) {
		int h = plan_opt(&po, c, optarg);
		if (h < 0)
			return CLI_USAGE;
		if (h)
			continue;
		switch (c) {
		case 2001: format = optarg; break;
		case 2002: flags |= PT_PRINT_COMMS; break;
		case 2003: flags |= PT_PRINT_STEPS; break;
		case 2004: only_validate = 1; break;
		case 2005: grid = 1; break;
		case 2006:
			if (cli_parse_int("--width", optarg, 20, 100000, &width))
				return CLI_USAGE;
			break;
		case 2007: go.comm = 1; break;
		case 2008: color = optarg; break;
		case 'h': help(); return CLI_OK;
		default: return cli_usage("schedule", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("schedule", "unexpected argument '%s'", argv[optind]);
	if (strcmp(format, "text") && strcmp(format, "csv"))
		return cli_usage("schedule", "--format must be text or csv, not '%s'", format);
	if (grid) {
		if ((go.color = pt_grid_color(color)) < 0)
			return cli_usage("schedule", "--color must be auto, always or never, not '%s'", color);
		go.width = width ? (int)width : pt_grid_term_width();
	}
	pt_plan *plan;
	int err = plan_build("schedule", &po, &plan);
	if (err)
		return cli_status(err);
	if (only_validate) {
		printf("ok: %s, %d ranks, %d microbatches: %zu compute ops, %zu messages\n", plan->name, plan->ranks,
		       plan->microbatches, pt_plan_count(plan, 0), pt_plan_count(plan, 1));
	} else if (grid) {
		err = pt_grid_plan(plan, stdout, &go);
	} else if (!strcmp(format, "csv")) {
		err = pt_plan_write_csv(plan, stdout);
	} else {
		pt_plan_print(plan, stdout, flags);
	}
	pt_plan_destroy(plan);
	if (!err && fflush(stdout) != 0)
		err = pt_logerr(PT_EIO, "schedule: cannot write the output");
	return cli_status(err);
}
