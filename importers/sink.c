/*
 * importers/sink.c — where every importer's events go: one timeline (time 0
 * is the whole second before the first event, and moved back to the earliest
 * event if one comes earlier), names interned once, each stream's kernel time
 * split into communication and other kernels so that the stream's role can
 * be voted at the end, annotations that name ops remembered per rank, and
 * the events themselves emitted into libtrace's recorder as they come. At
 * the end it writes ranks, streams, meta, and asks libtrace to nest the
 * ranges and to label ops from the annotations. It knows no input format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "import.h"
#include "libtrace/grow.h"

#define SECOND	    1000000000LL
#define EPOCH_FLOOR (365LL * 86400 * SECOND) /* 1971: a clock below this is not counting from 1970 */

void imp_init(imp *im, pt_rec *rec, const imp_rules *rules, enum imp_format format, int ninputs)
{
	memset(im, 0, sizeof *im);
	im->rec = rec;
	im->rules = rules;
	im->format = format;
	im->ninputs = ninputs;
	im->min_ns = INT64_MAX;
	im->max_ns = INT64_MIN;
}

void imp_fini(imp *im)
{
	free(im->ranks);
	free(im->kcls);
	free(im->lab);
	for (size_t i = 0; i < im->nlnames; i++)
		free(im->lnames[i].text);
	free(im->lnames);
	free(im->lused);
	free(im->streams);
	free(im->shash);
	for (size_t i = 0; i < im->ndevnames; i++)
		free(im->devnames[i].name);
	for (size_t i = 0; i < im->nthnames; i++)
		free(im->thnames[i].name);
	free(im->devnames);
	free(im->thnames);
	memset(im, 0, sizeof *im);
}

/* ------------------------------------------------------------- the inputs */

int imp_rank(imp *im, int rank, const char *source, int guessed)
{
	if (rank < 0 || rank > (1 << 20))
		return pt_logerr(PT_EINVAL, "%s: rank %d is out of range", source, rank);
	if (rank >= im->capranks) {
		int cap = im->capranks ? im->capranks : 16;
		while (cap <= rank)
			cap *= 2;
		struct imp_rank *v = realloc(im->ranks, (size_t)cap * sizeof *v);
		if (!v)
			return PT_ENOMEM;
		memset(v + im->capranks, 0, (size_t)(cap - im->capranks) * sizeof *v);
		im->ranks = v;
		im->capranks = cap;
	}
	struct imp_rank *r = &im->ranks[rank];
	if (r->used)
		return pt_logerr(PT_EINVAL, "%s: rank %d again (already read from %s): one input per rank", source,
				 rank, r->source);
	if (guessed && im->ninputs > 1)
		pt_log(PT_LOG_WARN,
		       "%s: no distributedInfo.rank before its events; importing it as rank %d (its place "
		       "among the inputs)",
		       source, rank);
	r->used = 1;
	r->guessed = guessed;
	r->source = source;
	r->device = -1;
	im->nranks++;
	return 0;
}

static int add_name(struct imp_name **v, size_t *n, int rank, int id, const char *name)
{
	if (!(*n & (*n - 1))) { /* 0, 1, 2, 4, ...: double */
		struct imp_name *nv = realloc(*v, (*n ? 2 * *n : 16) * sizeof *nv);
		if (!nv)
			return PT_ENOMEM;
		*v = nv;
	}
	struct imp_name *e = &(*v)[*n];
	e->rank = rank;
	e->id = id;
	e->seq = (int64_t)*n;
	if (!(e->name = strdup(name)))
		return PT_ENOMEM;
	(*n)++;
	return 0;
}

static int name_cmp(const void *a, const void *b)
{
	const struct imp_name *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* The first name given for (rank, id); v sorted by name_cmp. */
static const char *find_name(const struct imp_name *v, size_t n, int rank, int id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid].rank < rank || (v[mid].rank == rank && v[mid].id < id))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].rank == rank && v[lo].id == id ? v[lo].name : NULL;
}

