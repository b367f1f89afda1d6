/*
 * cli/cli.h — what the subcommands share: the dispatch signature, exit
 * codes, parsers for the units people type (1ms, 16MiB, 100GB/s, 0-3,7) and
 * the wording of errors. Each subcommand lives in the folder that owns its
 * work (runner/cmd_run.c, exporters/cmd_stats.c, …) and is listed in main.c.
 */
#ifndef PT_CLI_H
#define PT_CLI_H

#include <stdint.h>
#include <stdio.h>

/* Exit statuses of every subcommand. */
enum {
	CLI_OK = 0,	    /* success */
	CLI_FAIL = 1,	    /* something failed that was not the input's fault */
	CLI_USAGE = 2,	    /* bad usage or bad input (a foreign file, an impossible schedule) */
	CLI_REGRESSION = 3, /* `check` found a regression */
};

/* Subcommands: int cmd_<name>(int argc, char **argv), argv[0] the name. */
int cmd_schedule(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_view(int argc, char **argv);
int cmd_export(int argc, char **argv);

/* The exit status for a PT_E* code: CLI_USAGE for input errors, else CLI_FAIL. */
int cli_status(int err);

/* Print "pipetrace <cmd>: <message>" and a pointer to --help; returns CLI_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parsers. Each returns 0, or -1 after printing what is wrong with `what`
 * (the option's name) to stderr. */
int cli_parse_int(const char *what, const char *s, long lo, long hi, long *out);
/* "1ms", "250us", "2.5s", "100ns", "0" -> ns */
int cli_parse_duration(const char *what, const char *s, int64_t *ns);
/* "16MiB", "4KB", "1000" -> bytes */
int cli_parse_bytes(const char *what, const char *s, int64_t *bytes);
/* "100GB/s", "25GiB/s", "400Gbit/s", "0" (unlimited) -> bytes per second */
int cli_parse_bandwidth(const char *what, const char *s, double *bps);

/* Split "key=value,key=value" in place; calls fn for each pair. Stops at the
 * first nonzero return of fn (returned), -1 on a malformed list. */
int cli_each_kv(const char *what, char *list, int (*fn)(void *ctx, const char *k, const char *v), void *ctx);

/* A duration for people: "6.000 ms" in the unit the scale suggests. */
void cli_fmt_ns(int64_t ns, int64_t scale, char *buf, size_t size);

/* Refuse to replace an existing output unless force; message names --force. */
int cli_check_output(const char *cmd, const char *path, int force);

/* Whether stdout / stderr is a terminal (for colour and progress). */
int cli_isatty(FILE *f);

#endif
