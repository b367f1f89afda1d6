/*
 * runner/cmd_run.c — `pipetrace run`: build and validate a plan, execute it
 * on a backend, and record it into a trace database. The sim backend is the
 * embedded default; others register here as they arrive.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
	       "      --cost LIST         op durations, default F=1ms,B=2ms,I=1ms,W=1ms,FB=3ms\n"
	       "                          (B is a full backward, I input-only, FB an overlapped pair)\n"
	       "      --link LIST         latency=DURATION,bandwidth=RATE for every link, e.g.\n"
	       "                          latency=5us,bandwidth=50GB/s (default: free)\n"
	       "      --cost-from TRACE   take the op durations (each kind's median) and the link\n"
	       "                          (fitted on the messages) from a recorded run; --cost and\n"
	       "                          --link then change single values of it (a what-if)\n"
	       "  -q, --quiet             print nothing on success\n"
	       "  -h, --help              this help\n\n"
	       "Exit status: 0 recorded, 1 failure, 2 bad parameters or input. Nothing is left at FILE\n"
	       "unless the whole run was recorded.\n");
}

/* --cost and --link values, applied over the default or calibrated costs
 * whatever the order of the options. */
struct cost_set {
	pt_cost c;
	unsigned set; /* bit (1 << kind) per op kind; LAT_BIT, BW_BIT for the link */
};
#define LAT_BIT (1u << 30)
#define BW_BIT (1u << 31)

static int cost_kv(void *ctx, const char *k, const char *v)
{
	struct cost_set *cs = ctx;
	static const char *const names[] = {[PT_OP_F] = "F", [PT_OP_B] = "B", [PT_OP_I] = "I", [PT_OP_W] = "W",
					    [PT_OP_FB] = "FB"};
	for (int kind = PT_OP_F; kind <= PT_OP_FB; kind++) {
		if (strcasecmp(k, names[kind]))
			continue;
		char what[32];
		snprintf(what, sizeof what, "--cost %s", names[kind]);
		int64_t *dst[] = {[PT_OP_F] = &cs->c.f, [PT_OP_B] = &cs->c.b, [PT_OP_I] = &cs->c.i,
				  [PT_OP_W] = &cs->c.w, [PT_OP_FB] = &cs->c.fb};
		cs->set |= 1u << kind;
		return cli_parse_duration(what, v, dst[kind]);
	}
	fprintf(stderr, "pipetrace run: --cost: unknown op '%s' (F, B, I, W, FB)\n", k);
	return -1;
}

static int link_kv(void *ctx, const char *k, const char *v)
{
	struct cost_set *cs = ctx;
	if (!strcasecmp(k, "latency")) {
		cs->set |= LAT_BIT;
		return cli_parse_duration("--link latency", v, &cs->c.latency);
	}
	if (!strcasecmp(k, "bandwidth")) {
		cs->set |= BW_BIT;
		return cli_parse_bandwidth("--link bandwidth", v, &cs->c.bandwidth);
	}
	fprintf(stderr, "pipetrace run: --link: unknown key '%s' (latency, bandwidth)\n", k);
	return -1;
}

static void apply(pt_cost *c, const struct cost_set *cs)
{
	int64_t *dst[] = {[PT_OP_F] = &c->f, [PT_OP_B] = &c->b, [PT_OP_I] = &c->i, [PT_OP_W] = &c->w,
			  [PT_OP_FB] = &c->fb};
	const int64_t src[] = {[PT_OP_F] = cs->c.f, [PT_OP_B] = cs->c.b, [PT_OP_I] = cs->c.i,
			       [PT_OP_W] = cs->c.w, [PT_OP_FB] = cs->c.fb};
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		if (cs->set & (1u << k))
			*dst[k] = src[k];
	if (cs->set & LAT_BIT)
		c->latency = cs->c.latency;
	if (cs->set & BW_BIT)
		c->bandwidth = cs->c.bandwidth;
}

/* Calibrate on `path`, apply the overrides, and refuse a plan that needs a
 * kind the measured run can say nothing about. */
