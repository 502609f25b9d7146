/* test_mongo_standin.c - the MongoDB stand-in (a test double), driven by the
 * real libmongoc client through a client pool: the handshake, writes with
 * exact counts and error codes, cursors across batches, counts, indexes,
 * unacknowledged writes, malformed input, injected faults and an outage with a
 * restart on the same port.
 *
 * With MONGO_URI set, the same cases run against that server instead; the
 * cases that need the stand-in's own controls (fault injection, raw malformed
 * input, kill and restart) are skipped there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "testsupport.h"

#ifndef MONGO_STANDIN_BIN
#error "MONGO_STANDIN_BIN must name the mongo-standin executable"
#endif

static struct {
	bool external; /* MONGO_URI names a real server */
	char uri[1024];
	char dir[256];
	char journal[512];
	pid_t pid;
	int port;
	int starts;
	mongoc_client_pool_t *pool;
	char db[64];
	int getmores, killcursors;
} T;

/* ---- helpers ------------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_command_started(const mongoc_apm_command_started_t *ev)
{
	const char *name = mongoc_apm_command_started_get_command_name(ev);

	if (!strcmp(name, "getMore"))
		T.getmores++;
	else if (!strcmp(name, "killCursors"))
		T.killcursors++;
}

/* Reads the port from the stand-in's "ready" line in log; -1 if absent. */
static int ready_port(const char *log)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(log, "r");
	const char *p;

	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strstr(buf, "mongo-standin ready port=");
	return p ? atoi(p + strlen("mongo-standin ready port=")) : -1;
}

/* Starts the stand-in on port (0: a free one) with the test's journal. */
static int standin_start(int port)
{
	char portstr[16], log[600];
	char *argv[] = {MONGO_STANDIN_BIN, "--port",    portstr,   "--bind",
	                "127.0.0.1",       "--journal", T.journal, NULL};

	snprintf(portstr, sizeof(portstr), "%d", port);
	snprintf(log, sizeof(log), "%s/standin-%d.log", T.dir, ++T.starts);
	T.pid = ts_spawn(argv, log);
	if (T.pid <= 0 || !ts_wait_log(log, "mongo-standin ready port=", 10000))
		return -1;
	T.port = ready_port(log);
	return T.port > 0 ? 0 : -1;
}

static mongoc_client_t *client(void)
{
	mongoc_client_t *c = mongoc_client_pool_pop(T.pool);

	assert_non_null(c);
	return c;
}

static void release(mongoc_client_t *c)
{
	mongoc_client_pool_push(T.pool, c);
}

/* The collection name in the test database, emptied first. */
static mongoc_collection_t *fresh(mongoc_client_t *c, const char *name)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(c, T.db, name);
	bson_error_t err;

	mongoc_collection_drop(coll, &err); /* "ns not found" is fine */
	return coll;
}

static int64_t int_field(const bson_t *doc, const char *path)
{
	bson_iter_t it, v;

	if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &v) ||
	    !BSON_ITER_HOLDS_NUMBER(&v))
		return INT64_MIN;
	return bson_iter_as_int64(&v);
}

static const char *str_field(const bson_t *doc, const char *path)
{
	bson_iter_t it, v;

	if (!bson_iter_init(&it, doc) || !bson_iter_find_descendant(&it, path, &v) ||
	    !BSON_ITER_HOLDS_UTF8(&v))
		return NULL;
	return bson_iter_utf8(&v, NULL);
}

static bool admin_command(mongoc_client_t *c, bson_t *cmd, bson_t *reply, bson_error_t *err)
{
	bool ok = mongoc_client_command_simple(c, "admin", cmd, NULL, reply, err);

	bson_destroy(cmd);
	return ok;
}

static bool ping(mongoc_client_t *c, bson_error_t *err)
{
	return admin_command(c, BCON_NEW("ping", BCON_INT32(1)), NULL, err);
}

/* Copies the single document a cursor yields; NULL if not exactly one. */
static bson_t *only_doc(mongoc_cursor_t *cur)
{
	const bson_t *doc;
	bson_t *out = NULL;

	if (mongoc_cursor_next(cur, &doc)) {
		out = bson_copy(doc);
		if (mongoc_cursor_next(cur, &doc)) {
			bson_destroy(out);
			out = NULL;
		}
	}
	mongoc_cursor_destroy(cur);
	return out;
}

/* Upsert of player id at seq unless the stored seq is already >= seq. */
static void bulk_player(mongoc_bulk_operation_t *b, const char *id, int seq, int hp, bool upsert)
{
	bson_t *q = BCON_NEW("_id", BCON_UTF8(id), "seq", "{", "$lt", BCON_INT32(seq), "}");
	bson_t *u = BCON_NEW("$set", "{", "seq", BCON_INT32(seq), "hp", BCON_INT32(hp), "}", "$inc",
	                     "{", "kills", BCON_INT32(1), "}", "$setOnInsert", "{", "created",
	                     BCON_INT32(seq), "}");
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(upsert));
	bson_error_t err;

	assert_true(mongoc_bulk_operation_update_one_with_opts(b, q, u, opts, &err));
	bson_destroy(q);
	bson_destroy(u);
	bson_destroy(opts);
}

