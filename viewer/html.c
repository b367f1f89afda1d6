/*
 * viewer/html.c — the HTML report: one self-contained file holding the page
 * (viewer/assets/report.html, .css, .js, embedded at build time) and the
 * traces as one JSON document in a <script type="application/json"> block,
 * which the page's script parses and draws on canvases. This file writes the
 * JSON (with yajl) and assembles the page; all drawing is the script's.
 *
 * Safety: names come from databases anyone may have written (a kernel called
 * "<script>..."). The JSON is made by yajl and then every '<', '>', '&' and
 * U+2028/U+2029 in it becomes a \uXXXX escape, so nothing in the data can
 * close the script block or start markup; the page only ever puts names into
 * the document with textContent or canvas fillText.
 *
 * Size: per lane, columns of integers (start as the delta from the previous
 * start, duration, kind, name index), names interned per trace. Memory holds
 * one rank of one trace at a time.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include "libtrace/grow.h"
#include "viewer.h"

/* ------------------------------------------------ the escaping JSON sink */

struct sink {
	FILE *f;
	char buf[1 << 16];
	size_t n;
	int pend; /* bytes held of a possible E2 80 A8/A9 (U+2028/9) */
	int64_t events;
};

static void emit(struct sink *k, const char *s, size_t n)
{
	if (k->n + n > sizeof k->buf) {
		fwrite(k->buf, 1, k->n, k->f);
		k->n = 0;
	}
	memcpy(k->buf + k->n, s, n);
	k->n += n;
}

static void sink_flush(struct sink *k)
{
	static const char e2[] = "\xe2\x80";
	emit(k, e2, (size_t)k->pend);
	k->pend = 0;
	fwrite(k->buf, 1, k->n, k->f);
	k->n = 0;
}

/* yajl's print callback: the text as yajl made it, with the characters that
 * mean something to an HTML parser (or end a JavaScript line) escaped. They
 * can only occur inside JSON strings, where \uXXXX means the same. */
static void sink_print(void *ctx, const char *s, size_t n)
{
	struct sink *k = ctx;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (k->pend == 1) {
			if (c == 0x80) {
				k->pend = 2;
				continue;
			}
			emit(k, "\xe2", 1);
			k->pend = 0;
		} else if (k->pend == 2) {
			k->pend = 0;
			if (c == 0xa8 || c == 0xa9) {
				emit(k, c == 0xa8 ? "\\u2028" : "\\u2029", 6);
				continue;
			}
			emit(k, "\xe2\x80", 2);
		}
		switch (c) {
		case '<': emit(k, "\\u003c", 6); break;
		case '>': emit(k, "\\u003e", 6); break;
		case '&': emit(k, "\\u0026", 6); break;
		case 0xe2: k->pend = 1; break;
		default: emit(k, (const char *)&s[i], 1);
		}
	}
}

/* ----------------------------------------------------------- yajl helpers */

static void jkstr(yajl_gen g, const char *k, const char *v)
{
	pt_json_str(g, k);
	if (v)
		pt_json_str(g, v);
	else
		yajl_gen_null(g);
}

/* ----------------------------------------------------------- name table */

/* Names of one trace, each once: op names made here, activity names from the
 * trace's strings table (by id, so each string is hashed once). */
