/*
 * runner/runner.h — plans, schedules and the executors that run them.
 *
 * A plan is, for each rank, the ordered list of ops it executes: compute ops
 * (F, B, I, W, FB) and the point-to-point SENDs and RECVs between them, each
 * message in a numbered batch (the ops DualPipe posts and waits together).
 * Generators build plans from a schedule's rules (spec/dualpipe.md,
 * spec/schedules.md); every plan is validated before anything runs it.
 * Executors (the sim backend here, cpu and cuda later) walk a plan and hand
 * events to libtrace. The runner reads a trace back only to calibrate its
 * cost model on a measured run and to re-simulate a recorded plan
 * (calibrate.c, predict.c, replay.c), and then only through libtrace's reader.
 */
#ifndef PT_RUNNER_H
#define PT_RUNNER_H

#include <stdio.h>

#include "pipetrace/trace.h"

/* ------------------------------------------------------------- schedules */

enum pt_sched {
	PT_SCHED_DUALPIPE = 0,
	PT_SCHED_DUALPIPEV,
	PT_SCHED_1F1B,
	PT_SCHED_ZB1P,
	PT_SCHED_GPIPE,
	PT_SCHED_INTERLEAVED,
	PT_SCHED_ZBV,
	PT_SCHED_COUNT,
	PT_SCHED_CSV = 100, /* read from a torch action CSV */
};

/* The schedule's name ("dualpipe"), and back (-1 when unknown; accepts the
 * aliases zbh1 and interleaved1f1b). pt_sched_list is "dualpipe, …, zbv". */
const char *pt_sched_name(int sched);
int pt_sched_parse(const char *name);
const char *pt_sched_list(void);

typedef struct pt_plan_params {
	int sched;
	int ranks;
	int microbatches; /* in total (DualPipe splits them over its two directions) */
	int chunks;	  /* interleaved: chunks (virtual stages) per rank; 0 = 2 */
	int group;	  /* interleaved: microbatch group size; 0 = ranks */
	int64_t bytes;	  /* size of every activation / gradient message */
} pt_plan_params;

/* One rank's list of ops. */
typedef struct pt_rank_plan {
	pt_op *ops;
	size_t n, cap;
	int nbatches;
	int in_block; /* ops lie in the plan's block (pt_plan_reserve), freed with it */
} pt_rank_plan;

typedef struct pt_plan {
	int sched;
	char name[64]; /* schedule name, or the CSV file's name */
	int ranks;
	int microbatches; /* total */
	int chunks;	  /* per rank */
	int group;	  /* interleaved only */
	int npipes;	  /* 2 for DualPipe, 1 otherwise */
	int nstages;	  /* stages per pipeline */
	int mbs[2];	  /* microbatches per pipeline */
	pt_chunk_info *chunk; /* [rank * chunks + c] */
	int *holder;	      /* [pipe * nstages + stage] -> rank * chunks + c, -1 if none */
	pt_rank_plan *rank;   /* [ranks] */
	void *block_;	      /* private: pt_plan_reserve's allocation */
	size_t block_size_;
} pt_plan;

/*
 * Generate the plan of p->sched for p->ranks ranks and p->microbatches, then
 * validate it. An impossible parameter (DualPipe with an odd rank count, too
 * few microbatches, …) is logged naming the rule and returns PT_EINVAL.
 */
int pt_plan_create(const pt_plan_params *p, pt_plan **out);
void pt_plan_destroy(pt_plan *plan);

/* Read a torch.distributed.pipelining action CSV (compute_only or
 * compute_comms; comm actions are re-derived), attach messages of `bytes`, and
 * validate. Errors name the file, line and cell. */
int pt_plan_load_csv(const char *path, int64_t bytes, pt_plan **out);

/* Write the plan's compute actions as a torch action CSV. PT_ENOTSUP (logged)
 * for schedules that format cannot express (DualPipe: every stage on two ranks). */
int pt_plan_write_csv(const pt_plan *plan, FILE *out);

