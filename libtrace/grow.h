/*
 * libtrace/grow.h — the growable array every part of pipetrace appends to:
 * one rule for making room (double, overflow-checked) instead of a copy of it
 * at each push. Private to the source tree: libtrace's files and the
 * application's (runner, exporters, importers, viewer) include it; it is not
 * installed with include/pipetrace/, and being static inline it adds no
 * symbol to libpipetrace.so. It does not shrink, zero or free anything.
 */
#ifndef PT_GROW_H
#define PT_GROW_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipetrace/trace.h"

/*
 * Make room for at least `need` elements of `elem` bytes in the array whose
 * pointer is at `pp` (e.g. &v for `struct item *v`) and whose capacity in
 * elements is *cap. When need <= *cap nothing happens; otherwise the capacity
 * doubles (from 16 when it is 0) until it holds need, the array is
 * realloc()ed, and the new pointer and capacity are stored. The pointer is
 * read and written through memcpy, so any object pointer type works without a
 * cast. The elements beyond the old capacity are uninitialised.
 *
 * elem must not be 0. Returns 0, or PT_ENOMEM when realloc fails or the array
 * would exceed PTRDIFF_MAX bytes (no object can be larger, and the
 * multiplication is checked); then *pp and *cap are unchanged and the array
 * still belongs to the caller. Not thread-safe on one array.
 */
static inline int pt_grow(void *pp, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < need)
		c = c > SIZE_MAX / 2 ? need : 2 * c;
	if (c > (size_t)PTRDIFF_MAX / elem)
		return PT_ENOMEM;
	void *p;
	memcpy(&p, pp, sizeof p);
	p = realloc(p, c * elem);
	if (!p)
		return PT_ENOMEM;
	memcpy(pp, &p, sizeof p);
	*cap = c;
	return 0;
}

#endif