static void fill_items(mongoc_collection_t *coll)
{
	bson_t *docs[30];
	bson_error_t err;

	for (int i = 0; i < 30; i++)
		docs[i] =
		    BCON_NEW("_id", BCON_INT32(i), "g", BCON_INT32(i % 3), "k", BCON_INT32(i));
	assert_true(
	    mongoc_collection_insert_many(coll, (const bson_t **)docs, 30, NULL, NULL, &err));
	for (int i = 0; i < 30; i++)
		bson_destroy(docs[i]);
}

/* ---- fixtures ------------------------------------------------------------- */

static int group_setup(void **state)
{
	const char *uri = getenv("MONGO_URI");
	mongoc_uri_t *u;
	mongoc_apm_callbacks_t *cbs;
	bson_error_t err;

	mongoc_init();
	snprintf(T.db, sizeof(T.db), "mmo_standin_test_%d", (int)getpid());
	if (uri && *uri) {
		T.external = true;
		snprintf(T.uri, sizeof(T.uri), "%s", uri);
	} else {
		if (ts_tmpdir(T.dir, sizeof(T.dir)) != 0)
			return -1;
		snprintf(T.journal, sizeof(T.journal), "%s/journal.bson", T.dir);
		if (standin_start(0) != 0)
			return -1;
		snprintf(T.uri, sizeof(T.uri),
		         "mongodb://127.0.0.1:%d/?appname=test&serverSelectionTimeoutMS=2000",
		         T.port);
	}
	u = mongoc_uri_new_with_error(T.uri, &err);
	if (!u)
		return -1;
	T.pool = mongoc_client_pool_new(u);
	mongoc_uri_destroy(u);
	mongoc_client_pool_set_error_api(T.pool, MONGOC_ERROR_API_VERSION_2);
	cbs = mongoc_apm_callbacks_new();
	mongoc_apm_set_command_started_cb(cbs, on_command_started);
	mongoc_client_pool_set_apm_callbacks(T.pool, cbs, NULL);
	mongoc_apm_callbacks_destroy(cbs);
	return 0;
}

static int group_teardown(void **state)
{
	if (T.pool)
		mongoc_client_pool_destroy(T.pool);
	T.pool = NULL;
	if (T.pid > 0)
		ts_stop(T.pid, SIGKILL, 2000);
	mongoc_cleanup();
	if (T.dir[0])
		ts_rmrf(T.dir);
	return 0;
}

/* ---- cases -------------------------------------------------------------- */

static void test_handshake_then_ping_and_hello_over_op_msg(void **state)
{
	mongoc_client_t *c = client();
	bson_t reply;
	bson_error_t err;
	bson_iter_t it;

	assert_true(ping(c, &err));
	assert_true(admin_command(c, BCON_NEW("hello", BCON_INT32(1)), &reply, &err));
	assert_true(int_field(&reply, "maxWireVersion") >= 6);
	assert_true(bson_iter_init_find(&it, &reply, "isWritablePrimary") && bson_iter_bool(&it));
	if (!T.external)
		assert_false(bson_has_field(&reply, "topologyVersion"));
	bson_destroy(&reply);
	assert_true(admin_command(c, BCON_NEW("buildInfo", BCON_INT32(1)), &reply, &err));
	assert_non_null(str_field(&reply, "version"));
	if (!T.external)
		assert_string_equal(str_field(&reply, "version"), "5.0.0-mmo-standin");
	bson_destroy(&reply);
	release(c);
}

static void test_unknown_command_is_command_not_found_59(void **state)
{
	mongoc_client_t *c = client();
	bson_t reply;
	bson_error_t err;

	assert_false(admin_command(c, BCON_NEW("frobnicate", BCON_INT32(1)), &reply, &err));
	assert_int_equal(err.code, 59);
	assert_string_equal(str_field(&reply, "codeName"), "CommandNotFound");
	bson_destroy(&reply);
	release(c);
}

