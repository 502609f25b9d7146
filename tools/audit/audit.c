/* audit.c - `mmo audit`: the auditors' view of the log.
 *
 * This file holds the dispatcher, the helpers the subcommands share
 * (audit_int.h), `verify` and `query`. Export and verify-export live in
 * audit_export.c, the HTML report in audit_report.c. See docs/audit.md.
 */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit_int.h"
#include "tools/audit/audit.h"
#include "tools/cli/cli_util.h"
#include "schemas/event_json.h"
#include "schemas/mmo_util.h"

/* ------------------------------------------------------------ shared helpers */

void audit_progress_init(struct audit_progress *p, const char *what, bool quiet)
{
	p->what = what;
	p->t0 = mmo_mono_us();
	p->tty = isatty(STDERR_FILENO);
	p->quiet = quiet;
}

void audit_progress_show(uint64_t done, uint64_t total, void *arg)
{
	struct audit_progress *p = arg;
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

void audit_progress_end(struct audit_progress *p)
{
	if (!p->quiet && p->tty)
		fputc('\n', stderr);
}

bool audit_arg_seq(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
	if (!cli_parse_u64(s, out) || *out == 0) {
		cli_err(cmd, "%s takes a seq >= 1, not '%s'", opt, s);
		return false;
	}
	return true;
}

bool audit_arg_time(const char *cmd, const char *opt, const char *s, int64_t *out_us)
{
	if (!audit_parse_time(s, out_us)) {
		cli_err(cmd, "%s takes an RFC 3339 time or epoch milliseconds, not '%s'", opt, s);
		return false;
	}
	return true;
}

int audit_bad_option(const char *cmd, int c, char **argv)
{
	const char *opt = argv[optind - 1];

	if (c == ':')
		cli_err(cmd, "option '%s' needs a value (see mmo %s --help)", opt, cmd);
	else
		cli_err(cmd, "unknown option '%s' (see mmo %s --help)", opt, cmd);
	return EXIT_USAGE;
}

static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool audit_parse_time(const char *s, int64_t *us)
{
	struct tm tm = {0};
	int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
	int64_t frac = 0, t;
	const char *p;

	if (!s || !*s)
		return false;
	if (strspn(s, "0123456789") == strlen(s)) {
		uint64_t ms;

		if (strlen(s) > 15 || !cli_parse_u64(s, &ms))
			return false;
		*us = (int64_t)ms * 1000;
		return true;
	}
	if (strlen(s) < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d))
		return false;
	p = s + 10;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		if (strlen(p) < 9 || !digits(p + 1, 2, &h) || p[3] != ':' ||
		    !digits(p + 4, 2, &mi) || p[6] != ':' || !digits(p + 7, 2, &sec))
			return false;
		p += 9;
		if (*p == '.') {
			int n = 0;

			p++;
			while (isdigit((unsigned char)*p)) {
				if (n < 6) {
					frac = frac * 10 + (*p - '0');
					n++;
				}
				p++;
			}
			if (n == 0)
				return false;
			for (; n < 6; n++)
				frac *= 10;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om;

			if (strlen(p) != 6 || !digits(p + 1, 2, &oh) || p[3] != ':' ||
			    !digits(p + 4, 2, &om) || oh > 23 || om > 59)
				return false;
			off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
			p += 6;
		} else {
			return false;
		}
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm) - off;
	if (t < 0)
		return false;
	*us = t * 1000000 + frac;
	return true;
}

void audit_fmt_time(int64_t us, char *buf, size_t cap)
{
	time_t t = (time_t)(us / 1000000);
	struct tm tm;

	if (us < 0 || !gmtime_r(&t, &tm)) {
		snprintf(buf, cap, "-");
		return;
	}
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(us % 1000000));
}

