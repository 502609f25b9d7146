/* main.c - `mmo`: one executable, one subcommand per job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} cmds[] = {
    {"serve", cmd_serve, "run the backend's roles (log, ...)"},
    {"audit", cmd_audit, "auditors' view of the log: query, verify, export, verify-export, report"},
    {"replay", cmd_replay, "rebuild the world's state at any seq; verify; bisect"},
    {"dlq", cmd_dlq, "the views' dead-letter queue: list, retry, drop"},
    {"views", cmd_views, "read views: rebuild redis|mongo"},
    {"user", cmd_user, "operator administration: add users, grant roles"},
    {"bench", cmd_bench, "benchmarks against the physical limit and a peer, in one run"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: mmo <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].help);
	fprintf(f, "\n`mmo <command> --help` describes each. Options may also be given as\n"
	           "environment variables MMO_<OPTION> (e.g. MMO_DATA=/var/lib/mmo).\n"
	           "Exit status: 0 success, 1 failure, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("mmo %s\n", MMO_VERSION);
		return EXIT_OK;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "mmo: unknown command '%s' (see mmo --help)\n", argv[1]);
	return EXIT_USAGE;
}
