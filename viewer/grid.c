/*
 * viewer/grid.c — the schedule grid in a terminal, like the figure in
 * DualPipe's README but from a real run: one row per rank, time across,
 * each op a cell coloured by its kind and chunk (direction) and labelled with
 * its microbatch, idle compute time left blank. Under a rank, when asked, a
 * thin lane for its messages (transfers hidden under compute, exposed ones in
 * red), and one density row per GPU stream, range stream or CPU thread it has.
 * It draws pt_vrank lanes whatever they came from (a trace or a simulated
 * plan) and knows nothing of databases; time is scaled to the width given,
 * each column owned by the op covering most of it. Written by hand: curses
 * would bring a screen model this one-shot output does not need.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "libtrace/grow.h"
#include "viewer.h"

#define LABEL_W 9 /* "r127" or "  p2p", then a space */

/* 256-colour backgrounds: [kind F,B,I,W][odd chunk][alternate shade for a neighbour of the same colour] */
static const int palette[4][2][2] = {
	{{215, 209}, {223, 222}}, /* F: orange; light for the odd chunk (DualPipe's reverse direction) */
	{{114, 71}, {157, 151}},  /* B: green */
	{{80, 73}, {159, 152}},	  /* I: teal */
	{{111, 75}, {153, 147}},  /* W: blue */
};
#define COLOR_OTHER 250
#define COLOR_HIDDEN 67	 /* a transfer under compute */
#define COLOR_EXPOSED 196 /* a transfer with nothing to hide behind */

static int kind_index(int kind)
{
	switch (kind) {
	case PT_OP_F: return 0;
	case PT_OP_B: return 1;
	case PT_OP_I: return 2;
	case PT_OP_W: return 3;
	}
	return -1;
}

static int cell_color(int kind, int chunk, int alt)
{
	int k = kind_index(kind);
	return k < 0 ? COLOR_OTHER : palette[k][chunk & 1][alt & 1];
}

static char kind_letter(int kind, int chunk)
{
	static const char up[] = "?FBIW";
	char c = kind >= PT_OP_F && kind <= PT_OP_W ? up[kind] : '?';
	return chunk > 0 && chunk & 1 ? (char)(c - 'A' + 'a') : c;
}

int64_t pt_grid_quantum(const int64_t *v, int n)
{
	int64_t g = 0;
	for (int i = 0; i < n; i++) {
		int64_t a = v[i], b = g;
		if (a <= 0)
			continue;
		while (b) {
			int64_t t = a % b;
			a = b;
			b = t;
		}
		g = a;
	}
	return g;
}

int pt_grid_color(const char *when)
{
	if (!strcmp(when, "auto")) {
		const char *nc = getenv("NO_COLOR");
		return isatty(STDOUT_FILENO) && !(nc && *nc);
	}
	if (!strcmp(when, "always"))
		return 1;
	return !strcmp(when, "never") ? 0 : -1;
}

int pt_grid_term_width(void)
{
	const char *env = getenv("COLUMNS");
	if (env && *env) {
		char *end;
		long v = strtol(env, &end, 10);
		if (!*end && v >= 20 && v <= 100000)
			return (int)v;
	}
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
		return ws.ws_col;
	return 120;
}

/* ------------------------------------------------------------- geometry */

struct geo {
	int cols;     /* timeline columns */
	double scale; /* columns per ns */
	int64_t t0, t1;
};

static struct geo geometry(const pt_grid_opts *o)
{
	struct geo g;
	g.cols = o->width - LABEL_W;
	if (g.cols < 10)
		g.cols = 10;
	g.t0 = o->t0;
	g.t1 = o->t1 > o->t0 ? o->t1 : o->t0 + 1;
	g.scale = (double)g.cols / (double)(g.t1 - g.t0);
	if (o->quantum > 0) {
		int64_t units = (g.t1 - g.t0 + o->quantum - 1) / o->quantum;
		if (units > 0 && units <= g.cols) {
			g.scale = (double)(g.cols / units) / (double)o->quantum;
			g.cols = (int)(units * (g.cols / units));
		}
	}
	return g;
}

static double xof(const struct geo *g, int64_t t) { return (double)(t - g->t0) * g->scale; }

static int clampi(long v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : (int)v; }

/*
 * Which span owns each column of a lane of cells: an op covers the columns
 * between its rounded ends; an op too short for a column of its own takes the
 * column it starts in, when no longer one has it. -1: idle.
 */
