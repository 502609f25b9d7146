/* test_http.c - the gateway's REST plumbing and auth against a real server:
 * every input class gets its exact status and JSON error, tokens are
 * standard JWTs, sessions live and die in Redis, failed logins are rate
 * limited and logged (aggregated), Redis down fails closed. */
#include <arpa/inet.h>
#include <jwt.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gwtest.h"
#include "schemas/event_json.h"
#include "schemas/mmo_util.h"

static struct gwt *E;
static char P1[80], *T1;

static int setup(void **state)
{
	(void)state;
	E = gwt_start(NULL);
	gwt_user(E, "alice", "correct horse", P1, &T1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(T1);
	gwt_stop(E);
	return 0;
}

/* Events of the log matching type (exact), for player (may be NULL). */
static size_t log_events(const char *type, const char *player, json_t **last)
{
	struct evlog_query q = {0};
	evlog_query_it *it;
	struct evlog_rec rec;
	size_t n = 0;

	q.type = type;
	q.player = player;
	assert_int_equal(evlog_query_open(E->log, &q, &it), MMO_OK);
	while (evlog_query_next(it, &rec) == MMO_OK) {
		Mmo__Event *ev;

		assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
		if (last) {
			json_decref(*last);
			*last = mmo_event_to_json(ev);
		}
		mmo_event_free(ev);
		n++;
	}
	evlog_query_close(it);
	return n;
}

static void server_still_serves(void)
{
	struct resp r;

	assert_int_equal(gwt_get(E,
	                         "/api/players/"
	                         "p_nobody",
	                         T1, &r),
	                 404);
	resp_free(&r);
}

/* ---------------------------------------------------------------- routing */

static void test_unknown_path_is_json_404(void **state)
{
	struct resp r;
	char allow[64];

	(void)state;
	gwt_get(E, "/nope", NULL, &r);
	gwt_assert_error(&r, 404, "not_found", NULL);
	resp_free(&r);
	gwt_get(E, "/api/auth/login", NULL, &r);
	gwt_assert_error(&r, 405, "method_not_allowed", NULL);
	assert_true(resp_header(&r, "Allow", allow, sizeof(allow)));
	assert_string_equal(allow, "POST");
	resp_free(&r);
	gwt_http(E, "DELETE", "/api/players/p_1", NULL, NULL, 0, &r);
	gwt_assert_error(&r, 405, "method_not_allowed", NULL);
	resp_free(&r);
	gwt_get(E, "/ws", NULL, &r);
	gwt_assert_error(&r, 400, "websocket_required", NULL);
	resp_free(&r);
}

/* ---------------------------------------------------------------- auth success */

static void test_register_and_login_issue_a_standard_jwt(void **state)
{
	struct resp r;
	jwt_t *j = NULL;
	char *v, key[128];
	const char *tok, *jti;
	long iat, exp;
	json_t *ev = NULL;

	(void)state;
	gwt_post(E, "/api/auth/register", NULL,
	         "{\"username\":\"bob_1\",\"password\":\"12345678\"}", &r);
	assert_int_equal(r.status, 201);
	assert_int_equal(json_object_size(r.json), 1);
	char pid[80];
	strcpy(pid, json_string_value(json_object_get(r.json, "player_id")));
	resp_free(&r);

	gwt_post(E, "/api/auth/login", NULL, "{\"username\":\"bob_1\",\"password\":\"12345678\"}",
	         &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "player_id")), pid);
	assert_int_equal(json_integer_value(json_object_get(r.json, "expires_in")), 3600);
	tok = json_string_value(json_object_get(r.json, "token"));
	assert_non_null(tok);
	/* Any standard library decodes it: header and claims. */
	assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)GWT_KEY, strlen(GWT_KEY)), 0);
	assert_int_equal(jwt_get_alg(j), JWT_ALG_HS256);
	assert_string_equal(jwt_get_header(j, "typ"), "JWT");
	assert_string_equal(jwt_get_grant(j, "sub"), pid);
	assert_string_equal(jwt_get_grant(j, "role"), "player");
	iat = jwt_get_grant_int(j, "iat");
	exp = jwt_get_grant_int(j, "exp");
	assert_true(labs(iat - (long)time(NULL)) <= 5);
	assert_int_equal(exp - iat, 3600);
	jti = jwt_get_grant(j, "jti");
	assert_int_equal(strlen(jti), 32);
	/* The session is in Redis with the token's TTL. */
	snprintf(key, sizeof(key), "mmo:session:%s", jti);
	v = gwt_redis(E, "GET %s", key);
	assert_string_equal(v, pid);
	free(v);
	v = gwt_redis(E, "TTL %s", key);
	assert_true(atoi(v) > 3590 && atoi(v) <= 3600);
	free(v);
	jwt_free(j);
	resp_free(&r);

	/* Logged: the registration (without the hash) and the login. */
	assert_int_equal(log_events("player.register", pid, &ev), 1);
	assert_string_equal(json_string_value(json_object_get(ev, "username")), "bob_1");
	assert_null(json_object_get(ev, "hash"));
	{
		char *dump = json_dumps(ev, 0);

		assert_null(strstr(dump, "argon2"));
		free(dump);
	}
	json_decref(ev);
	ev = NULL;
	assert_int_equal(log_events("player.login", pid, &ev), 1);
	assert_string_equal(json_string_value(json_object_get(ev, "username")), "bob_1");
	json_decref(ev);
}