int imp_device_name(imp *im, int rank, int device, const char *name)
{
	return add_name(&im->devnames, &im->ndevnames, rank, device, name);
}

int imp_thread_name(imp *im, int rank, uint32_t tid, const char *name)
{
	return add_name(&im->thnames, &im->nthnames, rank, (int)tid, name);
}

void imp_skip(imp *im, const char *why)
{
	for (int i = 0; i < im->nskips; i++) {
		if (im->skips[i].why == why || !strcmp(im->skips[i].why, why)) {
			im->skips[i].n++;
			return;
		}
	}
	if (im->nskips < (int)(sizeof im->skips / sizeof im->skips[0])) {
		im->skips[im->nskips].why = why;
		im->skips[im->nskips++].n = 1;
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void human(uint64_t b, char *buf, size_t size)
{
	if (b >= 1ULL << 30)
		snprintf(buf, size, "%.2f GiB", (double)b / (1 << 30));
	else if (b >= 1ULL << 20)
		snprintf(buf, size, "%.1f MiB", (double)b / (1 << 20));
	else
		snprintf(buf, size, "%.0f KiB", (double)b / 1024);
}

void imp_progress(imp *im, uint64_t done, uint64_t total)
{
	if (!im->progress)
		return;
	double t = now();
	if (t - im->progress_last < 0.2)
		return;
	im->progress_last = t;
	if (im->progress_total) {
		done += im->progress_base;
		total = im->progress_total;
	}
	const char *base = im->input ? strrchr(im->input, '/') : NULL;
	base = base ? base + 1 : im->input ? im->input : "";
	char d[32], tot[32];
	human(done, d, sizeof d);
	human(total, tot, sizeof tot);
	int width = 30, fill = total ? (int)((double)done / (double)total * width) : 0;
	if (fill > width)
		fill = width;
	char which[32] = "";
	if (im->ninputs > 1)
		snprintf(which, sizeof which, " (%d of %d)", im->input_index + 1, im->ninputs);
	fprintf(stderr, "\r\033[Kimporting %s%s [%.*s%*s] %3.0f%% %s of %s, %lld events", base, which, fill,
		"##############################", width - fill, "", total ? 100.0 * (double)done / (double)total : 0.0,
		d, tot, (long long)im->nevents);
	im->progress_shown = 1;
}

/* ------------------------------------------------------------ the events */

static int grow_names(imp *im, uint32_t id)
{
	if (id < im->capnames)
		return 0;
	size_t cap = im->capnames ? im->capnames : 4096;
	while (cap <= id)
		cap *= 2;
	uint8_t *k = realloc(im->kcls, cap);
	if (!k)
		return PT_ENOMEM;
	im->kcls = k;
	uint32_t *l = realloc(im->lab, cap * sizeof *l);
	if (!l)
		return PT_ENOMEM;
	im->lab = l;
	memset(k + im->capnames, 0, cap - im->capnames);
	memset(l + im->capnames, 0, (cap - im->capnames) * sizeof *l);
	im->capnames = cap;
	return 0;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* The stream (rank, id) of that kind, or NULL; *slot: where it would go. */
static struct imp_stream *stream_find(const imp *im, int32_t rank, uint32_t id, int gpu, size_t *slot)
{
	uint64_t key = (uint64_t)(uint32_t)rank << 33 | (uint64_t)(gpu != 0) << 32 | id;
	size_t j = im->capshash ? mix(key) & (im->capshash - 1) : 0;
	for (; im->capshash && im->shash[j]; j = (j + 1) & (im->capshash - 1)) {
		struct imp_stream *s = &im->streams[im->shash[j] - 1];
		if (s->rank == rank && s->id == id && (s->gpu != 0) == (gpu != 0))
			return s;
	}
	if (slot)
		*slot = j;
	return NULL;
}

static struct imp_stream *stream_get(imp *im, int32_t rank, uint32_t id, int gpu, int32_t device)
{
	if (2 * (im->nstreams + 1) > im->capshash) {
		size_t cap = im->capshash ? im->capshash * 2 : 256;
		uint32_t *h = calloc(cap, sizeof *h);
		if (!h)
			return NULL;
		for (size_t i = 0; i < im->nstreams; i++) {
			const struct imp_stream *s = &im->streams[i];
			uint64_t k = (uint64_t)(uint32_t)s->rank << 33 | (uint64_t)(s->gpu != 0) << 32 | s->id;
			size_t j = mix(k) & (cap - 1);
			while (h[j])
				j = (j + 1) & (cap - 1);
			h[j] = (uint32_t)i + 1;
		}
		free(im->shash);
		im->shash = h;
		im->capshash = cap;
	}
	size_t j;
	struct imp_stream *found = stream_find(im, rank, id, gpu, &j);
	if (found)
		return found;
	if (pt_grow(&im->streams, &im->capstreams, im->nstreams + 1, sizeof *im->streams))
		return NULL;
	struct imp_stream *s = &im->streams[im->nstreams];
	memset(s, 0, sizeof *s);
	s->rank = rank;
	s->id = id;
	s->gpu = gpu != 0;
	s->device = device;
	im->shash[j] = (uint32_t)++im->nstreams;
	return s;
}

static int lused_add(imp *im, int32_t rank, uint32_t l)
{
	uint64_t key = (uint64_t)(uint32_t)rank << 32 | (l + 1);
	if (2 * (im->nlused + 1) > im->caplused) {
		size_t cap = im->caplused ? im->caplused * 2 : 64;
		uint64_t *v = calloc(cap, sizeof *v);
		if (!v)
			return PT_ENOMEM;
		for (size_t i = 0; i < im->caplused; i++) {
			if (!im->lused[i])
				continue;
			size_t j = mix(im->lused[i]) & (cap - 1);
			while (v[j])
				j = (j + 1) & (cap - 1);
			v[j] = im->lused[i];
		}
		free(im->lused);
		im->lused = v;
		im->caplused = cap;
	}
	size_t j = mix(key) & (im->caplused - 1);
	for (; im->lused[j]; j = (j + 1) & (im->caplused - 1))
		if (im->lused[j] == key)
			return 0;
	im->lused[j] = key;
	im->nlused++;
	return 0;
}

static int lused_has(const imp *im, int32_t rank, uint32_t l)
{
	uint64_t key = (uint64_t)(uint32_t)rank << 32 | (l + 1);
	if (!im->caplused)
		return 0;
	for (size_t j = mix(key) & (im->caplused - 1); im->lused[j]; j = (j + 1) & (im->caplused - 1))
		if (im->lused[j] == key)
			return 1;
	return 0;
}

/* The label of a range name (interned as id): lnames index + 2, or 1. */
static int label_of(imp *im, uint32_t id, const char *name, uint32_t *out)
{
	if (im->lab[id]) {
		*out = im->lab[id];
		return 0;
	}
	pt_op op;
	size_t part = 0;
	int r = imp_label(im->rules, name, &op, &part);
	if (!r) {
		*out = im->lab[id] = 1;
		return 0;
	}
	struct imp_lname *v = realloc(im->lnames, (im->nlnames + 1) * sizeof *v);
	if (!v)
		return PT_ENOMEM;
	im->lnames = v;
	struct imp_lname *l = &v[im->nlnames];
	l->id = id;
	l->op = op;
	l->pending_b = r == 2;
	l->part = part;
	if (!(l->text = strdup(name)))
		return PT_ENOMEM;
	*out = im->lab[id] = (uint32_t)(im->nlnames++ + 2);
	return 0;
}

int imp_emit(imp *im, pt_event *ev, const char *name, const char *domain)
{
	if (ev->rank < 0 || ev->rank >= im->capranks || !im->ranks[ev->rank].used)
		return pt_logerr(PT_EINVAL, "%s: an event of rank %d, which no input announced", im->input, ev->rank);
	int kind = ev->op.kind;
	int gpu = kind == PT_OP_KERNEL || kind == PT_OP_MEMCPY || kind == PT_OP_MEMSET || kind == PT_OP_SYNC ||
		  (kind == PT_OP_RANGE && ev->device >= 0);
	if (ev->end_ns < ev->start_ns) {
		imp_skip(im, "ending before it starts");
		return 0;
	}
	if (gpu && kind != PT_OP_RANGE && ev->start_ns == 0 && ev->end_ns == 0) {
		imp_skip(im, "without GPU timestamps (CUPTI ran out of buffers)");
		return 0;
	}
	if (!im->have_origin) {
		im->have_origin = 1;
		im->epoch_known = ev->start_ns >= EPOCH_FLOOR;
		im->origin = im->epoch_known ? ev->start_ns / SECOND * SECOND : 0;
	}
	ev->start_ns -= im->origin;
	ev->end_ns -= im->origin;
	ev->posted_ns = ev->start_ns;
	if (ev->start_ns < im->min_ns)
		im->min_ns = ev->start_ns;
	if (ev->end_ns > im->max_ns)
		im->max_ns = ev->end_ns;
	uint32_t id = 0;
	if (name && *name) {
		id = pt_rec_intern(im->rec, name);
		if (!id)
			return PT_ESQL;
		if (grow_names(im, id))
			return PT_ENOMEM;
	}
	struct imp_rank *rk = &im->ranks[ev->rank];
	if (gpu && rk->device < 0)
		rk->device = ev->device;
	struct imp_stream *s = stream_get(im, ev->rank, ev->stream, gpu, ev->device);
	if (!s)
		return PT_ENOMEM;
	s->events++;
	int64_t dur = ev->end_ns - ev->start_ns;
	switch (kind) {
	case PT_OP_KERNEL:
		if (id && !im->kcls[id])
			im->kcls[id] = imp_is_comm_kernel(im->rules, name) ? 2 : 1;
		if (id && im->kcls[id] == 2)
			s->comm_ns += dur;
		else
			s->comp_ns += dur;
		s->kernels++;
		break;
	case PT_OP_MEMCPY:
		if (ev->op.payload == 10) /* peer to peer: a transfer between GPUs */
			s->comm_ns += dur;
		break;
	case PT_OP_RANGE: {
		ev->op.seq = domain && *domain ? (int32_t)pt_rec_intern(im->rec, domain) : 0;
		uint32_t l = 1;
		int err = id ? label_of(im, id, name, &l) : 0;
		if (!err && l > 1)
			err = lused_add(im, ev->rank, l - 2);
		if (err)
			return err;
		break;
	}
	}
	ev->name = id;
	if (!im->buf && !(im->buf = pt_rec_thread(im->rec)))
		return PT_ENOMEM;
	pt_emit(im->buf, ev);
	im->count[kind]++;
	im->nevents++;
	rk->events++;
	return 0;
}

/* ------------------------------------------------------------------ end */

int imp_stream_is_comm(const imp *im, const struct imp_stream *s)
{
	if (!s->gpu)
		return 0;
	if (im->ncomm_streams) {
		for (int i = 0; i < im->ncomm_streams; i++)
			if (im->comm_streams[i] == s->id)
				return 1;
		return 0;
	}
	return s->comm_ns > s->comp_ns;
}

static int describe(imp *im)
{
	int err = 0;
	if (im->ndevnames) /* empty arrays may be NULL, which qsort must not see */
		qsort(im->devnames, im->ndevnames, sizeof *im->devnames, name_cmp);
	if (im->nthnames)
		qsort(im->thnames, im->nthnames, sizeof *im->thnames, name_cmp);
	for (int r = 0; r < im->capranks && !err; r++) {
		struct imp_rank *rk = &im->ranks[r];
		if (!rk->used)
			continue;
		pt_rank_info ri = {.rank = r, .device = rk->device, .theory_bubble_ns = -1, .theory_peak_act = -1};
		const char *dev = rk->device >= 0 ? find_name(im->devnames, im->ndevnames, r, rk->device) : NULL;
		const char *base = strrchr(rk->source, '/');
		base = base ? base + 1 : rk->source;
		if (rk->device >= 0)
			snprintf(ri.label, sizeof ri.label, "rank %d \xc2\xb7 GPU %d%s%s%s", r, rk->device,
				 dev ? " (" : "", dev ? dev : "", dev ? ")" : "");
		else
			snprintf(ri.label, sizeof ri.label, "rank %d \xc2\xb7 %s", r, base);
		err = pt_rec_rank(im->rec, &ri);
	}
	for (size_t i = 0; i < im->nstreams && !err; i++) {
		const struct imp_stream *s = &im->streams[i];
		char name[96];
		if (s->gpu) {
			snprintf(name, sizeof name, "stream %u", s->id);
		} else {
			if (stream_find(im, s->rank, s->id, 1, NULL))
				continue; /* a thread id that clashes with a GPU stream's: the stream's row wins */
			const char *t = find_name(im->thnames, im->nthnames, s->rank, (int)s->id);
			snprintf(name, sizeof name, "%s", t ? t : "");
			if (!t)
				snprintf(name, sizeof name, "thread %u", s->id);
		}
		err = pt_rec_stream(im->rec, s->rank, s->id,
				    imp_stream_is_comm(im, s) ? PT_STREAM_COMM : PT_STREAM_COMPUTE, name);
	}
	return err;
}

/* The ops the annotations stand for, per rank (B becomes I where the rank
 * has the matching W). */
static int labels(imp *im)
{
	if (!im->nlused)
		return 0;
	pt_range_label *v = calloc(im->nlused, sizeof *v);
	if (!v)
		return PT_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < im->caplused; i++) {
		if (!im->lused[i])
			continue;
		int32_t rank = (int32_t)(im->lused[i] >> 32);
		const struct imp_lname *l = &im->lnames[(im->lused[i] & 0xffffffffu) - 1];
		v[n].rank = rank;
		v[n].name = l->id;
		v[n].op = l->op;
		if (l->pending_b) {
			for (size_t j = 0; j < im->nlnames; j++) {
				const struct imp_lname *w = &im->lnames[j];
				if (w->op.kind == PT_OP_W && w->part == l->part &&
				    !strncmp(w->text, l->text, l->part) && !strcmp(w->text + w->part, "(W)") &&
				    lused_has(im, rank, (uint32_t)j)) {
					v[n].op.kind = PT_OP_I;
					break;
				}
			}
		}
		n++;
	}
	int err = pt_rec_label_ranges(im->rec, v, n, &im->labels);
	free(v);
	return err;
}

int imp_finish(imp *im, const char *const *meta)
{
	if (im->progress) { /* the passes below and the index build take a while on big traces */
		fprintf(stderr, "\r\033[Kimported %lld events; nesting ranges, labelling ops, writing indexes ...",
			(long long)im->nevents);
		im->progress_shown = 1;
	}
	if (!im->nevents)
		return pt_logerr(PT_EINVAL, "%s: no events to import (an empty trace?)",
				 im->input ? im->input : "input");
	int err = 0;
	if (im->min_ns < 0) { /* something came before the first event read: start there */
		err = pt_rec_shift(im->rec, -im->min_ns);
		im->origin += im->min_ns;
		im->max_ns -= im->min_ns;
		im->min_ns = 0;
	}
	if (!err)
		err = describe(im);
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", im->epoch_known ? (long long)im->origin : 0LL);
	if (!err)
		err = pt_rec_meta(im->rec, "epoch_ns", buf);
	if (!err)
		err = pt_rec_meta(im->rec, "clock", im->epoch_known ? "imported (CLOCK_REALTIME)" : "imported");
	if (!err)
		err = pt_rec_meta_int(im->rec, "ranks", im->nranks);
	for (const char *const *m = meta; m && *m && !err; m += 2)
		err = pt_rec_meta(im->rec, m[0], m[1]);
	/* nsys rebuilt push/pop nesting itself; a JSON trace's X events nest by time */
	if (!err && im->format == IMP_KINETO && im->count[PT_OP_RANGE])
		err = pt_rec_nest_ranges(im->rec);
	if (!err)
		err = labels(im);
	return err;
}