static void assign(const struct geo *g, const pt_lane *l, int *owner)
{
	unsigned char *full = calloc((size_t)g->cols, 1);
	int64_t *best = calloc((size_t)g->cols, sizeof *best);
	for (int c = 0; c < g->cols; c++)
		owner[c] = -1;
	for (size_t i = 0; l && full && best && i < l->n; i++) {
		const pt_span *s = &l->span[i];
		if (s->end < g->t0 || s->start >= g->t1)
			continue;
		int c0 = clampi(lround(xof(g, s->start)), 0, g->cols);
		int c1 = clampi(lround(xof(g, s->end)), 0, g->cols);
		if (c1 > c0) {
			for (int c = c0; c < c1; c++) {
				owner[c] = (int)i;
				full[c] = 1;
			}
			continue;
		}
		int c = clampi((long)floor(xof(g, s->start)), 0, g->cols - 1);
		if (!full[c] && (owner[c] < 0 || s->end - s->start > best[c])) {
			owner[c] = (int)i;
			best[c] = s->end - s->start;
		}
	}
	free(full);
	free(best);
}

/* Add to fit the ops in view that own no column. */
static void count_hidden(const struct geo *g, const pt_lane *l, const int *owner, pt_grid_fit *fit)
{
	unsigned char *seen = calloc(l->n ? l->n : 1, 1);
	if (!seen)
		return;
	for (int c = 0; c < g->cols; c++)
		if (owner[c] >= 0)
			seen[owner[c]] = 1;
	for (size_t i = 0; i < l->n; i++) {
		const pt_span *s = &l->span[i];
		if (seen[i] || s->end < g->t0 || s->start >= g->t1)
			continue;
		fit->hidden++;
		if (fit->min_dur <= 0 || s->end - s->start < fit->min_dur)
			fit->min_dur = s->end - s->start;
	}
	free(seen);
}

/* ---------------------------------------------------------------- output */

struct line {
	char *buf;
	size_t n, cap;
	int err;
};

static void put(struct line *ln, const char *s, size_t n)
{
	if (pt_grow(&ln->buf, &ln->cap, ln->n + n + 1, 1)) {
		ln->err = 1;
		return;
	}
	memcpy(ln->buf + ln->n, s, n);
	ln->n += n;
	ln->buf[ln->n] = '\0';
}

static void puts_(struct line *ln, const char *s) { put(ln, s, strlen(s)); }

static void putc_(struct line *ln, char c, int times)
{
	for (int i = 0; i < times; i++)
		put(ln, &c, 1);
}

/* An escape sequence (printf format), in colour mode only. */
static void esc(struct line *ln, const pt_grid_opts *o, const char *fmt, ...)
{
	if (!o->color)
		return;
	char buf[64];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	puts_(ln, buf);
}

static void reset(struct line *ln, const pt_grid_opts *o)
{
	if (o->color)
		puts_(ln, "\033[0m");
}

/* Text from a trace, safe for a terminal: no control characters (C0, DEL,
 * and C1 as UTF-8), and ASCII only unless utf8. At most max bytes. */
static void put_safe(struct line *ln, const char *s, int max, int utf8)
{
	for (int i = 0; s[i] && i < max; i++) {
		unsigned char c = (unsigned char)s[i], next = (unsigned char)s[i + 1];
		int ok = (c >= 0x20 && c < 0x7f) || (utf8 && c >= 0x80 && !(c == 0xc2 && next >= 0x80 && next < 0xa0));
		putc_(ln, ok ? (char)c : '?', 1);
	}
}

/* A row's label, indented and cut to fit LABEL_W with a space after it. */
static void label(struct line *ln, const char *text, int indent)
{
	int room = LABEL_W - 1 - indent, n = (int)strlen(text);
	if (n > room)
		n = room;
	putc_(ln, ' ', indent);
	put_safe(ln, text, n, 0);
	putc_(ln, ' ', room - n + 1);
}

/* `text` centred in w columns (cut when longer). */
static void centred(struct line *ln, const char *text, int w)
{
	int n = (int)strlen(text);
	if (n > w)
		n = 0;
	int left = (w - n) / 2;
	putc_(ln, ' ', left);
	put(ln, text, (size_t)n);
	putc_(ln, ' ', w - n - left);
}

