/*
 * importers/kineto.c — the PyTorch-profiler (Kineto) / Chrome-trace JSON
 * reader. yajl's SAX-style parser walks the file (plain or gzip, read through
 * zlib) in 1 MiB pieces and this file keeps only the event being read, so a
 * multi-gigabyte trace imports in memory bounded by its longest string. Each
 * complete ("X") event becomes a kernel, copy, memset, synchronisation,
 * runtime call or range for the sink, by its category (kernel, gpu_memcpy,
 * gpu_memset, cuda_sync, cuda_runtime / cuda_driver, gpu_user_annotation,
 * anything else on a CPU thread: cpu_op, user_annotation, python_function);
 * thread names come from "M" events; flows ("s"/"f", ac2g) are not kept
 * because the events carry their CUDA correlation ids, which tie kernels to
 * launches. Timestamps are read from their decimal text (µs with up to three
 * decimals), never through a double, so nanoseconds stay exact. The file's
 * rank, epoch and GPU names come from distributedInfo, baseTimeNanoseconds and
 * deviceProperties. What events mean for the pipeline is the sink's business.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yajl/yajl_parse.h>
#include <zlib.h>

#include "import.h"
#include "libtrace/grow.h"

#define CHUNK (1 << 20)

/* Keys the reader acts on, by where they appear. */
enum key {
	K_NONE,
	/* top level */
	K_EVENTS,
	K_DIST,
	K_BASE,
	K_DEVPROPS,
	/* distributedInfo */
	K_RANK,
	/* deviceProperties[i] */
	K_DEV_ID,
	K_DEV_NAME,
	/* an event */
	K_PH,
	K_CAT,
	K_NAME,
	K_PID,
	K_TID,
	K_TS,
	K_DUR,
	K_ARGS,
	/* its args */
	K_A_EXT,
	K_A_CORR,
	K_A_STREAM,
	K_A_DEVICE,
	K_A_BYTES,
	K_A_NAME,
};

/* A growable string. */
struct str {
	char *s;
	size_t n, cap;
};

/* The event being read. */
struct event {
	char ph;
	int has_pid, has_tid, has_ts;
	int64_t pid, tid, ts, dur;
	int64_t ext, corr, stream, device, bytes;
	int has_stream, has_device;
	struct str name, cat, arg_name;
};

struct kp {
	imp *im;
	const char *path;
	int index;
	int err;	  /* a failure inside a callback */
	int depth;	  /* containers open around the current token */
	int top;	  /* 1: the document is a map; 2: an array of events */
	int events_depth; /* depth of event maps, 0 until traceEvents opens */
	int saw_events;	  /* a traceEvents array was found */
	int in_event, args_depth, dist_depth, devs_depth, dev_depth;
	enum key key;
	int key_depth;
	int64_t base_ns;
	int have_base;
	int64_t dist_rank;
	int have_dist;
	int rank, announced;
	int64_t dev_id;
	struct str dev_name;
	struct {
		int id;
		char *name;
	} devs[16]; /* deviceProperties, until the rank is known */
	int ndevs;
	struct event e;
	int64_t nevents;
};

static int str_set(struct str *d, const unsigned char *s, size_t n)
{
	if (pt_grow(&d->s, &d->cap, n + 1, 1))
		return -1;
	memcpy(d->s, s, n);
	d->s[n] = '\0';
	d->n = n;
	return 0;
}

/* An integer's text; 0 when it is one, -1 otherwise (a fraction is cut). */
static int parse_i64(const char *s, size_t n, int64_t *out)
{
	size_t i = 0;
	int neg = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i == n || !isdigit((unsigned char)s[i]))
		return -1;
	int64_t v = 0;
	for (; i < n && isdigit((unsigned char)s[i]); i++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (i < n && s[i] != '.' && s[i] != 'e' && s[i] != 'E')
		return -1;
	*out = neg ? -v : v;
	return 0;
}

