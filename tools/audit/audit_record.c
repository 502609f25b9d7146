/* audit_record.c - one record as the auditors see it: JSON (the event,
 * its time, hash and, for exports, the chained bytes), a CSV row, a table
 * row. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_int.h"
#include "schemas/event_json.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_time.h"

int audit_record_json(const struct evlog_rec *rec, unsigned flags, json_t **out,
                      Mmo__Event **ev_out)
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
	audit_hex(rec->hash, EVLOG_HASH_LEN, hex);
	if (flags & AUDIT_JSON_TIME) {
		mmo_time_format(rec->ts, when, sizeof(when));
		json_object_set_new(o, "time", json_string(when));
	}
	json_object_set_new(o, "hash", json_string(hex));
	if (flags & AUDIT_JSON_RECORD) {
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

static void csv_field(FILE *f, const char *s)
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
		csv_field(f, buf);
		fputc(',', f);
	}
	csv_field(f, body ? body : "{}");
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

void audit_table_header(FILE *f)
{
	fprintf(f, "%-8s %-27s %-22s %-3s %-16s %-12s %-8s %-36s %-64s %s\n", "SEQ", "TIME", "TYPE",
	        "PRI", "PLAYER", "REGION", "CAUSE", "EVENT_ID", "HASH", "BODY");
}

void audit_table_row(FILE *f, json_t *o)
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
	fprintf(f, "%-8s %-27s %-22s %-3s %-16s %-12s %-8s %-36s %-64s ", seq, when, type, pri,
	        *player ? player : "-", *region ? region : "-", *cause ? cause : "-", id, hash);
	json_object_foreach(o, k, v)
	{
		char *s;

		if (is_envelope(k))
			continue;
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS);
		fprintf(f, "%s%s=%s", first ? "" : " ", k, s ? s : "?");
		free(s);
		first = false;
	}
	fputc('\n', f);
}
