/* test_rest.c - the hot REST routes on the event loop (gateway/rest.c):
 * plain moves and attacks are served by the loop, anything unusual and
 * every other route is relayed to civetweb, on the same keep-alive
 * connection, in order, with the same answers; sessions the cache does not
 * know are checked off the loop; partial and idle connections are timed
 * out. Counted with mmo_gw_rest_on_loop_total. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>

#include "gwtest.h"
#include "schemas/mmo_util.h"

static struct gwt *E;
static char PA[80], *TA;

static void tweak(struct gw_opts *o)
{
	o->head_timeout_ms = 700;
}

static int setup(void **state)
{
	(void)state;
	E = gwt_start(tweak);
	gwt_user(E, "rester", "rester pass", PA, &TA);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(TA);
	gwt_stop(E);
	return 0;
}

/* ---------------------------------------------------------------- a keep-alive client */

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s);

	assert_int_equal(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Bytes read so far on the connection and not yet parsed. */
static char PEND[1 << 16];
static size_t NPEND;

/* Read more within ms: false on EOF or timeout. */
static bool fill(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	ssize_t n;

	if (poll(&p, 1, ms) <= 0)
		return false;
	n = recv(fd, PEND + NPEND, sizeof(PEND) - NPEND - 1, 0);
	if (n <= 0)
		return false;
	NPEND += (size_t)n;
	PEND[NPEND] = 0;
	return true;
}

/* One response from fd (Content-Length framed): its status, headers and
 * JSON body into r. Fails the test on timeout. */
static int next_resp(int fd, struct resp *r)
{
	char *end, *cl;
	size_t hlen, blen, total;

	memset(r, 0, sizeof(*r));
	while (!(end = strstr(PEND, "\r\n\r\n")))
		if (!fill(fd, 5000))
			fail_msg("no response head (have %zu bytes)", NPEND);
	hlen = (size_t)(end + 4 - PEND);
	cl = strcasestr(PEND, "\r\nContent-Length:");
	assert_non_null(cl);
	assert_true(cl < end);
	blen = strtoul(cl + 17, NULL, 10);
	total = hlen + blen;
	while (NPEND < total)
		if (!fill(fd, 5000))
			fail_msg("a short body");
	r->status = atoi(PEND + 9);
	/* One block, as gwtest's parse() makes it (resp_free frees headers). */
	r->headers = strndup(PEND, total);
	r->headers[hlen - 2] = 0;
	r->body = r->headers + hlen;
	r->body_len = blen;
	r->json = json_loads(r->body, 0, NULL);
	memmove(PEND, PEND + total, NPEND - total);
	NPEND -= total;
	PEND[NPEND] = 0;
	return r->status;
}

static int conn_open(void)
{
	int fd = gwt_connect(E);

	assert_true(fd >= 0);
	NPEND = 0;
	PEND[0] = 0;
	return fd;
}

/* A request text: POST path with tok (may be NULL), ctype and body; extra
 * header lines (each ending in \r\n) or "". */
static char *post(const char *path, const char *tok, const char *ctype, const char *extra,
                  const char *body)
{
	char *s = NULL;

	assert_true(asprintf(&s,
	                     "POST %s HTTP/1.1\r\nHost: t\r\n%s%s%s%sContent-Type: %s\r\n"
	                     "Content-Length: %zu\r\n%s\r\n%s",
	                     path, tok ? "Authorization: Bearer " : "", tok ? tok : "",
	                     tok ? "\r\n" : "", "", ctype, strlen(body), extra, body) > 0);
	return s;
}

static const char ATTACK_NOBODY[] = "{\"defender_id\":\"p_nobody\",\"skill_id\":\"slash\"}";

static char *attack_nobody(const char *tok)
{
	return post("/api/combat/attack", tok, "application/json", "", ATTACK_NOBODY);
}

static long long metric(const char *name)
{
	return gwt_metric(E, name);
}

#define ON_LOOP() metric("mmo_gw_rest_on_loop_total")

/* ---------------------------------------------------------------- tests */

/* A refused attack (no such defender) answered by the loop: the world's
 * 422 with its reason, the intent's seq and event_id. */
static void assert_unknown_target(struct resp *r)
{
	gwt_assert_error(r, 422, "unknown_target", NULL);
	assert_string_equal(json_string_value(json_object_get(r->json, "reason")),
	                    "unknown_target");
	assert_true(json_integer_value(json_object_get(r->json, "seq")) > 0);
	assert_true(
	    !strncmp(json_string_value(json_object_get(r->json, "event_id")) ?: "", "gw:", 3));
}

static void test_keepalive_intents_on_the_loop_then_a_get_is_relayed(void **state)
{
	long long before = ON_LOOP();
	int fd = conn_open();
	struct resp r;
	char *req = attack_nobody(TA), get[2048];

	(void)state;
	/* Two intents on one connection: both answered by the loop. */
	for (int i = 0; i < 2; i++) {
		send_str(fd, req);
		next_resp(fd, &r);
		assert_unknown_target(&r);
		assert_non_null(strcasestr(r.headers, "Cache-Control: no-store"));
		assert_null(strcasestr(r.headers, "Connection: close"));
		resp_free(&r);
	}
	assert_int_equal(ON_LOOP(), before + 2);
	/* Another route on the same connection goes to civetweb... */
	snprintf(get, sizeof(get),
	         "GET /api/players/%s HTTP/1.1\r\nHost: t\r\n"
	         "Authorization: Bearer %s\r\n\r\n",
	         PA, TA);
	send_str(fd, get);
	assert_int_equal(next_resp(fd, &r), 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "player_id")), PA);
	resp_free(&r);
	/* ... and so does the rest of that connection, with the same answer. */
	send_str(fd, req);
	next_resp(fd, &r);
	assert_unknown_target(&r);
	resp_free(&r);
	assert_int_equal(ON_LOOP(), before + 2);
	close(fd);
	free(req);
}