/*
 * Check a plan: each (pipeline, stage, microbatch) has exactly one F and one
 * B (or one I and one W); every op's inputs are produced or received earlier;
 * each neighbour pair's sends and receives match one-to-one in posting order;
 * a rendezvous simulation finishes. First, every chunk must sit at a
 * (pipeline, stage) of the plan, each held by one chunk, and every op must be
 * a plan kind (F, B, I, W, FB, SEND, RECV) naming an existing chunk,
 * microbatch and peer: a plan read from a file is checked before anything
 * indexes by it. Logs the first problem, naming the rank, the step and the
 * op (or the chunk), and returns PT_EPLAN; 0 when the plan is sound.
 */
int pt_plan_validate(const pt_plan *plan);

/* The layout check and checks (1) and (2) of pt_plan_validate on a plan
 * held elsewhere, each rank read once: layout gives the ranks, chunks and
 * microbatches (no ops needed), and is checked first as pt_plan_validate
 * does; get(arg, r, &ops, &n) hands over rank r's ops, malloc'ed, freed
 * here after use (0, or an error code that stops the checks). Each op's
 * kind, chunk, microbatch, peer and payload are checked before anything is
 * indexed by them, with pt_plan_validate's messages. A sound plan
 * passes both alike; of a plan with several faults, the one named may not
 * be the one pt_plan_validate names first (here (1)'s counts are judged
 * after every rank's (2)). PT_EPLAN (logged); get's errors; PT_ENOMEM. */
int pt_plan_check_ranks(const pt_plan *layout, int (*get)(void *arg, int r, pt_op **ops, size_t *n), void *arg);

enum pt_print_flags {
	PT_PRINT_COMMS = 1 << 0, /* show communication batches: [sA0:0>1 rA1:0<1] */
	PT_PRINT_STEPS = 1 << 1, /* show schedule steps: S1: … */
};

/* Print one line per rank, "r<rank>: <op> <op> …", in the spec notation. */
void pt_plan_print(const pt_plan *plan, FILE *out, unsigned flags);

/* Which receive each compute op of rank r consumes: need[i * 2 + k] is the
 * plan index of the RECV that op i's k-th input comes from (k = 0: the
 * activation of F / FB's forward half, or the gradient of B / I; k = 1: the
 * gradient of FB's backward half), -1 when that input is local or absent.
 * An input is the earliest not yet consumed RECV of the same payload, chunk
 * and microbatch. need holds 2 * plan->rank[r].n entries. PT_ENOMEM. */
int pt_plan_inputs(const pt_plan *plan, int r, int32_t *need);

/* pt_plan_inputs one step at a time, for a pass that walks a rank's ops
 * anyway (the sim's). Init, then call pt_inputs_step for steps 0, 1, … of
 * one rank in order: a RECV opens, a compute op's need[0..1] gets the
 * receives it consumes (-1: none), anything else gets -1s. PT_ENOMEM.
 * Fini frees; the state is the caller's storage. */
typedef struct pt_inputs {
	struct pt_open_recv *open;
	size_t n, cap;
} pt_inputs;
void pt_inputs_init(pt_inputs *in);
int pt_inputs_step(pt_inputs *in, const pt_op *ops, size_t i, int32_t need[2]);
void pt_inputs_fini(pt_inputs *in);

/* Number of compute ops and of messages (SEND + RECV) over all ranks. */
size_t pt_plan_count(const pt_plan *plan, int comm);

/* The chunk info of (rank, chunk). */
static inline const pt_chunk_info *pt_plan_chunk(const pt_plan *p, int rank, int chunk)
{
	return &p->chunk[rank * p->chunks + chunk];
}

/* The chunk next to (rank, chunk) along its pipeline, dstage stages on
 * (-1: the one feeding it, +1: the one it feeds), as its holder index
 * rank * chunks + chunk; -1 past either end of the pipeline. */
static inline int pt_plan_neighbour(const pt_plan *p, int rank, int chunk, int dstage)
{
	const pt_chunk_info *ci = pt_plan_chunk(p, rank, chunk);
	int s = ci->stage + dstage;
	if (s < 0 || s >= p->nstages)
		return -1;
	return p->holder[ci->pipe * p->nstages + s];
}

/* ------------------------------------------------ plan building (internal) */

