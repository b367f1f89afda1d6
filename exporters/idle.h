/*
 * exporters/idle.h — private to metrics: the idle breakdown of one rank
 * (docs/metrics.md, "Idle breakdown"). metrics.c finds the gaps of the
 * compute union in its sweep; idle.c says, from the plan and the recorded
 * messages, in which phase each gap lies and what it waited for.
 */
#ifndef PT_EXPORTERS_IDLE_H
#define PT_EXPORTERS_IDLE_H

#include "exporters.h"

/* One rank's plan, reduced to what a gap needs: per step its phase and, for
 * compute steps, when the messages it waited for were sent and done. */
struct idle_rank {
	int have;	 /* the rank has a plan: a breakdown is possible */
	size_t n;	 /* plan steps */
	uint8_t *phase;	 /* [step] */
	int64_t *sent;	 /* [step] the latest time one of its awaited messages was sent; -1: none */
	int64_t *done;	 /* [step] the latest time one of them completed; -1: none */
	int last_phase;	 /* phase of the last planned compute op the sweep passed */
};

/* Load rank's plan and messages (flush: 1 when the run waited for whole
 * batches, 0 when compute waited only for its inputs). A rank without a plan
 * gives ir->have = 0 and no error. */
int idle_prepare(pt_trace *t, int rank, int flush, struct idle_rank *ir);
void idle_release(struct idle_rank *ir);

/* A compute event the sweep passed (keeps the phase of unplanned events). */
void idle_seen(struct idle_rank *ir, const pt_event *ev);

/* The compute union was empty on [a, b) and ev starts at b: add the gap to
 * m's breakdown. */
void idle_gap(struct idle_rank *ir, pt_rank_metrics *m, int64_t a, int64_t b, const pt_event *ev);

/* The same for the gap before the rank's first compute event, once the
 * window's start is known (the gate was kept in m by idle_gap's twin,
 * idle_lead). */
void idle_lead(struct idle_rank *ir, pt_rank_metrics *m, const pt_event *ev);
void idle_finish(pt_rank_metrics *m, int64_t win_start, int64_t win_end);

#endif
