/* test_replay.c - replay over a real log: the state at several seqs equals
 * the live fold's, --verify agrees with the world and names a planted
 * divergence, --bisect finds planted violations (jumping snapshots), an
 * unanswered intent stops the replay, a player's timeline.
 *
 * The "live" world here is the pure fold driven the way the runner drives
 * it: intents are appended to the log, then the world folds the new
 * records in seq order and appends the outcomes in one batch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "game.h"
#include "log_check.h"
#include "replay/replay.h"
#include "testsupport.h"
#include "world_test.h"

struct ckpt {
	uint64_t seq;
	uint8_t hash[32];
};

/* How many outcomes of each kind the game produced. */
static void census(struct game *g, unsigned *moves, unsigned *hits, unsigned *deaths,
                   unsigned *rejects)
{
	struct evlog_rec rec;
	evlog_iter *it;

	*moves = *hits = *deaths = *rejects = 0;
	assert_int_equal(evlog_iter_open(g->log, EVLOG_ALL, NULL, 1, &it), MMO_OK);
	while (evlog_iter_next(it, &rec) == MMO_OK) {
		Mmo__Event *e;

		assert_int_equal(evlog_rec_decode(&rec, &e), MMO_OK);
		*moves += !strcmp(e->type, "world.update");
		*hits += !strcmp(e->type, "combat.result") && e->combat_result->damage > 0;
		*deaths +=
		    !strcmp(e->type, "world.despawn") && !strcmp(e->world_despawn->reason, "death");
		*rejects += !strcmp(e->type, "world.reject");
		mmo_event_free(e);
	}
	evlog_iter_close(it);
}

static struct replay_opts ropts(struct game *g)
{
	struct replay_opts o = {0};

	o.log = g->log;
	o.seed = world_seed(g->w);
	return o;
}

static void replay_equals_live_at_several_seqs(void **state)
{
	struct game *g = game_new(77);
	struct ckpt ck[6];
	struct replay_result res;
	struct outcome_census c;
	char why[256];
	size_t nck = 0;

	(void)state;
	game_register_all(g);
	world_pass(g);
	for (int round = 0; round < 5; round++) {
		game_play(g, NACTIONS / 5, 0);
		ck[nck].seq = world_seq(g->w);
		assert_int_equal(world_hash(g->w, ck[nck].hash), MMO_OK);
		nck++;
	}
	if (check_outcomes(g->log, &c, why, sizeof(why)))
		fail_msg("%s", why);
	assert_true(c.intents >= NACTIONS);
	assert_int_equal(c.answered, c.intents);
	unsigned moves, hits, deaths, rejects;
	census(g, &moves, &hits, &deaths, &rejects);
	print_message("log: %llu records, %llu intents, %llu outcomes: %u moves, %u hits, %u "
	              "deaths, %u rejections\n",
	              (unsigned long long)head_of(g->log), (unsigned long long)c.intents,
	              (unsigned long long)c.outcomes, moves, hits, deaths, rejects);
	assert_true(moves > NACTIONS / 10 && hits > NACTIONS / 20 && deaths > 10);

	for (size_t i = 0; i < nck; i++) {
		struct replay_opts o = ropts(g);
		world *w = NULL;
		uint8_t h[32];

		o.to_seq = ck[i].seq;
		assert_int_equal(replay_run(&o, &w, &res), MMO_OK);
		assert_int_equal(res.seq, ck[i].seq);
		assert_int_equal(res.pending_seq, 0);
		assert_int_equal(world_hash(w, h), MMO_OK);
		assert_memory_equal(h, ck[i].hash, 32);
		world_free(w);
	}
	/* And to the head, where the last records are outcomes. */
	{
		struct replay_opts o = ropts(g);
		world *w = NULL;
		uint8_t h[32], live[32];

		assert_int_equal(replay_run(&o, &w, &res), MMO_OK);
		assert_int_equal(res.seq, head_of(g->log));
		world_set_seq(g->w, res.seq);
		assert_int_equal(world_hash(w, h), MMO_OK);
		assert_int_equal(world_hash(g->w, live), MMO_OK);
		assert_memory_equal(h, live, 32);
		world_free(w);
	}
	game_free(g);
}

