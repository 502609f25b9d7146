/* audit_verify_export.c - check an export offline (audit_export.c writes
 * it): the manifest's Ed25519 signature, the SHA-256 of every file, the
 * hash chain from the manifest's prev_hash through every event (no seq
 * missing, repeated or reordered), each record against its fields, and the
 * counts, first and last seq and hash (docs/audit.md). */
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_util.h"
#include "tools/cli/cli_util.h"

struct vx {
	const char *dir;
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
	if (audit_hash_file(path, hex, &size))
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
	canon = audit_canonical(m);
	if (!canon)
		return fail(v, "out of memory");
	ok = crypto_sign_verify_detached(sig, (const uint8_t *)canon, strlen(canon), pk) == 0;
	free(canon);
	if (!ok)
		return fail(v, "manifest.json: signature check failed: the manifest was altered or "
		               "signed by another key");
	if (!json_is_string(json_object_get(m, "format")) ||
	    strcmp(json_string_value(json_object_get(m, "format")), AUDIT_EXPORT_FORMAT))
		return fail(v, "manifest.json: format is not %s", AUDIT_EXPORT_FORMAT);
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

int audit_verify_export(const char *dir, const uint8_t pk[AUDIT_PUBKEY_LEN],
                        struct audit_export_result *res, char *msg, size_t cap)
{
	struct vx v = {.dir = dir};
	char path[4200];
	json_error_t je;
	json_t *m = NULL;
	int err = MMO_ECORRUPT;

	snprintf(path, sizeof(path), "%s/manifest.json", v.dir);
	m = json_load_file(path, 0, &je);
	if (!m || !json_is_object(m)) {
		snprintf(v.what, sizeof(v.what), "manifest.json: cannot read it: %s", je.text);
		err = m ? MMO_ECORRUPT : MMO_EIO;
		goto out;
	}
	v.counts = json_object();
	v.rec_cap = EVLOG_HDR_LEN + MMO_RECORD_MAX + 16;
	v.rec = malloc(v.rec_cap);
	if (!v.counts || !v.rec) {
		snprintf(v.what, sizeof(v.what), "out of memory");
		err = MMO_ENOMEM;
		goto out;
	}
	if (check_export(&v, m, pk))
		goto out;
	res->events = v.events;
	res->from_seq =
	    (uint64_t)json_integer_value(json_object_get(json_object_get(m, "range"), "from_seq"));
	res->to_seq = v.expect - 1;
	res->files = json_array_size(json_object_get(m, "files"));
	memset(res->pk, 0, sizeof(res->pk));
	memcpy(res->pk, pk, AUDIT_PUBKEY_LEN);
	err = MMO_OK;
out:
	if (err)
		audit_msg(err, msg, cap, "%s", v.what);
	json_decref(m);
	json_decref(v.counts);
	free(v.rec);
	return err;
}
