/*
 * runner/replay.c — the sim's walk (sim.c) over a plan too large to hold:
 * each rank's ops are read from the trace a window at a time as the walk
 * reaches them, each message lives only from the first of its two sides
 * being posted until both are done with it, and of the times only the totals
 * a prediction needs are kept (the earliest start, the latest end, each
 * rank's compute time). So memory follows the ranks and the messages in
 * flight, not the plan's length: a 512-rank plan of 1.5 million ops costs a
 * few MB where sim.c's arrays cost 100. The rules are sim.c's exactly (not
 * its strict mode), and so are the times: the walk visits ranks in another
 * order, which the result does not depend on. It does not record events
 * (sim.c does, for `run`) and does not check plans (validate.c does); it
 * only refuses messages that do not pair up, which would otherwise pass
 * unseen here.
 */
#include <stdlib.h>
#include <string.h>

#include "link.h"
#include "runner.h"

/* One message: its two sides, by (sender, receiver, seq), and its times. */
struct msg {
	int32_t a, b, seq;
	int32_t next;	 /* hash chain, or the free list */
	int64_t sposted; /* the SEND's posting, -1 before */
	int64_t rposted; /* the RECV's */
	int64_t start, end;
	int64_t bytes;
	int32_t mb;
	int16_t chunk; /* the side posted first: its chunk (for the stage check) */
	uint8_t payload;
	uint8_t refs;  /* sides still to be done with it */
	uint8_t first; /* the kind of the side posted first */
};

/* A receive open for the next compute op that consumes its payload, chunk
 * and microbatch (pt_inputs' rule, with its order of taking). */
struct open_recv {
	uint64_t key;
	int32_t msg;
};

struct rk {
	pt_op *op;    /* ops [base, base + nbuf) */
	int32_t *msg; /* [same]: a message's entry, once posted */
	size_t base, nbuf, cap;
	int64_t next_step; /* the trace's step to read next */
	int eof;
	size_t pc, posted_upto;
	int64_t t, prev_start;
	int done, queued;
	int32_t need[2];
	size_t need_at; /* need[] is that of step need_at - 1; 0: none */
	struct open_recv *open;
	size_t nopen, capopen;
	struct pt_links links; /* directed links from this rank, as sender */
};

size_t pt_replay_window_ = 0;

struct replay {
	pt_trace *t;
	const pt_plan *layout;
	const pt_cost *cost;
	int mode;
	int P;
	struct rk *rk;
	int *queue, qhead, qtail;
	struct msg *m;
	int32_t nm, capm, freem;
	int32_t *head; /* [capm] hash buckets */
	int64_t lo, hi, *busy;
};

static uint64_t recv_key(int payload, int chunk, int mb)
{
	return (uint64_t)(uint8_t)payload << 48 | (uint64_t)(uint16_t)chunk << 32 | (uint32_t)mb;
}

static size_t bucket(int32_t a, int32_t b, int32_t seq, int32_t cap)
{
	uint64_t h = ((uint64_t)(uint32_t)a * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)(uint32_t)b * 0xC2B2AE3D27D4EB4Full) ^
		     ((uint64_t)(uint32_t)seq * 0x165667B19E3779F9ull);
	return (size_t)((h ^ (h >> 29)) & (uint64_t)(cap - 1));
}

/* The entry of message (a -> b, seq), made when absent; -1: PT_ENOMEM. */
static int32_t msg_of(struct replay *x, int32_t a, int32_t b, int32_t seq)
{
	if (x->capm)
		for (int32_t i = x->head[bucket(a, b, seq, x->capm)]; i >= 0; i = x->m[i].next)
			if (x->m[i].a == a && x->m[i].b == b && x->m[i].seq == seq)
				return i;
	if (x->freem < 0) { /* double the pool, and the buckets with it */
		int32_t cap = x->capm ? x->capm * 2 : 1024;
		struct msg *m = realloc(x->m, (size_t)cap * sizeof *m);
		if (!m)
			return -1;
		x->m = m;
		int32_t *head = malloc((size_t)cap * sizeof *head);
		if (!head)
			return -1;
		free(x->head);
		x->head = head;
		memset(head, 0xff, (size_t)cap * sizeof *head);
		for (int32_t i = 0; i < x->capm; i++) { /* all in use: the free list was empty */
			size_t h = bucket(m[i].a, m[i].b, m[i].seq, cap);
			m[i].next = head[h];
			head[h] = i;
		}
		for (int32_t i = cap - 1; i >= x->capm; i--) {
			m[i].refs = 0;
			m[i].next = x->freem;
			x->freem = i;
		}
		x->capm = cap;
	}
	int32_t i = x->freem;
	x->freem = x->m[i].next;
	size_t h = bucket(a, b, seq, x->capm);
	x->m[i] = (struct msg){.a = a,
			       .b = b,
			       .seq = seq,
			       .next = x->head[h],
			       .sposted = -1,
			       .rposted = -1,
			       .start = -1,
			       .end = -1,
			       .refs = 2};
	x->head[h] = i;
	x->nm++;
	return i;
}

