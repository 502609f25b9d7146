/* intent.c - the gateway's side of the log: appending events through a
 * pool of ingest clients, and waiting for the world's outcomes.
 *
 * Appends: a ZeroMQ socket must not be used by two threads at once, so
 * each append takes a client from a mutex-protected pool (creating one when
 * the pool is empty) and gives it back (the pool keeps as many as threads
 * may append at once, so no append opens a socket under load); a client that timed out is closed
 * (its late reply is then never mistaken for another's).
 *
 * Outcomes: an intent's outcome is known as soon as the world decides it
 * (gw_world_decided, called by a world in this process before it appends
 * the outcome: the intent is durable, so the decision is fixed) or, from a
 * world elsewhere, when the committed outcome comes on the bus (follow.c).
 * Either is stored in a ring indexed by cause_seq and wakes the requests
 * waiting for that cause; the ring also answers a request that registers
 * after its outcome passed (the world can beat the log's ack to us).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "schemas/mmo_hash.h"
#include "schemas/mmo_util.h"

#define RING       16384 /* outcomes kept by cause (~9 MB): a late waiter still finds its own */
#define BUCKETS    256
#define ENCODE_MAX 8192

struct waiter {
	uint64_t cause;
	pthread_cond_t cv;
	bool done;
	struct gw_outcome *out;
	struct waiter *next;
};

struct gw_intents {
	gw *g;
	pthread_mutex_t mu;
	struct gw_outcome ring[RING];
	struct waiter *buckets[BUCKETS];
	struct gw_watch *watches[RING]; /* the event loop's waits, by cause */
	struct gw_watch *by_eid[RING];  /* ... and by intent event_id */
	pthread_condattr_t cattr;

	pthread_mutex_t pool_mu;
	evlog_client **idle;
	size_t nidle, cap;
};

/* ---------------------------------------------------------------- client pool */

static evlog_client *pool_get(gw *g)
{
	struct gw_intents *it = g->intents;
	evlog_client *c = NULL;

	pthread_mutex_lock(&it->pool_mu);
	if (it->nidle)
		c = it->idle[--it->nidle];
	pthread_mutex_unlock(&it->pool_mu);
	if (!c && evlog_client_open(g->o.zctx, g->ingest, g->o.log_timeout_ms, &c))
		c = NULL;
	return c;
}

static void pool_put(gw *g, evlog_client *c, bool ok)
{
	struct gw_intents *it = g->intents;

	if (ok) {
		pthread_mutex_lock(&it->pool_mu);
		if (it->nidle < it->cap) {
			it->idle[it->nidle++] = c;
			c = NULL;
		}
		pthread_mutex_unlock(&it->pool_mu);
	}
	evlog_client_close(c);
}

int gw_log_append(gw *g, const Mmo__Event *ev, uint64_t *seq)
{
	uint8_t buf[ENCODE_MAX];
	size_t len;
	int err;

	err = mmo_event_encode(ev, buf, sizeof(buf), &len);
	if (err)
		return err;
	return gw_log_append_raw(g, buf, len, mmo_event_priority(ev), ev->type, seq);
}

int gw_log_append_raw(gw *g, const uint8_t *buf, size_t len, unsigned prio, const char *what,
                      uint64_t *seq)
{
	struct evlog_in in;
	evlog_client *c;
	uint64_t s = 0;
	int err, e = MMO_OK;

	in.buf = buf;
	in.len = len;
	in.priority = prio;
	c = pool_get(g);
	if (!c) {
		gw_metrics_error(&g->m, GW_F_LOG);
		return MMO_EUNAVAIL;
	}
	err = evlog_client_append(c, &in, 1, &s, &e);
	pool_put(g, c, err == MMO_OK || err == MMO_EBUSY);
	if (err) {
		gw_metrics_error(&g->m, GW_F_LOG);
		mmo_logf(MMO_LOG_WARN, "gateway", "append %s: %s", what, mmo_errdesc(err));
		return MMO_EUNAVAIL;
	}
	if (e) {
		gw_metrics_error(&g->m, GW_F_LOG);
		mmo_logf(MMO_LOG_ERROR, "gateway", "the log refused %s: %s", what, mmo_errdesc(e));
		return e;
	}
	*seq = s;
	return MMO_OK;
}

