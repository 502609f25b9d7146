/* test_rt.c - the real-time tier against a real server: game actions over
 * the WebSocket (ack/error with the REST body and codes), hostile frames
 * and their exact close codes, floods of peers that never finish a request
 * head or an upgrade while an authenticated player keeps being answered. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gwtest.h"
#include "schemas/mmo_util.h"

static struct gwt *E;
static char PA[80], PB[80], *TA, *TB, SPAWN_REGION[32];

static void tweak(struct gw_opts *o)
{
	o->head_timeout_ms = 700;
	o->conns_per_addr = 5000; /* the flood below comes from one address */
}

static void cap50(struct gw_opts *o)
{
	tweak(o);
	o->conns_per_addr = 50;
}

static int setup(void **state)
{
	const struct world_rules *wr = world_rules();

	(void)state;
	/* The flood test holds 2,000 sockets on each side, in one process. */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 8192) {
			rl.rlim_cur = rl.rlim_max < 8192 ? rl.rlim_max : 8192;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	E = gwt_start(tweak);
	gwt_user(E, "mover", "mover pass", PA, &TA);
	gwt_user(E, "target", "target pass", PB, &TB);
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

/* The next message whose ref is ref (skipping events); NULL on timeout. */
static json_t *answer(struct wsc *w, const char *ref, int timeout_ms)
{
	int64_t end = mmo_mono_us() + (int64_t)timeout_ms * 1000;

	while (mmo_mono_us() < end) {
		json_t *j = wsc_json(w, (int)((end - mmo_mono_us()) / 1000) + 1, NULL);

		if (!j)
			return NULL;
		if (!strcmp(json_string_value(json_object_get(j, "ref")) ?: "", ref))
			return j;
		json_decref(j);
	}
	return NULL;
}

static json_t *send_op(struct wsc *w, const char *msg, const char *ref)
{
	json_t *j;

	assert_int_equal(wsc_send(w, 1, msg, strlen(msg), true), 0);
	j = answer(w, ref, 5000);
	if (!j)
		fail_msg("no answer to %s", msg);
	return j;
}

static const char *str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k)) ?: "";
}

/* ---------------------------------------------------------------- game actions */

static void test_move_over_the_socket_is_acked_with_the_rest_body(void **state)
{
	const struct world_rules *wr = world_rules();
	struct wsc *w = gwt_ws(E, TA);
	char msg[256];
	json_t *j, *pos;
	struct world_logged l;

	(void)state;
	gwt_sleep_ms(300); /* moves are speed-bound since the login */
	snprintf(msg, sizeof(msg), "{\"op\":\"move\",\"x\":%g,\"y\":%g,\"z\":%g,\"ref\":\"m1\"}",
	         wr->spawn.x + 0.25, wr->spawn.y, wr->spawn.z);
	j = send_op(w, msg, "m1");
	assert_string_equal(str(j, "type"), "ack");
	assert_true(json_integer_value(json_object_get(j, "seq")) > 0);
	assert_true(str(j, "event_id")[0] != 0);
	assert_string_equal(str(j, "region_id"), SPAWN_REGION);
	pos = json_object_get(j, "position");
	assert_true(json_number_value(json_object_get(pos, "x")) == wr->spawn.x + 0.25);
	/* The ack came at the world's decision; the log then holds the same. */
	for (int i = 0;; i++) {
		uint64_t seq = (uint64_t)json_integer_value(json_object_get(j, "seq"));

		assert_int_equal(world_logged_get(E->log, seq, &l), MMO_OK);
		if (l.n || i == 1000)
			break;
		world_logged_free(&l);
		gwt_sleep_ms(10);
	}
	assert_int_equal(l.n, 1);
	assert_string_equal(l.ev[0]->event_id, str(j, "outcome_event_id"));
	assert_true(l.ev[0]->world_update->position->x == wr->spawn.x + 0.25);
	world_logged_free(&l);
	json_decref(j);
	wsc_close(w);
}