/* One side is done with message i; the second frees it. */
static void msg_unref(struct replay *x, int32_t i)
{
	struct msg *e = &x->m[i];
	if (--e->refs)
		return;
	int32_t *p = &x->head[bucket(e->a, e->b, e->seq, x->capm)];
	while (*p != i)
		p = &x->m[*p].next;
	*p = e->next;
	e->next = x->freem;
	x->freem = i;
	x->nm--;
}

/* Rank r's ops up to index upto (exclusive) in its buffer, as far as the
 * plan goes: what lies before pc is dropped to make room. */
static int load(struct replay *x, int r, size_t upto)
{
	struct rk *k = &x->rk[r];
	while (upto > k->base + k->nbuf && !k->eof) {
		size_t keep = k->base + k->nbuf - k->pc;
		memmove(k->op, k->op + (k->pc - k->base), keep * sizeof *k->op);
		memmove(k->msg, k->msg + (k->pc - k->base), keep * sizeof *k->msg);
		k->base = k->pc;
		k->nbuf = keep;
		if (k->nbuf == k->cap) { /* a batch longer than the buffer */
			size_t cap = k->cap * 2;
			pt_op *op = realloc(k->op, cap * sizeof *op);
			if (op)
				k->op = op;
			int32_t *msg = op ? realloc(k->msg, cap * sizeof *msg) : NULL;
			if (!msg)
				return PT_ENOMEM;
			k->msg = msg;
			k->cap = cap;
		}
		size_t got;
		int err = pt_trace_plan_read(x->t, r, &k->next_step, k->op + k->nbuf, k->cap - k->nbuf, &got);
		if (err)
			return err;
		k->nbuf += got;
		k->eof = got == 0;
	}
	return 0;
}

static const pt_op *op_at(const struct replay *x, int r, size_t i)
{
	return &x->rk[r].op[i - x->rk[r].base];
}

static void enqueue(struct replay *x, int r)
{
	struct rk *k = &x->rk[r];
	if (k->queued || k->done)
		return;
	k->queued = 1;
	x->queue[x->qtail] = r;
	x->qtail = (x->qtail + 1) % (x->P + 1);
}

static void span(struct replay *x, int64_t start, int64_t end)
{
	if (start < x->lo)
		x->lo = start;
	if (end > x->hi)
		x->hi = end;
}

static int refuse(int r, size_t i, const pt_op *o, const char *what)
{
	char name[64];
	pt_op_name(o, PT_NAME_SPEC, name, sizeof name);
	return pt_logerr(PT_EPLAN, "invalid plan: rank %d, step %zu (%s): %s", r, i, name, what);
}

/* When message i is complete for the side of kind `kind`; -1 while unknown. */
static int64_t done_at(const struct replay *x, int32_t i, int kind)
{
	const struct msg *e = &x->m[i];
	int64_t posted = kind == PT_OP_SEND ? e->sposted : e->rposted;
	if (e->end < 0)
		return -1;
	return posted > e->end ? posted : e->end;
}

