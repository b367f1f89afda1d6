/*
 * bench/bench_cpu.c — the cpu backend's figures (issue 5):
 *   1. GEMM peak of this machine: a 2048^3 single-threaded GEMM through the
 *      backend's GEMM (OpenBLAS where built in), fp32 and fp64, best of 5,
 *      beside the theoretical FMA peak of the kernels in use and the
 *      fallback kernel;
 *   2. the stage compute's throughput (F + full B of one MLP stage, one
 *      thread, GELU included) as a share of that measured peak, at the
 *      default size and a larger one, and of its GEMMs alone;
 *   3. tracing overhead: the same pipeline step with recording on and off,
 *      alternated, medians of the step times (target: ratio <= 1.02), and
 *      the events recorded per second.
 * Every other figure is a median of repeated runs; the machine is shared,
 * so the spread is printed too. Nothing here asserts: `make bench` prints.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "runner/cpu.h"
#include "runner/runner.h"

static void *filled(size_t count, size_t esz)
{
	char *p = malloc(count * esz);
	if (!p)
		exit(1);
	for (size_t i = 0; i < count; i++) {
		double v = sin((double)i * 0.001);
		if (esz == sizeof(double))
			((double *)p)[i] = v;
		else
			((float *)p)[i] = (float)v;
	}
	return p;
}

typedef void gemm_fn(int, int, int, int, int, int, const void *, int, const void *, int, int, void *, int);

/* GFLOP/s of an n^3 GEMM: the best of `reps` when best (a peak: a shared
 * machine only ever slows a run down), else their median. */
static double gemm_rate(gemm_fn *f, int dtype, int n, int reps, int best)
{
	size_t esz = dtype == PT_DTYPE_F64 ? sizeof(double) : sizeof(float), nn = (size_t)n * n;
	void *A = filled(nn, esz), *B = filled(nn, esz), *C = filled(nn, esz);
	double r[9];
	f(dtype, 0, 0, n, n, n, A, n, B, n, 0, C, n); /* warm: buffers, caches */
	for (int i = 0; i < reps; i++) {
		int64_t t0 = bench_now_ns();
		f(dtype, 0, 0, n, n, n, A, n, B, n, 0, C, n);
		r[i] = 2.0 * n * n * (double)n / (double)(bench_now_ns() - t0);
	}
	free(A), free(B), free(C);
	double m = bench_median(r, reps);
	return best ? r[reps - 1] : m; /* bench_median() sorted r */
}

/* One stage's F + full B on one thread: GFLOP/s over the whole ops, and
 * over their GEMMs alone. */
