/*
 * runner/cpu_priv.h — the inside of a cpu backend run, shared by cpu.c
 * (the run) and cpu_check.c (its reference check); nobody else sees it.
 */
#ifndef PT_RUNNER_CPU_PRIV_H
#define PT_RUNNER_CPU_PRIV_H

#include "chan.h"
#include "cpu.h"

/* Weights and gradients of one rank's chunk. */
struct pt_cpu_param {
	void *w1, *w2, *dw1, *dw2;
};

/* One (chunk, microbatch)'s activations: x the received input, a the
 * pre-activation (then its gradient), g = GELU(a), y the output, dy its
 * gradient, dx the input's gradient; xin what the forward read (x, or the
 * microbatch's input at a first stage). */
struct pt_cpu_slot {
	void *x, *a, *g, *y, *dy, *dx;
	const void *xin;
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
};

/* 64-byte aligned, zeroed (so faulted in), padded to 64 bytes; NULL on ENOMEM. */
void *pt_cpu_alloc(size_t bytes);

#endif
