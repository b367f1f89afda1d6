/*
 * runner/cpu_check.c — the cpu backend's proof of correctness, as DualPipe's
 * examples check themselves (spec/dualpipe.md §4): the same model run
 * unpartitioned on one thread, microbatch after microbatch in global order
 * (forward through every stage, loss, full backward, gradients accumulated),
 * with the very functions the pipeline calls. Per-microbatch losses must
 * then be bitwise equal, since each microbatch meets the same kernels on the
 * same inputs in both runs; gradients sum the microbatches in another order,
 * so they are compared with 1 - 2Σxy/Σ(x²+y²), evaluated as the equal
 * Σ(x-y)²/Σ(x²+y²) in double so tiny values keep their digits. A DualPipe
 * stage's two copies are summed first. It checks the last step only. The
 * reference itself (pt_mlp_reference) and the measure (pt_grad_error) are
 * the cuda backend's check's too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_priv.h"

#define GRAD_LIMIT 1e-13

static double get(const pt_mlp *m, const void *v, size_t i)
{
	return m->dtype == PT_DTYPE_F64 ? ((const double *)v)[i] : (double)((const float *)v)[i];
}


struct ref {
	int S;
	void **a, **g, **y; /* [S] activations of the current microbatch */
	void **w1, **w2;    /* [S] */
	void *x, *t, *dy, *dx, *dg;
	void **ptrs; /* the arrays above, in one allocation */
	struct pt_cpu_arena arena;
};

static void ref_free(struct ref *f)
{
	free(f->ptrs);
	pt_cpu_arena_fini(&f->arena);
}

static int ref_alloc(const pt_mlp *m, uint64_t seed, int S, struct ref *f)
{
	const size_t wb = (size_t)4 * (size_t)m->h * (size_t)m->h * m->esz;
	const size_t nh = ((size_t)m->n * (size_t)m->h * m->esz + 63) & ~(size_t)63;
	const size_t wpad = (wb + 63) & ~(size_t)63;
	memset(f, 0, sizeof *f);
	f->S = S;
	if (!(f->ptrs = calloc(5 * (size_t)S, sizeof(void *))))
		return PT_ENOMEM;
	void ***v[] = {&f->w1, &f->w2, &f->a, &f->g, &f->y};
	for (int i = 0; i < 5; i++)
		*v[i] = f->ptrs + (size_t)i * S;
	int err = pt_cpu_arena_init(&f->arena, (size_t)S * (2 * wpad + 9 * nh) + 8 * nh);
	if (err)
		return err;
	struct pt_cpu_arena *a = &f->arena;
	for (int s = 0; s < S; s++) {
		f->w1[s] = pt_cpu_arena_take(a, wb);
		f->w2[s] = pt_cpu_arena_take(a, wb);
		f->a[s] = pt_cpu_arena_take(a, 4 * nh);
		f->g[s] = pt_cpu_arena_take(a, 4 * nh);
		f->y[s] = pt_cpu_arena_take(a, nh);
		if (!f->w1[s] || !f->w2[s] || !f->a[s] || !f->g[s] || !f->y[s])
			return PT_ENOMEM;
		pt_mlp_init_weights(m, seed, s, f->w1[s], f->w2[s]);
	}
	f->x = pt_cpu_arena_take(a, nh);
	f->t = pt_cpu_arena_take(a, nh);
	f->dy = pt_cpu_arena_take(a, nh);
	f->dx = pt_cpu_arena_take(a, nh);
	f->dg = pt_cpu_arena_take(a, 4 * nh);
	return f->x && f->t && f->dy && f->dx && f->dg ? 0 : PT_ENOMEM;
}

int pt_mlp_reference(const pt_mlp *m, uint64_t seed, int S, int G, double *loss, void *const *dw1,
		     void *const *dw2, void (*progress)(void *ctx, size_t done, size_t total), void *ctx)
{
	struct ref f;
	int err = ref_alloc(m, seed, S, &f);
	if (err) {
		ref_free(&f);
		return err;
	}
	for (int gmb = 0; gmb < G; gmb++) {
		/* the data regenerated: pt_mlp_data is a pure function of (seed, gmb) */
		pt_mlp_data(m, seed, gmb, 0, f.x);
		pt_mlp_data(m, seed, gmb, 1, f.t);
		for (int s = 0; s < S; s++)
			pt_mlp_forward(m, f.w1[s], f.w2[s], s ? f.y[s - 1] : f.x, f.a[s], f.g[s], f.y[s]);
		loss[gmb] = pt_mlp_loss(m, f.y[S - 1], f.t, f.dy);
		for (int s = S - 1; s >= 0; s--) {
			pt_mlp_backward_input(m, f.w1[s], f.w2[s], f.dy, f.a[s], f.dg, s ? f.dx : NULL);
			pt_mlp_weight_grad(m, f.dy, f.g[s], f.a[s], s ? f.y[s - 1] : f.x, dw1[s], dw2[s]);
			void *t = f.dy;
			f.dy = f.dx;
			f.dx = t;
		}
		if (progress)
			progress(ctx, (size_t)gmb + 1, (size_t)G);
	}
	ref_free(&f);
	return 0;
}

