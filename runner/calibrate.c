/*
 * runner/calibrate.c — a cost model measured on a recorded run: the median
 * duration of each compute op kind (F, B, I, W, FB) and a link (latency,
 * bandwidth) fitted on the messages' transfer times, read through libtrace's
 * reader from any trace that has ops (any backend, or an imported profile).
 * Kinds the run did not execute are derived from those it did where that is
 * sound (B = I + W, I = W = B/2, FB = F + B, ...) and flagged as derived.
 * This file only measures; simulating with the result is sim.c's job and
 * predict.c ties the two together. The fit is a few lines of arithmetic on
 * medians, which no Debian library does for us in C without dragging in a
 * statistics package.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "libtrace/grow.h"
#include "runner.h"

struct i64v {
	int64_t *v;
	size_t n, cap;
};

static int push(struct i64v *a, int64_t x)
{
	if (pt_grow(&a->v, &a->cap, a->n + 1, sizeof *a->v))
		return PT_ENOMEM;
	a->v[a->n++] = x;
	return 0;
}

/* The k-th smallest (from 0) of n int64s lying stride bytes apart from base,
 * which it reorders: a quickselect, in place (a sort would want a scratch
 * copy as large as a million messages' durations), with a three-way
 * partition so runs of equal durations, the rule in sim traces, cost one
 * pass. n > k. */
static int64_t kth(char *base, size_t stride, size_t n, size_t k)
{
#define AT(i) (*(int64_t *)(base + (i) * stride))
	size_t lo = 0, hi = n; /* the k-th lies in [lo, hi) */
	for (;;) {
		int64_t a = AT(lo), b = AT(lo + (hi - lo) / 2), c = AT(hi - 1);
		int64_t pivot = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
		size_t lt = lo, i = lo, gt = hi; /* [lo, lt) < pivot, [lt, i) = pivot, [gt, hi) > pivot */
		while (i < gt) {
			int64_t x = AT(i);
			if (x < pivot) {
				AT(i) = AT(lt);
				AT(lt) = x;
				lt++;
				i++;
			} else if (x > pivot) {
				gt--;
				AT(i) = AT(gt);
				AT(gt) = x;
			} else {
				i++;
			}
		}
		if (k < lt)
			hi = lt;
		else if (k >= gt)
			lo = gt;
		else
			return pivot;
	}
#undef AT
}

/* The last transfer seen on each directed link (sender, receiver), for the
 * queueing evidence: open addressing on the pair. */
struct lastx {
	int64_t key; /* sender << 32 | receiver, -1 empty */
	int64_t start, end;
};

struct links {
	struct lastx *v;
	size_t n, cap; /* cap a power of two */
};

static struct lastx *link_slot(struct links *l, int a, int b)
{
	if (2 * (l->n + 1) > l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct lastx *v = malloc(cap * sizeof *v);
		if (!v)
			return NULL;
		for (size_t i = 0; i < cap; i++)
			v[i].key = -1;
		for (size_t i = 0; i < l->cap; i++) {
			if (l->v[i].key < 0)
				continue;
			size_t h = (size_t)(l->v[i].key * 0x9E3779B97F4A7C15ull) & (cap - 1);
			while (v[h].key >= 0)
				h = (h + 1) & (cap - 1);
			v[h] = l->v[i];
		}
		free(l->v);
		l->v = v;
		l->cap = cap;
	}
	int64_t key = (int64_t)a << 32 | (uint32_t)b;
	size_t h = (size_t)(key * 0x9E3779B97F4A7C15ull) & (l->cap - 1);
	while (l->v[h].key >= 0 && l->v[h].key != key)
		h = (h + 1) & (l->cap - 1);
	if (l->v[h].key < 0) {
		l->v[h] = (struct lastx){key, -1, -1};
		l->n++;
	}
	return &l->v[h];
}

struct pair {
	int64_t bytes, dur;
};

/* A multiset of values in groups (an op kind, a message size), held as
 * counts so that a median never needs every value at once (ten million
 * messages were 160 MB as pairs). While there are at most tally_cap_
 * distinct (group, value) cells the counts are exact and a median is read
 * off them; past that they become (group, bucket) counts, a bucket about
 * 1/1024 of its values wide, and a median takes a second read of the same
 * rows that keeps only the values of the one or two buckets it lies in,
 * then selects among them. Either way the result is the exact median. */
