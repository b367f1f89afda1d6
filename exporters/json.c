/*
 * exporters/json.c — the few yajl calls every JSON output repeats: a string,
 * and a key with an integer or a number, where "no value" (a negative count,
 * NaN) is written as null. The documents themselves are their outputs' own.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "exporters.h"

void pt_json_str(yajl_gen g, const char *s) { yajl_gen_string(g, (const unsigned char *)s, strlen(s)); }

void pt_json_int(yajl_gen g, const char *key, int64_t v)
{
	pt_json_str(g, key);
	yajl_gen_integer(g, v);
}

void pt_json_int_or_null(yajl_gen g, const char *key, int64_t v)
{
	pt_json_str(g, key);
	if (v < 0)
		yajl_gen_null(g);
	else
		yajl_gen_integer(g, v);
}

void pt_json_num(yajl_gen g, const char *key, double v)
{
	pt_json_str(g, key);
	if (isnan(v)) {
		yajl_gen_null(g);
		return;
	}
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%.9g", v);
	yajl_gen_number(g, buf, (size_t)n);
}
