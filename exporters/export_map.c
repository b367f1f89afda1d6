/*
 * exporters/export_map.c — the export driver's small hash map: uint64 keys
 * (never ~0) to ints, open addressing, grown by doubling. For the few
 * thousand ranks and streams of a trace, not for events.
 */
#include <stdlib.h>
#include <string.h>

#include "export_internal.h"

static uint64_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

/* The value of key, or -1. */
int pt_map_get(const struct pt_map *m, uint64_t key)
{
	if (!m->cap)
		return -1;
	for (size_t i = mix(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (m->key[i] == key)
			return m->val[i];
		if (m->key[i] == ~0ULL)
			return -1;
	}
}

int pt_map_put(struct pt_map *m, uint64_t key, int val)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		uint64_t *k = malloc(cap * sizeof *k);
		int *v = malloc(cap * sizeof *v);
		if (!k || !v) {
			free(k);
			free(v);
			return PT_ENOMEM;
		}
		memset(k, 0xff, cap * sizeof *k);
		for (size_t i = 0; i < m->cap; i++) {
			if (m->key[i] == ~0ULL)
				continue;
			size_t j = mix(m->key[i]) & (cap - 1);
			while (k[j] != ~0ULL)
				j = (j + 1) & (cap - 1);
			k[j] = m->key[i];
			v[j] = m->val[i];
		}
		free(m->key);
		free(m->val);
		m->key = k;
		m->val = v;
		m->cap = cap;
	}
	size_t i = mix(key) & (m->cap - 1);
	while (m->key[i] != ~0ULL)
		i = (i + 1) & (m->cap - 1);
	m->key[i] = key;
	m->val[i] = val;
	m->n++;
	return 0;
}

void pt_map_free(struct pt_map *m)
{
	free(m->key);
	free(m->val);
}
