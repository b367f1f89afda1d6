/*
 * exporters/csv.c — one CSV row per event, for spreadsheets and pandas
 * (pd.read_csv): a header row, then rank, stream, the stream's name, kind,
 * name, times in ns and every field of the event, empty where it does not
 * apply. Fields that hold a comma, a quote or a line break are quoted (RFC
 * 4180). Rows come in time order; no flows, no counters: those are rows'
 * relations, which the columns (peer, seq, corr, ext) already carry.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "exporters.h"

static int header(pt_export *x)
{
	pt_export_puts(x, "rank,stream,stream_name,kind,name,start_ns,end_ns,dur_ns,step,chunk,mb,chunk2,mb2,"
			  "payload,peer,seq,batch,bytes,posted_ns,device,corr,ext\n");
	return 0;
}

static void field(pt_export *x, const char *s, size_t n)
{
	if (!memchr(s, ',', n) && !memchr(s, '"', n) && !memchr(s, '\n', n) && !memchr(s, '\r', n)) {
		pt_export_write(x, s, n);
		return;
	}
	pt_export_write(x, "\"", 1);
	for (const char *p = s, *end = s + n; p < end;) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		size_t k = q ? (size_t)(q - p) + 1 : (size_t)(end - p);
		pt_export_write(x, p, k);
		if (q)
			pt_export_write(x, "\"", 1); /* a quote doubles */
		p += k;
	}
	pt_export_write(x, "\"", 1);
}

/* ",value" or "," when absent (v < 0 and absent_below_zero). */
static void num(pt_export *x, int64_t v, int present)
{
	char buf[24];
	int n = present ? snprintf(buf + 1, sizeof buf - 1, "%" PRId64, v) + 1 : 1;
	buf[0] = ',';
	pt_export_write(x, buf, (size_t)n);
}

static int event(pt_export *x, const pt_xev *e)
{
	const pt_event *ev = e->ev;
	const pt_op *op = &ev->op;
	pt_slot_info si;
	pt_export_slot(x, e->slot, &si);
	char buf[48];
	int n = snprintf(buf, sizeof buf, "%d,%u,", ev->rank, ev->stream);
	pt_export_write(x, buf, (size_t)n);
	field(x, si.name, strlen(si.name));
	pt_export_write(x, ",", 1);
	pt_export_puts(x, e->cat);
	pt_export_write(x, ",", 1);
	field(x, e->name, e->name_len);
	int plan_op = !pt_kind_is_activity(e->kind), msg = pt_kind_is_comm(e->kind);
	num(x, ev->start_ns, 1);
	num(x, ev->end_ns, 1);
	num(x, e->dur, 1);
	num(x, ev->step, ev->step >= 0);
	num(x, op->chunk, plan_op && op->chunk >= 0);
	num(x, op->mb, plan_op && op->mb >= 0);
	num(x, op->chunk2, e->kind == PT_OP_FB);
	num(x, op->mb2, e->kind == PT_OP_FB);
	pt_export_puts(x, msg ? (op->payload == PT_GRAD ? ",grad" : ",act") : ",");
	num(x, op->peer, msg);
	num(x, op->seq, msg && op->seq >= 0);
	num(x, op->batch, msg && op->batch >= 0);
	num(x, op->bytes, msg || e->kind == PT_OP_MEMCPY || e->kind == PT_OP_MEMSET);
	num(x, ev->posted_ns, msg);
	num(x, ev->device, ev->device >= 0);
	num(x, ev->corr, ev->corr != 0);
	num(x, ev->ext, ev->ext != 0);
	pt_export_write(x, "\n", 1);
	return 0;
}

const pt_format pt_format_csv = {
    .name = "csv",
    .exts = ".csv",
    .what = "CSV, one row per event, for spreadsheets and pandas",
    .header = header,
    .event = event,
};
