/* standin_cmd.c - mongo-standin: the commands that read and write documents, and the command table
 * (see mongo_standin.h). */
#include "mongo_standin.h"

/* ---- commands --------------------------------------------------------- */

/* The collection named by the command's first field. */
bool coll_arg(const struct req *r, const char **out, struct err *e)
{
	bson_iter_t it;

	bson_iter_init(&it, r->cmd);
	bson_iter_next(&it);
	if (!BSON_ITER_HOLDS_UTF8(&it))
		return fail(e, 73, "collection name must be a string (mongo stand-in)");
	*out = bson_iter_utf8(&it, NULL);
	if (!valid_coll_name(*out))
		return fail(e, 73, "Invalid collection name: %s", *out);
	return true;
}

void make_ns(char *buf, size_t cap, const char *db, const char *coll)
{
	snprintf(buf, cap, "%s.%s", db, coll);
}

static bool cmd_hello(const struct req *r, bson_t *reply, struct err *e)
{
	if (field_bool(r->cmd, "helloOk", false))
		BSON_APPEND_BOOL(reply, "helloOk", true);
	BSON_APPEND_BOOL(reply, strcmp(r->name, "hello") ? "ismaster" : "isWritablePrimary", true);
	BSON_APPEND_INT32(reply, "maxBsonObjectSize", MAX_BSON_BYTES);
	BSON_APPEND_INT32(reply, "maxMessageSizeBytes", MAX_MSG_BYTES);
	BSON_APPEND_INT32(reply, "maxWriteBatchSize", 100000);
	BSON_APPEND_DATE_TIME(reply, "localTime", now_ms());
	BSON_APPEND_INT32(reply, "logicalSessionTimeoutMinutes", 30);
	BSON_APPEND_INT32(reply, "connectionId", r->conn_id);
	BSON_APPEND_INT32(reply, "minWireVersion", 0);
	BSON_APPEND_INT32(reply, "maxWireVersion", WIRE_VERSION);
	BSON_APPEND_BOOL(reply, "readOnly", false);
	return true;
}

static bool cmd_ping(const struct req *r, bson_t *reply, struct err *e)
{
	return true;
}

static bool cmd_buildinfo(const struct req *r, bson_t *reply, struct err *e)
{
	bson_t arr;

	BSON_APPEND_UTF8(reply, "version", "5.0.0-mmo-standin");
	BSON_APPEND_UTF8(reply, "gitVersion", "mongo-standin (a test double)");
	bson_append_array_begin(reply, "versionArray", -1, &arr);
	BSON_APPEND_INT32(&arr, "0", 5);
	BSON_APPEND_INT32(&arr, "1", 0);
	BSON_APPEND_INT32(&arr, "2", 0);
	BSON_APPEND_INT32(&arr, "3", 0);
	bson_append_array_end(reply, &arr);
	BSON_APPEND_INT32(reply, "bits", 64);
	BSON_APPEND_INT32(reply, "maxBsonObjectSize", MAX_BSON_BYTES);
	return true;
}

static bool cmd_server_status(const struct req *r, bson_t *reply, struct err *e)
{
	bson_t sub;

	BSON_APPEND_UTF8(reply, "process", "mongo-standin");
	BSON_APPEND_UTF8(reply, "version", "5.0.0-mmo-standin");
	BSON_APPEND_DATE_TIME(reply, "localTime", now_ms());
	bson_append_document_begin(reply, "connections", -1, &sub);
	append_count(&sub, "current", (int64_t)S.nconns);
	bson_append_document_end(reply, &sub);
	return true;
}

static bool cmd_ok(const struct req *r, bson_t *reply, struct err *e)
{
	return true;
}

static void wres_init(struct wres *w)
{
	memset(w, 0, sizeof(*w));
	bson_init(&w->errs);
	bson_init(&w->ups);
}

static void wres_error(struct wres *w, uint32_t at, const struct err *e)
{
	bson_t ent;
	char buf[16];

	bson_append_document_begin(&w->errs, idx_key(w->nerrs++, buf, sizeof(buf)), -1, &ent);
	BSON_APPEND_INT32(&ent, "index", (int32_t)at);
	BSON_APPEND_INT32(&ent, "code", e->code);
	BSON_APPEND_UTF8(&ent, "errmsg", e->msg);
	bson_append_document_end(&w->errs, &ent);
}