static void test_register_taken_name_is_409(void **state)
{
	struct resp r;

	(void)state;
	gwt_post(E, "/api/auth/register", NULL,
	         "{\"username\":\"alice\",\"password\":\"another one\"}", &r);
	gwt_assert_error(&r, 409, "conflict", "username");
	resp_free(&r);
}

/* ---------------------------------------------------------------- bad input */

struct bad {
	const char *path;
	const char *ctype; /* NULL: no Content-Type */
	const char *body;
	int status;
	const char *code;
	const char *field;
};

static void run_bad(const struct bad *b, const char *tok)
{
	char h[6000] = "";
	struct resp r;

	if (b->ctype)
		snprintf(h, sizeof(h), "Content-Type: %s\r\n", b->ctype);
	if (tok)
		snprintf(h + strlen(h), sizeof(h) - strlen(h), "Authorization: Bearer %s\r\n", tok);
	gwt_http(E, "POST", b->path, h, b->body, strlen(b->body), &r);
	if (r.status != b->status)
		fail_msg("%s %s: status %d, want %d: %.*s", b->path, b->body, r.status, b->status,
		         (int)r.body_len, r.body);
	gwt_assert_error(&r, b->status, b->code, b->field);
	resp_free(&r);
}

static void test_every_bad_input_class_gets_its_400s(void **state)
{
#define J "application/json"
	static const struct bad reg[] = {
	    {"/api/auth/register", "text/plain", "{\"username\":\"zed\",\"password\":\"12345678\"}",
	     415, "unsupported_media_type", NULL},
	    {"/api/auth/register", NULL, "{\"username\":\"zed\",\"password\":\"12345678\"}", 415,
	     "unsupported_media_type", NULL},
	    {"/api/auth/register", "application/jsonx", "{}", 415, "unsupported_media_type", NULL},
	    {"/api/auth/register", "application/json; charset=utf-8", "{", 400, "bad_json", NULL},
	    {"/api/auth/register", J, "", 400, "bad_json", NULL},
	    {"/api/auth/register", J, "[]", 400, "bad_json", NULL},
	    {"/api/auth/register", J, "\"str\"", 400, "bad_json", NULL},
	    {"/api/auth/register", J,
	     "{\"username\":\"zed\",\"username\":\"zed\",\"password\":\"1\"}", 400, "bad_json",
	     NULL},
	    {"/api/auth/register", J,
	     "{\"username\":\"zed\",\"password\":\"12345678\",\"admin\":true}", 400,
	     "unknown_field", "admin"},
	    {"/api/auth/register", J, "{\"$where\":\"1==1\",\"username\":\"zed\"}", 400,
	     "unknown_field", "$where"},
	    {"/api/auth/register", J, "{\"username\":7,\"password\":\"12345678\"}", 400,
	     "wrong_type", "username"},
	    {"/api/auth/register", J, "{\"username\":null,\"password\":\"12345678\"}", 400,
	     "wrong_type", "username"},
	    {"/api/auth/register", J, "{\"username\":\"zed\"}", 400, "missing_field", "password"},
	    {"/api/auth/register", J, "{\"username\":\"ab\",\"password\":\"12345678\"}", 400,
	     "invalid_field", "username"},
	    {"/api/auth/register", J,
	     "{\"username\":\"abcdefghijabcdefghijabcdefghijabc\",\"password\":\"12345678\"}", 400,
	     "invalid_field", "username"},
	    {"/api/auth/register", J,
	     "{\"username\":\"x'; DROP TABLE players;--\",\"password\":\"12345678\"}", 400,
	     "invalid_field", "username"},
	    {"/api/auth/register", J,
	     "{\"username\":\"a\\r\\nFLUSHALL\",\"password\":\"12345678\"}", 400, "invalid_field",
	     "username"},
	    {"/api/auth/register", J, "{\"username\":\"zed\",\"password\":\"1234567\"}", 400,
	     "invalid_field", "password"},
	    {"/api/auth/register", J, "{\"username\":\"zed\",\"password\":\"a\\u0000bcdefghi\"}",
	     400, "bad_json", NULL},
	    {"/api/auth/register", J, "{\"username\":\"zed\",\"password\":\"tab\there\"}", 400,
	     "bad_json", NULL},
	    {"/api/auth/register", J, "{\"username\":\"z\xff\xfe\",\"password\":\"12345678\"}", 400,
	     "bad_json", NULL},
	};
	static const struct bad move[] = {
	    {"/api/players/move", J, "{\"x\":1e999,\"y\":0,\"z\":0}", 400, "non_finite", "x"},
	    {"/api/players/move", J, "{\"x\":0,\"y\":-1e999,\"z\":0}", 400, "non_finite", "y"},
	    {"/api/players/move", J, "{\"x\":0,\"y\":0,\"z\":99999999999999999999999}", 400,
	     "out_of_range", "z"},
	    {"/api/players/move", J, "{\"x\":1e7,\"y\":0,\"z\":0}", 400, "out_of_range", "x"},
	    {"/api/players/move", J, "{\"x\":\"1\",\"y\":0,\"z\":0}", 400, "wrong_type", "x"},
	    {"/api/players/move", J, "{\"x\":true,\"y\":0,\"z\":0}", 400, "wrong_type", "x"},
	    {"/api/players/move", J, "{\"x\":NaN,\"y\":0,\"z\":0}", 400, "bad_json", NULL},
	    {"/api/players/move", J, "{\"x\":1,\"y\":2}", 400, "missing_field", "z"},
	    {"/api/players/move", J, "{\"x\":1,\"y\":2,\"z\":3,\"w\":4}", 400, "unknown_field",
	     "w"},
	    {"/api/combat/attack", J, "{\"defender_id\":\"bad id!\",\"skill_id\":\"punch\"}", 400,
	     "bad_id", "defender_id"},
	    {"/api/combat/attack", J, "{\"defender_id\":\"\",\"skill_id\":\"punch\"}", 400,
	     "bad_id", "defender_id"},
	    {"/api/combat/attack", J,
	     "{\"defender_id\":\"p\",\"skill_id\":"
	     "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	     400, "bad_id", "skill_id"},
	    {"/api/combat/attack", J, "{\"defender_id\":[],\"skill_id\":\"punch\"}", 400,
	     "wrong_type", "defender_id"},
	};
	struct resp r;

	(void)state;
	for (size_t i = 0; i < sizeof(reg) / sizeof(reg[0]); i++)
		run_bad(&reg[i], NULL);
	for (size_t i = 0; i < sizeof(move) / sizeof(move[0]); i++)
		run_bad(&move[i], T1);
	/* Ids in the path. */
	gwt_get(E, "/api/players/bad!id", T1, &r);
	gwt_assert_error(&r, 400, "bad_id", "id");
	resp_free(&r);
	gwt_get(E,
	        "/api/players/"
	        "p123456789012345678901234567890123456789012345678901234567890123456789",
	        T1, &r);
	gwt_assert_error(&r, 400, "bad_id", "id");
	resp_free(&r);
	gwt_get(E, "/api/regions/a%0d%0aSet-Cookie:x/players", T1, &r);
	gwt_assert_error(&r, 400, "bad_id", "id");
	assert_null(strcasestr(r.headers, "Set-Cookie"));
	resp_free(&r);
	server_still_serves();
}

static void test_oversized_and_deep_bodies_are_refused(void **state)
{
	size_t n = 17 * 1024;
	char *big = malloc(n + 1), *deep = malloc(12001);
	struct resp r;

	(void)state;
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = 0;
	gwt_http(E, "POST", "/api/auth/login", "Content-Type: application/json\r\n", big, n, &r);
	gwt_assert_error(&r, 413, "too_large", NULL);
	resp_free(&r);
	/* Exactly the limit is fine (and then the fields are missing). */
	n = 16 * 1024;
	big[n - 1] = '}';
	gwt_http(E, "POST", "/api/auth/login", "Content-Type: application/json\r\n", big, n, &r);
	gwt_assert_error(&r, 400, "missing_field", "username");
	resp_free(&r);
	/* Chunked, without a Content-Length, still capped. */
	{
		char *raw = malloc(40000);
		int k = sprintf(raw, "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: "
		                     "application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
		for (int c = 0; c < 3; c++) {
			k += sprintf(raw + k, "2000\r\n");
			memset(raw + k, ' ', 0x2000);
			k += 0x2000;
			k += sprintf(raw + k, "\r\n");
		}
		k += sprintf(raw + k, "0\r\n\r\n");
		gwt_raw(E, raw, (size_t)k, &r);
		gwt_assert_error(&r, 413, "too_large", NULL);
		resp_free(&r);
		free(raw);
	}
	/* 6000 levels of nesting. */
	memset(deep, '[', 6000);
	memset(deep + 6000, ']', 6000);
	deep[12000] = 0;
	gwt_http(E, "POST", "/api/auth/login", "Content-Type: application/json\r\n", deep, 12000,
	         &r);
	gwt_assert_error(&r, 400, "bad_json", NULL);
	resp_free(&r);
	free(big);
	free(deep);
	server_still_serves();
}

static void test_hostile_strings_are_values_and_come_back_escaped(void **state)
{
	const char *body = "{\"username\":\"alice\",\"password\":\"x\",\"a\\\"b\\\\c</script>\\n"
	                   "\\u2028 FLUSHALL\\r\\n\":1}";
	struct resp r;
	char *v;

	(void)state;
	v = gwt_redis(E, "SET canary alive");
	free(v);
	gwt_post(E, "/api/auth/login", NULL, body, &r);
	gwt_assert_error(&r, 400, "unknown_field", "a\"b\\c</script>\n\xe2\x80\xa8 FLUSHALL\r\n");
	/* Raw bytes of the reply: control characters escaped, never raw. */
	assert_null(memchr(r.body, '\n', r.body_len));
	assert_null(memchr(r.body, '\r', r.body_len));
	resp_free(&r);
	/* A login with Redis-protocol-looking and SQL-looking names is just a
	 * failed login; nothing reaches Redis as a command. */
	gwt_post(E, "/api/auth/login", NULL,
	         "{\"username\":\"*1\\r\\n$8\\r\\nFLUSHALL\\r\\n\",\"password\":\"' OR '1'='1\"}",
	         &r);
	gwt_assert_error(&r, 401, "invalid_credentials", NULL);
	resp_free(&r);
	gwt_get(E, "/api/regions/mmo:session:x/players", T1, &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_array_size(json_object_get(r.json, "players")), 0);
	resp_free(&r);
	v = gwt_redis(E, "GET canary");
	assert_string_equal(v, "alive");
	free(v);
	/* Header injection attempts: the server answers 4xx or ignores them,
	 * and keeps serving. */
	static const char raw1[] = "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n";
	static const char raw2[] = "GET /api/players/p_1\r\nX-Injected: 1 HTTP/1.1\r\n\r\n";
	static const char raw3[] = "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: "
	                           "-5\r\nContent-Type: application/json\r\n\r\n{}";
	gwt_raw(E, raw1, sizeof(raw1) - 1, &r);
	resp_free(&r);
	gwt_raw(E, raw2, sizeof(raw2) - 1, &r);
	assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
	resp_free(&r);
	gwt_raw(E, raw3, sizeof(raw3) - 1, &r);
	assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
	resp_free(&r);
	server_still_serves();
}

/* ---------------------------------------------------------------- auth failures */

static char *sign(const char *alg_none_or_key, const char *sub, const char *role, long iat,
                  long exp, const char *jti)
{
	jwt_t *j;
	char *s;

	jwt_new(&j);
	if (alg_none_or_key)
		jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)alg_none_or_key,
		            (int)strlen(alg_none_or_key));
	jwt_add_grant(j, "sub", sub);
	jwt_add_grant(j, "role", role);
	jwt_add_grant_int(j, "iat", iat);
	jwt_add_grant_int(j, "exp", exp);
	jwt_add_grant(j, "jti", jti);
	s = jwt_encode_str(j);
	jwt_free(j);
	return s;
}

