/*
 * runner/theory.c — what the specs say a schedule should cost: the per-rank
 * bubble formulas of spec/dualpipe.md §3 and spec/schedules.md §2, evaluated
 * under the run's cost model, and the peak number of in-flight chunk
 * activations (F done, B or I not yet). The run stores them in the trace so
 * `stats` can show them beside what was measured.
 */
#include "runner.h"

static int min_int(int a, int b) { return a < b ? a : b; }

void pt_theory(const pt_plan *p, const pt_cost *c, int r, int64_t *bubble, int *peak, const char **formula)
{
	const int P = p->ranks, m = p->microbatches;
	*bubble = -1;
	*peak = -1;
	*formula = NULL;
	switch (p->sched) {
	case PT_SCHED_DUALPIPE:
		*bubble = (int64_t)(P / 2 - 1) * (c->fb + c->b - 3 * c->w);
		*peak = P + 1;
		*formula = "(P/2-1)(FB+B-3W)";
		break;
	case PT_SCHED_DUALPIPEV:
		*bubble = (int64_t)(P - 1) * (c->fb + c->b - 3 * c->w);
		*peak = 2 * P + 1;
		*formula = "(P-1)(FB+B-3W)";
		break;
	case PT_SCHED_1F1B:
		*bubble = (int64_t)(P - 1) * (c->f + c->b);
		*peak = min_int(P - r, m);
		*formula = "(P-1)(F+B)";
		break;
	case PT_SCHED_ZB1P:
		/* (P-1)(F+B-2W) with B a full backward = I+W; needs W <= F */
		if (c->w <= c->f) {
			*bubble = (int64_t)(P - 1) * (c->f + c->i - c->w);
			*formula = "(P-1)(F+I-W)";
		}
		*peak = min_int(P - r, m);
		break;
	case PT_SCHED_GPIPE:
		*bubble = (int64_t)(P - 1) * (c->f + c->b);
		*peak = m;
		*formula = "(P-1)(F+B)";
		break;
	case PT_SCHED_INTERLEAVED: {
		/* (P-1)(F+B)/v per rank slice, with F and B per chunk op here */
		int v = p->chunks, g = p->group;
		*bubble = (int64_t)(P - 1) * (c->f + c->b);
		*peak = min_int(2 * (P - 1 - r) + (v - 1) * g + 1, v * m);
		*formula = "(P-1)(F+B), per chunk op";
		break;
	}
	case PT_SCHED_ZBV:
		/* zero span bubble when F = I = W; the global bubble is then the
		 * ranks' stagger, (P-1)F (spec/schedules.md §2) */
		if (c->f == c->i && c->i == c->w) {
			*bubble = (int64_t)(P - 1) * c->f;
			*formula = "(P-1)F, when F=I=W";
		}
		*peak = min_int(2 * P, 2 * m);
		break;
	}
}
