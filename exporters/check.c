/*
 * exporters/check.c — the CI gate's engine: read a baseline (the JSON of
 * `stats --json`, parsed with yajl), refuse one recorded for another
 * schedule or size, and compare each gated metric of a trace with it under
 * tolerances (defaults in the table below, overridable per metric: absolute
 * or relative, in the direction that counts as a regression). It produces
 * rows and verdicts; printing them, JUnit and Markdown are check_report.c's.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include "exporters.h"
#include "libtrace/grow.h"

/* The gated metrics, their direction and their default tolerance
 * (docs/ci.md explains the choice). */
static const struct gate {
	const char *key;
	int unit;  /* enum pt_check_unit */
	int worse; /* +1 higher is worse, -1 lower is worse */
	double tol;
	int rel;
} gates[] = {
	{"makespan_ns", PT_CHECK_NS, +1, 0.02, 1},	{"bubble_ratio", PT_CHECK_RATIO, +1, 0.005, 0},
	{"rank_bubble_ns", PT_CHECK_NS, +1, 0.05, 1},	{"overlap_ratio", PT_CHECK_RATIO, -1, 0.01, 0},
	{"exposed_comm_ns", PT_CHECK_NS, +1, 0.05, 1}, {"peak_activations", PT_CHECK_COUNT, +1, 0, 0},
};
#define NGATES (sizeof gates / sizeof gates[0])

static const struct gate *gate_find(const char *key, size_t len)
{
	for (size_t i = 0; i < NGATES; i++)
		if (strlen(gates[i].key) == len && !strncmp(gates[i].key, key, len))
			return &gates[i];
	return NULL;
}

/* ------------------------------------------------------------ tolerances */

struct pt_check_tol {
	char key[48]; /* a gate's key, or "rank_bubble_ns[3]" */
	double tol;
	int rel, off;
};

/* Parse one "key=value" of --tolerance into tl (see pt_check_create). */
static int parse_tol(const char *item, struct pt_check_tol *tl)
{
	const char *eq = strchr(item, '=');
	if (!eq || eq == item)
		return pt_logerr(PT_EINVAL, "--tolerance: '%s' is not METRIC=VALUE (e.g. bubble_ratio=+0.005)", item);
	size_t klen = (size_t)(eq - item), base = klen;
	const char *br = memchr(item, '[', klen);
	if (br) {
		base = (size_t)(br - item);
		char *end;
		long r = strtol(br + 1, &end, 10);
		if (end == br + 1 || *end != ']' || end + 1 != eq || r < 0)
			return pt_logerr(PT_EINVAL, "--tolerance: '%.*s': a rank is written rank_bubble_ns[3]", (int)klen,
					 item);
	}
	const struct gate *g = gate_find(item, base);
	if (!g || (br && strcmp(g->key, "rank_bubble_ns")) || klen >= sizeof tl->key) {
		char known[256];
		size_t n = 0;
		for (size_t i = 0; i < NGATES; i++)
			n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", gates[i].key);
		return pt_logerr(PT_EINVAL, "--tolerance: unknown metric '%.*s' (known: %s; one rank: rank_bubble_ns[R])",
				 (int)klen, item, known);
	}
	memset(tl, 0, sizeof *tl);
	memcpy(tl->key, item, klen);
	const char *v = eq + 1;
	if (!strcmp(v, "off")) {
		tl->off = 1;
		return 0;
	}
	int sign = 0;
	if (*v == '+' || *v == '-')
		sign = *v++ == '+' ? 1 : -1;
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (end == v || errno || !isfinite(x) || x < 0 || *v == '+' || *v == '-')
		return pt_logerr(PT_EINVAL, "--tolerance %s: '%s' is not a tolerance (e.g. +0.005, +2%%, +1ms, off)",
				 tl->key, eq + 1);
	if (*end == '%') {
		tl->rel = 1;
		x /= 100;
		end++;
	} else if (g->unit == PT_CHECK_NS && *end) {
		static const struct {
			const char *s;
			double mul;
		} units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
		size_t i;
		for (i = 0; i < 4 && strcmp(end, units[i].s); i++)
			;
		if (i == 4)
			return pt_logerr(PT_EINVAL, "--tolerance %s: unknown unit in '%s' (ns, us, ms, s, or %%)", tl->key,
					 eq + 1);
		x *= units[i].mul;
		end += strlen(units[i].s);
	}
	if (*end)
		return pt_logerr(PT_EINVAL, "--tolerance %s: '%s' is not a tolerance (e.g. +0.005, +2%%, off)", tl->key,
				 eq + 1);
	if (sign && sign != g->worse)
		return pt_logerr(PT_EINVAL,
				 "--tolerance %s: a regression of %s is %s, so its tolerance is written %c%s", tl->key,
				 g->key, g->worse > 0 ? "an increase" : "a decrease", g->worse > 0 ? '+' : '-', v);
	tl->tol = x;
	return 0;
}

