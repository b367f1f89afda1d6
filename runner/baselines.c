/*
 * runner/baselines.c — the schedules DualPipe is measured against: 1F1B,
 * ZB-H1 (torch's ZB1P), GPipe, interleaved 1F1B (Megatron's virtual
 * pipeline) and ZB-V, following the per-rank rules of spec/schedules.md §1.
 * Each generator emits compute ops only; comm.c attaches the messages.
 */
#include <stdlib.h>
#include <string.h>

#include "runner.h"

static int add(pt_plan *p, int r, int kind, int chunk, int mb, int phase)
{
	pt_op op = pt_op_make(kind, chunk, mb);
	op.phase = (uint8_t)phase;
	return pt_plan_push(p, r, &op);
}

static int min_int(int a, int b) { return a < b ? a : b; }

/* 1F1B, and ZB-H1 when zb: F x w, [F, B] (or [F, I, W delayed by r]) x (m - w), the rest. */
static int gen_1f1b(pt_plan *p, int m, int zb)
{
	int err = 0;
	for (int r = 0; r < p->ranks && !err; r++) {
		int w = min_int(p->ranks - 1 - r, m), nb = 0, nw = 0;
		for (int k = 0; k < w && !err; k++)
			err = add(p, r, PT_OP_F, 0, k, PT_WARMUP);
		for (int k = w; k < m + w && !err; k++) {
			int ph = k < m ? PT_STEADY : PT_COOLDOWN;
			if (k < m)
				err = add(p, r, PT_OP_F, 0, k, ph);
			if (!err)
				err = add(p, r, zb ? PT_OP_I : PT_OP_B, 0, nb++, ph);
			if (!err && zb && nb > r)
				err = add(p, r, PT_OP_W, 0, nw++, ph);
		}
		while (zb && nw < m && !err)
			err = add(p, r, PT_OP_W, 0, nw++, PT_COOLDOWN);
	}
	return err;
}

static int gen_gpipe(pt_plan *p, int m)
{
	int err = 0;
	for (int r = 0; r < p->ranks && !err; r++) {
		for (int k = 0; k < m && !err; k++)
			err = add(p, r, PT_OP_F, 0, k, PT_WARMUP);
		for (int k = 0; k < m && !err; k++)
			err = add(p, r, PT_OP_B, 0, k, PT_COOLDOWN);
	}
	return err;
}

/* Chunk and microbatch of the k-th forward of interleaved 1F1B: groups of g
 * microbatches (the last one takes the remainder), each group's chunks in turn. */
static void interleaved_fwd(int k, int m, int v, int g, int *chunk, int *mb)
{
	int base = 0;
	for (;;) {
		int size = m - base < g ? m - base : g;
		if (k < size * v) {
			*chunk = k / size;
			*mb = base + k % size;
			return;
		}
		k -= size * v;
		base += size;
	}
}

static int gen_interleaved(pt_plan *p, int m)
{
	const int P = p->ranks, v = p->chunks, g = p->group, T = v * m;
	int err = 0;
	for (int r = 0; r < P && !err; r++) {
		int w = min_int(2 * (P - 1 - r) + (v - 1) * g, T), c, mb;
		for (int k = 0; k < w && !err; k++) {
			interleaved_fwd(k, m, v, g, &c, &mb);
			err = add(p, r, PT_OP_F, c, mb, PT_WARMUP);
		}
		for (int k = 0; k < T - w && !err; k++) {
			interleaved_fwd(k + w, m, v, g, &c, &mb);
			err = add(p, r, PT_OP_F, c, mb, PT_STEADY);
			interleaved_fwd(k, m, v, g, &c, &mb);
			if (!err)
				err = add(p, r, PT_OP_B, v - 1 - c, mb, PT_STEADY);
		}
		for (int k = T - w; k < T && !err; k++) {
			interleaved_fwd(k, m, v, g, &c, &mb);
			err = add(p, r, PT_OP_B, v - 1 - c, mb, PT_COOLDOWN);
		}
	}
	return err;
}

/* ZB-V, torch's ZBVZeroBubble rule (spec/schedules.md §1.6): generated for
 * max(m, 2p-1) microbatches, then the ones past m dropped, as torch does. */
struct zbv {
	pt_plan *p;
	int r, m, mm;
	int f[2], i[2], w[2];
	int err;
};

static void zop(struct zbv *z, int kind, int c, int phase)
{
	int *ctr = kind == PT_OP_F ? z->f : kind == PT_OP_I ? z->i : z->w;
	int mb = ctr[c]++;
	if (mb < z->m && !z->err)
		z->err = add(z->p, z->r, kind, c, mb, phase);
}

