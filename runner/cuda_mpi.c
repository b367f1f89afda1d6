/*
 * runner/cuda_mpi.c — the process group of a cuda run under mpirun, with
 * OpenMPI used for what NCCL cannot do by itself and for nothing else: the
 * bootstrap (process 0's NCCL unique id broadcast to all), agreeing on
 * failure, summing the check's gradients, and measuring each process's
 * clock against process 0's at start, which `pipetrace merge` applies
 * (meta clock.offset_ns). Messages of the run itself go through NCCL.
 * Built only with MPI; gpu_map.c has the group of one otherwise.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cuda.h"

static int launched(void)
{
	return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

static int mpi_fail(int rc, const char *what)
{
	char msg[MPI_MAX_ERROR_STRING] = "";
	int len = 0;
	MPI_Error_string(rc, msg, &len);
	return pt_logerr(PT_EIO, "MPI: %s failed: %s", what, msg);
}

int pt_procs_init(pt_procs *p)
{
	memset(p, 0, sizeof *p);
	p->size = 1;
	if (!launched())
		return 0; /* a plain process: no MPI_Init, which would look for a launcher */
	int inited = 0, rc;
	MPI_Initialized(&inited);
	if (!inited && (rc = MPI_Init(NULL, NULL)) != MPI_SUCCESS)
		return mpi_fail(rc, "MPI_Init");
	p->mpi = !inited;
	MPI_Comm_size(MPI_COMM_WORLD, &p->size);
	MPI_Comm_rank(MPI_COMM_WORLD, &p->rank);
	MPI_Comm node;
	if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, p->rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
		MPI_Comm_rank(node, &p->local_rank);
		MPI_Comm_free(&node);
	}
	return 0;
}

int pt_procs_bcast(pt_procs *p, void *buf, size_t bytes)
{
	if (p->size < 2)
		return 0;
	int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD);
	return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Bcast");
}

int pt_procs_sum(pt_procs *p, double *v, size_t n)
{
	if (p->size < 2)
		return 0;
	int rc = MPI_Allreduce(MPI_IN_PLACE, v, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
	return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Allreduce");
}

int pt_procs_agree(pt_procs *p, int err)
{
	if (p->size < 2)
		return err;
	int worst = err; /* PT_E* are negative: the minimum is a failure if any */
	if (MPI_Allreduce(&err, &worst, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
		return err ? err : PT_EIO;
	if (worst && !err)
		pt_log(PT_LOG_ERROR, "another process of the run failed (%s)", pt_strerror(worst));
	return worst;
}

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int pt_procs_clock_offset(pt_procs *p, int64_t *offset_ns, int64_t *rtt_ns)
{
	*offset_ns = *rtt_ns = 0;
	if (p->size < 2)
		return 0;
	enum { ROUNDS = 20 };
	for (int peer = 1; peer < p->size; peer++) {
		if (p->rank == 0) {
			for (int i = 0; i < ROUNDS; i++) {
				int64_t ping, now;
				MPI_Recv(&ping, 1, MPI_INT64_T, peer, 77, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				now = real_ns();
				MPI_Send(&now, 1, MPI_INT64_T, peer, 78, MPI_COMM_WORLD);
			}
		} else if (p->rank == peer) {
			int64_t best = INT64_MAX;
			for (int i = 0; i < ROUNDS; i++) {
				int64_t t1 = real_ns(), ref;
				MPI_Send(&t1, 1, MPI_INT64_T, 0, 77, MPI_COMM_WORLD);
				MPI_Recv(&ref, 1, MPI_INT64_T, 0, 78, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				int64_t t2 = real_ns();
				if (t2 - t1 < best) {
					best = t2 - t1;
					*offset_ns = t1 + (t2 - t1) / 2 - ref;
				}
			}
			*rtt_ns = best;
		}
	}
	int rc = MPI_Barrier(MPI_COMM_WORLD);
	return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Barrier");
}

void pt_procs_fini(pt_procs *p)
{
	if (p->mpi) {
		int done = 0;
		MPI_Finalized(&done);
		if (!done)
			MPI_Finalize();
	}
	p->mpi = 0;
}