static void verify_agrees_with_the_world_and_checks_snapshots(void **state)
{
	struct game *g = game_new(5);
	struct replay_opts o;
	struct replay_result res;

	(void)state;
	game_register_all(g);
	world_pass(g);
	game_play(g, 10000, 20);
	o = ropts(g);
	o.snaps = g->db;
	o.verify = true;
	assert_int_equal(replay_run(&o, NULL, &res), MMO_OK);
	if (res.diverged)
		fail_msg("diverged: %s", res.what);
	assert_true(res.intents >= 10000);
	assert_int_equal(res.snapshots_checked, 10);

	/* Starting from a snapshot gives the same state as from the start. */
	world *a = NULL, *b = NULL;
	uint8_t ha[32], hb[32];
	o.verify = false;
	assert_int_equal(replay_run(&o, &a, &res), MMO_OK);
	o.from_snapshot = true;
	assert_int_equal(replay_run(&o, &b, &res), MMO_OK);
	assert_true(res.start_seq > 0);
	assert_true(res.records < head_of(g->log) / 5);
	world_hash(a, ha);
	world_hash(b, hb);
	assert_memory_equal(ha, hb, 32);
	world_free(a);
	world_free(b);
	game_free(g);
}

/* A forged outcome for an intent, logged before the world answers it. */
static void verify_names_the_first_divergent_seq(void **state)
{
	struct game *g = game_new(5);
	struct mmo_ev b, f;
	struct replay_opts o;
	struct replay_result res;
	uint64_t intent_seq;
	char id[32];

	(void)state;
	game_register_all(g);
	world_pass(g);
	game_play(g, 2000, 0);
	/* p1 attacks p2, both logged in at spawn. */
	intent(g, "player.login", 1, &b);
	queue(g, &b.ev);
	intent(g, "player.login", 2, &b);
	queue(g, &b.ev);
	commit(g);
	world_pass(g);
	g->ts += 60 * 1000 * MS;
	intent(g, "combat.attack", 1, &b);
	b.body.combat_attack.defender_id = "p2";
	b.body.combat_attack.skill_id = "punch";
	queue(g, &b.ev);
	commit(g);
	intent_seq = head_of(g->log);
	{
		/* What the world will decide, with one more damage point. */
		struct evlog_rec rec;
		evlog_iter *it;
		Mmo__Event *ev;
		struct world_outcome out;

		assert_int_equal(evlog_iter_open(g->log, EVLOG_ALL, NULL, intent_seq, &it), MMO_OK);
		assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
		assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
		evlog_iter_close(it);
		world_set_seq(g->w, intent_seq - 1);
		assert_int_equal(world_decide(g->w, ev, &out), MMO_OK);
		assert_null(out.reason);
		assert_string_equal(out.ev[0].b.ev.type, "combat.result");
		f = out.ev[0].b;
		snprintf(id, sizeof(id), "w:%llu:0", (unsigned long long)intent_seq);
		f.ev.event_id = id;
		f.ev.player_id = "p1";
		f.ev.region_id = "r_10_10";
		f.ev.combat_result = &f.body.combat_result;
		f.body.combat_result.attacker_id = "p1";
		f.body.combat_result.defender_id = "p2";
		f.body.combat_result.damage += 1;
		f.body.combat_result.defender_hp -= 1;
		mmo_event_free(ev);
	}
	queue(g, &f.ev);
	commit(g);
	world_pass(g); /* the world's own answer conflicts: the log keeps the forged one */
	assert_true(g->conflicts >= 1);
	game_play(g, 1000, 0);

	o = ropts(g);
	o.verify = true;
	assert_int_equal(replay_run(&o, NULL, &res), MMO_OK);
	assert_true(res.diverged);
	assert_int_equal(res.bad_seq, intent_seq);
	print_message("%s\n", res.what);
	assert_non_null(strstr(res.what, "field damage"));
	assert_non_null(strstr(res.what, "in the log"));
	/* Plain replay shows what the log says happened. */
	world *w = NULL;
	struct world_player p2;
	o.verify = false;
	o.to_seq = intent_seq;
	assert_int_equal(replay_run(&o, &w, &res), MMO_OK);
	assert_int_equal(world_player_get(w, "p2", &p2), MMO_OK);
	assert_int_equal(p2.hp, f.body.combat_result.defender_hp);
	world_free(w);
	game_free(g);
}

