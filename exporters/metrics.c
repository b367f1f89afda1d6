/*
 * exporters/metrics.c — bubble, overlap, exposed communication and in-flight
 * activations, exactly as docs/metrics.md defines them. Each rank's events
 * arrive in start order from the reader; one sweep keeps the ends of the
 * intervals still open in small heaps, so the unions |C|, |M| and |C ∩ M|
 * and the activation count come out in one pass with memory bounded by the
 * number of overlapping intervals, not by the trace's size. The same sweep
 * finds the gaps of the compute union, which idle.c breaks down by phase and
 * by what they waited for.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "idle.h"

struct heap {
	int64_t *v;
	size_t n, cap;
};

static int heap_push(struct heap *h, int64_t x)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		int64_t *v = realloc(h->v, cap * sizeof *v);
		if (!v)
			return PT_ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	size_t i = h->n++;
	while (i && h->v[(i - 1) / 2] > x) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = x;
	return 0;
}

static int64_t heap_pop(struct heap *h)
{
	int64_t top = h->v[0], x = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		int64_t best = x;
		if (l < h->n && h->v[l] < best)
			best = h->v[m = l];
		if (l + 1 < h->n && h->v[l + 1] < best)
			best = h->v[m = l + 1];
		if (m == i)
			break;
		h->v[i] = h->v[m];
		i = m;
	}
	if (h->n)
		h->v[i] = x;
	return top;
}

static int64_t heap_min(const struct heap *h) { return h->n ? h->v[0] : INT64_MAX; }

struct sweep {
	struct heap comp, comm, act; /* open compute ends, open comm ends, pending activation releases */
	int64_t now;
	int64_t comp_free; /* when the compute union last became empty */
	int started;
	int act_count, act_peak;
	pt_rank_metrics *m;
};

/* Account [now, t) with the current state, then move to t. */
static void advance_to(struct sweep *s, int64_t t)
{
	if (!s->started) {
		s->now = t;
		s->started = 1;
		return;
	}
	if (t <= s->now)
		return;
	int64_t dt = t - s->now;
	if (s->comp.n)
		s->m->busy += dt;
	if (s->comm.n)
		s->m->comm += dt;
	if (s->comp.n && s->comm.n)
		s->m->overlap += dt;
	s->now = t;
}

/* Close every interval that ends at or before t, in time order. */
static void close_until(struct sweep *s, int64_t t)
{
	for (;;) {
		int64_t a = heap_min(&s->comp), b = heap_min(&s->comm), c = heap_min(&s->act);
		int64_t e = a < b ? a : b;
		if (c < e)
			e = c;
		if (e > t || e == INT64_MAX)
			return;
		advance_to(s, e);
		if (e == a) {
			heap_pop(&s->comp);
			if (!s->comp.n)
				s->comp_free = e;
		}
		else if (e == b)
			heap_pop(&s->comm);
		else {
			heap_pop(&s->act);
			s->act_count--;
		}
	}
}

enum { CLS_NONE, CLS_COMPUTE, CLS_COMM };

/* Compute or communication, as docs/metrics.md says: pipeline ops by kind
 * (unless they only label GPU work, as in imported traces), GPU activity by
 * the role of its stream. */
static int classify(const pt_event *ev, const uint32_t *comm_streams, int ncomm, int labels)
{
	int kind = ev->op.kind;
	if (pt_kind_is_compute(kind))
		return labels ? CLS_NONE : CLS_COMPUTE;
	if (pt_kind_is_comm(kind))
		return CLS_COMM;
	if (kind != PT_OP_KERNEL && kind != PT_OP_MEMCPY && kind != PT_OP_MEMSET)
		return CLS_NONE;
	for (int i = 0; i < ncomm; i++)
		if (comm_streams[i] == ev->stream)
			return CLS_COMM;
	return kind == PT_OP_KERNEL ? CLS_COMPUTE : CLS_NONE;
}

static int rank_metrics(pt_trace *t, int rank, int flush, int labels, const pt_metrics_feed *feed,
			struct idle_rank *ir, pt_rank_metrics *m)
{
	int err = idle_prepare(t, rank, flush, feed, ir);
	if (err)
		return err;
	uint32_t ids[256], comm_streams[256];
	int nids = pt_trace_streams(t, rank, ids, 256), ncomm = 0;
	for (int i = 0; i < nids; i++) {
		enum pt_stream_role role;
		if (pt_trace_stream(t, rank, ids[i], &role, NULL) == 0 && role == PT_STREAM_COMM)
			comm_streams[ncomm++] = ids[i];
	}
	pt_query q = pt_query_all();
	q.rank = rank;
	q.sources = PT_SRC_OPS | PT_SRC_COMMS | PT_SRC_KERNELS | PT_SRC_MEMCPY | PT_SRC_MEMSET;
	pt_cursor *c;
	if ((err = pt_cursor_open(t, &q, &c)))
		return err;
	struct sweep s;
	memset(&s, 0, sizeof s);
	s.m = m;
	m->first = INT64_MAX;
	m->last = INT64_MIN;
	pt_event ev;
	int got;
	while ((got = pt_cursor_next(c, &ev)) == 1) {
		if (feed && feed->event && (err = feed->event(feed->arg, &ev)))
			break;
		if (pt_kind_is_compute(ev.op.kind))
			m->nops[ev.op.kind]++;
		int cls = classify(&ev, comm_streams, ncomm, labels);
		if (cls == CLS_NONE)
			continue;
		close_until(&s, ev.start_ns);
		advance_to(&s, ev.start_ns);
		if (ev.start_ns < m->first)
			m->first = ev.start_ns;
		if (ev.end_ns > m->last)
			m->last = ev.end_ns;
		int kind = ev.op.kind;
		if (cls == CLS_COMM) {
			if (pt_kind_is_comm(kind))
				idle_message(ir, &ev);
			m->ncomm++;
			err = heap_push(&s.comm, ev.end_ns);
		} else {
			int first = !m->ncompute, gap = !first && !s.comp.n && ev.start_ns > s.comp_free;
			if (first)
				m->first_compute = ev.start_ns;
			idle_compute(ir, &ev, gap, s.comp_free, first);
			m->ncompute++;
			err = heap_push(&s.comp, ev.end_ns);
			/* activations: held from a forward's start to its backward's end */
			if (!err && (kind == PT_OP_F || kind == PT_OP_FB)) {
				if (++s.act_count > s.act_peak)
					s.act_peak = s.act_count;
			}
			if (!err && (kind == PT_OP_B || kind == PT_OP_I || kind == PT_OP_FB))
				err = heap_push(&s.act, ev.end_ns);
		}
		if (err)
			break;
	}
	if (got < 0)
		err = got;
	if (!err)
		close_until(&s, INT64_MAX - 1);
	m->last_compute = s.comp_free;
	m->peak_act = s.act_peak;
	if (!err)
		err = idle_end_rank(t, ir, m);
	free(s.comp.v);
	free(s.comm.v);
	free(s.act.v);
	pt_cursor_close(c);
	if (m->first == INT64_MAX)
		m->first = m->last = 0;
	return err;
}