static void test_duplicate_id_is_write_error_11000(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = fresh(c, "dups");
	bson_t *a = BCON_NEW("_id", BCON_INT32(1), "a", BCON_INT32(1));
	bson_t *b = BCON_NEW("_id", BCON_INT32(1), "a", BCON_INT32(2));
	bson_t *same_number = BCON_NEW("_id", BCON_DOUBLE(1.0));
	bson_t *many[3] = {BCON_NEW("_id", BCON_INT32(2)), BCON_NEW("_id", BCON_INT32(1)),
	                   BCON_NEW("_id", BCON_INT32(3))};
	bson_t *q = BCON_NEW("_id", BCON_INT32(1)), reply, *found;
	bson_error_t err;

	assert_true(mongoc_collection_insert_one(coll, a, NULL, NULL, &err));
	assert_false(mongoc_collection_insert_one(coll, b, NULL, &reply, &err));
	assert_int_equal(err.code, 11000);
	assert_int_equal(err.domain, MONGOC_ERROR_SERVER);
	assert_int_equal(int_field(&reply, "writeErrors.0.code"), 11000);
	bson_destroy(&reply);
	/* 1.0 and 1 are the same _id */
	assert_false(mongoc_collection_insert_one(coll, same_number, NULL, NULL, &err));
	assert_int_equal(err.code, 11000);
	/* ordered: stops at the duplicate, so _id 3 is never written */
	assert_false(
	    mongoc_collection_insert_many(coll, (const bson_t **)many, 3, NULL, &reply, &err));
	assert_int_equal(err.code, 11000);
	assert_int_equal(int_field(&reply, "insertedCount"), 1);
	assert_int_equal(int_field(&reply, "writeErrors.0.index"), 1);
	bson_destroy(&reply);
	assert_int_equal(mongoc_collection_count_documents(coll, &(bson_t)BSON_INITIALIZER, NULL,
	                                                   NULL, NULL, &err),
	                 2);
	found = only_doc(mongoc_collection_find_with_opts(coll, q, NULL, NULL));
	assert_non_null(found);
	assert_int_equal(int_field(found, "a"), 1);
	bson_destroy(found);
	for (int i = 0; i < 3; i++)
		bson_destroy(many[i]);
	bson_destroy(a);
	bson_destroy(b);
	bson_destroy(same_number);
	bson_destroy(q);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_bulk_upserts_never_replace_a_newer_seq(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = fresh(c, "players");
	mongoc_bulk_operation_t *b;
	bson_t reply,
	    *p3 = BCON_NEW("_id", BCON_UTF8("p3"), "seq", BCON_INT32(1), "hp", BCON_INT32(50));
	bson_t *q, *doc;
	bson_error_t err;

	/* new players: two upserts and an insert */
	b = mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
	bulk_player(b, "p1", 5, 100, true);
	bulk_player(b, "p2", 6, 80, true);
	assert_true(mongoc_bulk_operation_insert_with_opts(b, p3, NULL, &err));
	assert_true(mongoc_bulk_operation_execute(b, &reply, &err) != 0);
	assert_int_equal(int_field(&reply, "nInserted"), 1);
	assert_int_equal(int_field(&reply, "nUpserted"), 2);
	assert_int_equal(int_field(&reply, "nMatched"), 0);
	assert_int_equal(int_field(&reply, "nModified"), 0);
	assert_string_equal(str_field(&reply, "upserted.0._id"), "p1");
	assert_int_equal(int_field(&reply, "upserted.1.index"), 1);
	assert_string_equal(str_field(&reply, "upserted.1._id"), "p2");
	bson_destroy(&reply);
	mongoc_bulk_operation_destroy(b);

	/* newer for p1, older for p2 (no upsert), a no-op $set for p3 */
	b = mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
	bulk_player(b, "p1", 7, 90, true);
	bulk_player(b, "p2", 3, 1, false);
	q = BCON_NEW("_id", BCON_UTF8("p3"));
	doc = BCON_NEW("$set", "{", "hp", BCON_INT32(50), "}");
	assert_true(mongoc_bulk_operation_update_one_with_opts(b, q, doc, NULL, &err));
	bson_destroy(q);
	bson_destroy(doc);
	assert_true(mongoc_bulk_operation_execute(b, &reply, &err) != 0);
	assert_int_equal(int_field(&reply, "nMatched"), 2);
	assert_int_equal(int_field(&reply, "nModified"), 1);
	assert_int_equal(int_field(&reply, "nUpserted"), 0);
	bson_destroy(&reply);
	mongoc_bulk_operation_destroy(b);

	/* an older event with upsert: the filter misses, the insert hits the
	 * stored _id, so the server answers 11000 and keeps the newer state */
	b = mongoc_collection_create_bulk_operation_with_opts(coll, NULL);
	bulk_player(b, "p1", 6, 1, true);
	assert_int_equal(mongoc_bulk_operation_execute(b, &reply, &err), 0);
	assert_int_equal(err.code, 11000);
	assert_int_equal(int_field(&reply, "writeErrors.0.code"), 11000);
	assert_int_equal(int_field(&reply, "writeErrors.0.index"), 0);
	assert_int_equal(int_field(&reply, "nUpserted"), 0);
	assert_int_equal(int_field(&reply, "nModified"), 0);
	bson_destroy(&reply);
	mongoc_bulk_operation_destroy(b);

	q = BCON_NEW("_id", BCON_UTF8("p1"));
	doc = only_doc(mongoc_collection_find_with_opts(coll, q, NULL, NULL));
	assert_non_null(doc);
	assert_int_equal(int_field(doc, "seq"), 7);
	assert_int_equal(int_field(doc, "hp"), 90);
	assert_int_equal(int_field(doc, "kills"), 2);
	assert_int_equal(int_field(doc, "created"), 5);
	bson_destroy(doc);
	bson_destroy(q);
	q = BCON_NEW("_id", BCON_UTF8("p2"));
	doc = only_doc(mongoc_collection_find_with_opts(coll, q, NULL, NULL));
	assert_non_null(doc);
	assert_int_equal(int_field(doc, "seq"), 6);
	assert_int_equal(int_field(doc, "hp"), 80);
	assert_int_equal(int_field(doc, "kills"), 1);
	bson_destroy(doc);
	bson_destroy(q);
	bson_destroy(p3);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_comparison_filters_drive_update_many_and_delete(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = fresh(c, "cmp");
	bson_t *docs[10], *q, *u, reply;
	bson_error_t err;

	for (int i = 0; i < 10; i++)
		docs[i] = BCON_NEW("_id", BCON_INT32(i + 1), "v", BCON_INT32(i + 1));
	assert_true(
	    mongoc_collection_insert_many(coll, (const bson_t **)docs, 10, NULL, NULL, &err));
	for (int i = 0; i < 10; i++)
		bson_destroy(docs[i]);

	q = BCON_NEW("v", "{", "$gte", BCON_INT32(8), "}");
	u = BCON_NEW("$inc", "{", "v", BCON_INT32(100), "}");
	assert_true(mongoc_collection_update_many(coll, q, u, NULL, &reply, &err));
	assert_int_equal(int_field(&reply, "matchedCount"), 3);
	assert_int_equal(int_field(&reply, "modifiedCount"), 3);
	bson_destroy(&reply);
	bson_destroy(q);
	bson_destroy(u);

	q = BCON_NEW("v", "{", "$gt", BCON_INT32(4), "$lte", BCON_INT32(6), "}");
	u = BCON_NEW("$set", "{", "mid", BCON_BOOL(true), "}");
	assert_true(mongoc_collection_update_many(coll, q, u, NULL, &reply, &err));
	assert_int_equal(int_field(&reply, "matchedCount"), 2);
	assert_int_equal(int_field(&reply, "modifiedCount"), 2);
	bson_destroy(&reply);
	/* the same again changes nothing */
	assert_true(mongoc_collection_update_many(coll, q, u, NULL, &reply, &err));
	assert_int_equal(int_field(&reply, "matchedCount"), 2);
	assert_int_equal(int_field(&reply, "modifiedCount"), 0);
	bson_destroy(&reply);
	bson_destroy(q);
	bson_destroy(u);

	q = BCON_NEW("v", "{", "$ne", BCON_INT32(5), "}");
	assert_int_equal(mongoc_collection_count_documents(coll, q, NULL, NULL, NULL, &err), 9);
	bson_destroy(q);
	q = BCON_NEW("v", "{", "$lt", BCON_INT32(3), "}");
	assert_true(mongoc_collection_delete_one(coll, q, NULL, &reply, &err));
	assert_int_equal(int_field(&reply, "deletedCount"), 1);
	bson_destroy(&reply);
	bson_destroy(q);
	q = BCON_NEW("v", "{", "$gt", BCON_INT32(100), "}");
	assert_true(mongoc_collection_delete_many(coll, q, NULL, &reply, &err));
	assert_int_equal(int_field(&reply, "deletedCount"), 3);
	bson_destroy(&reply);
	bson_destroy(q);
	q = BCON_NEW("mid", BCON_BOOL(true));
	assert_int_equal(mongoc_collection_count_documents(coll, q, NULL, NULL, NULL, &err), 2);
	bson_destroy(q);
	assert_int_equal(mongoc_collection_count_documents(coll, &(bson_t)BSON_INITIALIZER, NULL,
	                                                   NULL, NULL, &err),
	                 6);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_find_sorts_skips_limits_and_pages_with_getmore(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = fresh(c, "items");
	bson_t *opts = BCON_NEW("sort", "{", "g", BCON_INT32(1), "k", BCON_INT32(-1), "}", "skip",
	                        BCON_INT64(2), "limit", BCON_INT64(17), "batchSize", BCON_INT32(5));
	bson_t *filter, *expected;
	mongoc_cursor_t *cur;
	const bson_t *doc;
	int want[30], nwant = 0, got = 0, before;
	bson_error_t err;

	fill_items(coll);
	for (int g = 0; g < 3; g++)
		for (int k = 29; k >= 0; k--)
			if (k % 3 == g)
				want[nwant++] = k;
	before = T.getmores;
	cur = mongoc_collection_find_with_opts(coll, &(bson_t)BSON_INITIALIZER, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		assert_true(got < 17);
		assert_int_equal(int_field(doc, "_id"), want[2 + got]);
		got++;
	}
	assert_false(mongoc_cursor_error(cur, &err));
	assert_int_equal(got, 17);
	assert_int_equal(T.getmores - before, 3);
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);

	/* an equality filter and a projection give exact documents */
	filter = BCON_NEW("g", BCON_INT32(1));
	opts = BCON_NEW("sort", "{", "k", BCON_INT32(1), "}", "projection", "{", "_id",
	                BCON_INT32(0), "k", BCON_INT32(1), "}", "batchSize", BCON_INT32(4));
	cur = mongoc_collection_find_with_opts(coll, filter, opts, NULL);
	got = 0;
	while (mongoc_cursor_next(cur, &doc)) {
		expected = BCON_NEW("k", BCON_INT32(1 + 3 * got));
		assert_true(bson_equal(doc, expected));
		bson_destroy(expected);
		got++;
	}
	assert_false(mongoc_cursor_error(cur, &err));
	assert_int_equal(got, 10);
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_killed_cursor_is_gone(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = mongoc_client_get_collection(c, T.db, "items");
	bson_t *opts = BCON_NEW("batchSize", BCON_INT32(2));
	mongoc_cursor_t *cur =
	    mongoc_collection_find_with_opts(coll, &(bson_t)BSON_INITIALIZER, opts, NULL);
	const bson_t *doc;
	int64_t id;
	int before = T.killcursors;
	bson_t *cmd;
	bson_error_t err;

	assert_true(mongoc_cursor_next(cur, &doc));
	id = mongoc_cursor_get_id(cur);
	assert_true(id != 0);
	mongoc_cursor_destroy(cur);
	assert_int_equal(T.killcursors - before, 1);
	cmd = BCON_NEW("getMore", BCON_INT64(id), "collection", BCON_UTF8("items"));
	assert_false(mongoc_client_command_simple(c, T.db, cmd, NULL, NULL, &err));
	assert_int_equal(err.code, 43);
	bson_destroy(cmd);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_counts_through_aggregate_and_count(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = mongoc_client_get_collection(c, T.db, "items");
	bson_t *q = BCON_NEW("g", BCON_INT32(2)), *none = BCON_NEW("g", BCON_INT32(9));
	bson_t *page = BCON_NEW("skip", BCON_INT64(3), "limit", BCON_INT64(4));
	bson_t *pipe, *doc, *cmd, reply;
	bson_error_t err;

	assert_int_equal(mongoc_collection_count_documents(coll, q, NULL, NULL, NULL, &err), 10);
	assert_int_equal(mongoc_collection_count_documents(coll, &(bson_t)BSON_INITIALIZER, page,
	                                                   NULL, NULL, &err),
	                 4);
	assert_int_equal(mongoc_collection_count_documents(coll, none, NULL, NULL, NULL, &err), 0);
	assert_int_equal(mongoc_collection_estimated_document_count(coll, NULL, NULL, NULL, &err),
	                 30);

	pipe = BCON_NEW("pipeline", "[", "{", "$match", "{", "g", BCON_INT32(1), "}", "}", "{",
	                "$count", BCON_UTF8("n"), "}", "]");
	doc = only_doc(mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipe, NULL, NULL));
	assert_non_null(doc);
	assert_int_equal(int_field(doc, "n"), 10);
	bson_destroy(doc);
	bson_destroy(pipe);

	pipe = BCON_NEW("pipeline", "[", "{", "$group", "{", "_id", BCON_NULL, "n", "{", "$sum",
	                BCON_INT32(1), "}", "}", "}", "]");
	doc = only_doc(mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipe, NULL, NULL));
	assert_non_null(doc);
	assert_int_equal(int_field(doc, "n"), 30);
	assert_true(bson_has_field(doc, "_id"));
	bson_destroy(doc);
	bson_destroy(pipe);

	cmd = BCON_NEW("count", BCON_UTF8("items"), "query", "{", "g", BCON_INT32(0), "}");
	assert_true(mongoc_collection_command_simple(coll, cmd, NULL, &reply, &err));
	assert_int_equal(int_field(&reply, "n"), 10);
	bson_destroy(&reply);
	bson_destroy(cmd);
	bson_destroy(q);
	bson_destroy(none);
	bson_destroy(page);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_create_indexes_then_list_them(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = fresh(c, "combat");
	bson_t *cmd =
	    BCON_NEW("createIndexes", BCON_UTF8("combat"), "indexes", "[", "{", "key", "{",
	             "region_id", BCON_INT32(1), "}", "name", BCON_UTF8("region_id_1"), "}", "{",
	             "key", "{", "attacker", BCON_INT32(1), "t", BCON_INT32(-1), "}", "name",
	             BCON_UTF8("attacker_1_t_-1"), "}", "]");
	bson_t *uniq = BCON_NEW("createIndexes", BCON_UTF8("combat"), "indexes", "[", "{", "key",
	                        "{", "email", BCON_INT32(1), "}", "name", BCON_UTF8("email_1"),
	                        "unique", BCON_BOOL(true), "}", "]");
	bson_t *a = BCON_NEW("_id", BCON_INT32(1), "email", BCON_UTF8("x@y"));
	bson_t *b = BCON_NEW("_id", BCON_INT32(2), "email", BCON_UTF8("x@y"));
	bson_t reply;
	mongoc_cursor_t *cur;
	const bson_t *doc;
	bool seen_id = false, seen_region = false, seen_attacker = false;
	int n = 0;
	bson_error_t err;

	assert_true(mongoc_collection_write_command_with_opts(coll, cmd, NULL, &reply, &err));
	assert_int_equal(int_field(&reply, "numIndexesAfter"), 3);
	bson_destroy(&reply);
	/* creating the same indexes again is a no-op */
	assert_true(mongoc_collection_write_command_with_opts(coll, cmd, NULL, &reply, &err));
	assert_int_equal(int_field(&reply, "numIndexesBefore"), 3);
	assert_int_equal(int_field(&reply, "numIndexesAfter"), 3);
	bson_destroy(&reply);

	cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		const char *name = str_field(doc, "name");

		assert_non_null(name);
		seen_id |= !strcmp(name, "_id_") && int_field(doc, "key._id") == 1;
		seen_region |= !strcmp(name, "region_id_1") && int_field(doc, "key.region_id") == 1;
		seen_attacker |= !strcmp(name, "attacker_1_t_-1") && int_field(doc, "key.t") == -1;
		n++;
	}
	assert_false(mongoc_cursor_error(cur, &err));
	mongoc_cursor_destroy(cur);
	assert_int_equal(n, 3);
	assert_true(seen_id && seen_region && seen_attacker);

	/* a unique index refuses a second document with the same key */
	assert_true(mongoc_collection_write_command_with_opts(coll, uniq, NULL, NULL, &err));
	assert_true(mongoc_collection_insert_one(coll, a, NULL, NULL, &err));
	assert_false(mongoc_collection_insert_one(coll, b, NULL, NULL, &err));
	assert_int_equal(err.code, 11000);
	bson_destroy(a);
	bson_destroy(b);
	bson_destroy(uniq);
	bson_destroy(cmd);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_drop_collection_and_database(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = fresh(c, "gone");
	char scratch_name[80], **names;
	mongoc_database_t *db, *scratch;
	mongoc_collection_t *sc;
	bson_t *doc = BCON_NEW("x", BCON_INT32(1));
	bson_error_t err;
	bool ok;

	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err));
	assert_true(mongoc_collection_drop(coll, &err));
	db = mongoc_client_get_database(c, T.db);
	names = mongoc_database_get_collection_names_with_opts(db, NULL, &err);
	assert_non_null(names);
	for (char **p = names; *p; p++)
		assert_string_not_equal(*p, "gone");
	bson_strfreev(names);
	assert_int_equal(mongoc_collection_count_documents(coll, &(bson_t)BSON_INITIALIZER, NULL,
	                                                   NULL, NULL, &err),
	                 0);
	/* dropping what is not there: "ns not found" (MongoDB 7 says ok) */
	ok = mongoc_collection_drop(coll, &err);
	if (!T.external) {
		assert_false(ok);
		assert_int_equal(err.code, 26);
	} else if (!ok) {
		assert_int_equal(err.code, 26);
	}

	snprintf(scratch_name, sizeof(scratch_name), "%s_scratch", T.db);
	scratch = mongoc_client_get_database(c, scratch_name);
	sc = mongoc_database_get_collection(scratch, "a");
	assert_true(mongoc_collection_insert_one(sc, doc, NULL, NULL, &err));
	assert_true(mongoc_database_drop(scratch, &err));
	names = mongoc_database_get_collection_names_with_opts(scratch, NULL, &err);
	assert_non_null(names);
	assert_null(names[0]);
	bson_strfreev(names);
	mongoc_collection_destroy(sc);
	mongoc_database_destroy(scratch);
	mongoc_database_destroy(db);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_unacknowledged_writes_are_seen_by_the_next_read(void **state)
{
	mongoc_client_t *c = client();
	mongoc_collection_t *coll = fresh(c, "unack");
	mongoc_write_concern_t *wc = mongoc_write_concern_new();
	bson_t *opts = bson_new(), *doc, *q, *u;
	bson_error_t err;

	mongoc_write_concern_set_w(wc, MONGOC_WRITE_CONCERN_W_UNACKNOWLEDGED);
	assert_true(mongoc_write_concern_append(wc, opts));
	for (int i = 0; i < 50; i++) {
		doc = BCON_NEW("_id", BCON_INT32(i));
		assert_true(mongoc_collection_insert_one(coll, doc, opts, NULL, &err));
		bson_destroy(doc);
	}
	q = BCON_NEW("_id", BCON_INT32(7));
	u = BCON_NEW("$set", "{", "x", BCON_INT32(1), "}");
	assert_true(mongoc_collection_update_one(coll, q, u, opts, NULL, &err));
	/* a duplicate sent unacknowledged fails silently and must not answer */
	doc = BCON_NEW("_id", BCON_INT32(3));
	assert_true(mongoc_collection_insert_one(coll, doc, opts, NULL, &err));
	bson_destroy(doc);
	assert_int_equal(mongoc_collection_count_documents(coll, &(bson_t)BSON_INITIALIZER, NULL,
	                                                   NULL, NULL, &err),
	                 50);
	doc = only_doc(mongoc_collection_find_with_opts(coll, q, NULL, NULL));
	assert_non_null(doc);
	assert_int_equal(int_field(doc, "x"), 1);
	bson_destroy(doc);
	bson_destroy(q);
	bson_destroy(u);
	bson_destroy(opts);
	mongoc_write_concern_destroy(wc);
	mongoc_collection_destroy(coll);
	release(c);
}

static void test_injected_failures_and_reject_rules(void **state)
{
	mongoc_client_t *c;
	mongoc_collection_t *coll;
	mongoc_bulk_operation_t *b;
	bson_t *doc, *poison, *ordered, reply;
	bson_error_t err;

	if (T.external)
		skip();
	c = client();
	coll = fresh(c, "faults");
	doc = BCON_NEW("x", BCON_INT32(1));
	/* transient: two command errors, then writes go through */
	assert_true(admin_command(c, BCON_NEW("mmoFailNext", BCON_INT32(2), "code", BCON_INT32(91)),
	                          NULL, &err));
	assert_false(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err));
	assert_int_equal(err.code, 91);
	assert_false(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err));
	assert_int_equal(err.code, 91);
	assert_true(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err));
	/* permanent: a write error */
	assert_true(admin_command(c,
	                          BCON_NEW("mmoFailNext", BCON_INT32(1), "code", BCON_INT32(121),
	                                   "writeError", BCON_BOOL(true)),
	                          NULL, &err));
	assert_false(mongoc_collection_insert_one(coll, doc, NULL, NULL, &err));
	assert_int_equal(err.code, 121);
	/* a reject rule refuses the matching document only */
	assert_true(admin_command(
	    c, BCON_NEW("mmoReject", "{", "poison", BCON_BOOL(true), "}", "code", BCON_INT32(121)),
	    NULL, &err));
	ordered = BCON_NEW("ordered", BCON_BOOL(false));
	poison = BCON_NEW("poison", BCON_BOOL(true));
	b = mongoc_collection_create_bulk_operation_with_opts(coll, ordered);
	assert_true(mongoc_bulk_operation_insert_with_opts(b, doc, NULL, &err));
	assert_true(mongoc_bulk_operation_insert_with_opts(b, poison, NULL, &err));
	assert_true(mongoc_bulk_operation_insert_with_opts(b, doc, NULL, &err));
	assert_int_equal(mongoc_bulk_operation_execute(b, &reply, &err), 0);
	assert_int_equal(err.code, 121);
	assert_int_equal(int_field(&reply, "nInserted"), 2);
	assert_int_equal(int_field(&reply, "writeErrors.0.index"), 1);
	bson_destroy(&reply);
	mongoc_bulk_operation_destroy(b);
	assert_true(admin_command(c, BCON_NEW("mmoReject", BCON_NULL), NULL, &err));
	assert_true(mongoc_collection_insert_one(coll, poison, NULL, NULL, &err));
	assert_int_equal(mongoc_collection_count_documents(coll, &(bson_t)BSON_INITIALIZER, NULL,
	                                                   NULL, NULL, &err),
	                 4);
	bson_destroy(ordered);
	bson_destroy(poison);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	release(c);
}

