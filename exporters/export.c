/*
 * exporters/export.c — the export driver and the registry of formats. One
 * cursor delivers the selected events in (start, rank, stream) order; the
 * driver names each event, pairs messages and launches into flows, keeps the
 * in-flight activation count of each rank, and hands the events to the
 * format's callbacks: event() at each start, event_end() at each end, both
 * in time order (an end at t before a start at t). For that it keeps only
 * the slices still open, in a heap by end time, and places each slice on a
 * lane of its stream where it overlaps nothing (ranges and runtime calls may
 * nest): memory follows the concurrency of the trace, not its size. The
 * cursor is read on threads of their own (export_feed.c); the output goes
 * through one buffer into a temporary file renamed over the target at the
 * end. What a format writes is the format's business
 * (perfetto.c, chrome_json.c, csv.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export_internal.h"
#include "exporters.h"
#include "libtrace/grow.h"

/* ---------------------------------------------------------- the registry */

extern const pt_format pt_format_perfetto, pt_format_chrome_json, pt_format_csv;

const pt_format *const pt_formats[] = {
    &pt_format_perfetto,
    &pt_format_chrome_json,
    &pt_format_csv,
    NULL,
};

const pt_format *pt_format_by_name(const char *name)
{
	for (int i = 0; pt_formats[i]; i++)
		if (!strcmp(pt_formats[i]->name, name))
			return pt_formats[i];
	return NULL;
}

const pt_format *pt_format_by_path(const char *path)
{
	size_t n = strlen(path);
	for (int i = 0; pt_formats[i]; i++) {
		const char *e = pt_formats[i]->exts;
		while (*e) {
			size_t k = strcspn(e, " ");
			if (k && k <= n && !strncmp(path + n - k, e, k))
				return pt_formats[i];
			e += k;
			e += *e == ' ';
		}
	}
	return NULL;
}

pt_export_opts pt_export_opts_all(void)
{
	pt_export_opts o;
	memset(&o, 0, sizeof o);
	o.from_ns = INT64_MIN;
	o.to_ns = INT64_MAX;
	return o;
}

/* ------------------------------------------------------------- the state */

struct slice {
	pt_event ev;
	int depth;
	uint64_t late_flow; /* a RECV that began before its SEND: its flow, to end at its end */
};

struct lane {
	struct slice *stack;
	int depth;
	size_t cap;
	int64_t last_start; /* of the last slice placed here */
};

struct slot {
	int32_t rank;
	uint32_t stream;
	int cpu, order, rank_idx;
	char *name;
	struct lane *lanes;
	int nlanes;
};

struct rank_state {
	int32_t rank;
	int act;      /* in-flight activations */
	int nunknown; /* streams seen that the streams table does not describe */
	char label[64];
};

struct pending {
	int64_t end;
	int slot, lane, depth;
};

#define OUT_CAP	  (1u << 20)
#define GROUP_MAX 4096

struct pt_export {
	pt_trace *t;
	const pt_format *f;
	pt_export_opts o;
	void *state;

	int fd;
	unsigned char *buf;
	size_t len;
	int werr; /* errno of the first failed write */

	int32_t *sel; /* sorted selected ranks (when o.ranks) */
	int nsel;
	int msg_flows, launch_flows, op_flows, counter, activity;

	struct pt_map slot_map, rank_map;
	struct pt_map act_start; /* rank -> activations held when a --from window opens */
	struct pt_msg_flows mf; /* message flows whose ends may not meet in time order */
	struct slot *slots;
	int nslots;
	size_t cap_slots;
	struct rank_state *ranks;
	int nranks;
	size_t cap_ranks;

	struct pending *heap;
	size_t nheap, cap_heap;

	pt_event *group;
	int ngroup;
	int *order;

	char name[256];
	int64_t events;
};

/* ------------------------------------------------------------ the output */

static void flush_out(pt_export *x)
{
	size_t off = 0;
	while (off < x->len && !x->werr) {
		ssize_t w = write(x->fd, x->buf + off, x->len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			x->werr = errno;
		} else {
			off += (size_t)w;
		}
	}
	x->len = 0;
}

unsigned char *pt_export_reserve(pt_export *x, size_t n)
{
	if (x->len + n > OUT_CAP)
		flush_out(x);
	return x->buf + x->len;
}