int imp_us_to_ns(const char *s, size_t n, int64_t *ns)
{
	size_t i = 0;
	int neg = 0;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	int64_t whole = 0, frac = 0;
	int digits = 0, fdigits = 0, round_up = 0;
	for (; i < n && isdigit((unsigned char)s[i]); i++, digits++) {
		if (whole > (INT64_MAX / 1000 - 9) / 10)
			goto fallback;
		whole = whole * 10 + (s[i] - '0');
	}
	if (i < n && s[i] == '.') {
		for (i++; i < n && isdigit((unsigned char)s[i]); i++, fdigits++) {
			if (fdigits < 3)
				frac = frac * 10 + (s[i] - '0');
			else if (fdigits == 3)
				round_up = s[i] >= '5';
		}
	}
	if (i < n)
		goto fallback; /* an exponent */
	if (!digits && !fdigits)
		return -1;
	for (int k = fdigits; k < 3; k++)
		frac *= 10;
	*ns = whole * 1000 + frac + round_up;
	if (neg)
		*ns = -*ns;
	return 0;
fallback:;
	char buf[64];
	if (n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *end;
	errno = 0;
	long double v = strtold(buf, &end);
	if (*end || errno || !isfinite(v) || fabsl(v) > 9.2e15L)
		return -1;
	*ns = llroundl(v * 1000);
	return 0;
}

/* A pid / tid written as a string: its first number ("stream 7" -> 7). */
static int num_in(const unsigned char *s, size_t n, int64_t *out)
{
	size_t i = 0;
	while (i < n && !isdigit(s[i]))
		i++;
	if (i == n)
		return -1;
	size_t j = i;
	while (j < n && isdigit(s[j]))
		j++;
	return parse_i64((const char *)s + i, j - i, out);
}

static int bad(struct kp *k, int err)
{
	k->err = err;
	return 0; /* cancels the parse */
}

/* The first event tells the file's rank. */
static int announce(struct kp *k)
{
	if (k->announced)
		return 0;
	k->announced = 1;
	int guessed = !k->have_dist;
	if (k->have_dist && (k->dist_rank < 0 || k->dist_rank > 1000000))
		return pt_logerr(PT_EINVAL, "%s: distributedInfo.rank %lld is not a rank", k->path,
				 (long long)k->dist_rank);
	k->rank = guessed ? k->index : (int)k->dist_rank;
	int err = imp_rank(k->im, k->rank, k->path, guessed);
	for (int i = 0; i < k->ndevs && !err; i++)
		err = imp_device_name(k->im, k->rank, k->devs[i].id, k->devs[i].name);
	return err;
}

static int copy_kind(const char *name)
{
	static const struct {
		const char *s;
		int kind;
	} kinds[] = {{"HtoD", 1}, {"DtoH", 2}, {"HtoA", 3}, {"AtoH", 4}, {"AtoA", 5},
		     {"AtoD", 6}, {"DtoA", 7}, {"DtoD", 8}, {"HtoH", 9}, {"PtoP", 10}};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strstr(name, kinds[i].s))
			return kinds[i].kind;
	return 0;
}

static int sync_type(const char *name)
{
	if (strstr(name, "Wait"))
		return 2;
	if (strstr(name, "Event"))
		return 1;
	if (strstr(name, "Stream"))
		return 3;
	if (strstr(name, "Context") || strstr(name, "Device"))
		return 4;
	return 0;
}