/* Sends raw bytes on a fresh connection: the reply's length, 0 when the
 * stand-in closed the connection, -1 on a timeout. */
static ssize_t raw_exchange(const void *msg, size_t len, uint8_t *reply, size_t cap)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)T.port)};
	struct timeval tv = {.tv_sec = 3};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n, got = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(send(fd, msg, len, MSG_NOSIGNAL), (ssize_t)len);
	while ((size_t)got < cap) {
		n = recv(fd, reply + got, cap - (size_t)got, 0);
		if (n <= 0) {
			if (n < 0 && got == 0)
				got = -1;
			break;
		}
		got += n;
		if (got >= 4 && (size_t)got >= (size_t)(reply[0] | reply[1] << 8 | reply[2] << 16))
			break;
	}
	close(fd);
	return got;
}

/* An OP_MSG around body, with flags. */
static size_t op_msg(uint8_t *out, uint32_t flags, const bson_t *body)
{
	uint32_t len = 16 + 4 + 1 + body->len, req = 7, zero = 0, op = 2013;

	memcpy(out, &len, 4);
	memcpy(out + 4, &req, 4);
	memcpy(out + 8, &zero, 4);
	memcpy(out + 12, &op, 4);
	memcpy(out + 16, &flags, 4);
	out[20] = 0;
	memcpy(out + 21, bson_get_data(body), body->len);
	return len;
}

