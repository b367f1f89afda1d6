/*
 * tests/unit/test_viewer.c — the viewer: the terminal grid read back against
 * the plan it was drawn from (trace and plan alone), its width and its
 * hygiene (plain ASCII, no escape sequence from a trace's names), the lanes
 * a trace with GPU activity gives, and the HTML report: names full of markup
 * escaped in the embedded JSON yet intact once parsed, one file per report,
 * nothing left behind on failure.
 */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <yajl/yajl_tree.h>

#include "../tools/synth.h"
#include "viewer/viewer.h"

/* plan -> sim -> trace.db at path */
static pt_plan *record(int sched, int P, int N, const char *name, char *path, size_t size)
{
	tu_path(path, size, name);
	pt_plan_params pp = {.sched = sched, .ranks = P, .microbatches = N};
	pt_plan *plan;
	tu_log_reset();
	assert_int_equal(pt_plan_create(&pp, &plan), 0);
	pt_cost cost = pt_cost_default();
	pt_sim *sim;
	assert_int_equal(pt_sim_run(plan, &cost, PT_COMM_FLUSH, &sim), 0);
	pt_rec *rec;
	pt_rec_opts ro = {.clock = PT_CLOCK_VIRTUAL, .overwrite = 1};
	assert_int_equal(pt_rec_create(path, &ro, &rec), 0);
	pt_run_info info = {.backend = "sim", .comm_mode = PT_COMM_FLUSH, .cost = &cost};
	assert_int_equal(pt_run_begin(rec, plan, &info), 0);
	assert_int_equal(pt_sim_emit(sim, rec), 0);
	assert_int_equal(pt_rec_close(rec), 0);
	pt_sim_destroy(sim);
	return plan;
}

/* The grid of a trace, as `pipetrace view` draws it, into a string. */
static char *grid_of_trace(const char *path, int width, int color, int comm)
{
	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_metrics *m;
	assert_int_equal(pt_metrics_compute(t, &m), 0);
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	int64_t q[] = {1000000, 2000000, 3000000};
	pt_grid_opts o = {.width = width, .color = color, .comm = comm, .t0 = m->win_start, .t1 = m->win_end,
			  .quantum = pt_grid_quantum(q, 3)};
	assert_int_equal(pt_grid_begin(out, &o, "test"), 0);
	for (int i = 0; i < m->nranks; i++) {
		pt_vrank r;
		assert_int_equal(pt_vrank_load(t, m->rank[i].rank, &r), 0);
		assert_int_equal(pt_grid_rank(out, &o, &r), 0);
		pt_vrank_fini(&r);
	}
	pt_grid_summary s = {.bubble_ratio = m->bubble_ratio, .theory_ratio = NAN, .overlap_ratio = NAN};
	assert_int_equal(pt_grid_end(out, &o, &s), 0);
	fclose(out);
	pt_metrics_destroy(m);
	pt_trace_close(t);
	return buf;
}

/* The cells of rank r's row in a plain grid, in order (labels as drawn). */
static int row_cells(const char *grid, int r, char cells[][32], int max)
{
	char head[16];
	snprintf(head, sizeof head, "r%d ", r);
	const char *p = grid;
	while (p && strncmp(p, head, strlen(head)))
		p = (p = strchr(p, '\n')) ? p + 1 : NULL;
	assert_non_null(p);
	p += 9; /* the label column */
	int n = 0;
	while (*p && *p != '\n' && n < max) {
		if (*p == ' ' || *p == '.') {
			p++;
			continue;
		}
		/* a cell starts with its kind's letter; FB pairs carry a second letter after '|' */
		int len = 1;
		while (p[len] && p[len] != '\n' && p[len] != ' ' && p[len] != '.' &&
		       !(strchr("FBIWfbiw&", p[len]) && p[len - 1] != '|'))
			len++;
		snprintf(cells[n++], 32, "%.*s", len, p);
		p += len;
	}
	return n;
}

/* What a cell of op must read at any width: its name, or its short forms. */
static int cell_matches(const char *cell, const pt_op *op)
{
	char full[64], shrt[32];
	pt_op_name(op, PT_NAME_SPEC, full, sizeof full);
	if (!strcmp(cell, full))
		return 1;
	char f = "?FBIW"[op->kind == PT_OP_FB ? 1 : op->kind];
	if (op->chunk & 1)
		f = (char)(f - 'A' + 'a');
	if (op->kind == PT_OP_FB) {
		snprintf(shrt, sizeof shrt, "%c%d|%c%d", f, op->mb, op->chunk2 & 1 ? 'b' : 'B', op->mb2);
		char amp[16];
		snprintf(amp, sizeof amp, "&%d", op->mb);
		return !strcmp(cell, shrt) || !strcmp(cell, amp) || !strcmp(cell, "&");
	}
	snprintf(shrt, sizeof shrt, "%c%d", f, op->mb);
	return !strcmp(cell, shrt) || (cell[0] == f && cell[1] == '\0');
}