/* The plain-text label of an op in w columns: the spec name when it fits,
 * else letter + microbatch, else the letter (a pair: '&' and its forward's
 * microbatch, or '&'); padded with
 * spaces. Labels start with their kind's letter, so glued cells still read. */
static void plain_cell(struct line *ln, const pt_op *op, int w)
{
	char full[64], shrt[32];
	pt_op_name(op, PT_NAME_SPEC, full, sizeof full);
	if (op->kind == PT_OP_FB) {
		snprintf(shrt, sizeof shrt, "%c%d|%c%d", kind_letter(PT_OP_F, op->chunk), op->mb,
			 kind_letter(PT_OP_B, op->chunk2), op->mb2);
	} else {
		snprintf(shrt, sizeof shrt, "%c", kind_letter(op->kind, op->chunk));
		if (op->mb >= 0)
			snprintf(shrt + 1, sizeof shrt - 1, "%d", op->mb);
	}
	char tiny[16] = {op->kind == PT_OP_FB ? '&' : kind_letter(op->kind, op->chunk), 0};
	if (op->kind == PT_OP_FB && w >= 2 && op->mb >= 0) /* a pair in 2 to 4 columns: & and its forward's microbatch */
		snprintf(tiny, sizeof tiny, "&%d", op->mb);
	const char *text = (int)strlen(full) <= w ? full : (int)strlen(shrt) <= w ? shrt : (int)strlen(tiny) <= w ? tiny : "&";
	puts_(ln, text);
	putc_(ln, ' ', w - (int)strlen(text));
}

static void color_part(struct line *ln, const pt_grid_opts *o, int bg, int underline, int mb, int w)
{
	char num[16] = "";
	if (mb >= 0) /* unknown in ops labelled from annotations */
		snprintf(num, sizeof num, "%d", mb);
	esc(ln, o, underline ? "\033[48;5;%d;38;5;16;4m" : "\033[48;5;%d;38;5;16m", bg);
	centred(ln, num, w);
	reset(ln, o);
}

/* One op's cell in colour: the microbatch on the kind's colour; an FB pair
 * as its F third and its B two thirds (the README figure's F=1, B=2), both
 * underlined as one overlapped pair. */
static void color_cell(struct line *ln, const pt_grid_opts *o, const pt_op *op, int w, int alt)
{
	if (op->kind == PT_OP_FB && w >= 2) {
		int wf = (w + 1) / 3 > 0 ? (w + 1) / 3 : 1;
		color_part(ln, o, cell_color(PT_OP_F, op->chunk, alt), 1, op->mb, wf);
		color_part(ln, o, cell_color(PT_OP_B, op->chunk2, alt), 1, op->mb2, w - wf);
		return;
	}
	int kind = op->kind == PT_OP_FB ? PT_OP_F : op->kind;
	color_part(ln, o, cell_color(kind, op->chunk, alt), op->kind == PT_OP_FB, op->mb, w);
}

static void ops_row(struct line *ln, const pt_grid_opts *o, const struct geo *g, const pt_lane *l, const int *owner)
{
	int prev_bg = -1, alt = 0;
	for (int c = 0; c < g->cols;) {
		int c1 = c + 1;
		while (c1 < g->cols && owner[c1] == owner[c])
			c1++;
		if (owner[c] < 0) {
			if (o->color)
				putc_(ln, ' ', c1 - c);
			else
				putc_(ln, '.', c1 - c);
			prev_bg = -1;
		} else {
			const pt_op *op = &l->span[owner[c]].op;
			int kind = op->kind == PT_OP_FB ? PT_OP_F : op->kind;
			int bg = cell_color(kind, op->chunk, 0);
			alt = bg == prev_bg ? !alt : 0;
			prev_bg = op->kind == PT_OP_FB ? cell_color(PT_OP_B, op->chunk2, 0) : bg;
			if (o->color)
				color_cell(ln, o, op, c1 - c, alt);
			else
				plain_cell(ln, op, c1 - c);
		}
		c = c1;
	}
}

/* Mark the columns [a, b) touches with state v (when higher). */
static void mark(const struct geo *g, unsigned char *st, int64_t a, int64_t b, unsigned char v)
{
	if (b < g->t0 || a > g->t1)
		return;
	int c0 = clampi((long)floor(xof(g, a)), 0, g->cols - 1);
	int c1 = clampi((long)ceil(xof(g, b)), c0 + 1, g->cols);
	for (int c = c0; c < c1; c++)
		if (st[c] < v)
			st[c] = v;
}