/* Allocate an empty plan with its chunk layout unset (generators fill it). */
int pt_plan_alloc(int sched, int ranks, int chunks, int npipes, int nstages, pt_plan **out);
/* Place (rank, chunk) at (pipe, stage); fills chunk[] and holder[]. */
void pt_plan_place(pt_plan *p, int rank, int chunk, int pipe, int stage);
/* Append an op to a rank (PT_ENOMEM). */
int pt_plan_push(pt_plan *p, int rank, const pt_op *op);
/* Room for cap[r] ops on each rank r, all in one allocation: a generator
 * that knows its sizes spares the faulting in of one large allocation per
 * rank. Only once, on a plan with no ops yet (PT_EINVAL the second time);
 * pt_plan_push still grows a rank past its room. PT_ENOMEM. */
int pt_plan_reserve(pt_plan *p, const size_t *cap);
/* Large, short-lived arrays (plans' ops, the sim's steps): mapped directly,
 * on huge pages where the kernel allows; pt_big_free(NULL, …) does nothing. */
void *pt_big_alloc(size_t size);
void pt_big_free(void *mem, size_t size);
/* Attach SEND/RECV batches to a plan of compute ops only (comm.c): sends
 * after the producing op, receives before the consuming op, receives pulled
 * earlier where needed so each pair matches in posting order. */
int pt_plan_attach_comms(pt_plan *p, int64_t bytes);

/* The generators (compute ops and, for DualPipe, its exact comm batches). */
int pt_gen_dualpipe(const pt_plan_params *p, pt_plan **out);
int pt_gen_baseline(const pt_plan_params *p, pt_plan **out);

/* ------------------------------------------------------------ cost model */

typedef struct pt_cost {
	int64_t f, b, i, w, fb; /* ns per op */
	int64_t latency;	/* ns per message */
	double bandwidth;	/* bytes per second; 0 means unlimited */
} pt_cost;

/* F=1ms, B=2ms, I=1ms, W=1ms, FB=3ms (DualPipe's README convention), free links. */
pt_cost pt_cost_default(void);

/* Duration of a compute op of this kind. */
int64_t pt_cost_op(const pt_cost *c, int kind);

/* Time one message of `bytes` occupies its link, and its latency on top. */
int64_t pt_cost_wire(const pt_cost *c, int64_t bytes);

/* "F=1ms,B=2ms,I=1ms,W=1ms,FB=3ms" and the link, for meta. */
void pt_cost_format(const pt_cost *c, char *buf, size_t size);

/* ------------------------------------------------------------ sim backend */

enum pt_comm_mode {
	PT_COMM_FLUSH = 0, /* post each batch before the next compute op, wait for all of it */
	PT_COMM_OVERLAP,   /* post receives one op early, wait only for inputs; sends never block */
};
const char *pt_comm_name(int mode);
int pt_comm_parse(const char *name);

/* Times of one plan step as simulated. For compute ops [start, end) is the op;
 * for messages, posted is when the rank posted it and [start, end) the
 * transfer (both ranks of a pair record the same interval); a receive
 * completes at max(posted, end). */
typedef struct pt_sim_step {
	int64_t posted, start, end;
} pt_sim_step;

typedef struct pt_sim {
	const pt_plan *plan;
	pt_sim_step **step; /* [rank][step] */
	int64_t makespan;
	void *block_;	     /* private: the one allocation behind step[][] */
	size_t block_size_;
} pt_sim;

/*
 * Execute plan in virtual time under cost and mode. Deterministic. A plan
 * that cannot finish (deadlock) is logged naming each blocked rank's op and
 * returns PT_EPLAN. *out is set only on success.
 */
int pt_sim_run(const pt_plan *plan, const pt_cost *cost, int mode, pt_sim **out);
/* The same, with strict rendezvous when strict is set: a transfer waits for
 * its receive to be posted as well (sends block like large NCCL sends). */
int pt_sim_run_ex(const pt_plan *plan, const pt_cost *cost, int mode, int strict, pt_sim **out);
void pt_sim_destroy(pt_sim *sim);

/* Record a finished simulation into rec: streams, events. */
int pt_sim_emit(const pt_sim *sim, pt_rec *rec);