void pt_export_commit(pt_export *x, size_t n)
{
	x->len += n;
}

void pt_export_write(pt_export *x, const void *p, size_t n)
{
	const unsigned char *s = p;
	while (n) {
		if (x->len == OUT_CAP)
			flush_out(x);
		size_t k = OUT_CAP - x->len < n ? OUT_CAP - x->len : n;
		memcpy(x->buf + x->len, s, k);
		x->len += k;
		s += k;
		n -= k;
	}
}

/* ------------------------------------------------------------- accessors */

pt_trace *pt_export_trace(pt_export *x)
{
	return x->t;
}
const pt_export_opts *pt_export_options(pt_export *x)
{
	return &x->o;
}
void *pt_export_state(pt_export *x)
{
	return x->state;
}
int pt_export_has_counter(pt_export *x)
{
	return x->counter;
}
int pt_export_has_activity(pt_export *x)
{
	return x->activity;
}

void pt_export_slot(pt_export *x, int slot, pt_slot_info *out)
{
	const struct slot *s = &x->slots[slot];
	out->rank = s->rank;
	out->stream = s->stream;
	out->cpu = s->cpu;
	out->order = s->order;
	out->rank_idx = s->rank_idx;
	out->name = s->name;
	out->label = x->ranks[s->rank_idx].label;
}

/* -------------------------------------------------------- ranks and slots */

static int wanted(const pt_export *x, uint32_t kinds)
{
	return x->o.kinds == 0 || (x->o.kinds & kinds) != 0;
}

static int rank_selected(const pt_export *x, int32_t rank)
{
	if (!x->sel)
		return 1;
	int lo = 0, hi = x->nsel - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (x->sel[mid] == rank)
			return 1;
		if (x->sel[mid] < rank)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 0;
}

/* Ops of these kinds on rank that start before t and end before it too:
 * those a window opening at t leaves out. */
static int64_t ended_before(pt_trace *t, int32_t rank, uint32_t kinds, int64_t at)
{
	pt_query q = pt_query_all();
	q.rank = rank;
	q.sources = PT_SRC_OPS;
	q.to_ns = at;
	q.kinds = kinds;
	int64_t all = pt_trace_count(t, &q);
	q.from_ns = at;
	int64_t open = pt_trace_count(t, &q);
	return all < 0 ? all : open < 0 ? open : all - open;
}

/*
 * The activations a rank holds when a --from window opens, from the ops the
 * window leaves out (those that ended before it): their forwards' +1 less
 * their backwards' -1. Ops that overlap the window's start are exported and
 * counted as they come.
 */
static int act_before(pt_export *x, int32_t rank, int *act)
{
	*act = 0;
	if (x->o.from_ns == INT64_MIN || !x->counter)
		return 0;
	int64_t f = ended_before(x->t, rank, 1u << PT_OP_F | 1u << PT_OP_FB, x->o.from_ns);
	int64_t b = ended_before(x->t, rank, 1u << PT_OP_B | 1u << PT_OP_I | 1u << PT_OP_FB, x->o.from_ns);
	if (f < 0 || b < 0)
		return (int)(f < 0 ? f : b);
	*act = (int)(f - b);
	return 0;
}

static int rank_index(pt_export *x, int32_t rank, int *out)
{
	int i = pt_map_get(&x->rank_map, (uint64_t)(uint32_t)rank);
	if (i >= 0) {
		*out = i;
		return 0;
	}
	int err = pt_grow(&x->ranks, &x->cap_ranks, (size_t)x->nranks + 1, sizeof *x->ranks);
	if (err || (err = pt_map_put(&x->rank_map, (uint64_t)(uint32_t)rank, x->nranks)))
		return err;
	struct rank_state *r = &x->ranks[x->nranks];
	memset(r, 0, sizeof *r);
	r->rank = rank;
	pt_rank_info ri;
	if (pt_trace_rank(x->t, rank, &ri) == 0 && ri.label[0])
		snprintf(r->label, sizeof r->label, "%s", ri.label);
	else
		snprintf(r->label, sizeof r->label, "rank %d", rank);
	int b = pt_map_get(&x->act_start, (uint64_t)(uint32_t)rank);
	r->act = b > 0 ? b : 0;
	*out = x->nranks++;
	return 0;
}

/* act_before for every rank the export may meet, before the reading thread
 * takes the database. */
