/* test_views_world.c - views equal the world. A real log, the live world
 * runner deciding the outcomes of generated intents (registrations, logins,
 * logouts, moves, attacks), and both views (Redis, and Mongo on the
 * stand-in or MONGO_URI) following the log. When everything has caught up,
 * every player's Redis hash and Mongo document match the world state
 * rebuilt from the log by replay (region, position, hp, online, username),
 * every online player is in its region set, and both checkpoints are the
 * head.
 */
#include <mongoc/mongoc.h>

#include "replay/replay.h"
#include "views_fx.h"
#include "projector/world/world.h"

#define NPL 60

struct wfx {
	struct fx f;
	world_runner *world;
	char uri[256], db[64], logf[700];
	pid_t mongo_pid;
	mongoc_client_t *mc;
	uint64_t eid, rng;
};

static unsigned rnd(struct wfx *w)
{
	w->rng = w->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(w->rng >> 33);
}

static void send_batch(struct wfx *w, struct mmo_ev *b, size_t n)
{
	static uint8_t bufs[64][1024];
	struct evlog_in in[64];
	uint64_t seqs[64];
	int errs[64], rc = MMO_ETIMEOUT;

	for (size_t i = 0; i < n; i++) {
		size_t len = 0;

		assert_int_equal(mmo_event_encode(&b[i].ev, bufs[i], sizeof(bufs[i]), &len), MMO_OK);
		in[i].buf = bufs[i];
		in[i].len = len;
		in[i].priority = 0;
	}
	for (int t = 0; t < 20 && rc != MMO_OK; t++)
		rc = evlog_client_append(w->f.c, in, n, seqs, errs);
	assert_int_equal(rc, MMO_OK);
}

static char ids[64][2][24];

static void intent(struct wfx *w, struct mmo_ev *b, size_t k, const char *type, unsigned p)
{
	snprintf(ids[k][0], sizeof(ids[k][0]), "p%u", p);
	snprintf(ids[k][1], sizeof(ids[k][1]), "vw:%llu", (unsigned long long)++w->eid);
	mmo_ev_init(b, type, ids[k][1], ids[k][0], NULL);
}

static void play(struct wfx *w, unsigned actions)
{
	static char names[64][24], defs[64][24];
	const struct world_rules *r = world_rules();
	struct mmo_ev b[50];

	for (unsigned p = 0; p < NPL; p += 50) {
		size_t n = 0;

		for (unsigned q = p; q < p + 50 && q < NPL; q++, n++) {
			intent(w, &b[n], n, "player.register", q);
			snprintf(names[n], sizeof(names[n]), "user%u", q);
			b[n].body.player_register.username = names[n];
		}
		send_batch(w, b, n);
	}
	for (unsigned i = 0; i < actions; i += 50) {
		for (size_t k = 0; k < 50; k++) {
			unsigned x = rnd(w), p = (x >> 4) % NPL;

			switch (x % 12) {
			case 0:
			case 1:
				intent(w, &b[k], k, "player.login", p);
				break;
			case 2:
				intent(w, &b[k], k, "player.logout", p);
				break;
			case 3:
			case 4:
			case 5:
			case 6:
				intent(w, &b[k], k, "player.move", p);
				mmo_ev_set_pos(&b[k], r->spawn.x + (double)(rnd(w) % 400) / 100.0 - 2,
				               r->spawn.y + (double)(rnd(w) % 400) / 100.0 - 2, r->spawn.z);
				break;
			default: {
				const struct world_skill *sk = world_skill_at(rnd(w) % 2);

				intent(w, &b[k], k, "combat.attack", p);
				snprintf(defs[k], sizeof(defs[k]), "p%u", (p + 1 + rnd(w) % 3) % NPL);
				b[k].body.combat_attack.defender_id = defs[k];
				b[k].body.combat_attack.skill_id = (char *)sk->name;
				break;
			}
			}
		}
		send_batch(w, b, 50);
		usleep(2000); /* some time passes: moves and cooldowns */
	}
}

static uint64_t mongo_checkpoint(struct wfx *w)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(w->mc, w->db, "checkpoints");
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