/* -------------------------------------------------------------- baseline */

struct baseline {
	char schedule[64], comm[32], backend[32], cost[160];
	long long ranks, microbatches;
	double makespan, bubble_ratio, overlap_ratio, exposed, peak;
	int nranks;
	long long *rank;
	double *rank_bubble;
};

/* Where the parser stopped, as byte, line and column. */
static void where(const unsigned char *text, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Check that text is JSON; on failure log the byte offset and yajl's reason. */
static int json_check(const char *path, const unsigned char *text, size_t len)
{
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);
	if (!h)
		return PT_ENOMEM;
	yajl_status st = yajl_parse(h, text, len);
	size_t off = st == yajl_status_ok ? len : yajl_get_bytes_consumed(h);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	int err = 0;
	if (st != yajl_status_ok) {
		unsigned char *msg = yajl_get_error(h, 0, text, len);
		char reason[200];
		snprintf(reason, sizeof reason, "%s", msg ? (const char *)msg : "parse error");
		yajl_free_error(h, msg);
		if (!strncmp(reason, "parse error: ", 13))
			memmove(reason, reason + 13, strlen(reason + 13) + 1);
		size_t n = strlen(reason);
		while (n && (reason[n - 1] == '\n' || reason[n - 1] == ' '))
			reason[--n] = '\0';
		size_t line, col;
		where(text, off, &line, &col);
		err = pt_logerr(PT_EINVAL, "%s: not valid JSON at byte %zu (line %zu, column %zu): %s", path, off, line,
				col, reason);
	}
	yajl_free(h);
	return err;
}

static const char *type_name(yajl_val v)
{
	if (!v)
		return "nothing";
	if (YAJL_IS_STRING(v))
		return "a string";
	if (YAJL_IS_INTEGER(v))
		return "an integer";
	if (YAJL_IS_NUMBER(v))
		return "a number";
	if (YAJL_IS_OBJECT(v))
		return "an object";
	if (YAJL_IS_ARRAY(v))
		return "an array";
	if (YAJL_IS_NULL(v))
		return "null";
	return "true or false";
}

/* Fetch key from obj and check its type; logs "FILE: WHERE.KEY: expected …". */
enum want { W_STR, W_INT, W_NUM, W_NUM_OR_NULL, W_ARRAY };

static int field(const char *path, const char *at, yajl_val obj, const char *key, enum want w, yajl_val *out)
{
	static const char *const wants[] = {"a string", "an integer", "a number", "a number or null", "an array"};
	const char *keys[] = {key, NULL};
	yajl_val v = yajl_tree_get(obj, keys, yajl_t_any);
	int ok = v && ((w == W_STR && YAJL_IS_STRING(v)) || (w == W_INT && YAJL_IS_INTEGER(v)) ||
		       ((w == W_NUM || w == W_NUM_OR_NULL) && YAJL_IS_NUMBER(v)) ||
		       (w == W_NUM_OR_NULL && YAJL_IS_NULL(v)) || (w == W_ARRAY && YAJL_IS_ARRAY(v)));
	if (!ok) {
		if (!v)
			return pt_logerr(PT_EINVAL, "%s: %s%s%s is missing (is it the output of `pipetrace stats --json`?)",
					 path, at, *at ? "." : "", key);
		return pt_logerr(PT_EINVAL, "%s: %s%s%s: expected %s, found %s", path, at, *at ? "." : "", key,
				 wants[w], type_name(v));
	}
	*out = v;
	return 0;
}

static void copy_str(char *dst, size_t size, yajl_val v)
{
	snprintf(dst, size, "%s", v && YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : "?");
}