/* One complete event ("X") to the sink. */
static int complete(struct kp *k)
{
	struct event *e = &k->e;
	if (!e->has_pid || !e->has_tid)
		return imp_skip(k->im, "without a numeric pid/tid"), 0;
	if (!e->has_ts)
		return imp_skip(k->im, "without a timestamp"), 0;
	const char *cat = e->cat.s ? e->cat.s : "";
	int kind = PT_OP_RANGE, gpu = 0;
	if (!strcasecmp(cat, "kernel"))
		kind = PT_OP_KERNEL, gpu = 1;
	else if (!strcasecmp(cat, "gpu_memcpy") || !strcasecmp(cat, "memcpy"))
		kind = PT_OP_MEMCPY, gpu = 1;
	else if (!strcasecmp(cat, "gpu_memset") || !strcasecmp(cat, "memset"))
		kind = PT_OP_MEMSET, gpu = 1;
	else if (!strcasecmp(cat, "cuda_sync"))
		kind = PT_OP_SYNC, gpu = 1;
	else if (!strcasecmp(cat, "cuda_runtime") || !strcasecmp(cat, "cuda_driver") || !strcasecmp(cat, "runtime"))
		kind = PT_OP_RUNTIME;
	else if (!strcasecmp(cat, "gpu_user_annotation"))
		gpu = 1;
	pt_event ev;
	memset(&ev, 0, sizeof ev);
	ev.rank = k->rank;
	ev.step = -1;
	ev.op = pt_op_make(kind, -1, -1);
	int64_t base = k->have_base ? k->base_ns : 0;
	ev.start_ns = ev.posted_ns = base + e->ts;
	ev.end_ns = ev.start_ns + (e->dur > 0 ? e->dur : 0);
	ev.corr = e->corr > 0 ? e->corr : 0;
	ev.ext = e->ext > 0 ? e->ext : 0;
	if (gpu) {
		ev.device = (int32_t)(e->has_device ? e->device : e->pid);
		ev.stream = (uint32_t)(e->has_stream ? e->stream : e->tid);
	} else {
		ev.device = -1;
		ev.stream = (uint32_t)e->tid;
	}
	const char *name = e->name.s ? e->name.s : "";
	switch (kind) {
	case PT_OP_MEMCPY:
		ev.op.bytes = e->bytes;
		ev.op.payload = (uint8_t)copy_kind(name);
		break;
	case PT_OP_MEMSET: ev.op.bytes = e->bytes; break;
	case PT_OP_SYNC: ev.op.payload = (uint8_t)sync_type(name); break;
	}
	k->nevents++;
	return imp_emit(k->im, &ev, name, kind == PT_OP_RANGE && *cat ? cat : NULL);
}

static int end_event(struct kp *k)
{
	struct event *e = &k->e;
	int err = 0;
	switch (e->ph) {
	case 'X': err = complete(k); break;
	case 'M':
		if (e->name.s && !strcmp(e->name.s, "thread_name") && e->arg_name.s && e->has_tid)
			err = imp_thread_name(k->im, k->rank, (uint32_t)e->tid, e->arg_name.s);
		else
			imp_skip(k->im, "metadata");
		break;
	case 's':
	case 't':
	case 'f': imp_skip(k->im, "flow (kept as correlation ids)"); break;
	case 'i':
	case 'I':
	case 'R': imp_skip(k->im, "instant"); break;
	case 'C': imp_skip(k->im, "counter"); break;
	case 'B':
	case 'E': imp_skip(k->im, "begin/end (B/E)"); break;
	case 'b':
	case 'e':
	case 'n': imp_skip(k->im, "async"); break;
	default: imp_skip(k->im, "of unknown phase"); break;
	}
	return err;
}

/* -------------------------------------------------------- yajl callbacks */

static int on_start_map(void *ctx)
{
	struct kp *k = ctx;
	k->depth++;
	if (k->depth == 1) {
		k->top = 1;
	} else if (k->events_depth && k->depth == k->events_depth && !k->in_event) {
		struct event *e = &k->e;
		struct str n = e->name, c = e->cat, a = e->arg_name;
		memset(e, 0, sizeof *e);
		n.n = c.n = a.n = 0;
		e->name = n;
		e->cat = c;
		e->arg_name = a;
		if (e->name.s)
			e->name.s[0] = '\0';
		if (e->cat.s)
			e->cat.s[0] = '\0';
		if (e->arg_name.s)
			e->arg_name.s[0] = '\0';
		k->in_event = 1;
		if (!k->announced && (k->err = announce(k)))
			return 0;
	} else if (k->in_event && k->key == K_ARGS && k->depth == k->events_depth + 1) {
		k->args_depth = k->depth;
	} else if (k->depth == 2 && k->key == K_DIST && k->key_depth == 1) {
		k->dist_depth = 2;
	} else if (k->devs_depth && k->depth == k->devs_depth + 1) {
		k->dev_depth = k->depth;
		k->dev_id = -1;
		k->dev_name.n = 0;
	}
	k->key = K_NONE;
	return 1;
}

