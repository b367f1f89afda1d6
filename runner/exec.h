/*
 * runner/exec.h — the executor the real backends share (cpu now, cuda next):
 * it walks every rank's plan on a thread of its own with the semantics the
 * sim models (runner/sim.c) and records what happens through libtrace.
 *
 * The executor owns the plan-walking: which receive each compute op consumes,
 * flush mode (post each batch before the next compute op, wait for all of
 * it) and overlap mode (post receives one compute op early, wait only for
 * the inputs, never block on sends), the lifetime of each (chunk,
 * microbatch)'s activations, the FIFO of deferred weight-gradient groups
 * (spec/dualpipe.md §1.4), same-rank stage hand-offs, recording and
 * progress. A backend fills one table, pt_exec_ops: the math of a stage
 * (forward, backward, backward for inputs only, weight gradient), storage of
 * activations, and a transport that posts messages and waits for them. The
 * executor knows nothing about what a stage computes or how bytes move.
 * Private to runner/.
 */
#ifndef PT_RUNNER_EXEC_H
#define PT_RUNNER_EXEC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runner.h"

/* The buffers of one (chunk, microbatch) that messages read and write. */
enum pt_buf {
	PT_BUF_X = 0, /* the stage's input activation (RECV ACT writes it) */
	PT_BUF_Y,     /* its output activation (SEND ACT reads it) */
	PT_BUF_DY,    /* the gradient of its output (RECV GRAD writes it) */
	PT_BUF_DX,    /* the gradient of its input (SEND GRAD reads it) */
};

/* One chunk's share of a compute op, as the backend's math sees it. */
typedef struct pt_work {
	int rank, chunk;
	int pipe, stage; /* where the chunk sits (pt_plan_chunk) */
	int mb;		 /* microbatch within its pipeline, as in the plan */
	int gmb;	 /* global microbatch: pipe 0 first, then pipe 1 (DualPipe's second half) */
	int first, last; /* the pipeline's first stage (loads the input) / last (computes the loss) */
	void *slot;	 /* the backend's storage for (chunk, mb), from slot_create */
} pt_work;

/* A SEND or RECV in flight. The executor fills the first block and posts it;
 * the transport fills the times and sets done. */
typedef struct pt_msg {
	const pt_op *op; /* the plan's op */
	int rank, step;	 /* where it is in the plan */
	void *buf;	 /* SEND: read from; RECV: written to */
	size_t bytes;
	atomic_int *pending; /* SEND: decremented once buf may be reused, else NULL */
	int64_t posted;	     /* clock ticks (pt_exec_now) */
	int64_t start, end;  /* the transfer into / out of this rank's buffer */
	atomic_int done;
} pt_msg;

/* What a backend provides. `be` is its context; every call but slot_* and
 * the transport's begin/end comes from the rank's own thread. Calls return 0
 * or a PT_E* code (logged by the backend). */
typedef struct pt_exec_ops {
	/* Activation storage of one (chunk, microbatch): created on the rank's
	 * thread as the executor's pool grows, reused across microbatches. */
	int (*slot_create)(void *be, int rank, void **slot);
	void (*slot_destroy)(void *be, void *slot);
	void *(*slot_buf)(void *be, void *slot, enum pt_buf which);
	size_t msg_bytes; /* size of every activation / gradient message */

	/* F: the stage forward from PT_BUF_X (loaded from the data when
	 * w->first) into PT_BUF_Y; at the last stage also the loss and its
	 * gradient into PT_BUF_DY. */
	int (*forward)(void *be, const pt_work *w);
	/* B (defer = 0) or I (defer = 1): from PT_BUF_DY, the input gradient
	 * into PT_BUF_DX (not at the first stage); B also accumulates the weight
	 * gradients, I keeps what they need in the slot for weight_grad. */
	int (*backward)(void *be, const pt_work *w, int defer);
	/* W: the weight gradients an earlier backward(defer = 1) left. */
	int (*weight_grad)(void *be, const pt_work *w);
	/* Same-rank hand-off between two stages' buffers (DualPipeV's turn). */
	int (*copy)(void *be, int rank, void *dst, enum pt_buf dbuf, void *src, enum pt_buf sbuf);

	/* Transport. step_begin starts whatever progresses messages for one
	 * step, timing them with pt_exec_now(rec); step_end stops it after
	 * every message has completed. post never blocks; wait returns once m
	 * is done. Messages between two ranks match by posting order. */
	int (*step_begin)(void *be, const pt_rec *rec);
	void (*step_end)(void *be);
	int (*post)(void *be, pt_msg *m);
	int (*wait)(void *be, pt_msg *m);
	/* Make every wait, now and until the next step_begin, return
	 * nonzero: a rank failed and the others must not wait for it. */
	void (*abort)(void *be);

	/* Optional, for a backend whose compute runs asynchronously on a device
	 * (cuda); NULL for none. op_begin / op_end bracket the issue of compute
	 * op `step` on the rank's thread: the backend marks the op's device-side
	 * interval there and tags what it launches. */
	int (*op_begin)(void *be, int rank, int step, const pt_op *op);
	int (*op_end)(void *be, int rank, int step, const pt_op *op);
	/* With op_time set, the executor records nothing while the step runs
	 * (the issuing thread's clock says when work was queued, not when it
	 * ran): after step_end, which has waited for the device, op_time gives
	 * each compute op's device interval, and the transport has filled every
	 * message's start and end, all in CLOCK_MONOTONIC ns (messages' posted
	 * too, which the executor then stamps in ns). The executor records and
	 * times the ops from those. */
	int (*op_time)(void *be, int rank, int step, int64_t *start_ns, int64_t *end_ns);
} pt_exec_ops;

