/*
 * libtrace/tbuf.c — the recording threads' side: each thread's ring of
 * fixed-size chunks, filled by plain stores (the inline pt_begin/pt_end of
 * trace.h, and pt_emit here) and handed to the writer one full chunk at a
 * time with a release store. A thread that laps the writer waits, counted
 * as a stall, rather than dropping events. No SQL here.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rec_internal.h"

static __thread pt_rec *tl_rec;
static __thread pt_tbuf *tl_buf;

/* ------------------------------------------------------------- producers */

void tbuf_free(pt_tbuf *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; b->chunks && i < b->nchunks; i++)
		free(b->chunks[i].ev);
	free(b->chunks);
	free(b);
}

pt_tbuf *pt_rec_thread(pt_rec *rec)
{
	if (tl_rec == rec && tl_buf)
		return tl_buf;
	pthread_t self = pthread_self();
	pthread_mutex_lock(&rec->reg_lock);
	for (pt_tbuf *b = rec->tbufs; b; b = b->next) {
		if (pthread_equal(b->owner, self)) {
			pthread_mutex_unlock(&rec->reg_lock);
			tl_rec = rec;
			tl_buf = b;
			return b;
		}
	}
	pthread_mutex_unlock(&rec->reg_lock);

	pt_tbuf *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->rec = rec;
	b->owner = self;
	b->hot.tsc = rec->tsc;
	b->nchunks = rec->nchunks;
	b->hot.cap = rec->chunk_events;
	b->chunks = calloc(b->nchunks, sizeof *b->chunks);
	if (!b->chunks) {
		tbuf_free(b);
		return NULL;
	}
	for (uint32_t i = 0; i < b->nchunks; i++) {
		size_t bytes = (size_t)b->hot.cap * sizeof(pt_event);
		b->chunks[i].ev = malloc(bytes);
		if (!b->chunks[i].ev) {
			tbuf_free(b);
			return NULL;
		}
		/* Live clocks: fault every page in now, so the hot path never
		 * does. A virtual clock (sim, import) is not timing itself. */
		if (rec->clock != PT_CLOCK_VIRTUAL)
			for (size_t off = 0; off < bytes; off += 4096)
				((volatile char *)b->chunks[i].ev)[off] = 0;
	}
	b->hot.ev = b->chunks[0].ev;
	pthread_mutex_lock(&rec->reg_lock);
	b->next = rec->tbufs;
	rec->tbufs = b;
	pthread_mutex_unlock(&rec->reg_lock);
	tl_rec = rec;
	tl_buf = b;
	return b;
}

/* Hand the current chunk to the writer and take the next one. */
void pt_tbuf_advance_(pt_tbuf *b)
{
	struct chunk *c = &b->chunks[b->cur];
	c->count = b->hot.pos;
	atomic_store(&c->full, 1); /* seq_cst: pairs with the writer's `sleeping` */
	if (atomic_load(&b->rec->sleeping))
		pt_writer_wake(b->rec);
	b->cur = (b->cur + 1) % b->nchunks;
	c = &b->chunks[b->cur];
	if (atomic_load_explicit(&c->full, memory_order_acquire)) {
		b->stalls++;
		struct timespec nap = {0, 50000};
		while (atomic_load_explicit(&c->full, memory_order_acquire))
			nanosleep(&nap, NULL);
	}
	b->hot.ev = c->ev;
	b->hot.pos = 0;
}

int64_t pt_mono_ticks_(void) { return pt_mono_ns(); }

int64_t pt_rec_ticks(const pt_rec *rec)
{
	if (rec->clock == PT_CLOCK_VIRTUAL)
		return 0;
	return rec->tsc ? pt_tsc_read() : pt_mono_ns();
}

void pt_emit(pt_tbuf *b, const pt_event *ev)
{
	pt_event *e = pt_slot_(b);
	*e = *ev;
	e->flags_ = PT_REC_COMPLETE;
}

void pt_emit_ticks(pt_tbuf *b, const pt_event *ev)
{
	pt_event *e = pt_slot_(b);
	*e = *ev;
	e->flags_ = PT_REC_COMPLETE_TICKS;
}

int64_t pt_rec_origin(const pt_rec *rec) { return rec->clock == PT_CLOCK_VIRTUAL ? 0 : rec->t0_mono; }

void tbuf_forget(pt_rec *r)
{
	if (tl_rec == r) {
		tl_rec = NULL;
		tl_buf = NULL;
	}
}
