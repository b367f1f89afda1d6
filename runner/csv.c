/*
 * runner/csv.c — torch.distributed.pipelining's action CSV, both ways.
 *
 * One row per rank, one cell per action: "<stage><F|I|B|W><mb>", composite
 * "(<a>;<b>)OVERLAP_F_B" for an overlapped pair, an empty cell for an idle
 * step. Stage ids are global; the stage-to-rank map and the chunk order (a
 * rank's stages ascending) are inferred. Communication (SEND_F, RECV_F, SEND_B, RECV_B) and
 * FSDP (UNSHARD, RESHARD, REDUCE_GRAD) actions are accepted and re-derived
 * or ignored: messages are attached by comm.c so that they pair up. DualPipe
 * cannot be written: it places every stage on two ranks, which the format
 * cannot say.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libtrace/grow.h"
#include "runner.h"

struct action {
	int rank, kind, stage, mb, stage2, mb2, line, cell;
};

struct actions {
	struct action *v;
	size_t n, cap;
};

static int push_action(struct actions *a, struct action x)
{
	if (pt_grow(&a->v, &a->cap, a->n + 1, sizeof *a->v))
		return PT_ENOMEM;
	a->v[a->n++] = x;
	return 0;
}

static int read_num(const char **p, int *out)
{
	if (!isdigit((unsigned char)**p))
		return -1;
	long v = 0;
	while (isdigit((unsigned char)**p)) {
		v = v * 10 + (**p - '0');
		if (v > 1 << 24)
			return -1;
		(*p)++;
	}
	*out = (int)v;
	return 0;
}

/* One simple action at *p: 1 compute (kind, stage, mb set), 0 ignorable, -1 bad. */
static int parse_simple(const char **p, int *kind, int *stage, int *mb)
{
	static const char *const ignored[] = {"SEND_F", "RECV_F", "SEND_B", "RECV_B", "UNSHARD", "RESHARD",
					      "REDUCE_GRAD"};
	if (read_num(p, stage))
		return -1;
	for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
		size_t n = strlen(ignored[i]);
		if (!strncmp(*p, ignored[i], n)) {
			*p += n;
			while (isdigit((unsigned char)**p))
				(*p)++;
			return 0;
		}
	}
	switch (**p) {
	case 'F': *kind = PT_OP_F; break;
	case 'B': *kind = PT_OP_B; break;
	case 'I': *kind = PT_OP_I; break;
	case 'W': *kind = PT_OP_W; break;
	default: return -1;
	}
	(*p)++;
	if (read_num(p, mb))
		return -1;
	return 1;
}