static void check_order(const char *grid, const pt_plan *plan, int want_full)
{
	static char cells[4096][32];
	for (int r = 0; r < plan->ranks; r++) {
		int n = row_cells(grid, r, cells, 4096), k = 0;
		const pt_rank_plan *rp = &plan->rank[r];
		for (size_t i = 0; i < rp->n; i++) {
			const pt_op *op = &rp->ops[i];
			if (!pt_kind_is_compute(op->kind))
				continue;
			char full[64];
			pt_op_name(op, PT_NAME_SPEC, full, sizeof full);
			if (k >= n)
				fail_msg("r%d: the grid ends before op %s (step %zu)\n%s", r, full, i, grid);
			if (want_full ? strcmp(cells[k], full) != 0 : !cell_matches(cells[k], op))
				fail_msg("r%d: cell %d reads '%s', the plan has %s\n%s", r, k, cells[k], full, grid);
			k++;
		}
		if (k != n)
			fail_msg("r%d: the grid has %d cells, the plan %d compute ops", r, n, k);
	}
}

/* The demo run's grid, read back, is the plan's op order on every rank: in
 * full at a width where every name fits, in short forms at 80 columns. */
static void test_grid_reads_back_the_plan(void **state)
{
	(void)state;
	char path[512];
	pt_plan *plan = record(PT_SCHED_DUALPIPE, 8, 20, "demo.db", path, sizeof path);
	char *wide = grid_of_trace(path, 9 + 66 * 4, 0, 0);
	check_order(wide, plan, 1);
	char *narrow = grid_of_trace(path, 80, 0, 1);
	check_order(narrow, plan, 0);
	/* a plan alone draws the same rows */
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	pt_grid_opts o = {.width = 9 + 66 * 4};
	assert_int_equal(pt_grid_plan(plan, out, &o), 0);
	fclose(out);
	const char *a = strstr(wide, "\nr0 "), *b = strstr(buf, "\nr0 ");
	assert_non_null(a);
	assert_non_null(b);
	size_t rows = (size_t)(strstr(a, "\nF0:3 forward") - a);
	assert_memory_equal(a, b, rows);
	assert_non_null(strstr(buf, "bubble ratio 9.09% (theory 9.09%, (P/2-1)(FB+B-3W))"));
	free(buf);
	free(wide);
	free(narrow);
	pt_plan_destroy(plan);
}

/* Other schedules read back too (one chunk per rank, and two per rank). */
static void test_grid_other_schedules(void **state)
{
	(void)state;
	const int sched[] = {PT_SCHED_1F1B, PT_SCHED_ZB1P, PT_SCHED_GPIPE, PT_SCHED_DUALPIPEV, PT_SCHED_ZBV};
	for (size_t i = 0; i < sizeof sched / sizeof sched[0]; i++) {
		char path[512];
		pt_plan *plan = record(sched[i], 4, 8, "other.db", path, sizeof path);
		char *g = grid_of_trace(path, 400, 0, 1);
		check_order(g, plan, 1);
		free(g);
		g = grid_of_trace(path, 80, 0, 0);
		check_order(g, plan, 0);
		free(g);
		pt_plan_destroy(plan);
	}
}

/* Every line fits the width; plain output is printable ASCII; colour output
 * only adds SGR sequences. */
static void test_grid_width_and_plainness(void **state)
{
	(void)state;
	char path[512];
	pt_plan *plan = record(PT_SCHED_DUALPIPE, 8, 20, "w.db", path, sizeof path);
	const int widths[] = {40, 80, 100, 133, 200};
	for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
		for (int color = 0; color <= 1; color++) {
			char *g = grid_of_trace(path, widths[w], color, 1);
			int col = 0, lines = 0;
			for (const unsigned char *p = (const unsigned char *)g; *p; p++) {
				if (*p == '\n') {
					lines++;
					col = 0;
					continue;
				}
				if (*p == 0x1b) {
					assert_true(color);
					assert_int_equal(p[1], '[');
					p += 2;
					while (*p && *p != 'm')
						assert_true(strchr("0123456789;", *p++) != NULL);
					continue;
				}
				if (!color)
					assert_true(*p >= 0x20 && *p < 0x7f);
				if ((*p & 0xc0) != 0x80) /* count characters, not UTF-8 bytes */
					col++;
				/* the legend lines may be longer; the title and grid rows must fit */
				if (lines < 2 + 2 * 8 && col > widths[w])
					fail_msg("width %d colour %d: line %d is wider:\n%s", widths[w], color, lines, g);
			}
			free(g);
		}
	}
	pt_plan_destroy(plan);
}

