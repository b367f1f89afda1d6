/*
 * runner/cmd.h — private to runner's subcommands (schedule, run): the plan
 * options both accept, parsed one way.
 */
#ifndef PT_RUNNER_CMD_H
#define PT_RUNNER_CMD_H

#include <getopt.h>
#include <stdint.h>

#include "runner.h"

struct plan_opts {
	const char *sched;
	const char *plan_csv;
	long ranks, microbatches, chunks, group;
	int64_t bytes;
};

/* getopt_long entries (ids >= 1000) every plan-taking command accepts. */
#define PLAN_LONGOPTS                                                                                                  \
	{"schedule", required_argument, NULL, 's'}, {"ranks", required_argument, NULL, 'p'},                        \
		{"microbatches", required_argument, NULL, 'n'}, {"chunks", required_argument, NULL, 1001},          \
		{"group", required_argument, NULL, 1002}, {"plan", required_argument, NULL, 1003},                  \
		{"activation-bytes", required_argument, NULL, 1004}

#define PLAN_HELP                                                                                                      \
	"  -s, --schedule NAME     dualpipe, dualpipev, 1f1b, zb1p, gpipe, interleaved, zbv\n"                        \
	"  -p, --ranks P           pipeline ranks\n"                                                                  \
	"  -n, --microbatches N    microbatches per step (in total; DualPipe splits them over its\n"                  \
	"                          two directions)\n"                                                                 \
	"      --chunks V          interleaved: model chunks per rank (default 2)\n"                                  \
	"      --group G           interleaved: microbatch group size (default P)\n"                                  \
	"      --plan FILE.csv     read the plan from a torch.distributed.pipelining action CSV\n"                    \
	"                          instead of generating one\n"                                                       \
	"      --activation-bytes SIZE   size of every activation/gradient message (default 0),\n"                    \
	"                          e.g. 16MiB\n"

/* What `pipetrace run` was asked, for the backend that runs it. */
struct run_args {
	struct plan_opts po;
	const char *backend, *output;
	int force, quiet, comm;
	/* cpu backend (run_cpu.c) */
	int hidden, seq, mb_size, dtype;
	uint64_t seed;
	int warmup, check, fault;
};

/* `pipetrace run --backend cpu`: plan, run, check, record; prints the
 * summary and returns the exit status. */
int run_cpu(struct run_args *a);

/* Handle one getopt result if it is a plan option: 1 handled, 0 not ours,
 * -1 bad value (message printed). */
int plan_opt(struct plan_opts *o, int c, const char *arg);

/* Build (generate or read, then validate) the plan the options describe.
 * Messages go through the log; returns a PT_E* code. */
int plan_build(const char *cmd, const struct plan_opts *o, pt_plan **out);

#endif