static int parse_cell(const char *cell, struct action *a)
{
	const char *p = cell;
	if (*p == '(') {
		p++;
		int k1, k2, got;
		if ((got = parse_simple(&p, &k1, &a->stage, &a->mb)) != 1 || k1 != PT_OP_F || *p++ != ';')
			return -1;
		if ((got = parse_simple(&p, &k2, &a->stage2, &a->mb2)) != 1 || k2 != PT_OP_B || *p++ != ')')
			return -1;
		if (strcmp(p, "OVERLAP_F_B") != 0)
			return -1;
		a->kind = PT_OP_FB;
		return 1;
	}
	int got = parse_simple(&p, &a->kind, &a->stage, &a->mb);
	if (got < 0 || *p)
		return -1;
	return got;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int read_actions(const char *path, struct actions *acts, int *nranks)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return pt_logerr(errno == ENOENT ? PT_ENOENT : PT_EIO, "%s: %s", path, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, err = 0, rank = 0;
	while (!err && (len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		if (memchr(line, '\0', (size_t)len)) {
			err = pt_logerr(PT_EINVAL, "%s:%d: binary data, not a torch action CSV", path, lineno);
			break;
		}
		char *save = NULL, *s = line;
		int cell = 0;
		/* strtok would merge empty cells; walk commas by hand */
		for (;;) {
			char *comma = strchr(s, ',');
			if (comma)
				*comma = '\0';
			cell++;
			char *t = trim(s);
			if (*t) {
				struct action a = {.rank = rank, .line = lineno, .cell = cell, .stage2 = -1, .mb2 = -1};
				int got = parse_cell(t, &a);
				if (got < 0) {
					err = pt_logerr(PT_EINVAL,
							"%s:%d: cell %d '%.40s' is not a torch action (e.g. 0F3, 2I1, 1W0, "
							"(0F3;7B1)OVERLAP_F_B)",
							path, lineno, cell, t);
					break;
				}
				if (got == 1 && (err = push_action(acts, a)))
					break;
			}
			if (!comma)
				break;
			s = comma + 1;
		}
		(void)save;
		rank++;
	}
	if (!err && ferror(f))
		err = pt_logerr(PT_EIO, "%s: read error", path);
	free(line);
	fclose(f);
	/* trailing empty rows are not ranks */
	int last = -1;
	for (size_t i = 0; i < acts->n; i++)
		if (acts->v[i].rank > last)
			last = acts->v[i].rank;
	*nranks = last + 1;
	if (!err && *nranks == 0)
		err = pt_logerr(PT_EINVAL, "%s: no compute actions: not a torch action CSV", path);
	return err;
}

int pt_plan_load_csv(const char *path, int64_t bytes, pt_plan **out)
{
	*out = NULL;
	struct actions acts = {0};
	int P = 0, err = read_actions(path, &acts, &P);
	int *owner = NULL, *chunk_of = NULL, *nch = NULL;
	pt_plan *p = NULL;
	if (err)
		goto out;
	int S = 0, m = 0;
	for (size_t i = 0; i < acts.n; i++) {
		struct action *a = &acts.v[i];
		int s = a->stage2 > a->stage ? a->stage2 : a->stage;
		if (s + 1 > S)
			S = s + 1;
		int mb = a->mb2 > a->mb ? a->mb2 : a->mb;
		if (mb + 1 > m)
			m = mb + 1;
	}
	owner = malloc((size_t)S * sizeof *owner);
	chunk_of = malloc((size_t)S * sizeof *chunk_of);
	nch = calloc((size_t)P, sizeof *nch);
	if (!owner || !chunk_of || !nch) {
		err = PT_ENOMEM;
		goto out;
	}
	for (int s = 0; s < S; s++)
		owner[s] = -1;
	for (size_t i = 0; i < acts.n && !err; i++) {
		struct action *a = &acts.v[i];
		for (int h = 0; h < (a->kind == PT_OP_FB ? 2 : 1); h++) {
			int s = h ? a->stage2 : a->stage;
			if (owner[s] >= 0 && owner[s] != a->rank) {
				err = pt_logerr(PT_EINVAL,
						"%s:%d: stage %d appears on rank %d and on rank %d; a torch action CSV "
						"places each stage on one rank",
						path, a->line, s, owner[s], a->rank);
				break;
			}
			owner[s] = a->rank;
		}
	}
	for (int s = 0; s < S && !err; s++) {
		if (owner[s] < 0) {
			err = pt_logerr(PT_EINVAL, "%s: stage %d has no actions (stages must be 0..%d)", path, s, S - 1);
			break;
		}
		chunk_of[s] = nch[owner[s]]++;
	}
	for (int r = 0; r < P && !err; r++)
		if (nch[r] != nch[0])
			err = pt_logerr(PT_EINVAL,
					"%s: rank %d holds %d stages but rank 0 holds %d; pipetrace needs the same "
					"number on every rank",
					path, r, nch[r], nch[0]);
	if (err)
		goto out;
	if ((err = pt_plan_alloc(PT_SCHED_CSV, P, nch[0], 1, S, &p)))
		goto out;
	const char *base = strrchr(path, '/');
	snprintf(p->name, sizeof p->name, "%s", base ? base + 1 : path);
	p->microbatches = m;
	p->mbs[0] = m;
	for (int s = 0; s < S; s++)
		pt_plan_place(p, owner[s], chunk_of[s], 0, s);
	for (size_t i = 0; i < acts.n && !err; i++) {
		struct action *a = &acts.v[i];
		pt_op op = pt_op_make(a->kind, chunk_of[a->stage], a->mb);
		if (a->kind == PT_OP_FB) {
			op.chunk2 = (int16_t)chunk_of[a->stage2];
			op.mb2 = a->mb2;
		}
		err = pt_plan_push(p, a->rank, &op);
	}
	/* phases: before a rank's first backward, after its last forward, between */
	for (int r = 0; r < P && !err; r++) {
		pt_rank_plan *rp = &p->rank[r];
		size_t first_b = rp->n, last_f = 0;
		for (size_t i = 0; i < rp->n; i++) {
			int k = rp->ops[i].kind;
			if (k != PT_OP_F && first_b == rp->n)
				first_b = i;
			if (k == PT_OP_F || k == PT_OP_FB)
				last_f = i;
		}
		for (size_t i = 0; i < rp->n; i++)
			rp->ops[i].phase = i < first_b ? PT_WARMUP : i > last_f ? PT_COOLDOWN : PT_STEADY;
	}
	if (!err)
		err = pt_plan_attach_comms(p, bytes);
	if (!err && (err = pt_plan_validate(p)))
		pt_log(PT_LOG_ERROR, "%s: the plan above is invalid", path);
out:
	free(acts.v);
	free(owner);
	free(chunk_of);
	free(nch);
	if (err) {
		pt_plan_destroy(p);
		return err;
	}
	*out = p;
	return 0;
}

int pt_plan_write_csv(const pt_plan *p, FILE *out)
{
	if (p->npipes != 1)
		return pt_logerr(PT_ENOTSUP,
				 "%s cannot be written as a torch action CSV: it places every stage on two ranks, "
				 "which that format cannot say (dualpipev can)",
				 p->name);
	for (int r = 0; r < p->ranks; r++) {
		const pt_rank_plan *rp = &p->rank[r];
		int first = 1;
		for (size_t i = 0; i < rp->n; i++) {
			const pt_op *o = &rp->ops[i];
			if (!pt_kind_is_compute(o->kind))
				continue;
			if (!first)
				fputc(',', out);
			first = 0;
			int s = pt_plan_chunk(p, r, o->chunk)->stage;
			if (o->kind == PT_OP_FB)
				fprintf(out, "(%dF%d;%dB%d)OVERLAP_F_B", s, o->mb, pt_plan_chunk(p, r, o->chunk2)->stage,
					o->mb2);
			else
				fprintf(out, "%d%c%d", s, "?FBIW"[o->kind], o->mb);
		}
		fputs("\r\n", out); /* as Python's csv module, and so torch, writes it */
	}
	return 0;
}
