/*
 * exporters/perfetto.c — the Perfetto protobuf format (.pftrace): a Trace of
 * TracePackets written one by one as events stream out of the driver, for
 * ui.perfetto.dev and trace_processor. The fields are those of
 * spec/tracing.md §4; exporters/perfetto_trace.proto is the subset, with
 * Perfetto's field numbers, that tests decode it with. It does not read
 * Perfetto traces.
 *
 * Layout. One process track per rank (pid = rank, named with the ranks
 * table's label, ranks in rank order), one child track per stream in the
 * streams table's order (more rows, "lanes", of the same name where a
 * stream's slices overlap, which the UI merges into one track), and a counter
 * track per rank for in-flight activations. Every child track is its own
 * packet sequence, so its events need no track_uuid (the sequence's
 * TracePacketDefaults give it) and their timestamps are deltas on the
 * sequence's incremental clock (id 64, ClockSnapshot against BOOTTIME, which
 * carries the trace's own ns): two or three bytes instead of eight. The
 * activation counter rides on the slice packets that change it
 * (extra_counter_values, its track in the defaults). Categories (the kind),
 * argument names and activity names (kernels, calls, ranges), which repeat,
 * are interned per sequence; op names ("F0:3", "SEND A0:3 → r2") are unique
 * on their track by construction and are written inline, which is smaller
 * than interning a string used once. The name table is bounded: when full,
 * every sequence clears its incremental state and starts over.
 *
 * Packets leave out SEQ_NEEDS_INCREMENTAL_STATE: that flag only tells a
 * reader which packets to drop after data loss, and a file written whole
 * loses none; trace_processor resolves interned ids and defaults without it
 * (checked in its proto_trace_reader.cc), and its two bytes a packet are
 * 5-15% of a file.
 *
 * The encoder is written by hand rather than with protobuf-c or libprotobuf:
 * those build a message object per packet (allocation and a second pass to
 * size it), where this writes ~20-byte packets straight into one buffer with
 * a one-byte length that grows only for long names; and Debian ships no C
 * encoder generated for Perfetto's protos anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "exporters.h"
#include "libtrace/grow.h"

/* TracePacket and friends: field numbers (spec/tracing.md §4). */
enum {
	F_TRACE_PACKET = 1,
	P_CLOCK_SNAPSHOT = 6,
	P_TIMESTAMP = 8,
	P_SEQ_ID = 10,
	P_TRACK_EVENT = 11,
	P_INTERNED = 12,
	P_SEQ_FLAGS = 13,
	P_DEFAULTS = 59,
	P_TRACK_DESCRIPTOR = 60,
	D_CLOCK_ID = 58,
	D_TRACK_EVENT_DEFAULTS = 11,
	TED_TRACK_UUID = 11,
	TED_EXTRA_COUNTER_UUIDS = 31,
	TD_UUID = 1,
	TD_NAME = 2,
	TD_PROCESS = 3,
	TD_PARENT = 5,
	TD_COUNTER = 8,
	TD_CHILD_ORDERING = 11,
	TD_SIBLING_RANK = 12,
	TD_DESCRIPTION = 14,
	TD_PROCESS_ORDERING = 19,
	PD_PID = 1,
	PD_NAME = 6,
	PD_LABELS = 8,
	CD_UNIT = 3,
	CD_UNIT_NAME = 6,
	TE_CATEGORY_IIDS = 3,
	TE_ANNOTATIONS = 4,
	TE_TYPE = 9,
	TE_NAME_IID = 10,
	TE_EXTRA_COUNTER_VALUES = 12,
	TE_NAME = 23,
	TE_FLOW_IDS = 47,
	TE_TERMINATING_FLOW_IDS = 48,
	DA_NAME_IID = 1,
	DA_UINT = 3,
	DA_INT = 4,
	DA_STRING = 6,
	ID_CATEGORIES = 1,
	ID_NAMES = 2,
	ID_ANNOTATION_NAMES = 3,
	IID_IID = 1,
	IID_NAME = 2,
	CS_CLOCKS = 1,
	CS_PRIMARY = 2,
	CK_ID = 1,
	CK_TIMESTAMP = 2,
	CK_INCREMENTAL = 3,
};

