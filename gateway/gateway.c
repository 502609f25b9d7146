/* gateway.c - the gateway's life: options, start, the housekeeping thread,
 * stop. See gateway.h for the contract and docs/gateway.md for the design.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt.h"
#include "schemas/mmo_redis_url.h"
#include "schemas/mmo_util.h"

#define HOUSE_TICK_MS 100

static void defaults(gw *g, const struct gw_opts *in)
{
	struct gw_opts *o = &g->o;

	*o = *in;
	snprintf(g->http, sizeof(g->http), "%s", in->http ? in->http : "127.0.0.1:8080");
	snprintf(g->redis_url, sizeof(g->redis_url), "%s",
	         in->redis_url ? in->redis_url : "redis://127.0.0.1:6379");
	snprintf(g->data_dir, sizeof(g->data_dir), "%s", in->data_dir ? in->data_dir : "./data");
	snprintf(g->ingest, sizeof(g->ingest), "%s", in->ingest ? in->ingest : "");
	snprintf(g->bus, sizeof(g->bus), "%s", in->bus ? in->bus : "");
	o->http = g->http;
	o->redis_url = g->redis_url;
	o->data_dir = g->data_dir;
	o->ingest = g->ingest;
	o->bus = g->bus;
	o->jwt_key = NULL; /* copied into g->key; not kept */
#define DEF(f, v)                                                                                  \
	if (o->f <= 0)                                                                             \
	o->f = (v)
	DEF(outcome_timeout_ms, 2000);
	DEF(log_timeout_ms, 3000);
	DEF(http_threads, 300);
	DEF(token_ttl_s, 3600);
	DEF(aoi_radius, 100.0);
	DEF(ws_queue_max, 256);
	DEF(ws_slow_ms, 2000);
	DEF(ws_max, 100000);
	if (o->conns_per_addr == 0) /* < 0: no cap */
		o->conns_per_addr = 1000;
	DEF(ws_workers, 32);
	DEF(session_check_ms, 1000);
	if (o->session_cache_ms == 0)
		o->session_cache_ms = 2000;
	DEF(head_timeout_ms, 10000);
	DEF(security_window_ms, 10000);
	DEF(login_fail_user, 5);
	DEF(login_fail_addr, 20);
	DEF(login_fail_window_s, 60);
	DEF(rate_high, 10.0);
	DEF(rate_medium, 20.0);
	DEF(health_queue_depth, 1000);
	DEF(health_latency_ms, 100);
	DEF(health_error_rate, 0.01);
	DEF(health_window_s, 10);
	DEF(coord_max, 1e6);
#undef DEF
	if (o->http_threads < 8)
		o->http_threads = 8;
}

static void *house_main(void *arg)
{
	gw *g = arg;
	int64_t last_health = mmo_mono_us(), last_purge = last_health;
	struct timespec dl;

	mmo_thread_name("gw-house");
	pthread_mutex_lock(&g->house_mu);
	while (!atomic_load(&g->stopping)) {
		int64_t now;

		clock_gettime(CLOCK_MONOTONIC, &dl);
		dl.tv_nsec += HOUSE_TICK_MS * 1000000L;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->house_cv, &g->house_mu, &dl);
		if (atomic_load(&g->stopping))
			break;
		pthread_mutex_unlock(&g->house_mu);
		now = mmo_mono_us();
		gw_sec_flush(g, now, false);
		if (now - last_health >= 1000000) {
			last_health = now;
			gw_health_tick(g, now);
		}
		if (now - last_purge >= 10000000) {
			last_purge = now;
			gw_rl_purge(g->rl_user, now);
			gw_rl_purge(g->rl_addr, now);
			gw_rl_purge(g->rl_player, now);
		}
		pthread_mutex_lock(&g->house_mu);
	}
	pthread_mutex_unlock(&g->house_mu);
	return NULL;
}

static int log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	mmo_logf(MMO_LOG_DEBUG, "gateway", "civetweb: %.300s", message);
	return 1;
}

static int start_http(gw *g, char *err, size_t errlen)
{
	char threads[16], reqmax[16];
	const char *opts[] = {
	    "listening_ports",
	    "127.0.0.1:0", /* the event loop relays to it (front.c) */
	    "num_threads",
	    threads,
	    "request_timeout_ms",
	    "10000",
	    "enable_keep_alive",
	    "yes",
	    "keep_alive_timeout_ms",
	    "30000",
	    "websocket_timeout_ms",
	    "30000",
	    "enable_websocket_ping_pong",
	    "yes",
	    "max_request_size",
	    reqmax,
	    "listen_backlog",
	    "1024",
	    "tcp_nodelay",
	    "1",
	    NULL,
	};
	struct mg_callbacks cb;
	struct mg_server_port ports[4];

	memset(&cb, 0, sizeof(cb));
	cb.log_message = log_message;
	snprintf(threads, sizeof(threads), "%d", g->o.http_threads);
	snprintf(reqmax, sizeof(reqmax), "%d", 16384);
	g->mg = mg_start(&cb, g, opts);
	if (!g->mg) {
		snprintf(err, errlen, "cannot start the HTTP server on a loopback port");
		return MMO_EIO;
	}
	mg_set_request_handler(g->mg, "**", gw_http_handler, g);
	memset(ports, 0, sizeof(ports));
	if (mg_get_server_ports(g->mg, 4, ports) > 0)
		g->mg_port = ports[0].port;
	return rt_start(g, g->http, g->mg_port, &g->rt, &g->port, err, errlen);
}

