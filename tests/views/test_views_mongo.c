/* test_views_mongo.c - the Mongo view against mongo-standin (the test double
 * of tests/support), or against the server MONGO_URI names (each test then
 * uses a database of its own). After a generated game every player document
 * equals the state computed here, there is one combat document per
 * combat.result, the checkpoint is the head and the indexes exist; the store
 * killed with SIGKILL mid-stream and started again (journal) ends exact,
 * with the breaker opened and closed; a document the store refuses goes to
 * the DLQ with its reason and `mmo dlq retry` applies it once fixed; `mmo
 * views rebuild mongo` refolds from seq 1.
 */
#include <mongoc/mongoc.h>

#include "views_fx.h"

struct mfx {
	struct fx f;
	char uri[256], db[64], journal[700], logf[700];
	int port;
	pid_t pid;
	bool real;
	mongoc_client_t *c;
};

static pid_t standin_start(struct mfx *m)
{
	char port[16];
	pid_t pid;

	snprintf(port, sizeof(port), "%d", m->port);
	char *argv[] = {MONGO_STANDIN_BIN, "--port", port, "--journal", m->journal, NULL};
	truncate(m->logf, 0);
	pid = ts_spawn(argv, m->logf);
	assert_true(pid > 0);
	if (!ts_wait_log(m->logf, "mongo-standin ready", 10000))
		fail_msg("mongo-standin did not start");
	return pid;
}

static void mfx_start(struct mfx *m, int n)
{
	const char *env = getenv("MONGO_URI");

	memset(m, 0, sizeof(*m));
	fx_start(&m->f, NULL);
	snprintf(m->journal, sizeof(m->journal), "%s/mongo.journal", m->f.dir);
	snprintf(m->logf, sizeof(m->logf), "%s/mongo.log", m->f.dir);
	if (env && *env) {
		m->real = true;
		snprintf(m->uri, sizeof(m->uri), "%s", env);
		snprintf(m->db, sizeof(m->db), "mmo_test_%d_%d", (int)getpid(), n);
	} else {
		m->port = ts_free_port();
		m->pid = standin_start(m);
		snprintf(m->uri, sizeof(m->uri), "mongodb://127.0.0.1:%d/", m->port);
		snprintf(m->db, sizeof(m->db), "mmo");
	}
	m->c = mongoc_client_new(m->uri);
	assert_non_null(m->c);
}

static void mfx_stop(struct mfx *m)
{
	if (m->real) {
		mongoc_database_t *d = mongoc_client_get_database(m->c, m->db);

		mongoc_database_drop(d, NULL);
		mongoc_database_destroy(d);
	}
	mongoc_client_destroy(m->c);
	fx_stop(&m->f);
	if (m->pid > 0)
		ts_stop(m->pid, SIGKILL, 2000);
}

static void views_start(struct mfx *m, unsigned threshold)
{
	struct views_opts o = {0};
	char msg[256] = "";

	o.log = m->f.log;
	o.zctx = m->f.ctx;
	o.bus = m->f.bus;
	o.data_dir = m->f.dir;
	o.mongo_uri = m->uri;
	o.mongo_db = m->db;
	o.batch_max = 100;
	o.backoff_base_ms = 20;
	o.backoff_cap_ms = 300;
	o.breaker_threshold = threshold;
	if (views_runner_start(&o, &m->f.vr, msg, sizeof(msg)) != MMO_OK)
		fail_msg("views_runner_start: %s", msg);
}

static bool cmd(struct mfx *m, const char *db, bson_t *c, bson_t *reply)
{
	bson_error_t error;
	bson_t r;
	bool ok = mongoc_client_command_simple(m->c, db, c, NULL, reply ? reply : &r, &error);

	if (!reply)
		bson_destroy(&r);
	bson_destroy(c);
	return ok;
}

static uint64_t checkpoint(struct mfx *m)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(m->c, m->db, "checkpoints");
	bson_t *filter = BCON_NEW("_id", BCON_UTF8("mongo"));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *doc;
	bson_iter_t it;
	uint64_t seq = 0;

	if (mongoc_cursor_next(cur, &doc) && bson_iter_init_find(&it, doc, "seq"))
		seq = (uint64_t)bson_iter_as_int64(&it);
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
	return seq;
}

static bool wait_caught_up(struct mfx *m, int timeout_ms)
{
	uint64_t head = fx_head(&m->f);

	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		if (checkpoint(m) == head)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static int64_t count(struct mfx *m, const char *coll_name)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(m->c, m->db, coll_name);
	bson_t filter = BSON_INITIALIZER;
	bson_error_t error;
	int64_t n = mongoc_collection_count_documents(coll, &filter, NULL, NULL, NULL, &error);

	bson_destroy(&filter);
	mongoc_collection_destroy(coll);
	return n;
}

