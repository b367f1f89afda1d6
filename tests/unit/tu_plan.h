/*
 * tests/unit/tu_plan.h — the plan every runner test starts from: generated
 * and validated, or the test fails with the reason the log gave. Include
 * after testutil.h.
 */
#ifndef PT_TU_PLAN_H
#define PT_TU_PLAN_H

#include "runner/runner.h"

/* The plan of sched on P ranks with N microbatches; fails the test if none. */
static inline pt_plan *make(int sched, int P, int N)
{
	pt_plan_params pp = {.sched = sched, .ranks = P, .microbatches = N};
	pt_plan *p = NULL;
	tu_log_reset();
	int err = pt_plan_create(&pp, &p);
	if (err)
		fail_msg("%s P=%d N=%d: %s\n%s", pt_sched_name(sched), P, N, pt_strerror(err), tu_log_buf);
	return p;
}

#endif