static void expect_401(const char *tok, const char *code)
{
	struct resp r;
	char www[64];

	gwt_get(E, "/api/players/p_nobody", tok, &r);
	gwt_assert_error(&r, 401, code, NULL);
	assert_true(resp_header(&r, "WWW-Authenticate", www, sizeof(www)));
	resp_free(&r);
}

static long long metric(const char *name)
{
	return gwt_metric(E, name);
}

/* The session cache is in use: its subscription to Redis is up. */
static void wait_cache_live(void)
{
	for (int i = 0; i < 200 && metric("mmo_gw_session_cache_live") != 1; i++)
		gwt_sleep_ms(10);
	assert_int_equal(metric("mmo_gw_session_cache_live"), 1);
}

/* tok is refused with code within ms, polling every 2 ms; returns the
 * milliseconds it took. */
static int expect_401_within(const char *tok, const char *code, int ms)
{
	int64_t t0 = mmo_mono_us(), el;
	struct resp r;

	for (;;) {
		int st = gwt_get(E, "/api/players/p_nobody", tok, &r);

		el = (mmo_mono_us() - t0) / 1000;
		if (st == 401 || el > ms)
			break;
		assert_int_equal(st, 404);
		resp_free(&r);
		gwt_sleep_ms(2);
	}
	gwt_assert_error(&r, 401, code, NULL);
	resp_free(&r);
	assert_true(el <= ms);
	return (int)el;
}

