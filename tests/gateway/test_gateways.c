/* test_gateways.c - the gateway as its own process, through the real
 * `mmo serve`:
 *   - two gateway processes (`--roles gateway`) on one log + world in a
 *     third: a move through gateway A reaches a WebSocket on gateway B;
 *   - kill -9 in the window between the world's decision (the client
 *     already has its answer) and the outcome's commit: after a restart
 *     the log holds exactly the answer the client got, once.
 * Every process gets free ports and a time bound. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gwtest.h"
#include "schemas/mmo_util.h"
#include "testsupport.h"

static char DIR_[4096], LOGF[4200], REDIS_URL[64], SPAWN_REGION[32];
static pid_t redis_pid;

static int setup(void **state)
{
	const struct world_rules *wr = world_rules();
	int port;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(ts_tmpdir(DIR_, sizeof(DIR_)), 0);
	redis_pid = ts_redis_start(DIR_, &port, NULL);
	assert_true(redis_pid > 0);
	snprintf(REDIS_URL, sizeof(REDIS_URL), "redis://127.0.0.1:%d", port);
	world_region_of(&wr->spawn, SPAWN_REGION, sizeof(SPAWN_REGION));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	ts_stop(redis_pid, SIGKILL, 2000);
	if (getenv("KEEP"))
		fprintf(stderr, "kept %s\n", DIR_);
	else
		ts_rmrf(DIR_);
	return 0;
}

/* Start `mmo serve` with args (NULL-terminated) and wait for its ready line. */
static pid_t serve(const char *data, const char *logname, const char *const *args)
{
	char *argv[32];
	size_t n = 0;
	pid_t pid;

	argv[n++] = (char *)ts_mmo_bin();
	argv[n++] = "serve";
	argv[n++] = "--data";
	argv[n++] = (char *)data;
	argv[n++] = "--redis";
	argv[n++] = REDIS_URL;
	for (; *args && n < 30; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	snprintf(LOGF, sizeof(LOGF), "%s/%s", DIR_, logname);
	pid = ts_spawn(argv, LOGF);
	assert_true(pid > 0);
	if (!ts_wait_log(LOGF, "serve: ready", 15000))
		fail_msg("%s did not get ready (see %s)", logname, LOGF);
	return pid;
}

static json_t *wait_for(struct wsc *w, const char *key, const char *value, int timeout_ms)
{
	int64_t end = mmo_mono_us() + (int64_t)timeout_ms * 1000;

	while (mmo_mono_us() < end) {
		json_t *j = wsc_json(w, (int)((end - mmo_mono_us()) / 1000) + 1, NULL);

		if (!j)
			return NULL;
		if (!strcmp(json_string_value(json_object_get(j, key)) ?: "", value))
			return j;
		json_decref(j);
	}
	return NULL;
}

/* The outcomes the log holds for the intent at seq; *x (may be NULL) the
 * first one's x. */
static size_t outcomes_of(const char *data, uint64_t seq, double *x)
{
	evlog *log = NULL;
	char dir[4400], msg[256];
	struct evlog_opts lo = {0};
	struct world_logged l = {0};
	size_t n;

	snprintf(dir, sizeof(dir), "%s/log", data);
	lo.dir = dir;
	lo.readonly = true;
	if (evlog_open(&lo, &log, msg, sizeof(msg)))
		fail_msg("open: %s", msg);
	assert_int_equal(world_logged_get(log, seq, &l), MMO_OK);
	n = l.n;
	if (n && x && l.ev[0]->body_case == MMO__EVENT__BODY_WORLD_UPDATE)
		*x = l.ev[0]->world_update->position->x;
	world_logged_free(&l);
	evlog_close(log);
	return n;
}

/* 1 if the first outcome of seq has event id eid. */
static int outcomes_of_id(const char *data, uint64_t seq, const char *eid)
{
	evlog *log = NULL;
	char dir[4400], msg[256];
	struct evlog_opts lo = {0};
	struct world_logged l = {0};
	int same;

	snprintf(dir, sizeof(dir), "%s/log", data);
	lo.dir = dir;
	lo.readonly = true;
	if (evlog_open(&lo, &log, msg, sizeof(msg)))
		fail_msg("open: %s", msg);
	assert_int_equal(world_logged_get(log, seq, &l), MMO_OK);
	same = l.n && !strcmp(l.ev[0]->event_id, eid);
	world_logged_free(&l);
	evlog_close(log);
	return same;
}

static void test_a_move_through_gateway_a_reaches_a_socket_on_gateway_b(void **state)
{
	const struct world_rules *wr = world_rules();
	char data[4300], ingest[64], bus[64], ha[32], hb[32], pa[80], pb[80], body[160], sub[160];
	struct gwt a = {0}, b = {0};
	char *ta, *tb;
	struct wsc *w;
	struct resp r;
	json_t *j;
	pid_t core, ga, gb;

	(void)state;
	snprintf(data, sizeof(data), "%s/h", DIR_);
	snprintf(ingest, sizeof(ingest), "tcp://127.0.0.1:%d", ts_free_port());
	snprintf(bus, sizeof(bus), "tcp://127.0.0.1:%d", ts_free_port());
	a.port = ts_free_port();
	b.port = ts_free_port();
	snprintf(ha, sizeof(ha), "127.0.0.1:%d", a.port);
	snprintf(hb, sizeof(hb), "127.0.0.1:%d", b.port);
	{
		const char *args[] = {
		    "--roles", "log,world,views", "--ingest", ingest, "--bus", bus, NULL};
		core = serve(data, "core.log", args);
	}
	{
		const char *args[] = {"--roles", "gateway", "--ingest", ingest, "--bus",
		                      bus,       "--http",  ha,         NULL};
		ga = serve(data, "gw_a.log", args);
	}
	{
		const char *args[] = {"--roles", "gateway", "--ingest", ingest, "--bus",
		                      bus,       "--http",  hb,         NULL};
		gb = serve(data, "gw_b.log", args);
	}
	/* One account through each; sessions live in the shared Redis. */
	gwt_user(&a, "alpha", "alpha pass", pa, &ta);
	gwt_user(&b, "bravo", "bravo pass", pb, &tb);
	w = gwt_ws(&b, tb);
	snprintf(sub, sizeof(sub), "{\"op\":\"subscribe\",\"region_id\":\"%s\",\"ref\":\"s\"}",
	         SPAWN_REGION);
	assert_int_equal(wsc_send(w, 1, sub, strlen(sub), true), 0);
	j = wait_for(w, "type", "subscribed", 5000);
	assert_non_null(j);
	json_decref(j);
	gwt_sleep_ms(300); /* moves are speed-bound since the login */
	snprintf(body, sizeof(body), "{\"x\":%g,\"y\":%g,\"z\":%g}", wr->spawn.x + 0.5, wr->spawn.y,
	         wr->spawn.z);
	if (gwt_post(&a, "/api/players/move", ta, body, &r) != 200)
		fail_msg("move via A: %d %.*s", r.status, (int)r.body_len, r.body);
	/* A world in another process: answered from the committed outcome. */
	assert_true(json_integer_value(json_object_get(r.json, "outcome_seq")) > 0);
	{
		json_int_t seq = json_integer_value(json_object_get(r.json, "seq"));

		resp_free(&r);
		j = wait_for(w, "player_id", pa, 5000);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "type")), "world.update");
		assert_int_equal(json_integer_value(json_object_get(j, "cause_seq")), seq);
		json_decref(j);
	}
	wsc_close(w);
	free(ta);
	free(tb);
	assert_int_equal(ts_stop(gb, SIGTERM, 10000), 0);
	assert_int_equal(ts_stop(ga, SIGTERM, 10000), 0);
	assert_int_equal(ts_stop(core, SIGTERM, 10000), 0);
}