/* A trace's names reach the terminal with no control character in them. */
static void test_grid_names_cannot_drive_the_terminal(void **state)
{
	(void)state;
	char path[512];
	tu_path(path, sizeof path, "esc.db");
	pt_rec *rec;
	assert_int_equal(synth_begin(path, &rec), 0);
	pt_rec_meta(rec, "schedule", "\x1b]0;owned\x07\x1b[2J");
	pt_rank_info ri = {.rank = 0, .theory_bubble_ns = -1, .theory_peak_act = -1, .nchunks = 1};
	assert_int_equal(pt_rec_rank(rec, &ri), 0);
	assert_int_equal(pt_rec_stream(rec, 0, 0, PT_STREAM_COMPUTE, "compute"), 0);
	assert_int_equal(pt_rec_stream(rec, 0, 7, PT_STREAM_COMPUTE, "\x1b[31mred\xc2\x9b" "1m"), 0);
	pt_tbuf *b = pt_rec_thread(rec);
	synth_op(b, 0, 0, PT_OP_F, 0, 0, 0, 1000000);
	synth_activity(b, 0, 7, PT_OP_KERNEL, pt_rec_intern(rec, "\x1b[2Jk"), 0, 500000);
	assert_int_equal(pt_rec_close(rec), 0);

	pt_trace *t;
	assert_int_equal(pt_trace_open(path, &t), 0);
	pt_vrank r;
	assert_int_equal(pt_vrank_load(t, 0, &r), 0);
	assert_int_equal(r.nlanes, 2);
	assert_int_equal(r.lane[0].kind, PT_LANE_OPS);
	assert_int_equal(r.lane[1].kind, PT_LANE_GPU);
	assert_int_equal(r.lane[1].stream, 7);
	assert_string_equal(r.lane[1].label, "\x1b[31mred\xc2\x9b" "1m");
	for (int color = 0; color <= 1; color++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *out = open_memstream(&buf, &len);
		pt_grid_opts o = {.width = 60, .color = color, .t0 = 0, .t1 = 1000000};
		assert_int_equal(pt_grid_begin(out, &o, pt_trace_meta(t, "schedule")), 0);
		assert_int_equal(pt_grid_rank(out, &o, &r), 0);
		fclose(out);
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)buf[i];
			if (c == 0x1b) { /* only our own SGR: ESC [ digits ; m */
				assert_true(color);
				size_t j = i + 1;
				assert_int_equal(buf[j++], '[');
				while (j < len && strchr("0123456789;", buf[j]))
					j++;
				assert_int_equal(buf[j], 'm');
			}
			assert_true(c != 0x07 && !(c == 0xc2 && (unsigned char)buf[i + 1] == 0x9b));
		}
		assert_null(strstr(buf, "\x1b[2J"));
		free(buf);
	}
	pt_vrank_fini(&r);
	pt_trace_close(t);
}

static char *json_block(const char *html)
{
	const char *a = strstr(html, "id=\"pt-data\">");
	assert_non_null(a);
	a = strchr(a, '>') + 1;
	const char *b = strstr(a, "</script>");
	assert_non_null(b);
	return strndup(a, (size_t)(b - a));
}

static int count(const char *s, const char *needle)
{
	int n = 0;
	for (const char *p = s; (p = strcasestr(p, needle)); p++)
		n++;
	return n;
}

