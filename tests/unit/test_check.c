/*
 * tests/unit/test_check.c — the CI gate's engine and its reports: a trace
 * against its own `stats --json` passes; verdicts at and past each kind of
 * tolerance (relative, absolute, per rank, off, undefined); the tolerance
 * syntax and its errors; baselines refused with a message naming the file,
 * the byte or the field at fault; JUnit and Markdown escaped and written
 * whole or not at all.
 */
#include <dirent.h>
#include <math.h>

#include "tu_sim.h"

static char trace_path[512];

/* zb1p on 4 ranks, 8 microbatches, default costs: makespan 27 ms, each
 * rank's bubble 3 ms, peak activations 4, no communication time. */
static int setup(void **state)
{
	(void)state;
	pt_plan *p = tu_plan(PT_SCHED_ZB1P, 4, 8, 0);
	pt_cost c = pt_cost_default();
	tu_record_sim(p, &c, PT_COMM_FLUSH, "zb.db", trace_path, sizeof trace_path);
	pt_plan_destroy(p);
	return 0;
}

/* A baseline with these figures (per-rank bubble all `rank_bubble`). */
static const char *baseline(const char *name, const char *sched, int ranks, int mbs, long long span, double bubble,
			    const char *overlap, long long exposed, long long rank_bubble, int peak)
{
	static char path[512];
	tu_path(path, sizeof path, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"schedule\": \"%s\", \"ranks\": %d, \"microbatches\": %d, \"makespan_ns\": %lld,\n"
		   " \"bubble_ratio\": %.9g, \"overlap_ratio\": %s, \"exposed_comm_ns\": %lld, \"per_rank\": [",
		sched, ranks, mbs, span, bubble, overlap, exposed);
	for (int r = 0; r < ranks; r++)
		fprintf(f, "%s{\"rank\": %d, \"bubble_ns\": %lld, \"peak_activations\": %d}", r ? ", " : "", r,
			rank_bubble, peak);
	fprintf(f, "]}\n");
	fclose(f);
	return path;
}

static int run_check(const char *base, const char *const *tols, int ntols, pt_check **out)
{
	pt_trace *t;
	pt_metrics *m = tu_metrics(trace_path, &t);
	tu_log_reset();
	int err = pt_check_create(base, t, m, tols, ntols, out);
	pt_metrics_destroy(m);
	pt_trace_close(t);
	return err;
}

static const pt_check_row *row(const pt_check *c, const char *name)
{
	for (int i = 0; i < c->nrows; i++)
		if (!strcmp(c->row[i].name, name))
			return &c->row[i];
	fail_msg("no row %s", name);
	return NULL;
}

/* The trace against its own stats --json: every metric holds. */
static void test_identical(void **state)
{
	(void)state;
	char base[512];
	tu_path(base, sizeof base, "self.json");
	pt_trace *t;
	pt_metrics *m = tu_metrics(trace_path, &t);
	FILE *f = fopen(base, "w");
	assert_int_equal(pt_metrics_print_json(t, m, f), 0);
	fclose(f);
	pt_check *c;
	const char *zero[] = {"makespan_ns=+0,bubble_ratio=+0,rank_bubble_ns=+0,overlap_ratio=-0,exposed_comm_ns=+0"};
	tu_log_reset();
	assert_int_equal(pt_check_create(base, t, m, zero, 1, &c), 0);
	assert_int_equal(c->nrows, 5 + 4);
	assert_int_equal(c->nregress, 0);
	for (int i = 0; i < c->nrows; i++)
		assert_true(c->row[i].verdict == PT_CHECK_OK ||
			    (c->row[i].verdict == PT_CHECK_NA && !strcmp(c->row[i].name, "overlap_ratio")));
	assert_int_equal(row(c, "makespan_ns")->base, 27000000);
	pt_check_destroy(c);
	pt_metrics_destroy(m);
	pt_trace_close(t);
}