static void test_kill_between_decision_and_commit_keeps_the_answer(void **state)
{
	const struct world_rules *wr = world_rules();
	char data[4300], http[32], body[160], eid[80],
	    env[] = "MMO_FAULT_WORLD_EXIT_AFTER_DECIDE=1";
	const char *args[] = {"--http", http, NULL};
	struct gwt e = {0};
	double x = wr->spawn.x + 0.75;
	struct resp r;
	char pid_[80], *tok;
	uint64_t seq;
	pid_t p;

	(void)state;
	snprintf(data, sizeof(data), "%s/k", DIR_);
	e.port = ts_free_port();
	snprintf(http, sizeof(http), "127.0.0.1:%d", e.port);
	p = serve(data, "k1.log", args);
	gwt_user(&e, "kilo", "kilo pass", pid_, &tok);
	assert_int_equal(ts_stop(p, SIGTERM, 10000), 0);
	/* The next decision is the last thing this world does: it hands the
	 * answer out, then dies before its outcome is appended. */
	putenv(env);
	p = serve(data, "k2.log", args);
	unsetenv("MMO_FAULT_WORLD_EXIT_AFTER_DECIDE");
	gwt_sleep_ms(300);
	snprintf(body, sizeof(body), "{\"x\":%.17g,\"y\":%.17g,\"z\":%.17g}", x, wr->spawn.y,
	         wr->spawn.z);
	if (gwt_post(&e, "/api/players/move", tok, body, &r) != 200)
		fail_msg("move: %d %.*s", r.status, (int)r.body_len, r.body);
	seq = (uint64_t)json_integer_value(json_object_get(r.json, "seq"));
	snprintf(eid, sizeof(eid), "%s",
	         json_string_value(json_object_get(r.json, "outcome_event_id")));
	assert_null(json_object_get(r.json, "outcome_seq")); /* not committed when answered */
	resp_free(&r);
	/* The process killed itself (SIGKILL, as kill -9) before the outcome
	 * was appended: the log has the intent and no outcome for it. */
	{
		int st = -1;

		for (int i = 0; i < 200; i++) {
			if (waitpid(p, &st, WNOHANG) == p)
				break;
			gwt_sleep_ms(25);
		}
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	}
	assert_int_equal(outcomes_of(data, seq, NULL), 0);
	/* Restart: the world decides the intent again, the same way, once. */
	p = serve(data, "k3.log", args);
	{
		double got = 0;
		size_t n = 0;

		for (int i = 0; i < 200 && !(n = outcomes_of(data, seq, NULL)); i++)
			gwt_sleep_ms(50);
		assert_int_equal(n, 1);
		gwt_sleep_ms(300);
		assert_int_equal(outcomes_of(data, seq, &got), 1);
		assert_true(got == x);
		assert_int_equal(outcomes_of_id(data, seq, eid), 1);
	}
	free(tok);
	assert_int_equal(ts_stop(p, SIGTERM, 10000), 0);
}