static int on_end_map(void *ctx)
{
	struct kp *k = ctx;
	if (k->in_event && k->depth == k->events_depth) {
		k->in_event = 0;
		int err = end_event(k);
		if (err)
			return bad(k, err);
	} else if (k->depth == k->args_depth) {
		k->args_depth = 0;
	} else if (k->depth == k->dist_depth) {
		k->dist_depth = 0;
	} else if (k->depth == k->dev_depth) {
		k->dev_depth = 0;
		if (k->dev_id >= 0 && k->dev_id < 65536 && k->dev_name.n) {
			if (k->announced)
				k->err = imp_device_name(k->im, k->rank, (int)k->dev_id, k->dev_name.s);
			else if (k->ndevs < (int)(sizeof k->devs / sizeof k->devs[0])) {
				k->devs[k->ndevs].id = (int)k->dev_id;
				if (!(k->devs[k->ndevs++].name = strdup(k->dev_name.s)))
					k->err = PT_ENOMEM;
			}
		}
		if (k->err)
			return 0;
	}
	k->depth--;
	k->key = K_NONE;
	return 1;
}

static int on_start_array(void *ctx)
{
	struct kp *k = ctx;
	k->depth++;
	if (k->depth == 1) { /* the JSON Array Format: the document is the event list */
		k->top = 2;
		k->events_depth = 2;
		k->saw_events = 1;
	} else if (k->depth == 2 && k->key_depth == 1 && k->key == K_EVENTS) {
		k->events_depth = 3;
		k->saw_events = 1;
	} else if (k->depth == 2 && k->key_depth == 1 && k->key == K_DEVPROPS) {
		k->devs_depth = 2;
	}
	k->key = K_NONE;
	return 1;
}

static int on_end_array(void *ctx)
{
	struct kp *k = ctx;
	if (k->events_depth && k->depth == k->events_depth - 1)
		k->events_depth = 0;
	else if (k->depth == k->devs_depth)
		k->devs_depth = 0;
	k->depth--;
	k->key = K_NONE;
	return 1;
}

#define IS(lit) (n == sizeof(lit) - 1 && !memcmp(s, lit, n))

static int on_key(void *ctx, const unsigned char *s, size_t n)
{
	struct kp *k = ctx;
	enum key key = K_NONE;
	if (k->in_event && k->depth == k->events_depth) {
		if (n <= 4) {
			key = IS("ph")	   ? K_PH
			      : IS("cat")  ? K_CAT
			      : IS("name") ? K_NAME
			      : IS("pid")  ? K_PID
			      : IS("tid")  ? K_TID
			      : IS("ts")   ? K_TS
			      : IS("dur")  ? K_DUR
			      : IS("args") ? K_ARGS
					   : K_NONE;
		}
	} else if (k->args_depth && k->depth == k->args_depth) {
		key = IS("External id")	  ? K_A_EXT
		      : IS("correlation") ? K_A_CORR
		      : IS("stream")	  ? K_A_STREAM
		      : IS("device")	  ? K_A_DEVICE
		      : IS("bytes")	  ? K_A_BYTES
		      : IS("name")	  ? K_A_NAME
					  : K_NONE;
	} else if (k->depth == 1 && k->top == 1) {
		key = IS("traceEvents")		  ? K_EVENTS
		      : IS("distributedInfo")	  ? K_DIST
		      : IS("baseTimeNanoseconds") ? K_BASE
		      : IS("deviceProperties")	  ? K_DEVPROPS
						  : K_NONE;
	} else if (k->dist_depth && k->depth == k->dist_depth) {
		key = IS("rank") ? K_RANK : K_NONE;
	} else if (k->dev_depth && k->depth == k->dev_depth) {
		key = IS("id") ? K_DEV_ID : IS("name") ? K_DEV_NAME : K_NONE;
	}
	k->key = key;
	k->key_depth = k->depth;
	return 1;
}