/* Each default tolerance, on both sides of its limit. */
static void test_verdicts(void **state)
{
	(void)state;
	pt_check *c;
	/* makespan +2%: 27 ms is within 2% of 26.470589 ms, not of 26.470588 */
	assert_int_equal(run_check(baseline("a.json", "zb1p", 4, 8, 26470589, 0.111111111, "null", 0, 3000000, 4), NULL,
				   0, &c),
			 0);
	assert_int_equal(row(c, "makespan_ns")->verdict, PT_CHECK_OK);
	assert_int_equal(row(c, "overlap_ratio")->verdict, PT_CHECK_NA);
	assert_int_equal(c->nregress, 0);
	pt_check_destroy(c);
	assert_int_equal(run_check(baseline("b.json", "zb1p", 4, 8, 26470588, 0.111111111, "null", 0, 3000000, 4), NULL,
				   0, &c),
			 0);
	assert_int_equal(row(c, "makespan_ns")->verdict, PT_CHECK_REGRESSION);
	assert_int_equal(c->nregress, 1);
	pt_check_destroy(c);
	/* bubble_ratio +0.005 absolute (current 0.1111…); rank bubble +5% of
	 * 2.9 ms; peak +0; exposed +5% of 0 */
	assert_int_equal(run_check(baseline("c.json", "zb1p", 4, 8, 27000000, 0.106, "null", 0, 2900000, 3), NULL, 0,
				   &c),
			 0);
	assert_int_equal(row(c, "bubble_ratio")->verdict, PT_CHECK_REGRESSION);
	assert_int_equal(row(c, "rank_bubble_ns[2]")->verdict, PT_CHECK_OK);
	assert_int_equal(row(c, "peak_activations")->verdict, PT_CHECK_REGRESSION);
	assert_int_equal(row(c, "exposed_comm_ns")->verdict, PT_CHECK_OK);
	pt_check_destroy(c);
	/* better beyond the tolerance; a per-rank tolerance; off */
	const char *tols[] = {"rank_bubble_ns=+10%", "rank_bubble_ns[3]=+1%,peak_activations=off",
			      "makespan_ns=+1ms"};
	assert_int_equal(run_check(baseline("d.json", "zb1p", 4, 8, 29000000, 0.2, "null", 0, 2800000, 3), tols, 3, &c),
			 0);
	assert_int_equal(row(c, "makespan_ns")->verdict, PT_CHECK_BETTER);
	assert_int_equal(row(c, "bubble_ratio")->verdict, PT_CHECK_BETTER);
	assert_int_equal(row(c, "rank_bubble_ns[0]")->verdict, PT_CHECK_OK); /* +7.1% < 10% */
	assert_int_equal(row(c, "rank_bubble_ns[3]")->verdict, PT_CHECK_REGRESSION);
	assert_int_equal(row(c, "peak_activations")->verdict, PT_CHECK_OFF);
	assert_true(row(c, "makespan_ns")->limit == 30000000);
	assert_int_equal(c->nregress, 1);
	pt_check_destroy(c);
	/* overlap: lower is worse; a baseline with communication, a trace without */
	assert_int_equal(run_check(baseline("e.json", "zb1p", 4, 8, 27000000, 0.111111111, "0.5", 100, 3000000, 4),
				   NULL, 0, &c),
			 0);
	assert_int_equal(row(c, "overlap_ratio")->verdict, PT_CHECK_NA);
	assert_int_equal(row(c, "overlap_ratio")->worse, -1);
	assert_int_equal(row(c, "exposed_comm_ns")->verdict, PT_CHECK_BETTER);
	pt_check_destroy(c);
}

