/*
 * importers/classify.c — how an importer reads names: which GPU kernels are
 * communication (NCCL, RCCL, DeepEP's all-to-all, NVSHMEM, custom
 * all-reduces: a POSIX regular expression the user may replace), and which
 * annotations stand for pipeline ops (DeepSeek's attn(F) / mlp(B) / mlp(W),
 * pipetrace's own F0:3, or --op-map entries). Decisions per name only; which
 * stream is communication (the kernels' time on it) is the sink's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "import.h"

/*
 * NCCL (ncclKernel_*, ncclDevKernel_*), RCCL, HCCL, MSCCL, NVSHMEM; DeepEP's
 * dispatch / combine / notify kernels (deep_ep:: and DeepSeek's in-house
 * dpsk::ep::, in their intranode, internode and low-latency namespaces — not
 * their layout kernels); pplx-kernels; torch's symmetric-memory collectives;
 * Transformer Engine's userbuffers; vLLM's custom all-reduce; and kernels
 * named after a collective.
 */
const char imp_comm_default[] =
    "(^|[^a-z])(nccl|rccl|hccl|msccl)|nvshmem|(deep_ep|dpsk::ep)::(intranode|internode|internode_ll)::|"
    "pplx::|symmetric_memory|userbuffers|cross_device_reduce|all_?reduce|all_?gather|reduce_?scatter|"
    "all_?to_?all";

static int compile(regex_t *re, const char *src, const char *what)
{
	int rc = regcomp(re, src, REG_EXTENDED | REG_ICASE | REG_NOSUB);
	if (rc == 0)
		return 0;
	char msg[256];
	regerror(rc, re, msg, sizeof msg);
	return pt_logerr(PT_EINVAL, "%s: '%s' is not a valid regular expression: %s", what, src, msg);
}

int imp_rules_init(imp_rules *r, const char *comm_re)
{
	memset(r, 0, sizeof *r);
	r->comm_src = comm_re ? comm_re : imp_comm_default;
	int err = compile(&r->comm, r->comm_src, "--comm-kernels");
	r->comm_ok = !err;
	return err;
}

static int kind_of(const char *s)
{
	static const struct {
		const char *name;
		int kind;
	} kinds[] = {{"F", PT_OP_F},   {"B", PT_OP_B},	     {"I", PT_OP_I},   {"W", PT_OP_W},
		     {"FB", PT_OP_FB}, {"none", PT_OP_NONE}, {"-", PT_OP_NONE}};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (!strcasecmp(s, kinds[i].name))
			return kinds[i].kind;
	return -1;
}

int imp_rules_add_map(imp_rules *r, const char *spec)
{
	const char *eq = strrchr(spec, '=');
	if (!eq || eq == spec)
		return pt_logerr(PT_EINVAL, "--op-map: '%s' is not REGEX=KIND (e.g. 'fwd_.*=F')", spec);
	int kind = kind_of(eq + 1);
	if (kind < 0)
		return pt_logerr(PT_EINVAL, "--op-map: unknown kind '%s' in '%s' (F, B, I, W, FB or none)", eq + 1,
				 spec);
	char *re = strndup(spec, (size_t)(eq - spec));
	struct op_map *m = realloc(r->maps, (r->nmaps + 1) * sizeof *m);
	if (!re || !m) {
		free(re);
		if (m)
			r->maps = m;
		return PT_ENOMEM;
	}
	r->maps = m;
	/* anchored: a map names whole annotations */
	size_t cap = strlen(re) + 8;
	char *anchored = malloc(cap);
	if (!anchored) {
		free(re);
		return PT_ENOMEM;
	}
	snprintf(anchored, cap, "^(%s)$", re);
	int err = compile(&m[r->nmaps].re, anchored, "--op-map");
	free(anchored);
	free(re);
	if (err)
		return err;
	m[r->nmaps++].kind = kind;
	return 0;
}

void imp_rules_fini(imp_rules *r)
{
	if (r->comm_ok)
		regfree(&r->comm);
	for (size_t i = 0; i < r->nmaps; i++)
		regfree(&r->maps[i].re);
	free(r->maps);
	memset(r, 0, sizeof *r);
}

int imp_is_comm_kernel(const imp_rules *r, const char *name)
{
	return name && r->comm_ok && regexec(&r->comm, name, 0, NULL, 0) == 0;
}

int imp_label(const imp_rules *r, const char *name, pt_op *op, size_t *part)
{
	if (!name || !*name)
		return 0;
	for (size_t i = 0; i < r->nmaps; i++) {
		if (regexec(&r->maps[i].re, name, 0, NULL, 0) != 0)
			continue;
		if (r->maps[i].kind == PT_OP_NONE)
			return 0;
		*op = pt_op_make(r->maps[i].kind, -1, -1);
		return 1;
	}
	if (pt_op_parse(name, op) == 0)
		return 1;
	size_t n = strlen(name);
	if (n < 4 || name[n - 1] != ')' || name[n - 3] != '(')
		return 0;
	int kind;
	switch (name[n - 2]) {
	case 'F': kind = PT_OP_F; break;
	case 'B': kind = PT_OP_B; break;
	case 'I': kind = PT_OP_I; break;
	case 'W': kind = PT_OP_W; break;
	default: return 0;
	}
	*op = pt_op_make(kind, -1, -1);
	*part = n - 3;
	return kind == PT_OP_B ? 2 : 1;
}