static int on_number(void *ctx, const char *s, size_t n)
{
	struct kp *k = ctx;
	if (k->key == K_NONE || k->key_depth != k->depth)
		return 1;
	struct event *e = &k->e;
	int64_t v = 0;
	int ok = parse_i64(s, n, &v) == 0;
	switch (k->key) {
	case K_BASE:
		if (!ok)
			break;
		if (!k->announced) {
			k->base_ns = v;
			k->have_base = 1;
		} else if (v) {
			pt_log(PT_LOG_WARN,
			       "%s: baseTimeNanoseconds comes after the events, whose times were taken as absolute",
			       k->path);
		}
		break;
	case K_RANK:
		if (!ok)
			break;
		if (k->announced && v != k->rank)
			pt_log(PT_LOG_WARN, "%s: distributedInfo.rank %lld comes after the events, imported as rank %d",
			       k->path, (long long)v, k->rank);
		k->dist_rank = v;
		k->have_dist = 1;
		break;
	case K_DEV_ID: k->dev_id = ok ? v : -1; break;
	case K_TS:
		if (imp_us_to_ns(s, n, &e->ts) == 0)
			e->has_ts = 1;
		break;
	case K_DUR:
		if (imp_us_to_ns(s, n, &e->dur) != 0)
			e->dur = 0;
		break;
	case K_PID: e->pid = v, e->has_pid = ok; break;
	case K_TID: e->tid = v, e->has_tid = ok; break;
	case K_A_EXT: e->ext = ok ? v : 0; break;
	case K_A_CORR: e->corr = ok ? v : 0; break;
	case K_A_STREAM: e->stream = v, e->has_stream = ok && v >= 0; break;
	case K_A_DEVICE: e->device = v, e->has_device = ok && v >= 0; break;
	case K_A_BYTES: e->bytes = ok ? v : 0; break;
	default: break;
	}
	k->key = K_NONE;
	return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	struct kp *k = ctx;
	if (k->key == K_NONE || k->key_depth != k->depth)
		return 1;
	struct event *e = &k->e;
	int fail = 0;
	switch (k->key) {
	case K_PH: e->ph = n ? (char)s[0] : 0; break;
	case K_CAT: fail = str_set(&e->cat, s, n); break;
	case K_NAME: fail = str_set(&e->name, s, n); break;
	case K_A_NAME: fail = str_set(&e->arg_name, s, n); break;
	case K_DEV_NAME: fail = str_set(&k->dev_name, s, n); break;
	case K_PID: e->has_pid = num_in(s, n, &e->pid) == 0; break;
	case K_TID: e->has_tid = num_in(s, n, &e->tid) == 0; break;
	case K_TS: e->has_ts = imp_us_to_ns((const char *)s, n, &e->ts) == 0; break;
	default: break;
	}
	k->key = K_NONE;
	return fail ? bad(k, PT_ENOMEM) : 1;
}

