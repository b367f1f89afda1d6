/*
 * runner/plan.c — the plan container, its printer, and the dispatch from a
 * schedule name to its generator. Validation lives in validate.c, the
 * generators in dualpipe.c and baselines.c, message attachment in comm.c.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "libtrace/grow.h"
#include "runner.h"

static const char *const names[PT_SCHED_COUNT] = {
	[PT_SCHED_DUALPIPE] = "dualpipe", [PT_SCHED_DUALPIPEV] = "dualpipev",
	[PT_SCHED_1F1B] = "1f1b",	  [PT_SCHED_ZB1P] = "zb1p",
	[PT_SCHED_GPIPE] = "gpipe",	  [PT_SCHED_INTERLEAVED] = "interleaved",
	[PT_SCHED_ZBV] = "zbv",
};

const char *pt_sched_name(int sched)
{
	if (sched == PT_SCHED_CSV)
		return "csv";
	return sched >= 0 && sched < PT_SCHED_COUNT ? names[sched] : "?";
}

int pt_sched_parse(const char *name)
{
	for (int i = 0; i < PT_SCHED_COUNT; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	if (strcmp(name, "zbh1") == 0)
		return PT_SCHED_ZB1P;
	if (strcmp(name, "interleaved1f1b") == 0)
		return PT_SCHED_INTERLEAVED;
	return -1;
}

const char *pt_sched_list(void) { return "dualpipe, dualpipev, 1f1b, zb1p, gpipe, interleaved, zbv"; }

int pt_plan_alloc(int sched, int ranks, int chunks, int npipes, int nstages, pt_plan **out)
{
	*out = NULL;
	pt_plan *p = calloc(1, sizeof *p);
	if (!p)
		return PT_ENOMEM;
	p->sched = sched;
	snprintf(p->name, sizeof p->name, "%s", pt_sched_name(sched));
	p->ranks = ranks;
	p->chunks = chunks;
	p->npipes = npipes;
	p->nstages = nstages;
	p->chunk = calloc((size_t)ranks * (size_t)chunks, sizeof *p->chunk);
	p->holder = malloc((size_t)npipes * (size_t)nstages * sizeof *p->holder);
	p->rank = calloc((size_t)ranks, sizeof *p->rank);
	if (!p->chunk || !p->holder || !p->rank) {
		pt_plan_destroy(p);
		return PT_ENOMEM;
	}
	for (int i = 0; i < npipes * nstages; i++)
		p->holder[i] = -1;
	for (int r = 0; r < ranks; r++)
		for (int c = 0; c < chunks; c++)
			p->chunk[r * chunks + c] = (pt_chunk_info){r, c, -1, -1};
	*out = p;
	return 0;
}

void pt_plan_place(pt_plan *p, int rank, int chunk, int pipe, int stage)
{
	p->chunk[rank * p->chunks + chunk] = (pt_chunk_info){rank, chunk, pipe, stage};
	p->holder[pipe * p->nstages + stage] = rank * p->chunks + chunk;
}

/* Faulting in tens of MB page by page costs more than planning or
 * simulating them on some virtual machines. */
void *pt_big_alloc(size_t size)
{
	void *p = mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	if (size >= (2u << 20))
		madvise(p, size, MADV_HUGEPAGE);
#endif
	return p;
}

void pt_big_free(void *mem, size_t size)
{
	if (mem)
		munmap(mem, size ? size : 1);
}

int pt_plan_reserve(pt_plan *p, const size_t *cap)
{
	size_t total = 0;
	for (int r = 0; r < p->ranks; r++)
		total += cap[r];
	if (p->block_)
		return PT_EINVAL; /* reserved already */
	if (!(p->block_ = pt_big_alloc(total * sizeof(pt_op))))
		return PT_ENOMEM;
	p->block_size_ = total * sizeof(pt_op);
	pt_op *o = p->block_;
	for (int r = 0; r < p->ranks; r++) {
		pt_rank_plan *rp = &p->rank[r];
		free(rp->ops);
		rp->ops = o;
		rp->n = 0;
		rp->cap = cap[r];
		rp->in_block = 1;
		o += cap[r];
	}
	return 0;
}

int pt_plan_push(pt_plan *p, int rank, const pt_op *op)
{
	pt_rank_plan *rp = &p->rank[rank];
	if (rp->n == rp->cap) {
		size_t cap = rp->cap ? rp->cap * 2 : 64;
		pt_op *o = rp->in_block ? malloc(cap * sizeof *o) : realloc(rp->ops, cap * sizeof *o);
		if (!o)
			return PT_ENOMEM;
		if (rp->in_block)
			memcpy(o, rp->ops, rp->n * sizeof *o);
		rp->ops = o;
		rp->cap = cap;
		rp->in_block = 0;
	}
	rp->ops[rp->n++] = *op;
	if (pt_kind_is_comm(op->kind) && op->batch >= rp->nbatches)
		rp->nbatches = op->batch + 1;
	return 0;
}

void pt_plan_destroy(pt_plan *p)
{
	if (!p)
		return;
	for (int r = 0; p->rank && r < p->ranks; r++)
		if (!p->rank[r].in_block)
			free(p->rank[r].ops);
	pt_big_free(p->block_, p->block_size_);
	free(p->rank);
	free(p->chunk);
	free(p->holder);
	free(p);
}

size_t pt_plan_count(const pt_plan *p, int comm)
{
	size_t n = 0;
	for (int r = 0; r < p->ranks; r++)
		for (size_t i = 0; i < p->rank[r].n; i++)
			n += (pt_kind_is_comm(p->rank[r].ops[i].kind) != 0) == (comm != 0);
	return n;
}

