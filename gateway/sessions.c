/* sessions.c - a short-lived cache of checked sessions.
 *
 * Every authenticated request used to ask Redis whether its session
 * (mmo:session:{jti}) still exists: one round trip per request, the most
 * expensive step of a move after the log's commit. A session that Redis
 * confirmed is now trusted for ttl_ms (default 2 s), and only while this
 * gateway is subscribed to the keyspace notifications of mmo:session:*:
 * a DEL (logout on any gateway, or an operator), an overwrite, an expiry or
 * an eviction of the key reaches every gateway within the pub/sub delay
 * and drops the entry, so revocation stays immediate everywhere.
 *
 * Correctness of a put: the mark is taken before the GET is sent. A change
 * to the key after Redis answered the GET is notified after that answer;
 * either its notification came before the put (the counter moved: the put
 * is refused) or after (it drops the entry). The subscription going down
 * (Redis restarted, connection lost) turns the cache off and empties it; it
 * comes back empty. What remains: a FLUSHALL or a Redis that stalls without
 * closing the connection is seen at most ttl_ms late.
 *
 * The subscriber enables the notifications it needs ("Kg$xe", merged with
 * what the server has) with CONFIG SET; where CONFIG is not allowed (an ACL)
 * and they are not on already, the cache stays off and says so once.
 * Slots are indexed by FNV-1a of the jti, which comes from a token this
 * gateway signed, so clients cannot choose colliding keys.
 */
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schemas/event.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_hash.h"
#include "schemas/mmo_util.h"
#include "sessions.h"

#define WANT_FLAGS "Kg$xe" /* keyspace; generic, string, expired, evicted */
#define RETRY_MS   200
#define REFUSED_MS 5000
#define POLL_MS    100

struct slot {
	char jti[MMO_ID_MAX + 1];
	char sub[MMO_ID_MAX + 1];
	int64_t at_us; /* 0: empty */
};

struct gw_sessions {
	struct gw_redis *r;
	struct gw_metrics *m;
	void (*gone)(void *arg, const char *jti);
	void *gone_arg;
	int64_t ttl_us;
	pthread_mutex_t mu;
	struct slot *slots;
	size_t mask;
	uint64_t changes; /* notifications and resets so far (under mu) */
	bool live;        /* subscribed (under mu) */
	pthread_t th;
	bool started;
	atomic_bool stop;
};

static struct slot *slot_of(struct gw_sessions *s, const char *jti)
{
	return &s->slots[mmo_fnv1a_str(jti) & s->mask];
}

/* Turn the cache on or off; either way it starts empty. */
static void set_live(struct gw_sessions *s, bool live)
{
	pthread_mutex_lock(&s->mu);
	s->live = live;
	s->changes++;
	memset(s->slots, 0, (s->mask + 1) * sizeof(*s->slots));
	pthread_mutex_unlock(&s->mu);
	atomic_store(&s->m->sess_live, live ? 1 : 0);
}

bool gw_sess_live(struct gw_sessions *s)
{
	bool live;

	if (!s || !s->slots)
		return false;
	pthread_mutex_lock(&s->mu);
	live = s->live;
	pthread_mutex_unlock(&s->mu);
	return live;
}

bool gw_sess_hit(struct gw_sessions *s, const char *jti, const char *sub)
{
	struct slot *e;
	bool hit = false;

	if (!s || !s->slots)
		return false;
	pthread_mutex_lock(&s->mu);
	e = slot_of(s, jti);
	if (s->live && e->at_us && mmo_mono_us() - e->at_us < s->ttl_us && !strcmp(e->jti, jti) &&
	    !strcmp(e->sub, sub))
		hit = true;
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add(hit ? &s->m->sess_hits : &s->m->sess_misses, 1);
	return hit;
}

uint64_t gw_sess_mark(struct gw_sessions *s)
{
	uint64_t mark;

	if (!s || !s->slots)
		return 0;
	pthread_mutex_lock(&s->mu);
	mark = s->changes;
	pthread_mutex_unlock(&s->mu);
	return mark;
}

void gw_sess_put(struct gw_sessions *s, uint64_t mark, const char *jti, const char *sub)
{
	struct slot *e;

	if (!s || !s->slots || strlen(jti) > MMO_ID_MAX || strlen(sub) > MMO_ID_MAX)
		return;
	pthread_mutex_lock(&s->mu);
	if (s->live && s->changes == mark) {
		e = slot_of(s, jti);
		strcpy(e->jti, jti);
		strcpy(e->sub, sub);
		e->at_us = mmo_mono_us();
	}
	pthread_mutex_unlock(&s->mu);
}

void gw_sess_drop(struct gw_sessions *s, const char *jti)
{
	struct slot *e;

	if (!s || !s->slots)
		return;
	pthread_mutex_lock(&s->mu);
	s->changes++;
	e = slot_of(s, jti);
	if (!strcmp(e->jti, jti))
		e->at_us = 0;
	pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- subscriber */

static bool sleep_ms(struct gw_sessions *s, int ms)
{
	for (int t = 0; t < ms && !atomic_load(&s->stop); t += 50) {
		struct timespec d = {0, 50 * 1000000L};

		nanosleep(&d, NULL);
	}
	return !atomic_load(&s->stop);
}

/* Make sure the server publishes what we need; false if it will not. */
static bool enable_notifications(redisContext *c)
{
	redisReply *rep = redisCommand(c, "CONFIG GET notify-keyspace-events");
	char flags[64] = "";
	size_t n;
	bool ok;

	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[1]->type == REDIS_REPLY_STRING)
		snprintf(flags, sizeof(flags), "%s", rep->element[1]->str);
	freeReplyObject(rep);
	n = strlen(flags);
	for (const char *f = WANT_FLAGS; *f; f++) {
		bool have = strchr(flags, *f) || (*f != 'K' && strchr(flags, 'A'));

		if (!have && n + 1 < sizeof(flags)) {
			flags[n++] = *f;
			flags[n] = '\0';
		}
	}
	rep = redisCommand(c, "CONFIG SET notify-keyspace-events %s", flags);
	ok = rep && rep->type == REDIS_REPLY_STATUS;
	freeReplyObject(rep);
	return ok;
}