static int gen_zbv(pt_plan *p, int m)
{
	const int P = p->ranks;
	int mm = m > 2 * P - 1 ? m : 2 * P - 1;
	for (int r = 0; r < P; r++) {
		struct zbv z = {.p = p, .r = r, .m = m, .mm = mm};
		for (int k = 0; k < 2 * P - 2 * r - 1; k++)
			zop(&z, PT_OP_F, 0, PT_WARMUP);
		for (int k = 0; k < r; k++) {
			zop(&z, PT_OP_F, 1, PT_WARMUP);
			zop(&z, PT_OP_F, 0, PT_WARMUP);
		}
		for (int k = 0; k < P - r; k++) {
			zop(&z, PT_OP_F, 1, PT_WARMUP);
			zop(&z, PT_OP_I, 1, PT_WARMUP);
			zop(&z, PT_OP_W, 1, PT_WARMUP);
		}
		while (z.f[0] < mm || z.f[1] < mm) {
			if (z.f[0] < mm)
				zop(&z, PT_OP_F, 0, PT_STEADY);
			zop(&z, PT_OP_I, 0, PT_STEADY);
			zop(&z, PT_OP_W, 0, PT_STEADY);
			zop(&z, PT_OP_F, 1, PT_STEADY);
			zop(&z, PT_OP_I, 1, PT_STEADY);
			zop(&z, PT_OP_W, 1, PT_STEADY);
		}
		for (int k = 0; k < r; k++) {
			zop(&z, PT_OP_I, 0, PT_COOLDOWN);
			zop(&z, PT_OP_I, 1, PT_COOLDOWN);
		}
		for (int k = 0; k < P - r; k++) {
			zop(&z, PT_OP_I, 0, PT_COOLDOWN);
			zop(&z, PT_OP_W, 0, PT_COOLDOWN);
		}
		while (z.w[1] < mm)
			zop(&z, PT_OP_W, 1, PT_COOLDOWN);
		while (z.w[0] < mm)
			zop(&z, PT_OP_W, 0, PT_COOLDOWN);
		if (z.err)
			return z.err;
	}
	return 0;
}

int pt_gen_baseline(const pt_plan_params *pp, pt_plan **out)
{
	const int P = pp->ranks, m = pp->microbatches;
	int sched = pp->sched, v = 1, g = 0;
	*out = NULL;
	switch (sched) {
	case PT_SCHED_1F1B:
	case PT_SCHED_ZB1P:
		if (m < P)
			return pt_logerr(PT_EINVAL,
					 "%s needs at least as many microbatches as ranks (got --microbatches %d "
					 "with --ranks %d)",
					 pt_sched_name(sched), m, P);
		break;
	case PT_SCHED_INTERLEAVED:
		v = pp->chunks ? pp->chunks : 2;
		g = pp->group ? pp->group : P;
		if (v < 2)
			return pt_logerr(PT_EINVAL, "interleaved needs --chunks of at least 2 (got %d; 1 is 1f1b)", v);
		if (v > 64)
			return pt_logerr(PT_EINVAL, "interleaved: --chunks %d is more than 64", v);
		if (g < P || g > m)
			return pt_logerr(PT_EINVAL,
					 "interleaved needs ranks <= group <= microbatches (Megatron's rule; got "
					 "group %d, --ranks %d, --microbatches %d)",
					 g, P, m);
		if (m % g != 0 && m % g < P)
			return pt_logerr(PT_EINVAL,
					 "interleaved needs microbatches %% group to be 0 or at least ranks "
					 "(Megatron's rule; got %d %% %d = %d with --ranks %d)",
					 m, g, m % g, P);
		break;
	case PT_SCHED_ZBV:
		v = 2;
		break;
	case PT_SCHED_GPIPE:
		break;
	default:
		return pt_logerr(PT_EINVAL, "not a baseline schedule");
	}
	pt_plan *p;
	int err = pt_plan_alloc(sched, P, v, 1, P * v, &p);
	if (err)
		return err;
	p->group = g;
	p->mbs[0] = m;
	for (int r = 0; r < P; r++) {
		for (int c = 0; c < v; c++) {
			int stage = sched == PT_SCHED_ZBV ? (c == 0 ? r : 2 * P - 1 - r) : c * P + r;
			pt_plan_place(p, r, c, 0, stage);
		}
	}
	switch (sched) {
	case PT_SCHED_1F1B: err = gen_1f1b(p, m, 0); break;
	case PT_SCHED_ZB1P: err = gen_1f1b(p, m, 1); break;
	case PT_SCHED_GPIPE: err = gen_gpipe(p, m); break;
	case PT_SCHED_INTERLEAVED: err = gen_interleaved(p, m); break;
	case PT_SCHED_ZBV: err = gen_zbv(p, m); break;
	}
	if (!err)
		err = pt_plan_attach_comms(p, pp->bytes);
	if (err) {
		pt_plan_destroy(p);
		return err;
	}
	*out = p;
	return 0;
}
