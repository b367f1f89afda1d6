/*
 * bench/bench_import.c — `pipetrace import` on a large synthetic Kineto trace:
 * throughput in MB/s of JSON and in events/s, and the importer's peak RSS
 * (wait4's rusage of the child), which must stay bounded however large the
 * file (target: under 256 MiB for >= 1 GB). The trace (1 GiB by default;
 * argv[1] in MiB) is written into /tmp by a streamed generator shaped like
 * the profiler's output — cpu_op ranges with args, user annotations, CUDA
 * launches, ac2g flows, kernels on a compute and a communication stream with
 * their args, copies — after checking the free space, and deleted after.
 * Each run checks its own result: the trace must hold every generated
 * event. Medians of 3 runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "pipetrace/trace.h"

/* ------------------------------------------------------- the generator */

static char *buf;
static size_t pos;
#define BUFSZ (4 << 20)

static FILE *out;
static uint64_t written;

static void flush(void)
{
	fwrite(buf, 1, pos, out);
	written += pos;
	pos = 0;
}

static void s(const char *str)
{
	size_t n = strlen(str);
	if (pos + n > BUFSZ)
		flush();
	memcpy(buf + pos, str, n);
	pos += n;
}

static void u(uint64_t v)
{
	char t[24];
	int n = 0;
	do
		t[n++] = (char)('0' + v % 10);
	while (v /= 10);
	if (pos + 24 > BUFSZ)
		flush();
	while (n)
		buf[pos++] = t[--n];
}

/* µs with three decimals, from ns */
static void us(uint64_t ns)
{
	u(ns / 1000);
	char t[5] = {'.', (char)('0' + ns / 100 % 10), (char)('0' + ns / 10 % 10), (char)('0' + ns % 10), 0};
	s(t);
}

static const char *const kernels[] = {
    "void cutlass::device_kernel<dpsk::grouped_gemm::cuda::fp8_dp_gemm<128, 128, 64, 4, true>>(dpsk::grouped_"
    "gemm::cuda::Params)",
    "void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, cutlass::bfloat16_t>, "
    "true>(Flash_fwd_params)",
    "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
    "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, at::detail::Array<char*, 3>)",
};
static const char *const comm_kernels[] = {
    "void dpsk::ep::internode::dispatch<false, 8, false, 8>(int4*, float*, long*, float*, "
    "dpsk::ep::internode::SourceMeta*, int4 const*, float const*, long const*, float const*)",
    "void dpsk::ep::internode::combine<false, 8, __nv_bfloat16, 8, 2, 16, 24>(int4*, float*, bool const*, "
    "int4 const*, float const*, int const*)",
};
static const char *const parts[] = {"attn(F)", "dispatch(F)", "mlp(F)",	 "combine(F)",	"attn(B)",
				    "mlp(B)",  "mlp(W)",      "attn(W)", "dispatch(B)", "combine(B)"};

static void x_head(const char *cat, const char *name, uint64_t pid, uint64_t tid, uint64_t ts, uint64_t dur)
{
	s("  {\n    \"ph\": \"X\", \"cat\": \"");
	s(cat);
	s("\", \"name\": \"");
	s(name);
	s("\", \"pid\": ");
	u(pid);
	s(", \"tid\": ");
	u(tid);
	s(",\n    \"ts\": ");
	us(ts);
	s(", \"dur\": ");
	us(dur);
}