/* The fields check needs, from a parsed `stats --json` object. */
static int baseline_from(const char *path, yajl_val root, struct baseline *b)
{
	yajl_val v;
	int err;
	if (!YAJL_IS_OBJECT(root))
		return pt_logerr(PT_EINVAL, "%s: expected a JSON object (the output of `pipetrace stats --json`), found %s",
				 path, type_name(root));
	const char *tk[] = {"traces", NULL};
	yajl_val traces = yajl_tree_get(root, tk, yajl_t_array);
	if (traces)
		return pt_logerr(PT_EINVAL,
				 "%s: holds %zu traces (the output of `stats` with several traces); a baseline is "
				 "one trace's `pipetrace stats --json`",
				 path, YAJL_GET_ARRAY(traces)->len);
	if ((err = field(path, "", root, "schedule", W_STR, &v)))
		return err;
	copy_str(b->schedule, sizeof b->schedule, v);
	if ((err = field(path, "", root, "ranks", W_INT, &v)))
		return err;
	b->ranks = YAJL_GET_INTEGER(v);
	if ((err = field(path, "", root, "microbatches", W_INT, &v)))
		return err;
	b->microbatches = YAJL_GET_INTEGER(v);
	if ((err = field(path, "", root, "makespan_ns", W_INT, &v)))
		return err;
	b->makespan = (double)YAJL_GET_INTEGER(v);
	if ((err = field(path, "", root, "bubble_ratio", W_NUM, &v)))
		return err;
	b->bubble_ratio = YAJL_GET_DOUBLE(v);
	if ((err = field(path, "", root, "overlap_ratio", W_NUM_OR_NULL, &v)))
		return err;
	b->overlap_ratio = YAJL_IS_NULL(v) ? NAN : YAJL_GET_DOUBLE(v);
	if ((err = field(path, "", root, "exposed_comm_ns", W_INT, &v)))
		return err;
	b->exposed = (double)YAJL_GET_INTEGER(v);
	const char *ck[] = {"comm_mode", NULL}, *bk[] = {"backend", NULL}, *xk[] = {"cost", NULL};
	copy_str(b->comm, sizeof b->comm, yajl_tree_get(root, ck, yajl_t_string));
	copy_str(b->backend, sizeof b->backend, yajl_tree_get(root, bk, yajl_t_string));
	copy_str(b->cost, sizeof b->cost, yajl_tree_get(root, xk, yajl_t_string));
	yajl_val per;
	if ((err = field(path, "", root, "per_rank", W_ARRAY, &per)))
		return err;
	size_t n = YAJL_GET_ARRAY(per)->len;
	if (b->ranks < 1 || b->ranks > 65536 || (long long)n != b->ranks)
		return pt_logerr(PT_EINVAL, "%s: says %lld ranks but per_rank has %zu entries", path, b->ranks, n);
	b->nranks = (int)n;
	b->rank = calloc(n, sizeof *b->rank);
	b->rank_bubble = calloc(n, sizeof *b->rank_bubble);
	if (!b->rank || !b->rank_bubble)
		return PT_ENOMEM;
	b->peak = 0;
	for (size_t i = 0; i < n; i++) {
		yajl_val r = YAJL_GET_ARRAY(per)->values[i];
		char at[32];
		snprintf(at, sizeof at, "per_rank[%zu]", i);
		if (!YAJL_IS_OBJECT(r))
			return pt_logerr(PT_EINVAL, "%s: %s: expected an object, found %s", path, at, type_name(r));
		if ((err = field(path, at, r, "rank", W_INT, &v)))
			return err;
		b->rank[i] = YAJL_GET_INTEGER(v);
		for (size_t j = 0; j < i; j++)
			if (b->rank[j] == b->rank[i])
				return pt_logerr(PT_EINVAL, "%s: %s: rank %lld appears twice", path, at, b->rank[i]);
		if ((err = field(path, at, r, "bubble_ns", W_INT, &v)))
			return err;
		b->rank_bubble[i] = (double)YAJL_GET_INTEGER(v);
		if ((err = field(path, at, r, "peak_activations", W_INT, &v)))
			return err;
		if ((double)YAJL_GET_INTEGER(v) > b->peak)
			b->peak = (double)YAJL_GET_INTEGER(v);
	}
	return 0;
}