static void stage_rate(int dtype, int hidden, int rows, double *whole, double *gemms)
{
	pt_mlp m = {.n = rows, .h = hidden, .dtype = dtype,
		    .esz = dtype == PT_DTYPE_F64 ? sizeof(double) : sizeof(float)};
	size_t nh = (size_t)rows * hidden, hh = (size_t)4 * hidden * hidden;
	void *w1 = filled(hh, m.esz), *w2 = filled(hh, m.esz), *dw1 = filled(hh, m.esz), *dw2 = filled(hh, m.esz);
	void *x = filled(nh, m.esz), *t = filled(nh, m.esz), *y = filled(nh, m.esz), *dy = filled(nh, m.esz);
	void *dx = filled(nh, m.esz), *a = filled(4 * nh, m.esz), *g = filled(4 * nh, m.esz), *dg = filled(4 * nh, m.esz);
	pt_mlp_init_weights(&m, 233, 1, w1, w2);
	pt_mlp_data(&m, 233, 0, 0, x);
	pt_mlp_data(&m, 233, 0, 1, t);
	const double flops = pt_mlp_flops(&m, PT_OP_F, 0) + pt_mlp_flops(&m, PT_OP_B, 0);
	enum { REPS = 9 };
	double r[REPS], q[REPS];
	for (int i = -2; i < REPS; i++) {
		int64_t t0 = bench_now_ns();
		pt_mlp_forward(&m, w1, w2, x, a, g, y);
		pt_mlp_loss(&m, y, t, dy);
		pt_mlp_backward_input(&m, w1, w2, dy, a, dg, dx);
		pt_mlp_weight_grad(&m, dy, g, a, x, dw1, dw2);
		int64_t t1 = bench_now_ns();
		/* the same six GEMMs, nothing else */
		int f = 4 * hidden;
		pt_gemm(dtype, 0, 1, rows, f, hidden, x, hidden, w1, hidden, 0, a, f);
		pt_gemm(dtype, 0, 1, rows, hidden, f, g, f, w2, f, 0, y, hidden);
		pt_gemm(dtype, 0, 0, rows, f, hidden, dy, hidden, w2, f, 0, dg, f);
		pt_gemm(dtype, 0, 0, rows, hidden, f, a, f, w1, hidden, 0, dx, hidden);
		pt_gemm(dtype, 1, 0, hidden, f, rows, dy, hidden, g, f, 1, dw2, f);
		pt_gemm(dtype, 1, 0, f, hidden, rows, a, f, x, hidden, 1, dw1, hidden);
		int64_t t2 = bench_now_ns();
		if (i >= 0) {
			r[i] = flops / (double)(t1 - t0);
			q[i] = flops / (double)(t2 - t1);
		}
	}
	*whole = bench_median(r, REPS);
	*gemms = bench_median(q, REPS);
	void *all[] = {w1, w2, dw1, dw2, x, t, y, dy, dx, a, g, dg};
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		free(all[i]);
}

/* Alternate recorded and unrecorded steps of one run; print the medians. */
static int overhead(const char *label, int sched, int P, int N, int hidden, int seq, uint32_t chunk_events,
		    int pairs)
{
	pt_plan_params pp = {.sched = sched, .ranks = P, .microbatches = N};
	pt_cpu_opts o = pt_cpu_defaults();
	o.hidden = hidden;
	o.seq = seq;
	pp.bytes = pt_cpu_msg_bytes(&o);
	pt_plan *plan;
	pt_cpu *c;
	if (pt_plan_create(&pp, &plan) || pt_cpu_create(plan, &o, &c))
		return 1;
	char path[] = "/tmp/pt-bench-cpu-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 1;
	close(fd);
	double on[64], off[64], ratio[64], evs[64], con[64], coff[64], cratio[64];
	pt_exec_result res;
	pt_exec_step_opts so = {.mode = PT_COMM_FLUSH};
	for (int w = 0; w < 2; w++) /* warm: pool pages, OpenBLAS buffers */
		if (pt_cpu_step(c, &so, &res))
			return 1;
	size_t events = 0;
	for (int k = 0; k < pairs; k++) {
		for (int rec_on = (k & 1); rec_on >= 0 && rec_on <= 1; rec_on += (k & 1) ? -1 : 1) {
			pt_rec *rec = NULL;
			pt_rec_opts ro = {.clock = PT_CLOCK_TSC, .overwrite = 1, .chunk_events = chunk_events, .chunks = 16};
			if (rec_on && pt_rec_create(path, &ro, &rec))
				return 1;
			pt_exec_step_opts s2 = {.mode = PT_COMM_FLUSH, .rec = rec};
			if (pt_cpu_step(c, &s2, &res))
				return 1;
			(rec_on ? con : coff)[k] = (double)res.cpu_ns;
			if (rec && pt_rec_close(rec))
				return 1;
			(rec_on ? on : off)[k] = (double)res.step_ns;
			if (rec_on) {
				events = res.events;
				evs[k] = (double)res.events * 1e9 / (double)res.step_ns;
			}
		}
		ratio[k] = on[k] / off[k];
		cratio[k] = con[k] / coff[k];
	}
	unlink(path);
	double mon = bench_median(on, pairs), moff = bench_median(off, pairs), mr = bench_median(ratio, pairs);
	double lo = ratio[0], hi = ratio[0];
	for (int k = 0; k < pairs; k++)
		lo = ratio[k] < lo ? ratio[k] : lo, hi = ratio[k] > hi ? ratio[k] : hi;
	printf("cpu: tracing overhead, %s: %s P=%d N=%d hidden %d, %d rows, %d pairs alternated:\n"
	       "cpu:   median step %.3f ms recorded, %.3f ms not; median of pair ratios %.4f (range %.3f-%.3f), "
	       "ratio of medians %.4f (target <= 1.02)\n"
	       "cpu:   process CPU time in the step (all threads, the writer's included): %.3f ms recorded, %.3f ms "
	       "not; median of pair ratios %.4f\n"
	       "cpu:   %zu events per step, %.0f events/s recorded (median)\n",
	       label, pt_sched_name(sched), P, N, hidden, seq * o.mb_size, pairs, mon / 1e6, moff / 1e6, mr, lo, hi,
	       mon / moff, bench_median(con, pairs) / 1e6, bench_median(coff, pairs) / 1e6, bench_median(cratio, pairs), events,
	       bench_median(evs, pairs));
	pt_cpu_destroy(c);
	pt_plan_destroy(plan);
	return 0;
}

