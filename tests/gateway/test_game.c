/* test_game.c - the game endpoints against a real server, the real world
 * runner deciding every intent: moves and attacks answered 200 with the
 * durable outcome or 422 with the world's reason, 202 when the world is
 * late, per-player rate limits, state reads from the Redis view, and the
 * auditors' event query with its filters and paging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gwtest.h"
#include "schemas/mmo_util.h"

static struct gwt *E;
static char PA[80], PB[80], *TA, *TB, SPAWN_REGION[32];

static int setup(void **state)
{
	const struct world_rules *wr = world_rules();

	(void)state;
	E = gwt_start(NULL);
	gwt_user(E, "attacker", "attacker pass", PA, &TA);
	gwt_user(E, "defender", "defender pass", PB, &TB);
	world_region_of(&wr->spawn, SPAWN_REGION, sizeof(SPAWN_REGION));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(TA);
	free(TB);
	gwt_stop(E);
	return 0;
}

static double num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_number(v));
	return json_number_value(v);
}

/* ---------------------------------------------------------------- moves */

static void test_move_is_answered_with_the_decided_outcome_the_log_then_holds(void **state)
{
	const struct world_rules *wr = world_rules();
	struct resp r;
	char body[128];
	json_t *pos;

	(void)state;
	gwt_sleep_ms(300); /* let some time pass since the login: moves are speed-bound */
	snprintf(body, sizeof(body), "{\"x\":%g,\"y\":%g,\"z\":%g}", wr->spawn.x + 0.5, wr->spawn.y,
	         wr->spawn.z);
	if (gwt_post(E, "/api/players/move", TA, body, &r) != 200)
		fail_msg("move: %d %.*s", r.status, (int)r.body_len, r.body);
	assert_true(json_is_string(json_object_get(r.json, "event_id")));
	assert_true(num(r.json, "seq") > 0);
	pos = json_object_get(r.json, "position");
	assert_true(num(pos, "x") == wr->spawn.x + 0.5);
	assert_true(num(pos, "y") == wr->spawn.y);
	assert_true(num(pos, "z") == wr->spawn.z);
	assert_string_equal(json_string_value(json_object_get(r.json, "region_id")), SPAWN_REGION);
	/* Answered at the world's decision: the log then holds that outcome,
	 * after the intent, caused by it, with the id the answer gave. */
	{
		uint64_t seq = (uint64_t)num(r.json, "seq");
		struct world_logged l;

		for (int i = 0;; i++) {
			assert_int_equal(world_logged_get(E->log, seq, &l), MMO_OK);
			if (l.n || i == 1000)
				break;
			world_logged_free(&l);
			gwt_sleep_ms(10);
		}
		assert_int_equal(l.n, 1);
		assert_string_equal(l.ev[0]->type, "world.update");
		assert_string_equal(l.ev[0]->event_id,
		                    json_string_value(json_object_get(r.json, "outcome_event_id")));
		/* outcome_seq only if the gateway saw the commit before it
		 * answered (a busy loop may read the ack after it): then the
		 * outcome's own seq. */
		if (json_object_get(r.json, "outcome_seq"))
			assert_int_equal((uint64_t)num(r.json, "outcome_seq"), l.seq[0]);
		world_logged_free(&l);
	}
	resp_free(&r);
}

static void test_move_refused_by_the_rules_is_422_with_the_reason(void **state)
{
	const struct world_rules *wr = world_rules();
	struct resp r;
	char body[128];

	(void)state;
	snprintf(body, sizeof(body), "{\"x\":%g,\"y\":%g,\"z\":0}", wr->spawn.x + 3000,
	         wr->spawn.y);
	gwt_post(E, "/api/players/move", TA, body, &r);
	gwt_assert_error(&r, 422, "too_fast", NULL);
	assert_true(num(r.json, "seq") > 0);
	assert_string_equal(json_string_value(json_object_get(r.json, "reason")), "too_fast");
	resp_free(&r);
	/* Outside the world (but within the schema's range). */
	gwt_post(E, "/api/players/move", TA, "{\"x\":-5,\"y\":0,\"z\":0}", &r);
	gwt_assert_error(&r, 422, "out_of_bounds", NULL);
	resp_free(&r);
}

/* ---------------------------------------------------------------- combat */