/* Read and parse path into b. */
static int baseline_load(const char *path, struct baseline *b)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return pt_logerr(errno == ENOENT ? PT_ENOENT : PT_EINVAL, "%s: cannot read the baseline: %s", path,
				 strerror(errno));
	size_t cap = 1 << 16, len = 0;
	unsigned char *text = malloc(cap + 1);
	int err = 0;
	while (text) {
		len += fread(text + len, 1, cap - len, f);
		if (len < cap)
			break;
		if (cap >= (64u << 20)) {
			err = pt_logerr(PT_EINVAL, "%s: larger than 64 MiB: not a baseline", path);
			break;
		}
		unsigned char *t = realloc(text, 2 * cap + 1);
		if (!t) {
			free(text);
			text = NULL;
			break;
		}
		text = t;
		cap *= 2;
	}
	if (!text)
		err = PT_ENOMEM;
	else if (!err && ferror(f))
		err = pt_logerr(PT_EIO, "%s: read error: %s", path, strerror(errno));
	fclose(f);
	if (!err && !len)
		err = pt_logerr(PT_EINVAL, "%s: empty file: not a baseline", path);
	if (!err)
		err = json_check(path, text, len);
	yajl_val root = NULL;
	if (!err) {
		text[len] = '\0';
		char ebuf[256];
		root = yajl_tree_parse((const char *)text, ebuf, sizeof ebuf);
		if (!root) /* json_check passed: only a NUL byte inside the text gets here */
			err = pt_logerr(PT_EINVAL, "%s: not valid JSON: %s", path, ebuf);
	}
	if (!err)
		err = baseline_from(path, root, b);
	yajl_tree_free(root);
	free(text);
	return err;
}

/* ----------------------------------------------------------- comparison */

static int add_row(pt_check *c, const char *name, const struct gate *g, double base, double cur,
		   const struct pt_check_tol *tols, int ntols)
{
	if (pt_grow(&c->row, &c->cap, (size_t)c->nrows + 1, sizeof *c->row))
		return PT_ENOMEM;
	pt_check_row *r = &c->row[c->nrows++];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", name);
	r->unit = g->unit;
	r->worse = g->worse;
	r->tol = g->tol;
	r->rel = g->rel;
	r->base = base;
	r->cur = cur;
	/* the family's tolerance, then one for this very row */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < ntols; i++)
			if (!strcmp(tols[i].key, pass ? name : g->key)) {
				r->tol = tols[i].tol;
				r->rel = tols[i].rel;
				r->off = tols[i].off;
			}
	double allow = r->rel ? r->tol * fabs(base) : r->tol;
	r->limit = base + g->worse * allow;
	if (r->off) {
		r->verdict = PT_CHECK_OFF;
	} else if (isnan(base) || isnan(cur)) {
		r->verdict = PT_CHECK_NA;
	} else if (g->worse * (cur - r->limit) > 0) {
		r->verdict = PT_CHECK_REGRESSION;
		c->nregress++;
	} else if (g->worse * (base - cur) > allow) {
		r->verdict = PT_CHECK_BETTER;
	} else {
		r->verdict = PT_CHECK_OK;
	}
	return 0;
}

/* A ratio as the baseline's JSON holds it (9 significant digits), so that
 * an identical run compares equal under a zero tolerance. */
static double as_printed(double x)
{
	if (isnan(x))
		return x;
	char buf[32];
	snprintf(buf, sizeof buf, "%.9g", x);
	return strtod(buf, NULL);
}

static const char *meta_or(pt_trace *t, const char *k, const char *def)
{
	const char *v = pt_trace_meta(t, k);
	return v && *v ? v : def;
}