/* Names full of markup: escaped in the page, intact in the data. */
static void test_html_escapes_every_name(void **state)
{
	(void)state;
	char db[512], html[512];
	tu_path(db, sizeof db, "markup.db");
	tu_path(html, sizeof html, "markup.html");
	assert_int_equal(synth_markup(db), 0);
	pt_trace *t;
	assert_int_equal(pt_trace_open(db, &t), 0);
	pt_html_stats st;
	assert_int_equal(pt_html_write(&t, 1, html, NULL, &st), 0);
	pt_trace_close(t);
	assert_int_equal(st.events, 2 * 8 * 2);
	size_t len;
	char *page = tu_read_file(html, &len);
	assert_non_null(page);
	assert_int_equal((int64_t)len, st.bytes);
	/* the page's own two script blocks, and no other */
	assert_int_equal(count(page, "<script"), 2);
	assert_int_equal(count(page, "</script"), 2);
	assert_null(strstr(page, "<img"));
	assert_null(strstr(page, "\xe2\x80\xa8"));
	assert_null(strstr(page, "\x1b"));
	char *json = json_block(page);
	assert_null(strchr(json, '<'));
	assert_null(strchr(json, '>'));
	assert_null(strchr(json, '&'));
	assert_non_null(strstr(json, "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"));
	assert_non_null(strstr(json, "\\u2028"));
	/* parsed back, every name is the one recorded */
	char err[256];
	yajl_val root = yajl_tree_parse(json, err, sizeof err);
	if (!root)
		fail_msg("the embedded JSON does not parse: %s", err);
	const char *pnames[] = {"traces", NULL};
	yajl_val traces = yajl_tree_get(root, pnames, yajl_t_array);
	assert_non_null(traces);
	assert_int_equal(traces->u.array.len, 1);
	yajl_val tr = traces->u.array.values[0];
	const char *pn[] = {"names", NULL}, *pm[] = {"meta", "schedule", NULL};
	yajl_val names = yajl_tree_get(tr, pn, yajl_t_array);
	assert_non_null(names);
	const char *sched = YAJL_GET_STRING(yajl_tree_get(tr, pm, yajl_t_string));
	assert_non_null(sched);
	assert_string_equal(sched, SYNTH_MARKUP_SCHEDULE);
	for (size_t i = 0; i < sizeof synth_markup_names / sizeof synth_markup_names[0]; i++) {
		int found = 0;
		for (size_t j = 0; j < names->u.array.len; j++) {
			const char *v = YAJL_GET_STRING(names->u.array.values[j]);
			found |= v && !strcmp(v, synth_markup_names[i]);
		}
		if (!found)
			fail_msg("name %zu (%s) is not in the report's data", i, synth_markup_names[i]);
	}
	yajl_tree_free(root);
	free(json);
	free(page);
}

static int leftovers(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix)) && strstr(e->d_name, ".tmp-") != NULL;
	if (d)
		closedir(d);
	return n;
}

/* Several traces make one report; a failed write leaves nothing; a report
 * replaces the old one whole. */
static void test_html_files(void **state)
{
	(void)state;
	char a[512], b[512], html[512];
	pt_plan *p1 = record(PT_SCHED_DUALPIPE, 4, 8, "a.db", a, sizeof a);
	pt_plan *p2 = record(PT_SCHED_1F1B, 4, 8, "b.db", b, sizeof b);
	pt_trace *t[2];
	assert_int_equal(pt_trace_open(a, &t[0]), 0);
	assert_int_equal(pt_trace_open(b, &t[1]), 0);
	tu_path(html, sizeof html, "cmp.html");
	tu_write_file(html, "old", 3);
	pt_html_stats st;
	assert_int_equal(pt_html_write(t, 2, html, NULL, &st), 0);
	assert_int_equal(st.events, (int64_t)(pt_plan_count(p1, 0) + pt_plan_count(p1, 1) + pt_plan_count(p2, 0) +
					      pt_plan_count(p2, 1)));
	char *page = tu_read_file(html, NULL);
	char *json = json_block(page);
	yajl_val root = yajl_tree_parse(json, NULL, 0);
	assert_non_null(root);
	const char *pt[] = {"traces", NULL};
	assert_int_equal(yajl_tree_get(root, pt, yajl_t_array)->u.array.len, 2);
	yajl_tree_free(root);
	free(json);
	free(page);
	assert_int_equal(leftovers(tu_tmpdir(), "cmp.html"), 0);

	tu_log_reset();
	char bad[600];
	snprintf(bad, sizeof bad, "%s/no/such/dir/r.html", tu_tmpdir());
	assert_int_equal(pt_html_write(t, 2, bad, NULL, NULL), PT_ENOENT);
	assert_logged("r.html: cannot write here");
	assert_false(tu_exists(bad));
	pt_trace_close(t[0]);
	pt_trace_close(t[1]);
	pt_plan_destroy(p1);
	pt_plan_destroy(p2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grid_reads_back_the_plan),
		cmocka_unit_test(test_grid_other_schedules),
		cmocka_unit_test(test_grid_width_and_plainness),
		cmocka_unit_test(test_grid_names_cannot_drive_the_terminal),
		cmocka_unit_test(test_html_escapes_every_name),
		cmocka_unit_test(test_html_files),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tu_tmp_cleanup();
	return rc;
}