enum { COMM_NONE, COMM_INSTANT, COMM_HIDDEN, COMM_EXPOSED };

/* The union of a lane's spans as disjoint [start, end) pairs in order
 * (malloc'ed, 2 * *n values). */
static int64_t *union_of(const pt_lane *l, size_t *n)
{
	*n = 0;
	int64_t *u = malloc((l && l->n ? l->n : 1) * 2 * sizeof *u);
	if (!u || !l)
		return u;
	for (size_t i = 0; i < l->n; i++) {
		const pt_span *s = &l->span[i];
		if (*n && s->start <= u[2 * *n - 1]) {
			if (s->end > u[2 * *n - 1])
				u[2 * *n - 1] = s->end;
		} else {
			u[2 * *n] = s->start;
			u[2 * *n + 1] = s->end;
			(*n)++;
		}
	}
	return u;
}

/*
 * The message lane: where a transfer runs, and where it runs with no compute
 * to hide behind (exposed: the transfer minus the union of compute ops, as
 * docs/metrics.md counts it).
 */
static void comm_row(struct line *ln, const pt_grid_opts *o, const struct geo *g, const pt_lane *ops,
		     const pt_lane *comms)
{
	unsigned char *st = calloc((size_t)g->cols, 1);
	size_t nu;
	int64_t *u = union_of(ops, &nu);
	if (!st || !u) {
		free(st);
		free(u);
		ln->err = 1;
		return;
	}
	size_t j = 0;
	for (size_t i = 0; comms && i < comms->n; i++) {
		const pt_span *s = &comms->span[i];
		if (s->end <= s->start) {
			mark(g, st, s->start, s->start, COMM_INSTANT);
			continue;
		}
		mark(g, st, s->start, s->end, COMM_HIDDEN);
		while (j < nu && u[2 * j + 1] <= s->start) /* transfers come in start order */
			j++;
		int64_t t = s->start;
		for (size_t k = j; k < nu && u[2 * k] < s->end && t < s->end; k++) {
			if (u[2 * k] > t)
				mark(g, st, t, u[2 * k], COMM_EXPOSED);
			if (u[2 * k + 1] > t)
				t = u[2 * k + 1];
		}
		if (t < s->end)
			mark(g, st, t, s->end, COMM_EXPOSED);
	}
	for (int c = 0; c < g->cols; c++) {
		switch (st[c]) {
		case COMM_NONE: putc_(ln, ' ', 1); break;
		case COMM_INSTANT:
			if (o->color)
				puts_(ln, "\033[38;5;245m\xc2\xb7\033[0m");
			else
				putc_(ln, '\'', 1);
			break;
		default:
			esc(ln, o, "\033[38;5;%dm", st[c] == COMM_HIDDEN ? COLOR_HIDDEN : COLOR_EXPOSED);
			if (o->color)
				puts_(ln, "\xe2\x96\x80");
			else
				putc_(ln, st[c] == COMM_HIDDEN ? '=' : '#', 1);
			reset(ln, o);
			break;
		}
	}
	free(st);
	free(u);
}

/* Activity (kernels, copies, ranges, runtime calls) as density: how much of
 * each column is busy, in eight steps. */
static void density_row(struct line *ln, const pt_grid_opts *o, const struct geo *g, const pt_lane *l)
{
	double *busy = calloc((size_t)g->cols, sizeof *busy);
	if (!busy) {
		ln->err = 1;
		return;
	}
	double ns_per_col = 1.0 / g->scale;
	for (size_t i = 0; i < l->n; i++) {
		const pt_span *s = &l->span[i];
		if (s->end < g->t0 || s->start >= g->t1)
			continue;
		double x0 = xof(g, s->start), x1 = xof(g, s->end);
		if (x0 < 0)
			x0 = 0;
		if (x1 > g->cols)
			x1 = g->cols;
		int c0 = clampi((long)floor(x0), 0, g->cols - 1);
		int c1 = clampi((long)ceil(x1), c0 + 1, g->cols);
		for (int c = c0; c < c1; c++) {
			double a = x0 > c ? x0 : c, b = x1 < c + 1 ? x1 : c + 1;
			busy[c] += b > a ? b - a : 1.0 / ns_per_col / 8; /* an instant still shows */
		}
	}
	static const char *const bars[] = {"\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
					   "\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88"};
	static const char plain[] = ".:-=+*#@";
	int color = l->kind == PT_LANE_GPU ? 73 : l->kind == PT_LANE_RANGES ? 103 : 137;
	for (int c = 0; c < g->cols; c++) {
		if (busy[c] <= 0) {
			putc_(ln, ' ', 1);
			continue;
		}
		int lv = clampi(lround(busy[c] * 8 + 0.5) - 1, 0, 7);
		if (o->color) {
			esc(ln, o, "\033[38;5;%dm", color);
			puts_(ln, bars[lv]);
			reset(ln, o);
		} else {
			putc_(ln, plain[lv], 1);
		}
	}
	free(busy);
}