static void test_pipelined_requests_are_answered_in_order(void **state)
{
	long long before = ON_LOOP();
	char *a = post("/api/combat/attack", TA, "application/json", "", "{\"defender_id\":");
	char *b = post("/api/combat/attack", TA, "text/plain", "", ATTACK_NOBODY);
	char *c = post("/api/combat/attack", NULL, "application/json", "", ATTACK_NOBODY);
	char *d = post("/api/combat/attack", TA, "application/json", "",
	               "{\"defender_id\":\"p_nobody\",\"skill_id\":\"slash\",\"x\":1}");
	char *e = attack_nobody(TA), *all = NULL;
	int fd = conn_open();
	struct resp r;

	(void)state;
	assert_true(asprintf(&all, "%s%s%s%s%s", a, b, c, d, e) > 0);
	send_str(fd, all); /* five requests in one write */
	next_resp(fd, &r);
	gwt_assert_error(&r, 400, "bad_json", NULL);
	resp_free(&r);
	next_resp(fd, &r);
	gwt_assert_error(&r, 415, "unsupported_media_type", NULL);
	resp_free(&r);
	next_resp(fd, &r);
	gwt_assert_error(&r, 401, "unauthorized", NULL);
	assert_non_null(strcasestr(r.headers, "WWW-Authenticate: Bearer"));
	resp_free(&r);
	next_resp(fd, &r);
	gwt_assert_error(&r, 400, "unknown_field", "x");
	resp_free(&r);
	next_resp(fd, &r);
	assert_unknown_target(&r);
	resp_free(&r);
	assert_int_equal(ON_LOOP(), before + 5);
	close(fd);
	free(all);
	free(a);
	free(b);
	free(c);
	free(d);
	free(e);
}

static void test_a_body_in_pieces_is_waited_for(void **state)
{
	char *req = attack_nobody(TA);
	char *body = strstr(req, "\r\n\r\n") + 4;
	int fd = conn_open();
	struct resp r;

	(void)state;
	assert_int_equal(send(fd, req, (size_t)(body - req) + 5, MSG_NOSIGNAL),
	                 (ssize_t)(body - req) + 5);
	gwt_sleep_ms(200);
	assert_false(fill(fd, 0)); /* nothing answered before the body is whole */
	send_str(fd, body + 5);
	next_resp(fd, &r);
	assert_unknown_target(&r);
	resp_free(&r);
	close(fd);
	free(req);
}

