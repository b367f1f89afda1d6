/*
 * tests/unit/tu_sim.h — for tests that need a real trace of a simulated
 * run: build a plan, simulate it, and record it into a database in the
 * test's private directory, as `pipetrace run` does.
 */
#ifndef PT_TU_SIM_H
#define PT_TU_SIM_H

#include "testutil.h"
#include "tu_plan.h"

#include "exporters/exporters.h"
#include "runner/runner.h"

/* Simulate p under cost and mode, record it at the private path `name`
 * (written into path), and return the simulated makespan. */
static inline int64_t tu_record_sim(const pt_plan *p, const pt_cost *cost, int mode, const char *name, char *path,
				    size_t size)
{
	tu_path(path, size, name);
	pt_sim *sim = NULL;
	tu_log_reset();
	if (pt_sim_run(p, cost, mode, &sim))
		fail_msg("%s: sim failed:\n%s", p->name, tu_log_buf);
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_run_info info = {.backend = "sim", .comm_mode = mode, .cost = cost, .bytes = 0};
	assert_int_equal(pt_run_begin(rec, p, &info), 0);
	assert_int_equal(pt_sim_emit(sim, rec), 0);
	assert_int_equal(pt_rec_close(rec), 0);
	int64_t span = sim->makespan;
	pt_sim_destroy(sim);
	return span;
}

/* Open a trace and compute its metrics (both asserted to succeed). */
static inline pt_metrics *tu_metrics(const char *path, pt_trace **t)
{
	assert_int_equal(pt_trace_open(path, t), 0);
	pt_metrics *m;
	assert_int_equal(pt_metrics_compute(*t, &m), 0);
	return m;
}

/* Start a hand-made trace at path: ranks 0..nranks-1, no formula, no plan. */
static inline pt_rec *tu_hand_create(const char *path, int nranks)
{
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	for (int r = 0; r < nranks; r++) {
		pt_rank_info ri = {.rank = r, .device = -1, .theory_bubble_ns = -1, .theory_peak_act = -1};
		assert_int_equal(pt_rec_rank(rec, &ri), 0);
	}
	return rec;
}

#endif