static int flush_line(FILE *out, struct line *ln)
{
	if (ln->err)
		return PT_ENOMEM;
	put(ln, "\n", 1);
	fwrite(ln->buf, 1, ln->n, out);
	ln->n = 0;
	return ferror(out) ? PT_EIO : 0;
}

/* ------------------------------------------------------------- the grid */

/* A tick step of 1, 2 or 5 times a power of ten, at least min_ns. */
static int64_t nice_step(double min_ns)
{
	int64_t p = 1;
	for (;;) {
		if (p >= min_ns)
			return p;
		if (2 * p >= min_ns)
			return 2 * p;
		if (5 * p >= min_ns)
			return 5 * p;
		if (p > INT64_MAX / 20)
			return p * 10;
		p *= 10;
	}
}

static void fmt_time(int64_t ns, int64_t step, char *buf, size_t size)
{
	if (step >= 1000000000 || ns >= 100000000000LL)
		snprintf(buf, size, "%gs", (double)ns / 1e9);
	else if (step >= 1000000)
		snprintf(buf, size, "%gms", (double)ns / 1e6);
	else if (step >= 1000)
		snprintf(buf, size, "%gus", (double)ns / 1e3);
	else
		snprintf(buf, size, "%lldns", (long long)ns);
}

int pt_grid_begin(FILE *out, const pt_grid_opts *o, const char *title)
{
	struct geo g = geometry(o);
	struct line ln = {0};
	esc(&ln, o, "\033[1m");
	put_safe(&ln, title, (int)strlen(title), o->color);
	reset(&ln, o);
	int err = flush_line(out, &ln);
	/* the axis: a tick and its time wherever the label fits */
	int64_t step = nice_step(12.0 / g.scale);
	char *axis = malloc((size_t)g.cols + 1);
	if (!axis) {
		free(ln.buf);
		return PT_ENOMEM;
	}
	memset(axis, ' ', (size_t)g.cols);
	axis[g.cols] = '\0';
	for (int64_t t = 0; g.t0 + t <= g.t1; t += step) {
		int c = (int)lround((double)t * g.scale);
		if (c >= g.cols)
			break;
		char lab[32];
		fmt_time(t, step, lab, sizeof lab);
		int n = (int)strlen(lab);
		axis[c] = '|';
		if (c + 1 + n <= g.cols)
			memcpy(axis + c + 1, lab, (size_t)n);
	}
	label(&ln, "time", 0);
	esc(&ln, o, "\033[2m");
	puts_(&ln, axis);
	reset(&ln, o);
	free(axis);
	if (!err)
		err = flush_line(out, &ln);
	free(ln.buf);
	return err;
}

/* A lane's label in the room a row has: its name when short, else a letter
 * for what it holds and the stream or thread id (s7 a GPU stream, n7 the
 * ranges on 7, t42 CPU thread 42). */
static void short_label(const pt_lane *l, char *buf, size_t size)
{
	size_t n = strlen(l->label);
	if (n <= LABEL_W - 3 && n < size) { /* (memcpy: gcc -O1 cannot see the bound a %s would keep) */
		memcpy(buf, l->label, n + 1);
		return;
	}
	char c = l->kind == PT_LANE_CPU ? 't' : l->kind == PT_LANE_RANGES ? 'n' : 's';
	snprintf(buf, size, "%c%u", c, l->stream);
}

