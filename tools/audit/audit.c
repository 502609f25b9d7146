/* audit.c - reading the log for auditors: open it read-only, verify it,
 * and query it one page at a time (audit.h). Export, verify-export and the
 * report build on these in their own files; `mmo audit` is
 * tools/cli/cmd_audit.c. See docs/audit.md. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit_int.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_util.h"

int audit_open_log(const char *data, evlog **out, char *msg, size_t cap)
{
	struct evlog_opts o = {0};
	char dir[4096], why[512];
	int err;

	snprintf(dir, sizeof(dir), "%s/log", data);
	if (access(dir, F_OK) != 0)
		return audit_msg(MMO_ENOTFOUND, msg, cap, "no log in %s (missing %s)", data, dir);
	o.dir = dir;
	o.readonly = true;
	err = evlog_open(&o, out, why, sizeof(why));
	if (err)
		return audit_msg(err, msg, cap, "%s", why);
	return MMO_OK;
}

int audit_verify(evlog *log, uint64_t from, uint64_t to, const uint8_t *anchor, bool indexes,
                 audit_progress_fn *progress, void *arg, struct evlog_verify_result *res)
{
	return evlog_verify(log, from, to, anchor, indexes, progress, arg, res);
}

bool audit_type_filter_valid(const char *t)
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

int audit_query_page(evlog *log, const struct audit_filter *f, uint64_t from_seq, uint64_t limit,
                     audit_row_fn *row, void *arg, struct audit_page *page)
{
	struct evlog_query q = {
	    .player = f->player,
	    .type = f->type,
	    .region = f->region,
	    .from_seq = f->from_seq > from_seq ? f->from_seq : from_seq,
	    .to_seq = f->to_seq,
	    .since_set = f->since_set,
	    .until_set = f->until_set,
	    .since_us = f->since_us,
	    .until_us = f->until_us,
	};
	struct audit_page pg = {0};
	evlog_query_it *it = NULL;
	struct evlog_rec rec;
	int err;

	page->stop_seq = 0;
	if (q.to_seq && q.from_seq > q.to_seq) {
		/* A cursor past to_seq: this query is finished. */
		pg.next_seq = q.to_seq + 1;
		*page = pg;
		return MMO_OK;
	}
	err = evlog_query_open(log, &q, &it);
	if (err)
		return err;
	while ((err = evlog_query_next(it, &rec)) == MMO_OK) {
		bool skip = false;

		if (limit && pg.rows == limit) {
			pg.more = true;
			pg.next_seq = rec.seq;
			break;
		}
		err = row(arg, &rec, &skip);
		if (err)
			break;
		if (!skip)
			pg.rows++;
	}
	if (err == MMO_ENOTFOUND)
		err = MMO_OK;
	if (err) {
		page->stop_seq = rec.seq;
		goto out;
	}
	if (!pg.more) {
		uint64_t head = evlog_query_head(it);

		pg.next_seq = (q.to_seq && q.to_seq < head ? q.to_seq : head) + 1;
		if (pg.next_seq < q.from_seq)
			pg.next_seq = q.from_seq;
	}
	pg.explained = true;
	pg.driver = evlog_query_driver(it, &pg.candidates);
	pg.scanned = evlog_query_scanned(it);
	*page = pg;
out:
	evlog_query_close(it);
	return err;
}

struct json_page {
	unsigned flags;
	json_t *arr;
};

static int json_row(void *arg, const struct evlog_rec *rec, bool *skip)
{
	struct json_page *jp = arg;
	json_t *o;
	int err = audit_record_json(rec, jp->flags, &o, NULL);

	if (err == MMO_EMALFORMED && (jp->flags & AUDIT_SKIP_UNDECODABLE)) {
		*skip = true;
		return MMO_OK;
	}
	if (err)
		return err;
	if (json_array_append_new(jp->arr, o))
		return MMO_ENOMEM;
	return MMO_OK;
}

int audit_query_json(evlog *log, const struct audit_filter *f, uint64_t from_seq, uint64_t limit,
                     unsigned flags, json_t **events, struct audit_page *page)
{
	struct json_page jp = {.flags = flags, .arr = json_array()};
	int err;

	if (!jp.arr)
		return MMO_ENOMEM;
	err = audit_query_page(log, f, from_seq, limit, json_row, &jp, page);
	if (err) {
		json_decref(jp.arr);
		return err;
	}
	*events = jp.arr;
	return MMO_OK;
}