static void test_bad_tokens_are_401(void **state)
{
	static const char jti[] = "0123456789abcdef0123456789abcdef";
	long now = (long)time(NULL);
	struct resp r;
	char *t, *v;

	(void)state;
	expect_401(NULL, "unauthorized");
	gwt_http(E, "GET", "/api/players/p_1", "Authorization: Basic YWxpY2U6eA==\r\n", NULL, 0,
	         &r);
	gwt_assert_error(&r, 401, "unauthorized", NULL);
	resp_free(&r);
	expect_401("garbage", "invalid_token");
	/* A tampered signature (a byte in the middle of it). */
	t = strdup(T1);
	char *sig = strrchr(t, '.') + 10;
	*sig = *sig == 'A' ? 'B' : 'A';
	expect_401(t, "invalid_token");
	free(t);
	/* A tampered payload with the original signature. */
	t = strdup(T1);
	char *pl = strchr(t, '.') + 5;
	*pl = *pl == 'A' ? 'B' : 'A';
	expect_401(t, "invalid_token");
	free(t);
	/* Another key, and alg none, with a live session for the jti. */
	v = gwt_redis(E, "SET mmo:session:%s %s EX 60", jti, P1);
	free(v);
	t = sign("another-key-of-enough-length-000", P1, "auditor", now, now + 60, jti);
	expect_401(t, "invalid_token");
	free(t);
	t = sign(NULL, P1, "auditor", now, now + 60, jti);
	expect_401(t, "invalid_token");
	free(t);
	/* Our key, but an unknown role. */
	t = sign(GWT_KEY, P1, "admin", now, now + 60, jti);
	expect_401(t, "invalid_token");
	free(t);
	/* Our key, expired. */
	t = sign(GWT_KEY, P1, "player", now - 120, now - 60, jti);
	expect_401(t, "token_expired");
	free(t);
	/* Our key, valid, session present: accepted (the control case). */
	t = sign(GWT_KEY, P1, "player", now, now + 60, jti);
	assert_int_equal(gwt_get(E, "/api/players/p_nobody", t, &r), 404);
	resp_free(&r);
	/* ... and refused as soon as the session is gone (its keyspace
	 * notification reaches the session cache well before its 2 s). */
	v = gwt_redis(E, "DEL mmo:session:%s", jti);
	free(v);
	expect_401_within(t, "session_revoked", 500);
	expect_401(t, "session_revoked");
	free(t);
}

/* The session cache answers repeated checks, and every change to a
 * session's key behind the gateway's back (DEL, an overwrite with another
 * player, an expiry) ends the token's acceptance within the notification's
 * delay, far below the cache's 2 s; with Redis gone the cache is off and
 * requests fail closed. */
