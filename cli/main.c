/*
 * cli/main.c — the pipetrace command: a dispatch table of subcommands, each
 * `int cmd_<name>(int argc, char **argv)` in the folder that owns its work.
 * This file parses nothing but the subcommand's name and the global flags.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"
#include "pipetrace/trace.h"
#include <sqlite3.h>

static const struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *what;
} cmds[] = {
	{"schedule", cmd_schedule, "print or validate a schedule's plan (text grid, CSV)"},
	{"run", cmd_run, "execute a plan on a backend and record it -> trace.db"},
	{"stats", cmd_stats, "bubble, overlap, exposed communication, activations"},
	{"view", cmd_view, "terminal schedule grid, or a self-contained HTML report"},
	{"export", cmd_export, "Perfetto (.pftrace), Chrome JSON or CSV, for trace viewers"},
	{"check", cmd_check, "compare a trace with a baseline; exit 3 on a regression (CI gate)"},
	{"import", cmd_import, "PyTorch-profiler (Kineto) JSON, nsys SQLite export -> trace.db"},
	{"merge", cmd_merge, "per-process traces of one run -> one trace, clocks aligned"},
};

static void usage(FILE *out)
{
	fprintf(out, "usage: pipetrace <command> [options]\n\n"
		     "Profile and trace pipeline-parallel training schedules (DualPipe, 1F1B, ZB-H1, ...).\n\n"
		     "Commands:\n");
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		fprintf(out, "  %-10s %s\n", cmds[i].name, cmds[i].what);
	fprintf(out, "\n'pipetrace <command> --help' tells more about each.\n"
		     "  pipetrace --version   the version and the features compiled in\n");
}

static void version(void)
{
	printf("pipetrace %s (trace schema %d)\n", PT_VERSION, PT_SCHEMA_VERSION);
	printf("features:\n  +sqlite %s\n%s", sqlite3_libversion(), PT_FEATURE_LINES);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
		usage(stdout);
		return CLI_OK;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V") || !strcmp(name, "version")) {
		version();
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (!strcmp(name, cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "pipetrace: '%s' is not a command. See 'pipetrace --help'.\n", name);
	return CLI_USAGE;
}