static void test_refused_and_malformed_actions_get_the_rest_codes(void **state)
{
	const struct world_rules *wr = world_rules();
	struct wsc *w = gwt_ws(E, TA);
	char msg[256];
	json_t *j;

	(void)state;
	/* The rules refuse: REST's 422 code. */
	snprintf(msg, sizeof(msg), "{\"op\":\"move\",\"x\":%g,\"y\":%g,\"z\":0,\"ref\":\"far\"}",
	         wr->spawn.x + 5000, wr->spawn.y);
	j = send_op(w, msg, "far");
	assert_string_equal(str(j, "type"), "error");
	assert_string_equal(str(j, "code"), "too_fast");
	assert_int_equal(json_integer_value(json_object_get(j, "status")), 422);
	assert_true(json_integer_value(json_object_get(j, "seq")) > 0);
	json_decref(j);
	/* The schema refuses: REST's 400 codes, nothing appended. */
	j = send_op(w, "{\"op\":\"move\",\"x\":1e9,\"y\":0,\"z\":0,\"ref\":\"big\"}", "big");
	assert_string_equal(str(j, "code"), "out_of_range");
	json_decref(j);
	j = send_op(w, "{\"op\":\"move\",\"x\":1,\"y\":0,\"ref\":\"noz\"}", "noz");
	assert_string_equal(str(j, "code"), "missing_field");
	json_decref(j);
	j = send_op(w, "{\"op\":\"move\",\"x\":\"1\",\"y\":0,\"z\":0,\"ref\":\"str\"}", "str");
	assert_string_equal(str(j, "code"), "wrong_type");
	json_decref(j);
	j = send_op(w,
	            "{\"op\":\"attack\",\"defender_id\":\"p_nobody\",\"skill_id\":\"punch\","
	            "\"ref\":\"a1\"}",
	            "a1");
	assert_string_equal(str(j, "code"), "unknown_target");
	json_decref(j);
	j = send_op(w,
	            "{\"op\":\"attack\",\"defender_id\":\"bad id\",\"skill_id\":\"punch\","
	            "\"ref\":\"a2\"}",
	            "a2");
	assert_string_equal(str(j, "code"), "bad_id");
	json_decref(j);
	/* An action needs a ref to be matched with its answer. */
	assert_int_equal(wsc_send(w, 1, "{\"op\":\"move\",\"x\":1,\"y\":1,\"z\":1}", 31, true), 0);
	j = wsc_json(w, 3000, NULL);
	assert_non_null(j);
	assert_string_equal(str(j, "code"), "missing_field");
	json_decref(j);
	j = send_op(w, "{\"op\":\"move\",\"ref\":\"bad ref\"}", "");
	assert_string_equal(str(j, "code"), "bad_ref");
	json_decref(j);
	wsc_close(w);
}

static void test_a_flood_of_messages_is_rate_limited_and_the_socket_stays(void **state)
{
	struct wsc *w = gwt_ws(E, TB);
	int limited = 0, other = 0;
	json_t *j;

	(void)state;
	for (int i = 0; i < 200; i++) {
		const char *m = "{\"op\":\"unsubscribe\",\"region_id\":\"r_none\"}";

		assert_int_equal(wsc_send(w, 1, m, strlen(m), true), 0);
	}
	while ((j = wsc_json(w, 1000, NULL))) {
		if (!strcmp(str(j, "code"), "rate_limited"))
			limited++;
		else if (!strcmp(str(j, "code"), "not_subscribed"))
			other++;
		json_decref(j);
	}
	/* A burst of 40 allowed, the rest refused, every message answered. */
	assert_int_equal(limited + other, 200);
	assert_true(other >= 40 && other < 60);
	gwt_sleep_ms(1100);
	j = send_op(w, "{\"op\":\"subscribe\",\"region_id\":\"r_ok\",\"ref\":\"s\"}", "s");
	assert_string_equal(str(j, "type"), "subscribed");
	json_decref(j);
	wsc_close(w);
}

/* ---------------------------------------------------------------- frames */

static int close_code_of(struct wsc *w)
{
	int code = -1;
	int64_t end = mmo_mono_us() + 3000000;

	while (mmo_mono_us() < end) {
		json_t *j = wsc_json(w, 3000, &code);

		if (!j)
			break;
		json_decref(j);
	}
	return code;
}

