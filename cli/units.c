/*
 * cli/units.c — numbers with units, as people type them on a command line.
 * Decimal (KB, MB, GB) and binary (KiB, MiB, GiB) sizes, ns/us/ms/s
 * durations, bandwidth in bytes or bits per second. Errors say what was
 * expected, with an example.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "pipetrace/trace.h"

int cli_status(int err) { return err == 0 ? CLI_OK : pt_err_is_input(err) ? CLI_USAGE : CLI_FAIL; }

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "pipetrace %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\nTry 'pipetrace %s --help'.\n", cmd);
	va_end(ap);
	return CLI_USAGE;
}

static int fail(const char *what, const char *s, const char *expect)
{
	fprintf(stderr, "pipetrace: %s: '%s' is not %s\n", what, s, expect);
	return -1;
}

int cli_parse_int(const char *what, const char *s, long lo, long hi, long *out)
{
	char *end;
	if (!s || !*s)
		return fail(what, s ? s : "", "a number");
	long v = strtol(s, &end, 10);
	if (*end || end == s)
		return fail(what, s, "a whole number");
	if (v < lo || v > hi) {
		fprintf(stderr, "pipetrace: %s: %ld is out of range (%ld to %ld)\n", what, v, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* number, then unit suffix (returned in *unit, trimmed) */
static int split_number(const char *s, double *v, const char **unit)
{
	char *end;
	if (!s || !*s || isspace((unsigned char)*s))
		return -1;
	*v = strtod(s, &end);
	if (end == s || !isfinite(*v) || *v < 0)
		return -1;
	while (isspace((unsigned char)*end))
		end++;
	*unit = end;
	return 0;
}

int cli_parse_duration(const char *what, const char *s, int64_t *ns)
{
	static const struct {
		const char *u;
		double f;
	} units[] = {{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6}, {"s", 1e9}};
	double v;
	const char *u;
	const char *expect = "a duration (e.g. 250us, 1ms, 2.5s)";
	if (split_number(s, &v, &u))
		return fail(what, s ? s : "", expect);
	if (!*u) {
		if (v != 0)
			return fail(what, s, "a duration with a unit (ns, us, ms, s), e.g. 1ms");
		*ns = 0;
		return 0;
	}
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(u, units[i].u) == 0) {
			double x = v * units[i].f;
			if (x > 9.2e18)
				return fail(what, s, "a duration that fits in 292 years");
			*ns = (int64_t)llround(x);
			return 0;
		}
	}
	return fail(what, s, expect);
}

static const struct {
	const char *u;
	double f;
} size_units[] = {{"B", 1},	{"KB", 1e3},	     {"MB", 1e6},	   {"GB", 1e9},
		  {"TB", 1e12}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0},
		  {"TiB", 1099511627776.0}};

int cli_parse_bytes(const char *what, const char *s, int64_t *bytes)
{
	double v;
	const char *u;
	const char *expect = "a size (e.g. 4096, 16KiB, 8MiB, 1GB)";
	if (split_number(s, &v, &u))
		return fail(what, s ? s : "", expect);
	double f = 0;
	if (!*u)
		f = 1;
	for (size_t i = 0; !f && i < sizeof size_units / sizeof size_units[0]; i++)
		if (strcmp(u, size_units[i].u) == 0)
			f = size_units[i].f;
	if (!f)
		return fail(what, s, expect);
	double x = v * f;
	if (x > 9.2e18)
		return fail(what, s, "a size below 8 EiB");
	*bytes = (int64_t)llround(x);
	return 0;
}

int cli_parse_bandwidth(const char *what, const char *s, double *bps)
{
	double v;
	const char *u;
	const char *expect = "a bandwidth (e.g. 50GB/s, 25GiB/s, 400Gbit/s; 0 for unlimited)";
	if (split_number(s, &v, &u))
		return fail(what, s ? s : "", expect);
	if (!*u && v == 0) {
		*bps = 0;
		return 0;
	}
	size_t n = strlen(u);
	if (n < 3 || strcmp(u + n - 2, "/s") != 0)
		return fail(what, s, expect);
	char unit[16];
	if (n - 2 >= sizeof unit)
		return fail(what, s, expect);
	memcpy(unit, u, n - 2);
	unit[n - 2] = '\0';
	static const struct {
		const char *u;
		double f;
	} bits[] = {{"bit", 0.125}, {"Kbit", 125}, {"Mbit", 1.25e5}, {"Gbit", 1.25e8}, {"Tbit", 1.25e11},
		    {"Gb", 1.25e8}};
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++)
		if (strcmp(unit, bits[i].u) == 0) {
			*bps = v * bits[i].f;
			return 0;
		}
	for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++)
		if (strcmp(unit, size_units[i].u) == 0) {
			*bps = v * size_units[i].f;
			return 0;
		}
	return fail(what, s, expect);
}

int cli_each_kv(const char *what, char *list, int (*fn)(void *ctx, const char *k, const char *v), void *ctx)
{
	char *save = NULL;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok) {
			fprintf(stderr, "pipetrace: %s: '%s' is not key=value\n", what, tok);
			return -1;
		}
		*eq = '\0';
		int rc = fn(ctx, tok, eq + 1);
		if (rc)
			return rc;
	}
	return 0;
}

void cli_fmt_ns(int64_t ns, int64_t scale, char *buf, size_t size)
{
	int64_t a = scale < 0 ? -scale : scale;
	if (a >= 10000000000LL)
		snprintf(buf, size, "%.3f s", (double)ns / 1e9);
	else if (a >= 10000000)
		snprintf(buf, size, "%.3f ms", (double)ns / 1e6);
	else if (a >= 10000)
		snprintf(buf, size, "%.3f us", (double)ns / 1e3);
	else
		snprintf(buf, size, "%lld ns", (long long)ns);
}

int cli_check_output(const char *cmd, const char *path, int force)
{
	if (!force && access(path, F_OK) == 0) {
		fprintf(stderr, "pipetrace %s: %s already exists; pass --force to replace it\n", cmd, path);
		return CLI_USAGE;
	}
	return 0;
}

int cli_isatty(FILE *f) { return isatty(fileno(f)); }