static int act_baselines(pt_export *x)
{
	if (x->o.from_ns == INT64_MIN || !x->counter)
		return 0;
	int n = x->sel ? x->nsel : pt_trace_nranks(x->t);
	for (int i = 0; i < n; i++) {
		int32_t rank = x->sel ? x->sel[i] : 0;
		pt_rank_info ri;
		if (!x->sel) {
			if (pt_trace_rank_at(x->t, i, &ri))
				continue;
			rank = ri.rank;
		}
		int act, err = act_before(x, rank, &act);
		if (err || (err = pt_map_put(&x->act_start, (uint64_t)(uint32_t)rank, act)))
			return err;
	}
	return 0;
}

/* CPU-side activity names threads by id; the rest lives on streams. */
static int on_cpu(const pt_event *ev)
{
	return ev->op.kind == PT_OP_RUNTIME || (ev->op.kind == PT_OP_RANGE && ev->device < 0);
}

static int slot_of(pt_export *x, const pt_event *ev, int *out)
{
	int cpu = on_cpu(ev);
	uint64_t key = (uint64_t)(uint32_t)ev->rank << 33 | (uint64_t)cpu << 32 | ev->stream;
	int i = pt_map_get(&x->slot_map, key);
	if (i >= 0) {
		*out = i;
		return 0;
	}
	int ri, err = rank_index(x, ev->rank, &ri);
	if (err || (err = pt_grow(&x->slots, &x->cap_slots, (size_t)x->nslots + 1, sizeof *x->slots)))
		return err;
	struct slot *s = &x->slots[x->nslots];
	memset(s, 0, sizeof *s);
	s->rank = ev->rank;
	s->stream = ev->stream;
	s->cpu = cpu;
	s->rank_idx = ri;
	const char *name = NULL;
	char buf[48];
	uint32_t ids[1024];
	int n = pt_trace_streams(x->t, ev->rank, ids, 1024);
	s->order = -1;
	for (int k = 0; !cpu && k < n; k++)
		if (ids[k] == ev->stream) {
			s->order = k;
			pt_trace_stream(x->t, ev->rank, ev->stream, NULL, &name);
		}
	if (s->order < 0)
		s->order = n + x->ranks[ri].nunknown++;
	if (!name || !*name) {
		if (!cpu && ev->stream == PT_STREAM_NONE)
			snprintf(buf, sizeof buf, "device-wide"); /* context and event syncs */
		else
			snprintf(buf, sizeof buf, cpu ? "thread %u" : "stream %u", ev->stream);
		name = buf;
	}
	s->name = strdup(name);
	if (!s->name || (err = pt_map_put(&x->slot_map, key, x->nslots))) {
		free(s->name);
		return PT_ENOMEM;
	}
	*out = x->nslots++;
	return 0;
}

/* ------------------------------------------------------ the end-time heap */

static int pend_before(const struct pending *a, const struct pending *b)
{
	if (a->end != b->end)
		return a->end < b->end;
	if (a->slot != b->slot)
		return a->slot < b->slot;
	if (a->lane != b->lane)
		return a->lane < b->lane;
	return a->depth > b->depth; /* the inner slice of a nest ends first */
}

static int heap_push(pt_export *x, struct pending p)
{
	if (pt_grow(&x->heap, &x->cap_heap, x->nheap + 1, sizeof *x->heap))
		return PT_ENOMEM;
	size_t i = x->nheap++;
	while (i && pend_before(&p, &x->heap[(i - 1) / 2])) {
		x->heap[i] = x->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	x->heap[i] = p;
	return 0;
}

static struct pending heap_pop(pt_export *x)
{
	struct pending top = x->heap[0], last = x->heap[--x->nheap];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		const struct pending *best = &last;
		if (l < x->nheap && pend_before(&x->heap[l], best))
			best = &x->heap[m = l];
		if (l + 1 < x->nheap && pend_before(&x->heap[l + 1], best))
			best = &x->heap[m = l + 1];
		if (m == i)
			break;
		x->heap[i] = x->heap[m];
		i = m;
	}
	if (x->nheap)
		x->heap[i] = last;
	return top;
}

/* ------------------------------------------------------- naming and flows */