enum { SLICE_BEGIN = 1, SLICE_END = 2 };
enum { SEQ_CLEARED = 1 };
enum { CLOCK_BOOTTIME = 6, CLOCK_REALTIME = 1, CLOCK_SEQ = 64 };
enum { CHILD_EXPLICIT = 3, UNIT_COUNT = 2, PROCESS_ORDERING_EXPLICIT = 1 };
#define NAMES_MAX (1u << 18) /* interned activity names, all sequences */

/* ---------------------------------------------------------- the encoder */

struct pb {
	unsigned char *p;
	size_t n, cap;
	int oom;
};

static int pb_grow(struct pb *b, size_t k);

static inline int pb_room(struct pb *b, size_t k)
{
	if (__builtin_expect(b->n + k <= b->cap, 1))
		return 1;
	return pb_grow(b, k);
}

static int pb_grow(struct pb *b, size_t k)
{
	if (pt_grow(&b->p, &b->cap, b->n + k, 1)) {
		b->oom = 1;
		return 0;
	}
	return 1;
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline void pb_varint(struct pb *b, uint64_t v)
{
	if (!pb_room(b, 10))
		return;
	while (v >= 0x80) {
		b->p[b->n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	b->p[b->n++] = (unsigned char)v;
}

static inline void pb_uint(struct pb *b, unsigned field, uint64_t v)
{
	pb_varint(b, (uint64_t)field << 3);
	pb_varint(b, v);
}

static inline void pb_fixed64(struct pb *b, unsigned field, uint64_t v)
{
	pb_varint(b, (uint64_t)field << 3 | 1);
	if (!pb_room(b, 8))
		return;
	for (int i = 0; i < 8; i++)
		b->p[b->n++] = (unsigned char)(v >> (8 * i));
}

static void pb_bytes(struct pb *b, unsigned field, const void *s, size_t n)
{
	pb_varint(b, (uint64_t)field << 3 | 2);
	pb_varint(b, n);
	if (!pb_room(b, n))
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

static void pb_str(struct pb *b, unsigned field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

/* Open a nested message: its tag and a one-byte length to patch. */
static inline size_t pb_open(struct pb *b, unsigned field)
{
	pb_varint(b, (uint64_t)field << 3 | 2);
	size_t mark = b->n;
	if (pb_room(b, 1))
		b->p[b->n++] = 0;
	return mark;
}

/* Close it: write its length, moving the body when it needs more bytes. */
static inline void pb_close(struct pb *b, size_t mark)
{
	if (b->oom)
		return;
	size_t len = b->n - mark - 1, k = varint_len(len);
	if (k > 1) {
		if (!pb_room(b, k - 1))
			return;
		memmove(b->p + mark + k, b->p + mark + 1, len);
		b->n += k - 1;
	}
	for (size_t i = 0; i < k; i++)
		b->p[mark + i] = (unsigned char)((len >> (7 * i)) & 0x7f) | (i + 1 < k ? 0x80 : 0);
}

/* ------------------------------------------------------------- the state */

struct track {
	uint64_t uuid;
	uint32_t seq;
	int64_t last;	     /* the sequence's clock: last timestamp written */
	uint32_t gen;	     /* the name-table generation its incremental state belongs to */
	uint32_t cats, args; /* categories and argument names interned (bit per iid) */
};

struct rank_tracks {
	uint64_t process, counter; /* uuids; 0 until described */
};

struct state {
	struct pb b;		    /* the packet being built */
	struct track **slot_tracks; /* [slot][lane] */
	int *slot_nlanes;
	int nslots;
	struct rank_tracks *ranks;
	int nranks;
	uint64_t next_uuid;
	uint32_t next_seq;
	int64_t shift; /* added to trace times so none is negative */
	int started;
	uint32_t gen;
	/* interned activity names: (seq, string id) set, bounded */
	uint64_t *names;
	size_t nnames;
};

static void emit_packet(pt_export *x, struct state *s)
{
	if (s->b.oom)
		return;
	size_t need = 1 + varint_len(s->b.n) + s->b.n;
	unsigned char *o = pt_export_reserve(x, need), *q = o;
	*q++ = F_TRACE_PACKET << 3 | 2;
	uint64_t v = s->b.n;
	while (v >= 0x80) {
		*q++ = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	*q++ = (unsigned char)v;
	memcpy(q, s->b.p, s->b.n);
	pt_export_commit(x, need);
	s->b.n = 0;
}

static int header(pt_export *x)
{
	struct state *s = pt_export_state(x);
	s->next_uuid = 1;
	s->next_seq = 1;
	s->gen = 1;
	/* One clock: BOOTTIME carries the trace's ns; REALTIME where the trace
	 * knows its epoch, so the UI can show wall-clock time. */
	int64_t epoch = pt_trace_meta_int(pt_export_trace(x), "epoch_ns", 0);
	size_t cs = pb_open(&s->b, P_CLOCK_SNAPSHOT);
	size_t c = pb_open(&s->b, CS_CLOCKS);
	pb_uint(&s->b, CK_ID, CLOCK_BOOTTIME);
	pb_uint(&s->b, CK_TIMESTAMP, 0);
	pb_close(&s->b, c);
	if (epoch > 0) {
		c = pb_open(&s->b, CS_CLOCKS);
		pb_uint(&s->b, CK_ID, CLOCK_REALTIME);
		pb_uint(&s->b, CK_TIMESTAMP, (uint64_t)epoch);
		pb_close(&s->b, c);
	}
	pb_uint(&s->b, CS_PRIMARY, CLOCK_BOOTTIME);
	pb_close(&s->b, cs);
	emit_packet(x, s);
	/* The root track: show ranks in rank order. */
	size_t td = pb_open(&s->b, P_TRACK_DESCRIPTOR);
	pb_uint(&s->b, TD_UUID, 0);
	pb_uint(&s->b, TD_PROCESS_ORDERING, PROCESS_ORDERING_EXPLICIT);
	pb_close(&s->b, td);
	emit_packet(x, s);
	return s->b.oom ? PT_ENOMEM : 0;
}

/* Describe the rank's process track and its counter track. */
static void describe_rank(pt_export *x, struct state *s, const pt_slot_info *si, struct rank_tracks *r)
{
	r->process = s->next_uuid++;
	size_t td = pb_open(&s->b, P_TRACK_DESCRIPTOR);
	pb_uint(&s->b, TD_UUID, r->process);
	size_t pd = pb_open(&s->b, TD_PROCESS);
	pb_uint(&s->b, PD_PID, (uint64_t)(uint32_t)si->rank);
	pb_str(&s->b, PD_NAME, si->label);
	pb_close(&s->b, pd);
	pb_uint(&s->b, TD_CHILD_ORDERING, CHILD_EXPLICIT);
	pb_uint(&s->b, TD_SIBLING_RANK, (uint64_t)(uint32_t)(si->rank + 1));
	pb_close(&s->b, td);
	emit_packet(x, s);
	if (!pt_export_has_counter(x))
		return;
	r->counter = s->next_uuid++;
	td = pb_open(&s->b, P_TRACK_DESCRIPTOR);
	pb_uint(&s->b, TD_UUID, r->counter);
	pb_uint(&s->b, TD_PARENT, r->process);
	pb_str(&s->b, TD_NAME, "in-flight activations");
	pb_str(&s->b, TD_DESCRIPTION, "chunk activations held: +1 at a forward's start, -1 at its backward's end");
	size_t cd = pb_open(&s->b, TD_COUNTER);
	pb_uint(&s->b, CD_UNIT, UNIT_COUNT);
	pb_str(&s->b, CD_UNIT_NAME, "activations");
	pb_close(&s->b, cd);
	pb_uint(&s->b, TD_SIBLING_RANK, 1u << 20);
	pb_close(&s->b, td);
	emit_packet(x, s);
}

/* Start (or restart) a track's sequence: clear its incremental state, set
 * its defaults and its clock at ts. */
static void start_sequence(pt_export *x, struct state *s, struct track *t, uint64_t counter, int64_t ts)
{
	pb_uint(&s->b, P_SEQ_ID, t->seq);
	pb_uint(&s->b, P_SEQ_FLAGS, SEQ_CLEARED);
	size_t d = pb_open(&s->b, P_DEFAULTS);
	pb_uint(&s->b, D_CLOCK_ID, CLOCK_SEQ);
	size_t ted = pb_open(&s->b, D_TRACK_EVENT_DEFAULTS);
	pb_uint(&s->b, TED_TRACK_UUID, t->uuid);
	if (counter)
		pb_uint(&s->b, TED_EXTRA_COUNTER_UUIDS, counter);
	pb_close(&s->b, ted);
	pb_close(&s->b, d);
	size_t cs = pb_open(&s->b, P_CLOCK_SNAPSHOT);
	size_t c = pb_open(&s->b, CS_CLOCKS);
	pb_uint(&s->b, CK_ID, CLOCK_SEQ);
	pb_uint(&s->b, CK_TIMESTAMP, (uint64_t)ts);
	pb_uint(&s->b, CK_INCREMENTAL, 1);
	pb_close(&s->b, c);
	c = pb_open(&s->b, CS_CLOCKS);
	pb_uint(&s->b, CK_ID, CLOCK_BOOTTIME);
	pb_uint(&s->b, CK_TIMESTAMP, (uint64_t)ts);
	pb_close(&s->b, c);
	pb_close(&s->b, cs);
	emit_packet(x, s);
	t->last = ts;
	t->gen = s->gen;
	t->cats = t->args = 0;
}

/* The track of (slot, lane), described (and its sequence started) on first use. */
static struct track *track_of(pt_export *x, struct state *s, int slot, int lane, int64_t ts)
{
	if (slot >= s->nslots) {
		int n = s->nslots ? s->nslots : 16;
		while (n <= slot)
			n *= 2;
		struct track **st = realloc(s->slot_tracks, (size_t)n * sizeof *st);
		int *nl = realloc(s->slot_nlanes, (size_t)n * sizeof *nl);
		if (st)
			s->slot_tracks = st;
		if (nl)
			s->slot_nlanes = nl;
		if (!st || !nl)
			return NULL;
		memset(st + s->nslots, 0, (size_t)(n - s->nslots) * sizeof *st);
		memset(nl + s->nslots, 0, (size_t)(n - s->nslots) * sizeof *nl);
		s->nslots = n;
	}
	pt_slot_info si;
	pt_export_slot(x, slot, &si);
	if (si.rank_idx >= s->nranks) {
		int n = s->nranks ? s->nranks * 2 : 16;
		while (n <= si.rank_idx)
			n *= 2;
		struct rank_tracks *r = realloc(s->ranks, (size_t)n * sizeof *r);
		if (!r)
			return NULL;
		memset(r + s->nranks, 0, (size_t)(n - s->nranks) * sizeof *r);
		s->ranks = r;
		s->nranks = n;
	}
	struct rank_tracks *r = &s->ranks[si.rank_idx];
	if (lane < s->slot_nlanes[slot]) {
		struct track *t = &s->slot_tracks[slot][lane];
		if (t->gen != s->gen)
			start_sequence(x, s, t, r->counter, ts);
		return t;
	}
	struct track *lanes = realloc(s->slot_tracks[slot], (size_t)(lane + 1) * sizeof *lanes);
	if (!lanes)
		return NULL;
	s->slot_tracks[slot] = lanes;
	if (!r->process)
		describe_rank(x, s, &si, r);
	for (int i = s->slot_nlanes[slot]; i <= lane; i++) {
		struct track *t = &lanes[i];
		memset(t, 0, sizeof *t);
		t->uuid = s->next_uuid++;
		t->seq = s->next_seq++;
		size_t td = pb_open(&s->b, P_TRACK_DESCRIPTOR);
		pb_uint(&s->b, TD_UUID, t->uuid);
		pb_uint(&s->b, TD_PARENT, r->process);
		pb_str(&s->b, TD_NAME, si.name); /* lanes share it: the UI shows one track */
		pb_uint(&s->b, TD_SIBLING_RANK, (uint64_t)si.order * 256 + (uint64_t)(i < 255 ? i : 255));
		pb_close(&s->b, td);
		emit_packet(x, s);
		start_sequence(x, s, t, r->counter, ts);
	}
	s->slot_nlanes[slot] = lane + 1;
	return &lanes[lane];
}

/* Interned-name set: is (seq, id) defined? Adds it when not. Returns 1 when
 * it was already there. When the table is full, a new generation starts:
 * every sequence clears its state before its next packet. */
static int name_seen(struct state *s, uint32_t seq, uint32_t id)
{
	if (!s->names) {
		s->names = calloc(2 * NAMES_MAX, sizeof *s->names);
		if (!s->names)
			return 0;
	}
	uint64_t key = (uint64_t)seq << 32 | id, mask = 2 * NAMES_MAX - 1;
	uint64_t h = key * 0x9e3779b97f4a7c15ULL;
	for (uint64_t i = (h >> 40) & mask;; i = (i + 1) & mask) {
		if (s->names[i] == key + 1)
			return 1;
		if (!s->names[i]) {
			s->names[i] = key + 1;
			s->nnames++;
			return 0;
		}
	}
}

static void bump_generation(struct state *s)
{
	s->gen++;
	memset(s->names, 0, 2 * NAMES_MAX * sizeof *s->names);
	s->nnames = 0;
}

/* The packet's head: its timestamp (a delta on the sequence's clock) and sequence. */
static void packet_head(struct state *s, struct track *t, int64_t ts)
{
	pb_uint(&s->b, P_TIMESTAMP, (uint64_t)(ts - t->last));
	t->last = ts;
	pb_uint(&s->b, P_SEQ_ID, t->seq);
}

static void intern(struct pb *b, unsigned field, uint64_t iid, const char *name, size_t len)
{
	size_t m = pb_open(b, field);
	pb_uint(b, IID_IID, iid);
	pb_bytes(b, IID_NAME, name, len);
	pb_close(b, m);
}

static int event(pt_export *x, const pt_xev *e)
{
	struct state *s = pt_export_state(x);
	const pt_event *ev = e->ev;
	if (!s->started) {
		s->started = 1;
		s->shift = ev->start_ns < 0 ? -ev->start_ns : 0;
	}
	int64_t ts = ev->start_ns + s->shift;
	int activity = pt_kind_is_activity(e->kind);
	if (activity && ev->name && s->nnames >= NAMES_MAX / 2)
		bump_generation(s);
	struct track *t = track_of(x, s, e->slot, e->lane, ts);
	if (!t)
		return PT_ENOMEM;

	/* What this packet must intern first, then the event itself. */
	unsigned kind = (unsigned)e->kind & 31;
	pt_arg args[PT_ARG_MAX];
	const pt_export_opts *o = pt_export_options(x);
	int nargs = o->no_args ? 0 : pt_export_args(x, ev, !o->all_args, args);
	uint32_t new_args = 0;
	for (int i = 0; i < nargs; i++)
		if (!(t->args & 1u << args[i].id))
			new_args |= 1u << args[i].id;
	int new_cat = !(t->cats & 1u << kind);
	int new_name = activity && ev->name && !name_seen(s, t->seq, ev->name);

	packet_head(s, t, ts);
	if (new_args || new_cat || new_name) {
		size_t id = pb_open(&s->b, P_INTERNED);
		if (new_cat)
			intern(&s->b, ID_CATEGORIES, kind, e->cat, strlen(e->cat));
		if (new_name)
			intern(&s->b, ID_NAMES, ev->name, e->name, e->name_len);
		for (int i = 0; i < nargs; i++)
			if (new_args & 1u << args[i].id)
				intern(&s->b, ID_ANNOTATION_NAMES, (uint64_t)args[i].id, args[i].key,
				       strlen(args[i].key));
		pb_close(&s->b, id);
		t->cats |= 1u << kind;
		t->args |= new_args;
	}
	size_t te = pb_open(&s->b, P_TRACK_EVENT);
	pb_uint(&s->b, TE_TYPE, SLICE_BEGIN);
	pb_uint(&s->b, TE_CATEGORY_IIDS, kind);
	if (activity && ev->name)
		pb_uint(&s->b, TE_NAME_IID, ev->name);
	else
		pb_bytes(&s->b, TE_NAME, e->name, e->name_len);
	for (int i = 0; i < nargs; i++) {
		size_t da = pb_open(&s->b, TE_ANNOTATIONS);
		pb_uint(&s->b, DA_NAME_IID, (uint64_t)args[i].id);
		if (args[i].str)
			pb_str(&s->b, DA_STRING, args[i].str);
		else if (args[i].val >= 0)
			pb_uint(&s->b, DA_UINT, (uint64_t)args[i].val);
		else
			pb_uint(&s->b, DA_INT, (uint64_t)args[i].val);
		pb_close(&s->b, da);
	}
	for (int i = 0; i < 2; i++)
		if (e->flow_begin[i])
			pb_fixed64(&s->b, TE_FLOW_IDS, e->flow_begin[i]);
	if (e->flow_step)
		pb_fixed64(&s->b, TE_FLOW_IDS, e->flow_step);
	if (e->flow_end)
		pb_fixed64(&s->b, TE_TERMINATING_FLOW_IDS, e->flow_end);
	if (e->act >= 0)
		pb_uint(&s->b, TE_EXTRA_COUNTER_VALUES, (uint64_t)e->act);
	pb_close(&s->b, te);
	emit_packet(x, s);
	return s->b.oom ? PT_ENOMEM : 0;
}

static int event_end(pt_export *x, const pt_xev *e)
{
	struct state *s = pt_export_state(x);
	struct track *t = &s->slot_tracks[e->slot][e->lane];
	packet_head(s, t, e->ev->end_ns + s->shift);
	size_t te = pb_open(&s->b, P_TRACK_EVENT);
	pb_uint(&s->b, TE_TYPE, SLICE_END);
	if (e->flow_end) /* trace processor ends it on the slice that ends here */
		pb_fixed64(&s->b, TE_TERMINATING_FLOW_IDS, e->flow_end);
	if (e->act >= 0)
		pb_uint(&s->b, TE_EXTRA_COUNTER_VALUES, (uint64_t)e->act);
	pb_close(&s->b, te);
	emit_packet(x, s);
	return s->b.oom ? PT_ENOMEM : 0;
}

static void fini(pt_export *x)
{
	struct state *s = pt_export_state(x);
	for (int i = 0; i < s->nslots; i++)
		free(s->slot_tracks[i]);
	free(s->slot_tracks);
	free(s->slot_nlanes);
	free(s->ranks);
	free(s->names);
	free(s->b.p);
}

const pt_format pt_format_perfetto = {
    .name = "perfetto",
    .exts = ".pftrace .perfetto-trace",
    .what = "Perfetto protobuf, for ui.perfetto.dev and trace_processor (the compact one)",
    .state_size = sizeof(struct state),
    .header = header,
    .event = event,
    .event_end = event_end,
    .fini = fini,
};
