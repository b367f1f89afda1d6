/*
 * runner/xfer_cuda.c — the cuda backend's copy transport: messages as
 * device-to-device copies on the communication streams, for every rank of
 * one process sharing one GPU (where NCCL cannot run two ranks on one
 * device), and for one process over several GPUs without NCCL (peer
 * copies). Sends and receives match by posting order per (sender,
 * receiver) pair, as NCCL's do; whichever side posts second queues the copy
 * on the receiver's comm stream, after the sender's comm stream reached the
 * send (its start event) and the receiver's reached the receive; the
 * sender's comm stream then waits for the copy, so the send ends with it.
 * A wait blocks the rank's thread only until the copy is queued, then
 * orders the compute stream after it. Also NCCL's stand-in in a build
 * without NCCL.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cuda_priv.h"
#include "libtrace/grow.h"

struct pair {
	pt_msg **q; /* unmatched messages of one side, FIFO */
	int head, tail;
	size_t cap;
	int side; /* PT_OP_SEND or PT_OP_RECV: which side q holds */
};

struct copyx {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int aborted;
	int P;
	struct pair *pairs; /* [sender * P + receiver] */
};

static int setdev(int dev)
{
	return pt_cu_check(cudaSetDevice(dev), "cudaSetDevice");
}

/* Queue the copy of s into r; under the lock, from either side's thread. */
static int issue(pt_cuda *c, pt_msg *s, pt_msg *r)
{
	struct pt_cuda_rank *rs = &c->rk[s->rank], *rr = &c->rk[r->rank];
	int err = setdev(rr->dev);
	if (!err)
		err = pt_cu_check(cudaStreamWaitEvent(rr->comm, pt_cuda_ev(c, s, 0), 0), "cudaStreamWaitEvent");
	if (!err)
		err = pt_cu_check(cudaEventRecord(pt_cuda_ev(c, r, 0), rr->comm), "cudaEventRecord");
	if (!err)
		err = rs->dev == rr->dev
			  ? pt_cu_check(cudaMemcpyAsync(r->buf, s->buf, r->bytes, cudaMemcpyDeviceToDevice, rr->comm),
					"cudaMemcpyAsync")
			  : pt_cu_check(cudaMemcpyPeerAsync(r->buf, rr->dev, s->buf, rs->dev, r->bytes, rr->comm),
					"cudaMemcpyPeerAsync");
	if (!err)
		err = pt_cu_check(cudaEventRecord(pt_cuda_ev(c, r, 1), rr->comm), "cudaEventRecord");
	if (!err)
		err = setdev(rs->dev);
	if (!err)
		err = pt_cu_check(cudaStreamWaitEvent(rs->comm, pt_cuda_ev(c, r, 1), 0), "cudaStreamWaitEvent");
	if (!err)
		err = pt_cu_check(cudaEventRecord(pt_cuda_ev(c, s, 1), rs->comm), "cudaEventRecord");
	if (!err) {
		pt_cuda_issued(c, s);
		pt_cuda_issued(c, r);
	}
	return err;
}

static int copy_begin(pt_cuda *c)
{
	struct copyx *x = c->xstate;
	pthread_mutex_lock(&x->mu);
	x->aborted = 0;
	for (int i = 0; i < x->P * x->P; i++)
		x->pairs[i].head = x->pairs[i].tail = 0;
	pthread_mutex_unlock(&x->mu);
	return 0;
}

