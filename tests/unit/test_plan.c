/*
 * tests/unit/test_plan.c — schedule generators against the specs' published
 * orders (Appendices A, B, C of spec/dualpipe.md; the spec/schedules-p4m8 CSVs),
 * the rules each schedule enforces, the torch CSV reader, and the validator
 * on deliberately broken plans.
 */
#include "testutil.h"
#include "tu_plan.h"

#include "runner/runner.h"

/* The plan printed with flags, as one string. */
static char *printed(const pt_plan *p, unsigned flags)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	pt_plan_print(p, f, flags);
	fclose(f);
	return buf;
}

/* Line `rank` of a multi-line string (static buffer). */
static const char *line_of(const char *text, int rank)
{
	static char line[1 << 14];
	const char *p = text;
	for (int i = 0; i < rank && p; i++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!p)
		return "";
	const char *e = strchr(p, '\n');
	size_t n = e ? (size_t)(e - p) : strlen(p);
	if (n >= sizeof line)
		n = sizeof line - 1;
	if (n && p[n - 1] == '\r')
		n--;
	memcpy(line, p, n);
	line[n] = '\0';
	return line;
}

static void compare_lines(const char *what, const char *want, const char *got, int nlines)
{
	for (int r = 0; r < nlines; r++) {
		char w[1 << 14];
		snprintf(w, sizeof w, "%s", line_of(want, r));
		if (strcmp(w, line_of(got, r)) != 0)
			fail_msg("%s, rank %d:\n want: %s\n  got: %s", what, r, w, line_of(got, r));
	}
}

static char *oracle(const char *name)
{
	char path[512];
	snprintf(path, sizeof path, "%s/spec/%s", PT_TEST_DATA, name);
	char *s = tu_read_file(path, NULL);
	if (!s)
		fail_msg("missing test oracle %s", path);
	return s;
}

static void test_dualpipe_appendix_a(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 8, 20);
	char *got = printed(p, PT_PRINT_STEPS), *want = oracle("dualpipe_p8_n20.txt");
	compare_lines("DualPipe P=8 N=20 (Appendix A)", want, got, 4);
	/* r4..r7: mirrors of r3..r0 with directions swapped */
	char *plain = printed(p, 0);
	for (int r = 4; r < 8; r++) {
		char mirror[1 << 14];
		snprintf(mirror, sizeof mirror, "%s", line_of(plain, 7 - r));
		for (char *c = mirror; *c; c++) {
			/* swap the chunk digit after F/B/I/W */
			if ((*c == 'F' || *c == 'B' || *c == 'I' || *c == 'W') && (c[1] == '0' || c[1] == '1'))
				c[1] = c[1] == '0' ? '1' : '0';
		}
		mirror[1] = (char)('0' + r);
		assert_string_equal(line_of(plain, r), mirror);
	}
	free(plain);
	free(got);
	free(want);
	pt_plan_destroy(p);
}

static void test_dualpipev_appendix_b(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPEV, 4, 10);
	char *got = printed(p, PT_PRINT_STEPS), *want = oracle("dualpipev_p4_n10.txt");
	compare_lines("DualPipeV P=4 N=10 (Appendix B)", want, got, 4);
	free(got);
	free(want);
	pt_plan_destroy(p);
}

static void test_dualpipe_appendix_c(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 10);
	char *got = printed(p, PT_PRINT_COMMS), *want = oracle("dualpipe_p4_n10_comms.txt");
	compare_lines("DualPipe P=4 N=10 with comm batches (Appendix C)", want, got, 4);
	free(got);
	free(want);
	pt_plan_destroy(p);
}