int pt_grid_rank(FILE *out, const pt_grid_opts *o, const pt_vrank *r)
{
	struct geo g = geometry(o);
	struct line ln = {0};
	const pt_lane *ops = NULL, *comms = NULL;
	for (int i = 0; i < r->nlanes; i++) {
		if (r->lane[i].kind == PT_LANE_OPS && !ops)
			ops = &r->lane[i];
		if (r->lane[i].kind == PT_LANE_COMMS && !comms)
			comms = &r->lane[i];
	}
	int *owner = malloc((size_t)g.cols * sizeof *owner);
	if (!owner)
		return PT_ENOMEM;
	char name[32];
	snprintf(name, sizeof name, "r%d", r->rank);
	int err = 0;
	if (ops || !r->nlanes) {
		assign(&g, ops, owner);
		if (o->fit && ops)
			count_hidden(&g, ops, owner, o->fit);
		label(&ln, name, 0);
		ops_row(&ln, o, &g, ops, owner);
		err = flush_line(out, &ln);
	}
	if (!err && o->comm && comms) {
		label(&ln, comms->label, 2);
		comm_row(&ln, o, &g, ops, comms);
		err = flush_line(out, &ln);
	}
	for (int i = 0; i < r->nlanes && !err; i++) {
		const pt_lane *l = &r->lane[i];
		if (l->kind == PT_LANE_OPS || l->kind == PT_LANE_COMMS)
			continue;
		if (!ops && l == &r->lane[0]) {
			label(&ln, name, 0);
		} else {
			char lab[32];
			short_label(l, lab, sizeof lab);
			label(&ln, lab, 2);
		}
		density_row(&ln, o, &g, l);
		err = flush_line(out, &ln);
	}
	free(owner);
	free(ln.buf);
	return err;
}

static void swatch(struct line *ln, const pt_grid_opts *o, int kind, int chunk, const char *text, const char *what)
{
	if (o->color) {
		esc(ln, o, "\033[48;5;%d;38;5;16m", cell_color(kind, chunk, 0));
		puts_(ln, text);
		reset(ln, o);
		puts_(ln, " ");
	} else {
		puts_(ln, text);
		puts_(ln, " ");
	}
	puts_(ln, what);
	puts_(ln, "   ");
}

static void pct(struct line *ln, double x)
{
	char buf[32];
	if (isnan(x))
		snprintf(buf, sizeof buf, "n/a");
	else
		snprintf(buf, sizeof buf, "%.2f%%", 100 * x);
	puts_(ln, buf);
}

int pt_grid_end(FILE *out, const pt_grid_opts *o, const pt_grid_summary *s)
{
	struct line ln = {0};
	int err = 0;
	if (o->color) {
		swatch(&ln, o, PT_OP_F, 0, " 3 ", "forward");
		swatch(&ln, o, PT_OP_B, 0, " 3 ", "backward");
		swatch(&ln, o, PT_OP_I, 0, " 3 ", "backward, inputs");
		swatch(&ln, o, PT_OP_W, 0, " 3 ", "weight grads");
		err = flush_line(out, &ln);
		puts_(&ln, "the number is the microbatch; lighter: odd chunk (DualPipe: reverse direction); ");
		esc(&ln, o, "\033[48;5;%d;38;5;16;4m", cell_color(PT_OP_F, 0, 0));
		puts_(&ln, "7");
		esc(&ln, o, "\033[48;5;%d;38;5;16;4m", cell_color(PT_OP_B, 1, 0));
		puts_(&ln, " 3 ");
		reset(&ln, o);
		puts_(&ln, " overlapped F&B pair; blank: bubble");
	} else {
		puts_(&ln, "F0:3 forward of chunk 0, microbatch 3; B backward, I backward for inputs, W weight grads;");
		if (!err)
			err = flush_line(out, &ln);
		puts_(&ln, "F0:7|B1:3 an overlapped pair; short cells: F3 / f3 (lower case: odd chunk, DualPipe's "
			   "reverse direction), F / f, & a pair; '.' bubble");
	}
	if (!err)
		err = flush_line(out, &ln);
	if (!err && o->comm) {
		if (o->color) {
			puts_(&ln, "messages: ");
			esc(&ln, o, "\033[38;5;%dm", COLOR_HIDDEN);
			puts_(&ln, "\xe2\x96\x80");
			reset(&ln, o);
			puts_(&ln, " transfer under compute   ");
			esc(&ln, o, "\033[38;5;%dm", COLOR_EXPOSED);
			puts_(&ln, "\xe2\x96\x80");
			reset(&ln, o);
			puts_(&ln, " exposed   \xc2\xb7 instant (free link)");
		} else {
			puts_(&ln, "messages: = transfer under compute, # exposed, ' instant (free link)");
		}
		err = flush_line(out, &ln);
	}
	if (!err && o->fit && o->fit->hidden) {
		int64_t d = o->fit->min_dur > 0 ? o->fit->min_dur : 1;
		char buf[200];
		snprintf(buf, sizeof buf, "note: %lld ops were too short for a column of their own at this width; "
					  "--width %lld shows them all",
			 (long long)o->fit->hidden, (long long)(LABEL_W + (o->t1 - o->t0 + d - 1) / d));
		esc(&ln, o, "\033[33m");
		puts_(&ln, buf);
		reset(&ln, o);
		err = flush_line(out, &ln);
	}
	if (!err && s) {
		char span[32];
		int64_t w = o->t1 - o->t0;
		if (w >= 10000000)
			snprintf(span, sizeof span, "%.3f ms", (double)w / 1e6);
		else
			snprintf(span, sizeof span, "%.3f us", (double)w / 1e3);
		puts_(&ln, "span ");
		puts_(&ln, span);
		puts_(&ln, "   bubble ratio ");
		pct(&ln, s->bubble_ratio);
		if (!isnan(s->theory_ratio)) {
			puts_(&ln, " (theory ");
			pct(&ln, s->theory_ratio);
			if (s->formula) {
				puts_(&ln, ", ");
				puts_(&ln, s->formula);
			}
			puts_(&ln, ")");
		}
		puts_(&ln, "   overlap ");
		pct(&ln, s->overlap_ratio);
		err = flush_line(out, &ln);
	}
	free(ln.buf);
	return err;
}