static bson_iter_t *field(const bson_t *doc, bson_iter_t *it, const char *id, const char *name)
{
	if (!bson_iter_init_find(it, doc, name))
		fail_msg("players %s: no %s", id, name);
	return it;
}

static void check_player(struct mfx *m, const struct mplayer *p)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(m->c, m->db, "players");
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(p->id));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *doc;
	bson_iter_t it;

	if (!mongoc_cursor_next(cur, &doc)) {
		if (p->exists)
			fail_msg("players %s is missing", p->id);
		goto out;
	}
	if (!p->exists)
		fail_msg("players %s exists", p->id);
#define FIELD(name) field(doc, &it, p->id, name)
	if (strcmp(bson_iter_utf8(FIELD("username"), NULL), p->username))
		fail_msg("players %s username %s", p->id, bson_iter_utf8(&it, NULL));
	if (strcmp(bson_iter_utf8(FIELD("region_id"), NULL), p->region))
		fail_msg("players %s region_id %s, expected %s", p->id, bson_iter_utf8(&it, NULL),
		         p->region);
	if ((uint64_t)bson_iter_as_int64(FIELD("hp")) != p->hp)
		fail_msg("players %s hp %lld, expected %u", p->id, (long long)bson_iter_as_int64(&it),
		         p->hp);
	if (bson_iter_as_bool(FIELD("online")) != p->online)
		fail_msg("players %s online", p->id);
	if ((uint64_t)bson_iter_as_int64(FIELD("seq")) != p->seq)
		fail_msg("players %s seq %lld, expected %llu", p->id, (long long)bson_iter_as_int64(&it),
		         (unsigned long long)p->seq);
	FIELD("updated_at");
	bson_iter_t pos;
	assert_true(bson_iter_init_find(&it, doc, "position") && bson_iter_recurse(&it, &pos));
	const double want[3] = {p->x, p->y, p->z};
	for (int i = 0; i < 3; i++) {
		assert_true(bson_iter_next(&pos));
		if (bson_iter_as_double(&pos) != want[i])
			fail_msg("players %s position.%s %.17g, expected %.17g", p->id, bson_iter_key(&pos),
			         bson_iter_as_double(&pos), want[i]);
	}
#undef FIELD
out:
	mongoc_cursor_destroy(cur);
	bson_destroy(filter);
	mongoc_collection_destroy(coll);
}

static void check_all(struct mfx *m, int skip)
{
	assert_int_equal(checkpoint(m), fx_head(&m->f));
	for (size_t i = 0; i < m->f.m.n; i++) {
		if ((int)i != skip)
			check_player(m, &m->f.m.p[i]);
	}
	if (skip < 0)
		assert_int_equal(count(m, "combat"), (int64_t)m->f.m.combats);
}

static bool has_index(struct mfx *m, const char *coll_name, const char *name)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(m->c, m->db, coll_name);
	mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(coll, NULL);
	const bson_t *doc;
	bson_iter_t it;
	bool found = false;

	while (mongoc_cursor_next(cur, &doc)) {
		if (bson_iter_init_find(&it, doc, "name") && !strcmp(bson_iter_utf8(&it, NULL), name))
			found = true;
	}
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(coll);
	return found;
}

static void mongo_view_equals_generated_game(void **state)
{
	struct mfx m;

	(void)state;
	mfx_start(&m, 1);
	fx_model_init(&m.f.m, 30, 61);
	views_start(&m, 5);
	fx_append(&m.f, 2000, -1);
	assert_true(wait_caught_up(&m, 30000));
	check_all(&m, -1);
	assert_true(m.f.m.combats > 0);
	assert_true(has_index(&m, "players", "region_id_1"));
	assert_true(has_index(&m, "combat", "attacker_id_1"));
	assert_true(has_index(&m, "combat", "defender_id_1"));
	assert_true(has_index(&m, "combat", "ts_1"));
	assert_int_equal((uint64_t)fx_metric_v(&m.f, "mongo", "mmo_views_checkpoint_seq"),
	                 fx_head(&m.f));
	assert_int_equal((int)fx_metric_v(&m.f, "mongo", "mmo_views_breaker_state"), 0);

	/* Restarted: it goes on from its checkpoint document. */
	fx_views_stop(&m.f);
	fx_append(&m.f, 300, -1);
	views_start(&m, 5);
	assert_true(wait_caught_up(&m, 30000));
	check_all(&m, -1);
	assert_true(fx_metric_v(&m.f, "mongo", "mmo_views_events_applied_total") <= 300);
	mfx_stop(&m);
}