static void wres_upserted(struct wres *w, uint32_t at, const bson_t *doc)
{
	bson_t ent;
	bson_iter_t id;
	char buf[16];

	bson_append_document_begin(&w->ups, idx_key(w->nups++, buf, sizeof(buf)), -1, &ent);
	BSON_APPEND_INT32(&ent, "index", (int32_t)at);
	if (doc_id(doc, &id))
		bson_append_iter(&ent, "_id", 3, &id);
	bson_append_document_end(&w->ups, &ent);
}

static void wres_finish(struct wres *w, bson_t *reply, bool is_update)
{
	append_count(reply, "n", w->n);
	if (is_update)
		append_count(reply, "nModified", w->nmod);
	if (w->nups)
		bson_append_array(reply, "upserted", -1, &w->ups);
	if (w->nerrs)
		bson_append_array(reply, "writeErrors", -1, &w->errs);
	bson_destroy(&w->errs);
	bson_destroy(&w->ups);
}

/* The array a write command's statements come in (body or sequence). */
bool statements(const struct req *r, const char *field, bson_iter_t *out, struct err *e)
{
	bson_iter_t it;

	if (!bson_iter_init_find(&it, r->cmd, field) || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, out))
		return fail(e, 9, "BSON field '%s.%s' is missing but a required field", r->name,
		            field);
	return true;
}

static bool cmd_insert(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it;
	struct coll *c;
	struct wres w;
	uint32_t i = 0;
	bool ordered = field_bool(r->cmd, "ordered", true);

	if (!coll_arg(r, &name, e) || !statements(r, "documents", &it, e))
		return false;
	c = coll_open(db_open(r->db), name, NULL);
	wres_init(&w);
	for (; bson_iter_next(&it); i++) {
		struct err we = {0};
		bson_t src, *doc = NULL;

		if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !iter_doc(&it, &src))
			fail(&we, 14, "documents to insert must be objects");
		else if ((doc = with_id_first(&src, &we)) && write_allowed(c, doc, NULL, &we)) {
			doc_insert(c, doc);
			w.n++;
			continue;
		}
		if (doc)
			bson_destroy(doc);
		wres_error(&w, i, &we);
		if (ordered)
			break;
	}
	wres_finish(&w, reply, false);
	return true;
}

/* Builds the new version of d's document under s into nb. */
static bool updated_doc(const struct doc *d, const struct updspec *s, bson_t *nb, struct err *e)
{
	bson_iter_t id, it;

	if (!s->replacement)
		return apply_ops(d->b, s, false, nb, e);
	doc_id(d->b, &id);
	bson_append_iter(nb, "_id", 3, &id);
	bson_iter_init(&it, s->repl);
	while (bson_iter_next(&it)) {
		if (strcmp(bson_iter_key(&it), "_id"))
			bson_append_iter(nb, NULL, 0, &it);
		else if (!values_equal(&it, &id))
			return fail(e, 66,
			            "After applying the update, the (immutable) field '_id' "
			            "was found to have been altered");
	}
	return true;
}

/* The upsert branch of an update statement that matched nothing. */
static bool upsert_doc(struct coll *c, const bson_t *q, const struct updspec *s, uint32_t at,
                       struct wres *w, struct err *e)
{
	bson_t seed = BSON_INITIALIZER, built = BSON_INITIALIZER, *nd = NULL;
	bson_iter_t id;
	bool ok = true;

	upsert_seed(q, &seed);
	if (!s->replacement)
		ok = apply_ops(&seed, s, true, &built, e);
	else {
		if (!bson_has_field(s->repl, "_id") && doc_id(&seed, &id))
			bson_append_iter(&built, "_id", 3, &id);
		bson_concat(&built, s->repl);
	}
	ok = ok && (nd = with_id_first(&built, e)) && write_allowed(c, nd, NULL, e);
	if (ok) {
		wres_upserted(w, at, nd);
		doc_insert(c, nd);
		nd = NULL;
		w->n++;
	}
	if (nd)
		bson_destroy(nd);
	bson_destroy(&seed);
	bson_destroy(&built);
	return ok;
}

/* Applies one update statement (number at); false and e on its write
 * error. */
static bool update_stmt(struct coll *c, const bson_t *stmt, uint32_t at, struct wres *w,
                        struct err *e)
{
	bson_t q = BSON_INITIALIZER, u;
	bson_iter_t it, id;
	struct updspec *s = bson_malloc(sizeof(*s));
	bool upsert = field_bool(stmt, "upsert", false), multi = field_bool(stmt, "multi", false);
	bool ok = false;
	int64_t matched = 0;
	struct docvec hits = {0};

