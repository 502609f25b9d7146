/* audit_export.c - `mmo audit export` and `mmo audit verify-export`.
 *
 * An export is a folder:
 *   events-000001.jsonl (or .csv), ...  the events, --chunk per file
 *   manifest.json                       range, counts, first/last, file hashes,
 *                                       and an Ed25519 signature
 *   SHA256SUMS                          the file hashes in sha256sum -c form
 *   public_key.hex                      the signing key's public half
 * Each event carries its seq, hash and "record": base64 of the stored bytes
 * the chain hashes (the log record after its 32-byte hash), so anyone can
 * recompute hash = SHA-256(prev_hash || seq u64 BE || record) offline.
 * The signature covers the canonical JSON of the manifest without its
 * "signature" member: keys sorted, no whitespace, ASCII only (docs/audit.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_int.h"
#include "tools/cli/cli_util.h"
#include "schemas/mmo_util.h"

#define EXPORT_FORMAT "mmo-audit-export/1"
#define CHUNK_DEFAULT 1000000
#define KEY_NAME      "audit_ed25519.key"
#define PUB_NAME      "audit_ed25519.pub"

/* ------------------------------------------------------------ shared */

/* SHA-256 of a file's bytes as hex, and its size. */
static int hash_file(const char *path, char hex[65], uint64_t *size)
{
	crypto_hash_sha256_state st;
	uint8_t buf[1 << 16], h[32];
	uint64_t n = 0;
	size_t got;
	FILE *f = fopen(path, "rb");

	if (!f)
		return -1;
	crypto_hash_sha256_init(&st);
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
		crypto_hash_sha256_update(&st, buf, got);
		n += got;
	}
	if (ferror(f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	crypto_hash_sha256_final(&st, h);
	audit_hex(h, sizeof(h), hex);
	*size = n;
	return 0;
}

/* The signed bytes: the manifest without "signature", canonical JSON. The
 * caller frees the result. */
static char *canonical(json_t *manifest)
{
	json_t *m = json_copy(manifest);
	char *s;

	if (!m)
		return NULL;
	json_object_del(m, "signature");
	s = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	json_decref(m);
	return s;
}

/* ------------------------------------------------------------ keys */

static bool read_seed(const char *cmd, const char *path, uint8_t seed[32])
{
	char buf[256];
	size_t n;
	struct stat st;
	FILE *f = fopen(path, "r");

	if (!f) {
		cli_err(cmd, "cannot read key file %s: %s", path, strerror(errno));
		return false;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (!audit_unhex(buf, seed, 32)) {
		sodium_memzero(buf, sizeof(buf));
		cli_err(cmd, "key file %s must hold 64 hex digits (an Ed25519 seed)", path);
		return false;
	}
	sodium_memzero(buf, sizeof(buf));
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		fprintf(stderr, "mmo %s: warning: key file %s is readable by others (chmod 600)\n",
		        cmd, path);
	return true;
}

static bool write_text(const char *path, const char *text, mode_t mode, bool excl)
{
	int fd = open(path, O_WRONLY | O_CREAT | (excl ? O_EXCL : O_TRUNC), mode);
	size_t n = strlen(text);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
	return close(fd) == 0 && ok;
}

/* The signing key: --key FILE, or DATA/audit_ed25519.key made on first use. */
static bool load_key(const char *cmd, const char *keyfile, const char *data,
                     uint8_t pk[crypto_sign_PUBLICKEYBYTES], uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	char path[4200], pub[4200], hex[2 * 32 + 2];
	uint8_t seed[32];
	bool ok;

	if (keyfile)
		ok = read_seed(cmd, keyfile, seed);
	else {
		snprintf(path, sizeof(path), "%s/%s", data, KEY_NAME);
		if (access(path, F_OK) == 0) {
			ok = read_seed(cmd, path, seed);
		} else {
			randombytes_buf(seed, sizeof(seed));
			audit_hex(seed, sizeof(seed), hex);
			strcat(hex, "\n");
			ok = write_text(path, hex, 0600, true);
			sodium_memzero(hex, sizeof(hex));
			if (!ok) {
				cli_err(cmd, "cannot create key file %s: %s", path,
				        strerror(errno));
				return false;
			}
			crypto_sign_seed_keypair(pk, sk, seed);
			audit_hex(pk, crypto_sign_PUBLICKEYBYTES, hex);
			fprintf(stderr, "export: created signing key %s (public key %s)\n", path,
			        hex);
			strcat(hex, "\n");
			snprintf(pub, sizeof(pub), "%s/%s", data, PUB_NAME);
			if (!write_text(pub, hex, 0644, false))
				fprintf(stderr, "mmo %s: warning: cannot write %s\n", cmd, pub);
		}
	}
	if (ok)
		crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return ok;
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

struct exporter {
	const char *cmd, *out;
	bool csv;
	uint64_t chunk;
	FILE *f;
	char name[64];
	uint64_t nfile, in_file, file_first, file_last;
	json_t *files;
};

static bool open_chunk(struct exporter *x, uint64_t first_seq)
{
	char path[4200];

	x->nfile++;
	snprintf(x->name, sizeof(x->name), "events-%06llu.%s", (unsigned long long)x->nfile,
	         x->csv ? "csv" : "jsonl");
	snprintf(path, sizeof(path), "%s/%s", x->out, x->name);
	x->f = fopen(path, "wx");
	if (!x->f) {
		cli_err(x->cmd, "cannot create %s: %s", path, strerror(errno));
		return false;
	}
	if (x->csv)
		fprintf(x->f, "%s,record\n", audit_csv_header);
	x->in_file = 0;
	x->file_first = first_seq;
	return true;
}

static bool close_chunk(struct exporter *x)
{
	char path[4200], hex[65];
	uint64_t size;
	json_t *e;
	bool ok = fflush(x->f) == 0 && fsync(fileno(x->f)) == 0;

	ok = fclose(x->f) == 0 && ok;
	x->f = NULL;
	snprintf(path, sizeof(path), "%s/%s", x->out, x->name);
	if (!ok || hash_file(path, hex, &size)) {
		cli_err(x->cmd, "cannot write %s: %s", path, strerror(errno));
		return false;
	}
	e = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s}", "name", x->name, "first_seq",
	              (json_int_t)x->file_first, "last_seq", (json_int_t)x->file_last, "events",
	              (json_int_t)x->in_file, "bytes", (json_int_t)size, "sha256", hex);
	return e && json_array_append_new(x->files, e) == 0;
}

static bool dir_ready(const char *cmd, const char *out)
{
	DIR *d;
	struct dirent *e;
	bool empty = true;

	if (mkdir(out, 0755) == 0)
		return true;
	if (errno != EEXIST) {
		cli_err(cmd, "cannot create %s: %s", out, strerror(errno));
		return false;
	}
	d = opendir(out);
	if (!d) {
		cli_err(cmd, "cannot open %s: %s", out, strerror(errno));
		return false;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	}
	closedir(d);
	if (!empty)
		cli_err(cmd, "%s is not empty: export into a new folder", out);
	return empty;
}

static json_t *endpoint(uint64_t seq, const uint8_t *hash, int64_t ts)
{
	char hex[65];

	audit_hex(hash, EVLOG_HASH_LEN, hex);
	return json_pack("{s:I, s:s, s:I}", "seq", (json_int_t)seq, "hash", hex, "ts",
	                 (json_int_t)ts);
}

static bool write_manifest(struct exporter *x, json_t *m, const uint8_t *pk, const uint8_t *sk)
{
	char path[4200], pkhex[65], sighex[2 * crypto_sign_BYTES + 1], line[4400];
	uint8_t sig[crypto_sign_BYTES];
	char *canon = canonical(m), *pretty = NULL, *text = NULL;
	FILE *sums;
	size_t i;
	json_t *e;
	bool ok = false;

	if (!canon)
		goto out;
	crypto_sign_detached(sig, NULL, (const uint8_t *)canon, strlen(canon), sk);
	audit_hex(sig, sizeof(sig), sighex);
	audit_hex(pk, crypto_sign_PUBLICKEYBYTES, pkhex);
	json_object_set_new(m, "signature",
	                    json_pack("{s:s, s:s, s:s, s:s}", "alg", "ed25519", "public_key", pkhex,
	                              "signed",
	                              "canonical JSON of this manifest without "
	                              "'signature': sorted keys, no spaces, ASCII",
	                              "value", sighex));
	pretty = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
	text = pretty ? malloc(strlen(pretty) + 2) : NULL;
	if (!text)
		goto out;
	sprintf(text, "%s\n", pretty);
	snprintf(path, sizeof(path), "%s/manifest.json", x->out);
	if (!write_text(path, text, 0644, true)) {
		cli_err(x->cmd, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/SHA256SUMS", x->out);
	sums = fopen(path, "wx");
	if (!sums) {
		cli_err(x->cmd, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	json_array_foreach(x->files, i, e)
	{
		snprintf(line, sizeof(line), "%s  %s\n",
		         json_string_value(json_object_get(e, "sha256")),
		         json_string_value(json_object_get(e, "name")));
		fputs(line, sums);
	}
	if (fclose(sums) != 0) {
		cli_err(x->cmd, "cannot write %s", path);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/public_key.hex", x->out);
	snprintf(line, sizeof(line), "%s\n", pkhex);
	if (!write_text(path, line, 0644, true)) {
		cli_err(x->cmd, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	ok = true;
out:
	free(canon);
	free(pretty);
	free(text);
	return ok;
}

int audit_export(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"data", required_argument, 0, 'd'},   {"from-seq", required_argument, 0, 'f'},
	    {"to-seq", required_argument, 0, 't'}, {"since", required_argument, 0, 's'},
	    {"until", required_argument, 0, 'u'},  {"format", required_argument, 0, 'o'},
	    {"out", required_argument, 0, 'O'},    {"key", required_argument, 0, 'k'},
	    {"chunk", required_argument, 0, 'c'},  {"quiet", no_argument, 0, 'q'},
	    {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
	const char *cmd = "audit export", *a_data = NULL, *keyfile = NULL, *data;
	struct exporter x = {.cmd = "audit export", .chunk = CHUNK_DEFAULT};
	uint64_t from = 0, to = 0, head, expect, total, done = 0;
	int64_t since = 0, until = 0, first_ts = 0;
	bool since_set = false, until_set = false, quiet = false;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t prev[EVLOG_HASH_LEN], first_hash[EVLOG_HASH_LEN], h[EVLOG_HASH_LEN];
	char prevhex[65], pkhex[65], when[40];
	struct audit_progress p;
	json_t *counts = NULL, *m = NULL, *first = NULL;
	evlog_iter *it = NULL;
	struct evlog_rec rec;
	evlog *log = NULL;
	uint8_t *buf = NULL;
	int c, err, rc = EXIT_FAIL;

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
		case 's':
			if (!audit_arg_time(cmd, "--since", optarg, &since))
				return EXIT_USAGE;
			since_set = true;
			break;
		case 'u':
			if (!audit_arg_time(cmd, "--until", optarg, &until))
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
		default: return audit_bad_option(cmd, c, argv);
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
	data = cli_opt("data", a_data, "./data");
	if (!audit_open_log(cmd, data, &log))
		return EXIT_FAIL;
	err = evlog_head(log, &head, NULL);
	if (err) {
		cli_err(cmd, "cannot read the head of the log: %s", mmo_errdesc(err));
		goto out;
	}
	if (head == 0) {
		cli_err(cmd, "the log is empty: nothing to export");
		goto out;
	}
	if (!from)
		from = 1;
	if (from > head) {
		cli_err(cmd, "--from-seq %llu is past the head of the log (%llu)",
		        (unsigned long long)from, (unsigned long long)head);
		rc = EXIT_USAGE;
		goto out;
	}
	if (!to || to > head)
		to = head;
	if (since_set || until_set) {
		uint64_t tlo, thi;

		err = evlog_time_to_seq(log, since_set ? since : 0, until_set ? until : INT64_MAX,
		                        &tlo, &thi);
		if (err == MMO_ENOTFOUND) {
			cli_err(cmd, "no events in that time window");
			goto out;
		}
		if (err) {
			cli_err(cmd, "cannot read the time index: %s", mmo_errdesc(err));
			goto out;
		}
		from = tlo > from ? tlo : from;
		to = thi < to ? thi : to;
		if (from > to) {
			cli_err(cmd, "no events in that range");
			goto out;
		}
	}
	if (!load_key(cmd, keyfile, data, pk, sk))
		goto out;
	if (!dir_ready(cmd, x.out))
		goto out;

	/* The hash the chain starts from. */
	if (from == 1) {
		memset(prev, 0, sizeof(prev));
	} else {
		size_t len;

		buf = malloc(EVLOG_HDR_LEN + MMO_RECORD_MAX);
		if (!buf) {
			cli_err(cmd, "out of memory");
			goto out;
		}
		err = evlog_get(log, from - 1, buf, EVLOG_HDR_LEN + MMO_RECORD_MAX, &len);
		if (err || len < EVLOG_HASH_LEN) {
			cli_err(cmd, "cannot read seq %llu, the record before the range: %s",
			        (unsigned long long)(from - 1), mmo_errdesc(err));
			goto out;
		}
		memcpy(prev, buf, EVLOG_HASH_LEN);
	}
	audit_hex(prev, EVLOG_HASH_LEN, prevhex);

	counts = json_object();
	x.files = json_array();
	if (!counts || !x.files) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	err = evlog_iter_open(log, EVLOG_ALL, NULL, from, &it);
	if (err) {
		cli_err(cmd, "cannot read the log: %s", mmo_errdesc(err));
		goto out;
	}
	audit_progress_init(&p, "export", quiet);
	total = to - from + 1;
	expect = from;
	while (expect <= to) {
		Mmo__Event *ev;
		json_t *o, *cnt;

		err = evlog_iter_next(it, &rec);
		if (err == MMO_ENOTFOUND || (!err && rec.seq != expect)) {
			cli_err(cmd,
			        "log damaged at seq %llu: record missing (run mmo audit verify)",
			        (unsigned long long)expect);
			goto out;
		}
		if (err) {
			cli_err(cmd, "cannot read seq %llu: %s", (unsigned long long)expect,
			        mmo_errdesc(err));
			goto out;
		}
		evlog_chain_hash(prev, rec.seq, rec.raw + EVLOG_HASH_LEN,
		                 rec.raw_len - EVLOG_HASH_LEN, h);
		if (memcmp(h, rec.hash, EVLOG_HASH_LEN) != 0) {
			cli_err(cmd,
			        "log damaged at seq %llu: hash mismatch (run mmo audit verify)",
			        (unsigned long long)rec.seq);
			goto out;
		}
		memcpy(prev, h, EVLOG_HASH_LEN);
		err = audit_rec_json(&rec, true, &o, &ev);
		if (err) {
			cli_err(cmd, "event at seq %llu does not decode: %s",
			        (unsigned long long)rec.seq, mmo_errdesc(err));
			goto out;
		}
		cnt = json_object_get(counts, ev->type);
		json_object_set_new(counts, ev->type,
		                    json_integer(cnt ? json_integer_value(cnt) + 1 : 1));
		mmo_event_free(ev);
		if (!x.f && !open_chunk(&x, rec.seq)) {
			json_decref(o);
			goto out;
		}
		if (x.csv) {
			audit_csv_row(x.f, o, true);
		} else {
			char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

			if (s) {
				fputs(s, x.f);
				fputc('\n', x.f);
			}
			free(s);
		}
		json_decref(o);
		if (rec.seq == from) {
			memcpy(first_hash, rec.hash, EVLOG_HASH_LEN);
			first_ts = rec.ts;
		}
		x.in_file++;
		x.file_last = rec.seq;
		if (ferror(x.f)) {
			cli_err(cmd, "cannot write %s/%s: %s", x.out, x.name, strerror(errno));
			goto out;
		}
		if (x.in_file == x.chunk && !close_chunk(&x))
			goto out;
		done++;
		if (done % AUDIT_PROGRESS_EVERY == 0)
			audit_progress_show(done, total, &p);
		expect++;
	}
	if (x.f && !close_chunk(&x))
		goto out;
	audit_progress_show(done, total, &p);
	audit_progress_end(&p);

	audit_fmt_time(mmo_now_us(), when, sizeof(when));
	first = endpoint(from, first_hash, first_ts);
	m = json_pack("{s:s, s:s, s:s, s:{s:I, s:I}, s:s, s:I, s:O, s:o, s:o, s:s, s:s, s:O}",
	              "format", EXPORT_FORMAT, "tool", "mmo " MMO_VERSION, "created_at", when,
	              "range", "from_seq", (json_int_t)from, "to_seq", (json_int_t)to,
	              "event_format", x.csv ? "csv" : "jsonl", "events", (json_int_t)done,
	              "counts_by_type", counts, "first", first, "last",
	              endpoint(to, rec.hash, rec.ts), "prev_hash", prevhex, "chain",
	              "hash = SHA-256(prev_hash || seq as 8-byte big-endian || base64-decoded "
	              "record); prev_hash of the first event is prev_hash above",
	              "files", x.files);
	first = NULL; /* owned by m now (s:o), or freed by json_pack on failure */
	if (!m || !write_manifest(&x, m, pk, sk)) {
		if (!m)
			cli_err(cmd, "out of memory");
		goto out;
	}
	audit_hex(pk, sizeof(pk), pkhex);
	printf("export: ok, %llu events (seq %llu..%llu), %llu file(s) in %s, public key %s\n",
	       (unsigned long long)done, (unsigned long long)from, (unsigned long long)to,
	       (unsigned long long)x.nfile, x.out, pkhex);
	rc = EXIT_OK;
out:
	sodium_memzero(sk, sizeof(sk));
	if (x.f)
		fclose(x.f);
	json_decref(first);
	json_decref(m);
	json_decref(counts);
	json_decref(x.files);
	free(buf);
	evlog_iter_close(it);
	evlog_close(log);
	return rc;
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

struct vx {
	const char *cmd, *dir;
	char what[512];
	uint8_t prev[EVLOG_HASH_LEN];
	uint64_t expect, events;
	int64_t last_ts;
	json_t *counts;
	uint8_t *rec; /* decoded record bytes, MMO_RECORD_MAX + header */
	size_t rec_cap;
};

static int fail(struct vx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct vx *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->what, sizeof(v->what), fmt, ap);
	va_end(ap);
	return -1;
}

/* One event: its seq, hash and record fields, and the type and event_id
 * shown beside them. */
static int check_event(struct vx *v, const char *file, uint64_t line, uint64_t seq,
                       const char *hashhex, const char *b64, const char *type, const char *event_id,
                       int64_t ts)
{
	uint8_t want[EVLOG_HASH_LEN], h[EVLOG_HASH_LEN];
	size_t len;
	struct evlog_rec rec;
	Mmo__Event *ev;
	json_t *cnt;
	int err;

	if (seq != v->expect)
		return fail(v,
		            "%s: line %llu: seq %llu where %llu was expected (missing, repeated "
		            "or reordered event)",
		            file, (unsigned long long)line, (unsigned long long)seq,
		            (unsigned long long)v->expect);
	if (!hashhex || !audit_unhex(hashhex, want, sizeof(want)))
		return fail(v, "%s: line %llu: seq %llu: hash is not 64 hex digits", file,
		            (unsigned long long)line, (unsigned long long)seq);
	if (!b64 ||
	    sodium_base642bin(v->rec + EVLOG_HASH_LEN, v->rec_cap - EVLOG_HASH_LEN, b64,
	                      strlen(b64), NULL, &len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0)
		return fail(v, "%s: line %llu: seq %llu: record is not base64", file,
		            (unsigned long long)line, (unsigned long long)seq);
	evlog_chain_hash(v->prev, seq, v->rec + EVLOG_HASH_LEN, len, h);
	if (memcmp(h, want, sizeof(h)) != 0)
		return fail(v,
		            "%s: line %llu: seq %llu: hash does not match the record and its "
		            "predecessor",
		            file, (unsigned long long)line, (unsigned long long)seq);
	memcpy(v->rec, h, EVLOG_HASH_LEN);
	if (evlog_rec_parse(seq, v->rec, EVLOG_HASH_LEN + len, &rec) || evlog_rec_decode(&rec, &ev))
		return fail(v, "%s: line %llu: seq %llu: record does not decode", file,
		            (unsigned long long)line, (unsigned long long)seq);
	err = 0;
	if (!type || strcmp(type, ev->type) || !event_id || strcmp(event_id, ev->event_id) ||
	    ts != rec.ts)
		err =
		    fail(v, "%s: line %llu: seq %llu: type, event_id or ts differ from the record",
		         file, (unsigned long long)line, (unsigned long long)seq);
	if (!err) {
		cnt = json_object_get(v->counts, ev->type);
		json_object_set_new(v->counts, ev->type,
		                    json_integer(cnt ? json_integer_value(cnt) + 1 : 1));
	}
	mmo_event_free(ev);
	if (err)
		return err;
	memcpy(v->prev, h, EVLOG_HASH_LEN);
	v->last_ts = rec.ts;
	v->expect++;
	v->events++;
	return 0;
}

static int jsonl_line(struct vx *v, const char *file, uint64_t line, const char *text)
{
	json_error_t je;
	json_t *o = json_loads(text, 0, &je), *s;
	int r;

	if (!o || !json_is_object(o)) {
		json_decref(o);
		return fail(v, "%s: line %llu: not a JSON object", file, (unsigned long long)line);
	}
	s = json_object_get(o, "seq");
	r = check_event(v, file, line, json_is_integer(s) ? (uint64_t)json_integer_value(s) : 0,
	                json_string_value(json_object_get(o, "hash")),
	                json_string_value(json_object_get(o, "record")),
	                json_string_value(json_object_get(o, "type")),
	                json_string_value(json_object_get(o, "event_id")),
	                json_integer_value(json_object_get(o, "ts")));
	json_decref(o);
	return r;
}

/* Split one CSV line (no embedded newlines: every text field is JSON-escaped
 * or an id) into at most max fields, in place. */
static size_t csv_split(char *s, char **f, size_t max)
{
	size_t n = 0;
	char *w;

	while (n < max) {
		if (*s == '"') {
			f[n++] = w = ++s;
			while (*s) {
				if (*s == '"' && s[1] == '"') {
					*w++ = '"';
					s += 2;
				} else if (*s == '"') {
					s++;
					break;
				} else {
					*w++ = *s++;
				}
			}
			*w = 0; /* may overwrite the closing quote: already consumed */
			if (*s == ',')
				s++;
			else
				return n;
		} else {
			f[n++] = s;
			s += strcspn(s, ",");
			if (*s != ',')
				return n;
			*s++ = 0;
		}
	}
	return n;
}

/* Column indexes of the CSV form (audit_csv_header + ",record"). */
enum { C_SEQ = 0, C_TS = 1, C_TYPE = 3, C_EVENT_ID = 5, C_HASH = 10, C_RECORD = 11, C_N = 12 };

static int csv_line(struct vx *v, const char *file, uint64_t line, char *text)
{
	char *f[C_N + 1];
	uint64_t seq = 0, ts = 0;

	if (csv_split(text, f, C_N + 1) != C_N || !cli_parse_u64(f[C_SEQ], &seq) ||
	    !cli_parse_u64(f[C_TS], &ts))
		return fail(v, "%s: line %llu: not a row of %d columns", file,
		            (unsigned long long)line, C_N);
	return check_event(v, file, line, seq, f[C_HASH], f[C_RECORD], f[C_TYPE], f[C_EVENT_ID],
	                   (int64_t)ts);
}

static int check_file(struct vx *v, json_t *e, bool csv)
{
	const char *name = json_string_value(json_object_get(e, "name"));
	const char *want = json_string_value(json_object_get(e, "sha256"));
	json_int_t first = json_integer_value(json_object_get(e, "first_seq"));
	json_int_t last = json_integer_value(json_object_get(e, "last_seq"));
	json_int_t n = json_integer_value(json_object_get(e, "events"));
	json_int_t bytes = json_integer_value(json_object_get(e, "bytes"));
	char path[4200], hex[65], *line = NULL;
	uint64_t size, lineno = 0, before = v->events, first_seq = v->expect;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int r = 0;

	if (!name || !*name || strchr(name, '/') || name[0] == '.' || !want)
		return fail(v, "manifest.json: a file entry has no valid name or sha256");
	snprintf(path, sizeof(path), "%s/%s", v->dir, name);
	if (hash_file(path, hex, &size))
		return fail(v, "%s: cannot read it: %s", name, strerror(errno));
	if (strcmp(hex, want) != 0)
		return fail(v, "%s: sha256 mismatch: the file was altered (manifest %s, file %s)",
		            name, want, hex);
	if ((json_int_t)size != bytes)
		return fail(v, "%s: size %llu differs from the manifest's %lld", name,
		            (unsigned long long)size, (long long)bytes);
	f = fopen(path, "r");
	if (!f)
		return fail(v, "%s: cannot read it: %s", name, strerror(errno));
	while ((len = getline(&line, &cap, f)) > 0) {
		lineno++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (csv && lineno == 1) {
			char hdr[256];

			snprintf(hdr, sizeof(hdr), "%s,record", audit_csv_header);
			if (strcmp(line, hdr) != 0) {
				r = fail(v, "%s: line 1: not the expected CSV header", name);
				break;
			}
			continue;
		}
		r = csv ? csv_line(v, name, lineno, line) : jsonl_line(v, name, lineno, line);
		if (r)
			break;
	}
	free(line);
	fclose(f);
	if (r)
		return r;
	if ((json_int_t)(v->events - before) != n || (json_int_t)first_seq != first ||
	    (json_int_t)(v->expect - 1) != last)
		return fail(v,
		            "%s: holds seq %llu..%llu (%llu events), the manifest says "
		            "%lld..%lld (%lld)",
		            name, (unsigned long long)first_seq,
		            (unsigned long long)(v->expect - 1),
		            (unsigned long long)(v->events - before), (long long)first,
		            (long long)last, (long long)n);
	return 0;
}

static int check_export(struct vx *v, json_t *m, const uint8_t *pk)
{
	uint8_t sig[crypto_sign_BYTES];
	json_t *s = json_object_get(m, "signature"), *files, *e, *range, *first, *last;
	const char *fmt = json_string_value(json_object_get(m, "event_format"));
	char *canon;
	char hex[65];
	size_t i;
	int ok;

	if (!json_is_object(s) || !json_string_value(json_object_get(s, "value")) ||
	    !audit_unhex(json_string_value(json_object_get(s, "value")), sig, sizeof(sig)))
		return fail(v, "manifest.json: no Ed25519 signature");
	canon = canonical(m);
	if (!canon)
		return fail(v, "out of memory");
	ok = crypto_sign_verify_detached(sig, (const uint8_t *)canon, strlen(canon), pk) == 0;
	free(canon);
	if (!ok)
		return fail(v, "manifest.json: signature check failed: the manifest was altered or "
		               "signed by another key");
	if (!json_is_string(json_object_get(m, "format")) ||
	    strcmp(json_string_value(json_object_get(m, "format")), EXPORT_FORMAT))
		return fail(v, "manifest.json: format is not %s", EXPORT_FORMAT);
	if (!fmt || (strcmp(fmt, "jsonl") && strcmp(fmt, "csv")))
		return fail(v, "manifest.json: event_format is not jsonl or csv");
	range = json_object_get(m, "range");
	first = json_object_get(m, "first");
	last = json_object_get(m, "last");
	files = json_object_get(m, "files");
	if (!json_is_object(range) || !json_is_object(first) || !json_is_object(last) ||
	    !json_is_array(files) ||
	    !audit_unhex(json_string_value(json_object_get(m, "prev_hash")), v->prev,
	                 sizeof(v->prev)))
		return fail(v, "manifest.json: range, first, last, prev_hash or files missing");
	v->expect = (uint64_t)json_integer_value(json_object_get(range, "from_seq"));
	json_array_foreach(files, i, e)
	{
		if (check_file(v, e, !strcmp(fmt, "csv")))
			return -1;
	}
	if (v->events != (uint64_t)json_integer_value(json_object_get(m, "events")) ||
	    v->expect - 1 != (uint64_t)json_integer_value(json_object_get(range, "to_seq")))
		return fail(v,
		            "the files hold %llu events, up to seq %llu: the manifest's events or "
		            "range differ",
		            (unsigned long long)v->events, (unsigned long long)(v->expect - 1));
	if (!json_equal(v->counts, json_object_get(m, "counts_by_type")))
		return fail(v, "manifest.json: counts_by_type differ from the events");
	audit_hex(v->prev, sizeof(v->prev), hex);
	if ((uint64_t)json_integer_value(json_object_get(last, "seq")) != v->expect - 1 ||
	    !json_string_value(json_object_get(last, "hash")) ||
	    strcmp(json_string_value(json_object_get(last, "hash")), hex))
		return fail(v, "manifest.json: last seq or hash differ from the events");
	if ((uint64_t)json_integer_value(json_object_get(first, "seq")) !=
	    (uint64_t)json_integer_value(json_object_get(range, "from_seq")))
		return fail(v, "manifest.json: first seq differs from the range");
	return 0;
}

int audit_verify_export(int argc, char **argv)
{
	static const struct option lo[] = {{"pubkey", required_argument, 0, 'k'},
	                                   {"quiet", no_argument, 0, 'q'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *cmd = "audit verify-export", *a_pub = NULL, *pubhex;
	struct vx v = {.cmd = "audit verify-export"};
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
	char path[4200];
	json_error_t je;
	json_t *m = NULL;
	int c, rc = EXIT_FAIL;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		switch (c) {
		case 'k': a_pub = optarg; break;
		case 'q': break;
		case 'h': vx_help(stdout); return EXIT_OK;
		default: return audit_bad_option(cmd, c, argv);
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
	v.dir = argv[optind];
	pubhex = cli_opt("pubkey", a_pub, NULL);
	if (!pubhex) {
		cli_err(cmd, "--pubkey HEX is required: the exporter's public key from a trusted "
		             "channel");
		return EXIT_USAGE;
	}
	if (!audit_unhex(pubhex, pk, sizeof(pk))) {
		cli_err(cmd, "--pubkey must be 64 hex digits, not '%s'", pubhex);
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s/manifest.json", v.dir);
	m = json_load_file(path, 0, &je);
	if (!m || !json_is_object(m)) {
		snprintf(v.what, sizeof(v.what), "manifest.json: cannot read it: %s", je.text);
		goto fail;
	}
	v.counts = json_object();
	v.rec_cap = EVLOG_HDR_LEN + MMO_RECORD_MAX + 16;
	v.rec = malloc(v.rec_cap);
	if (!v.counts || !v.rec) {
		snprintf(v.what, sizeof(v.what), "out of memory");
		goto fail;
	}
	if (check_export(&v, m, pk))
		goto fail;
	printf("verify-export: ok, %llu events (seq %llu..%llu), %zu file(s), chain and "
	       "signature valid\n",
	       (unsigned long long)v.events,
	       (unsigned long long)json_integer_value(
	           json_object_get(json_object_get(m, "range"), "from_seq")),
	       (unsigned long long)(v.expect - 1), json_array_size(json_object_get(m, "files")));
	rc = EXIT_OK;
	goto out;
fail:
	printf("verify-export: FAILED: %s\n", v.what);
	cli_err(cmd, "%s", v.what);
out:
	json_decref(m);
	json_decref(v.counts);
	free(v.rec);
	return rc;
}