/* Out of descriptors: `mmo serve` under a 512-descriptor limit takes 1,200
 * connections that never finish a request head, from two addresses (under
 * the per-address cap). It stays up, says so, closes what it cannot hold
 * while keeping a reserve for its log, Redis and relay, times the rest out
 * with 408, and then serves a player as before. */
static void test_a_flood_past_the_descriptor_limit_is_survived(void **state)
{
	enum { FLOOD = 1200 };
	char data[4300], ha[32], pid_s[80], *tok;
	const char *bin = ts_mmo_bin();
	int *fd = malloc(FLOOD * sizeof(*fd)), held = 0, refused = 0, timed_out = 0;
	struct gwt g = {0};
	struct resp r;
	pid_t p;

	(void)state;
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
			rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	snprintf(data, sizeof(data), "%s/fd", DIR_);
	g.port = ts_free_port();
	snprintf(ha, sizeof(ha), "127.0.0.1:%d", g.port);
	{
		char *argv[] = {"/usr/bin/prlimit",
		                "--nofile=512:512",
		                "--",
		                (char *)bin,
		                "serve",
		                "--data",
		                data,
		                "--redis",
		                REDIS_URL,
		                "--http",
		                ha,
		                NULL};

		snprintf(LOGF, sizeof(LOGF), "%s/fd.log", DIR_);
		p = ts_spawn(argv, LOGF);
		assert_true(p > 0);
		if (!ts_wait_log(LOGF, "serve: ready", 15000))
			fail_msg("serve under prlimit did not get ready (see %s)", LOGF);
	}
	for (int i = 0; i < FLOOD; i++) {
		fd[i] = gwt_dial_from(g.port, 2 + i % 2);
		if (fd[i] >= 0)
			send(fd[i], "GET /api/players/x HTTP/1.1\r\nHost: a\r\n", 38, MSG_NOSIGNAL);
	}
	assert_true(ts_wait_log(LOGF, "connections refused", 5000));
	assert_int_equal(kill(p, 0), 0);
	/* Each flood connection ends: refused at once (EOF or reset), or held
	 * and then answered 408 after the head timeout (10 s). */
	for (int i = 0; i < FLOOD; i++) {
		struct pollfd pf = {fd[i], POLLIN, 0};
		char buf[64];
		ssize_t n;

		if (fd[i] < 0) {
			refused++;
			continue;
		}
		if (poll(&pf, 1, 15000) != 1)
			fail_msg("flood connection %d was neither refused nor timed out", i);
		n = recv(fd[i], buf, sizeof(buf), 0);
		if (n > 12 && !memcmp(buf, "HTTP/1.1 408", 12))
			timed_out++;
		else
			refused++;
		close(fd[i]);
	}
	held = timed_out;
	assert_int_equal(timed_out + refused, FLOOD);
	assert_true(held > 100 && refused > 100);
	/* Serving as before. */
	gwt_user(&g, "after_flood", "after the flood", pid_s, &tok);
	assert_int_equal(gwt_post(&g, "/api/combat/attack", tok,
	                          "{\"defender_id\":\"p_nobody\",\"skill_id\":\"slash\"}", &r),
	                 422);
	resp_free(&r);
	assert_true(gwt_metric(&g, "mmo_gw_connections_refused_total{reason=\"descriptors\"}") > 0);
	free(tok);
	free(fd);
	assert_int_equal(ts_stop(p, SIGTERM, 10000), 0);
}

