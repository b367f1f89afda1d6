/*
 * tests/unit/tu_plan.h — the plan every runner test starts from: generated
 * and validated, or the test fails with the reason the log gave. Include
 * after testutil.h.
 */
#ifndef PT_TU_PLAN_H
#define PT_TU_PLAN_H

#include "runner/runner.h"

/* The plan of sched on P ranks with N microbatches and messages of `bytes`;
 * fails the test with the log when the plan is refused. */
static inline pt_plan *tu_plan(int sched, int P, int N, int64_t bytes)
{
	pt_plan_params pp = {.sched = sched, .ranks = P, .microbatches = N, .bytes = bytes};
	pt_plan *p = NULL;
	tu_log_reset();
	int err = pt_plan_create(&pp, &p);
	if (err)
		fail_msg("%s P=%d N=%d: %s\n%s", pt_sched_name(sched), P, N, pt_strerror(err), tu_log_buf);
	return p;
}

/* The same without messages' sizes. */
static inline pt_plan *make(int sched, int P, int N) { return tu_plan(sched, P, N, 0); }

#endif
