/*
 * runner/cmd_plan.c — the plan options shared by `schedule` and `run`.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cmd.h"

int plan_opt(struct plan_opts *o, int c, const char *arg)
{
	switch (c) {
	case 's': o->sched = arg; return 1;
	case 'p': return cli_parse_int("--ranks", arg, 1, 65536, &o->ranks) ? -1 : 1;
	case 'n': return cli_parse_int("--microbatches", arg, 1, 1 << 24, &o->microbatches) ? -1 : 1;
	case 1001: return cli_parse_int("--chunks", arg, 1, 64, &o->chunks) ? -1 : 1;
	case 1002: return cli_parse_int("--group", arg, 1, 1 << 24, &o->group) ? -1 : 1;
	case 1003: o->plan_csv = arg; return 1;
	case 1004: return cli_parse_bytes("--activation-bytes", arg, &o->bytes) ? -1 : 1;
	}
	return 0;
}

int plan_build(const char *cmd, const struct plan_opts *o, pt_plan **out)
{
	*out = NULL;
	if (o->plan_csv) {
		if (o->sched || o->ranks || o->microbatches)
			return pt_logerr(PT_EINVAL, "%s: --plan gives the whole plan; drop --schedule, --ranks and "
						    "--microbatches",
					 cmd);
		return pt_plan_load_csv(o->plan_csv, o->bytes, out);
	}
	if (!o->sched)
		return pt_logerr(PT_EINVAL, "%s: say which schedule: --schedule NAME (%s) or --plan FILE.csv", cmd,
				 pt_sched_list());
	int sched = pt_sched_parse(o->sched);
	if (sched < 0)
		return pt_logerr(PT_EINVAL, "%s: unknown schedule '%s' (known: %s)", cmd, o->sched, pt_sched_list());
	if (!o->ranks || !o->microbatches)
		return pt_logerr(PT_EINVAL, "%s: --ranks and --microbatches are required with --schedule", cmd);
	if ((o->chunks || o->group) && sched != PT_SCHED_INTERLEAVED)
		return pt_logerr(PT_EINVAL, "%s: --chunks and --group apply to the interleaved schedule only", cmd);
	pt_plan_params pp = {.sched = sched,
			     .ranks = (int)o->ranks,
			     .microbatches = (int)o->microbatches,
			     .chunks = (int)o->chunks,
			     .group = (int)o->group,
			     .bytes = o->bytes};
	return pt_plan_create(&pp, out);
}