static void test_malformed_input_closes_only_that_connection(void **state)
{
	static uint8_t msg[4096], reply[4096];
	bson_t *ping_cmd = BCON_NEW("ping", BCON_INT32(1), "$db", BCON_UTF8("admin"));
	bson_t deep = BSON_INITIALIZER, *levels[150];
	uint32_t v;
	size_t len;
	mongoc_client_t *c;
	bson_error_t err;

	if (T.external)
		skip();
	/* well-formed first: proves the raw framing below is right */
	len = op_msg(msg, 0, ping_cmd);
	assert_true(raw_exchange(msg, len, reply, sizeof(reply)) > 21);
	memcpy(&v, reply + 12, 4);
	assert_int_equal(v, 2013);
	memcpy(&v, reply + 8, 4);
	assert_int_equal(v, 7);

	/* a length below the header */
	v = 5;
	memcpy(msg, &v, 4);
	assert_int_equal(raw_exchange(msg, 16, reply, sizeof(reply)), 0);
	/* a length over 48 MB */
	len = op_msg(msg, 0, ping_cmd);
	v = 100 * 1000 * 1000;
	memcpy(msg, &v, 4);
	assert_int_equal(raw_exchange(msg, len, reply, sizeof(reply)), 0);
	/* an unknown opcode */
	len = op_msg(msg, 0, ping_cmd);
	v = 9999;
	memcpy(msg + 12, &v, 4);
	assert_int_equal(raw_exchange(msg, len, reply, sizeof(reply)), 0);
	/* an unknown required flag bit */
	len = op_msg(msg, 1u << 5, ping_cmd);
	assert_int_equal(raw_exchange(msg, len, reply, sizeof(reply)), 0);
	/* a body whose BSON length overruns the message */
	len = op_msg(msg, 0, ping_cmd);
	v = 4000;
	memcpy(msg + 21, &v, 4);
	assert_int_equal(raw_exchange(msg, len, reply, sizeof(reply)), 0);
	/* a corrupt element inside the body */
	len = op_msg(msg, 0, ping_cmd);
	msg[21 + 4] = 0x42; /* no such BSON type */
	assert_int_equal(raw_exchange(msg, len, reply, sizeof(reply)), 0);
	/* nesting deeper than 100 */
	levels[0] = bson_new();
	for (int i = 1; i < 150; i++) {
		levels[i] = bson_new();
		bson_append_document(levels[i], "a", 1, levels[i - 1]);
	}
	BSON_APPEND_INT32(&deep, "ping", 1);
	BSON_APPEND_DOCUMENT(&deep, "x", levels[149]);
	BSON_APPEND_UTF8(&deep, "$db", "admin");
	len = op_msg(msg, 0, &deep);
	assert_int_equal(raw_exchange(msg, len, reply, sizeof(reply)), 0);
	for (int i = 0; i < 150; i++)
		bson_destroy(levels[i]);
	bson_destroy(&deep);
	bson_destroy(ping_cmd);

	/* everyone else is still served */
	c = client();
	assert_true(ping(c, &err));
	release(c);
}