static void bisect_finds_a_planted_violation_from_snapshots(void **state)
{
	struct game *g = game_new(11);
	struct mmo_ev b;
	struct replay_opts o;
	struct replay_result res;
	uint64_t planted;

	(void)state;
	game_register_all(g);
	world_pass(g);
	game_play(g, 6000, 10);
	/* An operator's (buggy) correction: p7 placed outside the world. */
	mmo_ev_init(&b, "world.update", "op:1", "p7", "r_0_0");
	b.body.world_update.entity_id = "p7";
	b.body.world_update.entity_type = "player";
	mmo_ev_set_pos(&b, -50, 10, 0);
	queue(g, &b.ev);
	commit(g);
	planted = head_of(g->log);
	world_pass(g);
	game_play(g, 6000, 10);

	o = ropts(g);
	o.snaps = g->db;
	assert_int_equal(replay_bisect(&o, "in_bounds", &res), MMO_OK);
	assert_int_equal(res.bad_seq, planted);
	assert_non_null(strstr(res.what, "p7"));
	assert_true(res.start_seq > 0);                             /* jumped to a snapshot ... */
	assert_true(res.records < planted - res.start_seq + 1 + 1); /* ... and stopped there */
	print_message("in_bounds first fails at %llu (from snapshot %llu): %s\n",
	              (unsigned long long)res.bad_seq, (unsigned long long)res.start_seq, res.what);

	/* Without snapshots: the same seq, from the start. */
	o.snaps = NULL;
	assert_int_equal(replay_bisect(&o, "in_bounds", &res), MMO_OK);
	assert_int_equal(res.bad_seq, planted);
	assert_int_equal(res.start_seq, 0);

	/* An invariant that holds. */
	o.snaps = g->db;
	assert_int_equal(replay_bisect(&o, "hp_range", &res), MMO_OK);
	assert_int_equal(res.bad_seq, 0);
	assert_int_equal(res.seq, head_of(g->log));
	assert_int_equal(replay_bisect(&o, "no_such", &res), MMO_EINVAL);
	assert_string_equal(res.what, "unknown invariant 'no_such' (hp_range, in_bounds, "
	                              "region_match, dead_action, all)");
	game_free(g);
}

static void bisect_finds_an_action_by_a_dead_player(void **state)
{
	struct game *g = game_new(3);
	struct mmo_ev b, f;
	struct world_player p2;
	struct replay_opts o;
	struct replay_result res;
	uint64_t seq;
	char id[32];

	(void)state;
	game_register_all(g);
	intent(g, "player.login", 1, &b);
	queue(g, &b.ev);
	intent(g, "player.login", 2, &b);
	queue(g, &b.ev);
	commit(g);
	world_pass(g);
	while (!world_player_get(g->w, "p2", &p2) && p2.alive) {
		g->ts += 3000 * MS;
		intent(g, "combat.attack", 1, &b);
		b.body.combat_attack.defender_id = "p2";
		b.body.combat_attack.skill_id = "fireball";
		queue(g, &b.ev);
		commit(g);
		world_pass(g);
	}
	/* Dead p2 moves, and a forged acceptance is logged before the world. */
	g->ts += 1000 * MS;
	intent(g, "player.move", 2, &b);
	mmo_ev_set_pos(&b, 5000, 5001, 0);
	queue(g, &b.ev);
	commit(g);
	seq = head_of(g->log);
	snprintf(id, sizeof(id), "w:%llu:0", (unsigned long long)seq);
	mmo_ev_init(&f, "world.update", id, "p2", "r_10_10");
	f.ev.cause_seq = seq;
	f.body.world_update.entity_id = "p2";
	f.body.world_update.entity_type = "player";
	mmo_ev_set_pos(&f, 5000, 5001, 0);
	queue(g, &f.ev);
	commit(g);
	world_pass(g);

	o = ropts(g);
	o.snaps = g->db;
	assert_int_equal(replay_bisect(&o, "dead_action", &res), MMO_OK);
	assert_int_equal(res.bad_seq, seq);
	assert_non_null(strstr(res.what, "p2"));
	assert_int_equal(replay_bisect(&o, "all", &res), MMO_OK);
	assert_int_equal(res.bad_seq, seq);
	game_free(g);
}