static void test_hostile_frames_get_their_close_codes(void **state)
{
	struct wsc *w;
	char *data;
	size_t len;
	json_t *j;

	(void)state;
	/* Unmasked client frame: 1002. */
	w = gwt_ws(E, TB);
	assert_int_equal(send(w->fd, "\x81\x02{}", 4, MSG_NOSIGNAL), 4);
	assert_int_equal(close_code_of(w), 1002);
	wsc_close(w);
	/* Reserved bits: 1002. */
	w = gwt_ws(E, TB);
	assert_int_equal(send(w->fd, "\xC1\x80\x00\x00\x00\x00", 6, MSG_NOSIGNAL), 6);
	assert_int_equal(close_code_of(w), 1002);
	wsc_close(w);
	/* A 1 MiB + 1 frame is refused from its header alone: 1009. */
	w = gwt_ws(E, TB);
	{
		const uint8_t hdr[] = {0x81, 0xFF, 0, 0, 0, 0, 0, 0x10, 0, 1, 1, 2, 3, 4};

		assert_int_equal(send(w->fd, hdr, sizeof(hdr), MSG_NOSIGNAL), (ssize_t)sizeof(hdr));
	}
	assert_int_equal(close_code_of(w), 1009);
	wsc_close(w);
	/* Over 4 KiB but under 1 MiB: skipped with an error, the socket stays. */
	w = gwt_ws(E, TB);
	data = malloc(100000);
	memset(data, 'a', 100000);
	assert_int_equal(wsc_send(w, 1, data, 100000, true), 0);
	free(data);
	j = wsc_json(w, 3000, NULL);
	assert_non_null(j);
	assert_string_equal(str(j, "code"), "too_large");
	json_decref(j);
	/* A ping is answered with its payload. */
	assert_int_equal(wsc_send(w, 9, "hi", 2, true), 0);
	assert_int_equal(wsc_recv(w, 3000, &data, &len), 10);
	assert_int_equal(len, 2);
	assert_memory_equal(data, "hi", 2);
	free(data);
	j = send_op(w, "{\"op\":\"subscribe\",\"region_id\":\"r_x\",\"ref\":\"still\"}", "still");
	assert_string_equal(str(j, "type"), "subscribed");
	json_decref(j);
	/* A close frame is answered with the same code. */
	assert_int_equal(wsc_send(w, 8, "\x03\xe8", 2, true), 0);
	assert_int_equal(close_code_of(w), 1000);
	wsc_close(w);
}

/* ---------------------------------------------------------------- floods */

static int64_t timed_get(const char *path, const char *tok, int want)
{
	struct resp r;
	int64_t t0 = mmo_mono_us();

	if (gwt_get(E, path, tok, &r) != want)
		fail_msg("GET %s: %d", path, r.status);
	resp_free(&r);
	return mmo_mono_us() - t0;
}

static void test_peers_that_never_finish_hold_nothing(void **state)
{
	enum { HALF = 1500, UPG = 500 };
	int *fd = malloc((HALF + UPG) * sizeof(*fd));
	char path[128], buf[256];
	int64_t worst = 0;
	int timed_out = 0;

	(void)state;
	snprintf(path, sizeof(path), "/api/players/%s", PA);
	/* Slowloris: half a request line each, then nothing. */
	for (int i = 0; i < HALF; i++) {
		fd[i] = gwt_connect(E);
		assert_true(fd[i] >= 0);
		assert_true(send(fd[i], "GET /api/players/x HTTP/1.1\r\nHost: a\r\n", 38,
		                 MSG_NOSIGNAL) == 38);
	}
	/* Upgrades that never send their last header line. */
	for (int i = HALF; i < HALF + UPG; i++) {
		fd[i] = gwt_connect(E);
		assert_true(fd[i] >= 0);
		snprintf(
		    buf, sizeof(buf),
		    "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
		assert_true(send(fd[i], buf, strlen(buf), MSG_NOSIGNAL) > 0);
	}
	/* The player is answered meanwhile, promptly. */
	for (int i = 0; i < 20; i++) {
		int64_t us = timed_get(path, TA, 200);

		if (us > worst)
			worst = us;
	}
	assert_true(worst < 1000000);
	/* Every one of them gets its 408 once head_timeout_ms has passed. */
	gwt_sleep_ms(1500);
	for (int i = 0; i < HALF + UPG; i++) {
		struct pollfd p = {fd[i], POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 2000) == 1 && (n = recv(fd[i], buf, sizeof(buf) - 1, 0)) > 12) {
			buf[n] = 0;
			if (!strncmp(buf, "HTTP/1.1 408", 12))
				timed_out++;
		}
		close(fd[i]);
	}
	assert_int_equal(timed_out, HALF + UPG);
	free(fd);
	timed_get(path, TA, 200);
}

