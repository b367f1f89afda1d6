/*
 * runner/run_cpu.c — `pipetrace run --backend cpu`: build the plan with the
 * model's real message size, refuse a run that cannot fit in memory, run
 * warm-up steps, run and record one step, check it against the sequential
 * reference, and write the trace with the op durations the step measured
 * as its costs (so `stats` shows the schedule's formulas under them). The
 * option parsing is cmd_run.c's; the backend is cpu.c.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cmd.h"
#include "cpu.h"

static int check_meta(pt_rec *rec, const pt_cpu_check *k, int ran)
{
	char buf[64];
	int err = pt_rec_meta(rec, "cpu.check", !ran ? "skipped" : k->ok ? "ok" : "failed");
	if (!ran || err)
		return err;
	snprintf(buf, sizeof buf, "%d/%d", k->equal, k->mbs);
	err = pt_rec_meta(rec, "cpu.check.losses_equal", buf);
	snprintf(buf, sizeof buf, "%.3g", k->worst);
	if (!err)
		err = pt_rec_meta(rec, "cpu.check.grad_error", buf);
	return err;
}

int run_cpu(struct run_args *a)
{
	pt_cpu_opts o = {
		.hidden = a->hidden, .seq = a->seq, .mb_size = a->mb_size, .dtype = a->dtype, .seed = a->seed};
	pt_plan *plan = NULL;
	pt_cpu *cpu = NULL;
	pt_rec *rec = NULL;
	pt_exec_result res;
	pt_cpu_check chk;
	struct run_progress pr;
	char label[48];
	memset(&chk, 0, sizeof chk);
	a->po.bytes = pt_cpu_msg_bytes(&o);
	int err = plan_build("run", &a->po, &plan);
	if (!err) { /* the whole run, the check's reference included, must fit */
		pt_cpu_mem mem;
		err = pt_cpu_memory(plan, &o, &mem);
		if (!err && a->check)
			err = pt_cpu_refuse_if_short(&mem, 1);
	}
	if (!err)
		err = pt_cpu_create(plan, &o, &cpu);
	for (int w = 0; w < a->warmup && !err; w++) {
		snprintf(label, sizeof label, "warm-up step %d/%d: ops", w + 1, a->warmup);
		run_progress_start(&pr, label, a->quiet);
		pt_exec_step_opts so = {.mode = a->comm, .progress = run_progress, .progress_ctx = &pr};
		err = pt_cpu_step(cpu, &so, &res);
		run_progress_end(&pr);
	}
	if (!err) {
		pt_rec_opts ro = {.clock = PT_CLOCK_TSC, .overwrite = a->force, .chunk_events = 1024, .chunks = 16};
		err = pt_rec_create(a->output, &ro, &rec);
	}
	if (!err) {
		run_progress_start(&pr, "recorded step: ops", a->quiet);
		pt_exec_step_opts so = {
			.mode = a->comm, .rec = rec, .fault = a->fault, .progress = run_progress, .progress_ctx = &pr};
		err = pt_cpu_step(cpu, &so, &res);
		run_progress_end(&pr);
	}
	if (!err && a->check) {
		run_progress_start(&pr, "checking against the sequential reference: microbatches", a->quiet);
		err = pt_cpu_check_run(cpu, run_progress, &pr, &chk);
		run_progress_end(&pr);
	}
	if (!err) {
		pt_run_info info = {.backend = "cpu",
				    .comm_mode = a->comm,
				    .cost = &res.median,
				    .bytes = a->po.bytes,
				    .plan_source = a->po.plan_csv};
		err = pt_run_begin(rec, plan, &info);
	}
	if (!err)
		err = pt_cpu_meta(cpu, rec);
	if (!err)
		err = pt_rec_meta_int(rec, "cpu.step_ns", res.step_ns);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (!err)
		err = pt_rec_meta_int(rec, "cpu.warmup_steps", a->warmup);
	if (!err)
		err = pt_rec_meta_int(rec, "cpu.cores", cores);
	if (!err)
		err = check_meta(rec, &chk, a->check);
	if (!err) {
		err = pt_rec_close(rec);
		rec = NULL;
	}
	if (!err && !a->quiet) {
		char step[32];
		cli_fmt_ns(res.step_ns, res.step_ns, step, sizeof step);
		double flops = pt_cpu_step_flops(cpu);
		printf("recorded %s on %d ranks, %d microbatches (cpu backend, %s comm, %s, hidden %d, %d rows): "
		       "%zu ops, %zu messages, step %s, %.1f GFLOP/s over all ranks -> %s\n",
		       plan->name, plan->ranks, plan->microbatches, pt_comm_name(a->comm), pt_dtype_name(a->dtype),
		       a->hidden, a->seq * a->mb_size, pt_plan_count(plan, 0), pt_plan_count(plan, 1), step,
		       res.step_ns > 0 ? flops / (double)res.step_ns : 0, a->output);
	}
	if (!err && !a->quiet && cores > 0 && cores < plan->ranks)
		printf("note: %d ranks shared %ld cores: op times include waiting for a core, so idle time is not "
		       "the schedule's alone\n",
		       plan->ranks, cores);
	if (!err && a->check) {
		FILE *f = chk.ok ? stdout : stderr;
		if (!a->quiet || !chk.ok) {
			fprintf(f, "check: %d/%d losses bitwise equal to the sequential reference; gradients: worst "
				   "1-2Σxy/Σ(x²+y²) = %.2g (stage %d, W%d; limit %.0e) -> %s\n",
				chk.equal, chk.mbs, chk.worst, chk.worst_stage, chk.worst_w, chk.limit,
				chk.ok ? "ok" : "FAILED");
			if (chk.first_bad >= 0)
				fprintf(f, "check: microbatch %d: loss %.17g, reference %.17g\n", chk.first_bad,
					chk.loss, chk.ref_loss);
		}
	}
	pt_rec_abort(rec);
	pt_cpu_destroy(cpu);
	pt_plan_destroy(plan);
	if (!err && a->check && !chk.ok)
		return CLI_FAIL;
	return cli_status(err);
}
