/*
 * importers/import.h — what pipetrace's importers share. An importer turns a
 * profile someone else recorded (a PyTorch-profiler / Kineto JSON trace, an
 * Nsight Systems SQLite export) into a trace.db, as the runner does for its
 * own runs: each source (kineto.c; the nsys reader lives in libtrace, which
 * alone opens SQLite files) hands its events to one sink (import.c), which
 * puts them on one timeline, classifies streams as compute or communication
 * (classify.c), labels pipeline ops from annotations, and records them
 * through libtrace's recorder. Nothing here reads a trace.db back.
 */
#ifndef PT_IMPORT_H
#define PT_IMPORT_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "pipetrace/trace.h"

/* ------------------------------------------------------- classify.c */

/* How names are read: which kernels communicate, which annotations are ops. */
typedef struct imp_rules {
	regex_t comm;	      /* communication kernels */
	int comm_ok;	      /* comm compiled */
	const char *comm_src; /* its text */
	struct op_map {
		regex_t re;
		int kind; /* PT_OP_F..PT_OP_FB, or PT_OP_NONE: not an op */
	} * maps;
	size_t nmaps;
} imp_rules;

/* The built-in pattern for communication kernels (POSIX ERE, case-insensitive). */
extern const char imp_comm_default[];

/* Compile the rules: comm_re (NULL: the built-in pattern). Returns 0, or
 * PT_EINVAL after logging what is wrong with the expression. */
int imp_rules_init(imp_rules *r, const char *comm_re);
/* Add one --op-map "REGEX=KIND" entry (0, or PT_EINVAL logged). */
int imp_rules_add_map(imp_rules *r, const char *spec);
void imp_rules_fini(imp_rules *r);

/* Whether a kernel of this name communicates. */
int imp_is_comm_kernel(const imp_rules *r, const char *name);

/*
 * What an annotation name says about the pipeline. Returns 0 when it names
 * no op. Otherwise fills *op and returns 1, or returns 2 for a backward part
 * "NAME(B)" whose kind depends on the trace: I when the same rank also has
 * "NAME(W)", else B (*op then holds B). For "NAME(x)" forms *part is the
 * length of NAME (0 otherwise). Rules,
 * first match wins: an --op-map entry; the spec notation pipetrace's own NVTX
 * ranges use ("F0:3", "I1:0", "F0:7|B1:3"); "NAME(F)" F, "NAME(B)" as said,
 * "NAME(I)" I, "NAME(W)" W (DeepSeek's attn(F), mlp(B), mlp(W), dispatch(F)).
 */
int imp_label(const imp_rules *r, const char *name, pt_op *op, size_t *part);

/* ------------------------------------------------------------ sink.c */

/* The kinds of input. */
enum imp_format { IMP_KINETO = 1, IMP_NSYS = 2 };

/* What the sink learns about a stream (a GPU stream or a CPU thread). */
struct imp_stream {
	int32_t rank;
	uint32_t id;
	int gpu; /* a GPU stream; else a CPU thread */
	int32_t device;
	int64_t comm_ns, comp_ns; /* time of its communication and other kernels (+ peer copies) */
	int64_t kernels, events;
};

/* An annotation name that labels an op. */
struct imp_lname {
	uint32_t id;
	pt_op op;
	int pending_b; /* "NAME(B)": B, or I when the rank also has "NAME(W)" */
	char *text;
	size_t part; /* length of NAME */
};

