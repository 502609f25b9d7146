/* test_ws.c - the WebSocket /ws against a real server: authentication at
 * the upgrade, region subscriptions, movement only within the area of
 * interest, error frames for bad client messages (the socket stays open),
 * slow consumers closed with 1008 without slowing the others, revoked
 * sessions closing their sockets. */
#include <jwt.h>
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
static unsigned eid_no;

static int setup(void **state)
{
	const struct world_rules *wr = world_rules();

	(void)state;
	E = gwt_start(NULL);
	gwt_user(E, "watcher", "watcher pass", PA, &TA);
	gwt_user(E, "other", "other pass", PB, &TB);
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

/* Send a text message; return the next message (caller decrefs). */
static json_t *ask(struct wsc *w, const char *msg)
{
	json_t *j;

	assert_int_equal(wsc_send(w, 1, msg, strlen(msg), true), 0);
	j = wsc_json(w, 3000, NULL);
	if (!j)
		fail_msg("no answer to %s", msg);
	return j;
}

static void subscribe(struct wsc *w, const char *region)
{
	char msg[128];
	json_t *j;

	snprintf(msg, sizeof(msg), "{\"op\":\"subscribe\",\"region_id\":\"%s\"}", region);
	j = ask(w, msg);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "subscribed");
	assert_string_equal(json_string_value(json_object_get(j, "region_id")), region);
	json_decref(j);
}

static void assert_error_frame(struct wsc *w, const char *msg, size_t len, int opcode, bool fin,
                               const char *code)
{
	json_t *j;

	assert_int_equal(wsc_send(w, opcode, msg, len, fin), 0);
	j = wsc_json(w, 3000, NULL);
	if (!j)
		fail_msg("no error frame for %.60s", msg);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
	if (strcmp(json_string_value(json_object_get(j, "code")), code))
		fail_msg("code %s, want %s for %.60s",
		         json_string_value(json_object_get(j, "code")), code, msg);
	assert_true(json_is_string(json_object_get(j, "message")));
	json_decref(j);
}

/* Wait for a message of type (skipping others); NULL on timeout. */
static json_t *wait_type(struct wsc *w, const char *type, int timeout_ms)
{
	int64_t end = mmo_mono_us() + (int64_t)timeout_ms * 1000;

	while (mmo_mono_us() < end) {
		json_t *j = wsc_json(w, (int)((end - mmo_mono_us()) / 1000), NULL);

		if (!j)
			return NULL;
		if (!strcmp(json_string_value(json_object_get(j, "type")) ?: "", type))
			return j;
		json_decref(j);
	}
	return NULL;
}

static void fact(const char *type, const char *region, const char *entity, double x, double y)
{
	struct mmo_ev b;
	char eid[32];

	snprintf(eid, sizeof(eid), "t:%u", ++eid_no);
	assert_int_equal(mmo_ev_init(&b, type, eid, NULL, region), MMO_OK);
	if (!strcmp(type, "world.update")) {
		b.body.world_update.entity_id = (char *)entity;
		b.body.world_update.entity_type = "player";
		mmo_ev_set_pos(&b, x, y, 0);
	} else if (!strcmp(type, "world.spawn")) {
		b.body.world_spawn.entity_id = (char *)entity;
		b.body.world_spawn.entity_type = "npc";
		mmo_ev_set_pos(&b, x, y, 0);
	} else if (!strcmp(type, "world.despawn")) {
		b.body.world_despawn.entity_id = (char *)entity;
		b.body.world_despawn.entity_type = "npc";
	}
	gwt_append(E, &b);
}

/* ---------------------------------------------------------------- tests */

static void test_upgrade_needs_a_live_session(void **state)
{
	struct wsc *w = NULL;
	struct resp r;
	char q[4200];

	(void)state;
	assert_int_equal(wsc_open(E, NULL, NULL, 0, &w, &r), 401);
	gwt_assert_error(&r, 401, "unauthorized", NULL);
	resp_free(&r);
	assert_int_equal(wsc_open(E, "token=garbage", NULL, 0, &w, &r), 401);
	gwt_assert_error(&r, 401, "invalid_token", NULL);
	resp_free(&r);
	snprintf(q, sizeof(q), "token=%s", TA);
	assert_int_equal(wsc_open(E, q, NULL, 0, &w, &r), 101);
	subscribe(w, "r_any");
	wsc_close(w);
	w = gwt_ws(E, TA);
	wsc_close(w);
}

