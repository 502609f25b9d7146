/* audit.c - `mmo audit`: the auditors' view of the log. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "evlog.h"
#include "mmo_util.h"

struct progress {
	int64_t t0;
	bool tty;
};

static void show_progress(uint64_t done, uint64_t total, void *arg)
{
	struct progress *p = arg;
	double secs = (double)(mmo_mono_us() - p->t0) / 1e6;
	double rate = secs > 0 ? (double)done / secs : 0;
	double eta = rate > 0 ? (double)(total - done) / rate : 0;

	fprintf(stderr, "%sverify: %llu/%llu events (%.0f%%) %.0f events/s eta %.0fs%s",
	        p->tty ? "\r" : "", (unsigned long long)done, (unsigned long long)total,
	        total ? 100.0 * (double)done / (double)total : 100.0, rate, eta,
	        p->tty ? "" : "\n");
}

static int hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != n * 2)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void verify_help(FILE *f)
{
	fprintf(f, "usage: mmo audit verify [--data DIR] [--from-seq A] [--to-seq B] [--anchor HASH]\n"
	           "                        [--no-indexes] [--quiet]\n"
	           "Checks the hash chain of the log in DIR/log (default ./data), that no seq is\n"
	           "missing, and that the ids map and every index point at matching events.\n"
	           "--anchor is the trusted hex SHA-256 of the record before --from-seq.\n"
	           "Exit status: 0 intact, 1 damaged (the first bad seq is named), 2 bad usage.\n");
}

static int audit_verify(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"data", required_argument, 0, 'd'},    {"from-seq", required_argument, 0, 'f'},
	    {"to-seq", required_argument, 0, 't'},  {"anchor", required_argument, 0, 'a'},
	    {"no-indexes", no_argument, 0, 'n'},    {"quiet", no_argument, 0, 'q'},
	    {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
	const char *a_data = NULL, *a_anchor = NULL;
	uint64_t from = 1, to = 0;
	uint8_t anchor[EVLOG_HASH_LEN];
	bool indexes = true, quiet = false;
	struct evlog_opts o = {0};
	struct evlog_verify_result res;
	struct progress p = {mmo_mono_us(), isatty(STDERR_FILENO)};
	char dir[4096], msg[512];
	evlog *log;
	int c, err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_data = optarg; break;
		case 'f':
			if (!cli_parse_u64(optarg, &from) || from == 0) {
				cli_err("audit verify", "--from-seq takes a seq >= 1, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 't':
			if (!cli_parse_u64(optarg, &to) || to == 0) {
				cli_err("audit verify", "--to-seq takes a seq >= 1, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'a': a_anchor = optarg; break;
		case 'n': indexes = false; break;
		case 'q': quiet = true; break;
		case 'h': verify_help(stdout); return EXIT_OK;
		default: verify_help(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err("audit verify", "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (to && to < from) {
		cli_err("audit verify", "--to-seq %llu is before --from-seq %llu",
		        (unsigned long long)to, (unsigned long long)from);
		return EXIT_USAGE;
	}
	if (a_anchor && hex_decode(a_anchor, anchor, sizeof(anchor))) {
		cli_err("audit verify", "--anchor must be 64 hex digits");
		return EXIT_USAGE;
	}
	snprintf(dir, sizeof(dir), "%s/log", cli_opt("data", a_data, "./data"));
	o.dir = dir;
	o.readonly = true;
	err = evlog_open(&o, &log, msg, sizeof(msg));
	if (err) {
		cli_err("audit verify", "%s", msg);
		return EXIT_FAIL;
	}
	err = evlog_verify(log, from, to, a_anchor ? anchor : NULL, indexes,
	                   quiet ? NULL : show_progress, &p, &res);
	if (!quiet && p.tty)
		fputc('\n', stderr);
	evlog_close(log);
	if (err == MMO_ECORRUPT) {
		printf("verify: FAILED at seq %llu: %s\n", (unsigned long long)res.bad_seq, res.what);
		cli_err("audit verify", "log damaged at seq %llu: %s", (unsigned long long)res.bad_seq,
		        res.what);
		return EXIT_FAIL;
	}
	if (err == MMO_EINVAL) {
		cli_err("audit verify", "--from-seq %llu is past the head of the log",
		        (unsigned long long)from);
		return EXIT_USAGE;
	}
	if (err) {
		cli_err("audit verify", "cannot verify: %s", mmo_errdesc(err));
		return EXIT_FAIL;
	}
	printf("verify: ok, %llu events checked%s\n", (unsigned long long)res.checked,
	       indexes ? ", indexes consistent" : "");
	return EXIT_OK;
}

int cmd_audit(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc < 2 ? stderr : stdout,
		        "usage: mmo audit verify [options]   (mmo audit verify --help)\n");
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	if (!strcmp(argv[1], "verify"))
		return audit_verify(argc - 1, argv + 1);
	cli_err("audit", "unknown subcommand '%s' (available: verify)", argv[1]);
	return EXIT_USAGE;
}