static void test_outage_fails_fast_then_restart_recovers(void **state)
{
	mongoc_client_t *c;
	mongoc_collection_t *coll;
	bson_t *opts = BCON_NEW("batchSize", BCON_INT32(2));
	mongoc_cursor_t *cur;
	const bson_t *doc;
	bson_error_t err;
	int64_t t0;
	bool ok = false;

	if (T.external) {
		bson_destroy(opts);
		skip();
	}
	c = client();
	coll = mongoc_client_get_collection(c, T.db, "items");
	cur = mongoc_collection_find_with_opts(coll, &(bson_t)BSON_INITIALIZER, opts, NULL);
	assert_true(mongoc_cursor_next(cur, &doc));
	assert_true(mongoc_cursor_next(cur, &doc));

	/* mid-stream: the next getMore finds nobody */
	ts_stop(T.pid, SIGKILL, 2000);
	T.pid = 0;
	t0 = now_ms();
	while (mongoc_cursor_next(cur, &doc))
		;
	assert_true(mongoc_cursor_error(cur, &err));
	assert_true(now_ms() - t0 < 2500);
	mongoc_cursor_destroy(cur);
	t0 = now_ms();
	assert_false(ping(c, &err));
	assert_true(now_ms() - t0 < 3500);

	/* back on the same port with the same journal */
	assert_int_equal(standin_start(T.port), 0);
	for (t0 = now_ms(); !ok && now_ms() - t0 < 10000;)
		ok = ping(c, &err);
	assert_true(ok);
	assert_int_equal(mongoc_collection_count_documents(coll, &(bson_t)BSON_INITIALIZER, NULL,
	                                                   NULL, NULL, &err),
	                 30);
	bson_destroy(opts);
	mongoc_collection_destroy(coll);
	release(c);
}

