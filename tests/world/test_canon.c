/* test_canon.c - the canonical state, its hash, and the snapshot store. */
#include <lmdb.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testsupport.h"
#include "world_test.h"

#define SEC 1000000LL

/* A small played world: players, moves, combat, a dead one, an NPC. */
static world *played(uint64_t seed, const char *odd_name)
{
	struct scen s = {.ts = 5000 * SEC};
	struct mmo_ev b;

	assert_int_equal(world_new(seed, &s.w), MMO_OK);
	scen_register(&s, "p1", "alice");
	scen_register(&s, "p2", odd_name ? odd_name : "bob");
	scen_register(&s, "p3", "carol");
	scen_login(&s, "p1");
	scen_login(&s, "p2");
	s.ts += SEC;
	scen_move(&s, "p1", 5000.1, 5000.25, 0.5);
	for (int i = 0; i < 30 && s.seq < 200; i++) {
		s.ts += 3 * SEC;
		scen_attack(&s, "p1", "p2", "fireball");
		scen_attack(&s, "p1", "p2", "slash");
	}
	/* An NPC from an operator: an outcome type with cause 0 is a fact. */
	mmo_ev_init(&b, "world.spawn", "npc-1", NULL, NULL);
	b.ev.seq = ++s.seq;
	b.ev.ts = s.ts;
	b.body.world_spawn.entity_id = "npc1";
	b.body.world_spawn.entity_type = "wolf";
	b.body.world_spawn.hp = 30;
	mmo_ev_set_pos(&b, 12.5, 7, 0);
	assert_int_equal(world_step(s.w, &b.ev, NULL), MMO_OK);
	return s.w;
}

static void encode_sorts_and_puts_one_player_per_line(void **state)
{
	world *w = played(1, NULL);
	char *buf;
	size_t len;

	(void)state;
	assert_int_equal(world_encode(w, &buf, &len), MMO_OK);
	assert_int_equal(strlen(buf), len);
	assert_non_null(strstr(buf,
	                       "{\"entities\":[\n{\"hp\":30,\"id\":\"npc1\",\"position\":{\"x\":"
	                       "12.5,\"y\":7,\"z\":0},\"region_id\":\"r_0_0\""));
	assert_non_null(strstr(buf, "\n\"format\":1,\n\"players\":[\n{\"alive\":true,"));
	char *p1 = strstr(buf, "\"id\":\"p1\""), *p2 = strstr(buf, "\"id\":\"p2\""),
	     *p3 = strstr(buf, "\"id\":\"p3\"");
	assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3);
	assert_non_null(strstr(buf, "\"position\":{\"x\":5000.1,\"y\":5000.25,\"z\":0.5}"));
	assert_non_null(strstr(buf, "\"skill_used_at\":{\"fireball\":"));
	assert_string_equal(buf + len - 2, "}\n");
	free(buf);
	world_free(w);
}

static void same_play_gives_same_bytes_and_hash(void **state)
{
	world *a = played(9, NULL), *b = played(9, NULL), *c = played(10, NULL);
	uint8_t ha[32], hb[32], hc[32];

	(void)state;
	assert_int_equal(world_hash(a, ha), MMO_OK);
	assert_int_equal(world_hash(b, hb), MMO_OK);
	assert_int_equal(world_hash(c, hc), MMO_OK);
	assert_memory_equal(ha, hb, 32);
	assert_memory_not_equal(ha, hc, 32); /* the seed decides the combat */
	world_free(a);
	world_free(b);
	world_free(c);
}

static void decode_restores_the_exact_state(void **state)
{
	/* A name with quotes, a backslash, a control byte, UTF-8 and a byte
	 * that is not UTF-8. */
	world *w = played(3, "b\"o\\b\x01 \xc3\xa9\xff"), *back = NULL;
	char *buf, *again;
	size_t len, alen;
	struct world_player p;

	(void)state;
	assert_int_equal(world_encode(w, &buf, &len), MMO_OK);
	assert_int_equal(world_decode(buf, len, 3, &back), MMO_OK);
	assert_int_equal(world_encode(back, &again, &alen), MMO_OK);
	assert_int_equal(alen, len);
	assert_memory_equal(again, buf, len);
	assert_int_equal(world_player_get(back, "p2", &p), MMO_OK);
	assert_string_equal(p.name, "b\"o\\b\x01 \xc3\xa9\xff");
	assert_int_equal(world_seq(back), world_seq(w));
	free(buf);
	free(again);
	world_free(w);
	world_free(back);
}