static const char *event_name(pt_export *x, const pt_event *ev, size_t *len)
{
	int kind = ev->op.kind;
	if (!pt_kind_is_activity(kind)) {
		int n = pt_op_name(&ev->op, PT_NAME_LONG, x->name, sizeof x->name);
		*len = n < (int)sizeof x->name ? (size_t)n : sizeof x->name - 1;
		return x->name;
	}
	const char *s = ev->name ? pt_trace_string(x->t, ev->name) : "";
	if (!*s)
		s = pt_kind_name(kind);
	*len = strlen(s);
	return s;
}

/* A SEND's or RECV's flow (see export_flows.c); *late set for a RECV that
 * began before its SEND, to end the flow at its end. With no event_end
 * callback every RECV ends its flow as it starts. */
static int message_flow(pt_export *x, const pt_event *ev, pt_xev *e, uint64_t *late)
{
	int send = ev->op.kind == PT_OP_SEND;
	if (!send && ev->op.kind != PT_OP_RECV)
		return 0;
	uint64_t id = send ? pt_flow_message(ev->rank, ev->op.peer, ev->op.seq)
			   : pt_flow_message(ev->op.peer, ev->rank, ev->op.seq);
	int r = !x->f->event_end ? 1 : send ? pt_msg_flows_send(&x->mf, id, ev->start_ns) : pt_msg_flows_recv(&x->mf, id);
	if (r < 0)
		return r;
	if (send && r)
		e->flow_begin[0] = id;
	else if (!send && r)
		e->flow_end = id;
	else if (!send)
		*late = id;
	return 0;
}

static int set_flows(pt_export *x, const pt_event *ev, pt_xev *e, uint64_t *late)
{
	int kind = ev->op.kind;
	if (x->msg_flows && ev->op.seq >= 0 && rank_selected(x, ev->op.peer)) {
		int err = message_flow(x, ev, e, late);
		if (err)
			return err;
	}
	if (x->op_flows) {
		if (!pt_kind_is_activity(kind) && ev->step >= 0)
			e->flow_begin[1] = pt_flow_id(PT_FLOW_OP, (uint64_t)pt_ext_id(ev->rank, ev->step));
		else if (pt_kind_is_activity(kind) && ev->ext)
			e->flow_step = pt_flow_id(PT_FLOW_OP, (uint64_t)ev->ext);
	}
	if (x->launch_flows && ev->corr) {
		if (kind == PT_OP_RUNTIME)
			e->flow_begin[0] = pt_flow_launch(ev->rank, ev->corr);
		else if (kind == PT_OP_KERNEL || kind == PT_OP_MEMCPY || kind == PT_OP_MEMSET)
			e->flow_end = pt_flow_launch(ev->rank, ev->corr);
	}
	return 0;
}

/* ------------------------------------------------------------ the sweep */

static int is_fwd(int kind)
{
	return kind == PT_OP_F || kind == PT_OP_FB;
}
static int is_bwd(int kind)
{
	return kind == PT_OP_B || kind == PT_OP_I || kind == PT_OP_FB;
}
static int nests(int kind)
{
	return kind == PT_OP_RANGE || kind == PT_OP_RUNTIME;
}

/* Deliver the end of every open slice that ends at or before t. */
static int close_until(pt_export *x, int64_t t)
{
	while (x->nheap && x->heap[0].end <= t) {
		struct pending p = heap_pop(x);
		struct slot *s = &x->slots[p.slot];
		struct lane *l = &s->lanes[p.lane];
		const struct slice *sl = &l->stack[--l->depth];
		const pt_event *ev = &sl->ev;
		pt_xev e;
		memset(&e, 0, sizeof e);
		e.ev = ev;
		e.kind = ev->op.kind;
		e.cat = pt_kind_name(e.kind);
		e.slot = p.slot;
		e.lane = p.lane;
		e.dur = ev->end_ns - ev->start_ns;
		e.act = -1;
		/* past the window's end the forwards that start there are left out:
		 * the count would be wrong, so it is not shown */
		if (x->counter && is_bwd(e.kind)) {
			int act = --x->ranks[s->rank_idx].act;
			if (ev->end_ns < x->o.to_ns)
				e.act = act;
		}
		int err = sl->late_flow ? pt_msg_flows_late(&x->mf, sl->late_flow, &e.flow_ts) : 0;
		if (err > 0)
			e.flow_end = sl->late_flow;
		if (err >= 0)
			err = x->f->event_end(x, &e);
		if (err)
			return err;
	}
	return 0;
}

