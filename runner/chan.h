/*
 * runner/chan.h — point-to-point channels between rank threads of one
 * process, matched by posting order per (sender, receiver) and progressed by
 * one communication thread per rank (chan.c). The cpu backend's transport;
 * any backend whose buffers are host memory can use it. Private to runner/.
 */
#ifndef PT_RUNNER_CHAN_H
#define PT_RUNNER_CHAN_H

#include "exec.h"

typedef struct pt_chan pt_chan;

/* Links for every (sender, receiver) pair plan's messages use, each sized
 * for the plan's messages of `bytes` each. PT_ENOMEM, PT_EPLAN (a peer out
 * of range). Threads start with pt_chan_start. */
int pt_chan_create(const pt_plan *plan, size_t bytes, pt_chan **out);

/* Start one communication thread per rank for a step, timing copies with
 * pt_exec_now(rec) (rec may be NULL); every link starts empty. */
int pt_chan_start(pt_chan *c, const pt_rec *rec);

/* Post m from its rank's thread: a SEND (m->rank -> op->peer) or a RECV
 * (op->peer -> m->rank), the next in posting order on its link. Never
 * blocks on the peer. PT_EPLAN when the link has no room (more messages
 * than the plan has). */
int pt_chan_post(pt_chan *c, pt_msg *m);

/* Block the calling rank thread until m is done: 0, or PT_EINVAL once
 * pt_chan_abort was called. */
int pt_chan_wait(pt_chan *c, pt_msg *m);

/* Wake every waiter; waits return PT_EINVAL until the next pt_chan_start. */
void pt_chan_abort(pt_chan *c);

/* Stop and join the communication threads (after every message completed,
 * or after an abort). */
void pt_chan_stop(pt_chan *c);

/* Most staging buffers (data sent before its receive was posted) alive at
 * once since creation. */
int pt_chan_staged_max(const pt_chan *c);

/* Stop the threads if running and free everything. NULL is a no-op. */
void pt_chan_destroy(pt_chan *c);

#endif