static void test_attack_result_then_cooldown_then_refusals(void **state)
{
	struct resp r;
	char body[160];
	const char *res;

	(void)state;
	/* Both spawned at the same point: in range of a punch. */
	snprintf(body, sizeof(body), "{\"defender_id\":\"%s\",\"skill_id\":\"fireball\"}", PB);
	if (gwt_post(E, "/api/combat/attack", TA, body, &r) != 200)
		fail_msg("attack: %d %.*s", r.status, (int)r.body_len, r.body);
	res = json_string_value(json_object_get(r.json, "result"));
	assert_true(!strcmp(res, "hit") || !strcmp(res, "miss") || !strcmp(res, "critical"));
	assert_true(num(r.json, "damage") >= 0);
	assert_true(num(r.json, "defender_hp") <= 100);
	assert_true(num(r.json, "seq") > 0);
	assert_true(json_is_string(json_object_get(r.json, "event_id")));
	resp_free(&r);
	/* The same skill again at once: cooldown. */
	gwt_post(E, "/api/combat/attack", TA, body, &r);
	gwt_assert_error(&r, 422, "cooldown", NULL);
	resp_free(&r);
	snprintf(body, sizeof(body), "{\"defender_id\":\"%s\",\"skill_id\":\"kick\"}", PB);
	gwt_post(E, "/api/combat/attack", TA, body, &r);
	gwt_assert_error(&r, 422, "unknown_skill", NULL);
	resp_free(&r);
	snprintf(body, sizeof(body), "{\"defender_id\":\"%s\",\"skill_id\":\"punch\"}", PA);
	gwt_post(E, "/api/combat/attack", TA, body, &r);
	gwt_assert_error(&r, 422, "invalid_target", NULL);
	resp_free(&r);
	gwt_post(E, "/api/combat/attack", TA,
	         "{\"defender_id\":\"p_nobody\",\"skill_id\":\"punch\"}", &r);
	gwt_assert_error(&r, 422, "unknown_target", NULL);
	resp_free(&r);
	/* Without a token. */
	gwt_post(E, "/api/combat/attack", NULL, body, &r);
	gwt_assert_error(&r, 401, "unauthorized", NULL);
	resp_free(&r);
}

/* ---------------------------------------------------------------- state reads */

static void test_player_and_region_reads_come_from_the_view(void **state)
{
	struct resp r;
	char path[160], *v;
	json_t *p, *players;

	(void)state;
	/* What the Redis view projector writes (its public contract). */
	v = gwt_redis(E, "HSET mmo:player:%s region_id %s x 5001.5 y 5000 z 0 hp 87 online 1 seq 9",
	              PA, SPAWN_REGION);
	free(v);
	v = gwt_redis(E, "HSET mmo:player:%s region_id %s x 5000 y 5000 z 0 hp 100 online 0 seq 8",
	              PB, SPAWN_REGION);
	free(v);
	v = gwt_redis(E, "SADD mmo:region:%s:players %s %s", SPAWN_REGION, PA, PB);
	free(v);
	snprintf(path, sizeof(path), "/api/players/%s", PA);
	assert_int_equal(gwt_get(E, path, TB, &r), 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "player_id")), PA);
	assert_string_equal(json_string_value(json_object_get(r.json, "username")), "attacker");
	assert_string_equal(json_string_value(json_object_get(r.json, "region_id")), SPAWN_REGION);
	assert_true(num(json_object_get(r.json, "position"), "x") == 5001.5);
	assert_int_equal(json_integer_value(json_object_get(r.json, "hp")), 87);
	assert_true(json_is_true(json_object_get(r.json, "online")));
	resp_free(&r);

	snprintf(path, sizeof(path), "/api/regions/%s/players", SPAWN_REGION);
	assert_int_equal(gwt_get(E, path, TA, &r), 200);
	players = json_object_get(r.json, "players");
	assert_int_equal(json_array_size(players), 2);
	p = json_array_get(players, 0);
	assert_string_equal(json_string_value(json_object_get(p, "player_id")),
	                    strcmp(PA, PB) < 0 ? PA : PB);
	for (size_t i = 0; i < 2; i++) {
		p = json_array_get(players, i);
		if (!strcmp(json_string_value(json_object_get(p, "player_id")), PB)) {
			assert_string_equal(json_string_value(json_object_get(p, "username")),
			                    "defender");
			assert_true(json_is_false(json_object_get(p, "online")));
		}
	}
	resp_free(&r);
	/* Unknown player: 404; a region nobody is in: an empty list. */
	gwt_get(E, "/api/players/p_0000000000000000", TA, &r);
	gwt_assert_error(&r, 404, "not_found", NULL);
	resp_free(&r);
	assert_int_equal(gwt_get(E, "/api/regions/r_99_99/players", TA, &r), 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "players")), 0);
	resp_free(&r);
	/* A registered player the view has not seen yet: nulls, offline. */
	{
		char pid[80], *tok;

		gwt_user(E, "newcomer", "newcomer pass", pid, &tok);
		snprintf(path, sizeof(path), "/api/players/%s", pid);
		assert_int_equal(gwt_get(E, path, tok, &r), 200);
		assert_true(json_is_null(json_object_get(r.json, "position")));
		assert_true(json_is_null(json_object_get(r.json, "region_id")));
		assert_true(json_is_false(json_object_get(r.json, "online")));
		resp_free(&r);
		free(tok);
	}
}