static void decode_refuses_bad_input(void **state)
{
	world *w = NULL;
	const char *bad[] = {
	    "",
	    "{}",
	    "[1]",
	    "{\"format\":1,\"seq\":1,\"players\":[],\"entities\":{}}",
	    "{\"format\":1,\"seq\":1,\"players\":[{\"id\":\"p1\"}],\"entities\":[]}",
	    "{\"format\":1,\"seq\":-1,\"players\":[],\"entities\":[]}",
	    "{\"format\":1,\"seq\":1,\"players\":[],\"entities\":[],\"seq\":2}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(world_decode(bad[i], strlen(bad[i]), 1, &w), MMO_EMALFORMED);
	const char *newer = "{\"format\":99,\"seq\":1,\"players\":[],\"entities\":[]}";
	assert_int_equal(world_decode(newer, strlen(newer), 1, &w), MMO_EVERSION);
	assert_null(w);
}

/* ---------------------------------------------------------------- snapshots */

static void snapshots_round_trip_and_keep_the_newest(void **state)
{
	char dir[256], msg[256];
	world_snapdb *db;
	world *w = played(5, NULL), *got = NULL;
	struct world_snapinfo info[WORLD_SNAP_KEEP + 8];
	uint8_t h[32];
	uint64_t seed = 0, skipped = 9;
	size_t n;

	(void)state;
	assert_int_equal(ts_tmpdir(dir, sizeof(dir)), 0);
	strcat(dir, "/world");
	if (world_snapdb_open(dir, false, &db, msg, sizeof(msg)))
		fail_msg("%s", msg);
	assert_int_equal(world_snapdb_seed(db, &seed), MMO_ENOTFOUND);
	assert_int_equal(world_snapdb_set_seed(db, 5), MMO_OK);
	assert_int_equal(world_snapdb_seed(db, &seed), MMO_OK);
	assert_int_equal(seed, 5);
	uint64_t base = world_seq(w);
	for (uint64_t i = 0; i < WORLD_SNAP_KEEP + 5; i++) {
		world_set_seq(w, base + i * 10);
		assert_int_equal(world_snapdb_put(db, w, NULL), MMO_OK);
	}
	assert_int_equal(world_snapdb_list(db, info, WORLD_SNAP_KEEP + 8, &n), MMO_OK);
	assert_int_equal(n, WORLD_SNAP_KEEP);
	assert_int_equal(info[0].seq, base + 50);
	assert_true(info[n - 1].valid);
	assert_int_equal(world_snapdb_load(db, NULL, 0, &got, &skipped), MMO_OK);
	assert_int_equal(skipped, 0);
	assert_int_equal(world_seq(got), base + (WORLD_SNAP_KEEP + 4) * 10);
	assert_int_equal(world_hash(got, h), MMO_OK);
	assert_memory_equal(h, info[n - 1].hash, 32);
	world_free(got);
	/* At most a seq: the newest at or before it. */
	assert_int_equal(world_snapdb_load(db, NULL, base + 105, &got, NULL), MMO_OK);
	assert_int_equal(world_seq(got), base + 100);
	world_free(got);
	world_snapdb_close(db);

	/* Read-only opening sees the same. */
	assert_int_equal(world_snapdb_open(dir, true, &db, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(world_snapdb_get(db, base + 100, &got), MMO_OK);
	world_free(got);
	assert_int_equal(world_snapdb_get(db, base + 101, &got), MMO_ENOTFOUND);
	world_snapdb_close(db);
	world_free(w);
	*strrchr(dir, '/') = 0;
	ts_rmrf(dir);
}

/* Flip one byte of the newest snapshot with LMDB directly. */
static void corrupt_newest(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;

	assert_int_equal(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 2);
	assert_int_equal(mdb_env_open(env, dir, 0, 0640), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "snaps", 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_LAST), 0);
	uint8_t *copy = malloc(v.mv_size);
	memcpy(copy, v.mv_data, v.mv_size);
	copy[v.mv_size - 10] ^= 0x20;
	MDB_val nv = {v.mv_size, copy};
	assert_int_equal(mdb_cursor_put(cur, &k, &nv, MDB_CURRENT), 0);
	mdb_cursor_close(cur);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(copy);
}

static void a_corrupt_snapshot_is_skipped(void **state)
{
	char dir[256], msg[256];
	world_snapdb *db;
	world *w = played(5, NULL), *got = NULL;
	struct world_snapinfo info[4];
	uint64_t skipped = 0;
	size_t n;

	(void)state;
	assert_int_equal(ts_tmpdir(dir, sizeof(dir)), 0);
	assert_int_equal(world_snapdb_open(dir, false, &db, msg, sizeof(msg)), MMO_OK);
	world_set_seq(w, 100);
	assert_int_equal(world_snapdb_put(db, w, NULL), MMO_OK);
	world_set_seq(w, 200);
	assert_int_equal(world_snapdb_put(db, w, NULL), MMO_OK);
	world_snapdb_close(db);
	corrupt_newest(dir);

	assert_int_equal(world_snapdb_open(dir, false, &db, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(world_snapdb_list(db, info, 4, &n), MMO_OK);
	assert_int_equal(n, 2);
	assert_true(info[0].valid);
	assert_false(info[1].valid);
	assert_int_equal(world_snapdb_get(db, 200, &got), MMO_ECORRUPT);
	assert_int_equal(world_snapdb_load(db, NULL, 0, &got, &skipped), MMO_OK);
	assert_int_equal(skipped, 1);
	assert_int_equal(world_seq(got), 100);
	world_free(got);
	world_snapdb_close(db);
	world_free(w);
	ts_rmrf(dir);
}

static void opening_a_missing_store_read_only_fails(void **state)
{
	world_snapdb *db = NULL;
	char msg[256];

	(void)state;
	assert_int_equal(world_snapdb_open("/nonexistent/world", true, &db, msg, sizeof(msg)),
	                 MMO_ENOTFOUND);
	assert_null(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(encode_sorts_and_puts_one_player_per_line),
	    cmocka_unit_test(same_play_gives_same_bytes_and_hash),
	    cmocka_unit_test(decode_restores_the_exact_state),
	    cmocka_unit_test(decode_refuses_bad_input),
	    cmocka_unit_test(snapshots_round_trip_and_keep_the_newest),
	    cmocka_unit_test(a_corrupt_snapshot_is_skipped),
	    cmocka_unit_test(opening_a_missing_store_read_only_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