int pt_check_create(const char *baseline, pt_trace *t, const pt_metrics *m, const char *const *tolerances,
		    int ntolerances, pt_check **out)
{
	*out = NULL;
	struct baseline b;
	memset(&b, 0, sizeof b);
	struct pt_check_tol *tols = NULL;
	int ntols = 0, err = 0;
	size_t cap = 0;
	pt_check *c = calloc(1, sizeof *c);
	if (!c)
		return PT_ENOMEM;
	/* tolerances first: a typo there is the cheapest thing to report */
	for (int i = 0; i < ntolerances && !err; i++) {
		char *list = strdup(tolerances[i]), *save = NULL;
		if (!list) {
			err = PT_ENOMEM;
			break;
		}
		for (char *item = strtok_r(list, ",", &save); item && !err; item = strtok_r(NULL, ",", &save)) {
			if ((err = pt_grow(&tols, &cap, (size_t)ntols + 1, sizeof *tols)))
				break;
			err = parse_tol(item, &tols[ntols++]);
		}
		free(list);
	}
	if (!err)
		err = baseline_load(baseline, &b);
	if (err)
		goto out;
	const char *sched = meta_or(t, "schedule", "?");
	long long mb = pt_trace_meta_int(t, "microbatches", -1);
	if (strcmp(b.schedule, sched)) {
		err = pt_logerr(PT_EINVAL,
				"%s is a baseline of %s, %s is %s: refusing to compare two schedules (record a baseline "
				"of this one with `pipetrace stats --json`)",
				baseline, b.schedule, pt_trace_path(t), sched);
	} else if (b.ranks != m->nranks || b.microbatches != mb) {
		err = pt_logerr(PT_EINVAL,
				"%s is a baseline of %lld ranks and %lld microbatches, %s has %d ranks and %lld: "
				"refusing to compare runs of different sizes",
				baseline, b.ranks, b.microbatches, pt_trace_path(t), m->nranks, mb);
	}
	for (int i = 0; !err && i < m->nranks; i++) {
		int found = 0;
		for (int j = 0; j < b.nranks; j++)
			found |= b.rank[j] == m->rank[i].rank;
		if (!found)
			err = pt_logerr(PT_EINVAL, "%s has no rank %d, which %s has", baseline, m->rank[i].rank,
					pt_trace_path(t));
	}
	if (err)
		goto out;
	snprintf(c->base_desc, sizeof c->base_desc, "%s \xc2\xb7 %lld ranks \xc2\xb7 %lld microbatches \xc2\xb7 %s backend "
		 "\xc2\xb7 %s comm \xc2\xb7 %s", b.schedule, b.ranks, b.microbatches, b.backend, b.comm, b.cost);
	snprintf(c->cur_desc, sizeof c->cur_desc, "%s \xc2\xb7 %d ranks \xc2\xb7 %lld microbatches \xc2\xb7 %s backend "
		 "\xc2\xb7 %s comm \xc2\xb7 %s", sched, m->nranks, mb, meta_or(t, "backend", "?"),
		 meta_or(t, "comm_mode", "?"), meta_or(t, "cost", "?"));
	snprintf(c->schedule, sizeof c->schedule, "%s", sched);
	const struct gate *g_span = &gates[0], *g_bub = &gates[1], *g_rank = &gates[2], *g_ovl = &gates[3],
			  *g_exp = &gates[4], *g_peak = &gates[5];
	int peak = 0;
	for (int i = 0; i < m->nranks; i++)
		if (m->rank[i].peak_act > peak)
			peak = m->rank[i].peak_act;
	err = add_row(c, "makespan_ns", g_span, b.makespan, (double)(m->win_end - m->win_start), tols, ntols);
	if (!err)
		err = add_row(c, "bubble_ratio", g_bub, b.bubble_ratio, as_printed(m->bubble_ratio), tols, ntols);
	for (int i = 0; i < m->nranks && !err; i++) {
		char name[48];
		snprintf(name, sizeof name, "rank_bubble_ns[%d]", m->rank[i].rank);
		double base = NAN;
		for (int j = 0; j < b.nranks; j++)
			if (b.rank[j] == m->rank[i].rank)
				base = b.rank_bubble[j];
		err = add_row(c, name, g_rank, base, (double)m->rank[i].bubble, tols, ntols);
	}
	if (!err)
		err = add_row(c, "overlap_ratio", g_ovl, b.overlap_ratio, as_printed(m->overlap_ratio), tols, ntols);
	if (!err)
		err = add_row(c, "exposed_comm_ns", g_exp, b.exposed, (double)m->exposed, tols, ntols);
	if (!err)
		err = add_row(c, "peak_activations", g_peak, b.peak, (double)peak, tols, ntols);
	/* a per-rank tolerance for a rank the trace lacks is a typo */
	for (int i = 0; i < ntols && !err; i++) {
		if (!strchr(tols[i].key, '['))
			continue;
		int found = 0;
		for (int r = 0; r < c->nrows; r++)
			found |= !strcmp(c->row[r].name, tols[i].key);
		if (!found)
			err = pt_logerr(PT_EINVAL, "--tolerance %s: %s has no such rank", tols[i].key, pt_trace_path(t));
	}
out:
	free(tols);
	free(b.rank);
	free(b.rank_bubble);
	if (err) {
		pt_check_destroy(c);
		return err;
	}
	*out = c;
	return 0;
}

void pt_check_destroy(pt_check *c)
{
	if (!c)
		return;
	free(c->row);
	free(c);
}

void pt_check_defaults(char *buf, size_t size)
{
	size_t n = 0;
	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < NGATES && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s=%c%g%s", i ? "," : "", gates[i].key,
				      gates[i].worse > 0 ? '+' : '-', gates[i].rel ? 100 * gates[i].tol : gates[i].tol,
				      gates[i].rel ? "%" : "");
}
