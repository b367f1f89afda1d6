/*
 * runner/run.c — what every backend writes before its first event: the run's
 * parameters in meta, each rank's chunks, plan and analytic expectations.
 * Backends then add their streams and events.
 */
#include <stdio.h>
#include <string.h>

#include "runner.h"

int pt_run_begin(pt_rec *rec, const pt_plan *p, const pt_run_info *info)
{
	char buf[256];
	int err = 0;
	const char *formula = NULL;
	pt_cost_format(info->cost, buf, sizeof buf);
#define META(k, v)                                                                                                     \
	do {                                                                                                           \
		if (!err)                                                                                              \
			err = pt_rec_meta(rec, k, v);                                                                  \
	} while (0)
#define META_INT(k, v)                                                                                                 \
	do {                                                                                                           \
		if (!err)                                                                                              \
			err = pt_rec_meta_int(rec, k, v);                                                              \
	} while (0)
	META("schedule", p->sched == PT_SCHED_CSV ? "csv" : pt_sched_name(p->sched));
	META("plan_source", info->plan_source ? info->plan_source : "generated");
	META_INT("ranks", p->ranks);
	META_INT("microbatches", p->microbatches);
	META_INT("chunks", p->chunks);
	META_INT("pipes", p->npipes);
	META_INT("stages", p->nstages);
	if (p->sched == PT_SCHED_INTERLEAVED)
		META_INT("group", p->group);
	META("backend", info->backend);
	META("comm_mode", pt_comm_name(info->comm_mode));
	META("cost", buf);
	META_INT("cost.F_ns", info->cost->f);
	META_INT("cost.B_ns", info->cost->b);
	META_INT("cost.I_ns", info->cost->i);
	META_INT("cost.W_ns", info->cost->w);
	META_INT("cost.FB_ns", info->cost->fb);
	META_INT("link.latency_ns", info->cost->latency);
	snprintf(buf, sizeof buf, "%.17g", info->cost->bandwidth);
	META("link.bandwidth_Bps", buf);
	META_INT("activation_bytes", info->bytes);
	for (int r = 0; r < p->ranks && !err; r++) {
		if (info->local && !info->local[r])
			continue; /* another process's trace holds it */
		pt_rank_info ri;
		memset(&ri, 0, sizeof ri);
		ri.rank = r;
		ri.device = info->device ? info->device[r] : -1;
		ri.nchunks = p->chunks;
		int peak;
		pt_theory(p, info->cost, r, &ri.theory_bubble_ns, &peak, &formula);
		ri.theory_peak_act = peak;
		int n = snprintf(ri.label, sizeof ri.label, "rank %d \xc2\xb7 stage%s ", r, p->chunks > 1 ? "s" : "");
		for (int c = 0; c < p->chunks && n < (int)sizeof ri.label; c++)
			n += snprintf(ri.label + n, sizeof ri.label - (size_t)n, "%s%d", c ? "," : "",
				      pt_plan_chunk(p, r, c)->stage);
		err = pt_rec_rank(rec, &ri);
		for (int c = 0; c < p->chunks && !err; c++)
			err = pt_rec_chunk(rec, pt_plan_chunk(p, r, c));
		if (!err)
			err = pt_rec_plan(rec, r, p->rank[r].ops, p->rank[r].n);
	}
	if (formula)
		META("theory.bubble_formula", formula);
#undef META
#undef META_INT
	return err;
}
