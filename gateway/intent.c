/* intent.c - the gateway's side of the log: appending events through a
 * pool of ingest clients, and waiting for the world's outcomes.
 *
 * Appends: a ZeroMQ socket must not be used by two threads at once, so
 * each append takes a client from a mutex-protected pool (creating one when
 * the pool is empty) and gives it back; a client that timed out is closed
 * (its late reply is then never mistaken for another's).
 *
 * Outcomes: one thread follows the whole bus (evlog_sub: in seq order, gaps
 * filled from the log) and, for each outcome event (world.update,
 * combat.result, world.reject with cause_seq != 0), stores it in a ring
 * indexed by cause_seq and wakes the requests waiting for that cause. The
 * ring also answers a request that registers after its outcome already
 * passed (the world can be faster than the log's ack reaching us).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_int.h"
#include "schemas/mmo_util.h"

#define RING       4096
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
	pthread_t th;
	bool started;
	atomic_bool stop;
	evlog_sub *sub;
	pthread_condattr_t cattr;

	pthread_mutex_t pool_mu;
	evlog_client *idle[GW_POOL_MAX];
	size_t nidle;
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
		if (it->nidle < GW_POOL_MAX) {
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
	struct evlog_in in;
	evlog_client *c;
	uint64_t s = 0;
	int err, e = MMO_OK;
	size_t len;

	err = mmo_event_encode(ev, buf, sizeof(buf), &len);
	if (err)
		return err;
	in.buf = buf;
	in.len = len;
	in.priority = mmo_event_priority(ev);
	c = pool_get(g);
	if (!c) {
		gw_metrics_error(g, GW_F_LOG);
		return MMO_EUNAVAIL;
	}
	err = evlog_client_append(c, &in, 1, &s, &e);
	pool_put(g, c, err == MMO_OK || err == MMO_EBUSY);
	if (err) {
		gw_metrics_error(g, GW_F_LOG);
		mmo_logf(MMO_LOG_WARN, "gateway", "append %s: %s", ev->type, mmo_errdesc(err));
		return MMO_EUNAVAIL;
	}
	if (e) {
		gw_metrics_error(g, GW_F_LOG);
		mmo_logf(MMO_LOG_ERROR, "gateway", "the log refused %s: %s", ev->type,
		         mmo_errdesc(e));
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

static int on_rec(const struct evlog_rec *rec, void *arg)
{
	struct gw_intents *it = arg;
	struct gw_outcome o = {0};
	Mmo__Event *ev;

	if (evlog_rec_decode(rec, &ev))
		return 0;
	if (!ev->cause_seq)
		goto out;
	/* Where players stand, for the WebSocket area of interest: this
	 * thread sees every region, the fan-out only those in use. */
	if (ev->body_case == MMO__EVENT__BODY_WORLD_SPAWN && ev->world_spawn->position &&
	    ev->world_spawn->entity_id && ev->world_spawn->entity_type &&
	    !strcmp(ev->world_spawn->entity_type, "player"))
		gw_hub_player_pos(it->g, ev->world_spawn->entity_id, ev->world_spawn->position->x,
		                  ev->world_spawn->position->y);
	if (ev->body_case == MMO__EVENT__BODY_WORLD_UPDATE && ev->world_update->position &&
	    ev->world_update->entity_id && ev->world_update->entity_type &&
	    !strcmp(ev->world_update->entity_type, "player"))
		gw_hub_player_pos(it->g, ev->world_update->entity_id, ev->world_update->position->x,
		                  ev->world_update->position->y);
	o.cause = ev->cause_seq;
	o.seq = rec->seq;
	copy_str(o.type, sizeof(o.type), ev->type);
	copy_str(o.region_id, sizeof(o.region_id), ev->region_id);
	switch (ev->body_case) {
	case MMO__EVENT__BODY_WORLD_UPDATE:
		if (!ev->world_update->position)
			goto out;
		o.x = ev->world_update->position->x;
		o.y = ev->world_update->position->y;
		o.z = ev->world_update->position->z;
		break;
	case MMO__EVENT__BODY_COMBAT_RESULT:
		copy_str(o.result, sizeof(o.result), ev->combat_result->result);
		o.damage = ev->combat_result->damage;
		o.defender_hp = ev->combat_result->defender_hp;
		break;
	case MMO__EVENT__BODY_WORLD_REJECT:
		copy_str(o.reason, sizeof(o.reason), ev->world_reject->reason);
		copy_str(o.detail, sizeof(o.detail), ev->world_reject->detail);
		break;
	default: goto out;
	}
	pthread_mutex_lock(&it->mu);
	it->ring[o.cause % RING] = o;
	for (struct waiter *w = it->buckets[o.cause % BUCKETS]; w; w = w->next) {
		if (w->cause == o.cause && !w->done) {
			*w->out = o;
			w->done = true;
			pthread_cond_signal(&w->cv);
		}
	}
	pthread_mutex_unlock(&it->mu);
out:
	mmo_event_free(ev);
	return 0;
}

/* Open the bus subscriber from the log's head on (only what follows
 * matters: outcomes of intents sent from now on). */
static int open_sub(struct gw_intents *it)
{
	gw *g = it->g;
	struct evlog_sub_opts so = {0};
	uint64_t head = 0;
	int rc = gw_log_head(g, &head);

	if (rc)
		return rc;
	so.zctx = g->o.zctx;
	so.bus = g->bus;
	so.log = g->o.log;
	so.ingest = g->ingest;
	so.from_seq = head + 1;
	return evlog_sub_open(&so, &it->sub);
}

static void *outcome_main(void *arg)
{
	struct gw_intents *it = arg;
	int64_t last_warn = 0;

	while (!atomic_load(&it->stop)) {
		int err = it->sub ? evlog_sub_poll(it->sub, 100, on_rec, it, NULL) : open_sub(it);

		if (err == MMO_ECLOSED)
			break;
		if (err) {
			gw_metrics_error(it->g, GW_F_LOG);
			if (mmo_mono_us() - last_warn > 10000000) {
				mmo_logf(MMO_LOG_WARN, "gateway", "bus: %s", mmo_errdesc(err));
				last_warn = mmo_mono_us();
			}
			struct timespec ts = {0, 100000000};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
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
	it->g = g;
	pthread_mutex_init(&it->mu, NULL);
	pthread_mutex_init(&it->pool_mu, NULL);
	pthread_condattr_init(&it->cattr);
	pthread_condattr_setclock(&it->cattr, CLOCK_MONOTONIC);
	*out = it;
	return MMO_OK;
}

int gw_intents_run(struct gw_intents *it, char *err, size_t errlen)
{
	int rc = open_sub(it);

	if (rc)
		mmo_logf(MMO_LOG_WARN, "gateway", "log at %s not reachable yet (%s): retrying",
		         it->g->ingest, mmo_errdesc(rc));
	if (pthread_create(&it->th, NULL, outcome_main, it)) {
		snprintf(err, errlen, "cannot start the outcome thread");
		return MMO_EIO;
	}
	it->started = true;
	return MMO_OK;
}

void gw_intents_stop(struct gw_intents *it)
{
	if (!it)
		return;
	atomic_store(&it->stop, true);
	if (it->started)
		pthread_join(it->th, NULL);
	evlog_sub_close(it->sub);
	for (size_t i = 0; i < it->nidle; i++)
		evlog_client_close(it->idle[i]);
	pthread_condattr_destroy(&it->cattr);
	pthread_mutex_destroy(&it->mu);
	pthread_mutex_destroy(&it->pool_mu);
	free(it);
}