struct names {
	char **v;
	uint32_t n;
	size_t cap;
	uint32_t *slot; /* open addressing: index + 1, 0 empty */
	uint32_t nslot;
	int32_t *by_sid; /* trace string id -> index + 1 */
	uint32_t nsid;
};

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static int names_grow(struct names *t)
{
	uint32_t nslot = t->nslot ? t->nslot * 2 : 1024;
	uint32_t *slot = calloc(nslot, sizeof *slot);
	if (!slot)
		return PT_ENOMEM;
	for (uint32_t i = 0; i < t->n; i++) {
		uint32_t h = hash(t->v[i]) & (nslot - 1);
		while (slot[h])
			h = (h + 1) & (nslot - 1);
		slot[h] = i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->nslot = nslot;
	return 0;
}

/* The index of s, added when new; -1 on ENOMEM. */
static int64_t names_get(struct names *t, const char *s)
{
	if ((t->n + 1) * 10 > t->nslot * 7 && names_grow(t))
		return -1;
	uint32_t h = hash(s) & (t->nslot - 1);
	while (t->slot[h]) {
		if (!strcmp(t->v[t->slot[h] - 1], s))
			return t->slot[h] - 1;
		h = (h + 1) & (t->nslot - 1);
	}
	if (pt_grow(&t->v, &t->cap, (size_t)t->n + 1, sizeof *t->v))
		return -1;
	if (!(t->v[t->n] = strdup(s)))
		return -1;
	t->slot[h] = ++t->n;
	return t->n - 1;
}

static int64_t names_span(struct names *t, pt_trace *tr, const pt_span *s)
{
	if (!pt_kind_is_activity(s->op.kind)) {
		char buf[96];
		pt_op_name(&s->op, PT_NAME_LONG, buf, sizeof buf);
		return names_get(t, buf);
	}
	if (s->name >= t->nsid) {
		uint32_t nsid = s->name + 1024;
		int32_t *m = realloc(t->by_sid, nsid * sizeof *m);
		if (!m)
			return -1;
		memset(m + t->nsid, 0, (nsid - t->nsid) * sizeof *m);
		t->by_sid = m;
		t->nsid = nsid;
	}
	if (!t->by_sid[s->name]) {
		const char *str = pt_trace_string(tr, s->name);
		int64_t i = names_get(t, *str ? str : pt_kind_name(s->op.kind));
		if (i < 0)
			return -1;
		t->by_sid[s->name] = (int32_t)i + 1;
	}
	return t->by_sid[s->name] - 1;
}

static void names_free(struct names *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	free(t->slot);
	free(t->by_sid);
	memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------ the data */

static const char *const lane_kinds[] = {"ops", "comms", "gpu", "ranges", "cpu"};

enum column { COL_START, COL_DUR, COL_KIND, COL_POSTED, COL_BYTES };

/* One column of a lane: key, then an array of one field of every span
 * (starts as deltas from the previous start, the first from base). */
static void column(yajl_gen g, const char *key, const pt_lane *l, enum column which, int64_t base)
{
	pt_json_str(g, key);
	yajl_gen_array_open(g);
	int64_t prev = base;
	for (size_t i = 0; i < l->n; i++) {
		const pt_span *s = &l->span[i];
		switch (which) {
		case COL_START: yajl_gen_integer(g, s->start - prev); prev = s->start; break;
		case COL_DUR: yajl_gen_integer(g, s->end - s->start); break;
		case COL_KIND: yajl_gen_integer(g, s->op.kind); break;
		case COL_POSTED: yajl_gen_integer(g, s->start - s->posted); break;
		case COL_BYTES: yajl_gen_integer(g, s->op.bytes); break;
		}
	}
	yajl_gen_array_close(g);
}

static int lane_json(yajl_gen g, pt_trace *tr, const pt_lane *l, int64_t base, struct names *nm, struct sink *k)
{
	yajl_gen_map_open(g);
	jkstr(g, "kind", lane_kinds[l->kind]);
	pt_json_int(g, "stream", l->stream);
	jkstr(g, "role", l->role == PT_STREAM_COMPUTE ? "compute" : l->role == PT_STREAM_COMM ? "comm" : NULL);
	jkstr(g, "label", l->label);
	column(g, "s", l, COL_START, base);
	column(g, "d", l, COL_DUR, base);
	column(g, "k", l, COL_KIND, base);
	pt_json_str(g, "n");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < l->n; i++) {
		int64_t x = names_span(nm, tr, &l->span[i]);
		if (x < 0)
			return PT_ENOMEM;
		yajl_gen_integer(g, x);
	}
	yajl_gen_array_close(g);
	if (l->kind == PT_LANE_COMMS) {
		column(g, "p", l, COL_POSTED, base); /* how long before its transfer a message was posted */
		column(g, "b", l, COL_BYTES, base);
	}
	yajl_gen_map_close(g);
	k->events += (int64_t)l->n;
	return 0;
}

static void rank_metrics_json(yajl_gen g, const pt_rank_metrics *r)
{
	yajl_gen_map_open(g);
	pt_json_int(g, "busy", r->busy);
	pt_json_int(g, "bubble", r->bubble);
	pt_json_int_or_null(g, "theory_bubble", r->theory_bubble);
	pt_json_int(g, "span_bubble", r->span_bubble);
	pt_json_int(g, "comm", r->comm);
	pt_json_int(g, "exposed", r->exposed);
	pt_json_int(g, "overlap", r->overlap);
	pt_json_int(g, "peak", r->peak_act);
	pt_json_int_or_null(g, "theory_peak", r->theory_peak);
	pt_json_int(g, "first", r->first);
	pt_json_int(g, "last", r->last);
	yajl_gen_map_close(g);
}

static const char *const meta_keys[] = {
	"schedule",  "ranks",	   "microbatches", "chunks",	   "pipes",	  "stages",
	"group",     "backend",	   "comm_mode",	   "cost",	   "cost.F_ns",	  "cost.B_ns",
	"cost.I_ns", "cost.W_ns",  "cost.FB_ns",   "plan_source", "activation_bytes", "clock",
	"epoch_ns",  "tool_version", "link.latency_ns", "link.bandwidth_Bps", "theory.bubble_formula",
};

static int trace_json(yajl_gen g, pt_trace *tr, int idx, int n, const pt_html_opts *o, struct sink *k)
{
	pt_metrics *m;
	int err = pt_metrics_compute(tr, &m);
	if (err)
		return err;
	struct names nm = {0};
	yajl_gen_map_open(g);
	jkstr(g, "path", pt_trace_path(tr));
	pt_json_str(g, "meta");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < sizeof meta_keys / sizeof meta_keys[0]; i++) {
		const char *v = pt_trace_meta(tr, meta_keys[i]);
		if (v)
			jkstr(g, meta_keys[i], v);
	}
	yajl_gen_map_close(g);
	pt_json_int(g, "base", m->win_start); /* every time below is relative to it */
	pt_json_int(g, "span", m->win_end - m->win_start);
	pt_json_str(g, "metrics");
	yajl_gen_map_open(g);
	pt_json_num(g, "bubble_ratio", m->bubble_ratio);
	pt_json_num(g, "theory_bubble_ratio", m->theory_bubble_ratio);
	pt_json_num(g, "overlap_ratio", m->overlap_ratio);
	pt_json_int(g, "busy", m->busy);
	pt_json_int(g, "bubble", m->bubble);
	pt_json_int(g, "comm", m->comm);
	pt_json_int(g, "exposed", m->exposed);
	pt_json_int_or_null(g, "theory_bubble", m->theory_bubble);
	pt_json_int_or_null(g, "theory_peak", m->theory_peak);
	yajl_gen_map_close(g);
	pt_json_str(g, "ranks");
	yajl_gen_array_open(g);
	for (int i = 0; i < m->nranks && !err; i++) {
		if (o && o->progress)
			fprintf(stderr, "\rview: trace %d/%d, rank %d/%d ", idx + 1, n, i + 1, m->nranks);
		pt_vrank r;
		if ((err = pt_vrank_load(tr, m->rank[i].rank, &r)))
			break;
		yajl_gen_map_open(g);
		pt_json_int(g, "rank", r.rank);
		jkstr(g, "label", r.label);
		pt_json_str(g, "m");
		rank_metrics_json(g, &m->rank[i]);
		pt_json_str(g, "lanes");
		yajl_gen_array_open(g);
		for (int j = 0; j < r.nlanes && !err; j++)
			err = lane_json(g, tr, &r.lane[j], m->win_start, &nm, k);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		pt_vrank_fini(&r);
	}
	yajl_gen_array_close(g);
	pt_json_str(g, "names");
	yajl_gen_array_open(g);
	for (uint32_t i = 0; i < nm.n; i++)
		pt_json_str(g, nm.v[i]);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	names_free(&nm);
	pt_metrics_destroy(m);
	return err;
}

