/*
 * exporters/export_map.c — the export driver's small hash map: uint64 keys
 * (never ~0) to int64 values, open addressing with linear probing, grown by
 * doubling, removal by shifting the probe run back (no tombstones, so a map
 * that sees as many removals as insertions stays small). For the ranks and
 * streams of a trace and the messages in flight, not for every event.
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

/* The slot holding key, or the empty slot where its probe run ends. */
static size_t probe(const struct pt_map *m, uint64_t key)
{
	size_t i = mix(key) & (m->cap - 1);
	while (m->key[i] != key && m->key[i] != ~0ULL)
		i = (i + 1) & (m->cap - 1);
	return i;
}

int pt_map_find(const struct pt_map *m, uint64_t key, int64_t *val)
{
	if (!m->cap)
		return 0;
	size_t i = probe(m, key);
	if (m->key[i] == ~0ULL)
		return 0;
	*val = m->val[i];
	return 1;
}

int pt_map_get(const struct pt_map *m, uint64_t key)
{
	int64_t v;
	return pt_map_find(m, key, &v) ? (int)v : -1;
}

int pt_map_put(struct pt_map *m, uint64_t key, int64_t val)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		uint64_t *k = malloc(cap * sizeof *k);
		int64_t *v = malloc(cap * sizeof *v);
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
	size_t i = probe(m, key);
	m->key[i] = key;
	m->val[i] = val;
	m->n++;
	return 0;
}

void pt_map_del(struct pt_map *m, uint64_t key)
{
	if (!m->cap)
		return;
	size_t mask = m->cap - 1, i = probe(m, key);
	if (m->key[i] == ~0ULL)
		return;
	/* Move back every later entry of the run whose home is not between the
	 * hole and it, so that no probe run is cut short by the hole. */
	for (size_t j = (i + 1) & mask; m->key[j] != ~0ULL; j = (j + 1) & mask) {
		size_t home = mix(m->key[j]) & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->key[i] = m->key[j];
			m->val[i] = m->val[j];
			i = j;
		}
	}
	m->key[i] = ~0ULL;
	m->n--;
}

void pt_map_free(struct pt_map *m)
{
	free(m->key);
	free(m->val);
}