static void mongo_store_killed_and_restarted(void **state)
{
	struct mfx m;

	(void)state;
	mfx_start(&m, 2);
	if (m.real) {
		mfx_stop(&m);
		skip(); /* a real server is not ours to kill */
	}
	fx_model_init(&m.f.m, 25, 62);
	views_start(&m, 2);
	fx_append(&m.f, 1000, -1);
	usleep(30 * 1000);
	ts_stop(m.pid, SIGKILL, 2000);
	fx_append(&m.f, 500, -1);
	for (int waited = 0; waited < 20000; waited += 50) {
		if (fx_metric_v(&m.f, "mongo", "mmo_views_breaker_opened_total") >= 1)
			break;
		usleep(50 * 1000);
	}
	assert_true(fx_metric_v(&m.f, "mongo", "mmo_views_breaker_opened_total") >= 1);
	assert_false(views_runner_healthy(m.f.vr, NULL, 0));
	m.pid = standin_start(&m);
	fx_append(&m.f, 300, -1);
	assert_true(wait_caught_up(&m, 40000));
	check_all(&m, -1);
	assert_true(fx_metric_v(&m.f, "mongo", "mmo_views_breaker_closed_total") >= 1);
	assert_int_equal((int)fx_metric_v(&m.f, "mongo", "mmo_views_breaker_state"), 0);
	mfx_stop(&m);
}

static int mmo_retry(struct mfx *m, char **text)
{
	char out[700];
	int rc;

	snprintf(out, sizeof(out), "%s/retry.out", m->f.dir);
	char *args[] = {"dlq", "retry", "--data", m->f.dir, "--view", "mongo", "--mongo-uri", m->uri,
	                "--mongo-db", m->db, NULL};
	rc = fx_mmo(out, args);
	*text = fx_slurp(out);
	return rc;
}

static void mongo_refused_document_goes_to_dlq(void **state)
{
	struct mfx m;
	char ns[128], *txt;

	(void)state;
	mfx_start(&m, 3);
	if (m.real) {
		mfx_stop(&m);
		skip(); /* the refusal is injected through the stand-in */
	}
	fx_model_init(&m.f.m, 15, 63);
	m.f.m.avoid = 4;
	snprintf(ns, sizeof(ns), "%s.players", m.db);
	assert_true(cmd(&m, "admin",
	                BCON_NEW("mmoReject", "{", "_id", BCON_UTF8("p4"), "}", "code", BCON_INT32(121),
	                         "ns", BCON_UTF8(ns)),
	                NULL));
	views_start(&m, 5);
	fx_append(&m.f, 1000, -1);
	assert_true(wait_caught_up(&m, 30000));
	check_all(&m, 4);
	assert_int_equal((uint64_t)fx_metric_v(&m.f, "mongo", "mmo_views_dead_lettered_total"), 1);
	assert_int_equal((uint64_t)fx_metric_v(&m.f, "mongo", "mmo_views_dlq_depth"),
	                 m.f.m.p[4].events);

	assert_true(cmd(&m, "admin", BCON_NEW("mmoReject", BCON_NULL, "code", BCON_INT32(121)), NULL));
	assert_int_equal(mmo_retry(&m, &txt), 0);
	assert_non_null(strstr(txt, "0 refused again"));
	free(txt);
	/* The retry appended its admin.action event: the projector folds it. */
	assert_true(wait_caught_up(&m, 30000));
	check_all(&m, -1);
	assert_int_equal((uint64_t)fx_metric_v(&m.f, "mongo", "mmo_views_dlq_depth"), 0);
	assert_int_equal(mmo_retry(&m, &txt), 0);
	free(txt);
	fx_append(&m.f, 100, 4);
	assert_true(wait_caught_up(&m, 30000));
	check_all(&m, -1);
	mfx_stop(&m);
}

static void mongo_rebuild(void **state)
{
	struct mfx m;
	char out[700], *txt;

	(void)state;
	mfx_start(&m, 4);
	fx_model_init(&m.f.m, 15, 64);
	views_start(&m, 5);
	fx_append(&m.f, 800, -1);
	assert_true(wait_caught_up(&m, 30000));
	fx_views_stop(&m.f);
	/* damage a document */
	assert_true(cmd(&m, m.db,
	                BCON_NEW("update", BCON_UTF8("players"), "updates", "[", "{", "q", "{", "_id",
	                         BCON_UTF8("p1"), "}", "u", "{", "$set", "{", "hp", BCON_INT32(4242),
	                         "}", "}", "}", "]"),
	                NULL));
	snprintf(out, sizeof(out), "%s/rebuild.out", m.f.dir);
	char *args[] = {"views", "rebuild", "mongo", "--data", m.f.dir, "--mongo-uri", m.uri,
	                "--mongo-db", m.db, NULL};
	assert_int_equal(fx_mmo(out, args), 0);
	txt = fx_slurp(out);
	assert_non_null(strstr(txt, "(100%)"));
	free(txt);
	check_all(&m, -1);
	assert_true(has_index(&m, "players", "region_id_1"));
	mfx_stop(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(mongo_view_equals_generated_game),
	    cmocka_unit_test(mongo_store_killed_and_restarted),
	    cmocka_unit_test(mongo_refused_document_goes_to_dlq),
	    cmocka_unit_test(mongo_rebuild),
	};
	int rc;

	mongoc_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return rc;
}
