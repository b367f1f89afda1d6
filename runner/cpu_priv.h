/*
 * runner/cpu_priv.h — the inside of a cpu backend run, shared by cpu.c
 * (the run) and cpu_check.c (its reference check); nobody else sees it.
 */
#ifndef PT_RUNNER_CPU_PRIV_H
#define PT_RUNNER_CPU_PRIV_H

#include <stdatomic.h>

#include "chan.h"
#include "cpu.h"

/* Weights and gradients of one rank's chunk. */
struct pt_cpu_param {
	void *w1, *w2, *dw1, *dw2;
};

/* One block for a run's big buffers, mapped once and backed by huge pages
 * where the kernel allows: faulting tens of MiB in page by page costs ~25 us
 * a page on some virtual machines, more than a default run computes. */
struct pt_cpu_arena {
	char *base;
	size_t size;
	_Atomic size_t used; /* rank threads take slots from it when a pool grows */
};

/* Map and fault in `bytes` (0 is fine). PT_ENOMEM. */
int pt_cpu_arena_init(struct pt_cpu_arena *a, size_t bytes);
/* The next 64-byte aligned piece of `bytes`, zeroed; NULL when full.
 * Thread-safe. */
void *pt_cpu_arena_take(struct pt_cpu_arena *a, size_t bytes);
void pt_cpu_arena_fini(struct pt_cpu_arena *a);

/* One (chunk, microbatch)'s activations (stage.c's layout). */
struct pt_cpu_slot {
	pt_mlp_slot act;
	int heap; /* act.x is the start of a malloc'ed block (the arena was full) */
};

struct pt_cpu {
	const pt_plan *plan;
	pt_cpu_opts o;
	pt_mlp m;
	size_t nh_bytes;	   /* one n x h buffer, padded */
	int G;			   /* global microbatches */
	struct pt_cpu_param *par;  /* [rank * chunks + chunk] */
	void **dg;		   /* [rank]: n x 4h scratch */
	char *data;		   /* G inputs, then G targets, nh_bytes apart */
	double *loss;		   /* [G] of the last step */
	int stepped;
	pt_chan *chan;
	pt_exec *x;
	pt_exec_ops ops;
	struct pt_cpu_arena arena; /* weights, gradients, data, scratch, the first slots */
};

/* 64-byte aligned, zeroed (so faulted in), padded to 64 bytes; NULL on ENOMEM. */
void *pt_cpu_alloc(size_t bytes);

#endif
