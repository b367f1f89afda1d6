/*
 * libtrace/log.c — result codes and the log callback. Every library of
 * pipetrace reports through here; only the CLI decides what reaches a
 * terminal. Not a logging framework: one callback, one level filter.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

static void default_log(void *ctx, enum pt_log_level level, const char *msg)
{
	(void)ctx;
	if (level <= PT_LOG_WARN)
		fprintf(stderr, "pipetrace: %s%s\n", level == PT_LOG_WARN ? "warning: " : "", msg);
}

static pt_log_fn log_fn = default_log;
static void *log_ctx;

void pt_log_set(pt_log_fn fn, void *ctx)
{
	log_fn = fn ? fn : default_log;
	log_ctx = fn ? ctx : NULL;
}

static void vlog(enum pt_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	log_fn(log_ctx, level, msg);
}

void pt_log(enum pt_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

int pt_logerr(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(PT_LOG_ERROR, fmt, ap);
	va_end(ap);
	return err;
}

const char *pt_strerror(int err)
{
	switch (err) {
	case PT_OK: return "success";
	case PT_EINVAL: return "invalid argument or input";
	case PT_ENOMEM: return "out of memory";
	case PT_EIO: return "input/output error";
	case PT_ENOENT: return "no such file";
	case PT_ENOTDB: return "not an SQLite database";
	case PT_EFOREIGN: return "not a pipetrace trace";
	case PT_ECORRUPT: return "damaged or truncated database";
	case PT_EVERSION: return "written by a newer pipetrace";
	case PT_EEXIST: return "output exists";
	case PT_ENOTSUP: return "not supported by this build or trace";
	case PT_ESQL: return "SQLite failure";
	case PT_ENODEV: return "no device";
	case PT_EPLAN: return "invalid plan";
	}
	return "unknown error";
}

int pt_err_is_input(int err)
{
	switch (err) {
	case PT_EINVAL:
	case PT_ENOENT:
	case PT_ENOTDB:
	case PT_EFOREIGN:
	case PT_ECORRUPT:
	case PT_EVERSION:
	case PT_EEXIST:
	case PT_ENODEV:
	case PT_EPLAN:
	case PT_ENOTSUP:
		return 1;
	}
	return 0;
}
