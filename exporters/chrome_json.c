/*
 * exporters/chrome_json.c — the Chrome trace-event JSON format, for
 * chrome://tracing, HTA and other tools that read it (Perfetto does too, as a
 * "legacy" format: prefer .pftrace there). The content follows the Perfetto
 * export: X events named like the ops with their arguments, M metadata for
 * process (rank) and thread (stream) names and sort order, s/t/f flows (a
 * message from its SEND to its RECV, a launch from its runtime call to the
 * kernel), and C events for each rank's in-flight activations. pid = rank,
 * tid = stream; a stream whose slices overlap gets extra rows ("p2p (2)",
 * tid = row << 24 | stream), so that every flow event binds to the one slice
 * it belongs to. Times are µs with three decimals: the trace's ns exactly.
 * Strings go through yajl, which escapes them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "exporters.h"

struct state {
	yajl_gen g;
	int *nlanes; /* [slot]: rows named so far */
	int nslots;
	unsigned char *rank_seen; /* [rank_idx]: named */
	int nranks;
	pt_export *x;
};

static void out(void *ctx, const char *s, size_t n)
{
	pt_export_write(ctx, s, n);
}

static void key(yajl_gen g, const char *k)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

/* A string, with any byte sequence that is not UTF-8 replaced by '?' (yajl
 * refuses those, and a JSON reader would too). */
