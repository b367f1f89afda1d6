/*
 * runner/cuda_check_cuda.c — the cuda backend's proof of correctness: the
 * cpu backend's sequential reference (pt_mlp_reference, on the host, in
 * fp64 for fp64 runs and fp32 otherwise) against the GPU pipeline's losses
 * and gradients, with the cpu check's measure (pt_grad_error) over each
 * parameter, a DualPipe stage's copies summed first. cuBLAS sums in another
 * order than the host GEMM, and bf16 rounds every activation, so losses
 * are compared within a relative tolerance and gradients within a limit,
 * both fitted to the dtype (pt_cuda_check_limits) rather than bit for bit.
 * Under mpirun the losses and gradient sums are gathered from every process
 * (pt_procs_sum), and every process reaches the same verdict.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_priv.h"

/* Add parameter `which` (1: w1's gradient, 2: w2's) of every local copy of
 * stage s into sum (count doubles). */
static int add_grads(pt_cuda *c, int s, int which, double *sum, size_t count, void *tmp)
{
	const pt_plan *p = c->plan;
	const int f64 = c->o.dtype == PT_DTYPE_F64;
	for (int k = 0; k < p->ranks * p->chunks; k++) {
		int rank = k / p->chunks;
		if (!c->map->local[rank] || p->chunk[k].stage != s)
			continue;
		int err = pt_cu_check(cudaSetDevice(c->rk[rank].dev), "cudaSetDevice");
		if (!err)
			err = pt_cu_check(cudaMemcpy(tmp, which == 1 ? c->par[k].dw1 : c->par[k].dw2,
						     count * (f64 ? 8 : 4), cudaMemcpyDeviceToHost),
					  "cudaMemcpy");
		if (err)
			return err;
		for (size_t i = 0; i < count; i++)
			sum[i] += f64 ? ((double *)tmp)[i] : (double)((float *)tmp)[i];
	}
	return 0;
}

int pt_cuda_check_run(pt_cuda *c, pt_cuda_check *out)
{
	memset(out, 0, sizeof *out);
	out->first_bad = -1;
	pt_cuda_check_limits(c->o.dtype, &out->loss_limit, &out->limit);
	if (!c->stepped)
		return pt_logerr(PT_EINVAL, "cuda backend: nothing to check before a step has run");
	const int S = c->plan->nstages, G = c->G;
	pt_mlp hm = c->m, m64 = c->m;
	hm.dtype = c->o.dtype == PT_DTYPE_F64 ? PT_DTYPE_F64 : PT_DTYPE_F32;
	hm.esz = hm.dtype == PT_DTYPE_F64 ? 8 : 4;
	m64.dtype = PT_DTYPE_F64;
	m64.esz = 8;
	const size_t count = (size_t)4 * c->m.h * c->m.h;
	double *ref_loss = malloc((size_t)(G ? G : 1) * sizeof *ref_loss);
	double *losses = calloc(2 * (size_t)(G ? G : 1), sizeof *losses);
	void **dw = calloc(2 * (size_t)S, sizeof *dw);
	double *sum = malloc(count * sizeof *sum), *ref64 = malloc(count * sizeof *ref64);
	void *tmp = malloc(count * 8);
	int err = !ref_loss || !losses || !dw || !sum || !ref64 || !tmp ? PT_ENOMEM : 0;
	for (int i = 0; i < 2 * S && !err; i++)
		if (!(dw[i] = calloc(count, hm.esz)))
			err = PT_ENOMEM;
	if (!err)
		err = pt_mlp_reference(&hm, c->o.seed, S, G, ref_loss, dw, dw + S, NULL, NULL);
	/* every process prepared, or all stop here together */
	err = pt_procs_agree(c->procs, err);
	/* losses: each from the process that ran its last stage */
	for (int g = 0; g < G && !err; g++)
		if (!isnan(c->loss[g]))
			losses[g] = c->loss[g], losses[G + g] = 1;
	/* past the agreement every process makes the same collectives whatever
	 * its own state, so a failure on one cannot leave the others waiting */
	int prepared = !err, e2 = prepared ? pt_procs_sum(c->procs, losses, 2 * (size_t)(G ? G : 1)) : 0;
	if (!err)
		err = e2;
	for (int g = 0; g < G && !err; g++) {
		double l = losses[G + g] > 0 ? losses[g] / losses[G + g] : NAN, r = ref_loss[g];
		out->mbs++;
		if (fabs(l - r) <= out->loss_limit * fabs(r)) {
			out->close++;
		} else if (out->first_bad < 0) {
			out->first_bad = g;
			out->loss = l;
			out->ref_loss = r;
		}
	}
	out->worst = -1;
	for (int s = 0; s < S && prepared; s++)
		for (int which = 1; which <= 2; which++) {
			memset(sum, 0, count * sizeof *sum);
			if (!err)
				err = add_grads(c, s, which, sum, count, tmp);
			e2 = pt_procs_sum(c->procs, sum, count);
			if (!err)
				err = e2;
			if (err)
				continue;
			const void *ref = dw[(which - 1) * S + s];
			for (size_t i = 0; i < count; i++)
				ref64[i] = hm.dtype == PT_DTYPE_F64 ? ((const double *)ref)[i]
								    : (double)((const float *)ref)[i];
			const void *copy[1] = {sum};
			double e = pt_grad_error(&m64, copy, 1, ref64, count);
			if (!(e <= out->worst)) { /* NaN counts as the worst */
				out->worst = e;
				out->worst_stage = s;
				out->worst_w = which;
			}
		}
	out->ok = !err && out->close == out->mbs && out->worst < out->limit;
	for (int i = 0; dw && i < 2 * S; i++)
		free(dw[i]);
	free(dw), free(ref_loss), free(losses), free(sum), free(ref64), free(tmp);
	if (err == PT_ENOMEM)
		return pt_logerr(err, "cuda backend: out of memory for the check's reference");
	return err;
}
