/*
 * runner/cost.c — the sim backend's cost model: a duration per compute op
 * kind and a link (latency, bandwidth). Parsing the command line's "F=1ms,…"
 * is the CLI's business; this file only holds the numbers and their meaning.
 */
#include <stdio.h>
#include <string.h>

#include "runner.h"

pt_cost pt_cost_default(void)
{
	pt_cost c;
	memset(&c, 0, sizeof c);
	c.f = 1000000;
	c.b = 2000000;
	c.i = 1000000;
	c.w = 1000000;
	c.fb = 3000000;
	return c;
}

int64_t pt_cost_op(const pt_cost *c, int kind)
{
	switch (kind) {
	case PT_OP_F: return c->f;
	case PT_OP_B: return c->b;
	case PT_OP_I: return c->i;
	case PT_OP_W: return c->w;
	case PT_OP_FB: return c->fb;
	}
	return 0;
}

int64_t pt_cost_wire(const pt_cost *c, int64_t bytes)
{
	if (c->bandwidth <= 0 || bytes <= 0)
		return 0;
	return (int64_t)((double)bytes * 1e9 / c->bandwidth + 0.5);
}

void pt_cost_format(const pt_cost *c, char *buf, size_t size)
{
	snprintf(buf, size, "F=%lldns,B=%lldns,I=%lldns,W=%lldns,FB=%lldns", (long long)c->f, (long long)c->b,
		 (long long)c->i, (long long)c->w, (long long)c->fb);
}

const char *pt_comm_name(int mode) { return mode == PT_COMM_OVERLAP ? "overlap" : "flush"; }

int pt_comm_parse(const char *name)
{
	if (strcmp(name, "flush") == 0)
		return PT_COMM_FLUSH;
	if (strcmp(name, "overlap") == 0)
		return PT_COMM_OVERLAP;
	return -1;
}
