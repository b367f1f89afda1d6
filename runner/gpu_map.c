/*
 * runner/gpu_map.c — where a cuda run's ranks execute: the rank -> device
 * map of the three topologies (every rank on one shared GPU, one process
 * over several GPUs, one process per GPU under mpirun), the per-process
 * database name, and the process group of a build without MPI (a group of
 * one that refuses to run under mpirun rather than run N copies of the
 * whole pipeline), and the numerics check's tolerance per dtype. Pure C, in
 * every build: the unit tests check it without a GPU. With MPI the group is
 * cuda_mpi.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cuda.h"

void pt_cuda_check_limits(int dtype, double *loss_limit, double *grad_limit)
{
	switch (dtype) {
	case PT_DTYPE_F64: *loss_limit = 1e-10, *grad_limit = 1e-20; break;
	case PT_DTYPE_BF16: *loss_limit = 5e-2, *grad_limit = 1e-2; break;
	default: *loss_limit = 1e-4, *grad_limit = 1e-8; break;
	}
}

const char *pt_topo_name(int topo)
{
	return topo == PT_TOPO_MPI ? "mpi" : topo == PT_TOPO_LOCAL ? "local" : "shared";
}

int pt_gpu_map_make(int ranks, int gpus, int visible, const pt_procs *procs, pt_gpu_map *out)
{
	memset(out, 0, sizeof *out);
	if (ranks < 1)
		return pt_logerr(PT_EINVAL, "cuda backend: a plan without ranks");
	if (visible < 1)
		return pt_logerr(PT_ENODEV, "cuda backend: no CUDA device is visible");
	int nprocs = procs ? procs->size : 1;
	if (nprocs > 1) {
		if (nprocs != ranks)
			return pt_logerr(PT_EINVAL,
					 "cuda backend: under mpirun every rank is a process of its own, but %d "
					 "processes run a plan of %d ranks (launch with -np %d)",
					 nprocs, ranks, ranks);
		if (gpus > 1)
			return pt_logerr(PT_EINVAL, "cuda backend: --gpus %d: under mpirun each process drives one GPU",
					 gpus);
		gpus = 1;
	} else {
		if (gpus == 0)
			gpus = ranks < visible ? ranks : visible;
		if (gpus > visible)
			return pt_logerr(PT_EINVAL, "cuda backend: --gpus %d, but this machine shows %d CUDA device%s",
					 gpus, visible, visible == 1 ? "" : "s");
		if (gpus > ranks)
			return pt_logerr(PT_EINVAL, "cuda backend: --gpus %d is more GPUs than the plan's %d ranks",
					 gpus, ranks);
	}
	out->ranks = ranks;
	out->ngpus = gpus;
	out->topo = nprocs > 1 ? PT_TOPO_MPI : gpus == 1 ? PT_TOPO_SHARED : PT_TOPO_LOCAL;
	out->device = malloc((size_t)ranks * sizeof *out->device);
	out->local = calloc((size_t)ranks, 1);
	if (!out->device || !out->local) {
		pt_gpu_map_free(out);
		return PT_ENOMEM;
	}
	for (int r = 0; r < ranks; r++) {
		if (nprocs > 1) {
			out->local[r] = r == procs->rank;
			out->device[r] = out->local[r] ? procs->local_rank % visible : -1;
		} else {
			out->local[r] = 1;
			out->device[r] = (int)((long)r * gpus / ranks);
		}
	}
	return 0;
}

void pt_gpu_map_free(pt_gpu_map *m)
{
	free(m->device);
	free(m->local);
	memset(m, 0, sizeof *m);
}

const char *pt_cuda_transport(const pt_gpu_map *map)
{
#ifdef PT_HAVE_NCCL
	if (map->topo == PT_TOPO_LOCAL && map->ngpus == map->ranks)
		return "nccl";
#endif
	return map->topo == PT_TOPO_MPI ? "nccl" : "copy";
}

int pt_rank_db_name(const char *path, int rank, char *buf, size_t size)
{
	size_t n = strlen(path);
	if (n > 3 && !strcmp(path + n - 3, ".db"))
		return snprintf(buf, size, "%.*s.rank%d.db", (int)(n - 3), path, rank);
	return snprintf(buf, size, "%s.rank%d", path, rank);
}

#ifndef PT_HAVE_MPI
/* No MPI in this build: one process. */
static int launched_size(void)
{
	const char *v[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
	for (int i = 0; i < 3; i++) {
		const char *s = getenv(v[i]);
		if (s && atoi(s) > 1)
			return atoi(s);
	}
	return 1;
}

int pt_procs_init(pt_procs *p)
{
	memset(p, 0, sizeof *p);
	p->size = 1;
	int n = launched_size();
	if (n > 1)
		return pt_logerr(PT_ENOTSUP,
				 "cuda backend: launched by mpirun as one of %d processes, but this pipetrace was "
				 "built without MPI (install libopenmpi-dev and rebuild; `pipetrace --version` lists "
				 "the features)",
				 n);
	return 0;
}
int pt_procs_bcast(pt_procs *p, void *buf, size_t bytes)
{
	return (void)p, (void)buf, (void)bytes, 0;
}
int pt_procs_sum(pt_procs *p, double *v, size_t n)
{
	return (void)p, (void)v, (void)n, 0;
}
int pt_procs_agree(pt_procs *p, int err)
{
	return (void)p, err;
}
int pt_procs_clock_offset(pt_procs *p, int64_t *offset_ns, int64_t *rtt_ns)
{
	(void)p;
	*offset_ns = *rtt_ns = 0;
	return 0;
}
void pt_procs_fini(pt_procs *p)
{
	(void)p;
}
#endif
