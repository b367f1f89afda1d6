/*
 * runner/stage.c — what the two backends that run the MLP model (cpu.c and
 * cuda_cuda.c) hold the same way: the layout of a (chunk, microbatch)'s
 * activation slot inside one block of memory, which of its buffers the
 * executor's names stand for, and the FLOPs a plan's ranks compute. It
 * neither allocates nor computes: where the block lives (the cpu's arena,
 * the heap, a GPU) and the math (mlp.c, the cuda kernels) are the backends'.
 */
#include "cpu.h"

void pt_mlp_slot_layout(pt_mlp_slot *s, void *mem, size_t nh)
{
	char *b = mem;
	s->x = b;
	s->a = b + nh;	    /* n x 4h */
	s->g = b + 5 * nh;  /* n x 4h */
	s->y = b + 9 * nh;
	s->dy = b + 10 * nh;
	s->dx = b + 11 * nh; /* ends at PT_MLP_SLOT_NH * nh */
	s->xin = s->x;
}

void *pt_mlp_slot_buf(const pt_mlp_slot *s, enum pt_buf which)
{
	switch (which) {
	case PT_BUF_X: return s->x;
	case PT_BUF_Y: return s->y;
	case PT_BUF_DY: return s->dy;
	case PT_BUF_DX: return s->dx;
	}
	return NULL;
}

double pt_mlp_plan_flops(const pt_mlp *m, const pt_plan *p, const uint8_t *ranks)
{
	double total = 0;
	for (int r = 0; r < p->ranks; r++) {
		if (ranks && !ranks[r])
			continue;
		for (size_t i = 0; i < p->rank[r].n; i++) {
			const pt_op *o = &p->rank[r].ops[i];
			if (!pt_kind_is_compute(o->kind))
				continue;
			int c1 = o->kind == PT_OP_FB ? o->chunk2 : o->chunk;
			int first = pt_plan_chunk(p, r, c1)->stage == 0;
			if (o->kind == PT_OP_FB)
				total += pt_mlp_flops(m, PT_OP_F, 0) + pt_mlp_flops(m, PT_OP_B, first);
			else
				total += pt_mlp_flops(m, o->kind, first);
		}
	}
	return total;
}
