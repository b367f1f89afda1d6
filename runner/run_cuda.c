/*
 * runner/run_cuda.c — `pipetrace run --backend cuda`: join the process
 * group (mpirun or not), find the devices, build the plan with the model's
 * message size, place the ranks (gpu_map.c), measure this process's clock
 * against process 0's, start CUPTI before any CUDA context exists, set the
 * run up, run the warm-up steps unrecorded, record one step (CUDA events,
 * CUPTI activity tied to the ops, NVTX ranges), check it against the cpu
 * reference and write the trace. Under mpirun each process writes its own
 * database, FILE.rank<N>.db, holding its rank, its clock offset for
 * `pipetrace merge`. Everything that can be refused (no device, bad
 * placement, a file in the way) is refused before the output is created.
 * Option parsing is cmd_run.c's; the backend cuda_cuda.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cmd.h"
#include "config.h"
#include "cuda.h"

static int check_meta(pt_rec *rec, const pt_cuda_check *k, int ran)
{
	char buf[64];
	int err = pt_rec_meta(rec, "cuda.check", !ran ? "skipped" : k->ok ? "ok" : "failed");
	if (!ran || err)
		return err;
	snprintf(buf, sizeof buf, "%d/%d", k->close, k->mbs);
	err = pt_rec_meta(rec, "cuda.check.losses_close", buf);
	snprintf(buf, sizeof buf, "%.3g", k->worst);
	if (!err)
		err = pt_rec_meta(rec, "cuda.check.grad_error", buf);
	snprintf(buf, sizeof buf, "%.3g", k->limit);
	if (!err)
		err = pt_rec_meta(rec, "cuda.check.grad_limit", buf);
	return err;
}

static void print_check(const struct run_args *a, const pt_cuda_check *k)
{
	FILE *f = k->ok ? stdout : stderr;
	if (a->quiet && k->ok)
		return;
	fprintf(f,
		"check: %d/%d losses within %.0e (relative) of the cpu reference; gradients: worst "
		"1-2Σxy/Σ(x²+y²) = %.2g (stage %d, W%d; limit %.0e for %s) -> %s\n",
		k->close, k->mbs, k->loss_limit, k->worst, k->worst_stage, k->worst_w, k->limit,
		pt_dtype_name(a->dtype), k->ok ? "ok" : "FAILED");
	if (k->first_bad >= 0)
		fprintf(f, "check: microbatch %d: loss %.17g, reference %.17g\n", k->first_bad, k->loss, k->ref_loss);
}

int run_cuda(struct run_args *a)
{
	pt_procs procs;
	pt_gpu_map map;
	pt_plan *plan = NULL;
	pt_cuda *cu = NULL;
	pt_rec *rec = NULL;
	pt_cupti *cupti = NULL;
	pt_exec_result res;
	pt_cuda_check chk;
	char out[4096];
	int visible = 0, cupti_on = 0;
	int64_t offset = 0, rtt = 0;
	memset(&chk, 0, sizeof chk);
	memset(&map, 0, sizeof map);
	pt_cuda_opts o = {
	    .hidden = a->hidden, .seq = a->seq, .mb_size = a->mb_size, .dtype = a->dtype, .seed = a->seed, .trace = 1};
	int err = pt_procs_init(&procs);
	if (err)
		return cli_status(err);
	if (procs.size > 1)
		pt_rank_db_name(a->output, procs.rank, out, sizeof out);
	else
		snprintf(out, sizeof out, "%s", a->output);
	int rc = cli_check_output("run", out, a->force);
	if (rc) {
		pt_procs_fini(&procs);
		return rc;
	}
	/* the plan first: a bad schedule is reported as such, GPU or not */
	size_t esz = a->dtype == PT_DTYPE_F64 ? 8 : a->dtype == PT_DTYPE_BF16 ? 2 : 4;
	a->po.bytes = (int64_t)a->mb_size * a->seq * a->hidden * (int64_t)esz;
	err = plan_build("run", &a->po, &plan);
	if (!err)
		err = pt_cuda_devices(&visible);
	if (!err)
		err = pt_gpu_map_make(plan->ranks, a->gpus, visible, &procs, &map);
	if (!err && procs.size > 1 && strcmp(pt_cuda_transport(&map), "nccl") != 0)
		err = pt_logerr(PT_ENOTSUP, "cuda backend: under mpirun messages need NCCL");
	err = pt_procs_agree(&procs, err);
	if (!err)
		err = pt_procs_clock_offset(&procs, &offset, &rtt);
	if (!err) {
		pt_rec_opts ro = {.clock = PT_CLOCK_MONOTONIC, .overwrite = a->force};
		err = pt_rec_create(out, &ro, &rec);
	}
