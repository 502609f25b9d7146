/* standin_fault.c - mongo-standin: fault injection (mmoFailNext, mmoReject, mmoReset, mmoStats)
 * (see mongo_standin.h). */
#include "mongo_standin.h"

/* ---- fault injection ---------------------------------------------------- */

bool cmd_fail_next(const struct req *r, bson_t *reply, struct err *e)
{
	int64_t n = 0, code = 91;
	const char *msg = field_str(r->cmd, "errmsg"), *ns = field_str(r->cmd, "ns");

	if (field_i64(r->cmd, "mmoFailNext", &n) != 1 || n < 0 ||
	    field_i64(r->cmd, "code", &code) < 0)
		return fail(e, 2, "mmoFailNext takes a count >= 0 and a numeric code");
	S.fail_n = n;
	S.fail_code = (int)code;
	S.fail_write_error = field_bool(r->cmd, "writeError", false);
	snprintf(S.fail_errmsg, sizeof(S.fail_errmsg), "%s", msg ? msg : "injected failure");
	snprintf(S.fail_ns, sizeof(S.fail_ns), "%s", ns ? ns : "");
	return true;
}

bool cmd_reject(const struct req *r, bson_t *reply, struct err *e)
{
	bson_t rule;
	int64_t code = 121;
	int h = field_doc(r->cmd, "mmoReject", &rule);
	const char *ns = field_str(r->cmd, "ns");

	if (h < 0 || field_i64(r->cmd, "code", &code) < 0)
		return fail(e, 2, "mmoReject takes a filter (or null) and a numeric code");
	if (S.reject)
		bson_destroy(S.reject);
	S.reject = h > 0 ? bson_copy(&rule) : NULL;
	S.reject_code = (int)code;
	snprintf(S.reject_ns, sizeof(S.reject_ns), "%s", ns ? ns : "");
	return true;
}

void reset_all(void)
{
	while (S.dbs) {
		struct db *d = S.dbs;

		S.dbs = d->next;
		db_free(d);
	}
	while (S.cur_head)
		cursor_free(S.cur_head);
	if (S.reject)
		bson_destroy(S.reject);
	S.reject = NULL;
	S.fail_n = 0;
}

bool cmd_reset(const struct req *r, bson_t *reply, struct err *e)
{
	reset_all();
	journal('R', NULL, NULL, NULL);
	return true;
}

bool cmd_stats(const struct req *r, bson_t *reply, struct err *e)
{
	size_t ndb = 0, ndocs = 0;

	for (struct db *d = S.dbs; d; d = d->next, ndb++)
		for (struct coll *c = d->colls; c; c = c->next)
			ndocs += c->count;
	append_count(reply, "connections", (int64_t)S.nconns);
	append_count(reply, "commands", (int64_t)S.commands);
	append_count(reply, "cursors", (int64_t)S.ncursors);
	append_count(reply, "databases", (int64_t)ndb);
	append_count(reply, "documents", (int64_t)ndocs);
	append_count(reply, "failNextRemaining", S.fail_n);
	BSON_APPEND_BOOL(reply, "rejecting", S.reject != NULL);
	return true;
}

/* An injected failure for a write command, if one is armed. */
bool injected(const struct req *r, bson_t *reply, struct err *e)
{
	char ns[512];
	const char *coll = NULL;
	bson_iter_t it;
	bson_t errs = BSON_INITIALIZER, ent;

	if (S.fail_n <= 0)
		return false;
	if (bson_iter_init(&it, r->cmd) && bson_iter_next(&it) && BSON_ITER_HOLDS_UTF8(&it))
		coll = bson_iter_utf8(&it, NULL);
	make_ns(ns, sizeof(ns), r->db, coll ? coll : "");
	if (S.fail_ns[0] && strcmp(S.fail_ns, ns))
		return false;
	S.fail_n--;
	fail(e, S.fail_code, "%s", S.fail_errmsg);
	if (!S.fail_write_error)
		return true;
	BSON_APPEND_INT32(reply, "n", 0);
	if (!strcmp(r->name, "update"))
		BSON_APPEND_INT32(reply, "nModified", 0);
	bson_append_document_begin(&errs, "0", 1, &ent);
	BSON_APPEND_INT32(&ent, "index", 0);
	BSON_APPEND_INT32(&ent, "code", e->code);
	BSON_APPEND_UTF8(&ent, "errmsg", e->msg);
	bson_append_document_end(&errs, &ent);
	bson_append_array(reply, "writeErrors", -1, &errs);
	bson_destroy(&errs);
	e->code = 0;
	return true;
}