/* Put ev on the first lane of its slot where it overlaps nothing it may not
 * nest in; a new lane when every one is busy. Two slices never start at the
 * same time on one lane unless one nests in the other: zero-length messages
 * of one batch get a row each, where a viewer shows them apart and a JSON
 * flow event binds to exactly one of them. */
static int place(pt_export *x, int slot, const pt_event *ev, int *lane)
{
	struct slot *s = &x->slots[slot];
	int i;
	for (i = 0; i < s->nlanes; i++) {
		struct lane *l = &s->lanes[i];
		if (!l->depth) {
			if (l->last_start != ev->start_ns)
				break;
			continue;
		}
		const pt_event *top = &l->stack[l->depth - 1].ev;
		if (nests(ev->op.kind) && nests(top->op.kind) && top->end_ns >= ev->end_ns)
			break;
	}
	if (i == s->nlanes) {
		struct lane *nl = realloc(s->lanes, (size_t)(s->nlanes + 1) * sizeof *nl);
		if (!nl)
			return PT_ENOMEM;
		s->lanes = nl;
		memset(&s->lanes[s->nlanes], 0, sizeof *nl);
		s->lanes[s->nlanes++].last_start = INT64_MIN;
	}
	struct lane *l = &s->lanes[i];
	l->last_start = ev->start_ns;
	/* Most lanes never hold more than one slice, and a trace of thousands
	 * of ranks has tens of thousands of lanes: room for one to begin with. */
	if (!l->cap && !(l->stack = malloc(sizeof *l->stack)))
		return PT_ENOMEM;
	l->cap += !l->cap;
	int err = pt_grow(&l->stack, &l->cap, (size_t)l->depth + 1, sizeof *l->stack);
	if (err)
		return err;
	l->stack[l->depth].ev = *ev;
	l->stack[l->depth].depth = l->depth;
	l->stack[l->depth].late_flow = 0;
	l->depth++;
	*lane = i;
	return heap_push(x, (struct pending){ev->end_ns, slot, i, l->depth - 1});
}

static int deliver(pt_export *x, pt_event *ev)
{
	if (ev->end_ns < ev->start_ns)
		ev->end_ns = ev->start_ns;
	pt_xev e;
	memset(&e, 0, sizeof e);
	e.ev = ev;
	e.kind = ev->op.kind;
	e.cat = pt_kind_name(e.kind);
	e.dur = ev->end_ns - ev->start_ns;
	e.act = -1;
	e.name = event_name(x, ev, &e.name_len);
	int err = slot_of(x, ev, &e.slot);
	if (err)
		return err;
	if (x->f->event_end) {
		if ((err = close_until(x, ev->start_ns)) || (err = place(x, e.slot, ev, &e.lane)))
			return err;
	}
	if (x->counter && is_fwd(e.kind))
		e.act = ++x->ranks[x->slots[e.slot].rank_idx].act;
	uint64_t late = 0;
	if ((err = set_flows(x, ev, &e, &late)))
		return err;
	if (late) { /* place() put ev on top of its lane */
		struct lane *l = &x->slots[e.slot].lanes[e.lane];
		l->stack[l->depth - 1].late_flow = late;
	}
	x->events++;
	return x->f->event ? x->f->event(x, &e) : 0;
}

/* Where flows go: plan ops (their flows' sources), then CPU-side activity
 * (launch sources), then what flows end in (RECVs, GPU activity). */
static int flow_class(int kind)
{
	if (!pt_kind_is_activity(kind))
		return kind == PT_OP_RECV ? 2 : 0;
	return kind == PT_OP_RUNTIME || kind == PT_OP_RANGE ? 1 : 2;
}

/* Events that start together: flow sources before the events their flows
 * reach (so every reader sees a flow begin before it goes on), then longer
 * first (so an enclosing slice opens before what it encloses: nesting only
 * happens within a class); cursor order otherwise. */
static int group_cmp(const pt_export *x, int a, int b)
{
	const pt_event *p = &x->group[a], *q = &x->group[b];
	int cp = flow_class(p->op.kind), cq = flow_class(q->op.kind);
	if (cp != cq)
		return cp - cq;
	int64_t dp = p->end_ns - p->start_ns, dq = q->end_ns - q->start_ns;
	if (dp != dq)
		return dp > dq ? -1 : 1;
	return a - b;
}

