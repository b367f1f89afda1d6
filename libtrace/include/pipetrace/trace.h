/*
 * pipetrace/trace.h — libtrace, the recording and reading library of pipetrace.
 *
 * libtrace owns the trace database (trace.db, SQLite) and everything that
 * touches it: the vocabulary of pipeline ops shared by every part of pipetrace
 * (pt_op, pt_event), the recorder (a lock-free per-thread hot path drained by a
 * writer thread into SQLite), and the reader that every consumer (stats,
 * exporters, viewer) uses. It knows nothing about how schedules are made or run:
 * the runner hands it plans and events, consumers read them back. The schema is
 * documented in docs/schema.md.
 *
 * Conventions. Functions return 0 (PT_OK) or a negative PT_E* code; out-params
 * come last; nothing here prints to stdout or exits: failures are also reported,
 * with the file and the reason, through the log callback (pt_log_set). Objects
 * made with _create/_open are released with _destroy/_close, which accept NULL.
 * Times are int64 nanoseconds on one timeline per trace, relative to the
 * absolute epoch stored in meta ("epoch_ns").
 */
#ifndef PIPETRACE_TRACE_H
#define PIPETRACE_TRACE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PT_VERSION "0.1.0"
/* The schema this library writes; it reads this version and older ones. */
#define PT_SCHEMA_VERSION 2
/* PRAGMA application_id of every pipetrace database ("PTRC"). */
#define PT_APPLICATION_ID 0x50545243

/* ------------------------------------------------------------------ errors */

enum {
	PT_OK = 0,
	PT_EINVAL = -1,	  /* invalid argument or invalid input data */
	PT_ENOMEM = -2,	  /* out of memory */
	PT_EIO = -3,	  /* read, write or rename failed */
	PT_ENOENT = -4,	  /* no such file */
	PT_ENOTDB = -5,	  /* the file is not an SQLite database */
	PT_EFOREIGN = -6, /* an SQLite database that pipetrace did not write */
	PT_ECORRUPT = -7, /* a damaged or truncated database */
	PT_EVERSION = -8, /* written by a newer pipetrace schema */
	PT_EEXIST = -9,	  /* the output exists and overwriting was not asked for */
	PT_ENOTSUP = -10, /* a feature this build or this trace does not have */
	PT_ESQL = -11,	  /* an unexpected SQLite failure */
	PT_ENODEV = -12,  /* no device for the asked backend */
	PT_EPLAN = -13,	  /* an invalid or impossible plan */
};

/* A static description of a result code ("not an SQLite database"). */
const char *pt_strerror(int err);

/* Nonzero when err means the user's input was bad (a missing, foreign or
 * corrupt file, an impossible parameter): the CLI exits 2 for those, 1 else. */
int pt_err_is_input(int err);

/* ----------------------------------------------------------------- logging */

enum pt_log_level { PT_LOG_ERROR = 0, PT_LOG_WARN, PT_LOG_INFO, PT_LOG_DEBUG };

typedef void (*pt_log_fn)(void *ctx, enum pt_log_level level, const char *msg);

/* Route every message of pipetrace's libraries to fn (NULL restores the
 * default, which writes errors and warnings to stderr). Not thread-safe with
 * respect to concurrent logging: call it once at start-up. */
void pt_log_set(pt_log_fn fn, void *ctx);

/* Log one message (printf format). Thread-safe; the message is cut at 1 KiB.
 * Returns err, so that `return pt_logerr(PT_EINVAL, "...")` reads naturally. */