	if (field_doc(stmt, "q", &q) < 0)
		fail(e, 14, "q must be an object");
	else if (!bson_iter_init_find(&it, stmt, "u") || BSON_ITER_HOLDS_ARRAY(&it))
		fail(e, 2,
		     "u must be an update document (the mongo stand-in has no pipeline "
		     "updates)");
	else if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !iter_doc(&it, &u))
		fail(e, 14, "u must be an object");
	else if (bson_has_field(stmt, "arrayFilters") || bson_has_field(stmt, "collation"))
		fail(e, 2, "arrayFilters and collation are not in the mongo stand-in");
	else if (parse_update(&u, s, e)) {
		if (s->replacement && multi)
			fail(e, 9, "multi update is not supported for replacement-style update");
		else
			ok = select_docs(c, &q, &hits, e);
	}
	/* The hits are borrowed: each is read before it is replaced. */
	for (size_t k = 0; ok && k < hits.n && (multi || matched == 0); k++) {
		bson_t *nb = bson_new();
		struct doc *d;

		doc_id(hits.v[k], &id);
		d = coll_find_id(c, &id);
		matched++;
		ok = updated_doc(d, s, nb, e);
		if (ok && nb->len == d->b->len &&
		    !memcmp(bson_get_data(nb), bson_get_data(d->b), nb->len)) {
			bson_destroy(nb);
			continue;
		}
		ok = ok && write_allowed(c, nb, d, e);
		if (!ok) {
			bson_destroy(nb);
			break;
		}
		doc_replace(c, d, nb);
		w->nmod++;
	}
	w->n += matched;
	if (ok && !matched && upsert)
		ok = upsert_doc(c, &q, s, at, w, e);
	vec_release(&hits);
	bson_free(s);
	return ok;
}

static bool cmd_update(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it;
	struct coll *c;
	struct wres w;
	uint32_t i = 0;
	bool ordered = field_bool(r->cmd, "ordered", true);

	if (!coll_arg(r, &name, e) || !statements(r, "updates", &it, e))
		return false;
	c = coll_open(db_open(r->db), name, NULL);
	wres_init(&w);
	for (; bson_iter_next(&it); i++) {
		struct err we = {0};
		bson_t stmt;

		if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !iter_doc(&it, &stmt))
			fail(&we, 14, "update statements must be objects");
		else if (update_stmt(c, &stmt, i, &w, &we))
			continue;
		wres_error(&w, i, &we);
		if (ordered)
			break;
	}
	wres_finish(&w, reply, true);
	return true;
}

static bool cmd_delete(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it, id;
	struct coll *c;
	struct wres w;
	uint32_t i = 0;
	bool ordered = field_bool(r->cmd, "ordered", true);

	if (!coll_arg(r, &name, e) || !statements(r, "deletes", &it, e))
		return false;
	c = coll_lookup(r->db, name);
	wres_init(&w);
	for (; bson_iter_next(&it); i++) {
		struct err we = {0};
		bson_t stmt, q = BSON_INITIALIZER;
		struct docvec hits = {0};
		int64_t limit = 0;

		if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !iter_doc(&it, &stmt) ||
		    field_doc(&stmt, "q", &q) < 0 || field_i64(&stmt, "limit", &limit) < 0)
			fail(&we, 14, "delete statements must be {q: object, limit: 0|1}");
		else if (limit != 0 && limit != 1)
			fail(&we, 9, "The limit field in delete objects must be 0 or 1. Got %lld",
			     (long long)limit);
		else if (select_docs(c, &q, &hits, &we)) {
			for (size_t k = 0; k < hits.n && (!limit || k < 1); k++) {
				doc_id(hits.v[k], &id);
				doc_delete(c, coll_find_id(c, &id));
				w.n++;
			}
			vec_release(&hits);
			continue;
		}
		vec_release(&hits);
		wres_error(&w, i, &we);
		if (ordered)
			break;
	}
	wres_finish(&w, reply, false);
	return true;
}

/* Reads the options find and aggregate share. */
bool read_batch_size(const bson_t *b, int64_t *batch, struct err *e)
{
	int r = field_i64(b, "batchSize", batch);

	if (r < 0 || (r > 0 && *batch < 0))
		return fail(e, 2, "batchSize must be a non-negative number");
	if (r == 0)
		*batch = -1;
	return true;
}

