/* redis.c - a pool of hiredis connections for the request threads.
 *
 * A hiredis context is not thread-safe, so each command takes a context
 * from the pool (or connects a new one), runs, and gives it back; a
 * context that failed is freed instead. The pool keeps as many idle
 * contexts as threads may use it at once (the caller says how many), so
 * under load no command pays a connect. Connects and commands are bounded
 * by a timeout; after a failed connect, callers fail fast for a short
 * backoff instead of each paying the timeout. Arguments always travel as
 * separate, binary-safe values (hiredis %s), never spliced into a command.
 */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "redis.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_redis_url.h"
#include "schemas/mmo_util.h"

#define TIMEOUT_MS 500
#define BACKOFF_US 200000

struct gw_redis {
	char host[256];
	int port;
	char user[128], pass[512];
	int db;
	pthread_mutex_t mu;
	redisContext **idle;
	size_t nidle, cap;
	int64_t down_until;
	bool was_down;
	struct gw_metrics *m; /* borrowed */
};

static int parse_url(struct gw_redis *r, const char *url, char *err, size_t errlen)
{
	struct mmo_redis_url u;
	int rc = mmo_redis_url_parse(url, &u, err, errlen);

	if (rc)
		return rc;
	snprintf(r->host, sizeof(r->host), "%s", u.host);
	snprintf(r->user, sizeof(r->user), "%s", u.user);
	snprintf(r->pass, sizeof(r->pass), "%s", u.password);
	r->port = u.port;
	r->db = u.db;
	sodium_memzero(&u, sizeof(u));
	return MMO_OK;
}

int gw_redis_new(const char *url, size_t users, struct gw_metrics *m, struct gw_redis **out,
                 char *err, size_t errlen)
{
	struct gw_redis *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return MMO_ENOMEM;
	r->cap = users ? users : 1;
	r->idle = calloc(r->cap, sizeof(*r->idle));
	if (!r->idle) {
		free(r);
		return MMO_ENOMEM;
	}
	r->m = m;
	rc = parse_url(r, url, err, errlen);
	if (rc) {
		free(r->idle);
		free(r);
		return rc;
	}
	pthread_mutex_init(&r->mu, NULL);
	*out = r;
	return MMO_OK;
}

void gw_redis_free(struct gw_redis *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nidle; i++)
		redisFree(r->idle[i]);
	free(r->idle);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static bool ok_reply(redisReply *rep)
{
	return rep && rep->type != REDIS_REPLY_ERROR;
}

static redisContext *connect_one(struct gw_redis *r)
{
	struct timeval tv = {0, TIMEOUT_MS * 1000};
	redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
	redisReply *rep;

	if (!c || c->err)
		goto fail;
	redisSetTimeout(c, tv);
	if (r->pass[0]) {
		rep = r->user[0] ? redisCommand(c, "AUTH %s %s", r->user, r->pass)
		                 : redisCommand(c, "AUTH %s", r->pass);
		bool ok = ok_reply(rep);
		freeReplyObject(rep);
		if (!ok)
			goto fail;
	}
	if (r->db) {
		rep = redisCommand(c, "SELECT %d", r->db);
		bool ok = ok_reply(rep);
		freeReplyObject(rep);
		if (!ok)
			goto fail;
	}
	return c;
fail:
	if (c)
		redisFree(c);
	return NULL;
}

redisContext *gw_redis_connect(struct gw_redis *r)
{
	return connect_one(r);
}

int gw_redis_db(const struct gw_redis *r)
{
	return r->db;
}

static redisContext *get(struct gw_redis *r)
{
	redisContext *c = NULL;
	int64_t now = mmo_mono_us();

	pthread_mutex_lock(&r->mu);
	if (r->nidle)
		c = r->idle[--r->nidle];
	else if (now < r->down_until) {
		pthread_mutex_unlock(&r->mu);
		return NULL;
	}
	pthread_mutex_unlock(&r->mu);
	if (c)
		return c;
	c = connect_one(r);
	pthread_mutex_lock(&r->mu);
	if (!c) {
		r->down_until = mmo_mono_us() + BACKOFF_US;
		if (!r->was_down)
			mmo_logf(MMO_LOG_WARN, "gateway", "redis %s:%d unreachable", r->host,
			         r->port);
		r->was_down = true;
	} else if (r->was_down) {
		mmo_logf(MMO_LOG_INFO, "gateway", "redis %s:%d reachable again", r->host, r->port);
		r->was_down = false;
	}
	pthread_mutex_unlock(&r->mu);
	return c;
}

static void put(struct gw_redis *r, redisContext *c, bool ok)
{
	if (!ok || c->err) {
		redisFree(c);
		return;
	}
	pthread_mutex_lock(&r->mu);
	if (r->nidle < r->cap) {
		r->idle[r->nidle++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	if (c)
		redisFree(c);
}

struct redisReply *gw_redis_cmd(struct gw_redis *r, const char *fmt, ...)
{
	redisContext *c;
	redisReply *rep;
	int64_t t0;
	va_list ap;

	for (int attempt = 0; attempt < 2; attempt++) {
		c = get(r);
		if (!c)
			break;
		t0 = mmo_mono_us();
		va_start(ap, fmt);
		rep = redisvCommand(c, fmt, ap);
		va_end(ap);
		mmo_hist_observe(&r->m->redis_lat, mmo_mono_us() - t0);
		if (rep) {
			put(r, c, true);
			if (rep->type == REDIS_REPLY_ERROR) {
				mmo_logf(MMO_LOG_WARN, "gateway", "redis error: %.200s", rep->str);
				freeReplyObject(rep);
				gw_metrics_error(r->m, GW_F_REDIS);
				return NULL;
			}
			return rep;
		}
		/* A pooled connection may have been closed by the server (restart,
		 * timeout): retry once on a fresh one. */
		put(r, c, false);
	}
	gw_metrics_error(r->m, GW_F_REDIS);
	return NULL;
}

bool gw_redis_up(struct gw_redis *r)
{
	redisReply *rep = gw_redis_cmd(r, "PING");
	bool up = rep != NULL;

	freeReplyObject(rep);
	return up;
}

int gw_redis_pipe(struct gw_redis *r, const char *fmt, const char *const *args, size_t n,
                  struct redisReply **replies)
{
	redisContext *c = get(r);
	int64_t t0 = mmo_mono_us();
	size_t got = 0;
	bool ok = true;

	for (size_t i = 0; i < n; i++)
		replies[i] = NULL;
	if (!c) {
		gw_metrics_error(r->m, GW_F_REDIS);
		return MMO_EUNAVAIL;
	}
	for (size_t i = 0; i < n && ok; i++)
		ok = redisAppendCommand(c, fmt, args[i]) == REDIS_OK;
	for (; ok && got < n; got++) {
		void *rep = NULL;

		ok = redisGetReply(c, &rep) == REDIS_OK && rep;
		replies[got] = rep;
	}
	mmo_hist_observe(&r->m->redis_lat, mmo_mono_us() - t0);
	put(r, c, ok);
	if (!ok) {
		for (size_t i = 0; i < n; i++) {
			freeReplyObject(replies[i]);
			replies[i] = NULL;
		}
		gw_metrics_error(r->m, GW_F_REDIS);
		return MMO_EUNAVAIL;
	}
	return MMO_OK;
}

long long gw_redis_int(const struct redisReply *r)
{
	return r && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
}

void gw_redis_reply_free(struct redisReply *r)
{
	if (r)
		freeReplyObject(r);
}