/* Wait until the world has answered everything and both views hold it. */
static void settle(struct wfx *w)
{
	uint64_t last = 0;
	int stable = 0;

	for (int waited = 0; waited < 60000; waited += 100) {
		struct world_runner_status st;
		uint64_t head = fx_head(&w->f);
		redisContext *c = fx_redis(&w->f);
		uint64_t rck = fx_checkpoint(c);

		redisFree(c);
		world_runner_status(w->world, false, &st);
		if (st.seq == head && rck == head && mongo_checkpoint(w) == head && head == last) {
			if (++stable >= 3)
				return;
		} else {
			stable = 0;
		}
		last = head;
		usleep(100 * 1000);
	}
	fail_msg("the world and the views did not settle");
}

static void check_redis(struct wfx *w, const world *wd)
{
	redisContext *c = fx_redis(&w->f);

	for (unsigned i = 0; i < NPL; i++) {
		struct world_player p;
		char id[16], num[64];
		redisReply *h, *s;
		const char *v;

		snprintf(id, sizeof(id), "p%u", i);
		assert_int_equal(world_player_get(wd, id, &p), MMO_OK);
		h = redisCommand(c, "HGETALL mmo:player:%s", id);
		assert_true(h && h->elements > 0);
#define EXPECT(field, want)                                                                      \
	do {                                                                                         \
		v = hget(h, field);                                                                      \
		if (!v || strcmp(v, want))                                                               \
			fail_msg("redis %s %s = %s, world says %s", id, field, v ? v : "(none)", want);     \
	} while (0)
		EXPECT("username", p.name);
		EXPECT("region_id", p.region_id);
		snprintf(num, sizeof(num), "%u", p.hp);
		EXPECT("hp", num);
		EXPECT("online", p.online ? "1" : "0");
#undef EXPECT
		if (strtod(hget(h, "x"), NULL) != p.pos.x || strtod(hget(h, "y"), NULL) != p.pos.y ||
		    strtod(hget(h, "z"), NULL) != p.pos.z)
			fail_msg("redis %s position differs from the world's", id);
		freeReplyObject(h);
		if (p.online && p.region_id[0]) {
			s = redisCommand(c, "SISMEMBER mmo:region:%s:players %s", p.region_id, id);
			if (s->integer != 1)
				fail_msg("%s is online in %s but not in its set", id, p.region_id);
			freeReplyObject(s);
		}
	}
	redisFree(c);
}

static void check_mongo(struct wfx *w, const world *wd)
{
	mongoc_collection_t *coll = mongoc_client_get_collection(w->mc, w->db, "players");

	for (unsigned i = 0; i < NPL; i++) {
		struct world_player p;
		char id[16];
		bson_t *filter;
		mongoc_cursor_t *cur;
		const bson_t *doc;
		bson_iter_t it, pos;

		snprintf(id, sizeof(id), "p%u", i);
		assert_int_equal(world_player_get(wd, id, &p), MMO_OK);
		filter = BCON_NEW("_id", BCON_UTF8(id));
		cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
		if (!mongoc_cursor_next(cur, &doc))
			fail_msg("mongo players %s missing", id);
		assert_true(bson_iter_init_find(&it, doc, "username"));
		assert_string_equal(bson_iter_utf8(&it, NULL), p.name);
		assert_true(bson_iter_init_find(&it, doc, "region_id"));
		if (strcmp(bson_iter_utf8(&it, NULL), p.region_id))
			fail_msg("mongo %s region_id %s, world says %s", id, bson_iter_utf8(&it, NULL),
			         p.region_id);
		assert_true(bson_iter_init_find(&it, doc, "hp"));
		if ((uint32_t)bson_iter_as_int64(&it) != p.hp)
			fail_msg("mongo %s hp %lld, world says %u", id, (long long)bson_iter_as_int64(&it),
			         p.hp);
		assert_true(bson_iter_init_find(&it, doc, "online"));
		assert_int_equal(bson_iter_as_bool(&it), p.online);
		assert_true(bson_iter_init_find(&it, doc, "position") && bson_iter_recurse(&it, &pos));
		const double want[3] = {p.pos.x, p.pos.y, p.pos.z};
		for (int k = 0; k < 3; k++) {
			assert_true(bson_iter_next(&pos));
			if (bson_iter_as_double(&pos) != want[k])
				fail_msg("mongo %s position differs from the world's", id);
		}
		mongoc_cursor_destroy(cur);
		bson_destroy(filter);
	}
	mongoc_collection_destroy(coll);
}