void audit_hex(const uint8_t *in, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[in[i] >> 4];
		out[2 * i + 1] = x[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool audit_unhex(const char *s, uint8_t *out, size_t n)
{
	if (!s || strlen(s) != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);

		if (a < 0 || b < 0)
			return false;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return true;
}

bool audit_open_log(const char *cmd, const char *data, evlog **out)
{
	struct evlog_opts o = {0};
	char dir[4096], msg[512];
	int err;

	snprintf(dir, sizeof(dir), "%s/log", data);
	if (access(dir, F_OK) != 0) {
		cli_err(cmd, "no log in %s (missing %s)", data, dir);
		return false;
	}
	o.dir = dir;
	o.readonly = true;
	err = evlog_open(&o, out, msg, sizeof(msg));
	if (err) {
		cli_err(cmd, "%s", msg);
		return false;
	}
	return true;
}

int audit_rec_json(const struct evlog_rec *rec, bool with_record, json_t **out, Mmo__Event **ev_out)
{
	char hex[2 * EVLOG_HASH_LEN + 1], when[40];
	Mmo__Event *ev;
	json_t *o;
	int err = evlog_rec_decode(rec, &ev);

	if (err)
		return err;
	ev->priority = rec->priority;
	o = mmo_event_to_json(ev);
	if (!o) {
		mmo_event_free(ev);
		return MMO_ENOMEM;
	}
	audit_fmt_time(rec->ts, when, sizeof(when));
	audit_hex(rec->hash, EVLOG_HASH_LEN, hex);
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "hash", json_string(hex));
	if (with_record) {
		size_t n = rec->raw_len - EVLOG_HASH_LEN;
		size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = malloc(cap);

		if (!b64) {
			json_decref(o);
			mmo_event_free(ev);
			return MMO_ENOMEM;
		}
		sodium_bin2base64(b64, cap, rec->raw + EVLOG_HASH_LEN, n,
		                  sodium_base64_VARIANT_ORIGINAL);
		json_object_set_new(o, "record", json_string(b64));
		free(b64);
	}
	*out = o;
	if (ev_out)
		*ev_out = ev;
	else
		mmo_event_free(ev);
	return MMO_OK;
}

/* Envelope keys: columns of their own in CSV and table output. */
static const char *const envelope[] = {"seq",       "ts",       "time",      "type",
                                       "priority",  "event_id", "player_id", "region_id",
                                       "cause_seq", "hash",     "record"};

static bool is_envelope(const char *k)
{
	for (size_t i = 0; i < sizeof(envelope) / sizeof(envelope[0]); i++) {
		if (!strcmp(k, envelope[i]))
			return true;
	}
	return false;
}

/* The body fields of obj (everything but the envelope), compact, sorted. */
static char *body_json(json_t *obj)
{
	json_t *b = json_object();
	const char *k;
	json_t *v;
	char *s;

	if (!b)
		return NULL;
	json_object_foreach(obj, k, v)
	{
		if (!is_envelope(k))
			json_object_set(b, k, v);
	}
	s = json_dumps(b, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(b);
	return s;
}

const char audit_csv_header[] =
    "seq,ts,time,type,priority,event_id,player_id,region_id,cause_seq,body,hash";

void audit_csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* A scalar JSON member as text ("" when absent). */
static void member_text(json_t *obj, const char *k, char *buf, size_t cap)
{
	json_t *v = json_object_get(obj, k);

	if (json_is_string(v))
		snprintf(buf, cap, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else
		buf[0] = 0;
}

void audit_csv_row(FILE *f, json_t *obj, bool with_record)
{
	static const char *const cols[] = {"seq",       "ts",        "time",
	                                   "type",      "priority",  "event_id",
	                                   "player_id", "region_id", "cause_seq"};
	char buf[512];
	char *body = body_json(obj);

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		member_text(obj, cols[i], buf, sizeof(buf));
		if (!strcmp(cols[i], "cause_seq") && !buf[0])
			snprintf(buf, sizeof(buf), "0");
		audit_csv_field(f, buf);
		fputc(',', f);
	}
	audit_csv_field(f, body ? body : "{}");
	fputc(',', f);
	member_text(obj, "hash", buf, sizeof(buf));
	fputs(buf, f);
	if (with_record) {
		json_t *r = json_object_get(obj, "record");

		fputc(',', f);
		fputs(json_is_string(r) ? json_string_value(r) : "", f);
	}
	fputc('\n', f);
	free(body);
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

static int audit_verify(int argc, char **argv)
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
	struct audit_progress p;
	evlog *log;
	int c, err;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_data = optarg; break;
		case 'f':
			if (!audit_arg_seq(cmd, "--from-seq", optarg, &from))
				return EXIT_USAGE;
			break;
		case 't':
			if (!audit_arg_seq(cmd, "--to-seq", optarg, &to))
				return EXIT_USAGE;
			break;
		case 'a': a_anchor = optarg; break;
		case 'n': indexes = false; break;
		case 'q': quiet = true; break;
		case 'h': verify_help(stdout); return EXIT_OK;
		default: return audit_bad_option(cmd, c, argv);
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
	if (a_anchor && !audit_unhex(a_anchor, anchor, sizeof(anchor))) {
		cli_err(cmd, "--anchor must be 64 hex digits");
		return EXIT_USAGE;
	}
	if (!audit_open_log(cmd, cli_opt("data", a_data, "./data"), &log))
		return EXIT_FAIL;
	audit_progress_init(&p, "verify", quiet);
	err = evlog_verify(log, from, to, a_anchor ? anchor : NULL, indexes,
	                   quiet ? NULL : audit_progress_show, &p, &res);
	audit_progress_end(&p);
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

enum fmt { FMT_JSONL, FMT_CSV, FMT_TABLE };

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

static void table_header(void)
{
	printf("%-8s %-27s %-22s %-3s %-16s %-12s %-8s %-36s %-64s %s\n", "SEQ", "TIME", "TYPE",
	       "PRI", "PLAYER", "REGION", "CAUSE", "EVENT_ID", "HASH", "BODY");
}

static void table_row(json_t *o)
{
	char seq[32], when[48], type[80], pri[8], player[80], region[80], cause[32], id[80],
	    hash[80];
	const char *k;
	json_t *v;
	bool first = true;

	member_text(o, "seq", seq, sizeof(seq));
	member_text(o, "time", when, sizeof(when));
	member_text(o, "type", type, sizeof(type));
	member_text(o, "priority", pri, sizeof(pri));
	member_text(o, "player_id", player, sizeof(player));
	member_text(o, "region_id", region, sizeof(region));
	member_text(o, "cause_seq", cause, sizeof(cause));
	member_text(o, "event_id", id, sizeof(id));
	member_text(o, "hash", hash, sizeof(hash));
	printf("%-8s %-27s %-22s %-3s %-16s %-12s %-8s %-36s %-64s ", seq, when, type, pri,
	       *player ? player : "-", *region ? region : "-", *cause ? cause : "-", id, hash);
	json_object_foreach(o, k, v)
	{
		char *s;

		if (is_envelope(k))
			continue;
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
		printf("%s%s=%s", first ? "" : " ", k, s ? s : "?");
		free(s);
		first = false;
	}
	putchar('\n');
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

static bool valid_type_filter(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > MMO_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!islower((unsigned char)t[i]) && !isdigit((unsigned char)t[i]) && t[i] != '.' &&
		    t[i] != '_' && t[i] != '-')
			return false;
	}
	return true;
}

static int audit_query(int argc, char **argv)
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
	struct evlog_query q = {0};
	uint64_t limit = 0, cursor = 0, emitted = 0, next, candidates;
	enum fmt fmt = FMT_JSONL;
	bool explain = false, more = false;
	evlog_query_it *it = NULL;
	struct evlog_rec rec;
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
			if (!valid_type_filter(optarg)) {
				cli_err(cmd,
				        "--type takes a type or a prefix ending in '.', not '%s'",
				        optarg);
				return EXIT_USAGE;
			}
			q.type = optarg;
			break;
		case 'f':
			if (!audit_arg_seq(cmd, "--from-seq", optarg, &q.from_seq))
				return EXIT_USAGE;
			break;
		case 't':
			if (!audit_arg_seq(cmd, "--to-seq", optarg, &q.to_seq))
				return EXIT_USAGE;
			break;
		case 's':
			if (!audit_arg_time(cmd, "--since", optarg, &q.since_us))
				return EXIT_USAGE;
			q.since_set = true;
			break;
		case 'u':
			if (!audit_arg_time(cmd, "--until", optarg, &q.until_us))
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
			if (!audit_arg_seq(cmd, "--cursor", optarg, &cursor))
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
		default: return audit_bad_option(cmd, c, argv);
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
	if (cursor > q.from_seq)
		q.from_seq = cursor;
	if (!audit_open_log(cmd, cli_opt("data", a_data, "./data"), &log))
		return EXIT_FAIL;
	next = 0;
	if (q.to_seq && q.from_seq > q.to_seq) {
		/* A cursor past --to-seq: this query is finished. */
		next = q.to_seq + 1;
		goto done;
	}
	err = evlog_query_open(log, &q, &it);
	if (err) {
		cli_err(cmd, "cannot query: %s", mmo_errdesc(err));
		goto out;
	}
	if (fmt == FMT_CSV)
		printf("%s\n", audit_csv_header);
	else if (fmt == FMT_TABLE)
		table_header();
	while ((err = evlog_query_next(it, &rec)) == MMO_OK) {
		json_t *o;

		if (limit && emitted == limit) {
			more = true;
			next = rec.seq;
			break;
		}
		err = audit_rec_json(&rec, false, &o, NULL);
		if (err) {
			cli_err(cmd, "event at seq %llu does not decode: %s",
			        (unsigned long long)rec.seq, mmo_errdesc(err));
			goto out;
		}
		if (fmt == FMT_JSONL) {
			char *s = json_dumps(o, JSON_COMPACT);

			if (s)
				puts(s);
			free(s);
		} else if (fmt == FMT_CSV) {
			audit_csv_row(stdout, o, false);
		} else {
			table_row(o);
		}
		json_decref(o);
		emitted++;
	}
	if (err != MMO_OK && err != MMO_ENOTFOUND) {
		cli_err(cmd, "log damaged near seq %llu: %s (run mmo audit verify)",
		        (unsigned long long)rec.seq, mmo_errdesc(err));
		goto out;
	}
	if (!more) {
		uint64_t head = evlog_query_head(it);

		next = (q.to_seq && q.to_seq < head ? q.to_seq : head) + 1;
		if (next < q.from_seq)
			next = q.from_seq;
	}
	if (explain) {
		enum evlog_query_driver d = evlog_query_driver(it, &candidates);

		fprintf(stderr, "query: driver=%s candidates=%llu scanned=%llu matched=%llu\n",
		        driver_name(d), (unsigned long long)candidates,
		        (unsigned long long)evlog_query_scanned(it), (unsigned long long)emitted);
	}
done:
	if (fflush(stdout) != 0) {
		cli_err(cmd, "cannot write the output");
		goto out;
	}
	fprintf(stderr, "next_cursor=%llu more=%d\n", (unsigned long long)next, more ? 1 : 0);
	rc = EXIT_OK;
out:
	evlog_query_close(it);
	evlog_close(log);
	return rc;
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
		return audit_verify(argc - 1, argv + 1);
	if (!strcmp(argv[1], "query"))
		return audit_query(argc - 1, argv + 1);
	if (!strcmp(argv[1], "export"))
		return audit_export(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify-export"))
		return audit_verify_export(argc - 1, argv + 1);
	if (!strcmp(argv[1], "report"))
		return audit_report(argc - 1, argv + 1);
	cli_err("audit",
	        "unknown subcommand '%s' (available: verify, query, export, "
	        "verify-export, report)",
	        argv[1]);
	return EXIT_USAGE;
}