/* ---------------------------------------------------------------- audit */

static void test_events_query_filters_and_pages(void **state)
{
	char msg[256], *tok, path[256];
	struct resp r;
	json_t *evs;
	uint64_t next, total = 0, last = 0;

	(void)state;
	assert_int_equal(gw_user_set_role(E->dir, "defender", "auditor", msg, sizeof(msg)), MMO_OK);
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL,
	                          "{\"username\":\"defender\",\"password\":\"defender pass\"}", &r),
	                 200);
	tok = strdup(json_string_value(json_object_get(r.json, "token")));
	resp_free(&r);

	/* The attacker's player.* events, two per page. */
	next = 1;
	for (int page = 0; page < 20; page++) {
		bool more;

		snprintf(path, sizeof(path),
		         "/api/events?player_id=%s&type=player.&limit=2&from_seq=%llu", PA,
		         (unsigned long long)next);
		assert_int_equal(gwt_get(E, path, tok, &r), 200);
		evs = json_object_get(r.json, "events");
		assert_true(json_array_size(evs) <= 2);
		for (size_t i = 0; i < json_array_size(evs); i++) {
			json_t *e = json_array_get(evs, i);
			uint64_t seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));

			assert_string_equal(json_string_value(json_object_get(e, "player_id")), PA);
			assert_int_equal(
			    strncmp(json_string_value(json_object_get(e, "type")), "player.", 7),
			    0);
			assert_true(seq > last);
			assert_int_equal(strlen(json_string_value(json_object_get(e, "hash"))), 64);
			last = seq;
			total++;
		}
		next = (uint64_t)json_integer_value(json_object_get(r.json, "next_seq"));
		more = json_is_true(json_object_get(r.json, "more"));
		resp_free(&r);
		if (!more)
			break;
	}
	/* register, login, move, move, move: 3 player.move + register + login */
	assert_true(total >= 5);

	/* Time filters: everything since the epoch, nothing until then. */
	assert_int_equal(gwt_get(E, "/api/events?since=1970-01-02T00:00:00Z&limit=1", tok, &r),
	                 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 1);
	resp_free(&r);
	assert_int_equal(gwt_get(E, "/api/events?until=86400000", tok, &r), 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "events")), 0);
	resp_free(&r);
	/* Bad parameters name themselves. */
	gwt_get(E, "/api/events?bogus=1", tok, &r);
	gwt_assert_error(&r, 400, "unknown_field", "bogus");
	resp_free(&r);
	gwt_get(E, "/api/events?limit=0", tok, &r);
	gwt_assert_error(&r, 400, "out_of_range", "limit");
	resp_free(&r);
	gwt_get(E, "/api/events?player_id=a%20b", tok, &r);
	gwt_assert_error(&r, 400, "bad_id", "player_id");
	resp_free(&r);
	gwt_get(E, "/api/events?since=yesterday", tok, &r);
	gwt_assert_error(&r, 400, "invalid_field", "since");
	resp_free(&r);
	gwt_get(E, "/api/events?from_seq=-1", tok, &r);
	gwt_assert_error(&r, 400, "invalid_field", "from_seq");
	resp_free(&r);
	gwt_get(E, "/api/events?type=DROP%20TABLE", tok, &r);
	gwt_assert_error(&r, 400, "invalid_field", "type");
	resp_free(&r);
	free(tok);
}

/* ---------------------------------------------------------------- limits, delays */