int pt_plan_create(const pt_plan_params *params, pt_plan **out)
{
	*out = NULL;
	pt_plan *p = NULL;
	int err;
	if (params->ranks < 1)
		return pt_logerr(PT_EINVAL, "--ranks must be at least 1 (got %d)", params->ranks);
	if (params->microbatches < 1)
		return pt_logerr(PT_EINVAL, "--microbatches must be at least 1 (got %d)", params->microbatches);
	if (params->ranks > 65536 || params->microbatches > 1 << 24)
		return pt_logerr(PT_EINVAL, "--ranks %d / --microbatches %d: too large (limits 65536 and %d)",
				 params->ranks, params->microbatches, 1 << 24);
	if (params->bytes < 0)
		return pt_logerr(PT_EINVAL, "message size must not be negative");
	switch (params->sched) {
	case PT_SCHED_DUALPIPE:
	case PT_SCHED_DUALPIPEV:
		err = pt_gen_dualpipe(params, &p);
		break;
	case PT_SCHED_1F1B:
	case PT_SCHED_ZB1P:
	case PT_SCHED_GPIPE:
	case PT_SCHED_INTERLEAVED:
	case PT_SCHED_ZBV:
		err = pt_gen_baseline(params, &p);
		break;
	default:
		return pt_logerr(PT_EINVAL, "unknown schedule (known: %s)", pt_sched_list());
	}
	if (err)
		return err;
	p->microbatches = params->microbatches;
	if ((err = pt_plan_validate(p))) {
		pt_plan_destroy(p);
		return err;
	}
	*out = p;
	return 0;
}

void pt_plan_print(const pt_plan *p, FILE *out, unsigned flags)
{
	char name[64];
	for (int r = 0; r < p->ranks; r++) {
		const pt_rank_plan *rp = &p->rank[r];
		fprintf(out, "r%d:", r);
		int tag = -1, in_batch = -1;
		for (size_t i = 0; i < rp->n; i++) {
			const pt_op *o = &rp->ops[i];
			if (pt_kind_is_comm(o->kind)) {
				if (!(flags & PT_PRINT_COMMS))
					continue;
				pt_op_name(o, PT_NAME_SPEC, name, sizeof name);
				fprintf(out, "%s%s", in_batch == o->batch ? " " : " [", name);
				in_batch = o->batch;
				if (i + 1 == rp->n || rp->ops[i + 1].batch != o->batch ||
				    !pt_kind_is_comm(rp->ops[i + 1].kind)) {
					fputc(']', out);
					in_batch = -1;
				}
				continue;
			}
			if ((flags & PT_PRINT_STEPS) && o->tag && o->tag != tag) {
				fprintf(out, " S%d:", o->tag);
				tag = o->tag;
			}
			pt_op_name(o, PT_NAME_SPEC, name, sizeof name);
			fprintf(out, " %s", name);
		}
		fputc('\n', out);
	}
}

void pt_inputs_init(pt_inputs *in) { memset(in, 0, sizeof *in); }

void pt_inputs_fini(pt_inputs *in)
{
	free(in->open);
	memset(in, 0, sizeof *in);
}

/* An open receive and what it carries (payload, chunk, microbatch) packed
 * in one key, so matching one is a single comparison on this list, without
 * going back to the op. */
struct pt_open_recv {
	uint64_t key;
	int32_t step;
};

static inline uint64_t recv_key(int payload, int chunk, int mb)
{
	return (uint64_t)(uint8_t)payload << 48 | (uint64_t)(uint16_t)chunk << 32 | (uint32_t)mb;
}

/* The first open receive of key on the list (the earliest unless a plan
 * repeats a key while one is open), taken off it; -1 when none. */
static inline int32_t take(pt_inputs *in, uint64_t key)
{
	for (size_t m = 0; m < in->n; m++) {
		if (in->open[m].key == key) {
			int32_t step = in->open[m].step;
			in->open[m] = in->open[--in->n];
			return step;
		}
	}
	return -1;
}

int pt_inputs_step(pt_inputs *in, const pt_op *ops, size_t i, int32_t need[2])
{
	const pt_op *o = &ops[i];
	need[0] = need[1] = -1;
	switch (o->kind) {
	case PT_OP_RECV:
		if (pt_grow(&in->open, &in->cap, in->n + 1, sizeof *in->open))
			return PT_ENOMEM;
		in->open[in->n++] = (struct pt_open_recv){recv_key(o->payload, o->chunk, o->mb), (int32_t)i};
		break;
	case PT_OP_F:
		need[0] = take(in, recv_key(PT_ACT, o->chunk, o->mb));
		break;
	case PT_OP_B:
	case PT_OP_I:
		need[0] = take(in, recv_key(PT_GRAD, o->chunk, o->mb));
		break;
	case PT_OP_FB:
		need[0] = take(in, recv_key(PT_ACT, o->chunk, o->mb));
		need[1] = take(in, recv_key(PT_GRAD, o->chunk2, o->mb2));
		break;
	}
	return 0;
}

int pt_plan_inputs(const pt_plan *p, int r, int32_t *need)
{
	const pt_rank_plan *rp = &p->rank[r];
	pt_inputs in;
	int err = 0;
	pt_inputs_init(&in);
	for (size_t i = 0; i < rp->n && !err; i++)
		err = pt_inputs_step(&in, rp->ops, i, &need[i * 2]);
	pt_inputs_fini(&in);
	return err;
}
