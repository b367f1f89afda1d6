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
	/* cuda backend (run_cuda.c) */
	int gpus; /* --gpus, 0 when not given */
};

/* `pipetrace run --backend cpu`: plan, run, check, record; prints the
 * summary and returns the exit status. */
int run_cpu(struct run_args *a);

/* The progress line of a real backend's run on a terminal (run_progress.c):
 * shown once the work has lasted half a second, redrawn at most every 100
 * ms, erased by run_progress_end. run_progress fits pt_exec_step_opts. */
struct run_progress {
	const char *what;
	int64_t t0, last;
	int tty, shown;
};
void run_progress_start(struct run_progress *p, const char *what, int quiet);
void run_progress(void *ctx, size_t done, size_t total);
void run_progress_end(struct run_progress *p);

/* `pipetrace run --backend cuda` (run_cuda.c; cuda.c in a build without
 * CUDA, which says so and returns 2). */
int run_cuda(struct run_args *a);

/* Handle one getopt result if it is a plan option: 1 handled, 0 not ours,
 * -1 bad value (message printed). */
int plan_opt(struct plan_opts *o, int c, const char *arg);

/* Build (generate or read, then validate) the plan the options describe.
 * Messages go through the log; returns a PT_E* code. */
int plan_build(const char *cmd, const struct plan_opts *o, pt_plan **out);

/* The cost options of `run` (cmd_cost.c): --cost, --link, --cost-from. */
struct cost_opts {
	pt_cost given;	      /* values typed with --cost and --link ... */
	unsigned set;	      /* ... which of them (private bits) */
	const char *from;     /* --cost-from TRACE */
	pt_calib calib;	      /* cost_resolve: how the costs were calibrated */
	int bytes_from;	      /* cost_resolve took the message size from the trace */
	const char *link_note; /* cost_resolve: how a half-given link was completed */
};

#define COST_LONGOPTS                                                                                                  \
	{"cost", required_argument, NULL, 2002}, {"link", required_argument, NULL, 2003},                          \
		{"cost-from", required_argument, NULL, 2004}

#define COST_HELP                                                                                                      \
	"      --cost LIST         op durations, default F=1ms,B=2ms,I=1ms,W=1ms,FB=3ms\n"                              \
	"                          (B is a full backward, I input-only, FB an overlapped pair)\n"                      \
	"      --link LIST         latency=DURATION,bandwidth=RATE for every link, e.g.\n"                             \
	"                          latency=5us,bandwidth=50GB/s (default: free)\n"                                     \
	"      --cost-from TRACE   the op durations (each kind's median) and the link (fitted on the\n"                \
	"                          messages) of a recorded run, and its message size unless\n"                         \
	"                          --activation-bytes says; --cost and --link then change single\n"                    \
	"                          values of them (a what-if). docs/cli.md says how they are fitted\n"

/* Handle one getopt result if it is a cost option: 1 handled, 0 not ours,
 * -1 bad value (message printed). */
int cost_opt(struct cost_opts *o, int c, const char *arg);

/* The costs to simulate with: the defaults, or those calibrated on
 * --cost-from, then the values given. *bytes < 0 (no --activation-bytes)
 * takes the calibration trace's message size, else 0. PT_E* codes of
 * opening and calibrating (logged, naming the file). */
int cost_resolve(struct cost_opts *o, pt_cost *cost, int64_t *bytes);

/* Once the plan is built: refuse (PT_EINVAL, logged) a compute kind the plan
 * needs that the calibration trace could not give nor --cost did; unless
 * quiet, print where each cost came from. */
int cost_check(const struct cost_opts *o, const pt_plan *plan, const pt_cost *cost, int64_t bytes, int quiet);

#endif
