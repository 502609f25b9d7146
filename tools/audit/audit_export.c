/* audit_export.c - a signed, offline-verifiable export of a seq range
 * (audit_verify_export.c checks one).
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
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_int.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_time.h"
#include "schemas/mmo_util.h"

#define KEY_NAME "audit_ed25519.key"
#define PUB_NAME "audit_ed25519.pub"

struct exporter {
	const char *out;
	char *msg;
	size_t cap;
	int err;
	bool csv;
	uint64_t chunk;
	FILE *f;
	char name[64];
	uint64_t nfile, in_file, file_first, file_last;
	json_t *files;
};

/* ------------------------------------------------------------ keys */

static bool read_seed(struct exporter *x, const char *path, uint8_t seed[32])
{
	char buf[256];
	size_t n;
	struct stat st;
	FILE *f = fopen(path, "r");

	if (!f) {
		x->err = audit_msg(MMO_EIO, x->msg, x->cap, "cannot read key file %s: %s", path,
		                   strerror(errno));
		return false;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (!audit_unhex(buf, seed, 32)) {
		sodium_memzero(buf, sizeof(buf));
		x->err = audit_msg(MMO_EMALFORMED, x->msg, x->cap,
		                   "key file %s must hold 64 hex digits (an Ed25519 seed)", path);
		return false;
	}
	sodium_memzero(buf, sizeof(buf));
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		fprintf(
		    stderr,
		    "mmo audit export: warning: key file %s is readable by others (chmod 600)\n",
		    path);
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
static bool load_key(struct exporter *x, const char *keyfile, const char *data,
                     uint8_t pk[crypto_sign_PUBLICKEYBYTES], uint8_t sk[crypto_sign_SECRETKEYBYTES])
{
	char path[4200], pub[4200], hex[2 * 32 + 2];
	uint8_t seed[32];
	bool ok;

	if (keyfile)
		ok = read_seed(x, keyfile, seed);
	else {
		snprintf(path, sizeof(path), "%s/%s", data, KEY_NAME);
		if (access(path, F_OK) == 0) {
			ok = read_seed(x, path, seed);
		} else {
			randombytes_buf(seed, sizeof(seed));
			audit_hex(seed, sizeof(seed), hex);
			strcat(hex, "\n");
			ok = write_text(path, hex, 0600, true);
			sodium_memzero(hex, sizeof(hex));
			if (!ok) {
				x->err = audit_msg(MMO_EIO, x->msg, x->cap,
				                   "cannot create key file %s: %s", path,
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
				fprintf(stderr, "mmo audit export: warning: cannot write %s\n",
				        pub);
		}
	}
	if (ok)
		crypto_sign_seed_keypair(pk, sk, seed);
	sodium_memzero(seed, sizeof(seed));
	return ok;
}

/* ------------------------------------------------------------ export */

static bool open_chunk(struct exporter *x, uint64_t first_seq)
{
	char path[4200];

	x->nfile++;
	snprintf(x->name, sizeof(x->name), "events-%06llu.%s", (unsigned long long)x->nfile,
	         x->csv ? "csv" : "jsonl");
	snprintf(path, sizeof(path), "%s/%s", x->out, x->name);
	x->f = fopen(path, "wx");
	if (!x->f) {
		x->err = audit_msg(MMO_EIO, x->msg, x->cap, "cannot create %s: %s", path,
		                   strerror(errno));
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
	if (!ok || audit_hash_file(path, hex, &size)) {
		x->err = audit_msg(MMO_EIO, x->msg, x->cap, "cannot write %s: %s", path,
		                   strerror(errno));
		return false;
	}
	e = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s}", "name", x->name, "first_seq",
	              (json_int_t)x->file_first, "last_seq", (json_int_t)x->file_last, "events",
	              (json_int_t)x->in_file, "bytes", (json_int_t)size, "sha256", hex);
	return e && json_array_append_new(x->files, e) == 0;
}

static bool dir_ready(struct exporter *x, const char *out)
{
	DIR *d;
	struct dirent *e;
	bool empty = true;

	if (mkdir(out, 0755) == 0)
		return true;
	if (errno != EEXIST) {
		x->err = audit_msg(MMO_EIO, x->msg, x->cap, "cannot create %s: %s", out,
		                   strerror(errno));
		return false;
	}
	d = opendir(out);
	if (!d) {
		x->err =
		    audit_msg(MMO_EIO, x->msg, x->cap, "cannot open %s: %s", out, strerror(errno));
		return false;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	}
	closedir(d);
	if (!empty)
		x->err = audit_msg(MMO_EIO, x->msg, x->cap,
		                   "%s is not empty: export into a new folder", out);
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
	char *canon = audit_canonical(m), *pretty = NULL, *text = NULL;
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
		x->err = audit_msg(MMO_EIO, x->msg, x->cap, "cannot write %s: %s", path,
		                   strerror(errno));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/SHA256SUMS", x->out);
	sums = fopen(path, "wx");
	if (!sums) {
		x->err = audit_msg(MMO_EIO, x->msg, x->cap, "cannot write %s: %s", path,
		                   strerror(errno));
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
		x->err = audit_msg(MMO_EIO, x->msg, x->cap, "cannot write %s", path);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/public_key.hex", x->out);
	snprintf(line, sizeof(line), "%s\n", pkhex);
	if (!write_text(path, line, 0644, true)) {
		x->err = audit_msg(MMO_EIO, x->msg, x->cap, "cannot write %s: %s", path,
		                   strerror(errno));
		goto out;
	}
	ok = true;
out:
	free(canon);
	free(pretty);
	free(text);
	return ok;
}

int audit_export(evlog *log, const struct audit_export_opts *o, struct audit_export_result *res,
                 char *msg, size_t cap)
{
	struct exporter x = {
	    .out = o->out, .csv = o->csv, .chunk = o->chunk, .msg = msg, .cap = cap};
	uint64_t from = o->from_seq, to = o->to_seq, head, expect, total, done = 0;
	int64_t first_ts = 0;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	uint8_t prev[EVLOG_HASH_LEN], first_hash[EVLOG_HASH_LEN], h[EVLOG_HASH_LEN];
	char prevhex[65], when[40];
	json_t *counts = NULL, *m = NULL, *first = NULL;
	evlog_iter *it = NULL;
	struct evlog_rec rec;
	uint8_t *buf = NULL;
	bool ok = false;
	int err;

	if (!x.chunk)
		x.chunk = AUDIT_EXPORT_CHUNK_DEFAULT;
	err = evlog_head(log, &head, NULL);
	if (err) {
		x.err = audit_msg(err, msg, cap, "cannot read the head of the log: %s",
		                  mmo_errdesc(err));
		goto out;
	}
	if (head == 0) {
		x.err = audit_msg(MMO_ENOTFOUND, msg, cap, "the log is empty: nothing to export");
		goto out;
	}
	if (!from)
		from = 1;
	if (from > head) {
		x.err = audit_msg(MMO_EINVAL, msg, cap,
		                  "--from-seq %llu is past the head of the log (%llu)",
		                  (unsigned long long)from, (unsigned long long)head);
		goto out;
	}
	if (!to || to > head)
		to = head;
	if (o->since_set || o->until_set) {
		uint64_t tlo, thi;

		err = evlog_time_to_seq(log, o->since_set ? o->since_us : 0,
		                        o->until_set ? o->until_us : INT64_MAX, &tlo, &thi);
		if (err == MMO_ENOTFOUND) {
			x.err = audit_msg(MMO_ENOTFOUND, msg, cap, "no events in that time window");
			goto out;
		}
		if (err) {
			x.err = audit_msg(err, msg, cap, "cannot read the time index: %s",
			                  mmo_errdesc(err));
			goto out;
		}
		from = tlo > from ? tlo : from;
		to = thi < to ? thi : to;
		if (from > to) {
			x.err = audit_msg(MMO_ENOTFOUND, msg, cap, "no events in that range");
			goto out;
		}
	}
	if (!load_key(&x, o->keyfile, o->data, pk, sk))
		goto out;
	if (!dir_ready(&x, x.out))
		goto out;

	/* The hash the chain starts from. */
	if (from == 1) {
		memset(prev, 0, sizeof(prev));
	} else {
		size_t len;

		buf = malloc(EVLOG_HDR_LEN + MMO_RECORD_MAX);
		if (!buf) {
			x.err = audit_msg(MMO_ENOMEM, msg, cap, "out of memory");
			goto out;
		}
		err = evlog_get(log, from - 1, buf, EVLOG_HDR_LEN + MMO_RECORD_MAX, &len);
		if (err || len < EVLOG_HASH_LEN) {
			x.err = audit_msg(err ? err : MMO_ECORRUPT, msg, cap,
			                  "cannot read seq %llu, the record before the range: %s",
			                  (unsigned long long)(from - 1), mmo_errdesc(err));
			goto out;
		}
		memcpy(prev, buf, EVLOG_HASH_LEN);
	}
	audit_hex(prev, EVLOG_HASH_LEN, prevhex);

	counts = json_object();
	x.files = json_array();
	if (!counts || !x.files) {
		x.err = audit_msg(MMO_ENOMEM, msg, cap, "out of memory");
		goto out;
	}
	err = evlog_iter_open(log, EVLOG_ALL, NULL, from, &it);
	if (err) {
		x.err = audit_msg(err, msg, cap, "cannot read the log: %s", mmo_errdesc(err));
		goto out;
	}
	total = to - from + 1;
	expect = from;
	while (expect <= to) {
		Mmo__Event *ev;
		json_t *row, *cnt;

		err = evlog_iter_next(it, &rec);
		if (err == MMO_ENOTFOUND || (!err && rec.seq != expect)) {
			x.err = audit_msg(
			    MMO_ECORRUPT, msg, cap,
			    "log damaged at seq %llu: record missing (run mmo audit verify)",
			    (unsigned long long)expect);
			goto out;
		}
		if (err) {
			x.err = audit_msg(err, msg, cap, "cannot read seq %llu: %s",
			                  (unsigned long long)expect, mmo_errdesc(err));
			goto out;
		}
		evlog_chain_hash(prev, rec.seq, rec.raw + EVLOG_HASH_LEN,
		                 rec.raw_len - EVLOG_HASH_LEN, h);
		if (memcmp(h, rec.hash, EVLOG_HASH_LEN) != 0) {
			x.err = audit_msg(
			    MMO_ECORRUPT, msg, cap,
			    "log damaged at seq %llu: hash mismatch (run mmo audit verify)",
			    (unsigned long long)rec.seq);
			goto out;
		}
		memcpy(prev, h, EVLOG_HASH_LEN);
		err = audit_record_json(&rec, AUDIT_JSON_TIME | AUDIT_JSON_RECORD, &row, &ev);
		if (err) {
			x.err = audit_msg(err, msg, cap, "event at seq %llu does not decode: %s",
			                  (unsigned long long)rec.seq, mmo_errdesc(err));
			goto out;
		}
		cnt = json_object_get(counts, ev->type);
		json_object_set_new(counts, ev->type,
		                    json_integer(cnt ? json_integer_value(cnt) + 1 : 1));
		mmo_event_free(ev);
		if (!x.f && !open_chunk(&x, rec.seq)) {
			json_decref(row);
			goto out;
		}
		if (x.csv) {
			audit_csv_row(x.f, row, true);
		} else {
			char *s = json_dumps(row, JSON_COMPACT | JSON_ENSURE_ASCII);

			if (s) {
				fputs(s, x.f);
				fputc('\n', x.f);
			}
			free(s);
		}
		json_decref(row);
		if (rec.seq == from) {
			memcpy(first_hash, rec.hash, EVLOG_HASH_LEN);
			first_ts = rec.ts;
		}
		x.in_file++;
		x.file_last = rec.seq;
		if (ferror(x.f)) {
			x.err = audit_msg(MMO_EIO, msg, cap, "cannot write %s/%s: %s", x.out,
			                  x.name, strerror(errno));
			goto out;
		}
		if (x.in_file == x.chunk && !close_chunk(&x))
			goto out;
		done++;
		if (o->progress && done % AUDIT_PROGRESS_EVERY == 0)
			o->progress(done, total, o->progress_arg);
		expect++;
	}
	if (x.f && !close_chunk(&x))
		goto out;
	if (o->progress)
		o->progress(done, total, o->progress_arg);

	mmo_time_format(mmo_now_us(), when, sizeof(when));
	first = endpoint(from, first_hash, first_ts);
	m = json_pack("{s:s, s:s, s:s, s:{s:I, s:I}, s:s, s:I, s:O, s:o, s:o, s:s, s:s, s:O}",
	              "format", AUDIT_EXPORT_FORMAT, "tool", "mmo " MMO_VERSION, "created_at", when,
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
			x.err = audit_msg(MMO_ENOMEM, msg, cap, "out of memory");
		goto out;
	}
	res->events = done;
	res->from_seq = from;
	res->to_seq = to;
	res->files = x.nfile;
	memcpy(res->pk, pk, sizeof(res->pk));
	ok = true;
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
	if (ok)
		return MMO_OK;
	return x.err ? x.err : audit_msg(MMO_ENOMEM, msg, cap, "out of memory");
}
