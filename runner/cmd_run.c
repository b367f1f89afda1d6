/*
 * runner/cmd_run.c — `pipetrace run`: build and validate a plan, execute it
 * on a backend, and record it into a trace database. The sim backend is the
 * embedded default and runs here; the cpu backend's run is run_cpu.c's, the
 * cuda backend's run_cuda.c's (cuda.c says why not in a build without it).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"
#include "cmd.h"
#include "cpu.h"
#include "exec.h"

static void help(void)
{
	printf("usage: pipetrace run --schedule NAME --ranks P --microbatches N [options]\n"
	       "       pipetrace run --plan FILE.csv [options]\n\n"
	       "Execute a pipeline schedule on a backend and record every op and message into a\n"
	       "trace database (SQLite), for `pipetrace stats`, `export` and `view`.\n\n"
	       "Options:\n" PLAN_HELP
	       "  -b, --backend NAME      sim (default): discrete-event simulation in virtual time;\n"
	       "                          cpu: real execution on threads of this machine, one per rank;\n"
	       "                          cuda: on GPUs (cuBLAS, NCCL), recorded with CUDA events, CUPTI, NVTX\n"
	       "  -o, --output FILE       the trace database to write (default trace.db)\n"
	       "  -f, --force             replace FILE if it exists\n"
	       "      --comm MODE         flush (default): post each batch before the next compute op\n"
	       "                          and wait for all of it, as DeepSeek's DualPipe does;\n"
	       "                          overlap: receive early, wait only for inputs, never block on sends\n"
	       "  -q, --quiet             print nothing on success\n"
	       "  -h, --help              this help\n"
	       "sim backend:\n"
	       COST_HELP
	       "cpu and cuda backends (each stage Linear(h->4h) -> GELU -> Linear(4h->h), MSE loss;\n"
	       "messages are mb-size x seq x hidden values):\n"
	       "      --hidden H          hidden size (default 256)\n"
	       "      --seq T             sequence length (default 64)\n"
	       "      --mb-size B         sequences per microbatch (default 2)\n"
	       "      --dtype fp32|fp64|bf16   precision (default fp32; bf16 on cuda only)\n"
	       "      --seed S            weights and data (default 233)\n"
	       "      --warmup K          unrecorded steps before the recorded one (default 1)\n"
	       "      --no-check          skip the check against a sequential reference (by default\n"
	       "                          losses must be bitwise equal, gradients within 1e-13)\n"
	       "      --fault KIND        for pipetrace's own tests: plant a bug the check must catch\n"
	       "                          (skip-w: drop one W's gradients; swap-mb: swap two inputs)\n"
	       "cuda backend (the cpu check's reference, with a tolerance fitted to the dtype):\n"
	       "      --gpus N            GPUs this process drives, ranks spread over them in blocks\n"
	       "                          (default: one per rank, at most the visible ones; 1: every\n"
	       "                          rank shares one GPU). Under mpirun: one process per rank,\n"
	       "                          each on its node's next GPU, -o FILE.db gives FILE.rank<N>.db\n"
	       "\n"
	       "Exit status: 0 recorded, 1 failure (cpu, cuda: also a failed check, the trace then kept\n"
	       "with meta cpu.check / cuda.check = failed), 2 bad parameters or input (cpu: also a run\n"
	       "that would not fit in memory; cuda: also no device, or a build without CUDA). Nothing is\n"
	       "left at FILE unless the whole run was recorded.\n");
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {PLAN_LONGOPTS,
						 {"backend", required_argument, NULL, 'b'},
						 {"output", required_argument, NULL, 'o'},
						 {"force", no_argument, NULL, 'f'},
						 {"comm", required_argument, NULL, 2001},
						 COST_LONGOPTS,
						 {"hidden", required_argument, NULL, 3001},
						 {"seq", required_argument, NULL, 3002},
						 {"mb-size", required_argument, NULL, 3003},
						 {"dtype", required_argument, NULL, 3004},
						 {"seed", required_argument, NULL, 3005},
						 {"warmup", required_argument, NULL, 3006},
						 {"no-check", no_argument, NULL, 3007},
						 {"fault", required_argument, NULL, 3008},
						 {"gpus", required_argument, NULL, 3009},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	struct plan_opts po = {0};
	const char *backend = "sim", *output = "trace.db";
	int force = 0, quiet = 0, comm = PT_COMM_FLUSH, bytes_given = 0, c, sim_only = 0, cpu_only = 0;
	int cuda_only = 0, gpus = 0;
	pt_cost cost;
	struct cost_opts cost_o;
	memset(&cost_o, 0, sizeof cost_o);
	pt_cpu_opts co = pt_cpu_defaults();
	struct run_args ra = {.warmup = 1, .check = 1};
	long v;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:p:n:b:o:fqh", longopts, NULL)) != -1) {
		bytes_given |= c == 1004;
		int h = plan_opt(&po, c, optarg);
		if (!h) {
			h = cost_opt(&cost_o, c, optarg);
			sim_only |= h != 0;
		}
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
		case 3001:
		case 3002:
		case 3003: {
			const char *what = c == 3001 ? "--hidden" : c == 3002 ? "--seq" : "--mb-size";
			if (cli_parse_int(what, optarg, 1, 1 << 24, &v))
				return CLI_USAGE;
			*(c == 3001 ? &co.hidden : c == 3002 ? &co.seq : &co.mb_size) = (int)v;
			cpu_only = 1;
			break;
		}
		case 3004:
			if ((co.dtype = pt_dtype_parse(optarg)) < 0)
				return cli_usage("run", "--dtype must be fp32, fp64 or bf16, not '%s'", optarg);
			cpu_only = 1;
			break;
		case 3005: {
			char *end;
			unsigned long long s = strtoull(optarg, &end, 0);
			if (!*optarg || *end || optarg[0] == '-')
				return cli_usage("run", "--seed must be a non-negative integer, not '%s'", optarg);
			co.seed = s;
			cpu_only = 1;
			break;
		}
		case 3006:
			if (cli_parse_int("--warmup", optarg, 0, 1000, &v))
				return CLI_USAGE;
			ra.warmup = (int)v;
			cpu_only = 1;
			break;
		case 3007: ra.check = 0, cpu_only = 1; break;
		case 3008:
			if (!strcmp(optarg, "skip-w"))
				ra.fault = PT_FAULT_SKIP_W;
			else if (!strcmp(optarg, "swap-mb"))
				ra.fault = PT_FAULT_SWAP_MB;
			else
				return cli_usage("run", "--fault must be skip-w or swap-mb, not '%s'", optarg);
			cpu_only = 1;
			break;
		case 3009:
			if (cli_parse_int("--gpus", optarg, 1, 1024, &v))
				return CLI_USAGE;
			gpus = (int)v;
			cuda_only = 1;
			break;
		case 'h': help(); return CLI_OK;
		default: return cli_usage("run", "unknown option");
		}
	}
	if (optind < argc)
		return cli_usage("run", "unexpected argument '%s'", argv[optind]);
	int is_cuda = !strcmp(backend, "cuda");
	int is_cpu = !strcmp(backend, "cpu") || is_cuda; /* the cuda backend takes the cpu's options */
	if (!is_cpu && strcmp(backend, "sim") != 0)
		return cli_usage("run", "unknown backend '%s' (this build has: %s)", backend,
#ifdef PT_HAVE_CUDA
				 "sim, cpu, cuda"
#else
				 "sim, cpu; cuda is not compiled in"
#endif
		);
	if (is_cpu && (sim_only || po.bytes))
		return cli_usage("run", "--cost, --link, --cost-from and --activation-bytes are the sim's; the %s backend "
					"measures its costs, and its messages are mb-size x seq x hidden values",
				 backend);
	if (!is_cpu && cpu_only)
		return cli_usage("run", "--hidden, --seq, --mb-size, --dtype, --seed, --warmup, --no-check and "
					"--fault need --backend cpu or cuda");
	if (!is_cuda && cuda_only)
		return cli_usage("run", "--gpus needs --backend cuda");
	if (!is_cuda && co.dtype == PT_DTYPE_BF16)
		return cli_usage("run", "--dtype bf16 needs --backend cuda (the cpu backend computes in fp32 or fp64)");
	/* the cuda backend checks its own file name (per process under mpirun) */
	int rc = is_cuda ? 0 : cli_check_output("run", output, force);
	if (rc)
		return rc;
	if (is_cpu) {
		ra.po = po;
		ra.backend = backend;
		ra.output = output;
		ra.force = force;
		ra.quiet = quiet;
		ra.comm = comm;
		ra.hidden = co.hidden;
		ra.seq = co.seq;
		ra.mb_size = co.mb_size;
		ra.dtype = co.dtype;
		ra.seed = co.seed;
		ra.gpus = gpus;
		return is_cuda ? run_cuda(&ra) : run_cpu(&ra);
	}

	pt_plan *plan = NULL;
	pt_sim *sim = NULL;
	pt_rec *rec = NULL;
	if (!bytes_given)
		po.bytes = -1;
	int err = cost_resolve(&cost_o, &cost, &po.bytes);
	if (!err)
		err = plan_build("run", &po, &plan);
	if (!err)
		err = cost_check(&cost_o, plan, &cost, po.bytes, quiet);
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
	if (!err && cost_o.from)
		err = pt_rec_meta(rec, "cost.from", cost_o.from);
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
