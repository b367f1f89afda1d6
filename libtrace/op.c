/*
 * libtrace/op.c — the names of ops. One place formats and parses the spec
 * notation (F0:3, F0:7|B1:3, sA0:3>1) so the schedule printer, the exporters
 * and the viewer all call an op the same thing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

pt_op pt_op_make(int kind, int chunk, int mb)
{
	pt_op op;
	memset(&op, 0, sizeof op);
	op.kind = (uint8_t)kind;
	op.chunk = (int16_t)chunk;
	op.mb = mb;
	op.chunk2 = -1;
	op.mb2 = -1;
	op.peer = -1;
	op.seq = -1;
	op.batch = -1;
	return op;
}

const char *pt_kind_name(int kind)
{
	static const char *const names[PT_OP_KIND_MAX] = {
		[PT_OP_F] = "F",	   [PT_OP_B] = "B",	      [PT_OP_I] = "I",	     [PT_OP_W] = "W",
		[PT_OP_FB] = "FB",	   [PT_OP_SEND] = "SEND",     [PT_OP_RECV] = "RECV", [PT_OP_KERNEL] = "KERNEL",
		[PT_OP_MEMCPY] = "MEMCPY", [PT_OP_MEMSET] = "MEMSET", [PT_OP_SYNC] = "SYNC", [PT_OP_RUNTIME] = "RUNTIME",
		[PT_OP_RANGE] = "RANGE",
	};
	return kind > 0 && kind < PT_OP_KIND_MAX ? names[kind] : "?";
}

static char kind_letter(int kind)
{
	switch (kind) {
	case PT_OP_F: return 'F';
	case PT_OP_B: return 'B';
	case PT_OP_I: return 'I';
	case PT_OP_W: return 'W';
	}
	return '?';
}

/* Append v in decimal at p; returns the end. */
static char *put_int(char *p, long v)
{
	char tmp[24];
	int n = 0;
	unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
	do
		tmp[n++] = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*p++ = '-';
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* Copy the name built in tmp[0..n) into buf, snprintf-style. */
static int finish(const char *tmp, int n, char *buf, size_t size)
{
	if (size) {
		size_t k = (size_t)n < size ? (size_t)n : size - 1;
		memcpy(buf, tmp, k);
		buf[k] = '\0';
	}
	return n;
}

/* "<chunk>:<mb>" at p, each part left out when unknown (-1: ops labelled
 * from a profiler's annotations have neither): "0:3", "0", "". */
static char *put_chunk_mb(char *p, int chunk, int mb)
{
	if (chunk >= 0)
		p = put_int(p, chunk);
	if (mb >= 0) {
		*p++ = ':';
		p = put_int(p, mb);
	}
	return p;
}

int pt_op_name(const pt_op *op, enum pt_name_style style, char *buf, size_t size)
{
	/* Built by hand rather than with snprintf: exporters name millions of
	 * ops a second, where snprintf was a tenth of their time. */
	char tmp[96], *p = tmp;
	int kind = op->kind, msg = kind == PT_OP_SEND || kind == PT_OP_RECV;
	if (!pt_kind_is_compute(kind) && !msg)
		return snprintf(buf, size, "%s", pt_kind_name(kind));
	if (msg && style == PT_NAME_LONG) {
		memcpy(p, kind == PT_OP_SEND ? "SEND " : "RECV ", 5);
		p += 5;
	} else if (msg) {
		*p++ = kind == PT_OP_SEND ? 's' : 'r';
	}
	*p++ = msg ? (op->payload == PT_GRAD ? 'G' : 'A') : kind == PT_OP_FB ? 'F' : kind_letter(kind);
	p = put_chunk_mb(p, op->chunk, op->mb);
	if (kind == PT_OP_FB) {
		memcpy(p, "|B", 2);
		p = put_chunk_mb(p + 2, op->chunk2, op->mb2);
	} else if (msg && style == PT_NAME_LONG) {
		memcpy(p, kind == PT_OP_SEND ? " \xe2\x86\x92 r" : " \xe2\x86\x90 r", 6);
		p = put_int(p + 6, op->peer);
	} else if (msg) {
		*p++ = kind == PT_OP_SEND ? '>' : '<';
		p = put_int(p, op->peer);
	}
	return finish(tmp, (int)(p - tmp), buf, size);
}

/* "<letter><chunk>:<mb>" at *p; advances *p. */
static int parse_one(const char **p, int *kind, int *chunk, int *mb)
{
	const char *s = *p;
	char *end;
	switch (*s) {
	case 'F': *kind = PT_OP_F; break;
	case 'B': *kind = PT_OP_B; break;
	case 'I': *kind = PT_OP_I; break;
	case 'W': *kind = PT_OP_W; break;
	default: return PT_EINVAL;
	}
	s++;
	if (*s < '0' || *s > '9')
		return PT_EINVAL;
	long c = strtol(s, &end, 10);
	if (*end != ':' || c > 32767)
		return PT_EINVAL;
	s = end + 1;
	if (*s < '0' || *s > '9')
		return PT_EINVAL;
	long m = strtol(s, &end, 10);
	if (m > 0x7fffffffL)
		return PT_EINVAL;
	*chunk = (int)c;
	*mb = (int)m;
	*p = end;
	return 0;
}

int pt_op_parse(const char *text, pt_op *out)
{
	const char *p = text;
	int k1, c1, m1, k2, c2, m2;
	if (parse_one(&p, &k1, &c1, &m1) < 0)
		return PT_EINVAL;
	if (*p == '\0') {
		*out = pt_op_make(k1, c1, m1);
		return 0;
	}
	if (*p != '|' || k1 != PT_OP_F)
		return PT_EINVAL;
	p++;
	if (parse_one(&p, &k2, &c2, &m2) < 0 || k2 != PT_OP_B || *p != '\0')
		return PT_EINVAL;
	*out = pt_op_make(PT_OP_FB, c1, m1);
	out->chunk2 = (int16_t)c2;
	out->mb2 = m2;
	return 0;
}