void pt_log(enum pt_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int pt_logerr(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------- the op vocabulary */

/* What a plan step or a recorded interval is. */
enum pt_kind {
	PT_OP_NONE = 0,
	PT_OP_F = 1,	/* forward of one chunk for one microbatch */
	PT_OP_B = 2,	/* full backward (inputs and weights) */
	PT_OP_I = 3,	/* backward for inputs only; weight grads deferred to a W */
	PT_OP_W = 4,	/* one deferred weight-gradient group */
	PT_OP_FB = 5,	/* an overlapped pair: forward (chunk, mb), full backward (chunk2, mb2) */
	PT_OP_SEND = 6, /* point-to-point send of an activation or a gradient */
	PT_OP_RECV = 7, /* the matching receive */
	/* Activity below the ops (CUPTI, imported profiles): */
	PT_OP_KERNEL = 8,  /* a GPU kernel */
	PT_OP_MEMCPY = 9,  /* a copy; op.payload = copy kind (CUPTI's), op.bytes */
	PT_OP_MEMSET = 10, /* op.bytes */
	PT_OP_SYNC = 11,   /* a synchronisation (event/stream/context); op.payload = type */
	PT_OP_RUNTIME = 12, /* a CUDA runtime or driver call on a CPU thread (stream = thread) */
	PT_OP_RANGE = 13,  /* an annotated range (NVTX, record_function); stream = thread or GPU stream */
	PT_OP_KIND_MAX
};

/* What a SEND or RECV carries. */
enum pt_payload { PT_ACT = 0, PT_GRAD = 1 };

/* Where an op sits in its schedule (for idle breakdowns). */
enum pt_phase { PT_WARMUP = 0, PT_STEADY = 1, PT_COOLDOWN = 2 };

/* What a stream does. */
enum pt_stream_role { PT_STREAM_COMPUTE = 0, PT_STREAM_COMM = 1 };

/* The two streams every rank of a runner-made trace has. */
#define PT_STREAM_MAIN 0 /* compute */
#define PT_STREAM_P2P 1	 /* point-to-point communication */
/* GPU activity tied to no stream: a context or event synchronisation (CUPTI
 * gives it no stream id). Never a CUDA stream id, nor a runner stream. */
#define PT_STREAM_NONE UINT32_MAX

/* Pipeline compute ops (F, B, I, W, FB) and pipeline messages (SEND, RECV). */
static inline int pt_kind_is_compute(int kind) { return kind >= PT_OP_F && kind <= PT_OP_FB; }
static inline int pt_kind_is_comm(int kind) { return kind == PT_OP_SEND || kind == PT_OP_RECV; }
/* Activity recorded below the ops (kernels, copies, runtime calls, ranges). */
static inline int pt_kind_is_activity(int kind) { return kind >= PT_OP_KERNEL && kind < PT_OP_KIND_MAX; }

/* The kind's short name: "F", "FB", "SEND", "KERNEL", ...; "?" when unknown. */
const char *pt_kind_name(int kind);

/*
 * One step of a rank's plan, and the identity of a recorded interval.
 * chunk is the rank-local model chunk (for DualPipe, the direction), mb the
 * microbatch as numbered within that chunk's pipeline (per direction for
 * DualPipe, per leg for DualPipeV). For SEND/RECV, chunk and mb name the
 * sender's or receiver's own chunk and microbatch, payload what travels, peer
 * the other rank, seq the position of the message among all messages from the
 * sender to the receiver (matching is by that order, as in NCCL), and batch the
 * communication batch (posted together, waited together) on this rank.
 */
typedef struct pt_op {
	uint8_t kind;	 /* enum pt_kind */
	uint8_t payload; /* enum pt_payload (SEND/RECV) */
	uint8_t phase;	 /* enum pt_phase */
	uint8_t tag;	 /* schedule step (DualPipe S1..S8), 0 when none */
	int16_t chunk;
	int16_t chunk2; /* FB: chunk of the backward half; -1 otherwise */
	int32_t mb;
	int32_t mb2;   /* FB: microbatch of the backward half; -1 otherwise */
	int32_t peer;  /* SEND/RECV: the other rank; -1 otherwise */
	int32_t seq;   /* SEND/RECV: message index on the (sender, receiver) pair */
	int32_t batch; /* SEND/RECV: batch index on this rank; -1 otherwise */
	int32_t pad_;
	int64_t bytes; /* SEND/RECV: message size */
} pt_op;

/* A pt_op with every optional field cleared (-1). */
pt_op pt_op_make(int kind, int chunk, int mb);

/* Name styles for pt_op_name. */
enum pt_name_style {
	PT_NAME_SPEC = 0, /* the specs' notation: F0:3, F0:7|B1:3, sA0:3>1, rG1:2<0 */
	PT_NAME_LONG = 1, /* for traces: F0:3, SEND A0:3 → r1, RECV G1:2 ← r0 */
};

/* Write op's name into buf (always NUL-terminated when size > 0). Returns the
 * length the full name has, like snprintf. */
int pt_op_name(const pt_op *op, enum pt_name_style style, char *buf, size_t size);

/* Parse a compute op in the spec notation ("F0:3", "I1:0", "F0:7|B1:3").
 * Returns 0, or PT_EINVAL when text is not one. */
int pt_op_parse(const char *text, pt_op *out);

/*
 * A recorded interval: an executed op, one message, or activity below the
 * ops (a kernel, a copy, a runtime call, an annotated range). op.kind says
 * which; the fields an activity does not use stay -1 / 0.
 */
typedef struct pt_event {
	int64_t start_ns;
	int64_t end_ns;
	int64_t posted_ns; /* messages: when posted; else start_ns */
	int64_t corr;	   /* activity: the CUDA correlation id of the launching call; else 0 */
	int64_t ext;	   /* activity: external correlation id of the op or range that
			      launched it (pt_ext_id for plan ops); 0 when none */
	int32_t rank;	 /* 0 to 2^20: a reader refuses a trace with other ranks as damaged */
	int32_t step;	 /* index into the rank's plan; -1 when not from a plan */
	uint32_t stream; /* stream id on the rank (a CUDA stream id, or a thread id for
			    runtime calls and CPU ranges) */
	int32_t device;	 /* GPU ordinal; -1 when not on a GPU */
	uint32_t name;	 /* string id (pt_rec_intern / pt_trace_string); 0 when unnamed */
	uint16_t flags_; /* reserved: libtrace's record type inside its buffers */
	uint16_t pad_;
	pt_op op;
} pt_event;

/* The external correlation id pipetrace gives plan op (rank, step). */
static inline int64_t pt_ext_id(int32_t rank, int32_t step)
{
	return ((int64_t)rank << 32) | (int64_t)(uint32_t)(step + 1);
}

/* Per-rank facts, including the schedule's analytic expectations. */
typedef struct pt_rank_info {
	int32_t rank;
	int32_t device;		   /* GPU ordinal, -1 when none */
	int64_t theory_bubble_ns;  /* the schedule's formula; -1 when none applies */
	int32_t theory_peak_act;   /* peak in-flight chunk activations; -1 when none */
	int32_t nchunks;	   /* chunks (model stages) this rank holds */
	char label[64];		   /* "rank 3 · stages 3,4" */
} pt_rank_info;

/* Which pipeline and which stage of it a rank's chunk is. */
typedef struct pt_chunk_info {
	int32_t rank;
	int32_t chunk;
	int32_t pipe;  /* pipeline (DualPipe: direction); 0 for one-pipeline schedules */
	int32_t stage; /* model stage id (torch's stage index) */
} pt_chunk_info;

/* ---------------------------------------------------------------- recorder */

typedef struct pt_rec pt_rec;	/* a trace being written */
typedef struct pt_tbuf pt_tbuf; /* one recording thread's buffer */

enum pt_clock {
	PT_CLOCK_VIRTUAL = 0, /* the caller supplies every time (simulations, imports) */
	PT_CLOCK_MONOTONIC,   /* CLOCK_MONOTONIC read at each pt_begin/pt_end */
	PT_CLOCK_TSC,	      /* the CPU cycle counter, mapped onto CLOCK_MONOTONIC by
				 the writer; falls back to MONOTONIC where the
				 counter is not invariant */
};

typedef struct pt_rec_opts {
	enum pt_clock clock;
	int overwrite;	      /* replace an existing file at path */
	uint32_t chunk_events; /* events per buffer chunk (0: 4096) */
	uint32_t chunks;       /* chunks per recording thread (0: 16) */
} pt_rec_opts;

/*
 * Start writing a trace to path. The database is built in a temporary file
 * beside path and renamed over it only by a successful pt_rec_close, so an
 * error or a crash never leaves a half-written trace at path. Starts the
 * writer thread. Errors: PT_EEXIST (path exists, opts->overwrite unset),
 * PT_EIO, PT_ESQL, PT_ENOMEM.
 */
int pt_rec_create(const char *path, const pt_rec_opts *opts, pt_rec **out);

/* Set a meta key (schema.md lists them). Any thread; not the hot path. */
int pt_rec_meta(pt_rec *rec, const char *key, const char *value);
int pt_rec_meta_int(pt_rec *rec, const char *key, int64_t value);

/* Intern a string (kernel, call or range name) and return its id (>= 1);
 * 0 on failure (logged). Thread-safe; a hash lookup under a mutex, so cache
 * ids on hot paths. */
uint32_t pt_rec_intern(pt_rec *rec, const char *s);

/* Describe a rank, one of its streams, one of its chunks. Not the hot path. */
int pt_rec_rank(pt_rec *rec, const pt_rank_info *info);
int pt_rec_stream(pt_rec *rec, int rank, uint32_t stream, enum pt_stream_role role, const char *name);
int pt_rec_chunk(pt_rec *rec, const pt_chunk_info *info);

/* Store a rank's planned ops (step i is ops[i]). Not the hot path. */
int pt_rec_plan(pt_rec *rec, int rank, const pt_op *ops, size_t n);

/*
 * The calling thread's buffer: made on the first call from each thread (one
 * mutex and one allocation), then returned from a thread-local cache. Every
 * pt_emit/pt_begin/pt_end on it must come from that thread. NULL on ENOMEM.
 */
pt_tbuf *pt_rec_thread(pt_rec *rec);

/* The trace clock now, in the units pt_begin stores (ticks for PT_CLOCK_TSC,
 * ns otherwise). For PT_CLOCK_VIRTUAL this returns 0. */
int64_t pt_rec_ticks(const pt_rec *rec);

/* Append a complete event (times given, in ns on the trace timeline). Hot path:
 * no lock, no allocation; blocks only when the writer has fallen a whole
 * buffer behind (counted in meta "rec.stalls"). */
void pt_emit(pt_tbuf *b, const pt_event *ev);

/* (Private: the part of a thread buffer the inline hot path touches. It
 * begins every pt_tbuf; the rest stays opaque.) */
struct pt_tbuf_hot_ {
	pt_event *ev;	  /* the chunk being filled */
	uint32_t pos, cap; /* next slot, slots in the chunk */
	int tsc;	  /* read the cycle counter, else CLOCK_MONOTONIC */
};
void pt_tbuf_advance_(pt_tbuf *b);
int64_t pt_mono_ticks_(void);

static inline int64_t pt_ticks_(const struct pt_tbuf_hot_ *h)
{
#if defined(__x86_64__) || defined(__i386__)
	if (h->tsc) {
		uint32_t lo, hi;
		__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
		return (int64_t)(((uint64_t)hi << 32) | lo);
	}
#elif defined(__aarch64__)
	if (h->tsc) {
		uint64_t v;
		__asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
		return (int64_t)v;
	}
#endif
	return pt_mono_ticks_();
}

static inline pt_event *pt_slot_(pt_tbuf *b)
{
	struct pt_tbuf_hot_ *h = (struct pt_tbuf_hot_ *)b;
	if (__builtin_expect(h->pos == h->cap, 0))
		pt_tbuf_advance_(b);
	return &h->ev[h->pos++];
}

/* The same with start_ns, end_ns and posted_ns in clock ticks (the units of
 * pt_rec_ticks), converted to trace ns by the writer. */
void pt_emit_ticks(pt_tbuf *b, const pt_event *ev);

/* Begin and end an op on (rank, stream), reading the trace clock. Hot path,
 * inline: one clock read and a few stores each. Pairs must nest on a thread
 * and end on the thread that began them. */
static inline void pt_begin(pt_tbuf *b, int32_t rank, uint32_t stream, int32_t step, const pt_op *op)
{
	pt_event *e = pt_slot_(b);
	e->start_ns = pt_ticks_((const struct pt_tbuf_hot_ *)b);
	e->rank = rank;
	e->step = step;
	e->stream = stream;
	e->device = -1;
	e->name = 0;
	e->corr = e->ext = 0;
	e->flags_ = 2; /* begin */
	e->op = *op;
}

static inline void pt_end(pt_tbuf *b, int32_t rank, uint32_t stream)
{
	pt_event *e = pt_slot_(b);
	e->start_ns = pt_ticks_((const struct pt_tbuf_hot_ *)b);
	e->rank = rank;
	e->stream = stream;
	e->flags_ = 3; /* end */
}

/* CLOCK_MONOTONIC ns at trace time 0 (live clocks; 0 for virtual): a
 * monotonic reading m is trace time m - pt_rec_origin(rec). */
int64_t pt_rec_origin(const pt_rec *rec);

/*
 * Finish: wait for the writer to drain every buffer, build the indexes, write
 * the recorder's own meta (events, stalls), commit and rename the temporary
 * file to its path. Frees rec whatever the result. All recording threads must
 * have stopped using their buffers.
 */
int pt_rec_close(pt_rec *rec);

/* Give up: stop the writer, delete the temporary file, free rec. NULL is a no-op. */
void pt_rec_abort(pt_rec *rec);

/* --------------------------------------- passes over a finished recording */
/*
 * For traces that arrive whole (imports) rather than live. Each pass first
 * writes every event emitted so far, so every recording thread must have
 * stopped using its buffer (as for pt_rec_close); the calling thread may emit
 * again afterwards. Not the hot path: each reads or rewrites rows. A failure
 * is logged, returned, and makes pt_rec_close fail too.
 */

/* Add delta_ns to every time recorded so far (e.g. to make the earliest
 * event time 0). Errors: PT_ESQL, PT_EIO. */
int pt_rec_shift(pt_rec *rec, int64_t delta_ns);

/* Rebuild ranges.depth: the number of ranges of the same rank, stream (thread)
 * and domain that enclose a range (begun no later, ended after it began).
 * Errors: PT_ESQL, PT_ENOMEM. */
int pt_rec_nest_ranges(pt_rec *rec);

/* The op that ranges of one name on one rank (or on every rank: rank -1) stand for. */
typedef struct pt_range_label {
	int32_t rank;
	uint32_t name; /* string id (pt_rec_intern) */
	pt_op op;      /* kind, chunk, mb, ... of the op to record */
} pt_range_label;

typedef struct pt_label_stats {
	int64_t ranges;		       /* labelled ranges considered */
	int64_t ops;		       /* ops recorded */
	int64_t idle;		       /* labelled CPU ranges that launched no GPU work (no op) */
	int64_t kinds[PT_OP_KIND_MAX]; /* ops recorded, by kind */
} pt_label_stats;

/*
 * Record a pipeline op (ops table, step -1) for every range a label names.
 * A range on a CPU thread (device -1) becomes the span of the GPU work it
 * launched: the kernels, copies and memsets whose launching runtime call (same
 * rank, same corr) started inside it — on the launching thread, or, when no
 * labelled range of that thread is open then, on the rank's other threads
 * (autograd's backward thread runs inside the main thread's annotation). The
 * op sits on the stream that ran most of that work, from its first start to
 * its last end there. A range on a GPU stream (a profiler's own projection)
 * becomes an op of its own interval, but only on ranks whose CPU ranges
 * labelled nothing. stats (may be NULL) says what was made. Errors: PT_ESQL,
 * PT_ENOMEM.
 */
int pt_rec_label_ranges(pt_rec *rec, const pt_range_label *labels, size_t n, pt_label_stats *stats);

/* ---------------------------------------------- Nsight Systems exports */

typedef struct pt_nsys pt_nsys; /* an `nsys export --type sqlite` file open for reading */

/*
 * Open an Nsight Systems SQLite export read-only and check that it is one
 * pipetrace can import: a file (PT_ENOENT), SQLite (PT_ENOTDB), not damaged
 * (PT_ECORRUPT), an nsys export and not some other database (PT_EFOREIGN, also
 * for a pipetrace trace), with the tables an import needs — StringIds,
 * TARGET_INFO_SESSION_START_TIME, CUPTI_ACTIVITY_KIND_KERNEL — and the columns
 * it reads (PT_EINVAL, naming the table or column). Tables nsys leaves out
 * when they would be empty (MEMCPY, MEMSET, SYNCHRONIZATION, RUNTIME,
 * NVTX_EVENTS) are optional. Each failure is logged with the path.
 */
int pt_nsys_open(const char *path, pt_nsys **out);
void pt_nsys_close(pt_nsys *n);

/* The absolute time (ns since 1970, UTC) of the export's time 0. */
int64_t pt_nsys_epoch_ns(const pt_nsys *n);

/* The processes that ran GPU kernels, in globalPid order: process i is rank i
 * of the rows pt_nsys_read delivers. */
int pt_nsys_nprocs(const pt_nsys *n);
/* The OS process id of process i (-1 when i is out of range). */
int64_t pt_nsys_pid(const pt_nsys *n, int i);

/* One row of an export, as pipetrace sees it. */
typedef struct pt_nsys_row {
	pt_event ev;	    /* a KERNEL, MEMCPY, MEMSET, SYNC, RUNTIME or RANGE event: times in ns on
			       the export's timeline; rank = the process's index, -1 for a process
			       without kernels; stream = CUDA stream, or the thread id (runtime
			       calls, NVTX ranges); ranges' depth (op.payload) rebuilt for push/pop
			       ranges per thread and domain; ev.name and op.seq (domain) unset */
	const char *name;   /* kernel (demangled), call (without its _vNNNN suffix), range text,
			       or a copy / memset / sync description; borrowed for the callback */
	uint32_t name_key;  /* the StringIds id the name came from (stable within the export, for
			       caching); 0 when it did not come from StringIds */
	const char *domain; /* NVTX domain of a range; NULL for the default domain and others */
} pt_nsys_row;

/*
 * Deliver every row of the activity tables — kernels, copies, memsets,
 * synchronisations, runtime calls, NVTX push/pop and start/end ranges — to
 * fn, table by table, in bounded memory. fn returns 0 to go on, or a PT_E*
 * code that stops the walk and is returned. NVTX marks and ranges never
 * ended are skipped.
 */
int pt_nsys_read(pt_nsys *n, int (*fn)(void *ctx, const pt_nsys_row *row), void *ctx);

/* The names of the threads of the processes with kernels (table ThreadNames,
 * optional): fn(ctx, rank, thread id, name) once per thread; a nonzero return
 * stops and is returned. */
int pt_nsys_thread_names(pt_nsys *n, int (*fn)(void *ctx, int rank, uint32_t tid, const char *name), void *ctx);

/* ------------------------------------------------------------------ reader */

typedef struct pt_trace pt_trace;   /* a trace open for reading */
typedef struct pt_cursor pt_cursor; /* a stream of events out of it */

/*
 * Open a trace read-only and check that it is one pipetrace can read: the
 * file exists (PT_ENOENT), is SQLite (PT_ENOTDB), is not truncated or damaged
 * (PT_ECORRUPT), is pipetrace's (PT_EFOREIGN) and of a schema this library
 * knows (PT_EVERSION). Each failure is logged with the path and the reason.
 */
int pt_trace_open(const char *path, pt_trace **out);
void pt_trace_close(pt_trace *t);

const char *pt_trace_path(const pt_trace *t);

/* A meta value, borrowed until pt_trace_close; NULL when the key is absent. */
const char *pt_trace_meta(pt_trace *t, const char *key);
/* A meta value as an integer; def when absent or not a number. */
int64_t pt_trace_meta_int(pt_trace *t, const char *key, int64_t def);

/* The i-th meta entry (0 <= i < count), borrowed; returns the count, so
 * pt_trace_meta_at(t, -1, NULL, NULL) asks how many there are. */
int pt_trace_meta_at(pt_trace *t, int i, const char **key, const char **value);

/* Number of ranks (rows of the ranks table). */
int pt_trace_nranks(pt_trace *t);

/* The ranks a cursor over every rank walks: from the lowest to the highest
 * rank that the ranks table or any event names, in *lo and *hi (either may be
 * NULL). Returns how many that is (hi - lo + 1), 0 for a trace without any.
 * Readers that split a trace by rank (one connection each) start here. */
int pt_trace_rank_range(pt_trace *t, int *lo, int *hi);

/* The most SQLite page cache that cursors on t may grow to, in KiB (default
 * 32768, at least 4096; cursors over many ranks grow it, pt_cursor_open).
 * Readers that open several connections to one file share one budget this
 * way, so that memory stays bounded whatever the number of ranks. Call
 * before opening cursors; not thread-safe with cursors running on t. */
void pt_trace_set_cache_max(pt_trace *t, int64_t kib);

/* Facts about one rank, by rank id. PT_EINVAL when the rank is not in the trace. */
int pt_trace_rank(pt_trace *t, int rank, pt_rank_info *out);
/* Facts about the i-th rank in rank order (0 <= i < pt_trace_nranks). */
int pt_trace_rank_at(pt_trace *t, int i, pt_rank_info *out);

/* The chunks of one rank, in chunk order (at most max; returns how many). */
int pt_trace_chunks(pt_trace *t, int rank, pt_chunk_info *out, int max);

/* Role and name of one stream (name borrowed until close). PT_EINVAL if absent. */
int pt_trace_stream(pt_trace *t, int rank, uint32_t stream, enum pt_stream_role *role, const char **name);

/* The streams of one rank in stream order (at most max ids; returns how many). */
int pt_trace_streams(pt_trace *t, int rank, uint32_t *ids, int max);

/* The planned ops of one rank in step order, malloc'ed (caller frees). A rank
 * without a plan gives *n = 0. PT_ECORRUPT (logged, naming the file, rank,
 * step and column) for a value wider than its pt_op field (a kind, payload,
 * phase or tag past 255, a chunk outside int16); reader errors (logged). */
int pt_trace_plan(pt_trace *t, int rank, pt_op **ops, size_t *n);

/* Part of one rank's plan, for a reader that walks many ranks at once and
 * cannot hold them all: up to max ops whose step is >= *step, in step order,
 * into the caller's ops; *n says how many (0 past the end) and *step moves
 * past the last one read. One statement is kept for these calls until
 * pt_trace_close. PT_ECORRUPT (logged) for a value wider than its field,
 * as pt_trace_plan (the ops before it are in ops, *n and *step count
 * them); reader errors (logged). Not thread-safe on one t. */
int pt_trace_plan_read(pt_trace *t, int rank, int64_t *step, pt_op *ops, size_t max, size_t *n);

/* When rank sender posted its messages to receiver with the given seqs (n
 * of them, ascending): posted[i] gets the posted_ns of the SEND row from
 * sender to receiver whose seq is seq[i] (the last in time order if there
 * are several), or keeps its value when the trace has none. One read of the
 * sender's messages that decodes three columns of its SEND rows, for a
 * consumer that needs a few sends' posted times (the idle breakdown), not
 * whole events: a cursor over the same rows costs ten times more. Returns
 * 0 or a reader error (logged). */
int pt_trace_send_posted(pt_trace *t, int sender, int receiver, const int64_t *seq, size_t n, int64_t *posted);

/* A string by id (borrowed until close); "" for 0 or an unknown id. */
const char *pt_trace_string(pt_trace *t, uint32_t id);

/* What a cursor delivers: one bit per table. */
enum pt_source {
	PT_SRC_OPS = 1 << 0,	 /* executed compute ops */
	PT_SRC_COMMS = 1 << 1,	 /* messages (SEND and RECV) */
	PT_SRC_KERNELS = 1 << 2, /* GPU kernels */
	PT_SRC_MEMCPY = 1 << 3,
	PT_SRC_MEMSET = 1 << 4,
	PT_SRC_SYNC = 1 << 5,
	PT_SRC_RUNTIME = 1 << 6,
	PT_SRC_RANGES = 1 << 7,
	PT_SRC_ALL = 0xff,
};

/* The source (table) events of this kind live in. */
unsigned pt_kind_source(int kind);

typedef struct pt_query {
	unsigned sources; /* enum pt_source bits; 0 means all */
	int rank;	  /* one rank, or -1 for all */
	int64_t from_ns;  /* events ending at or after from_ns ... */
	int64_t to_ns;	  /* ... and starting before to_ns */
	uint32_t kinds;	  /* bit (1 << kind) per wanted kind; 0 means all */
	const int32_t *ranks; /* several ranks: NULL, or nranks rank ids (then rank is ignored) */
	int nranks;
} pt_query;

/* A query that selects everything (from_ns = INT64_MIN, to_ns = INT64_MAX):
 * start from it and narrow, rather than from a zeroed struct. */
pt_query pt_query_all(void);

/*
 * Open a cursor over the events q selects, in (start_ns, rank, stream) order;
 * memory stays bounded whatever the trace size.
 */
int pt_cursor_open(pt_trace *t, const pt_query *q, pt_cursor **out);
/* Next event: 1 and *ev filled, 0 at the end, or a negative PT_E* code. */
int pt_cursor_next(pt_cursor *c, pt_event *ev);
void pt_cursor_close(pt_cursor *c);

/* Count the events q selects (PT_E* on failure). */
int64_t pt_trace_count(pt_trace *t, const pt_query *q);

/* The earliest and the latest start_ns among the events of q's ranks and
 * sources (its time window and kinds are not applied), from the indexes: a
 * few lookups per rank, not a scan. Both INT64_MAX / INT64_MIN when there is
 * none. Returns 0 or a PT_E* code. For progress reports over long reads. */
int pt_trace_span(pt_trace *t, const pt_query *q, int64_t *first, int64_t *last);

/* ------------------------------------------------------------------- CUPTI */

/*
 * A CUPTI activity collector feeding a recorder: kernels, copies, memsets,
 * synchronisations and runtime calls, with the external correlation id of
 * the op that launched them. Without CUPTI in the build every call logs why
 * and returns PT_ENOTSUP.
 */
typedef struct pt_cupti pt_cupti;

/* A collector writing into rec (CUPTI untouched until pt_cupti_start). */
int pt_cupti_create(pt_rec *rec, pt_cupti **out);

/* Enable CUPTI: buffer callbacks, the CLOCK_MONOTONIC timestamp source (so
 * GPU times land on the trace clock), and the CONCURRENT_KERNEL, MEMCPY,
 * MEMCPY2, MEMSET, SYNCHRONIZATION, RUNTIME and EXTERNAL_CORRELATION kinds.
 * Call before the first CUDA call that creates a context. PT_ENODEV when
 * CUPTI cannot start (no driver, another subscriber such as nsys). */
int pt_cupti_start(pt_cupti *c);

/* Activity on (device, CUPTI stream id) belongs to rank, as its stream. */
int pt_cupti_map_stream(pt_cupti *c, int device, uint32_t stream_id, int rank);
/* The same for a CUDA stream handle (cudaStream_t), describing the stream
 * in the trace with its role and name. Needs a started collector. */
int pt_cupti_bind_stream(pt_cupti *c, int rank, int device, void *cuda_stream, enum pt_stream_role role,
			 const char *name);
/* CUDA calls made by the calling thread belong to rank. */
int pt_cupti_bind_thread(pt_cupti *c, int rank);

/* Tag the CUDA calls the calling thread makes until the matching pop with
 * plan op (rank, step): its kernels get ext = pt_ext_id(rank, step). */
int pt_cupti_push_op(int32_t rank, int32_t step);
int pt_cupti_pop_op(void);

/* Flush completed buffers; forced, also the incomplete ones. */
int pt_cupti_flush(pt_cupti *c, int forced);

/* Drop GPU activity and calls that ended before CLOCK_MONOTONIC time
 * mono_ns (set-up and warm-up before the recorded step), counted in meta
 * cupti.skipped. */
void pt_cupti_skip_before(pt_cupti *c, int64_t mono_ns);

/* Flush everything, disable CUPTI, store counts (kernels, dropped) in meta. */
int pt_cupti_stop(pt_cupti *c);
void pt_cupti_destroy(pt_cupti *c);

/* Convert one activity record (a CUpti_Activity * of the CUPTI this library
 * was built with) into the trace. What the buffer callback calls for each
 * record; tests feed records they build. Unknown kinds are skipped (0). */
int pt_cupti_record(pt_cupti *c, const void *record);

/* -------------------------------------------------------------------- NVTX */

/* An NVTX range in domain "pipetrace" around what the calling thread does
 * until the matching pop (the runner names it after the op, "F0:3"), so a
 * run also reads well in Nsight Systems. Near-free when no tool is attached;
 * no-ops in a build without NVTX. */
void pt_nvtx_push(const char *name);
void pt_nvtx_pop(void);

/* ------------------------------------------------------------------- merge */

/*
 * Merge per-process traces of one run (each holding some of its ranks) into
 * one trace at out_path, on one timeline. Each input's local time t is moved
 * to the reference clock as epoch_ns + t - clock.offset_ns (its meta: the
 * realtime of its time 0, and how far its clock ran ahead of the reference
 * clock, measured at start; 0 when absent); the merged trace starts at the
 * earliest input. Inputs must agree on schedule, ranks, microbatches and
 * backend, and hold disjoint ranks (PT_EINVAL otherwise, logged with the file
 * names). Strings are re-interned; CUDA correlation ids stay per input
 * (key them on the rank). Writes through a temporary file like pt_rec_create.
 */
typedef struct pt_merge_opts {
	int overwrite; /* replace an existing out_path */
	/* called now and then with events copied and the total; may be NULL */
	void (*progress)(void *ctx, int64_t done, int64_t total);
	void *ctx;
} pt_merge_opts;

int pt_merge(const char *const *inputs, int n, const char *out_path, const pt_merge_opts *opts);

#ifdef __cplusplus
}
#endif
#endif /* PIPETRACE_TRACE_H */
