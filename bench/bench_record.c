/*
 * bench/bench_record.c — the recording hot path: one pt_begin + pt_end pair
 * (one recorded op, two clock reads) timed in bursts of 1000 with the cycle
 * counter converted to ns; prints the median per event over 200 bursts
 * (issue target: <= 25 ns per recorded event, clock read included), and
 * the two clock reads alone, which no recorder can go below. The
 * writer drains concurrently on the other core; buffers are sized so the
 * producer never laps it, which would measure the writer instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "pipetrace/trace.h"

static double run(enum pt_clock clock, const char *path, const char *label)
{
	enum { BURSTS = 200, PER = 1000 };
	pt_rec_opts ro = {.clock = clock, .overwrite = 1, .chunk_events = 8192, .chunks = 64};
	pt_rec *rec;
	if (pt_rec_create(path, &ro, &rec))
		exit(1);
	pt_tbuf *b = pt_rec_thread(rec);
	pt_op op = pt_op_make(PT_OP_F, 0, 0);
	double per[BURSTS];
	for (int k = 0; k < BURSTS; k++) {
		int64_t t0 = bench_now_ns();
		for (int i = 0; i < PER; i++) {
			op.mb = i;
			pt_begin(b, 0, 0, i, &op);
			pt_end(b, 0, 0);
		}
		per[k] = (double)(bench_now_ns() - t0) / PER;
	}
	/* The two clock reads alone, as the hot path makes them: the floor of
	 * the figure on this machine, whatever the recorder does. */
	double clk[BURSTS];
	const struct pt_tbuf_hot_ *h = (const struct pt_tbuf_hot_ *)b;
	volatile int64_t sink = 0;
	for (int k = 0; k < BURSTS; k++) {
		int64_t t0 = bench_now_ns();
		for (int i = 0; i < PER; i++) {
			sink += pt_ticks_(h);
			sink += pt_ticks_(h);
		}
		clk[k] = (double)(bench_now_ns() - t0) / PER;
	}
	if (pt_rec_close(rec))
		exit(1);
	qsort(clk, BURSTS, sizeof clk[0], bench_cmp);
	printf("record: %-20s median %.1f ns for the 2 clock reads alone\n", label, clk[BURSTS / 2]);
	qsort(per, BURSTS, sizeof per[0], bench_cmp);
	printf("record: %-20s median %.1f ns per recorded event (begin+end, 2 clock reads), p90 %.1f ns\n", label,
	       per[BURSTS / 2], per[BURSTS * 9 / 10]);
	return per[BURSTS / 2];
}

int main(void)
{
	char path[] = "/tmp/pt-bench-record-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 1;
	close(fd);
	double tsc = run(PT_CLOCK_TSC, path, "tsc clock:");
	run(PT_CLOCK_MONOTONIC, path, "CLOCK_MONOTONIC:");
	unlink(path);
	printf("record: hot path %.1f ns per event with the default clock (target <= 25)\n", tsc);
	return 0;
}