/* Post message i of rank r at time t (sim.c's post and transfer). */
static int post(struct replay *x, int r, size_t i, int64_t t)
{
	struct rk *k = &x->rk[r];
	const pt_op *o = op_at(x, r, i);
	int q = o->peer, send = o->kind == PT_OP_SEND;
	if (q < 0 || q >= x->P || q == r || o->seq < 0)
		return refuse(r, i, o, "a message without a peer rank and a sequence number");
	int32_t id = msg_of(x, send ? r : q, send ? q : r, o->seq);
	if (id < 0)
		return PT_ENOMEM;
	struct msg *e = &x->m[id];
	if ((send ? e->sposted : e->rposted) >= 0)
		return refuse(r, i, o, "a second message with this sequence number on this pair of ranks");
	if (e->sposted < 0 && e->rposted < 0) {
		e->payload = o->payload;
		e->mb = o->mb;
		e->chunk = o->chunk;
		e->first = o->kind;
	} else {
		const pt_chunk_info *mine = pt_plan_chunk(x->layout, r, o->chunk);
		const pt_chunk_info *other = pt_plan_chunk(x->layout, q, e->chunk);
		int want = e->payload == PT_ACT ? 1 : -1; /* the receiver's stage past the sender's */
		int dstage = send ? other->stage - mine->stage : mine->stage - other->stage;
		if (e->payload != o->payload || e->mb != o->mb || mine->pipe != other->pipe || dstage != want)
			return refuse(r, i, o, "its other side, on the peer rank, carries something else");
	}
	if (send) {
		e->sposted = t;
		e->bytes = o->bytes;
	} else {
		e->rposted = t;
		if (k->nopen == k->capopen) {
			size_t cap = k->capopen ? k->capopen * 2 : 16;
			struct open_recv *v = realloc(k->open, cap * sizeof *v);
			if (!v)
				return PT_ENOMEM;
			k->open = v;
			k->capopen = cap;
		}
		k->open[k->nopen++] = (struct open_recv){recv_key(o->payload, o->chunk, o->mb), id};
	}
	k->msg[i - k->base] = id;
	if (send && e->end < 0) { /* the transfer starts once posted and its link is free */
		if (pt_link_transfer(&k->links, q, t, pt_cost_wire(x->cost, e->bytes), x->cost->latency, &e->start,
				     &e->end))
			return PT_ENOMEM;
		span(x, e->start, e->end);
	}
	/* a receiver that has posted may be waiting for this send */
	if (send && e->rposted >= 0)
		enqueue(x, q);
	return 0;
}

/* The first open receive of key, taken off the list; -1 when none. */
static int32_t take(struct rk *k, uint64_t key)
{
	for (size_t m = 0; m < k->nopen; m++) {
		if (k->open[m].key == key) {
			int32_t id = k->open[m].msg;
			k->open[m] = k->open[--k->nopen];
			return id;
		}
	}
	return -1;
}

/* Advance rank r as far as it can (sim.c's step_rank). */
static int step_rank(struct replay *x, int r)
{
	struct rk *k = &x->rk[r];
	int err;
	for (;;) {
		if ((err = load(x, r, k->pc + 1)))
			return err;
		if (k->pc >= k->base + k->nbuf)
			break;
		const pt_op *o = op_at(x, r, k->pc);
		if (pt_kind_is_comm(o->kind)) {
			int32_t batch = o->batch;
			size_t end = k->pc + 1;
			for (;; end++) { /* past the batch: consecutive messages of one number */
				if ((err = load(x, r, end + 1)))
					return err;
				if (end >= k->base + k->nbuf)
					break;
				const pt_op *e = op_at(x, r, end);
				if (!pt_kind_is_comm(e->kind) || e->batch != batch)
					break;
			}
			for (size_t i = k->posted_upto > k->pc ? k->posted_upto : k->pc; i < end; i++) {
				int64_t at = k->t;
				if (x->mode == PT_COMM_OVERLAP && op_at(x, r, i)->kind == PT_OP_RECV)
					at = k->prev_start;
				if ((err = post(x, r, i, at)))
					return err;
				k->posted_upto = i + 1;
			}
			if (x->mode == PT_COMM_FLUSH) {
				int64_t done = k->t;
				for (size_t i = k->pc; i < end; i++) {
					int64_t d = done_at(x, k->msg[i - k->base], op_at(x, r, i)->kind);
					if (d < 0)
						return 0; /* blocked: a partner has not posted yet */
					if (d > done)
						done = d;
				}
				k->t = done;
			}
			/* the sender is done with its sends; a receive waits for its consumer */
			for (size_t i = k->pc; i < end; i++)
				if (op_at(x, r, i)->kind == PT_OP_SEND)
					msg_unref(x, k->msg[i - k->base]);
			k->pc = end;
			continue;
		}
		if (k->need_at != k->pc + 1) {
			k->need[0] = k->need[1] = -1;
			switch (o->kind) {
			case PT_OP_F: k->need[0] = take(k, recv_key(PT_ACT, o->chunk, o->mb)); break;
			case PT_OP_B:
			case PT_OP_I: k->need[0] = take(k, recv_key(PT_GRAD, o->chunk, o->mb)); break;
			case PT_OP_FB:
				k->need[0] = take(k, recv_key(PT_ACT, o->chunk, o->mb));
				k->need[1] = take(k, recv_key(PT_GRAD, o->chunk2, o->mb2));
				break;
			}
			k->need_at = k->pc + 1;
		}
		int64_t start = k->t;
		for (int n = 0; n < 2; n++) {
			if (k->need[n] < 0)
				continue;
			int64_t d = done_at(x, k->need[n], PT_OP_RECV);
			if (d < 0)
				return 0; /* blocked on an input */
			if (d > start)
				start = d;
		}
		for (int n = 0; n < 2; n++)
			if (k->need[n] >= 0)
				msg_unref(x, k->need[n]);
		k->need_at = 0;
		int compute = pt_kind_is_compute(o->kind);
		int64_t end = start + pt_cost_op(x->cost, compute ? o->kind : 0);
		span(x, start, end);
		if (compute && x->busy)
			x->busy[r] += end - start;
		k->prev_start = start;
		k->t = end;
		k->pc++;
	}
	k->done = 1;
	return 0;
}

