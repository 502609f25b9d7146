/* main.c - `mmo`: one executable, one subcommand per job. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
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

const char *cli_opt(const char *name, const char *given, const char *def)
{
	char env[128] = "MMO_";
	size_t n = 4;
	const char *v;

	if (given)
		return given;
	for (const char *p = name; *p && n < sizeof(env) - 1; p++)
		env[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
	env[n] = 0;
	v = getenv(env);
	return v && *v ? v : def;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

bool cli_parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !*s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return false;
	if (*end == 'K' || *end == 'k')
		shift = 10;
	else if (*end == 'M' || *end == 'm')
		shift = 20;
	else if (*end == 'G' || *end == 'g')
		shift = 30;
	else if (*end)
		return false;
	if (shift && end[1])
		return false;
	if (v > (~0ULL >> shift))
		return false;
	*out = (size_t)(v << shift);
	return true;
}

void cli_err(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mmo %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
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