/*
 * pt_sim_run (not strict) on the plan a trace holds, read rank by rank as the
 * walk needs it (replay.c), keeping totals only: *lo and *hi get the
 * earliest start and the latest end of any op or transfer (INT64_MAX and
 * INT64_MIN for an empty plan), busy[r] (when not NULL; layout->ranks
 * entries) the sum of rank r's compute op durations. layout: the plan's
 * ranks and chunk placement, without ops; the plan should have passed
 * pt_plan_check_ranks. Memory grows with the ranks and the messages in
 * flight, not with the plan. PT_EPLAN (logged) for a deadlock or messages
 * whose two sides do not pair up (by sender, receiver and seq) or disagree
 * on what they carry; reader errors; PT_ENOMEM.
 */
int pt_sim_replay(pt_trace *t, const pt_plan *layout, const pt_cost *cost, int mode, int64_t *busy, int64_t *lo,
		  int64_t *hi);
/* Ops pt_sim_replay holds per rank at first (0: about 4 MB over the ranks).
 * Tests shrink it to walk windows of an op or two; set it before the call. */
extern size_t pt_replay_window_;

/* ----------------------------------------------- calibration, prediction */

/* How a cost model was measured (pt_cost_calibrate). */
typedef struct pt_calib {
	int64_t nops[PT_OP_FB + 1]; /* ops measured per kind ([PT_OP_F] .. [PT_OP_FB]) */
	unsigned derived;	    /* bit (1 << kind): derived from other kinds, not measured */
	unsigned missing;	    /* bit (1 << kind): neither measured nor derivable (cost -1) */
	int64_t nmsgs;		    /* messages the link fit used */
	int nsizes;		    /* distinct message sizes among them */
	int64_t nqueued;	    /* transfers seen waiting for their link (one size only) */
	int64_t msg_bytes, msg_dur; /* one size only: that size and its median duration */
	const char *link_method;    /* static text: how latency and bandwidth were fitted */
} pt_calib;

/*
 * Measure a cost model on a recorded run, through the reader: each compute
 * kind's median op duration; kinds not executed derived where sound (B = I+W
 * or FB-F, I = B-W or B/2, W = B-I or B/2, F = FB-B, FB = F+B) or set to -1
 * and flagged missing; the link from the messages' transfers (each message
 * once, from its sender's row): with one message size, the wire time is the
 * median spacing of transfers that queued behind another on their link and
 * the rest of the median duration is latency (all latency when none
 * queued); with several sizes, a least-squares line through each size's
 * median duration (intercept latency, slope 1/bandwidth). PT_EINVAL (logged,
 * naming the file) when the trace has no compute ops; PT_ENOMEM; reader errors.
 */
int pt_cost_calibrate(pt_trace *t, pt_cost *cost, pt_calib *info);

/*
 * The same calibration fed by a caller that reads the trace anyway (stats'
 * metrics sweep), so that the trace is not read again for it. Create, hand
 * pt_calib_event every event of every rank the trace holds in ops and comms
 * (others are ignored), each rank's in time order as a cursor gives them,
 * then pt_calib_finish: what pt_cost_calibrate gives on the same trace, with
 * its errors; t is read again only when the durations are too varied to
 * count exactly (more than pt_calib_cap_ distinct values). pt_calib_event
 * returns 0 or PT_ENOMEM, which finish returns too. One thread at a time;
 * destroy(NULL) is a no-op.
 */
typedef struct pt_calibrator pt_calibrator;
int pt_calib_create(pt_calibrator **out);
int pt_calib_event(pt_calibrator *c, const pt_event *ev);
int pt_calib_finish(pt_calibrator *c, pt_trace *t, pt_cost *cost, pt_calib *info);
void pt_calib_destroy(pt_calibrator *c);

/* Distinct (group, value) counts calibration keeps exactly before it counts
 * buckets and reads the rows again for its medians (65536; tests lower it to
 * walk that path on small traces). Not thread-safe to change. */
extern size_t pt_calib_cap_;

/* The compute kinds a plan uses: bit (1 << kind). */
unsigned pt_plan_kinds(const pt_plan *plan);

