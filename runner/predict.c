/*
 * runner/predict.c — what the sim says a recorded run should have cost: the
 * trace's own plan (read back through libtrace's reader) re-simulated under
 * costs calibrated on the same trace (calibrate.c), summed into each rank's
 * predicted busy time and bubble over the predicted window, as
 * docs/metrics.md defines them. `stats` shows these beside the measurement;
 * the difference is what the cost model does not capture (jitter, contention,
 * launch overheads). Nothing is written, and the plan is never held whole:
 * the sim's walk reads it from the trace as it goes (replay.c).
 */
#include <stdlib.h>
#include <string.h>

#include "runner.h"

/* Microbatches per pipeline: one more than the largest a compute op names
 * (validation then checks that each one is complete and rejects what is out
 * of range). An mb at or past limit is refused here, naming op k of rank:
 * the validator sizes its tables by these counts. */
static int note_mb(pt_plan *p, const char *path, int rank, size_t k, const pt_op *o, int chunk, int mb, int limit)
{
	if (mb >= limit) {
		char n[64];
		pt_op_name(o, PT_NAME_SPEC, n, sizeof n);
		return pt_logerr(PT_ECORRUPT, "%s: rank %d, step %zu (%s): microbatch %d, but the run has %d", path,
				 rank, k, n, mb, limit);
	}
	if (chunk < 0 || chunk >= p->chunks)
		return 0;
	int pipe = pt_plan_chunk(p, rank, chunk)->pipe;
	if (pipe >= 0 && pipe < 2 && mb >= p->mbs[pipe])
		p->mbs[pipe] = mb + 1;
	return 0;
}

/* What read_plan learns from one rank's ops, gathered by a caller that
 * reads them anyway: the largest microbatch on each chunk, the kinds, the
 * count, and the first op naming a microbatch past the run's count. */
struct digest_rank {
	int seen;
	size_t n;
	unsigned kinds;
	int32_t maxmb[64]; /* by chunk; INT32_MIN: none */
	int bad;
	size_t bad_k;
	pt_op bad_op;
	int bad_chunk, bad_mb;
};

struct pt_plan_digest {
	int nranks, mblimit;
	struct digest_rank *rank; /* by rank id, 0 .. nranks-1 */
};

/* The limit read_plan puts on microbatches: the run's count, if known. */
static int mb_limit(pt_trace *t)
{
	int64_t mbs64 = pt_trace_meta_int(t, "microbatches", 0);
	return mbs64 > 0 && mbs64 < INT32_MAX ? (int)mbs64 : INT32_MAX;
}

int pt_plan_digest_create(pt_trace *t, pt_plan_digest **out)
{
	int n = pt_trace_nranks(t);
	pt_plan_digest *d = calloc(1, sizeof *d);
	if (d && n > 0 && !(d->rank = calloc((size_t)n, sizeof *d->rank))) {
		free(d);
		d = NULL;
	}
	*out = d;
	if (!d)
		return PT_ENOMEM;
	d->nranks = n > 0 ? n : 0;
	d->mblimit = mb_limit(t);
	return 0;
}

static void digest_mb(struct digest_rank *r, int chunk, int mb)
{
	if (chunk >= 0 && chunk < 64 && mb > r->maxmb[chunk])
		r->maxmb[chunk] = mb;
}

void pt_plan_digest_ops(pt_plan_digest *d, int rank, const pt_op *ops, size_t n)
{
	if (rank < 0 || rank >= d->nranks)
		return; /* read_plan refuses such a rank before its ops */
	struct digest_rank *r = &d->rank[rank];
	if (!r->seen) {
		r->seen = 1;
		for (int c = 0; c < 64; c++)
			r->maxmb[c] = INT32_MIN;
	}
	for (size_t i = 0; i < n && !r->bad; i++, r->n++) {
		const pt_op *o = &ops[i];
		if (!pt_kind_is_compute(o->kind))
			continue;
		int two = o->kind == PT_OP_FB;
		if (o->mb >= d->mblimit || (two && o->mb2 >= d->mblimit)) {
			/* as note_mb meets it: the first half first */
			int first = o->mb >= d->mblimit;
			*r = (struct digest_rank){.seen = 1,
						  .bad = 1,
						  .bad_k = r->n,
						  .bad_op = *o,
						  .bad_chunk = first ? o->chunk : o->chunk2,
						  .bad_mb = first ? o->mb : o->mb2};
			return;
		}
		digest_mb(r, o->chunk, o->mb);
		if (two)
			digest_mb(r, o->chunk2, o->mb2);
		r->kinds |= 1u << o->kind;
	}
}

void pt_plan_digest_destroy(pt_plan_digest *d)
{
	if (!d)
		return;
	free(d->rank);
	free(d);
}

/* The plan a trace holds, read rank by rank: its layout (ranks, chunks,
 * microbatches per pipeline) always, its ops only when keep is set;
 * *kinds gets the compute kinds it uses (bit 1 << kind). Not validated,
 * but what would size the validator's tables is refused here (PT_ECORRUPT,
 * naming the file): a meta layout the chunks cannot fill, a chunk at no
 * stage, a microbatch past the run's count or the plan's length. Without
 * keep, a rank dg has seen whole is not read again: its digest says the same. */