int main(void)
{
	pt_gemm_init();
	printf("cpu: GEMM: %s\n", pt_gemm_name());
	double p32 = gemm_rate(pt_gemm, PT_DTYPE_F32, 2048, 5, 1), p64 = gemm_rate(pt_gemm, PT_DTYPE_F64, 2048, 5, 1);
	printf("cpu: measured peak, one thread, 2048^3 GEMM: fp32 %.1f GFLOP/s, fp64 %.1f GFLOP/s (best of 5)\n",
	       p32, p64);
	double mhz = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[256];
		while (fgets(line, sizeof line, f) && !(sscanf(line, "cpu MHz : %lf", &mhz) == 1))
			;
		fclose(f);
	}
	if (mhz > 0 && strstr(pt_gemm_name(), "Haswell"))
		printf("cpu: theoretical peak of OpenBLAS's Haswell kernels (AVX2, 2 FMA units: 32 fp32 / 16 fp64 "
		       "flops per cycle) at the %.0f MHz /proc/cpuinfo reports: fp32 %.1f, fp64 %.1f GFLOP/s\n"
		       "cpu:   (a measured rate above it means the core runs faster than that nominal clock)\n",
		       mhz, 32 * mhz / 1e3, 16 * mhz / 1e3);
	printf("cpu: pipetrace's blocked C kernel (the fallback), 1024^3: fp32 %.1f GFLOP/s, fp64 %.1f GFLOP/s "
	       "(median of 3)\n",
	       gemm_rate(pt_gemm_blocked, PT_DTYPE_F32, 1024, 3, 0), gemm_rate(pt_gemm_blocked, PT_DTYPE_F64, 1024, 3, 0));

	const struct {
		int hidden, rows;
	} sizes[] = {{256, 128}, {512, 256}};
	for (int i = 0; i < 2; i++) {
		for (int d = 0; d < 2; d++) {
			double whole, gemms, peak = d ? p64 : p32;
			stage_rate(d ? PT_DTYPE_F64 : PT_DTYPE_F32, sizes[i].hidden, sizes[i].rows, &whole, &gemms);
			printf("cpu: stage F+B, hidden %d, %d rows, %s: %.1f GFLOP/s = %.0f%% of the measured peak "
			       "(its GEMMs alone %.1f GFLOP/s = %.0f%%)\n",
			       sizes[i].hidden, sizes[i].rows, d ? "fp64" : "fp32", whole, 100 * whole / peak, gemms,
			       100 * gemms / peak);
		}
	}
	if (overhead("defaults", PT_SCHED_DUALPIPE, 4, 8, 256, 64, 1024, 21) ||
	    overhead("small ops, writer draining during the step", PT_SCHED_DUALPIPE, 4, 16, 64, 16, 64, 41))
		return 1;
	return 0;
}