struct cell {
	int64_t group, key, count; /* key: the value, or its bucket once coarse */
};

/* What a median needs: ranks lo and hi (lo = hi for an odd count) of a
 * group (TALLY_ANY: every group), and, once coarse, the values of buckets
 * [b_lo, b_hi] collected on the second read, below of them counted before. */
struct want {
	int64_t group;
	int64_t lo, hi;
	int64_t b_lo, b_hi, below;
	int done;
	int64_t result;
	struct i64v got;
};

struct tally {
	struct cell *v; /* open addressing, cap a power of two; count 0: empty */
	size_t n, cap;
	int coarse;
	int collect;	 /* the second read: add() gathers the wants' values */
	struct want *want; /* sorted by group, TALLY_ANY (the smallest) first */
	size_t nwant, capwant;
};

#define TALLY_ANY INT64_MIN
size_t pt_calib_cap_ = 1u << 16;

static int64_t bucket(int64_t v)
{
	if (v < 1024)
		return v;
	int e = 63 - __builtin_clzll((uint64_t)v);
	return ((int64_t)(e - 9) << 10) + ((v >> (e - 10)) - 1024);
}

static size_t cell_hash(int64_t group, int64_t key, size_t cap)
{
	uint64_t h = (uint64_t)group * 0x9E3779B97F4A7C15ull ^ (uint64_t)key * 0xC2B2AE3D27D4EB4Full;
	return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

static struct cell *cell_at(struct cell *v, size_t cap, int64_t group, int64_t key)
{
	size_t h = cell_hash(group, key, cap);
	while (v[h].count && (v[h].group != group || v[h].key != key))
		h = (h + 1) & (cap - 1);
	return &v[h];
}

/* Rehash into cap cells, bucketing the keys when coarse is set. */
static int rehash(struct tally *t, size_t cap, int coarse)
{
	struct cell *v = calloc(cap, sizeof *v);
	if (!v)
		return PT_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->v[i].count)
			continue;
		int64_t key = coarse && !t->coarse ? bucket(t->v[i].key) : t->v[i].key;
		struct cell *c = cell_at(v, cap, t->v[i].group, key);
		if (!c->count) {
			*c = (struct cell){t->v[i].group, key, 0};
			n++;
		}
		c->count += t->v[i].count;
	}
	free(t->v);
	t->v = v;
	t->cap = cap;
	t->n = n;
	t->coarse = coarse;
	return 0;
}

static int cmp_want_group(const void *a, const void *b)
{
	const struct want *x = a, *y = b;
	return x->group < y->group ? -1 : x->group > y->group;
}

static int tally_add(struct tally *t, int64_t group, int64_t value)
{
	if (t->collect) {
		int64_t b = bucket(value);
		struct want key = {.group = group};
		struct want *w = t->nwant ? bsearch(&key, t->want, t->nwant, sizeof key, cmp_want_group) : NULL;
		struct want *any = t->nwant && t->want[0].group == TALLY_ANY ? &t->want[0] : NULL;
		if (w && !w->done && b >= w->b_lo && b <= w->b_hi && push(&w->got, value))
			return PT_ENOMEM;
		if (any && !any->done && b >= any->b_lo && b <= any->b_hi && push(&any->got, value))
			return PT_ENOMEM;
		return 0;
	}
	int64_t key = t->coarse ? bucket(value) : value;
	if (2 * (t->n + 1) > t->cap) {
		int coarse = t->coarse || t->n + 1 > pt_calib_cap_;
		int err = rehash(t, coarse && !t->coarse ? t->cap : t->cap ? t->cap * 2 : 256, coarse);
		if (err)
			return err;
		key = t->coarse ? bucket(value) : value;
		if (2 * (t->n + 1) > t->cap && (err = rehash(t, t->cap * 2, t->coarse)))
			return err;
	}
	struct cell *c = cell_at(t->v, t->cap, group, key);
	if (!c->count) {
		*c = (struct cell){group, key, 0};
		t->n++;
	}
	c->count++;
	return 0;
}

static int cmp_cell(const void *a, const void *b)
{
	const struct cell *x = a, *y = b;
	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	return x->key < y->key ? -1 : x->key > y->key;
}