/* One import: inputs -> one trace.db. */
typedef struct imp {
	pt_rec *rec;
	pt_tbuf *buf;
	const imp_rules *rules;
	enum imp_format format;
	int ninputs;
	const char *input; /* the one being read */
	/* comm streams forced by the user (--comm-streams), instead of the kernels' vote */
	const uint32_t *comm_streams;
	int ncomm_streams;
	/* progress on stderr, over all inputs: base = bytes of the inputs read
	 * before this one, total = of all (0: per input) */
	int progress, progress_shown;
	double progress_last;
	uint64_t progress_base, progress_total;
	int input_index;
	/* the timeline: trace time = absolute - origin */
	int have_origin, epoch_known;
	int64_t origin, min_ns, max_ns;
	/* ranks, by id */
	struct imp_rank {
		const char *source;
		int used, guessed;
		int32_t device;
		int64_t events;
	} * ranks;
	int capranks, nranks;
	/* per string id: kernel class (0 unknown, 1 compute, 2 comm) and label
	 * (0 unknown, 1 none, k + 2: lnames[k]) */
	uint8_t *kcls;
	uint32_t *lab;
	size_t capnames;
	struct imp_lname *lnames;
	size_t nlnames;
	uint64_t *lused; /* set of (rank << 32 | lname + 1), open addressing */
	size_t nlused, caplused;
	/* streams: open addressing over (rank, gpu, id) */
	struct imp_stream *streams;
	size_t nstreams, capstreams;
	uint32_t *shash; /* index + 1 */
	size_t capshash;
	struct imp_name {
		int rank, id; /* device ordinal or thread id */
		int64_t seq;  /* order given: the first name of (rank, id) wins */
		char *name;
	} * devnames, *thnames;
	size_t ndevnames, nthnames;
	/* what was read */
	int64_t count[PT_OP_KIND_MAX], nevents;
	struct {
		const char *why;
		int64_t n;
	} skips[16];
	int nskips;
	pt_label_stats labels;
} imp;

/* Set up an import writing into rec (which it does not own). */
void imp_init(imp *im, pt_rec *rec, const imp_rules *rules, enum imp_format format, int ninputs);
void imp_fini(imp *im);

/* Whether the sink classifies stream s as communication. */
int imp_stream_is_comm(const imp *im, const struct imp_stream *s);

/*
 * After the last input: the ranks, streams (with their roles), meta, ranges'
 * nesting and ops labelled from annotations go into the recording, ready for
 * pt_rec_close. PT_EINVAL when nothing was imported. meta holds extra meta
 * pairs (key, value, ..., NULL).
 */
int imp_finish(imp *im, const char *const *meta);

/*
 * A rank's events start arriving from source (a file name). rank is the
 * trace's rank id; guessed says it came from the order of the inputs, not
 * from the input (warned about when there are several inputs). A rank
 * already taken by another input is bad input (PT_EINVAL, logged).
 */
int imp_rank(imp *im, int rank, const char *source, int guessed);

/* Name a GPU (device ordinal) of a rank, or a CPU thread of a rank. */
int imp_device_name(imp *im, int rank, int device, const char *name);
int imp_thread_name(imp *im, int rank, uint32_t tid, const char *name);

/*
 * One event: ev's times are absolute ns (since 1970 when the source knows the
 * epoch, else on the source's own clock), its rank one imp_rank announced;
 * name and domain (ranges: the category or NVTX domain) may be NULL.
 * ev->name and ev->op.seq are set here. Returns 0 or a PT_E* code.
 */
int imp_emit(imp *im, pt_event *ev, const char *name, const char *domain);

/* Count an input event that was not imported, by why (a short phrase:
 * "flow", "metadata", "instant", ...). */
void imp_skip(imp *im, const char *why);

/* Progress through the current input: done of total bytes (total 0: unknown). */
void imp_progress(imp *im, uint64_t done, uint64_t total);

/* --------------------------------------------------------- kineto.c */

/*
 * Stream one Kineto / Chrome-trace JSON file (plain or gzip) into im with a
 * SAX parser, in memory bounded by the longest string in the file. Its rank
 * is distributedInfo.rank when the file says it before its events, else
 * index (a warning says so). Errors, logged with the file's name: PT_ENOENT /
 * PT_EIO, PT_EINVAL for malformed JSON (with the byte offset) or JSON that
 * is not a trace (no traceEvents).
 */
int imp_kineto_file(imp *im, const char *path, int index);

/*
 * Microseconds as a trace writes them ("1740461679471346", "198093488368.463",
 * "0.5", "1.5e3") to ns, exactly for plain decimals (a fourth decimal
 * rounds). 0, or -1 when s is not a number or does not fit.
 */
int imp_us_to_ns(const char *s, size_t n, int64_t *ns);

#endif