/*
 * Rebuild the plan a trace recorded (meta, chunks and plan tables), and
 * validate it. PT_ENOTSUP (logged) when the trace holds no plan or does not
 * describe its layout; PT_ECORRUPT (logged) when the layout cannot hold (a
 * chunk at no stage of the plan, stages that do not add up to the chunks) or
 * an op names a microbatch past the run's count; PT_EPLAN when the stored
 * plan is invalid (any kind but F, B, I, W, FB, SEND, RECV; a chunk, a
 * microbatch or a peer out of range; …). Every failure names the file.
 */
int pt_plan_from_trace(pt_trace *t, pt_plan **out);

/* What the sim predicts for a recorded run (pt_predict). */
typedef struct pt_prediction {
	pt_cost cost;	 /* calibrated on the trace */
	pt_calib calib;
	int comm_mode;	 /* the trace's */
	int64_t makespan; /* the predicted window */
	int nranks;
	int64_t *busy, *bubble; /* [rank], as docs/metrics.md defines them */
	double bubble_ratio;
} pt_prediction;

/*
 * Calibrate costs on the trace, re-simulate its own plan in its
 * communication mode, and measure the result. The plan is checked as
 * pt_plan_from_trace does but never held whole: it is read rank by rank
 * (pt_plan_check_ranks, pt_sim_replay), so memory does not grow with it.
 * PT_ENOTSUP (logged) when the trace has no plan, or its plan uses a kind
 * it recorded no op of; the errors of pt_cost_calibrate,
 * pt_plan_from_trace and pt_sim_replay otherwise.
 */
int pt_predict(pt_trace *t, pt_prediction **out);

/*
 * What pt_predict's first read of the plan learns (each rank's largest
 * microbatch per chunk, its kinds and length, its first microbatch past the
 * run's count), gathered by a caller that reads the plan anyway (stats' idle
 * breakdown). Create for t, hand pt_plan_digest_ops each rank's ops in step
 * order from step 0, in blocks of any size; a rank never handed over is read
 * from the trace as before. create: 0 or PT_ENOMEM; destroy(NULL) is a no-op.
 */
typedef struct pt_plan_digest pt_plan_digest;
int pt_plan_digest_create(pt_trace *t, pt_plan_digest **out);
void pt_plan_digest_ops(pt_plan_digest *d, int rank, const pt_op *ops, size_t n);
void pt_plan_digest_destroy(pt_plan_digest *d);

/* pt_predict with costs calibrated from cal, fed with the trace's events
 * by the caller (pt_calib_event), instead of a read of its own, and the
 * plan's first read replaced by dg where it saw a rank; both stay the
 * caller's, either may be NULL (both: pt_predict). Same results, same
 * errors. */
int pt_predict_fed(pt_trace *t, pt_calibrator *cal, const pt_plan_digest *dg, pt_prediction **out);
void pt_prediction_destroy(pt_prediction *pr);

/* -------------------------------------------------------------- theory */

/*
 * The schedule's analytic per-rank bubble (ns, the spec tables' formulas
 * under cost) and peak in-flight chunk activations. -1 where no formula
 * applies (e.g. ZB-H1 with W > F, plans read from CSV). *formula gets a
 * static text such as "(P/2-1)(FB+B-3W)" or NULL.
 */
void pt_theory(const pt_plan *plan, const pt_cost *cost, int rank, int64_t *bubble_ns, int *peak_act,
	       const char **formula);

/* ----------------------------------------------------- recording a run */

/* What pt_run_begin writes to meta besides the plan. */
typedef struct pt_run_info {
	const char *backend;
	int comm_mode;
	const pt_cost *cost;
	int64_t bytes;
	const char *plan_source; /* "generated" or the CSV path */
	const uint8_t *local;	 /* the ranks this trace holds (one process's under mpirun); NULL: all */
	const int *device;	 /* [ranks] GPU of each rank; NULL: none (-1) */
} pt_run_info;

/* Write the plan, its layout, the ranks (with theory) and the run's
 * parameters into rec, before any event. */
int pt_run_begin(pt_rec *rec, const pt_plan *plan, const pt_run_info *info);

#endif