/* The tally's cells sorted by (group, key), malloc'ed (NULL when empty). */
static int sorted_cells(const struct tally *t, struct cell **out)
{
	*out = NULL;
	if (!t->n)
		return 0;
	struct cell *v = malloc(t->n * sizeof *v);
	if (!v)
		return PT_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < t->cap; i++)
		if (t->v[i].count)
			v[k++] = t->v[i];
	qsort(v, k, sizeof *v, cmp_cell);
	*out = v;
	return 0;
}

/* Ask for the median of group (TALLY_ANY: of every value); tally_get then
 * finds it. Exact tallies answer at once; coarse ones name the buckets the
 * second read must collect. The group must hold values. */
static int tally_want(struct tally *t, int64_t group)
{
	struct cell *v;
	int err = sorted_cells(t, &v);
	if (err)
		return err;
	/* (key, count) of the group, keys merged across groups for TALLY_ANY */
	size_t m = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (group != TALLY_ANY && v[i].group != group)
			continue;
		v[m++] = (struct cell){0, v[i].key, v[i].count};
	}
	if (group == TALLY_ANY) {
		qsort(v, m, sizeof *v, cmp_cell);
		size_t k = 0;
		for (size_t i = 0; i < m; i++) {
			if (k && v[k - 1].key == v[i].key)
				v[k - 1].count += v[i].count;
			else
				v[k++] = v[i];
		}
		m = k;
	}
	int64_t n = 0;
	for (size_t i = 0; i < m; i++)
		n += v[i].count;
	struct want w = {.group = group, .hi = n / 2, .lo = n % 2 ? n / 2 : n / 2 - 1};
	int64_t below = 0, key_lo = 0, key_hi = 0, below_lo = 0;
	for (size_t i = 0; i < m; i++) {
		if (w.lo >= below && w.lo < below + v[i].count) {
			key_lo = v[i].key;
			below_lo = below;
		}
		if (w.hi >= below && w.hi < below + v[i].count)
			key_hi = v[i].key;
		below += v[i].count;
	}
	free(v);
	if (!t->coarse) {
		w.done = 1;
		w.result = key_lo + (key_hi - key_lo) / 2; /* median()'s rule */
	} else {
		w.b_lo = key_lo;
		w.b_hi = key_hi;
		w.below = below_lo;
	}
	if ((err = pt_grow(&t->want, &t->capwant, t->nwant + 1, sizeof *t->want)))
		return err;
	/* kept sorted by group; a group is asked for once */
	size_t at = t->nwant;
	while (at && t->want[at - 1].group > group) {
		t->want[at] = t->want[at - 1];
		at--;
	}
	t->want[at] = w;
	t->nwant++;
	return 0;
}

/* The want for group (after tally_want). */
static struct want *tally_get(struct tally *t, int64_t group)
{
	struct want key = {.group = group};
	return bsearch(&key, t->want, t->nwant, sizeof key, cmp_want_group);
}

static int tally_pending(const struct tally *t)
{
	for (size_t i = 0; i < t->nwant; i++)
		if (!t->want[i].done)
			return 1;
	return 0;
}

/* After the second read: select each pending median among what it collected. */
static void tally_settle(struct tally *t)
{
	t->collect = 0;
	for (size_t i = 0; i < t->nwant; i++) {
		struct want *w = &t->want[i];
		if (w->done)
			continue;
		int64_t b = kth((char *)w->got.v, sizeof *w->got.v, w->got.n, (size_t)(w->hi - w->below));
		int64_t a = w->lo == w->hi ? b
					   : kth((char *)w->got.v, sizeof *w->got.v, w->got.n, (size_t)(w->lo - w->below));
		w->result = a + (b - a) / 2;
		w->done = 1;
		free(w->got.v);
		w->got = (struct i64v){0};
	}
}

static void tally_fini(struct tally *t)
{
	for (size_t i = 0; t->want && i < t->nwant; i++)
		free(t->want[i].got.v);
	free(t->want);
	free(t->v);
	memset(t, 0, sizeof *t);
}

/* The messages of one kind (SEND or RECV): each one's duration by size,
 * and the spacing of the transfers that queued behind another on their
 * link, with the last transfer seen on each link. */
struct msgs {
	struct tally dur, queued;
	int64_t n, nqueued;
	struct links links;
};

/* One message into m; each rank's in time order, so that a link's
 * transfers come in order (counted only on the first read). */