/* spec §1.5, the worked example, ranks 0 and 1 */
static void test_dualpipe_worked_example(void **state)
{
	(void)state;
	pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 10);
	char *got = printed(p, 0);
	assert_string_equal(line_of(got, 0),
			    "r0: F0:0 F0:1 F0:2 F1:0 I1:0 W1:0 F1:1 F0:3|B1:1 F1:2|B0:0 F0:4|B1:2 F1:3|B0:1 B1:3 "
			    "F1:4|B0:2 B1:4 I0:3 W0:3 I0:4 W0:4");
	assert_string_equal(line_of(got, 1), "r1: F0:0 F1:0 F0:1 F1:1 F0:2 B1:0 F1:2|B0:0 F0:3|B1:1 F1:3|B0:1 "
					     "F0:4|B1:2 F1:4|B0:2 B1:3 B0:3 I1:4 I0:4 W1:4 W0:4");
	free(got);
	pt_plan_destroy(p);
}

/* spec §2: DualPipeV on P ranks with N microbatches is ranks 0..P-1 of
 * DualPipe on 2P ranks with 2N, op for op */
static void test_dualpipev_is_half_of_dualpipe(void **state)
{
	(void)state;
	for (int P = 1; P <= 8; P++) {
		for (int N = 2 * P; N <= 2 * P + 5; N++) {
			pt_plan *v = make(PT_SCHED_DUALPIPEV, P, N), *d = make(PT_SCHED_DUALPIPE, 2 * P, 2 * N);
			char *vs = printed(v, 0), *ds = printed(d, 0);
			for (int r = 0; r < P; r++) {
				char a[1 << 14];
				snprintf(a, sizeof a, "%s", line_of(vs, r));
				if (strcmp(a, line_of(ds, r)) != 0)
					fail_msg("DualPipeV P=%d N=%d rank %d differs from DualPipe P=%d N=%d", P, N, r,
						 2 * P, 2 * N);
			}
			free(vs);
			free(ds);
			pt_plan_destroy(v);
			pt_plan_destroy(d);
		}
	}
}

static void check_csv(int sched, const char *file, int chunks)
{
	pt_plan_params pp = {.sched = sched, .ranks = 4, .microbatches = 8, .chunks = chunks};
	pt_plan *p = NULL;
	tu_log_reset();
	assert_int_equal(pt_plan_create(&pp, &p), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(pt_plan_write_csv(p, f), 0);
	fclose(f);
	char *want = oracle(file);
	compare_lines(file, want, buf, 4);
	free(want);
	free(buf);
	pt_plan_destroy(p);
}

static void test_baselines_match_spec_csvs(void **state)
{
	(void)state;
	check_csv(PT_SCHED_1F1B, "1f1b.csv", 0);
	check_csv(PT_SCHED_ZB1P, "zbh1.csv", 0);
	check_csv(PT_SCHED_GPIPE, "gpipe.csv", 0);
	check_csv(PT_SCHED_INTERLEAVED, "interleaved1f1b.csv", 2);
	check_csv(PT_SCHED_ZBV, "zbv.csv", 0);
}

static void test_csv_reader(void **state)
{
	(void)state;
	static const char *const files[] = {"1f1b.csv", "zbh1.csv", "zbh2.csv", "gpipe.csv", "interleaved1f1b.csv",
					    "zbv.csv"};
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/spec/%s", PT_TEST_DATA, files[i]);
		pt_plan *p = NULL;
		tu_log_reset();
		int err = pt_plan_load_csv(path, 1024, &p);
		if (err)
			fail_msg("%s: %s\n%s", files[i], pt_strerror(err), tu_log_buf);
		assert_int_equal(p->ranks, 4);
		assert_int_equal(p->microbatches, 8);
		/* written back, it is the same file */
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		assert_int_equal(pt_plan_write_csv(p, f), 0);
		fclose(f);
		char *want = oracle(files[i]);
		compare_lines(files[i], want, buf, 4);
		free(want);
		free(buf);
		pt_plan_destroy(p);
	}
	/* Chimera's d/u replica tags are an extension torch's CSV does not have */
	char path[512];
	snprintf(path, sizeof path, "%s/spec/chimera.csv", PT_TEST_DATA);
	pt_plan *p = NULL;
	tu_log_reset();
	assert_int_equal(pt_plan_load_csv(path, 0, &p), PT_EINVAL);
	assert_logged("chimera.csv:1: cell 1 '0F0d' is not a torch action");
	/* a composite action round-trips; DualPipe refuses to be written */
	pt_plan *v = make(PT_SCHED_DUALPIPEV, 2, 4);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(pt_plan_write_csv(v, f), 0);
	fclose(f);
	assert_non_null(strstr(buf, "OVERLAP_F_B"));
	char csv[512];
	tu_write_file(tu_path(csv, sizeof csv, "v.csv"), buf, len);
	pt_plan *back = NULL;
	tu_log_reset();
	assert_int_equal(pt_plan_load_csv(csv, 0, &back), 0);
	char *a = printed(v, 0), *b = printed(back, 0);
	assert_string_equal(a, b);
	free(a);
	free(b);
	free(buf);
	pt_plan_destroy(back);
	pt_plan_destroy(v);
	pt_plan *d = make(PT_SCHED_DUALPIPE, 4, 8);
	f = fopen("/dev/null", "w");
	tu_log_reset();
	assert_int_equal(pt_plan_write_csv(d, f), PT_ENOTSUP);
	assert_logged("places every stage on two ranks");
	fclose(f);
	pt_plan_destroy(d);
}