static int read_plan(pt_trace *t, int keep, const pt_plan_digest *dg, pt_plan **out, unsigned *kinds)
{
	*out = NULL;
	*kinds = 0;
	const char *path = pt_trace_path(t);
	int P = pt_trace_nranks(t);
	int64_t chunks64 = pt_trace_meta_int(t, "chunks", 1);
	int64_t npipes64 = pt_trace_meta_int(t, "pipes", 1);
	int64_t nstages64 = pt_trace_meta_int(t, "stages", 0);
	if (P < 1 || chunks64 < 1 || chunks64 > 64 || npipes64 < 1 || npipes64 > 2 || nstages64 < 1)
		return pt_logerr(PT_ENOTSUP, "%s: the trace does not describe its plan's layout (ranks, chunks, stages)",
				 path);
	/* each stage on exactly one chunk (validation checks which one): sizes
	 * that disagree would only size the plan's tables wrong */
	/* (bounded first, so that the product cannot overflow: npipes <= 2) */
	if (nstages64 > INT32_MAX || npipes64 * nstages64 != (int64_t)P * chunks64)
		return pt_logerr(PT_ECORRUPT, "%s: %lld pipeline(s) of %lld stages cannot sit on %d ranks of %lld chunks",
				 path, (long long)npipes64, (long long)nstages64, P, (long long)chunks64);
	int chunks = (int)chunks64, npipes = (int)npipes64, nstages = (int)nstages64;
	const char *sname = pt_trace_meta(t, "schedule");
	int sched = sname ? pt_sched_parse(sname) : -1;
	pt_plan *p;
	int err = pt_plan_alloc(sched < 0 ? PT_SCHED_CSV : sched, P, chunks, npipes, nstages, &p);
	if (err)
		return err;
	if (sname)
		snprintf(p->name, sizeof p->name, "%s", sname);
	int64_t mbs64 = pt_trace_meta_int(t, "microbatches", 0);
	p->microbatches = mbs64 > 0 && mbs64 < INT32_MAX ? (int)mbs64 : 0;
	if (dg && dg->mblimit != mb_limit(t))
		dg = NULL; /* not this trace's */
	p->group = (int)pt_trace_meta_int(t, "group", 0);
	/* no microbatch past the run's count (total, over both pipelines) */
	int mblimit = p->microbatches > 0 ? p->microbatches : INT32_MAX;
	pt_chunk_info ci[64];
	size_t nops = 0;
	for (int i = 0; i < P && !err; i++) {
		pt_rank_info ri;
		if ((err = pt_trace_rank_at(t, i, &ri)))
			break;
		if (ri.rank != i) {
			err = pt_logerr(PT_ENOTSUP, "%s: ranks are not numbered 0..%d; cannot re-simulate", path, P - 1);
			break;
		}
		int n = pt_trace_chunks(t, i, ci, 64);
		if (n < 0) {
			err = n;
			break;
		}
		if (n != chunks) {
			err = pt_logerr(PT_ENOTSUP, "%s: rank %d describes %d chunks, meta says %d", path, i, n, chunks);
			break;
		}
		for (int c = 0; c < n && !err; c++) {
			if (ci[c].pipe < 0 || ci[c].pipe >= npipes || ci[c].stage < 0 || ci[c].stage >= nstages ||
			    ci[c].chunk != c)
				err = pt_logerr(PT_ECORRUPT, "%s: rank %d chunk %d sits at an impossible stage", path, i,
						ci[c].chunk);
			else
				pt_plan_place(p, i, c, ci[c].pipe, ci[c].stage);
		}
		const struct digest_rank *d = !keep && dg && i < dg->nranks && dg->rank[i].seen ? &dg->rank[i] : NULL;
		if (d && !err) {
			if (d->bad) {
				err = note_mb(p, path, i, d->bad_k, &d->bad_op, d->bad_chunk, d->bad_mb, mblimit);
				break;
			}
			for (int c = 0; c < 64 && !err; c++)
				if (d->maxmb[c] != INT32_MIN)
					err = note_mb(p, path, i, 0, NULL, c, d->maxmb[c], mblimit);
			*kinds |= d->kinds;
			nops += d->n;
			continue;
		}
		pt_op *ops = NULL;
		size_t n_ops = 0;
		if (!err)
			err = pt_trace_plan(t, i, &ops, &n_ops);
		for (size_t k = 0; k < n_ops && !err; k++) {
			const pt_op *o = &ops[k];
			if (pt_kind_is_compute(o->kind)) {
				err = note_mb(p, path, i, k, o, o->chunk, o->mb, mblimit);
				if (!err && o->kind == PT_OP_FB)
					err = note_mb(p, path, i, k, o, o->chunk2, o->mb2, mblimit);
				*kinds |= 1u << o->kind;
			}
			if (!err && keep)
				err = pt_plan_push(p, i, o);
		}
		free(ops);
		nops += n_ops;
	}
	if (!err && !nops)
		err = pt_logerr(PT_ENOTSUP, "%s: the trace holds no plan to re-simulate", path);
	/* without the run's count, a sound plan still has an F per microbatch */
	if (!err && (size_t)p->mbs[0] + (size_t)p->mbs[1] > nops)
		err = pt_logerr(PT_ECORRUPT, "%s: the plan names microbatches up to %d but holds only %zu ops", path,
				(p->mbs[0] > p->mbs[1] ? p->mbs[0] : p->mbs[1]) - 1, nops);
	if (err) {
		pt_plan_destroy(p);
		return err;
	}
	*out = p;
	return 0;
}