static int add_message(struct msgs *m, const pt_event *ev)
{
	int64_t d = ev->end_ns - ev->start_ns;
	if (d < 0)
		return 0;
	int count = !m->dur.collect && !m->queued.collect, err;
	if ((err = tally_add(&m->dur, ev->op.bytes, d)))
		return err;
	m->n += count;
	if (ev->op.kind != PT_OP_SEND)
		return 0;
	/* A transfer that began after its send was posted, while the
	 * previous transfer on its link was still under way, waited for
	 * the link: the two starts are one wire time apart. */
	struct lastx *lx = link_slot(&m->links, ev->rank, ev->op.peer);
	if (!lx)
		return PT_ENOMEM;
	if (lx->start >= 0 && ev->start_ns > ev->posted_ns && ev->start_ns > lx->start && ev->start_ns <= lx->end) {
		if ((err = tally_add(&m->queued, 0, ev->start_ns - lx->start)))
			return err;
		m->nqueued += count;
	}
	lx->start = ev->start_ns;
	lx->end = ev->end_ns;
	return 0;
}

/* Read every message of one kind (SEND or RECV) into m: on the second read
 * of a coarse tally, the same rows in the same order, links afresh. */
static int read_messages(pt_trace *t, int kind, struct msgs *m)
{
	pt_query q = pt_query_all();
	q.sources = PT_SRC_COMMS;
	q.kinds = 1u << kind;
	pt_cursor *c;
	int err = pt_cursor_open(t, &q, &c);
	if (err)
		return err;
	free(m->links.v);
	m->links = (struct links){0};
	pt_event ev;
	int got;
	while ((got = pt_cursor_next(c, &ev)) == 1 && !(err = add_message(m, &ev)))
		;
	if (got < 0)
		err = got;
	pt_cursor_close(c);
	return err;
}

/* Settle the medians asked of m, reading the messages again if a tally went coarse. */
static int settle_msgs(pt_trace *t, int kind, struct msgs *m)
{
	if (!tally_pending(&m->dur) && !tally_pending(&m->queued))
		return 0;
	m->dur.collect = tally_pending(&m->dur);
	m->queued.collect = tally_pending(&m->queued);
	int err = read_messages(t, kind, m);
	tally_settle(&m->dur);
	tally_settle(&m->queued);
	return err;
}

static int fit_link(pt_trace *t, int kind, struct msgs *m, pt_cost *cost, pt_calib *info)
{
	int64_t n = m->n;
	info->nmsgs = n;
	cost->latency = 0;
	cost->bandwidth = 0;
	if (!n) {
		info->link_method = "no messages: free links";
		return 0;
	}
	/* pts: (size, median duration of that size), by size */
	struct cell *v = NULL;
	struct pair *pts = NULL;
	int err = sorted_cells(&m->dur, &v);
	size_t npts = 0;
	for (size_t i = 0; !err && i < m->dur.n; i++)
		npts += !i || v[i].group != v[i - 1].group;
	if (!err && !(pts = malloc(npts * sizeof *pts)))
		err = PT_ENOMEM;
	for (size_t i = 0, k = 0; !err && i < m->dur.n; i++)
		if (!i || v[i].group != v[i - 1].group) {
			pts[k++].bytes = v[i].group;
			err = tally_want(&m->dur, v[i].group);
		}
	if (!err && npts == 1 && m->queued.n)
		err = tally_want(&m->queued, 0);
	if (!err)
		err = settle_msgs(t, kind, m);
	if (err)
		goto out;
	for (size_t i = 0; i < npts; i++)
		pts[i].dur = tally_get(&m->dur, pts[i].bytes)->result;
	info->nsizes = (int)npts;
	if (npts == 1) {
		int64_t b0 = pts[0].bytes, d0 = pts[0].dur;
		info->nqueued = m->nqueued;
		info->msg_bytes = b0;
		info->msg_dur = d0;
		if (b0 > 0 && m->nqueued) {
			int64_t wire = tally_get(&m->queued, 0)->result;
			if (wire > d0)
				wire = d0;
			cost->latency = d0 - wire;
			cost->bandwidth = wire > 0 ? (double)b0 * 1e9 / (double)wire : 0;
			info->link_method = "one message size: wire time from queued transfers, the rest latency";
		} else {
			cost->latency = d0;
			info->link_method = b0 > 0 ? "one message size, never queued: all latency"
						   : "empty messages: all latency";
		}
		goto out;
	}
	double sb = 0, sd = 0, sbb = 0, sbd = 0, k = (double)npts;
	for (size_t i = 0; i < npts; i++) {
		double b = (double)pts[i].bytes, d = (double)pts[i].dur;
		sb += b;
		sd += d;
		sbb += b * b;
		sbd += b * d;
	}
	double den = k * sbb - sb * sb;
	double slope = den > 0 ? (k * sbd - sb * sd) / den : 0; /* ns per byte */
	double icept = (sd - slope * sb) / k;
	if (slope > 0 && icept < 0) { /* negative latency: a line through the origin instead */
		slope = sbd / sbb;
		icept = 0;
	}
	if (slope <= 0) {
		if ((err = tally_want(&m->dur, TALLY_ANY)) || (err = settle_msgs(t, kind, m)))
			goto out;
		cost->latency = tally_get(&m->dur, TALLY_ANY)->result;
		info->link_method = "several sizes, no growth with size: all latency";
	} else {
		cost->latency = (int64_t)llround(icept);
		cost->bandwidth = 1e9 / slope;
		info->link_method = "several sizes: least squares through each size's median";
	}
out:
	free(v);
	free(pts);
	return err;
}

