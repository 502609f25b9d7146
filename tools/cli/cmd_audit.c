/* cmd_audit.c - `mmo audit`: the argv of the auditors' subcommands (verify,
 * query, export, verify-export, report), their help, progress lines and
 * exit codes. The work is tools/audit/audit.h. See docs/audit.md. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_time.h"
#include "schemas/mmo_util.h"
#include "tools/audit/audit.h"

/* ------------------------------------------------------------ shared */

/* Progress lines on stderr: "<what>: done/total events (P%) R events/s eta Ss". */
struct progress {
	const char *what;
	int64_t t0;
	bool tty;
	bool quiet;
};

static void progress_init(struct progress *p, const char *what, bool quiet)
{
	p->what = what;
	p->t0 = mmo_mono_us();
	p->tty = isatty(STDERR_FILENO);
	p->quiet = quiet;
}

static void progress_show(uint64_t done, uint64_t total, void *arg)
{
	struct progress *p = arg;
	double secs = (double)(mmo_mono_us() - p->t0) / 1e6;
	double rate = secs > 0 ? (double)done / secs : 0;
	double eta = rate > 0 && total > done ? (double)(total - done) / rate : 0;

	if (p->quiet)
		return;
	fprintf(stderr, "%s%s: %llu/%llu events (%.0f%%) %.0f events/s eta %.0fs%s",
	        p->tty ? "\r" : "", p->what, (unsigned long long)done, (unsigned long long)total,
	        total ? 100.0 * (double)done / (double)total : 100.0, rate, eta,
	        p->tty ? "" : "\n");
}

static void progress_end(struct progress *p)
{
	if (!p->quiet && p->tty)
		fputc('\n', stderr);
}

static bool arg_seq(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
	if (!cli_parse_u64(s, out) || *out == 0) {
		cli_err(cmd, "%s takes a seq >= 1, not '%s'", opt, s);
		return false;
	}
	return true;
}

static bool arg_time(const char *cmd, const char *opt, const char *s, int64_t *out_us)
{
	if (mmo_time_parse(s, out_us) != MMO_OK) {
		cli_err(cmd, "%s takes an RFC 3339 time or epoch milliseconds, not '%s'", opt, s);
		return false;
	}
	return true;
}

static int bad_option(const char *cmd, int c, char **argv)
{
	const char *opt = argv[optind - 1];

	if (c == ':')
		cli_err(cmd, "option '%s' needs a value (see mmo %s --help)", opt, cmd);
	else
		cli_err(cmd, "unknown option '%s' (see mmo %s --help)", opt, cmd);
	return EXIT_USAGE;
}

/* The data folder's log, read-only; on failure prints one line. */
static bool open_log(const char *cmd, const char *data, evlog **out)
{
	char msg[600];

	if (audit_open_log(data, out, msg, sizeof(msg))) {
		cli_err(cmd, "%s", msg);
		return false;
	}
	return true;
}

/* Hex into exactly n bytes. */
static bool unhex(const char *s, uint8_t *out, size_t n)
{
	size_t got;

	return s && strlen(s) == 2 * n && sodium_hex2bin(out, n, s, 2 * n, NULL, &got, NULL) == 0 &&
	       got == n;
}

/* ------------------------------------------------------------ verify */

static void verify_help(FILE *f)
{
	fprintf(f,
	        "usage: mmo audit verify [--data DIR] [--from-seq A] [--to-seq B] [--anchor HASH]\n"
	        "                        [--no-indexes] [--quiet]\n"
	        "Checks the hash chain of the log in DIR/log (default ./data), that no seq is\n"
	        "missing, and that the ids map and every index point at matching events.\n"
	        "--anchor is the trusted hex SHA-256 of the record before --from-seq.\n"
	        "Exit status: 0 intact, 1 damaged (the first bad seq is named), 2 bad usage.\n");
}