int gw_log_head(gw *g, uint64_t *head)
{
	evlog_client *c;
	int err;

	if (g->o.log)
		return evlog_head(g->o.log, head, NULL);
	c = pool_get(g);
	if (!c)
		return MMO_EUNAVAIL;
	err = evlog_client_head(c, head);
	pool_put(g, c, err == MMO_OK);
	return err;
}

/* ---------------------------------------------------------------- outcomes */

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

bool gw_outcome_of(const Mmo__Event *ev, uint64_t seq, struct gw_outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->cause = ev->cause_seq;
	o->seq = seq;
	copy_str(o->event_id, sizeof(o->event_id), ev->event_id);
	copy_str(o->type, sizeof(o->type), ev->type);
	copy_str(o->region_id, sizeof(o->region_id), ev->region_id);
	switch (ev->body_case) {
	case MMO__EVENT__BODY_WORLD_UPDATE:
		if (!ev->world_update->position)
			return false;
		o->x = ev->world_update->position->x;
		o->y = ev->world_update->position->y;
		o->z = ev->world_update->position->z;
		return true;
	case MMO__EVENT__BODY_COMBAT_RESULT:
		copy_str(o->result, sizeof(o->result), ev->combat_result->result);
		o->damage = ev->combat_result->damage;
		o->defender_hp = ev->combat_result->defender_hp;
		return true;
	case MMO__EVENT__BODY_WORLD_REJECT:
		copy_str(o->reason, sizeof(o->reason), ev->world_reject->reason);
		copy_str(o->detail, sizeof(o->detail), ev->world_reject->detail);
		return true;
	default: return false;
	}
}

/* Only an intent's first outcome answers it ("w:<cause>:0"). */
static bool first_outcome(const struct gw_outcome *o)
{
	size_t n = strlen(o->event_id);

	return n >= 2 && !strcmp(o->event_id + n - 2, ":0");
}

void gw_outcome_post(gw *g, const struct gw_outcome *o)
{
	struct gw_intents *it = g->intents;
	struct gw_outcome *slot;

	if (!it || !first_outcome(o))
		return;
	pthread_mutex_lock(&it->mu);
	slot = &it->ring[o->cause % RING];
	if (slot->cause == o->cause && !o->seq) {
		pthread_mutex_unlock(&it->mu);
		return; /* decided again (a world restarted): the same decision */
	}
	*slot = *o;
	for (struct waiter *w = it->buckets[o->cause % BUCKETS]; w; w = w->next) {
		if (w->cause == o->cause && !w->done) {
			*w->out = *o;
			w->done = true;
			pthread_cond_signal(&w->cv);
		}
	}
	for (struct gw_watch **pp = &it->watches[o->cause % RING]; *pp;) {
		struct gw_watch *w = *pp;

		if (w->cause != o->cause) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->linked = false;
		w->fn(w->arg, w->cookie, o);
	}
	pthread_mutex_unlock(&it->mu);
}

static struct gw_watch **eid_bucket(struct gw_intents *it, const char *eid)
{
	return &it->by_eid[mmo_fnv1a_str(eid) % RING];
}