/* Fill the kinds the run did not execute from those it did. */
static void derive(pt_cost *c, pt_calib *info)
{
	int64_t *v[PT_OP_FB + 1] = {NULL, &c->f, &c->b, &c->i, &c->w, &c->fb};
	unsigned have = 0;
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		if (info->nops[k])
			have |= 1u << k;
#define HAVE(k) (have & (1u << (k)))
#define SET(k, x)                                                                                                      \
	do {                                                                                                           \
		*v[k] = (x);                                                                                           \
		have |= 1u << (k);                                                                                     \
		info->derived |= 1u << (k);                                                                            \
	} while (0)
	for (int pass = 0; pass < 2; pass++) {
		if (!HAVE(PT_OP_B) && HAVE(PT_OP_I) && HAVE(PT_OP_W))
			SET(PT_OP_B, c->i + c->w);
		if (!HAVE(PT_OP_B) && HAVE(PT_OP_FB) && HAVE(PT_OP_F) && c->fb > c->f)
			SET(PT_OP_B, c->fb - c->f);
		if (!HAVE(PT_OP_F) && HAVE(PT_OP_FB) && HAVE(PT_OP_B) && c->fb > c->b)
			SET(PT_OP_F, c->fb - c->b);
		if (!HAVE(PT_OP_I) && HAVE(PT_OP_B) && HAVE(PT_OP_W) && c->b > c->w)
			SET(PT_OP_I, c->b - c->w);
		if (!HAVE(PT_OP_W) && HAVE(PT_OP_B) && HAVE(PT_OP_I) && c->b > c->i)
			SET(PT_OP_W, c->b - c->i);
		if (!HAVE(PT_OP_I) && HAVE(PT_OP_B))
			SET(PT_OP_I, c->b / 2);
		if (!HAVE(PT_OP_W) && HAVE(PT_OP_B))
			SET(PT_OP_W, c->b - c->b / 2);
		if (!HAVE(PT_OP_FB) && HAVE(PT_OP_F) && HAVE(PT_OP_B))
			SET(PT_OP_FB, c->f + c->b);
	}
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		if (!HAVE(k)) {
			*v[k] = -1;
			info->missing |= 1u << k;
		}
#undef HAVE
#undef SET
}

/* What calibration has seen: the compute ops' durations by kind, and the
 * messages, sends and receives apart. */
struct pt_calibrator {
	struct tally ops;
	int64_t nops[PT_OP_FB + 1];
	struct msgs send, recv;
	int err; /* the first failure feeding it */
};

static int add_op(struct tally *ops, int64_t *nops, const pt_event *ev)
{
	int k = ev->op.kind;
	if (!pt_kind_is_compute(k) || ev->end_ns < ev->start_ns)
		return 0;
	nops[k] += !ops->collect;
	return tally_add(ops, k, ev->end_ns - ev->start_ns);
}

/* Tally every compute op's duration by kind into ops (again on the second
 * read of a coarse tally). */