static int data_json(pt_trace **t, int n, const pt_html_opts *o, struct sink *k)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		return PT_ENOMEM;
	yajl_gen_config(g, yajl_gen_print_callback, sink_print, k);
	yajl_gen_map_open(g);
	jkstr(g, "tool", "pipetrace " PT_VERSION);
	pt_json_str(g, "traces");
	yajl_gen_array_open(g);
	int err = 0;
	for (int i = 0; i < n && !err; i++)
		err = trace_json(g, t[i], i, n, o, k);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_free(g);
	if (o && o->progress)
		fprintf(stderr, "\r%40s\r", "");
	sink_flush(k);
	return err;
}

/* ------------------------------------------------------------ the page */

/*
 * The page template with its "/\*@pt:NAME*\/" markers replaced: "data" by the
 * JSON, any other NAME by the embedded asset of that name.
 */
static int page(FILE *f, pt_trace **t, int n, const pt_html_opts *o, struct sink *k)
{
	size_t len;
	const char *tpl = pt_asset("report.html", &len);
	if (!tpl)
		return pt_logerr(PT_ENOTSUP, "view: this build has no HTML template (viewer/assets/report.html)");
	const char *p = tpl, *end = tpl + len;
	static const char open_[] = "/*@pt:";
	while (p < end) {
		const char *m = memmem(p, (size_t)(end - p), open_, sizeof open_ - 1);
		if (!m) {
			fwrite(p, 1, (size_t)(end - p), f);
			break;
		}
		fwrite(p, 1, (size_t)(m - p), f);
		const char *name = m + sizeof open_ - 1;
		const char *close = memmem(name, (size_t)(end - name), "*/", 2);
		if (!close)
			return pt_logerr(PT_EINVAL, "view: unterminated marker in report.html");
		char key[64];
		snprintf(key, sizeof key, "%.*s", (int)(close - name), name);
		if (!strcmp(key, "data")) {
			int err = data_json(t, n, o, k);
			if (err)
				return err;
		} else {
			size_t alen;
			const char *a = pt_asset(key, &alen);
			if (!a)
				return pt_logerr(PT_EINVAL, "view: report.html names an asset '%s' this build lacks", key);
			fwrite(a, 1, alen, f);
		}
		p = close + 2;
	}
	return 0;
}

