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

/* The median of n int64s stride bytes apart (reorders them): the middle
 * value, or the mean of the two middle values rounded down. n > 0. */
static int64_t median_at(char *base, size_t stride, size_t n)
{
	int64_t b = kth(base, stride, n, n / 2);
	if (n % 2)
		return b;
	int64_t a = INT64_MIN; /* the largest below the middle: what kth left before it */
	for (size_t i = 0; i < n / 2; i++)
		if (*(int64_t *)(base + i * stride) > a)
			a = *(int64_t *)(base + i * stride);
	return a + (b - a) / 2;
}

static int64_t median(int64_t *v, size_t n) { return median_at((char *)v, sizeof *v, n); }

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

/* A message's size and transfer time; bytes first: cmp_pair sorts by size,
 * then by duration. */
struct pair {
	int64_t bytes, dur;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	if (x->bytes != y->bytes)
		return x->bytes < y->bytes ? -1 : 1;
	return x->dur < y->dur ? -1 : x->dur > y->dur;
}

/* The messages read, one pair each (16 bytes: a million messages cost
 * 16 MB, the most memory `stats` spends), and the queueing evidence. */
struct msgs {
	struct pair *v;
	size_t n, cap;
	struct i64v queued;
};

/* Read every message of one kind (SEND or RECV) into m. */
static int read_messages(pt_trace *t, int kind, struct msgs *m)
{
	pt_query q = pt_query_all();
	q.sources = PT_SRC_COMMS;
	q.kinds = 1u << kind;
	pt_cursor *c;
	int err = pt_cursor_open(t, &q, &c);
	if (err)
		return err;
	struct links links = {0};
	pt_event ev;
	int got;
	while ((got = pt_cursor_next(c, &ev)) == 1) {
		int64_t d = ev.end_ns - ev.start_ns;
		if (d < 0)
			continue;
		if (m->n == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 256;
			struct pair *v = realloc(m->v, cap * sizeof *v);
			if (!v) {
				err = PT_ENOMEM;
				break;
			}
			m->v = v;
			m->cap = cap;
		}
		m->v[m->n++] = (struct pair){ev.op.bytes, d};
		if (kind != PT_OP_SEND)
			continue;
		/* A transfer that began after its send was posted, while the
		 * previous transfer on its link was still under way, waited for
		 * the link: the two starts are one wire time apart. */
		struct lastx *lx = link_slot(&links, ev.rank, ev.op.peer);
		if (!lx) {
			err = PT_ENOMEM;
			break;
		}
		if (lx->start >= 0 && ev.start_ns > ev.posted_ns && ev.start_ns > lx->start && ev.start_ns <= lx->end &&
		    (err = push(&m->queued, ev.start_ns - lx->start)))
			break;
		lx->start = ev.start_ns;
		lx->end = ev.end_ns;
	}
	if (got < 0)
		err = got;
	free(links.v);
	pt_cursor_close(c);
	return err;
}

static int fit_link(struct msgs *m, pt_cost *cost, pt_calib *info)
{
	size_t n = m->n;
	info->nmsgs = (int64_t)n;
	cost->latency = 0;
	cost->bandwidth = 0;
	if (!n) {
		info->link_method = "no messages: free links";
		return 0;
	}
	/* One size, nearly always: its median picked in place. Several: sorted
	 * by size, then duration, each size's median read off its run. */
	struct pair *pairs = m->v, *pts = NULL;
	int64_t *tmp = NULL;
	int err = 0;
	size_t npts = 1; /* pts: (size, median duration of that size) */
	for (size_t i = 1; i < n && npts == 1; i++)
		npts += pairs[i].bytes != pairs[0].bytes;
	if (npts > 1) {
		qsort(pairs, n, sizeof *pairs, cmp_pair);
		npts = 1;
		for (size_t i = 1; i < n; i++)
			npts += pairs[i].bytes != pairs[i - 1].bytes;
	}
	if (!(pts = malloc(npts * sizeof *pts))) {
		err = PT_ENOMEM;
		goto out;
	}
	if (npts == 1) {
		pts[0] = (struct pair){pairs[0].bytes, median_at((char *)&pairs[0].dur, sizeof *pairs, n)};
	} else {
		size_t k = 0;
		for (size_t i = 0, j; i < n; i = j) {
			for (j = i; j < n && pairs[j].bytes == pairs[i].bytes; j++)
				;
			size_t mid = i + (j - i) / 2;
			int64_t a = pairs[mid - ((j - i) % 2 ? 0 : 1)].dur, b = pairs[mid].dur;
			pts[k++] = (struct pair){pairs[i].bytes, a + (b - a) / 2}; /* median()'s rule */
		}
	}
	info->nsizes = (int)npts;
	if (npts == 1) {
		int64_t b0 = pts[0].bytes, d0 = pts[0].dur;
		info->nqueued = (int64_t)m->queued.n;
		info->msg_bytes = b0;
		info->msg_dur = d0;
		if (b0 > 0 && m->queued.n) {
			int64_t wire = median(m->queued.v, m->queued.n);
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
		if (!(tmp = malloc(n * sizeof *tmp))) {
			err = PT_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			tmp[i] = pairs[i].dur;
		cost->latency = median(tmp, n);
		info->link_method = "several sizes, no growth with size: all latency";
	} else {
		cost->latency = (int64_t)llround(icept);
		cost->bandwidth = 1e9 / slope;
		info->link_method = "several sizes: least squares through each size's median";
	}
out:
	free(pts);
	free(tmp);
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

int pt_cost_calibrate(pt_trace *t, pt_cost *cost, pt_calib *info)
{
	memset(info, 0, sizeof *info);
	*cost = pt_cost_default();
	struct i64v dur[PT_OP_FB + 1];
	memset(dur, 0, sizeof dur);
	struct msgs m;
	memset(&m, 0, sizeof m);
	pt_query q = pt_query_all();
	q.sources = PT_SRC_OPS;
	pt_cursor *c;
	int err = pt_cursor_open(t, &q, &c);
	if (err)
		return err;
	pt_event ev;
	int got;
	while ((got = pt_cursor_next(c, &ev)) == 1) {
		int k = ev.op.kind;
		if (pt_kind_is_compute(k) && ev.end_ns >= ev.start_ns && (err = push(&dur[k], ev.end_ns - ev.start_ns)))
			break;
	}
	if (got < 0)
		err = got;
	pt_cursor_close(c);
	if (err)
		goto out;
	int64_t *v[PT_OP_FB + 1] = {NULL, &cost->f, &cost->b, &cost->i, &cost->w, &cost->fb};
	int64_t total = 0;
	for (int k = PT_OP_F; k <= PT_OP_FB; k++) {
		info->nops[k] = (int64_t)dur[k].n;
		total += (int64_t)dur[k].n;
		if (dur[k].n)
			*v[k] = median(dur[k].v, dur[k].n);
		free(dur[k].v); /* before the messages: they are many too */
		dur[k].v = NULL;
	}
	if (!total) {
		err = pt_logerr(PT_EINVAL, "%s: no compute ops (F, B, I, W, FB) to calibrate costs from",
				pt_trace_path(t));
		goto out;
	}
	derive(cost, info);
	/* each message once: the sender's rows; a receiver's when no sender was recorded */
	if ((err = read_messages(t, PT_OP_SEND, &m)))
		goto out;
	if (!m.n && (err = read_messages(t, PT_OP_RECV, &m)))
		goto out;
	err = fit_link(&m, cost, info);
out:
	for (int k = 0; k <= PT_OP_FB; k++)
		free(dur[k].v);
	free(m.v);
	free(m.queued.v);
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
