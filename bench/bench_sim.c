/*
 * bench/bench_sim.c — planning + simulating DualPipe, 64 ranks x 1024
 * microbatches (issue target: >= 5 million ops per second). An op is a plan
 * step: a compute op or one message end. Planning includes validation,
 * which itself runs a rendezvous simulation. Prints the median of 7 runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "runner/runner.h"

int main(int argc, char **argv)
{
	int P = argc > 1 ? atoi(argv[1]) : 64, N = argc > 2 ? atoi(argv[2]) : 1024;
	enum { RUNS = 7 };
	double plan_t[RUNS], sim_t[RUNS], total[RUNS];
	size_t ops = 0;
	pt_cost cost = pt_cost_default();
	for (int i = 0; i < RUNS; i++) {
		pt_plan_params pp = {.sched = PT_SCHED_DUALPIPE, .ranks = P, .microbatches = N};
		pt_plan *p;
		double t0 = bench_now();
		if (pt_plan_create(&pp, &p))
			return 1;
		double t1 = bench_now();
		pt_sim *sim;
		if (pt_sim_run(p, &cost, PT_COMM_FLUSH, &sim))
			return 1;
		double t2 = bench_now();
		ops = pt_plan_count(p, 0) + pt_plan_count(p, 1);
		plan_t[i] = t1 - t0;
		sim_t[i] = t2 - t1;
		total[i] = t2 - t0;
		pt_sim_destroy(sim);
		pt_plan_destroy(p);
	}
	qsort(plan_t, RUNS, sizeof(double), bench_cmp);
	qsort(sim_t, RUNS, sizeof(double), bench_cmp);
	qsort(total, RUNS, sizeof(double), bench_cmp);
	printf("sim: dualpipe P=%d N=%d: %zu ops; plan+validate %.1f ms, simulate %.1f ms (medians of %d)\n", P, N,
	       ops, plan_t[RUNS / 2] * 1e3, sim_t[RUNS / 2] * 1e3, RUNS);
	printf("sim: planning + simulating: %.2f million ops/s (target >= 5)\n", (double)ops / total[RUNS / 2] / 1e6);
	return 0;
}