static int costs_from(const char *path, const struct cost_set *cs, const pt_plan *plan, int quiet, pt_cost *cost)
{
	pt_trace *t;
	pt_calib ci;
	int err = pt_trace_open(path, &t);
	if (err)
		return err;
	err = pt_cost_calibrate(t, cost, &ci);
	pt_trace_close(t);
	if (err)
		return err;
	apply(cost, cs);
	/* one message size fixes latency + wire time: half of the link given,
	 * the measurement gives the other half */
	const char *link_note = NULL;
	int half = (cs->set & (LAT_BIT | BW_BIT)) == LAT_BIT || (cs->set & (LAT_BIT | BW_BIT)) == BW_BIT;
	if (half && ci.nsizes == 1 && ci.msg_bytes > 0) {
		if (cs->set & BW_BIT) {
			int64_t rest = ci.msg_dur - pt_cost_wire(cost, ci.msg_bytes);
			cost->latency = rest > 0 ? rest : 0;
			link_note = "bandwidth given; latency: the median duration less its wire time";
		} else {
			int64_t wire = ci.msg_dur - cost->latency;
			cost->bandwidth = wire > 0 ? (double)ci.msg_bytes * 1e9 / (double)wire : 0;
			link_note = "latency given; bandwidth: the size over the median duration less it";
		}
	}
	unsigned lack = pt_plan_kinds(plan) & ci.missing & ~cs->set;
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		if (lack & (1u << k))
			return pt_logerr(PT_EINVAL,
					 "%s: the run recorded no %s ops and %s cannot be derived from the others; "
					 "give it with --cost %s=DURATION",
					 path, pt_kind_name(k), pt_kind_name(k), pt_kind_name(k));
	if (quiet)
		return 0;
	printf("costs from %s:", path);
	const int64_t v[] = {[PT_OP_F] = cost->f, [PT_OP_B] = cost->b, [PT_OP_I] = cost->i, [PT_OP_W] = cost->w,
			     [PT_OP_FB] = cost->fb};
	for (int k = PT_OP_F; k <= PT_OP_FB; k++) {
		char d[32];
		if (v[k] < 0)
			continue;
		cli_fmt_ns(v[k], 10 * v[k], d, sizeof d); /* 1.300 ms rather than 1300.000 us */
		printf(" %s=%s", pt_kind_name(k), d);
		if (cs->set & (1u << k))
			printf(" (given)");
		else if (ci.derived & (1u << k))
			printf(" (derived)");
		else
			printf(" (median of %lld)", (long long)ci.nops[k]);
	}
	char lat[32];
	cli_fmt_ns(cost->latency, 10 * cost->latency, lat, sizeof lat);
	printf("\n  link: latency %s, bandwidth ", lat);
	if (cost->bandwidth > 0)
		printf("%.4g GB/s", cost->bandwidth / 1e9);
	else
		printf("unlimited");
	if (link_note)
		printf(" (%s)\n", link_note);
	else if (cs->set & (LAT_BIT | BW_BIT))
		printf(" (given)\n");
	else
		printf(" (%lld messages; %s)\n", (long long)ci.nmsgs, ci.link_method);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	static const struct option longopts[] = {PLAN_LONGOPTS,
						 {"backend", required_argument, NULL, 'b'},
						 {"output", required_argument, NULL, 'o'},
						 {"force", no_argument, NULL, 'f'},
						 {"comm", required_argument, NULL, 2001},
						 {"cost", required_argument, NULL, 2002},
						 {"link", required_argument, NULL, 2003},
						 {"cost-from", required_argument, NULL, 2004},
						 {"quiet", no_argument, NULL, 'q'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	struct plan_opts po = {0};
	const char *backend = "sim", *output = "trace.db", *cost_from = NULL;
	int force = 0, quiet = 0, comm = PT_COMM_FLUSH, c;
	pt_cost cost = pt_cost_default();
	struct cost_set given;
	memset(&given, 0, sizeof given);
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:p:n:b:o:fqh", longopts, NULL)) != -1) {
		int h = plan_opt(&po, c, optarg);
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
		case 2002: {
			char *list = strdup(optarg);
			int bad = !list || cli_each_kv("--cost", list, cost_kv, &given);
			free(list);
			if (bad)
				return CLI_USAGE;
			break;
		}
		case 2003: {
			char *list = strdup(optarg);
			int bad = !list || cli_each_kv("--link", list, link_kv, &given);
			free(list);
			if (bad)
				return CLI_USAGE;
			break;
		}
		case 2004: cost_from = optarg; break;
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
	int err = plan_build("run", &po, &plan);
	if (!err && cost_from)
		err = costs_from(cost_from, &given, plan, quiet, &cost);
	if (!err && !cost_from)
		apply(&cost, &given);
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
	if (!err && cost_from)
		err = pt_rec_meta(rec, "cost.from", cost_from);
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
