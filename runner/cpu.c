/*
 * runner/cpu.c — the cpu backend: the executor's table (exec.h) filled with
 * the stage math of mlp.c and the channels of chan.c, and what a run owns:
 * every rank's weights and gradients, the inputs and targets, one
 * activation slot layout, the per-microbatch losses, and the estimate of
 * all that memory, checked before anything large is allocated. The
 * sequential reference and the comparison live in cpu_check.c; the command
 * line in cmd_run.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "chan.h"
#include "cpu.h"
#include "cpu_priv.h"

pt_cpu_opts pt_cpu_defaults(void)
{
	pt_cpu_opts o = {.hidden = 256, .seq = 64, .mb_size = 2, .dtype = PT_DTYPE_F32, .seed = 233};
	return o;
}

static size_t esz_of(int dtype) { return dtype == PT_DTYPE_F64 ? sizeof(double) : sizeof(float); }

int64_t pt_cpu_msg_bytes(const pt_cpu_opts *o)
{
	return (int64_t)o->mb_size * o->seq * o->hidden * (int64_t)esz_of(o->dtype);
}

/* Buffers are 64-byte aligned and padded, so the pipeline and the reference
 * hand GEMM identically aligned operands. */
static size_t pad(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

void *pt_cpu_alloc(size_t bytes)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, pad(bytes ? bytes : 1)) != 0)
		return NULL;
	memset(p, 0, pad(bytes ? bytes : 1)); /* fault it in now, not in a timed op */
	return p;
}

int pt_cpu_arena_init(struct pt_cpu_arena *a, size_t bytes)
{
	memset(a, 0, sizeof *a);
	if (!bytes)
		return 0;
	size_t size = (bytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return PT_ENOMEM;
#ifdef MADV_HUGEPAGE
	madvise(p, size, MADV_HUGEPAGE);
#endif
	memset(p, 0, size); /* fault it in now, not in a timed op */
	a->base = p;
	a->size = size;
	return 0;
}

void *pt_cpu_arena_take(struct pt_cpu_arena *a, size_t bytes)
{
	bytes = pad(bytes ? bytes : 1);
	if (!a->base || bytes > a->size)
		return NULL;
	size_t at = atomic_fetch_add(&a->used, bytes);
	if (at > a->size - bytes)
		return NULL; /* full (used stays past the end: later takes fail too) */
	return a->base + at;
}

void pt_cpu_arena_fini(struct pt_cpu_arena *a)
{
	if (a->base)
		munmap(a->base, a->size);
	memset(a, 0, sizeof *a);
}

/* ------------------------------------------------------------- memory */

static double meminfo_available(void)
{
	double avail = 0;
	FILE *f = fopen("/proc/meminfo", "r");
	if (f) {
		char line[256];
		while (fgets(line, sizeof line, f)) {
			unsigned long long kb;
			if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
				avail = (double)kb * 1024;
				break;
			}
		}
		fclose(f);
	}
	/* a container's cgroup limit, when lower */
	f = fopen("/sys/fs/cgroup/memory.max", "r");
	if (f) {
		unsigned long long max, cur = 0;
		if (fscanf(f, "%llu", &max) == 1) {
			FILE *g = fopen("/sys/fs/cgroup/memory.current", "r");
			if (g) {
				if (fscanf(g, "%llu", &cur) != 1)
					cur = 0;
				fclose(g);
			}
			double left = max > cur ? (double)(max - cur) : 0;
			if (!avail || left < avail)
				avail = left;
		}
		fclose(f);
	}
	return avail;
}