static void str(yajl_gen g, const char *s, size_t n)
{
	if (yajl_gen_string(g, (const unsigned char *)s, n) != yajl_gen_invalid_string)
		return;
	char *c = malloc(n + 1);
	if (!c)
		return;
	for (size_t i = 0; i < n; i++)
		c[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
	yajl_gen_string(g, (const unsigned char *)c, n);
	free(c);
}

static void kv_str(yajl_gen g, const char *k, const char *v)
{
	key(g, k);
	str(g, v, strlen(v));
}

static void kv_int(yajl_gen g, const char *k, long long v)
{
	key(g, k);
	yajl_gen_integer(g, v);
}

/* ns as µs with three decimals, exactly. */
static void kv_us(yajl_gen g, const char *k, int64_t ns)
{
	char buf[32];
	uint64_t a = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
	int n = snprintf(buf, sizeof buf, "%s%" PRIu64 ".%03u", ns < 0 ? "-" : "", a / 1000, (unsigned)(a % 1000));
	key(g, k);
	yajl_gen_number(g, buf, (size_t)n);
}

static uint32_t row_tid(const pt_slot_info *si, int lane)
{
	return lane ? (uint32_t)lane << 24 | (si->stream & 0xffffff) : si->stream;
}

static void metadata(yajl_gen g, const char *name, int32_t pid, uint32_t tid, const char *argk, const char *sv,
		     long long iv)
{
	yajl_gen_map_open(g);
	kv_str(g, "ph", "M");
	kv_str(g, "name", name);
	kv_int(g, "pid", pid);
	kv_int(g, "tid", tid);
	key(g, "args");
	yajl_gen_map_open(g);
	if (sv)
		kv_str(g, argk, sv);
	else
		kv_int(g, argk, iv);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static int grow_bytes(unsigned char **p, int *n, int need)
{
	if (need < *n)
		return 0;
	int m = *n ? *n : 16;
	while (m <= need)
		m *= 2;
	unsigned char *q = realloc(*p, (size_t)m);
	if (!q)
		return PT_ENOMEM;
	memset(q + *n, 0, (size_t)(m - *n));
	*p = q;
	*n = m;
	return 0;
}

/* Name the rank and the row on first use. */
static int describe(struct state *s, const pt_xev *e)
{
	pt_slot_info si;
	pt_export_slot(s->x, e->slot, &si);
	int err = grow_bytes(&s->rank_seen, &s->nranks, si.rank_idx);
	if (err)
		return err;
	if (!s->rank_seen[si.rank_idx]) {
		s->rank_seen[si.rank_idx] = 1;
		metadata(s->g, "process_name", si.rank, 0, "name", si.label, 0);
		metadata(s->g, "process_sort_index", si.rank, 0, "sort_index", NULL, si.rank);
	}
	if (e->slot >= s->nslots) {
		int n = s->nslots ? s->nslots * 2 : 16;
		while (n <= e->slot)
			n *= 2;
		int *nl = realloc(s->nlanes, (size_t)n * sizeof *nl);
		if (!nl)
			return PT_ENOMEM;
		memset(nl + s->nslots, 0, (size_t)(n - s->nslots) * sizeof *nl);
		s->nlanes = nl;
		s->nslots = n;
	}
	for (int l = s->nlanes[e->slot]; l <= e->lane; l++) {
		char name[160];
		if (l)
			snprintf(name, sizeof name, "%s (%d)", si.name, l + 1);
		else
			snprintf(name, sizeof name, "%s", si.name);
		uint32_t tid = row_tid(&si, l);
		metadata(s->g, "thread_name", si.rank, tid, "name", name, 0);
		metadata(s->g, "thread_sort_index", si.rank, tid, "sort_index", NULL, (long long)si.order * 256 + l);
	}
	if (e->lane >= s->nlanes[e->slot])
		s->nlanes[e->slot] = e->lane + 1;
	return 0;
}

static int header(pt_export *x)
{
	struct state *s = pt_export_state(x);
	s->x = x;
	s->g = yajl_gen_alloc(NULL);
	if (!s->g)
		return PT_ENOMEM;
	yajl_gen_config(s->g, yajl_gen_print_callback, out, x);
	yajl_gen_config(s->g, yajl_gen_validate_utf8, 1);
	yajl_gen_config(s->g, yajl_gen_escape_solidus, 1);
	yajl_gen_map_open(s->g);
	key(s->g, "traceEvents");
	yajl_gen_array_open(s->g);
	return 0;
}

static const char *const flow_names[] = {"", "message", "launch", "op"};

static void flow(yajl_gen g, const char *ph, uint64_t id, const pt_slot_info *si, int lane, int64_t ts)
{
	char hex[24];
	yajl_gen_map_open(g);
	kv_str(g, "ph", ph);
	kv_str(g, "cat", "flow");
	kv_str(g, "name", flow_names[id >> 62]);
	snprintf(hex, sizeof hex, "0x%" PRIx64, id);
	kv_str(g, "id", hex);
	kv_int(g, "pid", si->rank);
	kv_int(g, "tid", row_tid(si, lane));
	kv_us(g, "ts", ts);
	if (*ph == 'f')
		kv_str(g, "bp", "e");
	yajl_gen_map_close(g);
}

static void counter(yajl_gen g, int32_t rank, int64_t ts, int act)
{
	yajl_gen_map_open(g);
	kv_str(g, "ph", "C");
	kv_str(g, "name", "in-flight activations");
	kv_int(g, "pid", rank);
	kv_us(g, "ts", ts);
	key(g, "args");
	yajl_gen_map_open(g);
	kv_int(g, "activations", act);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static int event(pt_export *x, const pt_xev *e)
{
	struct state *s = pt_export_state(x);
	yajl_gen g = s->g;
	int err = describe(s, e);
	if (err)
		return err;
	pt_slot_info si;
	pt_export_slot(x, e->slot, &si);
	const pt_event *ev = e->ev;
	yajl_gen_map_open(g);
	kv_str(g, "ph", "X");
	key(g, "name");
	str(g, e->name, e->name_len);
	kv_str(g, "cat", e->cat);
	kv_int(g, "pid", si.rank);
	kv_int(g, "tid", row_tid(&si, e->lane));
	kv_us(g, "ts", ev->start_ns);
	kv_us(g, "dur", e->dur);
	if (!pt_export_options(x)->no_args) {
		pt_arg args[PT_ARG_MAX];
		int n = pt_export_args(x, ev, 0, args);
		key(g, "args");
		yajl_gen_map_open(g);
		for (int i = 0; i < n; i++) {
			if (args[i].str)
				kv_str(g, args[i].key, args[i].str);
			else
				kv_int(g, args[i].key, args[i].val);
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	for (int i = 0; i < 2; i++)
		if (e->flow_begin[i])
			flow(g, "s", e->flow_begin[i], &si, e->lane, ev->start_ns);
	if (e->flow_step)
		flow(g, "t", e->flow_step, &si, e->lane, ev->start_ns);
	if (e->flow_end)
		flow(g, "f", e->flow_end, &si, e->lane, ev->start_ns);
	if (e->act >= 0)
		counter(g, si.rank, ev->start_ns, e->act);
	return 0;
}

static int event_end(pt_export *x, const pt_xev *e)
{
	struct state *s = pt_export_state(x);
	if (e->flow_end) { /* bp:e binds it to the slice open at flow_ts on the row */
		pt_slot_info si;
		pt_export_slot(x, e->slot, &si);
		flow(s->g, "f", e->flow_end, &si, e->lane, e->flow_ts);
	}
	if (e->act >= 0)
		counter(s->g, e->ev->rank, e->ev->end_ns, e->act);
	return 0;
}

static int footer(pt_export *x)
{
	struct state *s = pt_export_state(x);
	yajl_gen g = s->g;
	pt_trace *t = pt_export_trace(x);
	yajl_gen_array_close(g);
	kv_str(g, "displayTimeUnit", "ns");
	key(g, "otherData");
	yajl_gen_map_open(g);
	kv_str(g, "tool", "pipetrace");
	static const char *const keys[] = {"tool_version", "schedule", "backend",  "comm_mode", "ranks",
					   "microbatches", "clock",    "epoch_ns", NULL};
	for (int i = 0; keys[i]; i++) {
		const char *v = pt_trace_meta(t, keys[i]);
		if (v)
			kv_str(g, keys[i], v);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	pt_export_write(x, "\n", 1);
	return 0;
}

static void fini(pt_export *x)
{
	struct state *s = pt_export_state(x);
	if (s->g)
		yajl_gen_free(s->g);
	free(s->nlanes);
	free(s->rank_seen);
}

const pt_format pt_format_chrome_json = {
    .name = "chrome-json",
    .exts = ".json",
    .what = "Chrome trace-event JSON, for chrome://tracing, HTA and other tools",
    .state_size = sizeof(struct state),
    .header = header,
    .event = event,
    .event_end = event_end,
    .footer = footer,
    .fini = fini,
};
