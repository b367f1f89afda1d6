/*
 * exporters/idle.h — private to metrics: the idle breakdown of one rank
 * (docs/metrics.md, "Idle breakdown"). metrics.c's sweep hands over the
 * rank's messages and the gaps of its compute union as it meets them;
 * idle.c then says, from the plan, in which phase each gap lies and what it
 * waited for. The rank's messages ride on the sweep's own cursor, so the
 * breakdown costs one read of the plan and, only where a transfer may have
 * queued behind another, of the sender's messages.
 */
#ifndef PT_EXPORTERS_IDLE_H
#define PT_EXPORTERS_IDLE_H

#include "exporters.h"

struct idle_recv;
struct idle_op;
struct carry;
struct idle_gap;

/* One rank's plan, its messages' times by step, and the gaps seen. */
struct idle_rank {
	int have;	      /* the rank has a plan: a breakdown is possible */
	int flush;	      /* the run waited for whole batches */
	int rank;
	struct idle_op *ops;  /* the plan, what the breakdown needs of it */
	size_t n, capops;     /* plan steps */
	int64_t *sent, *done; /* [step]: messages' times, then compute steps' gates; -1 unknown */
	size_t capsent, capdone;
	struct idle_recv *rv; /* the rank's receives as recorded */
	size_t nrv, caprv;
	struct idle_gap *gap; /* gaps inside the rank's span, and the one before it */
	size_t ngap, capgap;
	struct carry *cv;     /* scratch: the plan's receives by what they carry */
	int64_t *seq, *posted; /* scratch: queued receives' seqs, their senders' times */
	size_t capcv, capseq, capposted;
	int last_phase;	      /* phase of the last planned compute op the sweep passed */
	int err;	      /* the first allocation failure */
};

/* Load rank's plan (flush: 1 when the run waited for whole batches, 0 when
 * compute waited only for its inputs), handing it to feed's plan callback
 * (feed may be NULL). ir is zeroed before the first rank and keeps its
 * buffers from rank to rank; idle_release frees them after the last. A rank without a plan gives
 * ir->have = 0 and no error; the other calls then do nothing. */
int idle_prepare(pt_trace *t, int rank, int flush, const pt_metrics_feed *feed, struct idle_rank *ir);

/* The sweep met a message of the rank. */
void idle_message(struct idle_rank *ir, const pt_event *ev);

/* The sweep met a compute event; when it starts a gap's end (the compute
 * union was empty on [a, ev->start_ns), a < ev->start_ns), gap is set and a
 * is its start; for the rank's first compute event, first is set. */
void idle_compute(struct idle_rank *ir, const pt_event *ev, int gap, int64_t a, int first);

/* After the sweep: find when each awaited message was sent (reading a
 * sender's messages only where a transfer may have queued), attribute the
 * gaps to m, and keep the first gap's gate in m for idle_finish. */
int idle_end_rank(pt_trace *t, struct idle_rank *ir, pt_rank_metrics *m);

/* Once the window is known: the gap before the rank's first compute event
 * and the tail after its last one. */
void idle_finish(pt_rank_metrics *m, int64_t win_start, int64_t win_end);

/* Free ir's buffers, after the last rank or an error; ir is zeroed. */
void idle_release(struct idle_rank *ir);

#endif
