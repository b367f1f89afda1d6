/*
 * tests/unit/testutil.h — what the cmocka tests share: a captured log (so a
 * test can assert on the message a failure produced, and a passing run stays
 * quiet), a private temporary directory, and small file helpers.
 */
#ifndef PT_TESTUTIL_H
#define PT_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pipetrace/trace.h"

#ifndef PT_TEST_DATA
#define PT_TEST_DATA "tests/data"
#endif

/* Every message logged since the last tu_log_reset, newline-separated. */
static char tu_log_buf[1 << 16];
static size_t tu_log_len;

static void tu_log_cb(void *ctx, enum pt_log_level level, const char *msg)
{
	(void)ctx;
	if (level > PT_LOG_WARN)
		return;
	size_t n = strlen(msg);
	if (tu_log_len + n + 2 < sizeof tu_log_buf) {
		memcpy(tu_log_buf + tu_log_len, msg, n);
		tu_log_len += n;
		tu_log_buf[tu_log_len++] = '\n';
		tu_log_buf[tu_log_len] = '\0';
	}
	if (getenv("PT_TEST_VERBOSE"))
		fprintf(stderr, "log: %s\n", msg);
}

static inline void tu_log_reset(void)
{
	tu_log_len = 0;
	tu_log_buf[0] = '\0';
	pt_log_set(tu_log_cb, NULL);
}

/* Assert that the captured log contains needle. */
#define assert_logged(needle)                                                                                          \
	do {                                                                                                           \
		if (!strstr(tu_log_buf, (needle)))                                                                     \
			fail_msg("log lacks \"%s\"; it has:\n%s", (needle), tu_log_buf);                               \
	} while (0)

/* A fresh private directory for this test binary (removed by the OS's tmp
 * cleaning, and by tu_tmp_cleanup when called). */
static char tu_dir[256];

static inline const char *tu_tmpdir(void)
{
	if (!tu_dir[0]) {
		const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(tu_dir, sizeof tu_dir, "%s/pt-test-XXXXXX", base);
		if (!mkdtemp(tu_dir))
			fail_msg("mkdtemp failed");
	}
	return tu_dir;
}

/* A path inside the private directory. */
static inline const char *tu_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tu_tmpdir(), name);
	return buf;
}

static inline int tu_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static inline void tu_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

/* Read a whole file (malloc'ed, NUL-terminated); NULL when missing. */
static inline char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		if (len)
			*len = (size_t)n;
	}
	return buf;
}

/* An event with every optional field cleared: rank, stream, kind, [s, e). */
static inline pt_event tu_event(int rank, uint32_t stream, int kind, int64_t s, int64_t e)
{
	pt_event ev;
	memset(&ev, 0, sizeof ev);
	ev.rank = rank;
	ev.stream = stream;
	ev.step = -1;
	ev.device = -1;
	ev.op = pt_op_make(kind, 0, 0);
	ev.start_ns = ev.posted_ns = s;
	ev.end_ns = e;
	return ev;
}

static inline void tu_tmp_cleanup(void)
{
	if (tu_dir[0]) {
		char cmd[300];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tu_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", tu_dir);
	}
}

#endif