#ifdef PT_HAVE_CUPTI
	if (!err && !(err = pt_cupti_create(rec, &cupti))) {
		/* before any context: CUPTI's own rule. Without it the run still
		 * records ops (CUDA events) and NVTX ranges, and says so in meta. */
		if (pt_cupti_start(cupti) == 0) {
			cupti_on = 1;
		} else {
			pt_log(PT_LOG_WARN, "cuda backend: recording without kernels (CUPTI did not start)");
			pt_cupti_destroy(cupti);
			cupti = NULL;
		}
	}
#else
	pt_log(PT_LOG_WARN, "cuda backend: recording ops, messages and NVTX ranges but no kernels: this build has "
			    "no CUPTI");
#endif
	if (!err)
		err = pt_cuda_create(plan, &o, &map, &procs, &cu);
	err = pt_procs_agree(&procs, err);
	struct run_progress pr;
	char label[48];
	/* one line per terminal: under mpirun, process 0's */
	int quiet = a->quiet || procs.rank > 0;
	for (int w = 0; w < a->warmup && !err; w++) {
		snprintf(label, sizeof label, "warm-up step %d/%d: ops", w + 1, a->warmup);
		run_progress_start(&pr, label, quiet);
		pt_exec_step_opts so = {.mode = a->comm, .progress = run_progress, .progress_ctx = &pr};
		err = pt_procs_agree(&procs, pt_cuda_step(cu, &so, &res));
		run_progress_end(&pr);
	}
	if (!err)
		err = pt_cuda_trace(cu, rec, cupti);
	if (!err) {
		run_progress_start(&pr, "recorded step: ops", quiet);
		pt_exec_step_opts so = {
		    .mode = a->comm, .rec = rec, .fault = a->fault, .progress = run_progress, .progress_ctx = &pr};
		err = pt_procs_agree(&procs, pt_cuda_step(cu, &so, &res));
		run_progress_end(&pr);
	}
	if (!err && cupti_on) {
		cupti_on = 2; /* stopped */
		err = pt_cupti_stop(cupti);
	}
	if (!err && a->check)
		err = pt_procs_agree(&procs, pt_cuda_check_run(cu, &chk));
	if (!err) {
		pt_run_info info = {.backend = "cuda",
				    .comm_mode = a->comm,
				    .cost = &res.median,
				    .bytes = a->po.bytes,
				    .plan_source = a->po.plan_csv,
				    .local = map.local,
				    .device = map.device};
		err = pt_run_begin(rec, plan, &info);
	}
	if (!err)
		err = pt_cuda_meta(cu, rec);
	const char *cupti_state = cupti_on ? "on" : "off (not in this build, or it did not start)";
	if (!err)
		err = pt_rec_meta(rec, "cuda.cupti", cupti_state);
	if (!err)
		err = pt_rec_meta_int(rec, "cuda.step_ns", res.step_ns);
	if (!err)
		err = pt_rec_meta_int(rec, "cuda.warmup_steps", a->warmup);
	if (!err)
		err = pt_rec_meta_int(rec, "cuda.process", procs.rank);
	if (!err)
		err = pt_rec_meta_int(rec, "cuda.processes", procs.size);
	if (!err)
		err = pt_rec_meta_int(rec, "clock.offset_ns", offset);
	if (!err)
		err = pt_rec_meta_int(rec, "clock.offset_rtt_ns", rtt);
	if (!err)
		err = check_meta(rec, &chk, a->check);
	if (!err) {
		err = pt_rec_close(rec);
		rec = NULL;
	}
	if (!err && !a->quiet) {
		char step[32];
		cli_fmt_ns(res.step_ns, res.step_ns, step, sizeof step);
		double flops = pt_cuda_step_flops(cu);
		printf("recorded %s on %d ranks, %d microbatches (cuda backend, %s topology on %d GPU%s, %s transport, "
		       "%s comm, %s, hidden %d, %d rows): step %s, %.1f GFLOP/s -> %s\n",
		       plan->name, plan->ranks, plan->microbatches, pt_topo_name(map.topo), map.ngpus,
		       map.ngpus == 1 ? "" : "s", pt_cuda_transport(&map), pt_comm_name(a->comm),
		       pt_dtype_name(a->dtype), a->hidden, a->seq * a->mb_size, step,
		       res.step_ns > 0 ? flops / (double)res.step_ns : 0, out);
	}
	if (!err && a->check)
		print_check(a, &chk);
	if (cupti_on == 1)
		pt_cupti_stop(cupti); /* a failure mid-run: no more records into rec */
	pt_rec_abort(rec);	      /* NULL once closed: nothing is left at FILE on failure */
	pt_cuda_destroy(cu);
	pt_cupti_destroy(cupti);
	pt_gpu_map_free(&map);
	pt_plan_destroy(plan);
	pt_procs_fini(&procs);
	if (!err && a->check && !chk.ok)
		return CLI_FAIL;
	return cli_status(err);
}