static int group_qcmp(const void *a, const void *b, void *x)
{
	return group_cmp(x, *(const int *)a, *(const int *)b);
}

static int flush_group(pt_export *x)
{
	int n = x->ngroup;
	for (int i = 0; i < n; i++)
		x->order[i] = i;
	if (n > 16) { /* thousands start together in a large run: 24% of its time went to insertion sort */
		qsort_r(x->order, (size_t)n, sizeof *x->order, group_qcmp, x);
	} else {
		for (int i = 1; i < n; i++) {
			int v = x->order[i], j = i;
			while (j > 0 && group_cmp(x, v, x->order[j - 1]) < 0) {
				x->order[j] = x->order[j - 1];
				j--;
			}
			x->order[j] = v;
		}
	}
	x->ngroup = 0;
	for (int i = 0; i < n; i++) {
		int err = deliver(x, &x->group[x->order[i]]);
		if (err)
			return err;
	}
	return 0;
}

/* Whether any event of q's selection exists (one step of a cursor). */
static int any_event(pt_trace *t, const pt_query *q, int *yes)
{
	pt_cursor *c;
	pt_event ev;
	*yes = 0;
	int err = pt_cursor_open(t, q, &c);
	if (err)
		return err;
	int got = pt_cursor_next(c, &ev);
	pt_cursor_close(c);
	if (got < 0)
		return got;
	*yes = got;
	return 0;
}

static int run(pt_export *x)
{
	pt_query q = pt_query_all();
	q.ranks = x->sel;
	q.nranks = x->nsel;
	q.from_ns = x->o.from_ns;
	q.to_ns = x->o.to_ns;
	q.kinds = x->o.kinds;

	uint32_t act_kinds =
	    1u << PT_OP_KERNEL | 1u << PT_OP_MEMCPY | 1u << PT_OP_MEMSET | 1u << PT_OP_SYNC | 1u << PT_OP_RUNTIME;
	pt_query qa = q;
	qa.kinds = x->o.kinds ? x->o.kinds & act_kinds : act_kinds;
	int err = qa.kinds ? any_event(x->t, &qa, &x->activity) : 0;
	if (err)
		return err;
	x->counter =
	    wanted(x, 1u << PT_OP_F | 1u << PT_OP_FB) && wanted(x, 1u << PT_OP_B | 1u << PT_OP_I | 1u << PT_OP_FB);
	x->msg_flows = wanted(x, 1u << PT_OP_SEND) && wanted(x, 1u << PT_OP_RECV);
	x->launch_flows = x->activity && wanted(x, 1u << PT_OP_RUNTIME);
	x->op_flows = x->activity && wanted(x, (1u << PT_OP_KERNEL) - 2); /* some plan op kind (F..RECV) */

	int64_t first = INT64_MAX, last = INT64_MIN;
	if (x->o.progress && (err = pt_trace_span(x->t, &q, &first, &last)))
		return err;
	if (x->o.from_ns > first)
		first = x->o.from_ns;
	if (x->o.to_ns < last)
		last = x->o.to_ns;
	double span = last > first ? (double)(last - first) : 1;

	if ((err = act_baselines(x)) || (x->f->header && (err = x->f->header(x))))
		return err;
	pt_feed *feed;
	if ((err = pt_feed_start(x->t, &q, &feed)))
		return err;
	int got;
	const pt_event *ev;
	int64_t next_report = 1 << 14;
	unsigned k = 0;
	while (!err && (got = pt_feed_next(feed, &ev)) == 1) {
		if (x->ngroup && (ev->start_ns != x->group[0].start_ns || x->ngroup == GROUP_MAX))
			err = flush_group(x);
		x->group[x->ngroup++] = *ev;
		if (++k % 1024)
			continue;
		if (!err && x->o.cancel && *x->o.cancel)
			err = pt_logerr(PT_EIO, "interrupted; nothing written");
		if (x->o.progress && x->events >= next_report) {
			next_report = x->events + (1 << 16);
			x->o.progress(x->o.progress_ctx, (double)(x->group[0].start_ns - first) / span, x->events, 0);
		}
	}
	pt_feed_stop(feed);
	if (!err && got < 0)
		err = got;
	if (err || (err = flush_group(x)))
		return err;
	if (x->f->event_end && (err = close_until(x, INT64_MAX)))
		return err;
	if (x->mf.lost)
		pt_log(PT_LOG_WARN,
		       "%s: %" PRId64 " message arrow%s left out: the RECV ended before its SEND began (the ranks' "
		       "clocks disagree; `pipetrace merge` aligns the traces of one run)",
		       pt_trace_path(x->t), x->mf.lost, x->mf.lost == 1 ? "" : "s");
	if (x->f->footer && (err = x->f->footer(x)))
		return err;
	if (x->o.progress)
		x->o.progress(x->o.progress_ctx, 1, x->events, 1);
	return 0;
}