static int read_ops(pt_trace *t, struct tally *ops, int64_t *nops)
{
	pt_query q = pt_query_all();
	q.sources = PT_SRC_OPS;
	pt_cursor *c;
	int err = pt_cursor_open(t, &q, &c);
	if (err)
		return err;
	pt_event ev;
	int got;
	while ((got = pt_cursor_next(c, &ev)) == 1 && !(err = add_op(ops, nops, &ev)))
		;
	if (got < 0)
		err = got;
	pt_cursor_close(c);
	return err;
}

int pt_calib_create(pt_calibrator **out)
{
	*out = calloc(1, sizeof **out);
	return *out ? 0 : PT_ENOMEM;
}

int pt_calib_event(pt_calibrator *c, const pt_event *ev)
{
	if (!c->err) {
		if (ev->op.kind == PT_OP_SEND)
			c->err = add_message(&c->send, ev);
		else if (ev->op.kind == PT_OP_RECV)
			c->err = add_message(&c->recv, ev);
		else
			c->err = add_op(&c->ops, c->nops, ev);
	}
	return c->err;
}

static void msgs_fini(struct msgs *m)
{
	tally_fini(&m->dur);
	tally_fini(&m->queued);
	free(m->links.v);
	memset(m, 0, sizeof *m);
}

void pt_calib_destroy(pt_calibrator *c)
{
	if (!c)
		return;
	tally_fini(&c->ops);
	msgs_fini(&c->send);
	msgs_fini(&c->recv);
	free(c);
}

int pt_calib_finish(pt_calibrator *c, pt_trace *t, pt_cost *cost, pt_calib *info)
{
	memset(info, 0, sizeof *info);
	*cost = pt_cost_default();
	int err = c->err;
	if (err)
		return err;
	memcpy(info->nops, c->nops, sizeof info->nops);
	int64_t *v[PT_OP_FB + 1] = {NULL, &cost->f, &cost->b, &cost->i, &cost->w, &cost->fb};
	int64_t total = 0;
	for (int k = PT_OP_F; k <= PT_OP_FB && !err; k++) {
		total += info->nops[k];
		if (info->nops[k])
			err = tally_want(&c->ops, k);
	}
	if (!err && tally_pending(&c->ops)) {
		c->ops.collect = 1;
		int64_t ignored[PT_OP_FB + 1];
		err = read_ops(t, &c->ops, ignored);
		tally_settle(&c->ops);
	}
	if (err)
		return err;
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		if (info->nops[k])
			*v[k] = tally_get(&c->ops, k)->result;
	tally_fini(&c->ops);
	if (!total)
		return pt_logerr(PT_EINVAL, "%s: no compute ops (F, B, I, W, FB) to calibrate costs from",
				 pt_trace_path(t));
	derive(cost, info);
	/* each message once: the sender's rows; a receiver's when no sender was recorded */
	int kind = c->send.n ? PT_OP_SEND : PT_OP_RECV;
	return fit_link(t, kind, kind == PT_OP_SEND ? &c->send : &c->recv, cost, info);
}

int pt_cost_calibrate(pt_trace *t, pt_cost *cost, pt_calib *info)
{
	pt_calibrator *c;
	int err = pt_calib_create(&c);
	if (err)
		return err;
	/* the reads as fit_link needs them: a receiver's messages only when
	 * no sender's were recorded */
	int64_t any = 0;
	if (!(err = read_ops(t, &c->ops, c->nops)))
		for (int k = PT_OP_F; k <= PT_OP_FB; k++)
			any += c->nops[k];
	if (!err && any && !(err = read_messages(t, PT_OP_SEND, &c->send)) && !c->send.n)
		err = read_messages(t, PT_OP_RECV, &c->recv);
	if (err) {
		memset(info, 0, sizeof *info);
		*cost = pt_cost_default();
	} else
		err = pt_calib_finish(c, t, cost, info);
	pt_calib_destroy(c);
	return err;
}

unsigned pt_plan_kinds(const pt_plan *p)
{
	unsigned k = 0;
	for (int r = 0; r < p->ranks; r++)
		for (size_t i = 0; i < p->rank[r].n; i++)
			if (pt_kind_is_compute(p->rank[r].ops[i].kind))
				k |= 1u << p->rank[r].ops[i].kind;
	return k;
}