int pt_html_write(pt_trace **traces, int n, const char *path, const pt_html_opts *o, pt_html_stats *st)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 16);
	if (!tmp)
		return PT_ENOMEM;
	snprintf(tmp, plen + 16, "%s.tmp-XXXXXX", path);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		/* a place the user cannot write to is bad input, as for `run -o` */
		int e = errno;
		int code = e == ENOENT || e == ENOTDIR ? PT_ENOENT
			   : e == EACCES || e == EROFS || e == EISDIR || e == EPERM ? PT_EINVAL
										 : PT_EIO;
		free(tmp);
		return pt_logerr(code, "%s: cannot write here: %s", path, strerror(e));
	}
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask); /* a report, readable like any file the user writes */
	FILE *f = fdopen(fd, "wb");
	struct sink *k = calloc(1, sizeof *k);
	int err = 0;
	if (!f || !k) {
		err = PT_ENOMEM;
		if (!f)
			close(fd);
	} else {
		k->f = f;
		err = page(f, traces, n, o, k);
	}
	if (f && fflush(f) && !err)
		err = pt_logerr(PT_EIO, "%s: cannot write: %s", path, strerror(errno));
	if (f && fclose(f) && !err)
		err = pt_logerr(PT_EIO, "%s: cannot write: %s", path, strerror(errno));
	if (!err && rename(tmp, path))
		err = pt_logerr(PT_EIO, "%s: cannot write: %s", path, strerror(errno));
	if (err) {
		unlink(tmp);
	} else if (st) {
		struct stat sb;
		st->bytes = stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
		st->events = k->events;
	}
	free(k);
	free(tmp);
	return err;
}