static void slow_moves(struct gw_opts *o)
{
	o->rate_medium = 2; /* burst 4 */
	o->outcome_timeout_ms = 400;
}

static void test_per_player_rate_limit_is_429(void **state)
{
	const struct world_rules *wr = world_rules();
	struct resp r;
	char body[128], ra[16];
	int limited = 0;

	(void)state;
	gwt_restart_gw(E, slow_moves);
	snprintf(body, sizeof(body), "{\"x\":%g,\"y\":%g,\"z\":0}", wr->spawn.x, wr->spawn.y);
	for (int i = 0; i < 8 && !limited; i++) {
		gwt_post(E, "/api/players/move", TB, body, &r);
		if (r.status == 429) {
			limited = 1;
			gwt_assert_error(&r, 429, "rate_limited", NULL);
			assert_true(resp_header(&r, "Retry-After", ra, sizeof(ra)));
			assert_true(atoi(ra) >= 1);
		}
		resp_free(&r);
	}
	assert_true(limited);
	/* Another player has its own bucket. */
	gwt_post(E, "/api/players/move", TA, body, &r);
	assert_true(r.status != 429);
	resp_free(&r);
}

static void test_world_late_gives_202_with_the_seq(void **state)
{
	struct world_runner_opts wo = {0};
	struct resp r;
	char msg[256];
	uint64_t seq;

	(void)state;
	/* (Still with the 400 ms outcome timeout of the previous test.) */
	world_runner_stop(E->world);
	E->world = NULL;
	gwt_sleep_ms(600); /* the move bucket refills */
	gwt_post(E, "/api/players/move", TA, "{\"x\":5000,\"y\":5000,\"z\":0}", &r);
	assert_int_equal(r.status, 202);
	assert_string_equal(json_string_value(json_object_get(r.json, "status")), "pending");
	seq = (uint64_t)num(r.json, "seq");
	assert_true(seq > 0);
	assert_true(json_is_string(json_object_get(r.json, "event_id")));
	resp_free(&r);
	/* Over a WebSocket the same 202 is a "pending" error with its seq. */
	{
		static const char m[] = "{\"op\":\"move\",\"x\":5000,\"y\":5000,\"z\":0,"
		                        "\"ref\":\"late\"}";
		struct wsc *w = gwt_ws(E, TA);
		json_t *j;

		assert_int_equal(wsc_send(w, 1, m, sizeof(m) - 1, true), 0);
		while ((j = wsc_json(w, 3000, NULL)) &&
		       strcmp(json_string_value(json_object_get(j, "ref")) ?: "", "late"))
			json_decref(j);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
		assert_string_equal(json_string_value(json_object_get(j, "code")), "pending");
		assert_int_equal(json_integer_value(json_object_get(j, "status")), 202);
		assert_true(json_integer_value(json_object_get(j, "seq")) > (json_int_t)seq);
		assert_true(json_is_string(json_object_get(j, "event_id")));
		json_decref(j);
		wsc_close(w);
	}
	/* The world comes back and decides it: the outcome lands in the log. */
	wo.log = E->log;
	wo.zctx = E->zctx;
	wo.ingest = E->ingest;
	wo.bus = E->bus;
	wo.data_dir = E->dir;
	if (world_runner_start(&wo, &E->world, msg, sizeof(msg)))
		fail_msg("world_runner_start: %s", msg);
	for (int i = 0; i < 100; i++) {
		struct world_logged l;

		assert_int_equal(world_logged_get(E->log, seq, &l), MMO_OK);
		size_t n = l.n;
		world_logged_free(&l);
		if (n)
			return;
		gwt_sleep_ms(50);
	}
	fail_msg("no outcome for seq %llu", (unsigned long long)seq);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_move_is_answered_with_the_decided_outcome_the_log_then_holds),
	    cmocka_unit_test(test_move_refused_by_the_rules_is_422_with_the_reason),
	    cmocka_unit_test(test_attack_result_then_cooldown_then_refusals),
	    cmocka_unit_test(test_player_and_region_reads_come_from_the_view),
	    cmocka_unit_test(test_events_query_filters_and_pages),
	    cmocka_unit_test(test_per_player_rate_limit_is_429),
	    cmocka_unit_test(test_world_late_gives_202_with_the_seq),
	};

	return cmocka_run_group_tests_name("gateway_game", tests, setup, teardown);
}
