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
 * stage's two copies are summed first. It checks the last step only.
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
	void **w1, **w2, **dw1, **dw2; /* [S] */
	void **a, **g, **y;		/* [S] activations of the current microbatch */
	void *dy, *dx, *dg;
	void **ptrs; /* the arrays above, in one allocation */
	struct pt_cpu_arena arena;
};

static void ref_free(struct ref *f)
{
	free(f->ptrs);
	pt_cpu_arena_fini(&f->arena);
}

static int ref_alloc(pt_cpu *c, struct ref *f)
{
	const int S = c->plan->nstages;
	const size_t wb = (size_t)4 * (size_t)c->m.h * (size_t)c->m.h * c->m.esz, nh = c->nh_bytes;
	const size_t wpad = (wb + 63) & ~(size_t)63;
	memset(f, 0, sizeof *f);
	f->S = S;
	if (!(f->ptrs = calloc(7 * (size_t)S, sizeof(void *))))
		return PT_ENOMEM;
	void ***v[] = {&f->w1, &f->w2, &f->dw1, &f->dw2, &f->a, &f->g, &f->y};
	for (int i = 0; i < 7; i++)
		*v[i] = f->ptrs + (size_t)i * S;
	int err = pt_cpu_arena_init(&f->arena, (size_t)S * (4 * wpad + 9 * nh) + 6 * nh);
	if (err)
		return err;
	struct pt_cpu_arena *a = &f->arena;
	for (int s = 0; s < S; s++) {
		f->w1[s] = pt_cpu_arena_take(a, wb);
		f->w2[s] = pt_cpu_arena_take(a, wb);
		f->dw1[s] = pt_cpu_arena_take(a, wb);
		f->dw2[s] = pt_cpu_arena_take(a, wb);
		f->a[s] = pt_cpu_arena_take(a, 4 * nh);
		f->g[s] = pt_cpu_arena_take(a, 4 * nh);
		f->y[s] = pt_cpu_arena_take(a, nh);
		if (!f->w1[s] || !f->w2[s] || !f->dw1[s] || !f->dw2[s] || !f->a[s] || !f->g[s] || !f->y[s])
			return PT_ENOMEM;
		pt_mlp_init_weights(&c->m, c->o.seed, s, f->w1[s], f->w2[s]);
	}
	f->dy = pt_cpu_arena_take(a, nh);
	f->dx = pt_cpu_arena_take(a, nh);
	f->dg = pt_cpu_arena_take(a, 4 * nh);
	return f->dy && f->dx && f->dg ? 0 : PT_ENOMEM;
}

/* Σ(x-y)²/Σ(x²+y²) of one parameter: x the sum of the pipeline's copies of
 * stage s (which = 1: w1's gradient, 2: w2's), y the reference's. */
static double grad_error(pt_cpu *c, const struct ref *f, int s, int which)
{
	const pt_plan *p = c->plan;
	const size_t count = (size_t)4 * (size_t)c->m.h * (size_t)c->m.h;
	const void *copy[8];
	int ncopy = 0;
	for (int k = 0; k < p->ranks * p->chunks && ncopy < 8; k++)
		if (p->chunk[k].stage == s)
			copy[ncopy++] = which == 1 ? c->par[k].dw1 : c->par[k].dw2;
	const void *ref = which == 1 ? f->dw1[s] : f->dw2[s];
	double num = 0, den = 0;
	for (size_t i = 0; i < count; i++) {
		double x = 0, y = get(&c->m, ref, i);
		for (int k = 0; k < ncopy; k++)
			x += get(&c->m, copy[k], i);
		num += (x - y) * (x - y);
		den += x * x + y * y;
	}
	return den > 0 ? num / den : (num > 0 ? 1 : 0);
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
	struct ref f;
	if ((err = ref_alloc(c, &f))) {
		ref_free(&f);
		return pt_logerr(err, "cpu backend: out of memory for the check's reference");
	}
	const pt_mlp *m = &c->m;
	const int S = f.S;
	for (int gmb = 0; gmb < c->G; gmb++) {
		const void *x = c->data + (size_t)gmb * c->nh_bytes;
		for (int s = 0; s < S; s++) {
			pt_mlp_forward(m, f.w1[s], f.w2[s], s ? f.y[s - 1] : x, f.a[s], f.g[s], f.y[s]);
		}
		double loss = pt_mlp_loss(m, f.y[S - 1], c->data + (size_t)(c->G + gmb) * c->nh_bytes, f.dy);
		for (int s = S - 1; s >= 0; s--) {
			pt_mlp_backward_input(m, f.w1[s], f.w2[s], f.dy, f.a[s], f.dg, s ? f.dx : NULL);
			pt_mlp_weight_grad(m, f.dy, f.g[s], f.a[s], s ? f.y[s - 1] : x, f.dw1[s], f.dw2[s]);
			void *t = f.dy;
			f.dy = f.dx;
			f.dx = t;
		}
		out->mbs++;
		if (memcmp(&loss, &c->loss[gmb], sizeof loss) == 0) {
			out->equal++;
		} else if (out->first_bad < 0) {
			out->first_bad = gmb;
			out->loss = c->loss[gmb];
			out->ref_loss = loss;
		}
		if (progress)
			progress(ctx, (size_t)gmb + 1, (size_t)c->G);
	}
	out->worst = -1;
	for (int s = 0; s < S; s++) {
		for (int which = 1; which <= 2; which++) {
			double e = grad_error(c, &f, s, which);
			out->params++;
			if (!(e <= out->worst)) { /* NaN counts as the worst */
				out->worst = e;
				out->worst_stage = s;
				out->worst_w = which;
			}
		}
	}
	out->ok = out->equal == out->mbs && out->worst < out->limit;
	ref_free(&f);
	return 0;
}