/* A world in this process decided the intent eid (under it->mu). */
static void post_eid(struct gw_intents *it, const char *eid, const struct gw_outcome *o)
{
	for (struct gw_watch **pp = eid_bucket(it, eid); *pp;) {
		struct gw_watch *w = *pp;

		if (strcmp(w->eid, eid)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->linked = false;
		w->fn(w->arg, w->cookie, o);
	}
}

bool gw_outcome_watch(gw *g, struct gw_watch *w, struct gw_outcome *now)
{
	struct gw_intents *it = g->intents;
	bool known = false;

	pthread_mutex_lock(&it->mu);
	if (w->eid) {
		struct gw_watch **b = eid_bucket(it, w->eid);

		w->next = *b;
		*b = w;
		w->linked = true;
	} else if (it->ring[w->cause % RING].cause == w->cause) {
		*now = it->ring[w->cause % RING];
		known = true;
	} else {
		w->next = it->watches[w->cause % RING];
		it->watches[w->cause % RING] = w;
		w->linked = true;
	}
	pthread_mutex_unlock(&it->mu);
	return known;
}

void gw_outcome_unwatch(gw *g, struct gw_watch *w)
{
	struct gw_intents *it = g->intents;

	pthread_mutex_lock(&it->mu);
	if (w->linked) {
		for (struct gw_watch **pp = w->eid ? eid_bucket(it, w->eid)
		                                   : &it->watches[w->cause % RING];
		     *pp; pp = &(*pp)->next) {
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		}
		w->linked = false;
	}
	pthread_mutex_unlock(&it->mu);
}

void gw_world_decided(void *arg, const Mmo__Event *intent, const Mmo__Event *const *outcomes,
                      size_t n)
{
	gw *g = arg;
	struct gw_outcome o;

	if (n && gw_outcome_of(outcomes[0], 0, &o)) {
		atomic_fetch_add(&g->m.decided_early, 1);
		gw_outcome_post(g, &o);
		if (intent && intent->event_id && g->intents) {
			pthread_mutex_lock(&g->intents->mu);
			post_eid(g->intents, intent->event_id, &o);
			pthread_mutex_unlock(&g->intents->mu);
		}
	}
}

int gw_outcome_wait(gw *g, uint64_t cause, int timeout_ms, struct gw_outcome *out)
{
	struct gw_intents *it = g->intents;
	struct waiter w = {cause, PTHREAD_COND_INITIALIZER, false, out, NULL}, **pp;
	struct timespec dl;
	int rc = MMO_OK;

	pthread_mutex_lock(&it->mu);
	if (it->ring[cause % RING].cause == cause) {
		*out = it->ring[cause % RING];
		pthread_mutex_unlock(&it->mu);
		return MMO_OK;
	}
	pthread_cond_init(&w.cv, &it->cattr);
	w.next = it->buckets[cause % BUCKETS];
	it->buckets[cause % BUCKETS] = &w;
	atomic_fetch_add(&g->m.waiters, 1);
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	while (!w.done) {
		if (pthread_cond_timedwait(&w.cv, &it->mu, &dl) != 0 && !w.done) {
			rc = MMO_ETIMEOUT;
			break;
		}
	}
	for (pp = &it->buckets[cause % BUCKETS]; *pp; pp = &(*pp)->next) {
		if (*pp == &w) {
			*pp = w.next;
			break;
		}
	}
	atomic_fetch_sub(&g->m.waiters, 1);
	pthread_mutex_unlock(&it->mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

int gw_intents_start(gw *g, struct gw_intents **out, char *err, size_t errlen)
{
	struct gw_intents *it = calloc(1, sizeof(*it));

	(void)err;
	(void)errlen;
	if (!it)
		return MMO_ENOMEM;
	it->cap = gw_pool_users(&g->o);
	it->idle = calloc(it->cap, sizeof(*it->idle));
	if (!it->idle) {
		free(it);
		return MMO_ENOMEM;
	}
	it->g = g;
	pthread_mutex_init(&it->mu, NULL);
	pthread_mutex_init(&it->pool_mu, NULL);
	pthread_condattr_init(&it->cattr);
	pthread_condattr_setclock(&it->cattr, CLOCK_MONOTONIC);
	*out = it;
	return MMO_OK;
}

void gw_intents_stop(struct gw_intents *it)
{
	if (!it)
		return;
	for (size_t i = 0; i < it->nidle; i++)
		evlog_client_close(it->idle[i]);
	free(it->idle);
	pthread_condattr_destroy(&it->cattr);
	pthread_mutex_destroy(&it->mu);
	pthread_mutex_destroy(&it->pool_mu);
	free(it);
}