/* A session key was deleted (a logout on any gateway, an operator): its
 * WebSockets here are closed at once, not at the next session check. */
static void session_gone(void *arg, const char *jti)
{
	gw_ws_close_session(arg, jti, "session revoked");
}

int gw_start(const struct gw_opts *in, gw **out, char *err, size_t errlen)
{
	char dummy[8];
	gw *g;
	int rc;

	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!in || !out || !in->zctx || !in->ingest || !in->bus) {
		snprintf(err, errlen, "the gateway needs a ZeroMQ context, an ingest and a bus");
		return MMO_EINVAL;
	}
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return MMO_EIO;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return MMO_ENOMEM;
	defaults(g, in);
	pthread_mutex_init(&g->reg_mu, NULL);
	pthread_mutex_init(&g->peer_mu, NULL);
	pthread_mutex_init(&g->house_mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&g->house_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	sem_init(&g->pw_sem, 0, GW_PW_PARALLEL);
	mg_init_library(0);
	if (gw_pw_hash("not a password: equalises timing", 32, g->dummy_hash)) {
		snprintf(err, errlen, "cannot hash (out of memory)");
		rc = MMO_ENOMEM;
		goto fail;
	}
	rc = gw_accts_open(g->data_dir, &g->accts, err, errlen);
	if (rc)
		goto fail;
	rc = gw_key_load(&g->key, g->data_dir, in->jwt_key, err, errlen);
	if (rc)
		goto fail;
	rc = gw_redis_new(g->redis_url, gw_pool_users(&g->o), &g->m, &g->redis, err, errlen);
	if (rc)
		goto fail;
	rc = gw_sess_new(g->redis, g->o.session_cache_ms, 65536, &g->m, session_gone, g, &g->sess);
	if (rc) {
		snprintf(err, errlen, "out of memory or threads");
		goto fail;
	}
	if (gw_rl_new(65536, &g->rl_user) || gw_rl_new(65536, &g->rl_addr) ||
	    gw_rl_new(262144, &g->rl_player) || gw_sec_new(&g->sec) ||
	    gw_health_new(g, &g->health)) {
		snprintf(err, errlen, "out of memory");
		rc = MMO_ENOMEM;
		goto fail;
	}
	g->peers = calloc(65536, sizeof(*g->peers));
	if (!g->peers || jobs_start(g, g->o.ws_workers, &g->jobs)) {
		snprintf(err, errlen, "out of memory or threads");
		rc = MMO_ENOMEM;
		goto fail;
	}
	rc = gw_intents_start(g, &g->intents, err, errlen);
	if (rc)
		goto fail;
	gw_health_tick(g, mmo_mono_us());
	rc = start_http(g, err, errlen);
	if (rc)
		goto fail;
	rc = follower_start(g, &g->follow, err, errlen);
	if (rc)
		goto fail;
	if (gw_sess_start(g->sess)) {
		snprintf(err, errlen, "cannot start the session cache's thread");
		rc = MMO_ENOMEM;
		goto fail;
	}
	if (pthread_create(&g->house, NULL, house_main, g)) {
		snprintf(err, errlen, "cannot start the housekeeping thread");
		rc = MMO_EIO;
		goto fail;
	}
	g->house_started = true;
	{
		/* The URL may hold a password: the log line names the server only. */
		struct mmo_redis_url u;
		char where[300] = "?";

		if (mmo_redis_url_parse(g->redis_url, &u, NULL, 0) == MMO_OK)
			snprintf(where, sizeof(where), "%s:%d/%d%s", u.host, u.port, u.db,
			         u.password[0] ? " (with AUTH)" : "");
		mmo_logf(MMO_LOG_INFO, "gateway",
		         "listening on http://%s (port %d), redis %s, log %s", g->http, g->port,
		         where, g->ingest);
	}
	*out = g;
	return MMO_OK;
fail:
	gw_stop(g);
	return rc;
}

int gw_port(const gw *g)
{
	return g ? g->port : 0;
}

void gw_stop(gw *g)
{
	if (!g)
		return;
	atomic_store(&g->stopping, true);
	gw_sess_stop(g->sess); /* its notifications post to the loop */
	if (g->house_started) {
		pthread_mutex_lock(&g->house_mu);
		pthread_cond_signal(&g->house_cv);
		pthread_mutex_unlock(&g->house_mu);
		pthread_join(g->house, NULL);
	}
	follower_stop(g->follow);
	if (g->mg)
		mg_stop(g->mg);
	jobs_stop(g->jobs); /* runs what is queued: it may post to the loop */
	rt_stop(g->rt);
	g->rt = NULL;
	if (g->intents && g->sec)
		gw_sec_flush(g, mmo_mono_us(), true);
	gw_intents_stop(g->intents);
	free(g->peers);
	pthread_mutex_destroy(&g->peer_mu);
	gw_health_free(g->health);
	gw_sec_free(g->sec);
	gw_rl_free(g->rl_user);
	gw_rl_free(g->rl_addr);
	gw_rl_free(g->rl_player);
	gw_sess_free(g->sess);
	gw_redis_free(g->redis);
	gw_accts_close(g->accts);
	sodium_memzero(&g->key, sizeof(g->key));
	sem_destroy(&g->pw_sem);
	pthread_cond_destroy(&g->house_cv);
	pthread_mutex_destroy(&g->house_mu);
	pthread_mutex_destroy(&g->reg_mu);
	mg_exit_library();
	if (g->port)
		mmo_logf(MMO_LOG_INFO, "gateway", "stopped");
	free(g);
}