static void views_equal_the_world(void **state)
{
	struct wfx w = {0};
	struct world_runner_opts wo = {0};
	struct views_opts vo = {0};
	struct replay_opts ro = {0};
	struct replay_result rr;
	const char *env = getenv("MONGO_URI");
	char msg[256] = "";
	world *wd = NULL;

	(void)state;
	w.rng = 12345;
	fx_start(&w.f, NULL);
	snprintf(w.logf, sizeof(w.logf), "%s/mongo.log", w.f.dir);
	if (env && *env) {
		snprintf(w.uri, sizeof(w.uri), "%s", env);
		snprintf(w.db, sizeof(w.db), "mmo_world_%d", (int)getpid());
	} else {
		int port = ts_free_port();
		char ps[16];

		snprintf(ps, sizeof(ps), "%d", port);
		char *argv[] = {MONGO_STANDIN_BIN, "--port", ps, NULL};
		w.mongo_pid = ts_spawn(argv, w.logf);
		assert_true(ts_wait_log(w.logf, "mongo-standin ready", 10000));
		snprintf(w.uri, sizeof(w.uri), "mongodb://127.0.0.1:%d/", port);
		snprintf(w.db, sizeof(w.db), "mmo");
	}
	w.mc = mongoc_client_new(w.uri);

	wo.log = w.f.log;
	wo.zctx = w.f.ctx;
	wo.ingest = w.f.ingest;
	wo.bus = w.f.bus;
	wo.data_dir = w.f.dir;
	if (world_runner_start(&wo, &w.world, msg, sizeof(msg)))
		fail_msg("world_runner_start: %s", msg);
	vo.log = w.f.log;
	vo.zctx = w.f.ctx;
	vo.bus = w.f.bus;
	vo.data_dir = w.f.dir;
	vo.redis_url = w.f.redis_url;
	vo.mongo_uri = w.uri;
	vo.mongo_db = w.db;
	vo.batch_max = 200;
	if (views_runner_start(&vo, &w.f.vr, msg, sizeof(msg)))
		fail_msg("views_runner_start: %s", msg);

	play(&w, 3000);
	settle(&w);

	/* The game had every kind of outcome the views show. */
	{
		const char *kinds[] = {"world.spawn", "world.update", "world.despawn", "combat.result"};
		uint64_t seen[4] = {0};
		evlog_iter *it;
		struct evlog_rec rec;

		assert_int_equal(evlog_iter_open(w.f.log, EVLOG_ALL, NULL, 1, &it), MMO_OK);
		while (evlog_iter_next(it, &rec) == MMO_OK) {
			Mmo__Event *ev;

			assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
			for (int k = 0; k < 4; k++)
				seen[k] += !strcmp(ev->type, kinds[k]);
			mmo_event_free(ev);
		}
		evlog_iter_close(it);
		for (int k = 0; k < 4; k++) {
			if (!seen[k])
				fail_msg("no %s in the game", kinds[k]);
		}
		print_message("outcomes: %llu spawns, %llu updates, %llu despawns, %llu combat results\n",
		              (unsigned long long)seen[0], (unsigned long long)seen[1],
		              (unsigned long long)seen[2], (unsigned long long)seen[3]);
	}
	ro.log = w.f.log;
	ro.seed = WORLD_DEFAULT_SEED;
	assert_int_equal(replay_run(&ro, &wd, &rr), MMO_OK);
	assert_int_equal(rr.pending_seq, 0);
	check_redis(&w, wd);
	check_mongo(&w, wd);
	world_free(wd);

	world_runner_stop(w.world);
	if (env && *env) {
		mongoc_database_t *d = mongoc_client_get_database(w.mc, w.db);

		mongoc_database_drop(d, NULL);
		mongoc_database_destroy(d);
	}
	mongoc_client_destroy(w.mc);
	fx_stop(&w.f);
	if (w.mongo_pid > 0)
		ts_stop(w.mongo_pid, SIGKILL, 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(views_equal_the_world),
	};
	int rc;

	mongoc_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	mongoc_cleanup();
	return rc;
}
