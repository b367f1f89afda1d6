/*
 * bench/bench_cuda.c — the cuda backend's figures (issue 6):
 *   1. tracing overhead: the same DualPipe step with recording (CUPTI
 *      activity, NVTX ranges, external correlation ids) and without,
 *      alternated, the ratio of the median step times (CUDA events around
 *      ops are the backend's own timing and on in both);
 *   2. communication hidden: the step with --comm overlap against flush,
 *      at a message size where transfers are worth hiding, and the share of
 *      message time that overlapped compute (docs/metrics.md);
 *   3. measured bubble against the sim's prediction under costs calibrated
 *      on the same trace (what `pipetrace stats` prints).
 * It needs a CUDA device; without one (or in a build without CUDA) it says
 * why and exits 0, so `make bench` goes on. Nothing here asserts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "config.h"
#include "exporters/exporters.h"
#include "runner/cuda.h"
#include "runner/runner.h"

#ifndef PT_HAVE_CUDA
int main(void)
{
	printf("cuda backend: skipped (this build has no CUDA)\n");
	return 0;
}
#else
static pt_plan *plan(int sched, int P, int N, int64_t bytes)
{
	pt_plan_params pp = {.sched = sched, .ranks = P, .microbatches = N, .bytes = bytes};
	pt_plan *p = NULL;
	if (pt_plan_create(&pp, &p)) {
		fprintf(stderr, "bench_cuda: no plan\n");
		exit(1);
	}
	return p;
}

/* One recorded step of c into path (the CUPTI collector started once). */
static int record(pt_cuda *c, const pt_plan *p, int mode, const char *path, pt_exec_result *res)
{
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_MONOTONIC, .overwrite = 1};
	int err = pt_rec_create(path, &ro, &rec);
	if (err)
		return err;
	pt_cupti *cupti = NULL;
#ifdef PT_HAVE_CUPTI
	if (!pt_cupti_create(rec, &cupti) && pt_cupti_start(cupti)) {
		pt_cupti_destroy(cupti);
		cupti = NULL;
	}
#endif
	err = pt_cuda_trace(c, rec, cupti);
	pt_exec_step_opts so = {.mode = mode, .rec = rec};
	if (!err)
		err = pt_cuda_step(c, &so, res);
	if (!err && cupti)
		err = pt_cupti_stop(cupti);
	pt_run_info info = {.backend = "cuda", .comm_mode = mode, .cost = &res->median, .plan_source = "generated"};
	if (!err)
		err = pt_run_begin(rec, p, &info);
	if (!err)
		err = pt_cuda_meta(c, rec);
	if (!err) {
		err = pt_rec_close(rec);
		rec = NULL;
	}
	pt_rec_abort(rec);
	pt_cupti_destroy(cupti);
	pt_cuda_trace(c, NULL, NULL);
	return err;
}

static pt_cuda *setup(const pt_plan *p, int hidden, int seq, pt_gpu_map *map, pt_procs *one, int visible)
{
	pt_cuda_opts o = {.hidden = hidden, .seq = seq, .mb_size = 2, .dtype = PT_DTYPE_F32, .seed = 233, .trace = 1};
	pt_cuda *c = NULL;
	if (pt_gpu_map_make(p->ranks, 0, visible, one, map) || pt_cuda_create(p, &o, map, one, &c)) {
		fprintf(stderr, "bench_cuda: set-up failed\n");
		exit(1);
	}
	pt_exec_step_opts so = {.mode = PT_COMM_FLUSH};
	pt_exec_result res;
	for (int i = 0; i < 2; i++) /* warm-up: cuBLAS heuristics, NCCL connections */
		pt_cuda_step(c, &so, &res);
	return c;
}

