/*
 * runner/cmd_cost.c — the cost options of `pipetrace run`: --cost and
 * --link (values typed by hand) and --cost-from (a cost model calibrated on
 * a recorded run, calibrate.c), resolved in one order whatever their order
 * on the command line: defaults or calibration first, then the values
 * given. Also says, unless quiet, where each cost came from.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli.h"
#include "cmd.h"

#define LAT_BIT (1u << 30)
#define BW_BIT (1u << 31)

static int64_t *op_field(pt_cost *c, int kind)
{
	switch (kind) {
	case PT_OP_F: return &c->f;
	case PT_OP_B: return &c->b;
	case PT_OP_I: return &c->i;
	case PT_OP_W: return &c->w;
	case PT_OP_FB: return &c->fb;
	}
	return NULL;
}

static int cost_kv(void *ctx, const char *k, const char *v)
{
	struct cost_opts *o = ctx;
	for (int kind = PT_OP_F; kind <= PT_OP_FB; kind++) {
		if (strcasecmp(k, pt_kind_name(kind)))
			continue;
		char what[32];
		snprintf(what, sizeof what, "--cost %s", pt_kind_name(kind));
		o->set |= 1u << kind;
		return cli_parse_duration(what, v, op_field(&o->given, kind));
	}
	fprintf(stderr, "pipetrace run: --cost: unknown op '%s' (F, B, I, W, FB)\n", k);
	return -1;
}

static int link_kv(void *ctx, const char *k, const char *v)
{
	struct cost_opts *o = ctx;
	if (!strcasecmp(k, "latency")) {
		o->set |= LAT_BIT;
		return cli_parse_duration("--link latency", v, &o->given.latency);
	}
	if (!strcasecmp(k, "bandwidth")) {
		o->set |= BW_BIT;
		return cli_parse_bandwidth("--link bandwidth", v, &o->given.bandwidth);
	}
	fprintf(stderr, "pipetrace run: --link: unknown key '%s' (latency, bandwidth)\n", k);
	return -1;
}

int cost_opt(struct cost_opts *o, int c, const char *arg)
{
	if (c == 2004) {
		o->from = arg;
		return 1;
	}
	if (c != 2002 && c != 2003)
		return 0;
	char *list = strdup(arg);
	int bad = !list || cli_each_kv(c == 2002 ? "--cost" : "--link", list, c == 2002 ? cost_kv : link_kv, o);
	free(list);
	return bad ? -1 : 1;
}

/* One message size fixes only latency + wire time: when half of the link
 * is given, the measured duration gives the other half. */
static void complete_link(struct cost_opts *o, pt_cost *cost)
{
	unsigned link = o->set & (LAT_BIT | BW_BIT);
	if ((link != LAT_BIT && link != BW_BIT) || o->calib.nsizes != 1 || o->calib.msg_bytes <= 0)
		return;
	if (link == BW_BIT) {
		int64_t rest = o->calib.msg_dur - pt_cost_wire(cost, o->calib.msg_bytes);
		cost->latency = rest > 0 ? rest : 0;
		o->link_note = "bandwidth given; latency: the median duration less its wire time";
	} else {
		int64_t wire = o->calib.msg_dur - cost->latency;
		cost->bandwidth = wire > 0 ? (double)o->calib.msg_bytes * 1e9 / (double)wire : 0;
		o->link_note = "latency given; bandwidth: the size over the median duration less it";
	}
}

int cost_resolve(struct cost_opts *o, pt_cost *cost, int64_t *bytes)
{
	*cost = pt_cost_default();
	if (o->from) {
		pt_trace *t;
		int err = pt_trace_open(o->from, &t);
		if (err)
			return err;
		err = pt_cost_calibrate(t, cost, &o->calib);
		if (!err && *bytes < 0) {
			/* the measured run's message size, unless one was asked */
			int64_t b = pt_trace_meta_int(t, "activation_bytes", -1);
			*bytes = b >= 0 ? b : o->calib.nsizes == 1 ? o->calib.msg_bytes : 0;
			o->bytes_from = 1;
		}
		pt_trace_close(t);
		if (err)
			return err;
	}
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		if (o->set & (1u << k))
			*op_field(cost, k) = *op_field(&o->given, k);
	if (o->set & LAT_BIT)
		cost->latency = o->given.latency;
	if (o->set & BW_BIT)
		cost->bandwidth = o->given.bandwidth;
	if (o->from)
		complete_link(o, cost);
	if (*bytes < 0)
		*bytes = 0;
	return 0;
}

int cost_check(const struct cost_opts *o, const pt_plan *plan, const pt_cost *cost, int64_t bytes, int quiet)
{
	if (!o->from)
		return 0;
	unsigned lack = pt_plan_kinds(plan) & o->calib.missing & ~o->set;
	for (int k = PT_OP_F; k <= PT_OP_FB; k++)
		if (lack & (1u << k))
			return pt_logerr(PT_EINVAL,
					 "%s: the run recorded no %s ops and %s cannot be derived from the others; "
					 "give it with --cost %s=DURATION",
					 o->from, pt_kind_name(k), pt_kind_name(k), pt_kind_name(k));
	if (quiet)
		return 0;
	printf("costs from %s:", o->from);
	for (int k = PT_OP_F; k <= PT_OP_FB; k++) {
		int64_t v = *op_field((pt_cost *)cost, k);
		char d[32];
		if (v < 0)
			continue;
		cli_fmt_ns(v, 10 * v, d, sizeof d); /* 1.300 ms rather than 1300.000 us */
		printf(" %s=%s", pt_kind_name(k), d);
		if (o->set & (1u << k))
			printf(" (given)");
		else if (o->calib.derived & (1u << k))
			printf(" (derived)");
		else
			printf(" (median of %lld)", (long long)o->calib.nops[k]);
	}
	char lat[32];
	cli_fmt_ns(cost->latency, 10 * cost->latency, lat, sizeof lat);
	printf("\n  link: latency %s, bandwidth ", lat);
	if (cost->bandwidth > 0)
		printf("%.4g GB/s", cost->bandwidth / 1e9);
	else
		printf("unlimited");
	if (o->link_note)
		printf(" (%s)\n", o->link_note);
	else if (o->set & (LAT_BIT | BW_BIT))
		printf(" (given)\n");
	else
		printf(" (%lld messages; %s)\n", (long long)o->calib.nmsgs, o->calib.link_method);
	if (o->bytes_from) {
		long long b = (long long)bytes;
		if (b >= (1 << 20) && b % (1 << 20) == 0)
			printf("  messages: %lld MiB", b >> 20);
		else if (b >= 1024 && b % 1024 == 0)
			printf("  messages: %lld KiB", b >> 10);
		else
			printf("  messages: %lld bytes", b);
		printf(", as in %s (--activation-bytes changes it)\n", o->from);
	}
	return 0;
}