static bool cmd_find(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_t filter, sort, proj;
	int hf, hs, hp;
	int64_t skip = 0, limit = 0, batch;
	struct sortspec ss = {.n = 0};
	struct docvec hits = {0}, out = {0};
	bool inclusive = false;
	char ns[512];

	if (!coll_arg(r, &name, e))
		return false;
	hf = field_doc(r->cmd, "filter", &filter);
	hs = field_doc(r->cmd, "sort", &sort);
	hp = field_doc(r->cmd, "projection", &proj);
	if (hf < 0 || hs < 0 || hp < 0)
		return fail(e, 14, "filter, sort and projection must be objects");
	if (field_i64(r->cmd, "skip", &skip) < 0 || skip < 0 ||
	    field_i64(r->cmd, "limit", &limit) < 0 || limit < 0)
		return fail(e, 2, "skip and limit must be non-negative numbers");
	if (!read_batch_size(r->cmd, &batch, e) || (hs > 0 && !parse_sort(&sort, &ss, e)) ||
	    (hp > 0 && !parse_projection(&proj, &inclusive, e)))
		return false;
	if (bson_has_field(r->cmd, "collation") || bson_has_field(r->cmd, "tailable"))
		return fail(e, 2, "collation and tailable cursors are not in the mongo stand-in");
	if (!select_docs(coll_lookup(r->db, name), hf > 0 ? &filter : NULL, &hits, e)) {
		vec_release(&hits);
		return false;
	}
	sort_vec(&hits, &ss);
	for (size_t i = (size_t)skip; i < hits.n && (!limit || out.n < (size_t)limit); i++)
		vec_push(&out,
		         hp > 0 ? project(hits.v[i], &proj, inclusive) : bson_copy(hits.v[i]));
	vec_release(&hits);
	make_ns(ns, sizeof(ns), r->db, name);
	reply_first_batch(reply, ns, &out, batch, field_bool(r->cmd, "singleBatch", false));
	return true;
}

static bool cmd_getmore(const struct req *r, bson_t *reply, struct err *e)
{
	bson_iter_t it;
	int64_t id, batch = -1;
	const char *name = field_str(r->cmd, "collection");
	struct cursor *cur;
	char ns[512];
	size_t end;

	bson_iter_init_find(&it, r->cmd, "getMore");
	if (!BSON_ITER_HOLDS_INT64(&it) || !name)
		return fail(e, 14, "getMore takes an int64 cursor id and a collection name");
	id = bson_iter_int64(&it);
	if (field_i64(r->cmd, "batchSize", &batch) < 0)
		return fail(e, 14, "batchSize must be a number");
	make_ns(ns, sizeof(ns), r->db, name);
	cur = cursor_find(id);
	if (!cur || strcmp(cur->ns, ns))
		return fail(e, 43, "cursor id %lld not found", (long long)id);
	end = batch_end(cur->docs, cur->n, cur->pos, batch > 0 ? batch : -1);
	append_cursor(reply, "nextBatch", cur->docs, cur->pos, end, end < cur->n ? cur->id : 0, ns);
	for (size_t i = cur->pos; i < end; i++)
		bson_destroy(cur->docs[i]);
	cur->pos = end;
	if (end == cur->n)
		cursor_free(cur);
	return true;
}

static bool cmd_kill_cursors(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it;
	bson_t killed = BSON_INITIALIZER, missing = BSON_INITIALIZER, empty = BSON_INITIALIZER;
	uint32_t nk = 0, nm = 0;
	char ns[512], buf[16];

	if (!coll_arg(r, &name, e) || !statements(r, "cursors", &it, e))
		return false;
	make_ns(ns, sizeof(ns), r->db, name);
	while (bson_iter_next(&it)) {
		struct cursor *cur;
		int64_t id;

		if (!BSON_ITER_HOLDS_INT64(&it))
			continue;
		id = bson_iter_int64(&it);
		cur = cursor_find(id);
		if (cur && !strcmp(cur->ns, ns)) {
			cursor_free(cur);
			bson_append_int64(&killed, idx_key(nk++, buf, sizeof(buf)), -1, id);
		} else
			bson_append_int64(&missing, idx_key(nm++, buf, sizeof(buf)), -1, id);
	}
	bson_append_array(reply, "cursorsKilled", -1, &killed);
	bson_append_array(reply, "cursorsNotFound", -1, &missing);
	bson_append_array(reply, "cursorsAlive", -1, &empty);
	bson_append_array(reply, "cursorsUnknown", -1, &empty);
	bson_destroy(&killed);
	bson_destroy(&missing);
	return true;
}