/* What the loop does not take is civetweb's: the same answers as before. */
static void test_unusual_requests_are_relayed_to_civetweb(void **state)
{
	long long before = ON_LOOP();
	char big[20000 + 1], *req;
	struct resp r;
	int fd;

	(void)state;
	/* A chunked body: civetweb decodes it, the intent is the same. */
	fd = conn_open();
	assert_true(asprintf(&req,
	                     "POST /api/combat/attack HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
	                     "%s\r\nContent-Type: application/json\r\nTransfer-Encoding: "
	                     "chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
	                     TA, strlen(ATTACK_NOBODY), ATTACK_NOBODY) > 0);
	send_str(fd, req);
	next_resp(fd, &r);
	assert_unknown_target(&r);
	resp_free(&r);
	free(req);
	close(fd);
	/* A body over 16 KiB: civetweb's 413. */
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	big[0] = '{';
	big[sizeof(big) - 2] = '}';
	req = post("/api/combat/attack", TA, "application/json", "", big);
	assert_int_equal(gwt_raw(E, req, strlen(req), &r), 413);
	gwt_assert_error(&r, 413, "too_large", NULL);
	resp_free(&r);
	free(req);
	/* A query string: not the loop's either. */
	req = post("/api/combat/attack?x=1", TA, "application/json", "Connection: close\r\n",
	           ATTACK_NOBODY);
	assert_int_equal(gwt_raw(E, req, strlen(req), &r), 422);
	resp_free(&r);
	free(req);
	assert_int_equal(ON_LOOP(), before);
}

static void test_an_unknown_session_is_checked_with_redis_then_cached(void **state)
{
	char pid[80], *tok, *req, *jti, *v;
	long long hits, misses;
	struct resp r;
	int fd;

	(void)state;
	gwt_user(E, "rester2", "rester2 pass", pid, &tok);
	req = attack_nobody(tok);
	hits = metric("mmo_gw_session_checks_total{source=\"cache\"}");
	misses = metric("mmo_gw_session_checks_total{source=\"redis\"}");
	fd = conn_open();
	for (int i = 0; i < 3; i++) {
		send_str(fd, req);
		next_resp(fd, &r);
		assert_unknown_target(&r);
		resp_free(&r);
	}
	/* The first check missed the cache (Redis, on the worker pool: one
	 * miss there, one on the loop), the next two hit it. */
	assert_int_equal(metric("mmo_gw_session_checks_total{source=\"cache\"}"), hits + 2);
	assert_int_equal(metric("mmo_gw_session_checks_total{source=\"redis\"}"), misses + 2);
	/* Revoked behind the gateway's back: refused on the loop at once. */
	jti = gwt_jti_of(tok);
	v = gwt_redis(E, "DEL mmo:session:%s", jti);
	free(v);
	for (int i = 0; i < 100; i++) {
		send_str(fd, req);
		next_resp(fd, &r);
		if (r.status == 401)
			break;
		resp_free(&r);
		gwt_sleep_ms(5);
	}
	gwt_assert_error(&r, 401, "session_revoked", NULL);
	resp_free(&r);
	close(fd);
	free(jti);
	free(req);
	free(tok);
}

/* Many requests behind one being served: reading goes on past the
 * read-ahead bound, pauses, and every request is answered, in order. */
static void test_a_long_pipeline_is_answered_in_order(void **state)
{
	long long before = ON_LOOP();
	char *one = attack_nobody(TA), *all;
	size_t n1 = strlen(one), nreq = 300;
	int fd = conn_open();
	struct resp r;

	(void)state;
	all = malloc(n1 * nreq + 1);
	for (size_t i = 0; i < nreq; i++)
		memcpy(all + i * n1, one, n1);
	all[n1 * nreq] = 0;
	assert_true(n1 * nreq > 65536);
	send_str(fd, all);
	for (size_t i = 0; i < nreq; i++) {
		next_resp(fd, &r);
		assert_unknown_target(&r);
		resp_free(&r);
	}
	assert_int_equal(ON_LOOP(), before + (long long)nreq);
	close(fd);
	free(all);
	free(one);
}