/* A connection to the gateway from source address 127.0.0.src. */
static int dial_from(int src)
{
	int fd = gwt_dial_from(E->port, src);

	assert_true(fd >= 0);
	return fd;
}

/* One address holds at most conns_per_addr connections: the ones past it
 * get 503 too_many_connections at once; other addresses are served; the
 * address gets its room back as its connections close. */
static void test_one_address_holds_at_most_its_cap(void **state)
{
	enum { CAP = 50, OVER = 10 };
	int fd[CAP + OVER], refused = 0;
	char path[128], buf[512];

	(void)state;
	gwt_restart_gw(E, cap50);
	snprintf(path, sizeof(path), "/api/players/%s", PA);
	for (int i = 0; i < CAP + OVER; i++)
		fd[i] = dial_from(2);
	/* The ones past the cap are answered at once (well before the 700 ms
	 * head timeout that would answer the others with a 408). */
	for (int i = CAP; i < CAP + OVER; i++) {
		struct pollfd p = {fd[i], POLLIN, 0};
		ssize_t n;

		if (poll(&p, 1, 300) == 1 && (n = recv(fd[i], buf, sizeof(buf) - 1, 0)) > 12) {
			buf[n] = 0;
			assert_memory_equal(buf, "HTTP/1.1 503", 12);
			assert_non_null(strstr(buf, "\"too_many_connections\""));
			assert_non_null(strstr(buf, "Retry-After: 1"));
			refused++;
		}
	}
	for (int i = 0; i < CAP; i++) { /* the first CAP are kept, silent */
		struct pollfd p = {fd[i], POLLIN, 0};

		assert_int_equal(poll(&p, 1, 0), 0);
	}
	assert_int_equal(refused, OVER);
	assert_int_equal(gwt_metric(E, "mmo_gw_connections_refused_total{reason=\"per_address\"}"),
	                 OVER);
	/* Another address (the player's 127.0.0.1) is served meanwhile. */
	timed_get(path, TA, 200);
	/* Room again once they are gone. */
	for (int i = 0; i < CAP + OVER; i++)
		close(fd[i]);
	gwt_sleep_ms(200);
	{
		static const char health[] = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
		int f = dial_from(2);
		ssize_t n;
		struct pollfd p = {f, POLLIN, 0};

		assert_true(send(f, health, sizeof(health) - 1, MSG_NOSIGNAL) ==
		            (ssize_t)sizeof(health) - 1);
		assert_int_equal(poll(&p, 1, 3000), 1);
		n = recv(f, buf, sizeof(buf) - 1, 0);
		assert_true(n > 12);
		assert_memory_equal(buf, "HTTP/1.1 200", 12);
		close(f);
	}
	gwt_restart_gw(E, tweak);
}

static void test_a_head_over_8k_is_431(void **state)
{
	int fd = gwt_connect(E);
	char *big = malloc(9000), buf[256];
	struct pollfd p = {fd, POLLIN, 0};
	ssize_t n;

	(void)state;
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	memset(big + 19, 'a', 9000 - 19);
	assert_true(send(fd, big, 9000, MSG_NOSIGNAL) == 9000);
	assert_int_equal(poll(&p, 1, 3000), 1);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 12);
	buf[n] = 0;
	assert_memory_equal(buf, "HTTP/1.1 431", 12);
	assert_non_null(strstr(buf, "headers_too_large"));
	close(fd);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_move_over_the_socket_is_acked_with_the_rest_body),
	    cmocka_unit_test(test_refused_and_malformed_actions_get_the_rest_codes),
	    cmocka_unit_test(test_a_flood_of_messages_is_rate_limited_and_the_socket_stays),
	    cmocka_unit_test(test_hostile_frames_get_their_close_codes),
	    cmocka_unit_test(test_peers_that_never_finish_hold_nothing),
	    cmocka_unit_test(test_a_head_over_8k_is_431),
	    cmocka_unit_test(test_one_address_holds_at_most_its_cap),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