static bool cmd_count(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_t q;
	int hq;
	int64_t skip = 0, limit = 0, n;
	struct docvec hits = {0};
	bool ok;

	if (!coll_arg(r, &name, e))
		return false;
	hq = field_doc(r->cmd, "query", &q);
	if (hq < 0 || field_i64(r->cmd, "skip", &skip) < 0 || skip < 0 ||
	    field_i64(r->cmd, "limit", &limit) < 0)
		return fail(e, 14, "count takes query: object, skip, limit: numbers");
	ok = select_docs(coll_lookup(r->db, name), hq > 0 ? &q : NULL, &hits, e);
	n = (int64_t)hits.n - skip;
	if (n < 0)
		n = 0;
	if (limit < 0)
		limit = -limit;
	if (limit && n > limit)
		n = limit;
	vec_release(&hits);
	if (ok)
		append_count(reply, "n", n);
	return ok;
}

static const struct command {
	const char *name;
	cmd_fn fn;
	bool write;
} commands[] = {
    {"hello", cmd_hello, false},
    {"isMaster", cmd_hello, false},
    {"ismaster", cmd_hello, false},
    {"ping", cmd_ping, false},
    {"buildInfo", cmd_buildinfo, false},
    {"buildinfo", cmd_buildinfo, false},
    {"serverStatus", cmd_server_status, false},
    {"insert", cmd_insert, true},
    {"update", cmd_update, true},
    {"delete", cmd_delete, true},
    {"find", cmd_find, false},
    {"getMore", cmd_getmore, false},
    {"killCursors", cmd_kill_cursors, false},
    {"aggregate", cmd_aggregate, false},
    {"count", cmd_count, false},
    {"create", cmd_create, false},
    {"drop", cmd_drop, false},
    {"dropDatabase", cmd_drop_database, false},
    {"createIndexes", cmd_create_indexes, false},
    {"listIndexes", cmd_list_indexes, false},
    {"dropIndexes", cmd_drop_indexes, false},
    {"listCollections", cmd_list_collections, false},
    {"listDatabases", cmd_list_databases, false},
    {"endSessions", cmd_ok, false},
    {"killSessions", cmd_ok, false},
    {"mmoFailNext", cmd_fail_next, false},
    {"mmoReject", cmd_reject, false},
    {"mmoReset", cmd_reset, false},
    {"mmoStats", cmd_stats, false},
};

/* Runs cmd against db; reply (initialised) receives the answer. */
void run_command(struct conn *conn, int32_t conn_id, const char *db, const bson_t *cmd,
                 bson_t *reply)
{
	struct err e = {0};
	struct req r = {.conn = conn, .conn_id = conn_id, .db = db, .cmd = cmd};
	const struct command *c = NULL;
	bson_iter_t it;
	bool ok = false;

	S.commands++;
	if (!bson_iter_init(&it, cmd) || !bson_iter_next(&it)) {
		fail(&e, 59, "no command given");
		goto out;
	}
	r.name = bson_iter_key(&it);
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		if (!strcmp(commands[i].name, r.name))
			c = &commands[i];
	if (S.verbose)
		fprintf(stderr, "mongo-standin: conn %d: %s.%s\n", conn_id, db ? db : "?", r.name);
	if (!c) {
		fail(&e, 59, "no such command: '%s' (the mongo stand-in does not have it)", r.name);
		goto out;
	}
	if (!db || !valid_db_name(db)) {
		fail(&e, 73, "a valid $db is required");
		goto out;
	}
	if (bson_has_field(cmd, "txnNumber") || bson_has_field(cmd, "startTransaction")) {
		fail(&e, 20,
		     "Transaction numbers are only allowed on a replica set member or "
		     "mongos");
		goto out;
	}
	if (c->write && injected(&r, reply, &e))
		ok = e.code == 0;
	else
		ok = c->fn(&r, reply, &e);
out:
	if (ok) {
		BSON_APPEND_DOUBLE(reply, "ok", 1.0);
		return;
	}
	bson_reinit(reply);
	BSON_APPEND_DOUBLE(reply, "ok", 0.0);
	BSON_APPEND_UTF8(reply, "errmsg", e.msg);
	BSON_APPEND_INT32(reply, "code", e.code);
	BSON_APPEND_UTF8(reply, "codeName", code_name(e.code));
}