static void test_subscribers_get_their_region_and_not_others(void **state)
{
	const struct world_rules *wr = world_rules();
	struct wsc *a = gwt_ws(E, TA), *b = gwt_ws(E, TB);
	struct resp r;
	char body[128];
	json_t *j;

	(void)state;
	subscribe(a, SPAWN_REGION);
	subscribe(b, "r_0_0");
	gwt_sleep_ms(300); /* moves are speed-bound since the login */
	snprintf(body, sizeof(body), "{\"x\":%g,\"y\":%g,\"z\":0}", wr->spawn.x + 0.5, wr->spawn.y);
	if (gwt_post(E, "/api/players/move", TA, body, &r) != 200)
		fail_msg("move: %d %.*s", r.status, (int)r.body_len, r.body);
	json_int_t seq = json_integer_value(json_object_get(r.json, "seq"));
	resp_free(&r);
	j = wait_type(a, "world.update", 3000);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "cause_seq")), seq);
	assert_string_equal(json_string_value(json_object_get(j, "region_id")), SPAWN_REGION);
	assert_string_equal(json_string_value(json_object_get(j, "player_id")), PA);
	assert_true(json_number_value(json_object_get(json_object_get(j, "position"), "x")) ==
	            wr->spawn.x + 0.5);
	json_decref(j);
	/* b follows r_0_0 only. */
	assert_null(wsc_json(b, 300, NULL));
	fact("world.spawn", "r_0_0", "npc_1", 10, 10);
	j = wait_type(b, "world.spawn", 3000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "entity_id")), "npc_1");
	json_decref(j);
	assert_null(wsc_json(a, 300, NULL));
	/* Unsubscribed: nothing more. */
	j = ask(b, "{\"op\":\"unsubscribe\",\"region_id\":\"r_0_0\"}");
	assert_string_equal(json_string_value(json_object_get(j, "type")), "unsubscribed");
	json_decref(j);
	fact("world.spawn", "r_0_0", "npc_2", 10, 10);
	assert_null(wsc_json(b, 400, NULL));
	wsc_close(a);
	wsc_close(b);
}

static void test_movement_only_within_the_area_of_interest(void **state)
{
	struct wsc *near, *blind;
	char *v;
	json_t *j;

	(void)state;
	/* A gateway that has not seen these players on the bus (a new one)
	 * takes their positions from the view (its public contract). */
	gwt_restart_gw(E, NULL);
	v = gwt_redis(E, "HSET mmo:player:%s x 2000 y 2000 z 0 region_id r_4_4", PA);
	free(v);
	v = gwt_redis(E, "DEL mmo:player:%s", PB);
	free(v);
	near = gwt_ws(E, TA);  /* at (2000, 2000), radius 100 */
	blind = gwt_ws(E, TB); /* position unknown: no filter */
	subscribe(near, "r_4_4");
	subscribe(blind, "r_4_4");
	fact("world.update", "r_4_4", "mover_far", 2400, 2000);
	fact("world.update", "r_4_4", "mover_near", 2050, 2030);
	j = wait_type(near, "world.update", 3000);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "entity_id")), "mover_near");
	json_decref(j);
	j = wait_type(blind, "world.update", 3000);
	assert_string_equal(json_string_value(json_object_get(j, "entity_id")), "mover_far");
	json_decref(j);
	j = wait_type(blind, "world.update", 3000);
	assert_string_equal(json_string_value(json_object_get(j, "entity_id")), "mover_near");
	json_decref(j);
	/* Not movement: to every subscriber of the region. */
	fact("world.despawn", "r_4_4", "mover_far", 0, 0);
	j = wait_type(near, "world.despawn", 3000);
	assert_non_null(j);
	json_decref(j);
	j = wait_type(blind, "world.despawn", 3000);
	assert_non_null(j);
	json_decref(j);
	assert_null(wsc_json(near, 200, NULL));
	wsc_close(near);
	wsc_close(blind);
}

