/*
 * runner/link.h — the sim's link rule, shared by the simulator (sim.c) and
 * the prediction's replay of a stored plan (replay.c): a directed link
 * carries one transfer at a time, so a transfer starts once it is ready and
 * its link is free, holds the link for its wire time, and arrives a latency
 * later. Private to the runner.
 */
#ifndef PT_RUNNER_LINK_H
#define PT_RUNNER_LINK_H

#include <stdint.h>
#include <stdlib.h>

/* One sender's links, by receiver (ranks talk to few peers): zero-initialise,
 * free(v) at the end. */
struct pt_links {
	struct pt_link {
		int b;
		int64_t free_at;
	} *v;
	int n, cap;
};

/*
 * Time a transfer to receiver b that is ready at `ready` and takes `wire` on
 * the link and `latency` after it: *start and *end (arrival) set, the link
 * held until start + wire. Returns 0, or -1 when the link list cannot grow
 * (out of memory; nothing set).
 */
static inline int pt_link_transfer(struct pt_links *l, int b, int64_t ready, int64_t wire, int64_t latency,
				   int64_t *start, int64_t *end)
{
	int i = 0;
	while (i < l->n && l->v[i].b != b)
		i++;
	if (i == l->n) {
		if (l->n == l->cap) {
			int cap = l->cap ? l->cap * 2 : 4;
			struct pt_link *v = realloc(l->v, (size_t)cap * sizeof *v);
			if (!v)
				return -1;
			l->v = v;
			l->cap = cap;
		}
		l->v[l->n++] = (struct pt_link){b, 0};
	}
	*start = ready > l->v[i].free_at ? ready : l->v[i].free_at;
	l->v[i].free_at = *start + wire;
	*end = *start + wire + latency;
	return 0;
}

#endif
