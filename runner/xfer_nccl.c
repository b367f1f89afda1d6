/*
 * runner/xfer_nccl.c — the cuda backend's NCCL transport: every message of a
 * comm batch goes out in one ncclGroupStart/ncclGroupEnd of ncclSend and
 * ncclRecv on the rank's communication stream, as DeepSeek's DualPipe
 * batches its isend/irecv. A batch is held back until its last message is
 * posted (in overlap mode the executor posts receives one op early): a
 * group of receives alone, queued ahead of the sends of the same exchange,
 * would hold both ranks' comm streams waiting for sends queued behind them.
 * Before a group the comm stream waits for the compute queued so far (the
 * buffers), start events are recorded, and after it the end events, which
 * the compute stream waits for where the executor waits.
 *
 * Communicators: one process driving all the GPUs makes one per rank with
 * ncclCommInitAll; one process per GPU under mpirun gets process 0's
 * unique id through MPI (cuda_mpi.c) and calls ncclCommInitRank. Built
 * only with NCCL.
 */
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_priv.h"

static int nccl_check(ncclResult_t r, const char *what)
{
	if (r == ncclSuccess)
		return 0;
	return pt_logerr(PT_EIO, "cuda backend: %s failed: %s", what, ncclGetErrorString(r));
}

struct ncclx {
	atomic_int aborted;
};

static int nccl_flush(pt_cuda *c, int rank)
{
	struct pt_cuda_rank *r = &c->rk[rank];
	if (!r->ngroup)
		return 0;
	int err = pt_cuda_comm_after_compute(c, rank);
	for (int i = 0; i < r->ngroup && !err; i++)
		err = pt_cu_check(cudaEventRecord(pt_cuda_ev(c, r->group[i], 0), r->comm), "cudaEventRecord");
	if (err)
		return err;
	ncclComm_t comm = r->nccl;
	err = nccl_check(ncclGroupStart(), "ncclGroupStart");
	for (int i = 0; i < r->ngroup && !err; i++) {
		pt_msg *m = r->group[i];
		if (m->op->kind == PT_OP_SEND)
			err = nccl_check(ncclSend(m->buf, m->bytes, ncclChar, m->op->peer, comm, r->comm), "ncclSend");
		else
			err = nccl_check(ncclRecv(m->buf, m->bytes, ncclChar, m->op->peer, comm, r->comm), "ncclRecv");
	}
	int end = nccl_check(ncclGroupEnd(), "ncclGroupEnd");
	if (!err)
		err = end;
	for (int i = 0; i < r->ngroup && !err; i++)
		err = pt_cu_check(cudaEventRecord(pt_cuda_ev(c, r->group[i], 1), r->comm), "cudaEventRecord");
	for (int i = 0; i < r->ngroup && !err; i++)
		pt_cuda_issued(c, r->group[i]);
	r->ngroup = 0;
	return err;
}

static int nccl_begin(pt_cuda *c)
{
	struct ncclx *x = c->xstate;
	return atomic_load(&x->aborted)
		   ? pt_logerr(PT_EIO, "cuda backend: NCCL was aborted after a failed step; start a new run")
		   : 0;
}

static int nccl_post(pt_cuda *c, pt_msg *m)
{
	struct pt_cuda_rank *r = &c->rk[m->rank];
	r->group[r->ngroup++] = m;
	int b = m->op->batch;
	if (b >= 0 && b < r->nbatch && --r->batch_left[b] > 0)
		return 0; /* the rest of its batch is still to come */
	return nccl_flush(c, m->rank);
}

static int nccl_wait(pt_cuda *c, pt_msg *m)
{
	struct ncclx *x = c->xstate;
	if (atomic_load(&x->aborted))
		return PT_EIO;
	if (!atomic_load_explicit(&c->rk[m->rank].issued[m->step], memory_order_acquire)) {
		int err = nccl_flush(c, m->rank); /* a batch cut short: go with what there is */
		if (err)
			return err;
	}
	return pt_cuda_compute_after(c, m);
}

/* A rank failed: its peers' NCCL kernels would wait for it forever. */
static void nccl_abort(pt_cuda *c)
{
	struct ncclx *x = c->xstate;
	if (atomic_exchange(&x->aborted, 1))
		return;
	for (int k = 0; k < c->plan->ranks; k++)
		if (c->map->local[k] && c->rk[k].nccl)
			ncclCommAbort(c->rk[k].nccl), c->rk[k].nccl = NULL;
}

static void nccl_end(pt_cuda *c)
{
	(void)c;
}

static void nccl_destroy(pt_cuda *c)
{
	for (int k = 0; k < c->plan->ranks; k++)
		if (c->map->local[k] && c->rk[k].nccl) {
			cudaSetDevice(c->rk[k].dev);
			ncclCommDestroy(c->rk[k].nccl);
			c->rk[k].nccl = NULL;
		}
	free(c->xstate);
	c->xstate = NULL;
}

static const struct pt_cuda_xfer nccl_xfer = {
    .name = "nccl",
    .begin = nccl_begin,
    .post = nccl_post,
    .wait = nccl_wait,
    .flush = nccl_flush,
    .abort = nccl_abort,
    .end = nccl_end,
    .destroy = nccl_destroy,
};

int pt_xfer_nccl_init(pt_cuda *c)
{
	const int P = c->plan->ranks;
	struct ncclx *x = calloc(1, sizeof *x);
	if (!x)
		return PT_ENOMEM;
	c->xstate = x;
	c->xfer = &nccl_xfer;
	int err = 0;
	if (c->map->topo == PT_TOPO_MPI) {
		ncclUniqueId id;
		memset(&id, 0, sizeof id);
		if (c->procs->rank == 0)
			err = nccl_check(ncclGetUniqueId(&id), "ncclGetUniqueId");
		err = pt_procs_agree(c->procs, err);
		if (!err)
			err = pt_procs_bcast(c->procs, &id, sizeof id);
		int me = c->procs->rank;
		ncclComm_t comm = NULL;
		if (!err && !(err = pt_cu_check(cudaSetDevice(c->rk[me].dev), "cudaSetDevice")))
			err = nccl_check(ncclCommInitRank(&comm, P, id, me), "ncclCommInitRank");
		c->rk[me].nccl = comm;
		return pt_procs_agree(c->procs, err);
	}
	ncclComm_t *comms = calloc((size_t)P, sizeof *comms);
	if (!comms)
		return PT_ENOMEM;
	err = nccl_check(ncclCommInitAll(comms, P, c->map->device), "ncclCommInitAll");
	for (int k = 0; k < P && !err; k++)
		c->rk[k].nccl = comms[k];
	free(comms);
	return err;
}