/* A notification: channel __keyspace@DB__:mmo:session:{jti}, message the
 * event ("del", "set", "expired", "evicted", ...). */
static void on_message(struct gw_sessions *s, redisReply *rep, size_t prefix_len)
{
	redisReply *ch, *ev;
	const char *jti;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4)
		return;
	ch = rep->element[2];
	ev = rep->element[3];
	if (ch->type != REDIS_REPLY_STRING || ch->len <= prefix_len)
		return;
	jti = ch->str + prefix_len;
	gw_sess_drop(s, jti);
	/* An expiry is the token's own end: the sockets' periodic check closes
	 * them with "token expired". */
	if (s->gone && ev->type == REDIS_REPLY_STRING && mmo_id_valid(jti) &&
	    (!strcmp(ev->str, "del") || !strcmp(ev->str, "evicted")))
		s->gone(s->gone_arg, jti);
}

/* Serve one subscription until it fails or we stop. */
static void subscribed(struct gw_sessions *s, redisContext *c, const char *pattern)
{
	size_t prefix_len = strlen(pattern) - 1; /* without the '*' */
	struct pollfd p = {c->fd, POLLIN, 0};
	void *rep;

	set_live(s, true);
	mmo_logf(MMO_LOG_INFO, "gateway", "session cache on (keyspace notifications of %s)",
	         pattern);
	while (!atomic_load(&s->stop)) {
		while (redisReaderGetReply(c->reader, &rep) == REDIS_OK && rep) {
			on_message(s, rep, prefix_len);
			freeReplyObject(rep);
		}
		if (c->reader->err)
			break;
		int n = poll(&p, 1, POLL_MS);

		if (n < 0 || (n > 0 && redisBufferRead(c) != REDIS_OK))
			break;
	}
	set_live(s, false);
	if (!atomic_load(&s->stop))
		mmo_logf(MMO_LOG_WARN, "gateway",
		         "session cache off: the subscription to Redis was lost; "
		         "every request asks Redis until it is back");
}

static void *sub_main(void *arg)
{
	struct gw_sessions *s = arg;
	char pattern[64];
	bool said_refused = false;

	mmo_thread_name("gw-sessions");
	snprintf(pattern, sizeof(pattern), "__keyspace@%d__:mmo:session:*", gw_redis_db(s->r));
	while (!atomic_load(&s->stop)) {
		redisContext *c = gw_redis_connect(s->r);
		redisReply *rep;

		if (!c) {
			sleep_ms(s, RETRY_MS);
			continue;
		}
		if (!enable_notifications(c)) {
			if (!said_refused)
				mmo_logf(MMO_LOG_WARN, "gateway",
				         "session cache off: Redis refused CONFIG SET "
				         "notify-keyspace-events; every request asks Redis");
			said_refused = true;
			redisFree(c);
			sleep_ms(s, REFUSED_MS);
			continue;
		}
		rep = redisCommand(c, "PSUBSCRIBE %s", pattern);
		if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
			freeReplyObject(rep);
			subscribed(s, c, pattern);
		} else {
			freeReplyObject(rep);
		}
		redisFree(c);
		sleep_ms(s, RETRY_MS);
	}
	return NULL;
}

int gw_sess_new(struct gw_redis *r, int ttl_ms, size_t slots, struct gw_metrics *m,
                void (*gone)(void *arg, const char *jti), void *arg, struct gw_sessions **out)
{
	struct gw_sessions *s = calloc(1, sizeof(*s));

	if (!s)
		return MMO_ENOMEM;
	s->r = r;
	s->m = m;
	s->gone = gone;
	s->gone_arg = arg;
	pthread_mutex_init(&s->mu, NULL);
	*out = s;
	if (ttl_ms <= 0)
		return MMO_OK; /* no cache: every check asks Redis */
	while (slots & (slots - 1))
		slots &= slots - 1;
	if (!slots)
		slots = 1;
	s->slots = calloc(slots, sizeof(*s->slots));
	if (!s->slots) {
		gw_sess_free(s);
		*out = NULL;
		return MMO_ENOMEM;
	}
	s->mask = slots - 1;
	s->ttl_us = (int64_t)ttl_ms * 1000;
	return MMO_OK;
}

int gw_sess_start(struct gw_sessions *s)
{
	if (!s || !s->slots || s->started)
		return MMO_OK;
	if (pthread_create(&s->th, NULL, sub_main, s))
		return MMO_ENOMEM;
	s->started = true;
	return MMO_OK;
}

void gw_sess_stop(struct gw_sessions *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	if (s->started)
		pthread_join(s->th, NULL);
	s->started = false;
}

void gw_sess_free(struct gw_sessions *s)
{
	if (!s)
		return;
	gw_sess_stop(s);
	free(s->slots);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