static void test_bad_messages_get_error_frames_and_the_socket_stays_open(void **state)
{
	struct wsc *w = gwt_ws(E, TA);
	char *deep = malloc(3001);
	json_t *j;

	(void)state;
	assert_error_frame(w, "not json", 8, 1, true, "bad_message");
	assert_error_frame(w, "[]", 2, 1, true, "bad_message");
	assert_error_frame(w, "{\"op\":\"dance\"}", 14, 1, true, "bad_op");
	assert_error_frame(w, "{\"op\":\"subscribe\"}", 18, 1, true, "bad_id");
	assert_error_frame(w, "{\"op\":\"subscribe\",\"region_id\":\"bad id\"}", 39, 1, true,
	                   "bad_id");
	assert_error_frame(w, "{\"op\":\"subscribe\",\"region_id\":\"r\",\"$x\":1}", 41, 1, true,
	                   "unknown_field");
	assert_error_frame(w, "{\"op\":\"unsubscribe\",\"region_id\":\"r_none\"}", 41, 1, true,
	                   "not_subscribed");
	assert_error_frame(w, "\x01\x02\x03", 3, 2, true, "bad_message");
	assert_error_frame(w, "{\"op\":", 6, 1, false, "bad_message");
	memset(deep, '[', 1500);
	memset(deep + 1500, ']', 1500);
	assert_error_frame(w, deep, 3000, 1, true, "bad_message");
	free(deep);
	/* Invalid UTF-8 and control characters. */
	assert_error_frame(w, "{\"op\":\"\xff\"}", 10, 1, true, "bad_message");
	/* Still open and serving. */
	subscribe(w, "r_ok");
	j = ask(w, "{\"op\":\"subscribe\",\"region_id\":\"r_ok\"}");
	assert_string_equal(json_string_value(json_object_get(j, "type")), "subscribed");
	json_decref(j);
	wsc_close(w);
}

static void small_queues(struct gw_opts *o)
{
	o->ws_queue_max = 128;
	o->ws_slow_ms = 300;
}

/* Append n stats.update events (about 300 bytes of JSON each) to region. */
static void flood(evlog_client *c, const char *region, unsigned n)
{
	static uint8_t buf[200][1024];
	struct evlog_in in[200];
	uint64_t seqs[200];
	int errs[200];
	char name[220], eids[200][24];

	assert_true(n <= 200);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	for (unsigned i = 0; i < n; i++) {
		struct mmo_ev b;
		size_t len;

		snprintf(eids[i], sizeof(eids[i]), "f:%u", ++eid_no);
		mmo_ev_init(&b, "stats.update", eids[i], NULL, region);
		b.body.stats_update.name = name;
		b.body.stats_update.value = i;
		assert_int_equal(mmo_event_encode(&b.ev, buf[i], sizeof(buf[i]), &len), MMO_OK);
		in[i].buf = buf[i];
		in[i].len = len;
		in[i].priority = 0;
	}
	assert_int_equal(evlog_client_append(c, in, n, seqs, errs), MMO_OK);
}

/* Read what the fast client has, without waiting long. */
static size_t drain(struct wsc *w, bool *marker)
{
	size_t n = 0;
	json_t *j;

	while ((j = wsc_json(w, 2, NULL)) != NULL) {
		if (!strcmp(json_string_value(json_object_get(j, "type")) ?: "", "combat.result"))
			*marker = true;
		json_decref(j);
		n++;
	}
	return n;
}

static bool slow_closed(void)
{
	struct resp r;
	bool closed;

	assert_int_equal(gwt_get(E, "/metrics", NULL, &r), 200);
	closed = strstr(r.body, "mmo_gw_ws_disconnects_total{reason=\"slow_consumer\"} 1\n");
	resp_free(&r);
	return closed;
}

static void test_slow_consumer_is_closed_1008_and_others_keep_up(void **state)
{
	struct wsc *slow = NULL, *fast;
	evlog_client *c;
	struct resp r;
	char h[4200];
	int code = 0, got = 0;
	bool marker = false, closed = false;
	size_t fast_got = 0, sent = 0;
	int64_t t0;

	(void)state;
	gwt_restart_gw(E, small_queues);
	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", TB);
	assert_int_equal(wsc_open(E, NULL, h, 2048, &slow, &r), 101);
	fast = gwt_ws(E, TA);
	subscribe(slow, "r_flood");
	subscribe(fast, "r_flood");
	assert_int_equal(evlog_client_open(E->zctx, E->ingest, 10000, &c), MMO_OK);
	/* A steady stream the fast client reads as it comes; the slow client
	 * reads nothing, so once the kernel's buffers are full its queue stays
	 * full and it is closed. */
	t0 = mmo_mono_us();
	while (!closed && sent < 60000 && mmo_mono_us() - t0 < 60000000) {
		flood(c, "r_flood", 100);
		sent += 100;
		fast_got += drain(fast, &marker);
		if (sent % 2000 == 0)
			closed = slow_closed();
	}
	evlog_client_close(c);
	assert_true(closed);
	/* A high-priority event last: never dropped for a client that keeps up. */
	{
		struct mmo_ev b;

		mmo_ev_init(&b, "combat.result", "f:marker", PA, "r_flood");
		b.body.combat_result.attacker_id = PA;
		b.body.combat_result.defender_id = PB;
		b.body.combat_result.result = "miss";
		gwt_append(E, &b);
	}
	for (int i = 0; i < 200 && !marker; i++)
		fast_got += drain(fast, &marker);
	assert_true(marker);
	/* The fast one got (nearly) everything: drops only in bursts. */
	if (fast_got < sent * 9 / 10)
		fail_msg("fast client got %zu of %zu", fast_got, sent);
	/* The slow one: whatever was buffered, then a close frame 1008. */
	for (int i = 0; i < 200000 && !code; i++) {
		json_t *j = wsc_json(slow, 5000, &code);

		if (!j)
			break;
		got++;
		json_decref(j);
	}
	if (code != 1008)
		fail_msg("slow client: %d messages, close %d", got, code);
	assert_int_equal(gwt_get(E, "/metrics", NULL, &r), 200);
	assert_null(strstr(r.body, "mmo_gw_ws_messages_dropped_total 0\n"));
	resp_free(&r);
	wsc_close(slow);
	wsc_close(fast);
}