static void fmt_bytes(double b, char *buf, size_t size)
{
	static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	int i = 0;
	while (b >= 1024 && i < 6) {
		b /= 1024;
		i++;
	}
	snprintf(buf, size, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

int pt_cpu_memory(const pt_plan *p, const pt_cpu_opts *o, pt_cpu_mem *out)
{
	memset(out, 0, sizeof *out);
	if (o->hidden < 1 || o->hidden > (1 << 24) || o->seq < 1 || o->seq > (1 << 24) || o->mb_size < 1 ||
	    o->mb_size > (1 << 24))
		return pt_logerr(PT_EINVAL, "cpu backend: --hidden, --seq and --mb-size must be between 1 and %d",
				 1 << 24);
	if ((double)o->seq * o->mb_size > (double)(1 << 30))
		return pt_logerr(PT_EINVAL, "cpu backend: --seq %d x --mb-size %d rows is more than %d", o->seq,
				 o->mb_size, 1 << 30);
	const double e = (double)esz_of(o->dtype), h = o->hidden, n = (double)o->seq * o->mb_size;
	const double nh = n * h, weights = 2 * 4 * h * h * e; /* w1 and w2 */
	const double slot = 12 * nh * e;		       /* x, a, g, y, dy, dx */
	out->params = (double)p->ranks * p->chunks * 2 * weights;
	for (int r = 0; r < p->ranks; r++) {
		int pool = pt_exec_pool_size(p, r);
		if (pool < 0)
			return pool;
		out->acts += pool * slot + 4 * nh * e; /* + the dg scratch */
	}
	out->acts += (double)p->ranks * 2 * nh * e; /* staging, roughly two per rank */
	out->data = 2.0 * (p->mbs[0] + p->mbs[1]) * nh * e;
	out->reference = p->nstages * (2 * weights + 9 * nh * e) + 6 * nh * e;
	out->total = out->params + out->acts + out->data + out->reference;
	out->avail = meminfo_available();
	return 0;
}

int pt_cpu_refuse_if_short(const pt_cpu_mem *m, int with_reference)
{
	double need = m->params + m->acts + m->data + (with_reference ? m->reference : 0);
	if (!m->avail || need <= m->avail)
		return 0;
	char a[32], b[32], w[32], x[32], d[32], r[48] = "";
	fmt_bytes(need, a, sizeof a);
	fmt_bytes(m->avail, b, sizeof b);
	fmt_bytes(m->params, w, sizeof w);
	fmt_bytes(m->acts, x, sizeof x);
	fmt_bytes(m->data, d, sizeof d);
	if (with_reference) {
		memcpy(r, ", the check's reference ", 24);
		fmt_bytes(m->reference, r + 24, sizeof r - 24);
	}
	return pt_logerr(PT_EINVAL,
			 "cpu backend: this run needs %s of memory (weights and gradients %s, activations %s, "
			 "data %s%s) but %s is available; lower --hidden, --seq, --mb-size or --microbatches",
			 a, w, x, d, r, b);
}

/* ---------------------------------------------------------- the table */

static int slot_create(void *be, int rank, void **out)
{
	(void)rank;
	pt_cpu *c = be;
	const size_t nh = pad((size_t)c->m.n * (size_t)c->m.h * c->m.esz);
	struct pt_cpu_slot *s = calloc(1, sizeof *s);
	if (!s)
		return pt_logerr(PT_ENOMEM, "cpu backend: out of memory for an activation slot");
	char *mem = pt_cpu_arena_take(&c->arena, PT_MLP_SLOT_NH * nh);
	if (!mem) { /* the pool grew past the plan's peak */
		s->heap = 1;
		mem = pt_cpu_alloc(PT_MLP_SLOT_NH * nh);
	}
	if (!mem) {
		free(s);
		return pt_logerr(PT_ENOMEM, "cpu backend: out of memory for an activation slot");
	}
	pt_mlp_slot_layout(&s->act, mem, nh);
	*out = s;
	return 0;
}

static void slot_destroy(void *be, void *slot)
{
	(void)be;
	struct pt_cpu_slot *s = slot;
	if (s && s->heap)
		free(s->act.x);
	free(s);
}

static pt_mlp_slot *act(void *slot) { return &((struct pt_cpu_slot *)slot)->act; }

static void *slot_buf(void *be, void *slot, enum pt_buf which)
{
	(void)be;
	return pt_mlp_slot_buf(act(slot), which);
}

static struct pt_cpu_param *param_of(pt_cpu *c, const pt_work *w)
{
	return &c->par[w->rank * c->plan->chunks + w->chunk];
}

static int forward(void *be, const pt_work *w)
{
	pt_cpu *c = be;
	pt_mlp_slot *s = act(w->slot);
	struct pt_cpu_param *p = param_of(c, w);
	if (w->gmb < 0 || w->gmb >= c->G)
		return pt_logerr(PT_EPLAN, "rank %d: microbatch %d is outside the run", w->rank, w->gmb);
	s->xin = w->first ? c->data + (size_t)w->gmb * c->nh_bytes : s->x;
	pt_mlp_forward(&c->m, p->w1, p->w2, s->xin, s->a, s->g, s->y);
	if (w->last)
		c->loss[w->gmb] = pt_mlp_loss(&c->m, s->y, c->data + (size_t)(c->G + w->gmb) * c->nh_bytes, s->dy);
	return 0;
}

static int backward(void *be, const pt_work *w, int defer)
{
	pt_cpu *c = be;
	pt_mlp_slot *s = act(w->slot);
	struct pt_cpu_param *p = param_of(c, w);
	pt_mlp_backward_input(&c->m, p->w1, p->w2, s->dy, s->a, c->dg[w->rank], w->first ? NULL : s->dx);
	if (!defer)
		pt_mlp_weight_grad(&c->m, s->dy, s->g, s->a, s->xin, p->dw1, p->dw2);
	return 0;
}

static int weight_grad(void *be, const pt_work *w)
{
	pt_cpu *c = be;
	pt_mlp_slot *s = act(w->slot);
	struct pt_cpu_param *p = param_of(c, w);
	pt_mlp_weight_grad(&c->m, s->dy, s->g, s->a, s->xin, p->dw1, p->dw2);
	return 0;
}

static int copy(void *be, int rank, void *dst, enum pt_buf dbuf, void *src, enum pt_buf sbuf)
{
	(void)rank;
	pt_cpu *c = be;
	memcpy(slot_buf(be, dst, dbuf), slot_buf(be, src, sbuf), (size_t)c->m.n * (size_t)c->m.h * c->m.esz);
	return 0;
}

static int step_begin(void *be, const pt_rec *rec) { return pt_chan_start(((pt_cpu *)be)->chan, rec); }
static void step_end(void *be) { pt_chan_stop(((pt_cpu *)be)->chan); }
static int post(void *be, pt_msg *m) { return pt_chan_post(((pt_cpu *)be)->chan, m); }
static int wait_msg(void *be, pt_msg *m) { return pt_chan_wait(((pt_cpu *)be)->chan, m); }
static void abort_all(void *be) { pt_chan_abort(((pt_cpu *)be)->chan); }

/* ----------------------------------------------------------- lifetime */

int pt_cpu_create(const pt_plan *plan, const pt_cpu_opts *o, pt_cpu **out)
{
	*out = NULL;
	pt_cpu_mem mem;
	int err = pt_cpu_memory(plan, o, &mem);
	if (err)
		return err;
	if ((err = pt_cpu_refuse_if_short(&mem, 0)))
		return err;
	pt_gemm_init();
	pt_cpu *c = calloc(1, sizeof *c);
	if (!c)
		return PT_ENOMEM;
	c->plan = plan;
	c->o = *o;
	c->m = (pt_mlp){.n = o->seq * o->mb_size, .h = o->hidden, .dtype = o->dtype, .esz = esz_of(o->dtype)};
	c->nh_bytes = pad((size_t)c->m.n * (size_t)c->m.h * c->m.esz);
	c->G = plan->mbs[0] + plan->mbs[1];
	const int nch = plan->ranks * plan->chunks;
	const size_t wbytes = (size_t)4 * (size_t)o->hidden * (size_t)o->hidden * c->m.esz;
	c->par = calloc((size_t)nch, sizeof *c->par);
	c->dg = calloc((size_t)plan->ranks, sizeof *c->dg);
	c->loss = malloc((size_t)(c->G ? c->G : 1) * sizeof *c->loss);
	if (!c->par || !c->dg || !c->loss) {
		err = PT_ENOMEM;
		goto fail;
	}
	/* one arena: weights and gradients, data, scratch, the pools' slots */
	size_t slots = 0;
	for (int r = 0; r < plan->ranks; r++)
		slots += (size_t)pt_exec_pool_size(plan, r);
	size_t total = (size_t)nch * 4 * pad(wbytes) + 2 * (size_t)c->G * c->nh_bytes +
		       (size_t)plan->ranks * 4 * c->nh_bytes + slots * 12 * c->nh_bytes;
	if ((err = pt_cpu_arena_init(&c->arena, total)))
		goto fail;
	if (!(c->data = pt_cpu_arena_take(&c->arena, 2 * (size_t)c->G * c->nh_bytes))) {
		err = PT_ENOMEM;
		goto fail;
	}
	for (int g = 0; g < c->G; g++) {
		pt_mlp_data(&c->m, o->seed, g, 0, c->data + (size_t)g * c->nh_bytes);
		pt_mlp_data(&c->m, o->seed, g, 1, c->data + (size_t)(c->G + g) * c->nh_bytes);
	}
	for (int k = 0; k < nch && !err; k++) {
		struct pt_cpu_param *p = &c->par[k];
		p->w1 = pt_cpu_arena_take(&c->arena, wbytes);
		p->w2 = pt_cpu_arena_take(&c->arena, wbytes);
		p->dw1 = pt_cpu_arena_take(&c->arena, wbytes);
		p->dw2 = pt_cpu_arena_take(&c->arena, wbytes);
		if (!p->w1 || !p->w2 || !p->dw1 || !p->dw2)
			err = PT_ENOMEM;
		else
			pt_mlp_init_weights(&c->m, o->seed, plan->chunk[k].stage, p->w1, p->w2);
	}
	for (int r = 0; r < plan->ranks && !err; r++)
		if (!(c->dg[r] = pt_cpu_arena_take(&c->arena, 4 * c->nh_bytes)))
			err = PT_ENOMEM;
	if (err)
		goto fail;
	c->ops = (pt_exec_ops){.slot_create = slot_create,
			       .slot_destroy = slot_destroy,
			       .slot_buf = slot_buf,
			       .msg_bytes = (size_t)c->m.n * (size_t)c->m.h * c->m.esz,
			       .forward = forward,
			       .backward = backward,
			       .weight_grad = weight_grad,
			       .copy = copy,
			       .step_begin = step_begin,
			       .step_end = step_end,
			       .post = post,
			       .wait = wait_msg,
			       .abort = abort_all};
	if ((err = pt_chan_create(plan, c->ops.msg_bytes, &c->chan)) ||
	    (err = pt_exec_create(plan, &c->ops, c, &c->x)))
		goto fail;
	*out = c;
	return 0;
fail:
	if (err == PT_ENOMEM)
		pt_log(PT_LOG_ERROR, "cpu backend: out of memory setting the run up");
	pt_cpu_destroy(c);
	return err;
}

int pt_cpu_step(pt_cpu *c, const pt_exec_step_opts *so, pt_exec_result *res)
{
	const size_t wbytes = (size_t)4 * (size_t)c->o.hidden * (size_t)c->o.hidden * c->m.esz;
	for (int k = 0; k < c->plan->ranks * c->plan->chunks; k++) {
		memset(c->par[k].dw1, 0, wbytes);
		memset(c->par[k].dw2, 0, wbytes);
	}
	for (int g = 0; g < c->G; g++)
		c->loss[g] = NAN; /* a loss never computed will not match the reference */
	int err = pt_exec_step(c->x, so, res);
	c->stepped = !err;
	return err;
}

const double *pt_cpu_losses(const pt_cpu *c, int *n)
{
	*n = c->stepped ? c->G : 0;
	return c->stepped ? c->loss : NULL;
}

double pt_cpu_step_flops(const pt_cpu *c)
{
	return pt_mlp_plan_flops(&c->m, c->plan, NULL);
}

int pt_cpu_meta(const pt_cpu *c, pt_rec *rec)
{
	char buf[64];
	int err = 0;
	const int64_t v[] = {c->o.hidden, c->o.seq, c->o.mb_size, c->m.n, pt_chan_staged_max(c->chan)};
	const char *k[] = {"cpu.hidden", "cpu.seq", "cpu.mb_size", "cpu.rows", "cpu.staged_max"};
	for (int i = 0; i < 5 && !err; i++)
		err = pt_rec_meta_int(rec, k[i], v[i]);
	snprintf(buf, sizeof buf, "%llu", (unsigned long long)c->o.seed);
	if (!err)
		err = pt_rec_meta(rec, "cpu.seed", buf);
	if (!err)
		err = pt_rec_meta(rec, "cpu.dtype", pt_dtype_name(c->o.dtype));
	if (!err)
		err = pt_rec_meta(rec, "cpu.model", "Linear(h->4h, no bias) -> GELU -> Linear(4h->h, no bias); MSE");
	if (!err)
		err = pt_rec_meta(rec, "cpu.gemm", pt_gemm_name());
	snprintf(buf, sizeof buf, "%.17g", pt_cpu_step_flops(c));
	if (!err)
		err = pt_rec_meta(rec, "cpu.flops_per_step", buf);
	return err;
}

void pt_cpu_destroy(pt_cpu *c)
{
	if (!c)
		return;
	pt_exec_destroy(c->x);
	pt_chan_destroy(c->chan);
	free(c->par);
	free(c->dg);
	free(c->loss);
	pt_cpu_arena_fini(&c->arena);
	free(c);
}