/* After the walk: a message one side never posted, or ranks left waiting. */
static int report(struct replay *x)
{
	for (int32_t i = 0; i < x->capm; i++) {
		const struct msg *e = &x->m[i];
		if (e->refs && (e->sposted < 0 || e->rposted < 0))
			return pt_logerr(PT_EPLAN, "invalid plan: rank %d's %s number %d %s rank %d has no match there",
					 e->sposted < 0 ? e->b : e->a, e->sposted < 0 ? "receive" : "send", e->seq,
					 e->sposted < 0 ? "from" : "to", e->sposted < 0 ? e->a : e->b);
	}
	int stuck = 0, shown = 0;
	for (int r = 0; r < x->P; r++)
		stuck += !x->rk[r].done;
	if (!stuck)
		return 0;
	pt_log(PT_LOG_ERROR, "plan deadlocks: %d of %d ranks cannot finish", stuck, x->P);
	for (int r = 0; r < x->P && shown < 8; r++) {
		if (x->rk[r].done)
			continue;
		char name[64];
		pt_op_name(op_at(x, r, x->rk[r].pc), PT_NAME_SPEC, name, sizeof name);
		pt_log(PT_LOG_ERROR, "  r%d waits at step %zu (%s)", r, x->rk[r].pc, name);
		shown++;
	}
	return PT_EPLAN;
}

int pt_sim_replay(pt_trace *t, const pt_plan *layout, const pt_cost *cost, int mode, int64_t *busy, int64_t *lo,
		  int64_t *hi)
{
	const int P = layout->ranks;
	struct replay x = {.t = t,
			   .layout = layout,
			   .cost = cost,
			   .mode = mode,
			   .P = P,
			   .freem = -1,
			   .lo = INT64_MAX,
			   .hi = INT64_MIN,
			   .busy = busy};
	int err = 0;
	x.rk = calloc((size_t)P, sizeof *x.rk);
	x.queue = malloc(((size_t)P + 1) * sizeof *x.queue);
	if (!x.rk || !x.queue) {
		err = PT_ENOMEM;
		goto out;
	}
	/* about 4 MB of ops in the buffers, at least 16 a rank */
	size_t cap = ((size_t)4 << 20) / ((size_t)P * (sizeof(pt_op) + sizeof(int32_t)));
	if (cap < 16)
		cap = 16;
	if (pt_replay_window_)
		cap = pt_replay_window_;
	for (int r = 0; r < P; r++) {
		struct rk *k = &x.rk[r];
		k->op = malloc(cap * sizeof *k->op);
		k->msg = malloc(cap * sizeof *k->msg);
		if (!k->op || !k->msg) {
			err = PT_ENOMEM;
			goto out;
		}
		k->cap = cap;
		if (busy)
			busy[r] = 0;
		enqueue(&x, r);
	}
	while (!err && x.qhead != x.qtail) {
		int r = x.queue[x.qhead];
		x.qhead = (x.qhead + 1) % (P + 1);
		x.rk[r].queued = 0;
		err = step_rank(&x, r);
	}
	if (!err)
		err = report(&x);
	if (!err) {
		*lo = x.lo;
		*hi = x.hi;
	}
out:
	for (int r = 0; x.rk && r < P; r++) {
		free(x.rk[r].op);
		free(x.rk[r].msg);
		free(x.rk[r].open);
		free(x.rk[r].links.v);
	}
	free(x.rk);
	free(x.queue);
	free(x.m);
	free(x.head);
	return err;
}