/* Write the trace; returns the events it holds that import keeps (X events). */
static int64_t generate(const char *path, uint64_t bytes, uint64_t *size)
{
	out = fopen(path, "w");
	buf = malloc(BUFSZ);
	if (!out || !buf)
		return -1;
	pos = 0;
	written = 0;
	s("{\n  \"schemaVersion\": 1,\n  \"deviceProperties\": [{\"id\": 0, \"name\": \"NVIDIA H800\"}],\n"
	  "  \"distributedInfo\": {\"backend\": \"nccl\", \"rank\": 0, \"world_size\": 64},\n"
	  "  \"traceEvents\": [\n");
	const uint64_t base = 1740461679000000000ULL, pid = 1166;
	uint64_t t = 1000000, corr = 1, kept = 0, gpu_t = 2000000, comm_t = 2000000;
	for (uint64_t i = 0; written + pos < bytes; i++) {
		if (i % 40 == 0) { /* an annotation over the next 40 launches */
			x_head("user_annotation", parts[(i / 40) % 10], pid, pid, base + t, 40 * 9000);
			s(",\n    \"args\": {\"External id\": ");
			u(corr);
			s(", \"Ev Idx\": ");
			u(i);
			s("}\n  },\n");
			kept++;
		}
		int comm = i % 8 == 7;
		x_head("cpu_op", comm ? "deep_ep::Buffer::dispatch" : "aten::mm", pid, pid, base + t, 8000);
		s(",\n    \"args\": {\"External id\": ");
		u(corr);
		s(", \"Ev Idx\": ");
		u(i);
		s(", \"Sequence number\": ");
		u(i);
		s(", \"Fwd thread id\": 0, \"Record function id\": 0, \"Input Dims\": [[4096, 7168], [7168, 2048]], "
		  "\"Input type\": [\"c10::BFloat16\", \"c10::BFloat16\"]}\n  },\n");
		x_head("cuda_runtime", "cudaLaunchKernel", pid, pid, base + t + 2000, 4000);
		s(",\n    \"args\": {\"External id\": ");
		u(corr);
		s(", \"cbid\": 211, \"correlation\": ");
		u(corr);
		s("}\n  },\n  {\"ph\": \"s\", \"id\": ");
		u(corr);
		s(", \"pid\": ");
		u(pid);
		s(", \"tid\": ");
		u(pid);
		s(", \"ts\": ");
		us(base + t + 2000);
		s(", \"cat\": \"ac2g\", \"name\": \"ac2g\"},\n");
		uint64_t *gt = comm ? &comm_t : &gpu_t, stream = comm ? 27 : 7, dur = comm ? 30000 : 7000;
		if (*gt < t + 6000)
			*gt = t + 6000;
		x_head("kernel", comm ? comm_kernels[i / 8 % 2] : kernels[i % 3], 0, stream, base + *gt, dur);
		s(",\n    \"args\": {\"External id\": ");
		u(corr);
		s(", \"queued\": 0, \"device\": 0, \"context\": 1, \"stream\": ");
		u(stream);
		s(", \"correlation\": ");
		u(corr);
		s(", \"registers per thread\": 128, \"shared memory\": 0, \"blocks per SM\": 1.939394, "
		  "\"warps per SM\": 7.757576, \"grid\": [256, 1, 1], \"block\": [128, 1, 1], "
		  "\"est. achieved occupancy %\": 12}\n  },\n  {\"ph\": \"f\", \"id\": ");
		u(corr);
		s(", \"pid\": 0, \"tid\": ");
		u(stream);
		s(", \"ts\": ");
		us(base + *gt);
		s(", \"cat\": \"ac2g\", \"name\": \"ac2g\", \"bp\": \"e\"},\n");
		kept += 3;
		if (i % 50 == 49) {
			x_head("gpu_memcpy", "Memcpy DtoD (Device -> Device)", 0, 7, base + *gt + dur, 1000);
			s(",\n    \"args\": {\"device\": 0, \"context\": 1, \"stream\": 7, \"correlation\": ");
			u(corr);
			s(", \"bytes\": 131072, \"memory bandwidth (GB/s)\": 131.072}\n  },\n");
			kept++;
		}
		*gt += dur + 500;
		t += 9000;
		corr++;
	}
	s("  {\"name\": \"Record Window End\", \"ph\": \"i\", \"s\": \"g\", \"pid\": \"\", \"tid\": \"\", \"ts\": ");
	us(base + t);
	s("}\n  ],\n  \"traceName\": \"bench.json\"\n}\n");
	flush();
	int bad = fclose(out) != 0;
	free(buf);
	*size = written;
	return bad ? -1 : (int64_t)kept;
}

/* ---------------------------------------------------------- the import */

static int import(const char *pt, const char *json, const char *db, double *secs, long *rss_kib)
{
	double t0 = bench_now();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execl(pt, pt, "import", "--quiet", "--no-progress", "--force", json, "-o", db, (char *)NULL);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -1;
	*secs = bench_now() - t0;
	*rss_kib = ru.ru_maxrss;
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024;
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char pt[512], dir[] = "/tmp/pt-bench-import-XXXXXX", json[300], db[300];
	snprintf(pt, sizeof pt, "%s/pipetrace", build);
	struct statvfs vfs;
	if (statvfs("/tmp", &vfs) == 0) {
		double free_mib = (double)vfs.f_bavail * (double)vfs.f_frsize / (1 << 20);
		if (free_mib < 3.0 * (double)mib) { /* the JSON, the database, its temporary copy */
			printf("import: skipped: %.0f MiB free in /tmp, %llu MiB needed\n", free_mib,
			       (unsigned long long)(3 * mib));
			return 0;
		}
	}
	if (!mkdtemp(dir))
		return 1;
	snprintf(json, sizeof json, "%s/trace.json", dir);
	snprintf(db, sizeof db, "%s/trace.db", dir);
	uint64_t size;
	double g0 = bench_now();
	int64_t events = generate(json, mib << 20, &size);
	if (events < 0) {
		fprintf(stderr, "bench_import: cannot write %s: %s\n", json, strerror(errno));
		return 1;
	}
	printf("import: generated a %.2f GiB Kineto trace with %lld events to import in %.1f s\n",
	       (double)size / (1 << 30), (long long)events, bench_now() - g0);
	enum { RUNS = 3 };
	double secs[RUNS];
	long rss = 0;
	int rc = 0;
	for (int k = 0; k < RUNS && !rc; k++) {
		long r;
		if (import(pt, json, db, &secs[k], &r)) {
			fprintf(stderr, "bench_import: %s import failed\n", pt);
			rc = 1;
			break;
		}
		if (r > rss)
			rss = r;
		pt_trace *t;
		if (pt_trace_open(db, &t)) {
			rc = 1;
			break;
		}
		int64_t got = pt_trace_meta_int(t, "rec.events", -1);
		pt_query q = pt_query_all();
		q.sources = PT_SRC_OPS;
		int64_t ops = pt_trace_count(t, &q);
		pt_trace_close(t);
		if (got - ops != events) {
			fprintf(stderr, "bench_import: the trace holds %lld events, %lld were generated\n",
				(long long)(got - ops), (long long)events);
			rc = 1;
		}
	}
	if (!rc) {
		qsort(secs, RUNS, sizeof secs[0], bench_cmp);
		double m = secs[RUNS / 2];
		printf(
		    "import: %.2f s = %.1f MB/s of JSON, %.2f million events/s (median of %d; runs %.2f to %.2f s)\n",
		    m, (double)size / m / 1e6, (double)events / m / 1e6, RUNS, secs[0], secs[RUNS - 1]);
		printf("import: peak RSS %.1f MiB for a %.2f GiB trace (target: bounded, under 256 MiB)\n",
		       (double)rss / 1024, (double)size / (1 << 30));
	}
	if (getenv("PT_BENCH_KEEP")) { /* to profile by hand */
		printf("import: kept %s\n", json);
		return rc;
	}
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