/* A Redis password never reaches a log line or /metrics. */
static void test_the_redis_password_is_not_logged(void **state)
{
	char data[4300], url[128], ha[32], buf[1 << 16];
	struct gwt g = {0};
	struct resp r;
	size_t n;
	FILE *f;
	pid_t p;

	(void)state;
	snprintf(data, sizeof(data), "%s/pw", DIR_);
	snprintf(url, sizeof(url), "redis://someone:s3cret-pw-77@127.0.0.1:%d/2", ts_free_port());
	g.port = ts_free_port();
	snprintf(ha, sizeof(ha), "127.0.0.1:%d", g.port);
	{
		char *argv[] = {(char *)ts_mmo_bin(),
		                "serve",
		                "--data",
		                data,
		                "--redis",
		                url,
		                "--http",
		                ha,
		                NULL};

		snprintf(LOGF, sizeof(LOGF), "%s/pw.log", DIR_);
		p = ts_spawn(argv, LOGF);
		assert_true(p > 0);
		if (!ts_wait_log(LOGF, "serve: ready", 15000))
			fail_msg("serve did not get ready (see %s)", LOGF);
	}
	assert_int_equal(gwt_get(&g, "/metrics", NULL, &r), 200);
	assert_null(strstr(r.body, "s3cret"));
	resp_free(&r);
	gwt_sleep_ms(300);
	assert_int_equal(ts_stop(p, SIGTERM, 10000), 0);
	f = fopen(LOGF, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	assert_non_null(strstr(buf, "redis 127.0.0.1:")); /* the server is named */
	assert_null(strstr(buf, "s3cret"));
	assert_null(strstr(buf, "someone:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_move_through_gateway_a_reaches_a_socket_on_gateway_b),
	    cmocka_unit_test(test_kill_between_decision_and_commit_keeps_the_answer),
	    cmocka_unit_test(test_a_flood_past_the_descriptor_limit_is_survived),
	    cmocka_unit_test(test_the_redis_password_is_not_logged),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