static void test_csv_reader_errors(void **state)
{
	(void)state;
	char path[512];
	pt_plan *p = NULL;
	tu_path(path, sizeof path, "bad.csv");
	tu_write_file(path, "0F0,0F1\n1F0,1X1\n", 16);
	tu_log_reset();
	assert_int_equal(pt_plan_load_csv(path, 0, &p), PT_EINVAL);
	assert_logged("bad.csv:2: cell 2 '1X1' is not a torch action");
	tu_write_file(path, "0F0,0B0\n0F1,0B1\n", 16);
	tu_log_reset();
	assert_int_equal(pt_plan_load_csv(path, 0, &p), PT_EINVAL);
	assert_logged("stage 0 appears on rank 0 and on rank 1");
	tu_write_file(path, "", 0);
	tu_log_reset();
	assert_int_equal(pt_plan_load_csv(path, 0, &p), PT_EINVAL);
	assert_logged("no compute actions");
	tu_log_reset();
	assert_int_equal(pt_plan_load_csv("/nonexistent/plan.csv", 0, &p), PT_ENOENT);
	assert_logged("/nonexistent/plan.csv: No such file");
	/* an F without its B: the validator names it */
	tu_write_file(path, "0F0,0F1,0B0\n1F0,1B0,1F1,1B1\n", 28);
	tu_log_reset();
	assert_int_equal(pt_plan_load_csv(path, 0, &p), PT_EPLAN);
	assert_logged("microbatch 1: no backward");
	assert_null(p);
}