static void replay_stops_before_an_unanswered_intent(void **state)
{
	struct game *g = game_new(1);
	struct replay_opts o;
	struct replay_result res;
	world *w = NULL;
	uint64_t first;

	(void)state;
	game_register_all(g);
	world_pass(g);
	game_play(g, 500, 0);
	/* A fact, then intents the world has not seen yet. */
	first = head_of(g->log) + 1;
	for (int i = 0; i < 5; i++)
		act(g);
	commit(g);

	o = ropts(g);
	assert_int_equal(replay_run(&o, &w, &res), MMO_OK);
	assert_int_equal(res.pending_seq, first);
	assert_int_equal(res.seq, first - 1);
	world_free(w);
	/* --verify calls that pending, not a divergence ... */
	o.verify = true;
	assert_int_equal(replay_run(&o, NULL, &res), MMO_OK);
	assert_false(res.diverged);
	/* ... until a later intent is answered while an earlier is not. */
	world *skip = NULL;
	struct evlog_rec rec;
	evlog_iter *it;
	Mmo__Event *ev;
	struct world_outcome out;
	assert_int_equal(world_new(1, &skip), MMO_OK);
	assert_int_equal(evlog_iter_open(g->log, EVLOG_ALL, NULL, first + 2, &it), MMO_OK);
	assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
	assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
	assert_int_equal(world_decide(skip, ev, &out), MMO_OK); /* unknown_player: any answer */
	queue(g, &out.ev[0].b.ev);
	mmo_event_free(ev);
	evlog_iter_close(it);
	commit(g);
	assert_int_equal(replay_run(&o, NULL, &res), MMO_OK);
	assert_true(res.diverged);
	assert_int_equal(res.bad_seq, first);
	world_free(skip);
	game_free(g);
}

static void timeline_lists_the_players_events(void **state)
{
	struct game *g = game_new(8);
	struct replay_opts o;
	struct replay_result res;
	char *text = NULL;
	size_t len = 0;
	unsigned lines = 0;

	(void)state;
	game_register_all(g);
	world_pass(g);
	game_play(g, 20000, 0);
	o = ropts(g);
	o.player = "p42";
	o.timeline = open_memstream(&text, &len);
	assert_int_equal(replay_run(&o, NULL, &res), MMO_OK);
	fclose(o.timeline);
	for (char *l = text; l && *l; l = strchr(l, '\n') + 1) {
		char *nl = strchr(l, '\n');

		assert_non_null(nl);
		*nl = 0;
		assert_non_null(strstr(l, "p42"));
		assert_non_null(strstr(l, ",\"player\":{\"alive\":"));
		assert_int_equal(strncmp(l, "{\"seq\":", 7), 0);
		*nl = '\n';
		lines++;
	}
	print_message("p42: %u events\n", lines);
	assert_true(lines >= 5);
	assert_non_null(strstr(text, "\"type\":\"player.register\""));
	free(text);
	game_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(replay_equals_live_at_several_seqs),
	    cmocka_unit_test(verify_agrees_with_the_world_and_checks_snapshots),
	    cmocka_unit_test(verify_names_the_first_divergent_seq),
	    cmocka_unit_test(bisect_finds_a_planted_violation_from_snapshots),
	    cmocka_unit_test(bisect_finds_an_action_by_a_dead_player),
	    cmocka_unit_test(replay_stops_before_an_unanswered_intent),
	    cmocka_unit_test(timeline_lists_the_players_events),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
