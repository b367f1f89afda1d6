/*
 * viewer/model.c — one rank's activity as lanes of intervals, the model both
 * the terminal grid and the HTML report draw. From a trace it reads the rank
 * through libtrace's cursor (start order) and sorts each event into its lane:
 * compute ops, messages, and one lane per GPU stream, range stream or CPU
 * thread; from a simulation it takes the plan's ops with their simulated
 * times. It draws nothing and computes no metric.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libtrace/grow.h"
#include "viewer.h"

static int lane_kind_of(int kind)
{
	if (pt_kind_is_compute(kind))
		return PT_LANE_OPS;
	if (pt_kind_is_comm(kind))
		return PT_LANE_COMMS;
	if (kind == PT_OP_RUNTIME)
		return PT_LANE_CPU;
	if (kind == PT_OP_RANGE)
		return PT_LANE_RANGES;
	return PT_LANE_GPU;
}

/* The lane (kind, stream) of r, made when missing and kept in order. */
static pt_lane *lane_get(pt_vrank *r, int kind, uint32_t stream)
{
	int i = 0;
	for (; i < r->nlanes; i++) {
		pt_lane *l = &r->lane[i];
		if (l->kind == kind && l->stream == stream)
			return l;
		if (l->kind > kind || (l->kind == kind && l->stream > stream))
			break;
	}
	pt_lane *lanes = realloc(r->lane, (size_t)(r->nlanes + 1) * sizeof *lanes);
	if (!lanes)
		return NULL;
	r->lane = lanes;
	memmove(&lanes[i + 1], &lanes[i], (size_t)(r->nlanes - i) * sizeof *lanes);
	r->nlanes++;
	pt_lane *l = &lanes[i];
	memset(l, 0, sizeof *l);
	l->kind = kind;
	l->stream = stream;
	l->role = -1;
	return l;
}

static int lane_push(pt_lane *l, const pt_span *s)
{
	if (pt_grow(&l->span, &l->cap, l->n + 1, sizeof *l->span))
		return PT_ENOMEM;
	l->span[l->n++] = *s;
	if (s->end - s->start > l->max_dur)
		l->max_dur = s->end - s->start;
	return 0;
}

static void lane_label(pt_trace *t, int rank, pt_lane *l)
{
	enum pt_stream_role role;
	const char *name = NULL;
	if (t && pt_trace_stream(t, rank, l->stream, &role, &name) == 0) {
		l->role = (int)role;
		if (name && *name) {
			snprintf(l->label, sizeof l->label, "%s", name);
			return;
		}
	}
	switch (l->kind) {
	case PT_LANE_OPS: snprintf(l->label, sizeof l->label, "compute"); break;
	case PT_LANE_COMMS: snprintf(l->label, sizeof l->label, "p2p"); break;
	case PT_LANE_CPU: snprintf(l->label, sizeof l->label, "thread %u", l->stream); break;
	case PT_LANE_RANGES: snprintf(l->label, sizeof l->label, "ranges %u", l->stream); break;
	default:
		if (l->stream == PT_STREAM_NONE) /* context and event syncs */
			snprintf(l->label, sizeof l->label, "device-wide");
		else
			snprintf(l->label, sizeof l->label, "stream %u", l->stream);
		break;
	}
}

int pt_vrank_load(pt_trace *t, int rank, pt_vrank *r)
{
	memset(r, 0, sizeof *r);
	r->rank = rank;
	pt_rank_info ri;
	int err = pt_trace_rank(t, rank, &ri);
	if (err)
		return err;
	if (ri.label[0])
		snprintf(r->label, sizeof r->label, "%s", ri.label);
	else
		snprintf(r->label, sizeof r->label, "r%d", rank);
	pt_query q = pt_query_all();
	q.rank = rank;
	pt_cursor *c;
	if ((err = pt_cursor_open(t, &q, &c)))
		return err;
	pt_event ev;
	pt_lane *last = NULL;
	int got;
	while ((got = pt_cursor_next(c, &ev)) == 1) {
		int kind = lane_kind_of(ev.op.kind);
		pt_lane *l = last && last->kind == kind && last->stream == ev.stream ? last : lane_get(r, kind, ev.stream);
		if (!l) {
			err = PT_ENOMEM;
			break;
		}
		if (l->n == 0 && l->cap == 0)
			lane_label(t, rank, l);
		pt_span s = {.start = ev.start_ns,
			     .end = ev.end_ns < ev.start_ns ? ev.start_ns : ev.end_ns,
			     .posted = ev.posted_ns,
			     .name = ev.name,
			     .step = ev.step,
			     .op = ev.op};
		if ((err = lane_push(l, &s)))
			break;
		last = l;
	}
	if (got < 0)
		err = got;
	pt_cursor_close(c);
	if (err)
		pt_vrank_fini(r);
	return err;
}

static int by_start(const void *a, const void *b)
{
	const pt_span *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->step > y->step) - (x->step < y->step);
}

int pt_vrank_from_sim(const pt_sim *sim, int rank, pt_vrank *r)
{
	memset(r, 0, sizeof *r);
	r->rank = rank;
	snprintf(r->label, sizeof r->label, "r%d", rank);
	const pt_rank_plan *rp = &sim->plan->rank[rank];
	/* both lanes first, so that an empty one still shows */
	if (!lane_get(r, PT_LANE_OPS, PT_STREAM_MAIN) || !lane_get(r, PT_LANE_COMMS, PT_STREAM_P2P)) {
		pt_vrank_fini(r);
		return PT_ENOMEM;
	}
	for (int i = 0; i < r->nlanes; i++)
		lane_label(NULL, rank, &r->lane[i]);
	for (size_t i = 0; i < rp->n; i++) {
		const pt_sim_step *st = &sim->step[rank][i];
		pt_span s = {.start = st->start, .end = st->end, .posted = st->posted, .step = (int32_t)i, .op = rp->ops[i]};
		int comm = pt_kind_is_comm(s.op.kind);
		if (lane_push(&r->lane[comm ? 1 : 0], &s)) {
			pt_vrank_fini(r);
			return PT_ENOMEM;
		}
	}
	/* the sim fills steps in plan order; the messages of a batch may start out of order */
	for (int i = 0; i < r->nlanes; i++)
		qsort(r->lane[i].span, r->lane[i].n, sizeof(pt_span), by_start);
	return 0;
}

void pt_vrank_fini(pt_vrank *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->nlanes; i++)
		free(r->lane[i].span);
	free(r->lane);
	r->lane = NULL;
	r->nlanes = 0;
}