static void test_session_cache_follows_redis(void **state)
{
	char pid[80], *tok, *jti, *v;
	long long hits;
	struct resp r;

	(void)state;
	wait_cache_live();
	gwt_user(E, "sessy", "sessy's password", pid, &tok);
	jti = gwt_jti_of(tok);
	hits = metric("mmo_gw_session_checks_total{source=\"cache\"}");
	for (int i = 0; i < 5; i++) {
		assert_int_equal(gwt_get(E, "/api/players/p_nobody", tok, &r), 404);
		resp_free(&r);
	}
	/* The first check asks Redis; the next four hit the cache. */
	assert_int_equal(metric("mmo_gw_session_checks_total{source=\"cache\"}"), hits + 4);
	/* Overwritten with another player's id. */
	v = gwt_redis(E, "SET mmo:session:%s p_someone_else EX 60", jti);
	free(v);
	expect_401_within(tok, "invalid_token", 500);
	/* Back, then expired by Redis. */
	v = gwt_redis(E, "SET mmo:session:%s %s PX 300", jti, pid);
	free(v);
	assert_int_equal(gwt_get(E, "/api/players/p_nobody", tok, &r), 404);
	resp_free(&r);
	assert_int_equal(gwt_get(E, "/api/players/p_nobody", tok, &r), 404);
	resp_free(&r);
	expect_401_within(tok, "session_revoked", 300 + 500);
	/* Back, cached, then Redis killed: 503 at once, not the cached 404. */
	v = gwt_redis(E, "SET mmo:session:%s %s EX 60", jti, pid);
	free(v);
	assert_int_equal(gwt_get(E, "/api/players/p_nobody", tok, &r), 404);
	resp_free(&r);
	assert_int_equal(gwt_get(E, "/api/players/p_nobody", tok, &r), 404);
	resp_free(&r);
	gwt_redis_kill(E);
	gwt_sleep_ms(100);
	assert_int_equal(gwt_get(E, "/api/players/p_nobody", tok, &r), 503);
	resp_free(&r);
	assert_int_equal(metric("mmo_gw_session_cache_live"), 0);
	gwt_redis_restart(E);
	wait_cache_live();
	free(jti);
	free(tok);
}

static void test_logout_revokes_at_once(void **state)
{
	char pid[80], *tok;
	struct resp r;

	(void)state;
	gwt_user(E, "carol", "carol's password", pid, &tok);
	assert_int_equal(gwt_get(E, "/api/players/p_nobody", tok, &r), 404);
	resp_free(&r);
	assert_int_equal(gwt_post(E, "/api/auth/logout", tok, NULL, &r), 204);
	resp_free(&r);
	expect_401(tok, "session_revoked");
	gwt_post(E, "/api/auth/logout", tok, NULL, &r);
	gwt_assert_error(&r, 401, "session_revoked", NULL);
	resp_free(&r);
	assert_int_equal(log_events("player.logout", pid, NULL), 1);
	free(tok);
}

static void test_wrong_password_is_401_and_roles_gate_events(void **state)
{
	char msg[256], pid[80], *tok;
	struct resp r;

	(void)state;
	gwt_post(E, "/api/auth/login", NULL, "{\"username\":\"alice\",\"password\":\"wrong pass\"}",
	         &r);
	gwt_assert_error(&r, 401, "invalid_credentials", NULL);
	resp_free(&r);
	gwt_post(E, "/api/auth/login", NULL, "{\"username\":\"nobody\",\"password\":\"whatever1\"}",
	         &r);
	gwt_assert_error(&r, 401, "invalid_credentials", NULL);
	resp_free(&r);
	/* A player token on /api/events: 403. */
	gwt_get(E, "/api/events", T1, &r);
	gwt_assert_error(&r, 403, "forbidden", NULL);
	resp_free(&r);
	/* `mmo user role NAME auditor` (the same call), then a new login. */
	gwt_user(E, "dave", "dave's password", pid, &tok);
	free(tok);
	assert_int_equal(gw_user_set_role(E->dir, "dave", "auditor", msg, sizeof(msg)), MMO_OK);
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL,
	                          "{\"username\":\"dave\",\"password\":\"dave's password\"}", &r),
	                 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "role")), "auditor");
	tok = strdup(json_string_value(json_object_get(r.json, "token")));
	resp_free(&r);
	assert_int_equal(gwt_get(E, "/api/events?player_id=", tok, &r), 200);
	assert_true(json_is_array(json_object_get(r.json, "events")));
	resp_free(&r);
	free(tok);
}

static void test_user_added_offline_registers_at_first_login(void **state)
{
	char msg[256], pid[80];
	struct resp r;

	(void)state;
	assert_int_equal(
	    gw_user_add(E->dir, "offline_erin", "erin password", 13, pid, msg, sizeof(msg)),
	    MMO_OK);
	assert_int_equal(log_events("player.register", pid, NULL), 0);
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL,
	                          "{\"username\":\"offline_erin\",\"password\":\"erin password\"}",
	                          &r),
	                 200);
	resp_free(&r);
	assert_int_equal(log_events("player.register", pid, NULL), 1);
	/* A second login does not register again. */
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL,
	                          "{\"username\":\"offline_erin\",\"password\":\"erin password\"}",
	                          &r),
	                 200);
	resp_free(&r);
	assert_int_equal(log_events("player.register", pid, NULL), 1);
}

/* ---------------------------------------------------------------- rate limits */