/* Last: the pool says goodbye (endSessions), then SIGTERM exits 0, which
 * under the sanitizers also means the stand-in leaked nothing. */
static void test_sigterm_exits_cleanly(void **state)
{
	mongoc_client_t *c = client();
	mongoc_database_t *db = mongoc_client_get_database(c, T.db);
	bson_error_t err;
	int status;

	assert_true(mongoc_database_drop(db, &err));
	mongoc_database_destroy(db);
	release(c);
	mongoc_client_pool_destroy(T.pool);
	T.pool = NULL;
	if (T.external)
		return;
	status = ts_stop(T.pid, SIGTERM, 10000);
	T.pid = 0;
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_then_ping_and_hello_over_op_msg),
	    cmocka_unit_test(test_unknown_command_is_command_not_found_59),
	    cmocka_unit_test(test_duplicate_id_is_write_error_11000),
	    cmocka_unit_test(test_bulk_upserts_never_replace_a_newer_seq),
	    cmocka_unit_test(test_comparison_filters_drive_update_many_and_delete),
	    cmocka_unit_test(test_find_sorts_skips_limits_and_pages_with_getmore),
	    cmocka_unit_test(test_killed_cursor_is_gone),
	    cmocka_unit_test(test_counts_through_aggregate_and_count),
	    cmocka_unit_test(test_create_indexes_then_list_them),
	    cmocka_unit_test(test_drop_collection_and_database),
	    cmocka_unit_test(test_unacknowledged_writes_are_seen_by_the_next_read),
	    cmocka_unit_test(test_injected_failures_and_reject_rules),
	    cmocka_unit_test(test_malformed_input_closes_only_that_connection),
	    cmocka_unit_test(test_outage_fails_fast_then_restart_recovers),
	    cmocka_unit_test(test_sigterm_exits_cleanly),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