static int verify(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"data", required_argument, 0, 'd'},   {"from-seq", required_argument, 0, 'f'},
	    {"to-seq", required_argument, 0, 't'}, {"anchor", required_argument, 0, 'a'},
	    {"no-indexes", no_argument, 0, 'n'},   {"quiet", no_argument, 0, 'q'},
	    {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
	const char *cmd = "audit verify", *a_data = NULL, *a_anchor = NULL;
	uint64_t from = 1, to = 0;
	uint8_t anchor[EVLOG_HASH_LEN];
	bool indexes = true, quiet = false;
	struct evlog_verify_result res;
	struct progress p;
	evlog *log;
	int c, err;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_data = optarg; break;
		case 'f':
			if (!arg_seq(cmd, "--from-seq", optarg, &from))
				return EXIT_USAGE;
			break;
		case 't':
			if (!arg_seq(cmd, "--to-seq", optarg, &to))
				return EXIT_USAGE;
			break;
		case 'a': a_anchor = optarg; break;
		case 'n': indexes = false; break;
		case 'q': quiet = true; break;
		case 'h': verify_help(stdout); return EXIT_OK;
		default: return bad_option(cmd, c, argv);
		}
	}
	if (optind < argc) {
		cli_err(cmd, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (to && to < from) {
		cli_err(cmd, "--to-seq %llu is before --from-seq %llu", (unsigned long long)to,
		        (unsigned long long)from);
		return EXIT_USAGE;
	}
	if (a_anchor && !unhex(a_anchor, anchor, sizeof(anchor))) {
		cli_err(cmd, "--anchor must be 64 hex digits");
		return EXIT_USAGE;
	}
	if (!open_log(cmd, cli_opt("data", a_data, "./data"), &log))
		return EXIT_FAIL;
	progress_init(&p, "verify", quiet);
	err = audit_verify(log, from, to, a_anchor ? anchor : NULL, indexes,
	                   quiet ? NULL : progress_show, &p, &res);
	progress_end(&p);
	evlog_close(log);
	if (err == MMO_ECORRUPT) {
		printf("verify: FAILED at seq %llu: %s\n", (unsigned long long)res.bad_seq,
		       res.what);
		cli_err(cmd, "log damaged at seq %llu: %s", (unsigned long long)res.bad_seq,
		        res.what);
		return EXIT_FAIL;
	}
	if (err == MMO_EINVAL) {
		cli_err(cmd, "--from-seq %llu is past the head of the log",
		        (unsigned long long)from);
		return EXIT_USAGE;
	}
	if (err) {
		cli_err(cmd, "cannot verify: %s", mmo_errdesc(err));
		return EXIT_FAIL;
	}
	printf("verify: ok, %llu events checked%s\n", (unsigned long long)res.checked,
	       indexes ? ", indexes consistent" : "");
	return EXIT_OK;
}

/* ------------------------------------------------------------ query */

static void query_help(FILE *f)
{
	fprintf(
	    f,
	    "usage: mmo audit query [--data DIR] [--player ID] [--type TYPE|PREFIX.] [--region "
	    "ID]\n"
	    "                       [--from-seq A] [--to-seq B] [--since T] [--until T]\n"
	    "                       [--limit N] [--cursor SEQ] [--format jsonl|csv|table]\n"
	    "                       [--explain]\n"
	    "Prints the events of the log in DATA/log (default ./data) that match every filter,\n"
	    "in seq order. --type takes a type (combat.result) or a prefix ending in '.'\n"
	    "(combat.). T is RFC 3339 (2026-01-02T03:04:05Z) or epoch milliseconds;\n"
	    "--since is inclusive, --until exclusive. The query reads the most selective\n"
	    "index only (--explain prints which, and how many entries it read).\n"
	    "Paging: the last line on stderr is 'next_cursor=N more=0|1'; run the same\n"
	    "query again with --cursor N while more=1.\n"
	    "Exit status: 0 ok, 1 failure (unreadable or damaged log), 2 bad usage.\n");
}

static const char *driver_name(enum evlog_query_driver d)
{
	switch (d) {
	case EVLOG_DRIVE_PLAYER: return "player";
	case EVLOG_DRIVE_TYPE: return "type";
	case EVLOG_DRIVE_REGION: return "region";
	default: return "seq";
	}
}

enum fmt { FMT_JSONL, FMT_CSV, FMT_TABLE };

struct query_out {
	enum fmt fmt;
	bool headed; /* the CSV or table header is out */
	bool failed; /* a row's error is printed */
};

static void query_header(struct query_out *qo)
{
	if (qo->headed)
		return;
	qo->headed = true;
	if (qo->fmt == FMT_CSV)
		printf("%s\n", audit_csv_header);
	else if (qo->fmt == FMT_TABLE)
		audit_table_header(stdout);
}

static int query_row(void *arg, const struct evlog_rec *rec, bool *skip)
{
	struct query_out *qo = arg;
	json_t *o;
	int err = audit_record_json(rec, AUDIT_JSON_TIME, &o, NULL);

	(void)skip;
	query_header(qo);
	if (err) {
		cli_err("audit query", "event at seq %llu does not decode: %s",
		        (unsigned long long)rec->seq, mmo_errdesc(err));
		qo->failed = true;
		return err;
	}
	if (qo->fmt == FMT_JSONL) {
		char *js = json_dumps(o, JSON_COMPACT);

		if (js)
			puts(js);
		free(js);
	} else if (qo->fmt == FMT_CSV) {
		audit_csv_row(stdout, o, false);
	} else {
		audit_table_row(stdout, o);
	}
	json_decref(o);
	return MMO_OK;
}

static int query(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"data", required_argument, 0, 'd'},     {"player", required_argument, 0, 'p'},
	    {"type", required_argument, 0, 'y'},     {"region", required_argument, 0, 'r'},
	    {"from-seq", required_argument, 0, 'f'}, {"to-seq", required_argument, 0, 't'},
	    {"since", required_argument, 0, 's'},    {"until", required_argument, 0, 'u'},
	    {"limit", required_argument, 0, 'l'},    {"cursor", required_argument, 0, 'c'},
	    {"format", required_argument, 0, 'o'},   {"explain", no_argument, 0, 'x'},
	    {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
	const char *cmd = "audit query", *a_data = NULL;
	struct audit_filter q = {0};
	struct query_out qo = {0};
	struct audit_page page;
	uint64_t limit = 0, cursor = 0;
	enum fmt fmt = FMT_JSONL;
	bool explain = false;
	evlog *log;
	int c, err, rc = EXIT_FAIL;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_data = optarg; break;
		case 'p':
			if (!mmo_id_valid(optarg)) {
				cli_err(cmd,
				        "--player takes an id of 1..64 [A-Za-z0-9_.:-], not '%s'",
				        optarg);
				return EXIT_USAGE;
			}
			q.player = optarg;
			break;
		case 'r':
			if (!mmo_id_valid(optarg)) {
				cli_err(cmd,
				        "--region takes an id of 1..64 [A-Za-z0-9_.:-], not '%s'",
				        optarg);
				return EXIT_USAGE;
			}
			q.region = optarg;
			break;
		case 'y':
			if (!audit_type_filter_valid(optarg)) {
				cli_err(cmd,
				        "--type takes a type or a prefix ending in '.', not '%s'",
				        optarg);
				return EXIT_USAGE;
			}
			q.type = optarg;
			break;
		case 'f':
			if (!arg_seq(cmd, "--from-seq", optarg, &q.from_seq))
				return EXIT_USAGE;
			break;
		case 't':
			if (!arg_seq(cmd, "--to-seq", optarg, &q.to_seq))
				return EXIT_USAGE;
			break;
		case 's':
			if (!arg_time(cmd, "--since", optarg, &q.since_us))
				return EXIT_USAGE;
			q.since_set = true;
			break;
		case 'u':
			if (!arg_time(cmd, "--until", optarg, &q.until_us))
				return EXIT_USAGE;
			q.until_set = true;
			break;
		case 'l':
			if (!cli_parse_u64(optarg, &limit) || limit == 0) {
				cli_err(cmd, "--limit takes a count >= 1, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			if (!arg_seq(cmd, "--cursor", optarg, &cursor))
				return EXIT_USAGE;
			break;
		case 'o':
			if (!strcmp(optarg, "jsonl"))
				fmt = FMT_JSONL;
			else if (!strcmp(optarg, "csv"))
				fmt = FMT_CSV;
			else if (!strcmp(optarg, "table"))
				fmt = FMT_TABLE;
			else {
				cli_err(cmd, "--format takes jsonl, csv or table, not '%s'",
				        optarg);
				return EXIT_USAGE;
			}
			break;
		case 'x': explain = true; break;
		case 'h': query_help(stdout); return EXIT_OK;
		default: return bad_option(cmd, c, argv);
		}
	}
	if (optind < argc) {
		cli_err(cmd, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (q.to_seq && q.from_seq > q.to_seq) {
		cli_err(cmd, "--to-seq %llu is before --from-seq %llu",
		        (unsigned long long)q.to_seq, (unsigned long long)q.from_seq);
		return EXIT_USAGE;
	}
	if (q.since_set && q.until_set && q.until_us < q.since_us) {
		cli_err(cmd, "--until is before --since");
		return EXIT_USAGE;
	}
	if (!open_log(cmd, cli_opt("data", a_data, "./data"), &log))
		return EXIT_FAIL;
	qo.fmt = fmt;
	err = audit_query_page(log, &q, cursor, limit, query_row, &qo, &page);
	if (err && !qo.failed) {
		if (page.stop_seq)
			cli_err(cmd, "log damaged near seq %llu: %s (run mmo audit verify)",
			        (unsigned long long)page.stop_seq, mmo_errdesc(err));
		else
			cli_err(cmd, "cannot query: %s", mmo_errdesc(err));
	}
	if (err)
		goto out;
	if (page.explained)
		query_header(&qo); /* no rows: the header alone */
	if (explain && page.explained)
		fprintf(stderr, "query: driver=%s candidates=%llu scanned=%llu matched=%llu\n",
		        driver_name(page.driver), (unsigned long long)page.candidates,
		        (unsigned long long)page.scanned, (unsigned long long)page.rows);
	if (fflush(stdout) != 0) {
		cli_err(cmd, "cannot write the output");
		goto out;
	}
	fprintf(stderr, "next_cursor=%llu more=%d\n", (unsigned long long)page.next_seq,
	        page.more ? 1 : 0);
	rc = EXIT_OK;
out:
	evlog_close(log);
	return rc;
}

/* ------------------------------------------------------------ export */

static void export_help(FILE *f)
{
	fprintf(f,
	        "usage: mmo audit export --out DIR [--data DIR] [--from-seq A] [--to-seq B]\n"
	        "                        [--since T] [--until T] [--format jsonl|csv]\n"
	        "                        [--key FILE] [--chunk N] [--quiet]\n"
	        "Writes the events of seq A..B (default: the whole log; time bounds narrow it)\n"
	        "to OUT as events-NNNNNN.jsonl|csv files of at most N events (default 1000000),\n"
	        "with manifest.json (range, counts by type, first/last seq and hash, SHA-256 of\n"
	        "each file, Ed25519 signature), SHA256SUMS and public_key.hex. The chain is\n"
	        "checked while exporting. The key is FILE (64 hex digits, an Ed25519 seed) or\n"
	        "DATA/audit_ed25519.key, created with mode 0600 on first use.\n"
	        "Check it with: mmo audit verify-export OUT --pubkey HEX (see docs/audit.md).\n"
	        "Exit status: 0 ok, 1 failure (damaged log, I/O), 2 bad usage.\n");
}

static int export_(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"data", required_argument, 0, 'd'},   {"from-seq", required_argument, 0, 'f'},
	    {"to-seq", required_argument, 0, 't'}, {"since", required_argument, 0, 's'},
	    {"until", required_argument, 0, 'u'},  {"format", required_argument, 0, 'o'},
	    {"out", required_argument, 0, 'O'},    {"key", required_argument, 0, 'k'},
	    {"chunk", required_argument, 0, 'c'},  {"quiet", no_argument, 0, 'q'},
	    {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
	const char *cmd = "audit export", *a_data = NULL, *keyfile = NULL;
	struct audit_export_opts x = {.chunk = AUDIT_EXPORT_CHUNK_DEFAULT};
	struct audit_export_result res;
	uint64_t from = 0, to = 0;
	int64_t since = 0, until = 0;
	bool since_set = false, until_set = false, quiet = false;
	char pkhex[2 * AUDIT_PUBKEY_LEN + 1], msg[1024];
	struct progress p;
	evlog *log = NULL;
	int c, err;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_data = optarg; break;
		case 'f':
			if (!arg_seq(cmd, "--from-seq", optarg, &from))
				return EXIT_USAGE;
			break;
		case 't':
			if (!arg_seq(cmd, "--to-seq", optarg, &to))
				return EXIT_USAGE;
			break;
		case 's':
			if (!arg_time(cmd, "--since", optarg, &since))
				return EXIT_USAGE;
			since_set = true;
			break;
		case 'u':
			if (!arg_time(cmd, "--until", optarg, &until))
				return EXIT_USAGE;
			until_set = true;
			break;
		case 'o':
			if (strcmp(optarg, "jsonl") && strcmp(optarg, "csv")) {
				cli_err(cmd, "--format takes jsonl or csv, not '%s'", optarg);
				return EXIT_USAGE;
			}
			x.csv = !strcmp(optarg, "csv");
			break;
		case 'O': x.out = optarg; break;
		case 'k': keyfile = optarg; break;
		case 'c':
			if (!cli_parse_u64(optarg, &x.chunk) || x.chunk == 0) {
				cli_err(cmd, "--chunk takes a count >= 1, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'q': quiet = true; break;
		case 'h': export_help(stdout); return EXIT_OK;
		default: return bad_option(cmd, c, argv);
		}
	}
	if (optind < argc) {
		cli_err(cmd, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!x.out || !*x.out) {
		cli_err(cmd, "--out DIR is required (see mmo audit export --help)");
		return EXIT_USAGE;
	}
	if (from && to && to < from) {
		cli_err(cmd, "--to-seq %llu is before --from-seq %llu", (unsigned long long)to,
		        (unsigned long long)from);
		return EXIT_USAGE;
	}
	if (since_set && until_set && until < since) {
		cli_err(cmd, "--until is before --since");
		return EXIT_USAGE;
	}
	x.data = cli_opt("data", a_data, "./data");
	x.keyfile = keyfile;
	x.from_seq = from;
	x.to_seq = to;
	x.since_set = since_set;
	x.until_set = until_set;
	x.since_us = since;
	x.until_us = until;
	if (!open_log(cmd, x.data, &log))
		return EXIT_FAIL;
	progress_init(&p, "export", quiet);
	x.progress = quiet ? NULL : progress_show;
	x.progress_arg = &p;
	err = audit_export(log, &x, &res, msg, sizeof(msg));
	if (!err)
		progress_end(&p);
	evlog_close(log);
	if (err) {
		cli_err(cmd, "%s", msg);
		return err == MMO_EINVAL ? EXIT_USAGE : EXIT_FAIL;
	}
	sodium_bin2hex(pkhex, sizeof(pkhex), res.pk, sizeof(res.pk));
	printf("export: ok, %llu events (seq %llu..%llu), %llu file(s) in %s, public key %s\n",
	       (unsigned long long)res.events, (unsigned long long)res.from_seq,
	       (unsigned long long)res.to_seq, (unsigned long long)res.files, x.out, pkhex);
	return EXIT_OK;
}

/* ------------------------------------------------------------ verify-export */

static void vx_help(FILE *f)
{
	fprintf(f, "usage: mmo audit verify-export DIR --pubkey HEX [--quiet]\n"
	           "Checks an export offline: the manifest's Ed25519 signature against HEX (the\n"
	           "exporter's public key, 64 hex digits, from a trusted channel), the SHA-256 of\n"
	           "every file, the hash chain from the manifest's prev_hash through every event\n"
	           "(no seq missing, repeated or reordered), each record against its fields, and\n"
	           "the counts, first and last seq and hash.\n"
	           "Prints 'verify-export: ok, ...' or 'verify-export: FAILED: <file>: <what>'.\n"
	           "Exit status: 0 intact, 1 altered or unreadable, 2 bad usage.\n");
}

static int verify_export(int argc, char **argv)
{
	static const struct option lo[] = {{"pubkey", required_argument, 0, 'k'},
	                                   {"quiet", no_argument, 0, 'q'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *cmd = "audit verify-export", *a_pub = NULL, *pubhex, *dir;
	struct audit_export_result res;
	uint8_t pk[AUDIT_PUBKEY_LEN];
	char msg[600];
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'k': a_pub = optarg; break;
		case 'q': break;
		case 'h': vx_help(stdout); return EXIT_OK;
		default: return bad_option(cmd, c, argv);
		}
	}
	if (optind >= argc) {
		cli_err(cmd, "missing the export folder (see mmo audit verify-export --help)");
		return EXIT_USAGE;
	}
	if (optind + 1 < argc) {
		cli_err(cmd, "unexpected argument '%s'", argv[optind + 1]);
		return EXIT_USAGE;
	}
	dir = argv[optind];
	pubhex = cli_opt("pubkey", a_pub, NULL);
	if (!pubhex) {
		cli_err(cmd, "--pubkey HEX is required: the exporter's public key from a trusted "
		             "channel");
		return EXIT_USAGE;
	}
	if (!unhex(pubhex, pk, sizeof(pk))) {
		cli_err(cmd, "--pubkey must be 64 hex digits, not '%s'", pubhex);
		return EXIT_USAGE;
	}
	if (audit_verify_export(dir, pk, &res, msg, sizeof(msg))) {
		printf("verify-export: FAILED: %s\n", msg);
		cli_err(cmd, "%s", msg);
		return EXIT_FAIL;
	}
	printf("verify-export: ok, %llu events (seq %llu..%llu), %llu file(s), chain and "
	       "signature valid\n",
	       (unsigned long long)res.events, (unsigned long long)res.from_seq,
	       (unsigned long long)res.to_seq, (unsigned long long)res.files);
	return EXIT_OK;
}

/* ------------------------------------------------------------ report */

static void report_help(FILE *f)
{
	fprintf(f, "usage: mmo audit report --out FILE [--data DIR] [--from-seq A] [--to-seq B]\n"
	           "                        [--since T] [--until T] [--top N] [--quiet]\n"
	           "Writes a self-contained HTML page (inline SVG, no scripts) about seq A..B\n"
	           "(default: the whole log; time bounds narrow it): events per type per day,\n"
	           "logins per day, the top N players by activity (default 10), combat outcomes,\n"
	           "security events, refused intents, operator actions, and the chain status.\n"
	           "Exit status: 0 written (even if the chain is damaged: the page says so),\n"
	           "1 failure, 2 bad usage.\n");
}

static int report(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"data", required_argument, 0, 'd'},   {"from-seq", required_argument, 0, 'f'},
	    {"to-seq", required_argument, 0, 't'}, {"since", required_argument, 0, 's'},
	    {"until", required_argument, 0, 'u'},  {"out", required_argument, 0, 'O'},
	    {"top", required_argument, 0, 'n'},    {"quiet", no_argument, 0, 'q'},
	    {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
	const char *cmd = "audit report", *a_data = NULL, *out = NULL, *data;
	struct audit_report_opts o = {0};
	struct audit_filter *q = &o.range;
	struct audit_report_result res;
	struct progress p, vp;
	uint64_t top = 10;
	bool quiet = false;
	evlog *log = NULL;
	char msg[600];
	int c, err;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_data = optarg; break;
		case 'f':
			if (!arg_seq(cmd, "--from-seq", optarg, &q->from_seq))
				return EXIT_USAGE;
			break;
		case 't':
			if (!arg_seq(cmd, "--to-seq", optarg, &q->to_seq))
				return EXIT_USAGE;
			break;
		case 's':
			if (!arg_time(cmd, "--since", optarg, &q->since_us))
				return EXIT_USAGE;
			q->since_set = true;
			break;
		case 'u':
			if (!arg_time(cmd, "--until", optarg, &q->until_us))
				return EXIT_USAGE;
			q->until_set = true;
			break;
		case 'O': out = optarg; break;
		case 'n':
			if (!cli_parse_u64(optarg, &top) || top == 0 || top > 100000) {
				cli_err(cmd, "--top takes a count of 1..100000, not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'q': quiet = true; break;
		case 'h': report_help(stdout); return EXIT_OK;
		default: return bad_option(cmd, c, argv);
		}
	}
	if (optind < argc) {
		cli_err(cmd, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!out || !*out) {
		cli_err(cmd, "--out FILE is required (see mmo audit report --help)");
		return EXIT_USAGE;
	}
	if (q->to_seq && q->from_seq > q->to_seq) {
		cli_err(cmd, "--to-seq %llu is before --from-seq %llu",
		        (unsigned long long)q->to_seq, (unsigned long long)q->from_seq);
		return EXIT_USAGE;
	}
	if (q->since_set && q->until_set && q->until_us < q->since_us) {
		cli_err(cmd, "--until is before --since");
		return EXIT_USAGE;
	}
	data = cli_opt("data", a_data, "./data");
	if (!open_log(cmd, data, &log))
		return EXIT_FAIL;
	progress_init(&p, "report", quiet);
	progress_init(&vp, "report: verify", quiet);
	o.out = out;
	o.data = data;
	o.top = (size_t)top;
	o.progress = quiet ? NULL : progress_show;
	o.progress_arg = &p;
	o.verify_progress = quiet ? NULL : progress_show;
	o.verify_progress_arg = &vp;
	err = audit_report(log, &o, &res, msg, sizeof(msg));
	evlog_close(log);
	if (err) {
		cli_err(cmd, "%s", msg);
		return EXIT_FAIL;
	}
	progress_end(&p);
	if (res.events)
		progress_end(&vp);
	printf("report: %s, %llu events (seq %llu..%llu), chain %s\n", out,
	       (unsigned long long)res.events, (unsigned long long)res.from_seq,
	       (unsigned long long)res.to_seq,
	       !res.events                 ? "not checked (no events)"
	       : res.chain == MMO_OK       ? "intact"
	       : res.chain == MMO_ECORRUPT ? "DAMAGED"
	                                   : "unchecked");
	return EXIT_OK;
}

/* ------------------------------------------------------------ dispatch */

static void audit_help(FILE *f)
{
	fprintf(f, "usage: mmo audit <subcommand> [options]   (mmo audit <subcommand> --help)\n"
	           "  verify         check the hash chain and the indexes of the log\n"
	           "  query          events by player, type, region, seq and time, paged\n"
	           "  export         a signed, offline-verifiable export of a seq range\n"
	           "  verify-export  check an export's files, chain and signature\n"
	           "  report         a self-contained HTML report of a range\n");
}

int cmd_audit(int argc, char **argv)
{
	if (argc < 2) {
		cli_err("audit", "missing subcommand (verify, query, export, verify-export, "
		                 "report; see mmo audit --help)");
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		audit_help(stdout);
		return EXIT_OK;
	}
	if (sodium_init() < 0) {
		cli_err("audit", "cannot initialise libsodium");
		return EXIT_FAIL;
	}
	if (!strcmp(argv[1], "verify"))
		return verify(argc - 1, argv + 1);
	if (!strcmp(argv[1], "query"))
		return query(argc - 1, argv + 1);
	if (!strcmp(argv[1], "export"))
		return export_(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify-export"))
		return verify_export(argc - 1, argv + 1);
	if (!strcmp(argv[1], "report"))
		return report(argc - 1, argv + 1);
	cli_err("audit",
	        "unknown subcommand '%s' (available: verify, query, export, "
	        "verify-export, report)",
	        argv[1]);
	return EXIT_USAGE;
}