static void test_failed_logins_are_limited_per_user_and_logged_aggregated(void **state)
{
	const char *bad = "{\"username\":\"frank\",\"password\":\"not it at all\"}";
	const char *good = "{\"username\":\"frank\",\"password\":\"frank's pass\"}";
	char pid[80], *tok, ra[16];
	json_t *ev = NULL;
	struct resp r;
	size_t before;

	(void)state;
	gwt_user(E, "frank", "frank's pass", pid, &tok);
	free(tok);
	before = log_events("security.login_failed", NULL, NULL);
	for (int i = 0; i < 3; i++) {
		gwt_post(E, "/api/auth/login", NULL, bad, &r);
		gwt_assert_error(&r, 401, "invalid_credentials", NULL);
		resp_free(&r);
	}
	/* The 4th attempt is refused before the password is checked, even the
	 * right one. */
	gwt_post(E, "/api/auth/login", NULL, good, &r);
	gwt_assert_error(&r, 429, "rate_limited", NULL);
	assert_true(resp_header(&r, "Retry-After", ra, sizeof(ra)));
	assert_true(atoi(ra) >= 1 && atoi(ra) <= 60);
	resp_free(&r);
	/* Other users are not affected. */
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL,
	                          "{\"username\":\"alice\",\"password\":\"correct horse\"}", &r),
	                 200);
	resp_free(&r);
	/* Rate-limited attempts are cheap: a burst of them. */
	size_t rl_before = log_events("security.rate_limited", NULL, NULL);
	for (int i = 0; i < 20; i++) {
		gwt_post(E, "/api/auth/login", NULL, bad, &r);
		gwt_assert_error(&r, 429, "rate_limited", NULL);
		resp_free(&r);
	}
	/* Aggregated per source and window (300 ms): one event per window
	 * carries the count, not one event per failure. */
	gwt_sleep_ms(700);
	{
		struct evlog_query q = {0};
		evlog_query_it *it;
		struct evlog_rec rec;
		json_int_t failed = 0, limited = 0;
		size_t nfailed = 0, nlimited = 0, k = 0;

		q.type = "security.";
		assert_int_equal(evlog_query_open(E->log, &q, &it), MMO_OK);
		while (evlog_query_next(it, &rec) == MMO_OK) {
			Mmo__Event *e;
			json_t *o;

			assert_int_equal(evlog_rec_decode(&rec, &e), MMO_OK);
			o = mmo_event_to_json(e);
			mmo_event_free(e);
			if (!strcmp(json_string_value(json_object_get(o, "type")),
			            "security.login_failed") &&
			    k++ >= before &&
			    strstr(json_string_value(json_object_get(o, "detail")), "frank")) {
				assert_string_equal(json_string_value(json_object_get(o, "source")),
				                    "127.0.0.1");
				assert_int_equal(json_integer_value(json_object_get(o, "priority")),
				                 1);
				failed += json_integer_value(json_object_get(o, "count"));
				nfailed++;
			}
			if (!strcmp(json_string_value(json_object_get(o, "type")),
			            "security.rate_limited")) {
				if (rl_before) {
					rl_before--;
				} else {
					limited += json_integer_value(json_object_get(o, "count"));
					nlimited++;
				}
			}
			json_decref(o);
		}
		evlog_query_close(it);
		assert_int_equal(failed, 3);
		assert_true(nfailed >= 1 && nfailed <= 3);
		assert_int_equal(limited, 21);
		assert_true(nlimited >= 1 && nlimited <= 4);
	}
	(void)ev;
}

static void short_window(struct gw_opts *o)
{
	o->login_fail_window_s = 2;
}

/* One login from source address 127.0.0.src (Connection: close): the
 * status, and Retry-After's value in *retry (0 if absent). */
static int login_from(int src, const char *body, int *retry)
{
	char req[512], buf[2048], *ra;
	int fd = gwt_dial_from(E->port, src), status = 0;
	size_t got = 0;
	ssize_t n;

	assert_true(fd >= 0);
	snprintf(req, sizeof(req),
	         "POST /api/auth/login HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
	         "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
	         strlen(body), body);
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while (got < sizeof(buf) - 1 && (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	close(fd);
	sscanf(buf, "HTTP/1.1 %d", &status);
	ra = strcasestr(buf, "\r\nRetry-After:");
	*retry = ra ? atoi(ra + 14) : 0;
	return status;
}

/* 1,000 wrong passwords for one account from 100 addresses: only the
 * first three are checked (Argon2id), the rest are 429 with Retry-After
 * before any hashing; the failures reach the log as bounded aggregates;
 * once the window has passed, the owner logs in. */
static void test_a_distributed_guess_at_one_account_is_throttled(void **state)
{
	const char *bad = "{\"username\":\"victim\",\"password\":\"guess guess\"}";
	const char *good = "{\"username\":\"victim\",\"password\":\"victim's pass\"}";
	size_t before = log_events("security.", NULL, NULL), after;
	int n401 = 0, n429 = 0, other = 0, retry;
	char pid[80], *tok;
	struct resp r;

	(void)state;
	gwt_restart_gw(E, short_window);
	gwt_user(E, "victim", "victim's pass", pid, &tok);
	free(tok);
	int64_t t0 = mmo_mono_us();
	double secs;

	for (int src = 2; src < 102; src++) {
		for (int k = 0; k < 10; k++) {
			int st = login_from(src, bad, &retry);

			if (st == 401) {
				n401++;
			} else if (st == 429) {
				n429++;
				assert_true(retry >= 1 && retry <= 2);
			} else {
				other++;
			}
		}
	}
	/* The account's bucket holds 3 and refills 3 per 2 s window: over
	 * the attack's duration at most that many more are checked. */
	secs = (double)(mmo_mono_us() - t0) / 1e6;
	assert_int_equal(other, 0);
	assert_int_equal(n401 + n429, 1000);
	assert_true(n401 >= 3 && n401 <= 3 + (int)(secs * 1.5) + 1);
	gwt_sleep_ms(700);
	after = log_events("security.", NULL, NULL);
	assert_true(after > before);
	assert_true(after - before <= 2 * 100 * 10); /* aggregated: far fewer than 1,000 */
	gwt_sleep_ms(2100);                          /* the account's window passes */
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL, good, &r), 200);
	resp_free(&r);
	gwt_restart_gw(E, NULL);
}