/* ---------------------------------------------------------- a plan alone */

int pt_grid_plan(const pt_plan *plan, FILE *out, const pt_grid_opts *o)
{
	pt_cost cost = pt_cost_default();
	pt_sim *sim;
	int err = pt_sim_run(plan, &cost, PT_COMM_FLUSH, &sim);
	if (err)
		return err;
	pt_grid_opts go = *o;
	pt_grid_fit fit = {0};
	if (!go.fit)
		go.fit = &fit;
	go.t0 = 0;
	go.t1 = sim->makespan;
	int64_t costs_ns[] = {cost.f, cost.b, cost.i, cost.w, cost.fb};
	go.quantum = pt_grid_quantum(costs_ns, 5);
	char costs[160], title[400];
	int n = 0;
	static const char *const what[] = {"F", "B", "I", "W", "FB"};
	for (int i = 0; i < 5; i++) {
		char d[32];
		fmt_time(costs_ns[i], costs_ns[i], d, sizeof d);
		n += snprintf(costs + n, sizeof costs - (size_t)n, "%s%s=%s", i ? " " : "", what[i], d);
	}
	snprintf(title, sizeof title, "%s \xc2\xb7 %d ranks \xc2\xb7 %d microbatches \xc2\xb7 simulated plan (%s)",
		 plan->name, plan->ranks, plan->microbatches, costs);
	if (!o->color) /* plain output stays ASCII */
		snprintf(title, sizeof title, "%s - %d ranks - %d microbatches - simulated plan (%s)", plan->name,
			 plan->ranks, plan->microbatches, costs);
	err = pt_grid_begin(out, &go, title);
	/* bubble: the window minus each rank's compute (one op at a time on a rank) */
	int64_t idle = 0, theory = 0;
	int theory_all = 1;
	const char *formula = NULL;
	for (int r = 0; r < plan->ranks && !err; r++) {
		pt_vrank vr;
		if ((err = pt_vrank_from_sim(sim, r, &vr)))
			break;
		int64_t busy = 0;
		for (size_t i = 0; i < vr.lane[0].n; i++)
			busy += vr.lane[0].span[i].end - vr.lane[0].span[i].start;
		idle += sim->makespan - busy;
		int64_t tb;
		int peak;
		pt_theory(plan, &cost, r, &tb, &peak, &formula);
		if (tb < 0)
			theory_all = 0;
		theory += tb;
		err = pt_grid_rank(out, &go, &vr);
		pt_vrank_fini(&vr);
	}
	if (!err) {
		double window = (double)plan->ranks * (double)sim->makespan;
		double busy_all = window - (double)idle;
		pt_grid_summary s = {
			.bubble_ratio = window > 0 ? (double)idle / window : NAN,
			.theory_ratio = theory_all && busy_all + theory > 0 ? theory / (busy_all + theory) : NAN,
			.overlap_ratio = NAN,
			.formula = formula,
		};
		err = pt_grid_end(out, &go, &s);
	}
	pt_sim_destroy(sim);
	return err;
}