/* Planted bugs, for pipetrace's own tests of the numerical check only. */
enum pt_fault {
	PT_FAULT_NONE = 0,
	PT_FAULT_SKIP_W,  /* rank 0's first W pops its group and drops it */
	PT_FAULT_SWAP_MB, /* pipeline 0's first stage loads microbatches 0 and 1 swapped */
};

typedef struct pt_exec_step_opts {
	int mode;    /* PT_COMM_FLUSH or PT_COMM_OVERLAP */
	pt_rec *rec; /* record into this (its clock: PT_CLOCK_TSC), or NULL */
	int fault;   /* enum pt_fault */
	/* Called on the calling thread about every 100 ms while the step runs:
	 * compute ops done so far and in all. NULL for none. */
	void (*progress)(void *ctx, size_t done, size_t total);
	void *progress_ctx;
} pt_exec_step_opts;

/* What one step measured. */
typedef struct pt_exec_result {
	int64_t step_ns;   /* from the ranks' common start to the last rank's end */
	int64_t cpu_ns;	   /* CPU time the whole process used meanwhile (every thread) */
	pt_cost median;	   /* median duration per compute op kind (0 where none ran) */
	size_t events;	   /* events recorded (0 when not recording) */
	int slots;	   /* activation slots in the pool, all ranks */
	int slots_grown;   /* slots created during this step (the pool was short) */
} pt_exec_result;

typedef struct pt_exec pt_exec;

/* The clock messages and ops are timed with: the recorder's ticks when
 * recording (so they share pt_begin's timeline), CLOCK_MONOTONIC ns else. */
int64_t pt_exec_now(const pt_rec *rec);

/*
 * Prepare to run plan (validated) on a backend: per-rank state, input
 * mapping, and an activation pool sized for the plan's peak of live
 * (chunk, microbatch) pairs per rank. plan, ops and be are borrowed and must
 * outlive the executor. PT_ENOMEM or a backend's code.
 */
int pt_exec_create(const pt_plan *plan, const pt_exec_ops *ops, void *be, pt_exec **out);

/* The same for a process that runs only some of the plan's ranks (one
 * process per GPU under mpirun): local[r] nonzero for those; the other
 * ranks get no thread, no pool and no events. local is copied; NULL: all. */
int pt_exec_create_local(const pt_plan *plan, const pt_exec_ops *ops, void *be, const uint8_t *local,
			 pt_exec **out);

/* Slots per rank pt_exec_create allocates for plan (its peak of live
 * (chunk, microbatch) pairs, plus receives posted early); for memory
 * estimates before anything is allocated. Negative PT_E* on failure. */
int pt_exec_pool_size(const pt_plan *plan, int rank);

/*
 * Run one step of the plan: one thread per rank, the backend's transport
 * started for the step, every rank's ops in plan order under opts->mode.
 * When opts->rec is set, each compute op is recorded with pt_begin/pt_end on
 * PT_STREAM_MAIN and each message with pt_emit_ticks on PT_STREAM_P2P (step
 * = plan index, posted/start/end as the sim records them); the streams are
 * declared. The first failing op stops every rank and its code is returned.
 * Not reentrant: one step at a time per executor.
 */
int pt_exec_step(pt_exec *x, const pt_exec_step_opts *opts, pt_exec_result *res);

/* Free the executor and its pool (backend slots through slot_destroy). NULL ok. */
void pt_exec_destroy(pt_exec *x);

#endif