static void addr_limit(struct gw_opts *o)
{
	o->login_fail_user = 1000;
	o->login_fail_addr = 2;
}

static void test_failed_logins_are_limited_per_address(void **state)
{
	struct resp r;
	char body[128];

	(void)state;
	gwt_restart_gw(E, addr_limit);
	for (int i = 0; i < 2; i++) {
		snprintf(body, sizeof(body), "{\"username\":\"guess%d\",\"password\":\"xxxxxxxx\"}",
		         i);
		gwt_post(E, "/api/auth/login", NULL, body, &r);
		gwt_assert_error(&r, 401, "invalid_credentials", NULL);
		resp_free(&r);
	}
	gwt_post(E, "/api/auth/login", NULL, "{\"username\":\"guess9\",\"password\":\"xxxxxxxx\"}",
	         &r);
	gwt_assert_error(&r, 429, "rate_limited", NULL);
	resp_free(&r);
	gwt_restart_gw(E, NULL);
}

/* ---------------------------------------------------------------- monitoring */

static void test_metrics_and_health(void **state)
{
	struct resp r;
	char ct[128];

	(void)state;
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL,
	                          "{\"username\":\"alice\",\"password\":\"correct horse\"}", &r),
	                 200);
	resp_free(&r);
	gwt_post(E, "/api/auth/login", NULL, "{\"username\":\"alice\",\"password\":\"wrong\"}", &r);
	resp_free(&r);
	assert_int_equal(gwt_get(E, "/metrics", NULL, &r), 200);
	assert_true(resp_header(&r, "Content-Type", ct, sizeof(ct)));
	assert_non_null(strstr(ct, "text/plain"));
	assert_non_null(strstr(r.body, "mmo_gw_http_requests_total{route=\"/api/auth/login\","
	                               "status=\"200\"}"));
	assert_non_null(strstr(r.body, "mmo_gw_http_requests_total{route=\"/api/auth/login\","
	                               "status=\"401\"}"));
	assert_non_null(strstr(r.body, "mmo_gw_http_request_duration_seconds_bucket{route=\"/api/"
	                               "auth/login\",le=\"+Inf\"}"));
	assert_non_null(strstr(r.body, "mmo_gw_ws_connections "));
	assert_non_null(strstr(r.body, "mmo_gw_ws_messages_dropped_total "));
	assert_non_null(strstr(r.body, "mmo_gw_redis_latency_seconds_count "));
	assert_non_null(strstr(r.body, "mmo_gw_event_latency_seconds_count{stage=\"outcome\"}"));
	assert_non_null(strstr(r.body, "mmo_gw_queue_depth{queue=\"ws_outbound\"}"));
	resp_free(&r);
	assert_int_equal(gwt_get(E, "/health", NULL, &r), 200);
	assert_string_equal(json_string_value(json_object_get(r.json, "status")), "ok");
	assert_true(json_is_true(
	    json_object_get(json_object_get(json_object_get(r.json, "checks"), "redis"), "ok")));
	resp_free(&r);
}

/* /health is 200 again within 10 s (the 503s a test caused leave the
 * error-rate window), so the next test starts healthy. */
static void wait_healthy(void)
{
	struct resp r;

	for (int i = 0; i < 100 && gwt_get(E, "/health", NULL, &r) != 200; i++) {
		resp_free(&r);
		gwt_sleep_ms(100);
	}
	assert_int_equal(r.status, 200);
	resp_free(&r);
}

/* Redis stalls (SIGSTOP) rather than dies: what needs it is answered 503
 * with Retry-After within its timeouts (500 ms a command, one retry), what
 * does not (an intent of a session the cache knows) is answered as usual;
 * all is normal again once Redis runs. */
static void test_a_stalled_redis_is_answered_within_timeouts(void **state)
{
	static const char attack[] = "{\"defender_id\":\"p_nobody\",\"skill_id\":\"slash\"}";
	char pid[80], ra[16], path[128], *tok;
	struct resp r;
	int64_t t0, el;

	(void)state;
	wait_cache_live();
	gwt_user(E, "staller", "staller's password", pid, &tok);
	gwt_post(E, "/api/combat/attack", tok, attack, &r); /* the session is cached */
	gwt_assert_error(&r, 422, "unknown_target", NULL);
	resp_free(&r);
	assert_int_equal(kill(E->redis, SIGSTOP), 0);
	t0 = mmo_mono_us();
	snprintf(path, sizeof(path), "/api/players/%s", pid);
	gwt_get(E, path, tok, &r); /* reads the Redis view */
	el = mmo_mono_us() - t0;
	gwt_assert_error(&r, 503, "unavailable", NULL);
	assert_true(resp_header(&r, "Retry-After", ra, sizeof(ra)));
	assert_true(el < 2500000);
	resp_free(&r);
	t0 = mmo_mono_us();
	gwt_post(E, "/api/combat/attack", tok, attack, &r);
	el = mmo_mono_us() - t0;
	gwt_assert_error(&r, 422, "unknown_target", NULL);
	assert_true(el < 1000000);
	resp_free(&r);
	assert_int_equal(kill(E->redis, SIGCONT), 0);
	for (int i = 0; i < 50 && gwt_get(E, path, tok, &r) != 200; i++) {
		resp_free(&r);
		gwt_sleep_ms(100);
	}
	assert_int_equal(r.status, 200);
	resp_free(&r);
	/* Healthy again once the 503s leave the error-rate window. */
	wait_healthy();
	free(tok);
}