int pt_plan_from_trace(pt_trace *t, pt_plan **out)
{
	unsigned kinds;
	int err = read_plan(t, 1, NULL, out, &kinds);
	if (!err && (err = pt_plan_validate(*out))) {
		pt_log(PT_LOG_ERROR, "%s: the stored plan above is invalid", pt_trace_path(t));
		pt_plan_destroy(*out);
		*out = NULL;
	}
	return err;
}

static int get_rank(void *arg, int r, pt_op **ops, size_t *n) { return pt_trace_plan(arg, r, ops, n); }

int pt_predict(pt_trace *t, pt_prediction **out) { return pt_predict_fed(t, NULL, NULL, out); }

int pt_predict_fed(pt_trace *t, pt_calibrator *cal, const pt_plan_digest *dg, pt_prediction **out)
{
	*out = NULL;
	pt_plan *layout = NULL;
	unsigned kinds = 0;
	pt_prediction *pr = calloc(1, sizeof *pr);
	if (!pr)
		return PT_ENOMEM;
	/* The plan is not held: a large one costs far more than the rest of
	 * `stats`. Its ranks are checked one at a time, and the sim's walk reads
	 * it as it goes: pt_plan_validate's rendezvous run (flush mode, unit
	 * costs), then the prediction. Whether a walk finishes does not depend
	 * on the costs (a transfer is timed when its send is posted; what
	 * blocks is a side not yet posted), so for a flush-mode trace the
	 * prediction's run is that check too, and runs once. */
	const char *mode = pt_trace_meta(t, "comm_mode");
	pr->comm_mode = mode && pt_comm_parse(mode) >= 0 ? pt_comm_parse(mode) : PT_COMM_FLUSH;
	int64_t lo = 0, hi = 0;
	int err = read_plan(t, 0, dg, &layout, &kinds);
	if (!err) {
		pt_cost unit = pt_cost_default();
		if (((err = pt_plan_check_ranks(layout, get_rank, t)) ||
		     (pr->comm_mode != PT_COMM_FLUSH &&
		      (err = pt_sim_replay(t, layout, &unit, PT_COMM_FLUSH, NULL, &lo, &hi)))) &&
		    err == PT_EPLAN)
			pt_log(PT_LOG_ERROR, "%s: the stored plan above is invalid", pt_trace_path(t));
	}
	if (!err)
		err = cal ? pt_calib_finish(cal, t, &pr->cost, &pr->calib)
			  : pt_cost_calibrate(t, &pr->cost, &pr->calib);
	if (!err) {
		unsigned lack = kinds & pr->calib.missing;
		for (int k = PT_OP_F; k <= PT_OP_FB && !err; k++)
			if (lack & (1u << k))
				err = pt_logerr(PT_ENOTSUP, "%s: the plan has %s ops but none were recorded", pt_trace_path(t),
						pt_kind_name(k));
	}
	if (err)
		goto out;
	pr->nranks = layout->ranks;
	pr->busy = calloc((size_t)layout->ranks, sizeof *pr->busy);
	pr->bubble = calloc((size_t)layout->ranks, sizeof *pr->bubble);
	if (!pr->busy || !pr->bubble) {
		err = PT_ENOMEM;
		goto out;
	}
	/* the window as metrics.c draws it: every op and every transfer; one
	 * compute stream per rank, so its ops never overlap and busy is their sum */
	if ((err = pt_sim_replay(t, layout, &pr->cost, pr->comm_mode, pr->busy, &lo, &hi))) {
		if (err == PT_EPLAN && pr->comm_mode == PT_COMM_FLUSH)
			pt_log(PT_LOG_ERROR, "%s: the stored plan above is invalid", pt_trace_path(t));
		goto out;
	}
	if (hi < lo)
		lo = hi = 0;
	pr->makespan = hi - lo;
	int64_t sum = 0;
	for (int r = 0; r < layout->ranks; r++) {
		pr->bubble[r] = pr->makespan - pr->busy[r];
		sum += pr->bubble[r];
	}
	pr->bubble_ratio = pr->makespan > 0 ? (double)sum / ((double)layout->ranks * (double)pr->makespan) : 0;
out:
	pt_plan_destroy(layout);
	if (err) {
		pt_prediction_destroy(pr);
		return err;
	}
	*out = pr;
	return 0;
}

void pt_prediction_destroy(pt_prediction *pr)
{
	if (!pr)
		return;
	free(pr->busy);
	free(pr->bubble);
	free(pr);
}