static int copy_post(pt_cuda *c, pt_msg *m)
{
	struct copyx *x = c->xstate;
	const int send = m->op->kind == PT_OP_SEND, peer = m->op->peer;
	if (peer < 0 || peer >= x->P)
		return pt_logerr(PT_EPLAN, "rank %d: a message to rank %d, outside the plan", m->rank, peer);
	/* its buffer as the compute queued so far leaves it; the send's start
	 * event marks that point on its comm stream */
	int err = pt_cuda_comm_after_compute(c, m->rank);
	if (!err)
		err = pt_cu_check(cudaEventRecord(pt_cuda_ev(c, m, 0), c->rk[m->rank].comm), "cudaEventRecord");
	if (err)
		return err;
	struct pair *p = &x->pairs[send ? m->rank * x->P + peer : peer * x->P + m->rank];
	pthread_mutex_lock(&x->mu);
	if (p->head < p->tail && p->side != m->op->kind) {
		pt_msg *other = p->q[p->head++];
		err = send ? issue(c, m, other) : issue(c, other, m);
		pthread_cond_broadcast(&x->cv);
	} else {
		if (p->head == p->tail)
			p->head = p->tail = 0;
		err = pt_grow(&p->q, &p->cap, (size_t)p->tail + 1, sizeof *p->q);
		if (!err) {
			p->side = m->op->kind;
			p->q[p->tail++] = m;
		}
	}
	pthread_mutex_unlock(&x->mu);
	if (!err)
		err = setdev(c->rk[m->rank].dev);
	return err;
}

static int copy_wait(pt_cuda *c, pt_msg *m)
{
	struct copyx *x = c->xstate;
	struct pt_cuda_rank *r = &c->rk[m->rank];
	pthread_mutex_lock(&x->mu);
	while (!atomic_load_explicit(&r->issued[m->step], memory_order_acquire) && !x->aborted)
		pthread_cond_wait(&x->cv, &x->mu);
	int aborted = x->aborted;
	pthread_mutex_unlock(&x->mu);
	if (aborted)
		return PT_EIO;
	return pt_cuda_compute_after(c, m);
}

static int copy_flush(pt_cuda *c, int rank)
{
	return (void)c, (void)rank, 0;
}

static void copy_abort(pt_cuda *c)
{
	struct copyx *x = c->xstate;
	pthread_mutex_lock(&x->mu);
	x->aborted = 1;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
}

static void copy_end(pt_cuda *c)
{
	(void)c;
}

static void copy_destroy(pt_cuda *c)
{
	struct copyx *x = c->xstate;
	if (!x)
		return;
	for (int i = 0; x->pairs && i < x->P * x->P; i++)
		free(x->pairs[i].q);
	free(x->pairs);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
	free(x);
	c->xstate = NULL;
}

static const struct pt_cuda_xfer copy_xfer = {
    .name = "copy",
    .begin = copy_begin,
    .post = copy_post,
    .wait = copy_wait,
    .flush = copy_flush,
    .abort = copy_abort,
    .end = copy_end,
    .destroy = copy_destroy,
};

int pt_xfer_copy_init(pt_cuda *c)
{
	if (c->map->topo == PT_TOPO_MPI)
		return pt_logerr(PT_ENOTSUP, "cuda backend: under mpirun messages need NCCL");
	struct copyx *x = calloc(1, sizeof *x);
	if (!x)
		return PT_ENOMEM;
	x->P = c->plan->ranks;
	x->pairs = calloc((size_t)x->P * x->P, sizeof *x->pairs);
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	c->xstate = x;
	c->xfer = &copy_xfer;
	if (!x->pairs)
		return PT_ENOMEM;
	/* peer access where the devices allow it (else copies go through the host) */
	for (int a = 0; a < c->plan->ranks; a++)
		for (int b = 0; b < c->plan->ranks; b++) {
			int da = c->map->device[a], db = c->map->device[b], can = 0;
			if (da >= 0 && db >= 0 && da != db && cudaDeviceCanAccessPeer(&can, db, da) == cudaSuccess &&
			    can && cudaSetDevice(db) == cudaSuccess)
				(void)cudaDeviceEnablePeerAccess(da, 0), (void)cudaGetLastError();
		}
	return 0;
}

#ifndef PT_HAVE_NCCL
int pt_xfer_nccl_init(pt_cuda *c)
{
	(void)c;
	return pt_logerr(PT_ENOTSUP, "cuda backend: one process per GPU under mpirun needs NCCL, and this pipetrace "
				     "was built without it (NO_NCCL=1 or no libnccl; `pipetrace --version`)");
}
#endif