/* A client that half-closes after its request still gets the answer. */
static void test_a_half_closed_client_gets_its_answer(void **state)
{
	long long before = ON_LOOP();
	char *req = attack_nobody(TA);
	struct resp r;

	(void)state;
	assert_int_equal(gwt_raw(E, req, strlen(req), &r), 422);
	gwt_assert_error(&r, 422, "unknown_target", NULL);
	resp_free(&r);
	assert_int_equal(ON_LOOP(), before + 1);
	free(req);
}

/* A token verified once is remembered by the loop, but its expiry is still
 * checked on every use. */
static void test_a_remembered_token_still_expires(void **state)
{
	static const char jti[] = "feedfacefeedfacefeedfacefeedface";
	long now = (long)time(NULL), exp = now + 2;
	jwt_t *j = NULL;
	char *tok, *req, *v;
	struct resp r;
	int fd;

	(void)state;
	assert_int_equal(jwt_new(&j), 0);
	assert_int_equal(
	    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)GWT_KEY, (int)strlen(GWT_KEY)), 0);
	jwt_add_grant(j, "sub", PA);
	jwt_add_grant(j, "role", "player");
	jwt_add_grant_int(j, "iat", now);
	jwt_add_grant_int(j, "exp", exp);
	jwt_add_grant(j, "jti", jti);
	tok = jwt_encode_str(j);
	jwt_free(j);
	v = gwt_redis(E, "SET mmo:session:%s %s EX 60", jti, PA);
	free(v);
	req = attack_nobody(tok);
	fd = conn_open();
	send_str(fd, req);
	next_resp(fd, &r);
	assert_unknown_target(&r);
	resp_free(&r);
	close(fd);
	while ((long)time(NULL) < exp)
		gwt_sleep_ms(50);
	fd = conn_open(); /* the idle one was closed after head_timeout_ms */
	send_str(fd, req);
	next_resp(fd, &r);
	gwt_assert_error(&r, 401, "token_expired", NULL);
	resp_free(&r);
	close(fd);
	free(req);
	free(tok);
}

static void test_partial_and_idle_connections_are_timed_out(void **state)
{
	char *req = attack_nobody(TA);
	char *body = strstr(req, "\r\n\r\n") + 4;
	struct resp r;
	int fd;

	(void)state;
	/* A body that never comes whole: 408 within the head timeout. */
	fd = conn_open();
	send(fd, req, (size_t)(body - req) + 3, MSG_NOSIGNAL);
	assert_int_equal(next_resp(fd, &r), 408);
	gwt_assert_error(&r, 408, "request_timeout", NULL);
	resp_free(&r);
	close(fd);
	/* An idle keep-alive connection after an answer: closed, no 408. */
	fd = conn_open();
	send_str(fd, req);
	next_resp(fd, &r);
	assert_unknown_target(&r);
	resp_free(&r);
	{
		int64_t t0 = mmo_mono_us();

		while (fill(fd, 3000))
			;
		assert_int_equal(NPEND, 0);
		assert_true(mmo_mono_us() - t0 < 2500000);
	}
	close(fd);
	free(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keepalive_intents_on_the_loop_then_a_get_is_relayed),
	    cmocka_unit_test(test_pipelined_requests_are_answered_in_order),
	    cmocka_unit_test(test_a_body_in_pieces_is_waited_for),
	    cmocka_unit_test(test_unusual_requests_are_relayed_to_civetweb),
	    cmocka_unit_test(test_an_unknown_session_is_checked_with_redis_then_cached),
	    cmocka_unit_test(test_a_long_pipeline_is_answered_in_order),
	    cmocka_unit_test(test_a_half_closed_client_gets_its_answer),
	    cmocka_unit_test(test_a_remembered_token_still_expires),
	    cmocka_unit_test(test_partial_and_idle_connections_are_timed_out),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