static int on_scalar(void *ctx)
{
	((struct kp *)ctx)->key = K_NONE;
	return 1;
}
static int on_bool(void *ctx, int b)
{
	(void)b;
	return on_scalar(ctx);
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_scalar,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

/* ------------------------------------------------------------- the file */

/* yajl's message for a parse failure, its byte offset in the JSON text. */
static int json_error(struct kp *k, yajl_handle h, uint64_t before, int at_end)
{
	unsigned char *msg = yajl_get_error(h, 0, NULL, 0);
	uint64_t at = before + (at_end ? 0 : yajl_get_bytes_consumed(h));
	char m[256];
	snprintf(m, sizeof m, "%s", msg ? (const char *)msg : "parse error");
	for (size_t n = strlen(m); n && isspace((unsigned char)m[n - 1]);)
		m[--n] = '\0';
	int err;
	if (at_end && !at)
		err = pt_logerr(PT_EINVAL, "%s: empty file, not a trace", k->path);
	else if (at_end)
		err = pt_logerr(PT_EINVAL,
				"%s: truncated JSON: the text ends at byte %llu before the trace is complete (%s)",
				k->path, (unsigned long long)at, m);
	else
		err = pt_logerr(PT_EINVAL, "%s: invalid JSON at byte %llu: %s", k->path, (unsigned long long)at, m);
	if (msg)
		yajl_free_error(h, msg);
	return err;
}

int imp_kineto_file(imp *im, const char *path, int index)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return pt_logerr(errno == ENOENT ? PT_ENOENT : PT_EIO, "%s: %s", path,
				 errno == ENOENT ? "no such file" : strerror(errno));
	gzFile f = gzopen(path, "rb");
	if (!f)
		return pt_logerr(PT_EIO, "%s: cannot open: %s", path, strerror(errno ? errno : ENOMEM));
	gzbuffer(f, 1 << 17);
	struct kp k;
	memset(&k, 0, sizeof k);
	k.im = im;
	k.path = path;
	k.index = index;
	k.rank = index;
	char *buf = malloc(CHUNK);
	yajl_handle h = yajl_alloc(&callbacks, NULL, &k);
	int err = 0;
	if (!buf || !h) {
		err = PT_ENOMEM;
		goto out;
	}
	yajl_config(h, yajl_dont_validate_strings, 1);
	uint64_t done = 0;
	for (;;) {
		int n = gzread(f, buf, CHUNK);
		if (n < 0) {
			int zerr;
			const char *m = gzerror(f, &zerr);
			err = pt_logerr(PT_EINVAL, "%s: cannot decompress after byte %llu: %s", path,
					(unsigned long long)done, m);
			goto out;
		}
		if (n == 0)
			break;
		yajl_status s = yajl_parse(h, (const unsigned char *)buf, (size_t)n);
		if (s != yajl_status_ok) {
			err = k.err ? k.err : json_error(&k, h, done, 0);
			goto out;
		}
		done += (uint64_t)n;
		imp_progress(im, (uint64_t)gzoffset(f), (uint64_t)st.st_size);
	}
	int direct = gzdirect(f), zc = gzclose_r(f);
	f = NULL;
	if (!direct && zc == Z_BUF_ERROR) {
		err = pt_logerr(PT_EINVAL, "%s: truncated gzip file (the compressed stream ends early)", path);
		goto out;
	}
	yajl_status s = yajl_complete_parse(h);
	if (s != yajl_status_ok) {
		err = k.err ? k.err : json_error(&k, h, done, 1);
		goto out;
	}
	if (!k.top)
		err = pt_logerr(PT_EINVAL,
				"%s: not a trace: the JSON is a single value, not an object with traceEvents", path);
	else if (!k.saw_events)
		err = pt_logerr(PT_EINVAL,
				"%s: not a trace: the JSON object has no traceEvents array (is it a PyTorch profiler / "
				"Chrome trace?)",
				path);
	else if (!k.announced)
		err = announce(&k); /* an empty trace still names its rank */
out:
	if (f)
		gzclose(f);
	if (h)
		yajl_free(h);
	free(buf);
	free(k.e.name.s);
	free(k.e.cat.s);
	free(k.e.arg_name.s);
	free(k.dev_name.s);
	for (int i = 0; i < k.ndevs; i++)
		free(k.devs[i].name);
	return err;
}