double pt_grad_error(const pt_mlp *m, const void *const *copy, int ncopy, const void *ref, size_t count)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < count; i++) {
		double x = 0, y = get(m, ref, i);
		for (int k = 0; k < ncopy; k++)
			x += get(m, copy[k], i);
		num += (x - y) * (x - y);
		den += x * x + y * y;
	}
	return den > 0 ? num / den : (num > 0 ? 1 : 0);
}

/* The error of one parameter: the pipeline's copies of stage s (which = 1:
 * w1's gradient, 2: w2's) against the reference's. */
static double grad_error(pt_cpu *c, const void *ref, int s, int which)
{
	const pt_plan *p = c->plan;
	const void *copy[8];
	int ncopy = 0;
	for (int k = 0; k < p->ranks * p->chunks && ncopy < 8; k++)
		if (p->chunk[k].stage == s)
			copy[ncopy++] = which == 1 ? c->par[k].dw1 : c->par[k].dw2;
	return pt_grad_error(&c->m, copy, ncopy, ref, (size_t)4 * (size_t)c->m.h * (size_t)c->m.h);
}

int pt_cpu_check_run(pt_cpu *c, void (*progress)(void *ctx, size_t done, size_t total), void *ctx,
		     pt_cpu_check *out)
{
	memset(out, 0, sizeof *out);
	out->first_bad = -1;
	out->limit = GRAD_LIMIT;
	if (!c->stepped)
		return pt_logerr(PT_EINVAL, "cpu backend: nothing to check before a step has run");
	pt_cpu_mem mem;
	int err = pt_cpu_memory(c->plan, &c->o, &mem);
	if (!err && mem.avail && mem.reference > mem.avail)
		err = pt_logerr(PT_EINVAL,
				"cpu backend: the check's sequential reference needs %.1f MiB more memory but %.1f "
				"MiB is available; skip it with --no-check",
				mem.reference / 1048576, mem.avail / 1048576);
	if (err)
		return err;
	const int S = c->plan->nstages;
	const size_t wb = (size_t)4 * (size_t)c->m.h * (size_t)c->m.h * c->m.esz;
	double *loss = malloc((size_t)(c->G ? c->G : 1) * sizeof *loss);
	void **dw = calloc(2 * (size_t)S, sizeof *dw);
	struct pt_cpu_arena ga;
	memset(&ga, 0, sizeof ga);
	err = !loss || !dw ? PT_ENOMEM : pt_cpu_arena_init(&ga, 2 * (size_t)S * ((wb + 63) & ~(size_t)63));
	for (int i = 0; i < 2 * S && !err; i++)
		if (!(dw[i] = pt_cpu_arena_take(&ga, wb)))
			err = PT_ENOMEM;
	if (!err)
		err = pt_mlp_reference(&c->m, c->o.seed, S, c->G, loss, dw, dw + S, progress, ctx);
	if (err) {
		free(loss);
		free(dw);
		pt_cpu_arena_fini(&ga);
		return pt_logerr(err, "cpu backend: out of memory for the check's reference");
	}
	for (int gmb = 0; gmb < c->G; gmb++) {
		out->mbs++;
		if (memcmp(&loss[gmb], &c->loss[gmb], sizeof loss[gmb]) == 0) {
			out->equal++;
		} else if (out->first_bad < 0) {
			out->first_bad = gmb;
			out->loss = c->loss[gmb];
			out->ref_loss = loss[gmb];
		}
	}
	out->worst = -1;
	for (int s = 0; s < S; s++) {
		for (int which = 1; which <= 2; which++) {
			double e = grad_error(c, dw[(which - 1) * S + s], s, which);
			out->params++;
			if (!(e <= out->worst)) { /* NaN counts as the worst */
				out->worst = e;
				out->worst_stage = s;
				out->worst_w = which;
			}
		}
	}
	out->ok = out->equal == out->mbs && out->worst < out->limit;
	free(loss);
	free(dw);
	pt_cpu_arena_fini(&ga);
	return 0;
}
