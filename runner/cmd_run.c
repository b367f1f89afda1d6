/*
 * runner/cmd_run.c — `pipetrace run`: build and validate a plan, execute it
 * on a backend, and record it into a trace database. The sim backend is the
 * embedded default; others register here as they arrive.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cmd.h"

static void help(void)
{
	printf("usage: pipetrace run --schedule NAME --ranks P --microbatches N [options]\n"
	       "       pipetrace run --plan FILE.csv [options]\n\n"
	       "Execute a pipeline schedule on a backend and record every op and message into a\n"
	       "trace database (SQLite), for `pipetrace stats`, `export` and `view`.\n\n"
	       "Options:\n" PLAN_HELP
	       "  -b, --backend NAME      sim (default): discrete-event simulation in virtual time\n"
	       "  -o, --output FILE       the trace database to write (default trace.db)\n"
	       "  -f, --force             replace FILE if it exists\n"
	       "      --comm MODE         flush (default): post each batch before the next compute op\n"
	       "                          and wait for all of it, as DeepSeek's DualPipe does;\n"
	       "                          overlap: receive early, wait only for inputs, never block on sends\n"
	       COST_HELP
	       "  -q, --quiet             print nothing on success\n"
	       "  -h, --help              this help\n\n"
	       "Exit status: 0 recorded, 1 failure, 2 bad parameters or input. Nothing is left at FILE\n"
	       "unless the whole run was recorded.\n");
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {PLAN_LONGOPTS,
						 {"backend", required_argument, NULL, 'b'},
						 {"output", required_argument, NULL, 'o'},
						 {"force", no_argument, NULL, 'f'},
						 {"comm", required_argument, NULL, 2001},
						 COST_LONGOPTS,
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	struct plan_opts po = {0};
	const char *backend = "sim", *output = "trace.db";
	int force = 0, quiet = 0, comm = PT_COMM_FLUSH, bytes_given = 0, c;
	pt_cost cost;
	struct cost_opts co;
	memset(&co, 0, sizeof co);
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:p:n:b:o:fqh", longopts, NULL)) != -1) {
		bytes_given |= c == 1004;
		int h = plan_opt(&po, c, optarg);
		if (!h)
			h = cost_opt(&co, c, optarg);
		if (h < 0)
			return CLI_USAGE;
		if (h)
			continue;
		switch (c) {
		case 'b': backend = optarg; break;
		case 'o': output = optarg; break;
		case 'f': force = 1; break;
		case 'q': quiet = 1; break;
		case 2001:
			comm = pt_comm_parse(optarg);
			if (comm < 0)
				return cli_usage("run", "--comm must be flush or overlap, not '%s'", optarg);
			break;
		case 'h': help(); return CLI_OK;
		default: return cli_usage("run", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("run", "unexpected argument '%s'", argv[optind]);
	if (strcmp(backend, "sim") != 0)
		return cli_usage("run", "unknown backend '%s' (this build has: sim)", backend);
	int rc = cli_check_output("run", output, force);
	if (rc)
		return rc;

	pt_plan *plan = NULL;
	pt_sim *sim = NULL;
	pt_rec *rec = NULL;
	if (!bytes_given)
		po.bytes = -1;
	int err = cost_resolve(&co, &cost, &po.bytes);
	if (!err)
		err = plan_build("run", &po, &plan);
	if (!err)
		err = cost_check(&co, plan, &cost, po.bytes, quiet);
	if (!err)
		err = pt_sim_run(plan, &cost, comm, &sim);
	if (!err) {
		pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = force};
		err = pt_rec_create(output, &ro, &rec);
	}
	if (!err) {
		pt_run_info info = {.backend = backend,
				    .comm_mode = comm,
				    .cost = &cost,
				    .bytes = po.bytes,
				    .plan_source = po.plan_csv};
		err = pt_run_begin(rec, plan, &info);
	}
	if (!err && co.from)
		err = pt_rec_meta(rec, "cost.from", co.from);
	if (!err)
		err = pt_sim_emit(sim, rec);
	if (!err) {
		err = pt_rec_close(rec);
		rec = NULL;
	}
	if (!err && !quiet) {
		char span[32];
		cli_fmt_ns(sim->makespan, sim->makespan, span, sizeof span);
		printf("recorded %s on %d ranks, %d microbatches (%s backend, %s comm): %zu ops, %zu messages, "
		       "makespan %s -> %s\n",
		       plan->name, plan->ranks, plan->microbatches, backend, pt_comm_name(comm),
		       pt_plan_count(plan, 0), pt_plan_count(plan, 1), span, output);
	}
	pt_rec_abort(rec);
	pt_sim_destroy(sim);
	pt_plan_destroy(plan);
	return cli_status(err);
}