int pt_metrics_compute(pt_trace *t, pt_metrics **out) { return pt_metrics_compute_each(t, NULL, out); }

int pt_metrics_compute_each(pt_trace *t, const pt_metrics_feed *feed, pt_metrics **out)
{
	*out = NULL;
	pt_metrics *m = calloc(1, sizeof *m);
	if (!m)
		return PT_ENOMEM;
	int n = pt_trace_nranks(t);
	m->nranks = n;
	m->rank = calloc((size_t)(n ? n : 1), sizeof *m->rank);
	if (!m->rank) {
		free(m);
		return PT_ENOMEM;
	}
	int err = 0;
	const char *mode = pt_trace_meta(t, "comm_mode");
	int flush = mode && !strcmp(mode, "flush");
	const char *from = pt_trace_meta(t, "ops.from");
	m->ops_are_labels = from && !strcmp(from, "annotations");
	m->win_start = INT64_MAX;
	m->win_end = INT64_MIN;
	struct idle_rank ir;
	memset(&ir, 0, sizeof ir);
	for (int i = 0; i < n && !err; i++) {
		pt_rank_info ri;
		if ((err = pt_trace_rank_at(t, i, &ri)))
			break;
		int rank = ri.rank;
		pt_rank_metrics *rm = &m->rank[i];
		rm->rank = rank;
		rm->theory_bubble = ri.theory_bubble_ns;
		rm->theory_peak = ri.theory_peak_act;
		rm->sim_bubble = -1;
		err = rank_metrics(t, rank, flush, m->ops_are_labels, feed, &ir, rm);
		if (!err && rm->ncompute + rm->ncomm) {
			if (rm->first < m->win_start)
				m->win_start = rm->first;
			if (rm->last > m->win_end)
				m->win_end = rm->last;
		}
	}
	idle_release(&ir);
	if (err) {
		pt_metrics_destroy(m);
		return err;
	}
	if (m->win_end < m->win_start)
		m->win_start = m->win_end = 0;
	int64_t window = m->win_end - m->win_start;
	int64_t theory_sum = 0, theory_den = 0;
	int theory_all = n > 0;
	m->theory_bubble = n > 0 ? m->rank[0].theory_bubble : -1;
	m->theory_peak = -1;
	for (int i = 0; i < n; i++) {
		pt_rank_metrics *rm = &m->rank[i];
		rm->bubble = window - rm->busy;
		rm->span_bubble = (rm->last - rm->first) - rm->busy;
		rm->exposed = rm->comm - rm->overlap;
		idle_finish(rm, m->win_start, m->win_end);
		for (int k = 0; k < 3 && rm->has_idle; k++) {
			m->idle_phase[k] += rm->idle_phase[k];
			m->idle_cause[k] += rm->idle_cause[k];
		}
		m->has_idle |= rm->has_idle;
		m->busy += rm->busy;
		m->bubble += rm->bubble;
		m->comm += rm->comm;
		m->overlap += rm->overlap;
		m->exposed += rm->exposed;
		for (int k = 0; k <= PT_OP_FB; k++)
			m->nops[k] += rm->nops[k];
		if (rm->theory_bubble < 0)
			theory_all = 0;
		else {
			theory_sum += rm->theory_bubble;
			theory_den += rm->busy + rm->theory_bubble;
		}
		if (rm->theory_bubble != m->theory_bubble)
			m->theory_bubble = -1;
		if (rm->theory_peak > m->theory_peak)
			m->theory_peak = rm->theory_peak;
	}
	m->bubble_ratio = window > 0 && n > 0 ? (double)m->bubble / ((double)n * (double)window) : 0;
	m->overlap_ratio = m->comm > 0 ? (double)m->overlap / (double)m->comm : NAN;
	m->theory_bubble_ratio = theory_all && theory_den > 0 ? (double)theory_sum / (double)theory_den : NAN;
	*out = m;
	return 0;
}

void pt_metrics_destroy(pt_metrics *m)
{
	if (!m)
		return;
	free(m->rank);
	free(m);
}
