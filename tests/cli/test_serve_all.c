/* test_serve_all.c - the whole backend in one `mmo serve`: log, world, views
 * and gateway against a real redis-server; /health follows the views.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <zmq.h>

#include "log/evlog.h"
#include "testsupport.h"

/* GET path from 127.0.0.1:port; body receives the response body. Returns the
 * HTTP status, or -1. */
static int http_get(int port, const char *path, char *body, size_t cap)
{
	struct sockaddr_in a = {0};
	struct timeval tv = {5, 0};
	char req[256], buf[262144];
	size_t len = 0;
	ssize_t n;
	int fd, status = -1;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
		status = -1;
	const char *b = strstr(buf, "\r\n\r\n");
	snprintf(body, cap, "%s", b ? b + 4 : "");
out:
	close(fd);
	return status;
}

/* Append n player.register events (facts the views write) through the ingest. */
static void append_registrations(const char *ingest, const char *prefix, int n)
{
	void *z = zmq_ctx_new();
	evlog_client *c;
	uint8_t buf[512];

	assert_int_equal(evlog_client_open(z, ingest, 5000, &c), MMO_OK);
	for (int i = 0; i < n; i++) {
		struct mmo_ev b;
		char id[64], pid[64];
		struct evlog_in in;
		uint64_t seq;
		int err;

		snprintf(id, sizeof(id), "%s-%d", prefix, i);
		snprintf(pid, sizeof(pid), "p_%s_%d", prefix, i);
		assert_int_equal(mmo_ev_init(&b, "player.register", id, pid, NULL), MMO_OK);
		b.body.player_register.username = pid;
		assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &in.len), MMO_OK);
		in.buf = buf;
		in.priority = 1;
		assert_int_equal(evlog_client_append(c, &in, 1, &seq, &err), MMO_OK);
		assert_int_equal(err, MMO_OK);
	}
	evlog_client_close(c);
	zmq_ctx_term(z);
}

/* Poll /health until its status is want (up to timeout_ms). */
static int wait_health(int port, int want, char *body, size_t cap, int timeout_ms)
{
	int st = -1;

	for (int waited = 0; waited <= timeout_ms; waited += 200) {
		st = http_get(port, "/health", body, cap);
		if (st == want)
			return st;
		usleep(200 * 1000);
	}
	return st;
}

static void health_is_degraded_while_the_views_store_is_down(void **state)
{
	char dir[4096], rdir[4200], data[4200], logf[4200], redis[64], http[64], ingest[64],
	    bus[64], body[262144];
	int rport, hport, status;
	pid_t rpid, spid;

	(void)state;
	assert_int_equal(ts_tmpdir(dir, sizeof(dir)), 0);
	snprintf(rdir, sizeof(rdir), "%s/redis", dir);
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(logf, sizeof(logf), "%s/serve.log", dir);
	{
		char cmd[4300];

		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", rdir);
		assert_int_equal(system(cmd), 0);
	}
	rpid = ts_redis_start(rdir, &rport, NULL);
	if (rpid < 0) {
		skip(); /* redis-server missing: tools/deps installs it */
	}
	hport = ts_free_port();
	snprintf(redis, sizeof(redis), "redis://127.0.0.1:%d", rport);
	snprintf(http, sizeof(http), "127.0.0.1:%d", hport);
	snprintf(ingest, sizeof(ingest), "tcp://127.0.0.1:%d", ts_free_port());
	snprintf(bus, sizeof(bus), "tcp://127.0.0.1:%d", ts_free_port());
	char *argv[] = {
	    (char *)ts_mmo_bin(), "serve", "--data", data, "--redis", redis, "--http", http,
	    "--ingest",           ingest,  "--bus",  bus,  NULL};
	spid = ts_spawn(argv, logf);
	assert_true(spid > 0);
	assert_true(ts_wait_log(logf, "ready: roles=log,world,views,gateway", 15000));

	/* All up: 200, the views check names what runs. */
	append_registrations(ingest, "a", 5);
	assert_int_equal(wait_health(hport, 200, body, sizeof(body), 10000), 200);
	assert_non_null(strstr(body, "\"status\":\"ok\""));
	assert_non_null(strstr(body, "redis on, mongo off (no --mongo-uri)"));
	/* /metrics covers every role of the process. */
	assert_int_equal(http_get(hport, "/metrics", body, sizeof(body)), 200);
	assert_non_null(strstr(body, "mmo_gw_"));
	assert_non_null(strstr(body, "\nmmo_log_head_seq 5\n"));
	assert_non_null(strstr(body, "\nmmo_log_events_appended_total 5\n"));
	assert_non_null(strstr(body, "\nmmo_world_seq "));
	assert_non_null(strstr(body, "mmo_views_"));
	/* The bus subscribers' gap counters, per role (0 until a role's
	 * subscriber names itself: projector/ sets evlog_sub_opts.role). */
	assert_non_null(strstr(body, "\n# TYPE mmo_bus_gaps_total counter\n"));
	assert_non_null(strstr(body, "\nmmo_bus_gaps_total{role=\"world\"} "));
	assert_non_null(strstr(body, "\nmmo_bus_gaps_total{role=\"views\"} "));
	assert_non_null(strstr(body, "\nmmo_bus_gap_events_filled_total{role=\"world\"} "));
	assert_non_null(strstr(body, "\nmmo_bus_gap_events_filled_total{role=\"views\"} "));

	/* The views' store goes away: 503 degraded, the views check failing. */
	assert_true(ts_stop(rpid, SIGKILL, 5000) >= 0);
	append_registrations(ingest, "b", 5); /* the views must try, and fail */
	assert_int_equal(wait_health(hport, 503, body, sizeof(body), 15000), 503);
	assert_non_null(strstr(body, "\"status\":\"degraded\""));
	for (int waited = 0; waited < 15000 && !strstr(body, "\"views\":{\"ok\":false");
	     waited += 200) {
		usleep(200 * 1000);
		http_get(hport, "/health", body, sizeof(body));
	}
	assert_non_null(strstr(body, "\"views\":{\"ok\":false"));

	/* Back on the same port: healthy again. */
	{
		char conf[4300];
		FILE *f;

		rpid = -1;
		for (int tries = 0; tries < 3 && rpid < 0; tries++) {
			char rdir2[4300];
			int p2 = rport;

			snprintf(rdir2, sizeof(rdir2), "%s", rdir);
			/* ts_redis_start picks a free port: write the config by hand. */
			snprintf(conf, sizeof(conf), "%s/redis2.conf", rdir);
			f = fopen(conf, "w");
			assert_non_null(f);
			fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n",
			        p2, rdir2);
			fclose(f);
			char *rargv[] = {"/usr/bin/redis-server", conf, NULL};
			char rlog[4400];

			snprintf(rlog, sizeof(rlog), "%s/redis2.log", rdir);
			rpid = ts_spawn(rargv, rlog);
			if (!ts_wait_log(rlog, "Ready to accept connections", 10000)) {
				ts_stop(rpid, SIGKILL, 1000);
				rpid = -1;
			}
		}
		assert_true(rpid > 0);
	}
	assert_int_equal(wait_health(hport, 200, body, sizeof(body), 20000), 200);
	assert_non_null(strstr(body, "\"views\":{\"ok\":true"));

	status = ts_stop(spid, SIGTERM, 15000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(ts_wait_log(logf, "serve: stopped:", 100));
	ts_stop(rpid, SIGTERM, 5000);
	ts_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(health_is_degraded_while_the_views_store_is_down),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