/* ------------------------------------------------------- files and setup */

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return x < y ? -1 : x > y;
}

/* Open a temporary file beside path (or stdout for "-"). */
static int open_out(const char *path, char **tmp, int *fd)
{
	*tmp = NULL;
	if (!strcmp(path, "-")) {
		*fd = STDOUT_FILENO;
		return 0;
	}
	size_t n = strlen(path);
	*tmp = malloc(n + 16);
	if (!*tmp)
		return PT_ENOMEM;
	snprintf(*tmp, n + 16, "%s.tmp-XXXXXX", path);
	*fd = mkstemp(*tmp);
	if (*fd < 0) {
		int e = errno;
		free(*tmp);
		*tmp = NULL;
		int code = e == ENOENT || e == ENOTDIR				    ? PT_ENOENT
			   : e == EACCES || e == EROFS || e == EISDIR || e == EPERM ? PT_EINVAL
										    : PT_EIO;
		return pt_logerr(code, "%s: cannot write here: %s", path, strerror(e));
	}
	fchmod(*fd, 0644 & ~umask(umask(0)));
	return 0;
}

int pt_export_file(pt_trace *t, const pt_format *f, const pt_export_opts *opts, const char *path, int64_t *events)
{
	if (events)
		*events = 0;
	pt_export *x = calloc(1, sizeof *x);
	if (!x)
		return PT_ENOMEM;
	x->t = t;
	x->f = f;
	x->o = opts ? *opts : pt_export_opts_all();
	x->fd = -1;
	char *tmp = NULL;
	int err = PT_ENOMEM;
	x->buf = malloc(OUT_CAP);
	x->group = malloc((GROUP_MAX + 1) * sizeof *x->group);
	x->order = malloc(GROUP_MAX * sizeof *x->order);
	x->state = calloc(1, f->state_size ? f->state_size : 1);
	if (!x->buf || !x->group || !x->order || !x->state)
		goto out;
	if (x->o.ranks) {
		x->nsel = x->o.nranks;
		x->sel = malloc((size_t)(x->nsel ? x->nsel : 1) * sizeof *x->sel);
		if (!x->sel)
			goto out;
		memcpy(x->sel, x->o.ranks, (size_t)x->nsel * sizeof *x->sel);
		qsort(x->sel, (size_t)x->nsel, sizeof *x->sel, cmp_i32);
	}
	if ((err = open_out(path, &tmp, &x->fd)))
		goto out;
	err = run(x);
	if (!err) {
		flush_out(x);
		if (x->werr)
			err = pt_logerr(PT_EIO, "%s: write failed: %s", path, strerror(x->werr));
	}
	if (tmp) {
		if (close(x->fd) != 0 && !err)
			err = pt_logerr(PT_EIO, "%s: write failed: %s", path, strerror(errno));
		if (!err && rename(tmp, path) != 0)
			err = pt_logerr(PT_EIO, "%s: cannot rename the finished file into place: %s", path,
					strerror(errno));
		if (err)
			unlink(tmp);
	}
	if (!err && events)
		*events = x->events;
out:
	if (f->fini)
		f->fini(x);
	free(tmp);
	for (int i = 0; i < x->nslots; i++) {
		for (int k = 0; k < x->slots[i].nlanes; k++)
			free(x->slots[i].lanes[k].stack);
		free(x->slots[i].lanes);
		free(x->slots[i].name);
	}
	free(x->slots);
	free(x->ranks);
	pt_map_free(&x->slot_map);
	pt_map_free(&x->rank_map);
	pt_map_free(&x->act_start);
	pt_msg_flows_free(&x->mf);
	free(x->heap);
	free(x->sel);
	free(x->state);
	free(x->group);
	free(x->order);
	free(x->buf);
	free(x);
	return err;
}