/* Redis out of memory (maxmemory tiny, noeviction): what must write to it
 * (a login's session) is 503 with Retry-After, reads and intents of known
 * sessions go on, and logins work again once memory is back. */
static void test_redis_out_of_memory_refuses_writes_cleanly(void **state)
{
	static const char attack[] = "{\"defender_id\":\"p_nobody\",\"skill_id\":\"slash\"}";
	const char *login = "{\"username\":\"oomer\",\"password\":\"oomer's pass\"}";
	char pid[80], ra[16], path[128], *tok, *v;
	struct resp r;

	(void)state;
	wait_cache_live();
	gwt_user(E, "oomer", "oomer's pass", pid, &tok);
	snprintf(path, sizeof(path), "/api/players/%s", pid);
	gwt_post(E, "/api/combat/attack", tok, attack, &r); /* the session is cached */
	gwt_assert_error(&r, 422, "unknown_target", NULL);
	resp_free(&r);
	v = gwt_redis(E, "CONFIG SET maxmemory-policy noeviction");
	free(v);
	v = gwt_redis(E, "CONFIG SET maxmemory 1");
	free(v);
	gwt_post(E, "/api/auth/login", NULL, login, &r);
	gwt_assert_error(&r, 503, "unavailable", NULL);
	assert_true(resp_header(&r, "Retry-After", ra, sizeof(ra)));
	resp_free(&r);
	assert_int_equal(gwt_get(E, path, tok, &r), 200); /* reads go on */
	resp_free(&r);
	gwt_post(E, "/api/combat/attack", tok, attack, &r);
	gwt_assert_error(&r, 422, "unknown_target", NULL);
	resp_free(&r);
	v = gwt_redis(E, "CONFIG SET maxmemory 0");
	free(v);
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL, login, &r), 200);
	resp_free(&r);
	wait_healthy();
	free(tok);
}

static void test_redis_down_fails_closed_with_503(void **state)
{
	struct resp r;
	char ra[16];
	int status = 0;

	(void)state;
	gwt_redis_kill(E);
	gwt_get(E, "/api/players/p_nobody", T1, &r);
	gwt_assert_error(&r, 503, "unavailable", NULL);
	assert_true(resp_header(&r, "Retry-After", ra, sizeof(ra)));
	resp_free(&r);
	gwt_post(E, "/api/auth/login", NULL,
	         "{\"username\":\"alice\",\"password\":\"correct horse\"}", &r);
	gwt_assert_error(&r, 503, "unavailable", NULL);
	assert_true(resp_header(&r, "Retry-After", ra, sizeof(ra)));
	resp_free(&r);
	for (int i = 0; i < 40 && status != 503; i++) {
		status = gwt_get(E, "/health", NULL, &r);
		if (status == 503) {
			assert_string_equal(json_string_value(json_object_get(r.json, "status")),
			                    "degraded");
			assert_true(json_is_false(json_object_get(
			    json_object_get(json_object_get(r.json, "checks"), "redis"), "ok")));
		}
		resp_free(&r);
		if (status != 503)
			gwt_sleep_ms(100);
	}
	assert_int_equal(status, 503);
	/* Redis back (empty: the sessions are gone, so old tokens are too). */
	gwt_redis_restart(E);
	for (int i = 0; i < 40 && gwt_get(E, "/api/players/p_nobody", T1, &r) == 503; i++) {
		resp_free(&r);
		gwt_sleep_ms(100);
	}
	resp_free(&r);
	expect_401(T1, "session_revoked");
	assert_int_equal(gwt_post(E, "/api/auth/login", NULL,
	                          "{\"username\":\"alice\",\"password\":\"correct horse\"}", &r),
	                 200);
	resp_free(&r);
	for (int i = 0; i < 40 && status != 200; i++) {
		status = gwt_get(E, "/health", NULL, &r);
		resp_free(&r);
		if (status != 200)
			gwt_sleep_ms(100);
	}
	assert_int_equal(status, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_unknown_path_is_json_404),
	    cmocka_unit_test(test_register_and_login_issue_a_standard_jwt),
	    cmocka_unit_test(test_register_taken_name_is_409),
	    cmocka_unit_test(test_every_bad_input_class_gets_its_400s),
	    cmocka_unit_test(test_oversized_and_deep_bodies_are_refused),
	    cmocka_unit_test(test_hostile_strings_are_values_and_come_back_escaped),
	    cmocka_unit_test(test_bad_tokens_are_401),
	    cmocka_unit_test(test_logout_revokes_at_once),
	    cmocka_unit_test(test_wrong_password_is_401_and_roles_gate_events),
	    cmocka_unit_test(test_user_added_offline_registers_at_first_login),
	    cmocka_unit_test(test_failed_logins_are_limited_per_user_and_logged_aggregated),
	    cmocka_unit_test(test_failed_logins_are_limited_per_address),
	    cmocka_unit_test(test_a_distributed_guess_at_one_account_is_throttled),
	    cmocka_unit_test(test_metrics_and_health),
	    cmocka_unit_test(test_session_cache_follows_redis),
	    cmocka_unit_test(test_a_stalled_redis_is_answered_within_timeouts),
	    cmocka_unit_test(test_redis_out_of_memory_refuses_writes_cleanly),
	    cmocka_unit_test(test_redis_down_fails_closed_with_503),
	};

	return cmocka_run_group_tests_name("gateway_http", tests, setup, teardown);
}
