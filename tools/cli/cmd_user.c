/* user.c - `mmo user`: operator administration of the gateway's accounts.
 *
 *   mmo user add NAME --password-stdin [--data DIR]
 *   mmo user role NAME auditor|player [--data DIR]
 *
 * Both work on DATA/gateway directly (LMDB), also while `mmo serve` runs.
 * An account added here is announced to the world (player.register) by the
 * gateway at its first login.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "gateway/gateway.h"
#include "schemas/mmo_err.h"

static void help(FILE *f)
{
	fprintf(f, "usage: mmo user add NAME --password-stdin [--data DIR]\n"
	           "       mmo user role NAME auditor|player [--data DIR]\n"
	           "  add   create an account (role player); the password is read from the\n"
	           "        first line of stdin (8..128 bytes)\n"
	           "  role  set an account's role; tokens issued from then on carry it\n"
	           "  --data DIR  data folder (default ./data, or MMO_DATA)\n"
	           "NAME is 3..32 of [A-Za-z0-9_].\n");
}

/* The first line of stdin, without its line end. */
static bool read_password(char *buf, size_t cap, size_t *len)
{
	size_t n;

	if (!fgets(buf, (int)cap, stdin))
		return false;
	n = strlen(buf);
	if (n && buf[n - 1] == '\n')
		n--;
	else if (n == cap - 1)
		return false; /* longer than the buffer: over the limit anyway */
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = 0;
	*len = n;
	return true;
}

int cmd_user(int argc, char **argv)
{
	static const struct option lo[] = {{"data", required_argument, 0, 'd'},
	                                   {"password-stdin", no_argument, 0, 'p'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *a_data = NULL, *data, *sub, *name;
	bool pw_stdin = false;
	char msg[256], pid[80];
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", lo, NULL)) != -1 || optind < argc) {
		if (c == -1) {
			/* a positional argument: keep it, go on parsing options after it */
			optind++;
			continue;
		}
		switch (c) {
		case 'd': a_data = optarg; break;
		case 'p': pw_stdin = true; break;
		case 'h': help(stdout); return EXIT_OK;
		default: help(stderr); return EXIT_USAGE;
		}
	}
	/* Positional arguments, in order, skipping options and their values. */
	const char *pos[4] = {0};
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--data")) {
			i++;
			continue;
		}
		if (!strncmp(argv[i], "--", 2) || !strcmp(argv[i], "-h"))
			continue;
		if (npos == 4) {
			cli_err("user", "too many arguments (see mmo user --help)");
			return EXIT_USAGE;
		}
		pos[npos++] = argv[i];
	}
	if (npos < 2) {
		help(stderr);
		return EXIT_USAGE;
	}
	sub = pos[0];
	name = pos[1];
	data = cli_opt("data", a_data, "./data");
	if (!strcmp(sub, "add")) {
		char pw[260];
		size_t len = 0;

		if (npos != 2) {
			cli_err("user", "add takes one NAME (see mmo user --help)");
			return EXIT_USAGE;
		}
		if (!pw_stdin) {
			cli_err("user",
			        "add needs --password-stdin (the password is never an argument)");
			return EXIT_USAGE;
		}
		if (!read_password(pw, sizeof(pw), &len)) {
			cli_err("user", "no password on stdin, or longer than 128 bytes");
			return EXIT_USAGE;
		}
		rc = gw_user_add(data, name, pw, len, pid, msg, sizeof(msg));
		memset(pw, 0, sizeof(pw));
		if (rc) {
			cli_err("user", "%s", msg);
			return rc == MMO_EINVAL ? EXIT_USAGE : EXIT_FAIL;
		}
		printf("%s\n", pid);
		return EXIT_OK;
	}
	if (!strcmp(sub, "role")) {
		if (npos != 3) {
			cli_err("user", "role takes NAME and auditor|player (see mmo user --help)");
			return EXIT_USAGE;
		}
		rc = gw_user_set_role(data, name, pos[2], msg, sizeof(msg));
		if (rc) {
			cli_err("user", "%s", msg);
			return rc == MMO_EINVAL ? EXIT_USAGE : EXIT_FAIL;
		}
		printf("%s is now %s\n", name, pos[2]);
		{
			char detail[256];

			snprintf(detail, sizeof(detail), "user=%s role=%s", name, pos[2]);
			cli_admin_event(data, "user role", detail);
		}
		return EXIT_OK;
	}
	cli_err("user", "unknown subcommand '%s' (add, role)", sub);
	return EXIT_USAGE;
}