static void no_periodic_checks(struct gw_opts *o)
{
	o->session_check_ms = 600000;
}

/* A session deleted elsewhere (another gateway's logout, an operator) closes
 * the socket through its keyspace notification, not the periodic check
 * (here every 10 minutes). */
static void test_a_session_deleted_elsewhere_closes_the_socket_at_once(void **state)
{
	struct wsc *w;
	char pid[80], *tok, *jti, *v;
	int code = 0;
	int64_t t0;

	(void)state;
	gwt_restart_gw(E, no_periodic_checks);
	for (int i = 0; i < 200; i++) { /* the subscription is up */
		struct resp r;
		bool live;

		assert_int_equal(gwt_get(E, "/metrics", NULL, &r), 200);
		live = strstr(r.body, "\nmmo_gw_session_cache_live 1\n") != NULL;
		resp_free(&r);
		if (live)
			break;
		gwt_sleep_ms(10);
	}
	gwt_user(E, "elsewhere", "elsewhere pass", pid, &tok);
	w = gwt_ws(E, tok);
	subscribe(w, "r_x");
	jti = gwt_jti_of(tok);
	t0 = mmo_mono_us();
	v = gwt_redis(E, "DEL mmo:session:%s", jti);
	free(v);
	assert_null(wsc_json(w, 3000, &code));
	assert_int_equal(code, 1008);
	assert_true(mmo_mono_us() - t0 < 1000000);
	wsc_close(w);
	free(jti);
	free(tok);
	gwt_restart_gw(E, NULL);
}

static void test_revoked_session_closes_the_socket(void **state)
{
	struct wsc *w;
	struct resp r;
	char pid[80], *tok, *jti, *v;
	int code = 0;

	(void)state;
	/* Logout: at once. */
	gwt_user(E, "leaver", "leaver pass", pid, &tok);
	w = gwt_ws(E, tok);
	subscribe(w, "r_x");
	assert_int_equal(gwt_post(E, "/api/auth/logout", tok, NULL, &r), 204);
	resp_free(&r);
	assert_null(wsc_json(w, 3000, &code));
	assert_int_equal(code, 1008);
	wsc_close(w);
	free(tok);
	/* The session removed behind the gateway's back: at the next check. */
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL,
	                          "{\"username\":\"leaver\",\"password\":\"leaver pass\"}", &r),
	                 200);
	tok = strdup(json_string_value(json_object_get(r.json, "token")));
	resp_free(&r);
	w = gwt_ws(E, tok);
	subscribe(w, "r_x");
	jti = gwt_jti_of(tok);
	v = gwt_redis(E, "DEL mmo:session:%s", jti);
	free(v);
	code = 0;
	assert_null(wsc_json(w, 3000, &code));
	assert_int_equal(code, 1008);
	wsc_close(w);
	free(jti);
	free(tok);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_upgrade_needs_a_live_session),
	    cmocka_unit_test(test_subscribers_get_their_region_and_not_others),
	    cmocka_unit_test(test_movement_only_within_the_area_of_interest),
	    cmocka_unit_test(test_bad_messages_get_error_frames_and_the_socket_stays_open),
	    cmocka_unit_test(test_revoked_session_closes_the_socket),
	    cmocka_unit_test(test_a_session_deleted_elsewhere_closes_the_socket_at_once),
	    cmocka_unit_test(test_slow_consumer_is_closed_1008_and_others_keep_up),
	};

	return cmocka_run_group_tests_name("gateway_ws", tests, setup, teardown);
}