static void test_schedule_rules(void **state)
{
	(void)state;
	static const struct {
		int sched, P, N;
		const char *msg;
	} bad[] = {
		{PT_SCHED_DUALPIPE, 5, 20, "dualpipe needs an even number of ranks"},
		{PT_SCHED_DUALPIPE, 8, 15, "even number of microbatches, at least 2 x ranks"},
		{PT_SCHED_DUALPIPE, 8, 14, "use an even number >= 16"},
		{PT_SCHED_DUALPIPEV, 4, 7, "dualpipev needs at least 2 x ranks microbatches"},
		{PT_SCHED_1F1B, 8, 7, "1f1b needs at least as many microbatches as ranks"},
		{PT_SCHED_ZB1P, 4, 3, "zb1p needs at least as many microbatches as ranks"},
		{PT_SCHED_INTERLEAVED, 4, 10, "microbatches % group to be 0 or at least ranks"},
		{PT_SCHED_INTERLEAVED, 4, 3, "ranks <= group <= microbatches"},
		{PT_SCHED_1F1B, 0, 3, "--ranks must be at least 1"},
		{PT_SCHED_GPIPE, 2, 0, "--microbatches must be at least 1"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pt_plan_params pp = {.sched = bad[i].sched, .ranks = bad[i].P, .microbatches = bad[i].N};
		pt_plan *p = NULL;
		tu_log_reset();
		assert_int_equal(pt_plan_create(&pp, &p), PT_EINVAL);
		assert_null(p);
		assert_logged(bad[i].msg);
	}
	/* and the smallest legal cases work */
	pt_plan_destroy(make(PT_SCHED_DUALPIPE, 2, 4));
	pt_plan_destroy(make(PT_SCHED_DUALPIPEV, 1, 2));
	pt_plan_destroy(make(PT_SCHED_GPIPE, 1, 1));
	pt_plan_destroy(make(PT_SCHED_ZBV, 4, 3));
	assert_int_equal(pt_sched_parse("zbh1"), PT_SCHED_ZB1P);
	assert_int_equal(pt_sched_parse("nope"), -1);
}

/* Find the step of the first compute op named `name` on rank r. */
static size_t find_op(const pt_plan *p, int r, const char *name)
{
	char n[64];
	for (size_t i = 0; i < p->rank[r].n; i++) {
		pt_op_name(&p->rank[r].ops[i], PT_NAME_SPEC, n, sizeof n);
		if (!strcmp(n, name))
			return i;
	}
	fail_msg("no %s on rank %d", name, r);
	return 0;
}

static void test_validator_rejects_broken_plans(void **state)
{
	(void)state;
	/* a swapped op: I0:3 moved before its forward F0:3 on rank 0 */
	pt_plan *p = make(PT_SCHED_ZB1P, 4, 8);
	size_t f = find_op(p, 0, "F0:3"), i = find_op(p, 0, "I0:3");
	pt_op tmp = p->rank[0].ops[f];
	p->rank[0].ops[f] = p->rank[0].ops[i];
	p->rank[0].ops[i] = tmp;
	tu_log_reset();
	assert_int_equal(pt_plan_validate(p), PT_EPLAN);
	assert_logged("rank 0, step");
	assert_logged("(I0:3): backward before its forward");
	pt_plan_destroy(p);

	/* a missing W */
	p = make(PT_SCHED_ZB1P, 4, 8);
	size_t w = find_op(p, 2, "W0:5");
	memmove(&p->rank[2].ops[w], &p->rank[2].ops[w + 1], (p->rank[2].n - w - 1) * sizeof(pt_op));
	p->rank[2].n--;
	tu_log_reset();
	assert_int_equal(pt_plan_validate(p), PT_EPLAN);
	assert_logged("rank 2, chunk 0 (stage 2), microbatch 5: an I without its W");
	pt_plan_destroy(p);

	/* a mismatched send: rank 1's third activation send names the wrong microbatch */
	p = make(PT_SCHED_DUALPIPE, 4, 8);
	int k = 0;
	for (size_t j = 0; j < p->rank[1].n; j++) {
		pt_op *o = &p->rank[1].ops[j];
		if (o->kind == PT_OP_SEND && o->payload == PT_ACT && o->peer == 2 && k++ == 2) {
			o->mb = 3;
			break;
		}
	}
	tu_log_reset();
	assert_int_equal(pt_plan_validate(p), PT_EPLAN);
	assert_logged("sends an activation before the forward that makes it");
	pt_plan_destroy(p);

	/* a message the receiver never takes */
	p = make(PT_SCHED_1F1B, 2, 2);
	for (size_t j = 0; j < p->rank[1].n; j++) {
		if (p->rank[1].ops[j].kind == PT_OP_RECV && p->rank[1].ops[j].mb == 1) {
			p->rank[1].ops[j].payload = PT_GRAD; /* now nobody sends it; the forward lacks its input */
			break;
		}
	}
	tu_log_reset();
	assert_int_equal(pt_plan_validate(p), PT_EPLAN);
	assert_logged("(F0:1): no earlier receive of its input activation from rank 0");
	pt_plan_destroy(p);

	/* a deadlock: rank 0 holds activation 1 back until it has gradient 0,
	 * which rank 1 sends only after the forward that needs activation 1 */
	pt_plan *d;
	assert_int_equal(pt_plan_alloc(PT_SCHED_CSV, 2, 1, 1, 2, &d), 0);
	d->microbatches = d->mbs[0] = 2;
	pt_plan_place(d, 0, 0, 0, 0);
	pt_plan_place(d, 1, 0, 0, 1);
	struct {
		int rank, kind, payload, mb, peer, seq, batch;
	} steps[] = {
		{0, PT_OP_F, 0, 0, -1, -1, -1},	       {0, PT_OP_SEND, PT_ACT, 0, 1, 0, 0},
		{0, PT_OP_F, 0, 1, -1, -1, -1},	       {0, PT_OP_RECV, PT_GRAD, 0, 1, 0, 1},
		{0, PT_OP_B, 0, 0, -1, -1, -1},	       {0, PT_OP_SEND, PT_ACT, 1, 1, 1, 2},
		{0, PT_OP_RECV, PT_GRAD, 1, 1, 1, 2},   {0, PT_OP_B, 0, 1, -1, -1, -1},
		{1, PT_OP_RECV, PT_ACT, 0, 0, 0, 0},    {1, PT_OP_F, 0, 0, -1, -1, -1},
		{1, PT_OP_RECV, PT_ACT, 1, 0, 1, 1},    {1, PT_OP_F, 0, 1, -1, -1, -1},
		{1, PT_OP_B, 0, 0, -1, -1, -1},	       {1, PT_OP_SEND, PT_GRAD, 0, 0, 0, 2},
		{1, PT_OP_B, 0, 1, -1, -1, -1},	       {1, PT_OP_SEND, PT_GRAD, 1, 0, 1, 3},
	};
	for (size_t j = 0; j < sizeof steps / sizeof steps[0]; j++) {
		pt_op o = pt_op_make(steps[j].kind, 0, steps[j].mb);
		o.payload = (uint8_t)steps[j].payload;
		o.peer = steps[j].peer;
		o.seq = steps[j].seq;
		o.batch = steps[j].batch;
		assert_int_equal(pt_plan_push(d, steps[j].rank, &o), 0);
	}
	tu_log_reset();
	assert_int_equal(pt_plan_validate(d), PT_EPLAN);
	assert_logged("plan deadlocks: 2 of 2 ranks cannot finish");
	assert_logged("r1 at step 2 (rA0:1<0) waits for rA0:1<0, which rank 0 never gets to");
	pt_plan_destroy(d);
}

/* The step of rank r's forward of (chunk, mb): an F, or an FB whose forward
 * half it is. */
static size_t find_forward(const pt_plan *p, int r, int chunk, int mb)
{
	for (size_t i = 0; i < p->rank[r].n; i++) {
		const pt_op *o = &p->rank[r].ops[i];
		if ((o->kind == PT_OP_F || o->kind == PT_OP_FB) && o->chunk == chunk && o->mb == mb)
			return i;
	}
	fail_msg("no forward of chunk %d, microbatch %d on rank %d", chunk, mb, r);
	return 0;
}

/* Rank r of the plan at arg as pt_plan_check_ranks takes it: a malloc'ed copy. */
static int copy_rank(void *arg, int r, pt_op **ops, size_t *n)
{
	const pt_rank_plan *rp = &((const pt_plan *)arg)->rank[r];
	*n = rp->n;
	*ops = malloc((rp->n ? rp->n : 1) * sizeof **ops);
	if (!*ops)
		return PT_ENOMEM;
	memcpy(*ops, rp->ops, rp->n * sizeof **ops);
	return 0;
}

/* p is refused (PT_EPLAN) by pt_plan_validate and, with the same message, by
 * pt_plan_check_ranks, the checks `stats` runs a rank at a time on a trace's
 * plan; the log then holds the latter's. */
static void assert_refused(const pt_plan *p)
{
	tu_log_reset();
	assert_int_equal(pt_plan_validate(p), PT_EPLAN);
	char *whole = strdup(tu_log_buf);
	assert_non_null(whole);
	tu_log_reset();
	assert_int_equal(pt_plan_check_ranks(p, copy_rank, (void *)p), PT_EPLAN);
	if (strcmp(whole, tu_log_buf))
		fail_msg("pt_plan_validate said:\n%spt_plan_check_ranks said:\n%s", whole, tu_log_buf);
	free(whole);
}

/* Plans as a corrupt or foreign trace gives them back (pt_plan_from_trace,
 * or stats' rank-at-a-time reading): kinds no plan has, chunks at no stage.
 * Each is refused by name on both paths, before anything indexes by it (the
 * counts once wrote past their table). */
static void test_validator_rejects_foreign_plans(void **state)
{
	(void)state;
	char want[160];
	/* an activity kind in place of an op whose (pipeline, stage,
	 * microbatch) is the last of the counts: DualPipe P=4 puts rank 0's
	 * chunk 1 at pipeline 1, stage 3, and microbatch 3 is its last */
	for (int k = PT_OP_KERNEL; k < PT_OP_KIND_MAX; k++) {
		pt_plan *p = make(PT_SCHED_DUALPIPE, 4, 8);
		size_t i = find_forward(p, 0, 1, 3);
		p->rank[0].ops[i].kind = (uint8_t)k;
		assert_refused(p);
		snprintf(want, sizeof want, "invalid plan: rank 0, step %zu (%s): a %s is activity below the ops", i,
			 pt_kind_name(k), pt_kind_name(k));
		assert_logged(want);
		pt_plan_destroy(p);
	}
	/* a kind nobody knows, and none at all */
	int odd[] = {PT_OP_NONE, PT_OP_KIND_MAX, 200};
	for (size_t j = 0; j < sizeof odd / sizeof odd[0]; j++) {
		pt_plan *p = make(PT_SCHED_1F1B, 4, 8);
		p->rank[3].ops[2].kind = (uint8_t)odd[j];
		assert_refused(p);
		snprintf(want, sizeof want, "invalid plan: rank 3, step 2 (?): unknown op kind %d", odd[j]);
		assert_logged(want);
		pt_plan_destroy(p);
	}

	/* a chunk at no stage (pt_plan_alloc's -1, -1): its pipeline's
	 * microbatch count and first cell were read at index -1 */
	pt_plan *p = make(PT_SCHED_1F1B, 2, 2);
	p->chunk[1] = (pt_chunk_info){1, 0, -1, -1};
	p->holder[1] = -1;
	assert_refused(p);
	assert_logged("invalid plan: rank 1, chunk 0 is not placed on any stage");
	pt_plan_destroy(p);

	/* a chunk past the plan's pipelines: its cells lay past the counts */
	p = make(PT_SCHED_1F1B, 2, 2);
	p->chunk[1].pipe = 1;
	assert_refused(p);
	assert_logged("invalid plan: rank 1, chunk 0 sits at pipeline 1, stage 1; the plan has 1 pipeline(s) of 2 "
		      "stages");
	pt_plan_destroy(p);

	/* two chunks at one stage, none at the other */
	p = make(PT_SCHED_1F1B, 2, 2);
	pt_plan_place(p, 1, 0, 0, 0);
	p->holder[1] = -1;
	assert_refused(p);
	assert_logged("invalid plan: rank 0, chunk 0 and rank 1, chunk 0 both sit at pipeline 0, stage 0");
	pt_plan_destroy(p);

	/* a stage nobody holds while every chunk sits somewhere else */
	p = make(PT_SCHED_1F1B, 2, 2);
	p->nstages = 3;
	int *h = realloc(p->holder, 3 * sizeof *h);
	assert_non_null(h);
	p->holder = h;
	h[2] = -1;
	assert_refused(p);
	assert_logged("invalid plan: no chunk holds pipeline 0, stage 2");
	pt_plan_destroy(p);

	/* a message carrying neither an activation nor a gradient */
	p = make(PT_SCHED_1F1B, 2, 2);
	size_t s = 0;
	while (p->rank[0].ops[s].kind != PT_OP_SEND)
		s++;
	p->rank[0].ops[s].payload = 7;
	assert_refused(p);
	snprintf(want, sizeof want, "invalid plan: rank 0, step %zu (", s);
	assert_logged(want);
	assert_logged("): payload 7 is neither an activation nor a gradient");
	pt_plan_destroy(p);
}

/* spec §1.2: DualPipe's batches never deadlock, even under strict rendezvous */
static void test_dualpipe_strict_rendezvous(void **state)
{
	(void)state;
	pt_cost cost = pt_cost_default();
	for (int P = 2; P <= 16; P += 2) {
		for (int N = 2 * P; N <= 2 * P + 11; N += 2) {
			pt_plan *p = make(PT_SCHED_DUALPIPE, P, N);
			pt_sim *sim = NULL;
			tu_log_reset();
			int err = pt_sim_run_ex(p, &cost, PT_COMM_FLUSH, 1, &sim);
			if (err)
				fail_msg("DualPipe P=%d N=%d deadlocks under strict rendezvous:\n%s", P, N, tu_log_buf);
			pt_sim_destroy(sim);
			pt_plan_destroy(p);
		}
	}
	for (int P = 1; P <= 16; P++) {
		for (int N = 2 * P; N <= 2 * P + 11; N++) {
			pt_plan *p = make(PT_SCHED_DUALPIPEV, P, N);
			pt_sim *sim = NULL;
			tu_log_reset();
			assert_int_equal(pt_sim_run_ex(p, &cost, PT_COMM_FLUSH, 1, &sim), 0);
			pt_sim_destroy(sim);
			pt_plan_destroy(p);
		}
	}
}

/* every schedule validates over a range of sizes */
static void test_all_schedules_validate(void **state)
{
	(void)state;
	for (int s = 0; s < PT_SCHED_COUNT; s++) {
		for (int P = 1; P <= 8; P++) {
			for (int N = 1; N <= 3 * P + 2; N++) {
				pt_plan_params pp = {.sched = s, .ranks = P, .microbatches = N};
				pt_plan *p = NULL;
				tu_log_reset();
				int err = pt_plan_create(&pp, &p);
				if (err && err != PT_EINVAL)
					fail_msg("%s P=%d N=%d: %s\n%s", pt_sched_name(s), P, N, pt_strerror(err),
						 tu_log_buf);
				pt_plan_destroy(p);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dualpipe_appendix_a),
		cmocka_unit_test(test_dualpipev_appendix_b),
		cmocka_unit_test(test_dualpipe_appendix_c),
		cmocka_unit_test(test_dualpipe_worked_example),
		cmocka_unit_test(test_dualpipev_is_half_of_dualpipe),
		cmocka_unit_test(test_baselines_match_spec_csvs),
		cmocka_unit_test(test_csv_reader),
		cmocka_unit_test(test_csv_reader_errors),
		cmocka_unit_test(test_schedule_rules),
		cmocka_unit_test(test_validator_rejects_broken_plans),
		cmocka_unit_test(test_validator_rejects_foreign_plans),
		cmocka_unit_test(test_dualpipe_strict_rendezvous),
		cmocka_unit_test(test_all_schedules_validate),
	};
	int rc = cmocka_run_group_tests_name("plan", tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