static void test_tolerance_syntax(void **state)
{
	(void)state;
	const char *base = baseline("t.json", "zb1p", 4, 8, 27000000, 0.111111111, "null", 0, 3000000, 4);
	static const struct {
		const char *tol, *msg;
	} bad[] = {
		{"bubble_ratio", "is not METRIC=VALUE"},
		{"frob=1", "unknown metric 'frob'"},
		{"bubble_ratio=-0.01", "a regression of bubble_ratio is an increase, so its tolerance is written +0.01"},
		{"overlap_ratio=+0.01", "is a decrease, so its tolerance is written -0.01"},
		{"makespan_ns=+1fortnight", "unknown unit"},
		{"bubble_ratio=+1ms", "is not a tolerance"},
		{"bubble_ratio=++1", "is not a tolerance"},
		{"bubble_ratio=+nan", "is not a tolerance"},
		{"rank_bubble_ns[x]=+1%", "a rank is written rank_bubble_ns[3]"},
		{"makespan_ns[1]=+1%", "unknown metric"},
		{"rank_bubble_ns[7]=+1%", "has no such rank"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pt_check *c = (pt_check *)1;
		const char *tols[] = {bad[i].tol};
		assert_int_equal(run_check(base, tols, 1, &c), PT_EINVAL);
		assert_null(c);
		assert_logged(bad[i].msg);
	}
	pt_check *c;
	const char *good[] = {"bubble_ratio=0.01,makespan_ns=+2.5%", "exposed_comm_ns=+250us,overlap_ratio=off"};
	assert_int_equal(run_check(base, good, 2, &c), 0);
	assert_true(fabs(row(c, "bubble_ratio")->tol - 0.01) < 1e-12);
	assert_true(row(c, "makespan_ns")->rel && fabs(row(c, "makespan_ns")->tol - 0.025) < 1e-12);
	assert_true(row(c, "exposed_comm_ns")->tol == 250000 && !row(c, "exposed_comm_ns")->rel);
	assert_int_equal(row(c, "overlap_ratio")->verdict, PT_CHECK_OFF);
	pt_check_destroy(c);
	char defs[256];
	pt_check_defaults(defs, sizeof defs);
	assert_string_equal(defs, "makespan_ns=+2%,bubble_ratio=+0.005,rank_bubble_ns=+5%,overlap_ratio=-0.01,"
				  "exposed_comm_ns=+5%,peak_activations=+0");
}

static const char *write_text(const char *name, const char *text)
{
	static char path[512];
	tu_path(path, sizeof path, name);
	tu_write_file(path, text, strlen(text));
	return path;
}

/* Baselines that are refused, and what the message says. */
static void test_bad_baselines(void **state)
{
	(void)state;
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{"{\"schedule\": \"zb1p\",, }", "not valid JSON at byte 21 (line 1, column 22)"},
		{"{\"schedule\": \"zb1p\",\n \"ranks\": 4", "not valid JSON at byte 32 (line 2, column 12): premature EOF"},
		{"", "empty file"},
		{"[1, 2]", "expected a JSON object"},
		{"{\"traces\": [{}, {}]}", "holds 2 traces"},
		{"{\"ranks\": 4}", "schedule is missing"},
		{"{\"schedule\": 3}", "schedule: expected a string, found an integer"},
		{"{\"schedule\": \"zb1p\", \"ranks\": 4, \"microbatches\": 8, \"makespan_ns\": 1.5}",
		 "makespan_ns: expected an integer, found a number"},
		{"{\"schedule\": \"zb1p\", \"ranks\": 4, \"microbatches\": 8, \"makespan_ns\": 1, \"bubble_ratio\": 0.1, "
		 "\"overlap_ratio\": \"x\"}",
		 "overlap_ratio: expected a number or null, found a string"},
		{"{\"schedule\": \"zb1p\", \"ranks\": 4, \"microbatches\": 8, \"makespan_ns\": 1, \"bubble_ratio\": 0.1, "
		 "\"overlap_ratio\": null, \"exposed_comm_ns\": 0, \"per_rank\": [{}, {}, {}, {}]}",
		 "per_rank[0].rank is missing"},
		{"{\"schedule\": \"zb1p\", \"ranks\": 4, \"microbatches\": 8, \"makespan_ns\": 1, \"bubble_ratio\": 0.1, "
		 "\"overlap_ratio\": null, \"exposed_comm_ns\": 0, \"per_rank\": [1]}",
		 "says 4 ranks but per_rank has 1 entries"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		pt_check *c;
		int err = run_check(write_text("bad.json", bad[i].text), NULL, 0, &c);
		if (err != PT_EINVAL)
			fail_msg("case %zu: %d, log:\n%s", i, err, tu_log_buf);
		assert_logged("bad.json: ");
		assert_logged(bad[i].msg);
	}
	pt_check *c;
	assert_int_equal(run_check(baseline("s.json", "1f1b", 4, 8, 1, 0.1, "null", 0, 1, 1), NULL, 0, &c), PT_EINVAL);
	assert_logged("s.json is a baseline of 1f1b, ");
	assert_logged("zb.db is zb1p: refusing to compare two schedules");
	assert_int_equal(run_check(baseline("r.json", "zb1p", 8, 8, 1, 0.1, "null", 0, 1, 1), NULL, 0, &c), PT_EINVAL);
	assert_logged("baseline of 8 ranks and 8 microbatches");
	assert_logged("has 4 ranks and 8: refusing to compare runs of different sizes");
	assert_int_equal(run_check(baseline("n.json", "zb1p", 4, 12, 1, 0.1, "null", 0, 1, 1), NULL, 0, &c), PT_EINVAL);
	assert_logged("4 ranks and 12 microbatches");
	char missing[512];
	assert_int_equal(run_check(tu_path(missing, sizeof missing, "none.json"), NULL, 0, &c), PT_ENOENT);
	assert_logged("none.json: cannot read the baseline");
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static int tmp_files_left(void)
{
	DIR *d = opendir(tu_tmpdir());
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".tmp") != NULL;
	closedir(d);
	return n;
}

/* Reports: one test case per metric, the numbers in failures, names
 * escaped, and nothing left behind when the path cannot be written. */
static void test_reports(void **state)
{
	(void)state;
	pt_check *c;
	assert_int_equal(run_check(baseline("j.json", "zb1p", 4, 8, 20000000, 0.111111111, "null", 0, 3000000, 4), NULL,
				   0, &c),
			 0);
	char path[512];
	const char *odd = "runs/a&b <\"c\"> 'd'|e.db";
	tu_path(path, sizeof path, "report.xml");
	assert_int_equal(pt_check_write_junit(c, odd, "j.json", path), 0);
	char *xml = tu_read_file(path, NULL);
	assert_non_null(xml);
	assert_int_equal(count(xml, "<testcase "), c->nrows);
	assert_int_equal(count(xml, "<failure "), 1);
	assert_int_equal(count(xml, "<skipped "), 1); /* overlap: no communication */
	assert_non_null(strstr(xml, "tests=\"9\" failures=\"1\""));
	assert_non_null(strstr(xml, "runs/a&amp;b &lt;&quot;c&quot;&gt; &apos;d&apos;|e.db"));
	assert_non_null(strstr(xml, "makespan_ns: baseline 20000000, current 27000000, delta +7000000; allowed up to "
				    "20400000 (tolerance +2%)"));
	free(xml);
	tu_path(path, sizeof path, "report.md");
	assert_int_equal(pt_check_write_markdown(c, odd, "j.json", path), 0);
	char *md = tu_read_file(path, NULL);
	assert_non_null(md);
	assert_non_null(strstr(md, "1 of 9 metrics regressed"));
	assert_non_null(strstr(md, "a&b \\<\"c\"\\> 'd'\\|e.db"));
	assert_int_equal(count(md, "\n| `"), c->nrows);
	assert_non_null(strstr(md, "| `makespan_ns` | 20.000 ms | 27.000 ms | +7.000 ms (+35.00%) | +2% |"));
	free(md);
	tu_log_reset();
	tu_path(path, sizeof path, "no/such/dir/report.xml");
	assert_int_equal(pt_check_write_junit(c, "t.db", "j.json", path), PT_ENOENT);
	assert_logged("report.xml: cannot write here");
	assert_int_equal(tmp_files_left(), 0);
	pt_check_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_identical),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_tolerance_syntax),
		cmocka_unit_test(test_bad_baselines),
		cmocka_unit_test(test_reports),
	};
	int rc = cmocka_run_group_tests_name("check", tests, setup, NULL);
	tu_tmp_cleanup();
	return rc;
}