int main(void)
{
	int visible = 0;
	if (pt_cuda_devices(&visible)) {
		printf("cuda backend: skipped (no CUDA device on this machine)\n");
		return 0;
	}
	char dir[] = "/tmp/pt-bench-cuda-XXXXXX", path[600];
	if (!mkdtemp(dir))
		return 1;
	pt_procs one = {.size = 1};
	pt_gpu_map map;
	const int P = visible >= 4 ? 4 : 2;

	/* 1. tracing overhead */
	pt_plan *p = plan(P == 4 ? PT_SCHED_DUALPIPE : PT_SCHED_1F1B, P, 4 * P, 0);
	pt_cuda *c = setup(p, 1024, 512, &map, &one, visible);
	enum { REPS = 9 };
	double on[REPS], off[REPS];
	int kernels = 0;
	for (int i = 0; i < REPS; i++) {
		pt_exec_step_opts so = {.mode = PT_COMM_FLUSH};
		pt_exec_result res;
		pt_cuda_step(c, &so, &res);
		off[i] = (double)res.step_ns;
		snprintf(path, sizeof path, "%s/on.db", dir);
		record(c, p, PT_COMM_FLUSH, path, &res);
		on[i] = (double)res.step_ns;
	}
	pt_trace *t;
	if (!pt_trace_open(path, &t)) {
		kernels = (int)pt_trace_meta_int(t, "cupti.kernels", 0);
		pt_trace_close(t);
	}
	double mon = bench_median(on, REPS), moff = bench_median(off, REPS);
	printf("tracing overhead (%s, %d ranks on %d GPU%s, hidden 1024, 1024 rows): step %.3f ms traced, %.3f ms "
	       "not, ratio %.3f (median of %d, alternated; %d kernels recorded)\n",
	       p->name, P, map.ngpus, map.ngpus == 1 ? "" : "s", mon / 1e6, moff / 1e6, mon / moff, REPS, kernels);
	pt_cuda_destroy(c);
	pt_gpu_map_free(&map);

	/* 2. overlap against flush */
	double step[2], hidden[2];
	const char *transport = "copy";
	for (int mode = PT_COMM_FLUSH; mode <= PT_COMM_OVERLAP; mode++) {
		c = setup(p, 1024, 2048, &map, &one, visible);
		double v[5];
		pt_exec_result res;
		snprintf(path, sizeof path, "%s/%s.db", dir, pt_comm_name(mode));
		for (int i = 0; i < 5; i++) {
			record(c, p, mode, path, &res);
			v[i] = (double)res.step_ns;
		}
		step[mode - PT_COMM_FLUSH] = bench_median(v, 5);
		transport = pt_cuda_transport(&map);
		pt_metrics *m = NULL;
		hidden[mode - PT_COMM_FLUSH] = 0;
		if (!pt_trace_open(path, &t)) {
			if (!pt_metrics_compute(t, &m)) {
				hidden[mode - PT_COMM_FLUSH] = m->overlap_ratio;
				pt_metrics_destroy(m);
			}
			pt_trace_close(t);
		}
		pt_cuda_destroy(c);
		pt_gpu_map_free(&map);
	}
	printf("comm overlap vs flush (4096 rows x 1024, %s transport): step %.3f ms overlap, %.3f ms flush (%.1f%% "
	       "faster); message time hidden under compute %.0f%% overlap, %.0f%% flush\n",
	       transport, step[1] / 1e6, step[0] / 1e6, 100.0 * (1 - step[1] / step[0]), 100 * hidden[1],
	       100 * hidden[0]);

	/* 3. measured bubble against the sim's prediction */
	snprintf(path, sizeof path, "%s/overlap.db", dir);
	pt_prediction *pr = NULL;
	pt_metrics *m = NULL;
	if (!pt_trace_open(path, &t)) {
		if (!pt_metrics_compute(t, &m) && !pt_predict(t, &pr))
			printf("bubble (%s, overlap): measured %.1f%%, sim with costs calibrated on the run %.1f%% "
			       "(F %.3f ms, B %.3f ms, FB %.3f ms)\n",
			       p->name, 100 * m->bubble_ratio, 100 * pr->bubble_ratio, (double)pr->cost.f / 1e6,
			       (double)pr->cost.b / 1e6, (double)pr->cost.fb / 1e6);
		pt_metrics_destroy(m);
		pt_prediction_destroy(pr);
		pt_trace_close(t);
	}
	pt_plan_destroy(p);
	return 0;
}
#endif
