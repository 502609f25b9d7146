/* core.c - apply a batch to a view: the retry loop (backoff with full
 * jitter behind the circuit breaker), the DLQ around each attempt, and the
 * counters the metrics show.
 *
 * A transient failure (the store does not answer, a LOADING or OOM reply,
 * a broken connection) drops the connection and retries the same batch:
 * the projector keeps its place and its order. A permanent one is the
 * view's to find (it marks the event dead); the DLQ is written before the
 * batch commits, so a crash can lose neither the batch nor its refusals.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "schemas/mmo_util.h"
#include "views_int.h"

#define WATCH_TRIES 16 /* optimistic retries before it counts as a failure */

void vcore_init(struct vcore *c, struct view *v, views_dlq *dlq, const struct vcore_opts *o)
{
	unsigned base = o && o->backoff_base_ms ? o->backoff_base_ms : 50;
	unsigned cap = o && o->backoff_cap_ms ? o->backoff_cap_ms : 5000;

	memset(c, 0, sizeof(*c));
	c->v = v;
	c->view_id = v->ops->id;
	c->dlq = dlq;
	views_backoff_init(&c->bo, base, cap, (uint64_t)mmo_mono_us() ^ (uint64_t)(uintptr_t)c);
	views_breaker_init(&c->br, o && o->breaker_threshold ? o->breaker_threshold : 5,
	                   o && o->breaker_open_ms ? o->breaker_open_ms : cap);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->st.enabled = true;
}

void vcore_destroy(struct vcore *c)
{
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
}

void vcore_stop(struct vcore *c)
{
	pthread_mutex_lock(&c->mu);
	__atomic_store_n(&c->stop, 1, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

bool vcore_stopping(struct vcore *c)
{
	return __atomic_load_n(&c->stop, __ATOMIC_SEQ_CST) != 0;
}

/* Sleep ms, or less if stopped. */
static void nap(struct vcore *c, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->mu);
	while (!vcore_stopping(c)) {
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&c->mu);
}

static void sync_breaker(struct vcore *c)
{
	c->st.breaker = c->br.state;
	c->st.breaker_opened = c->br.opened;
	c->st.breaker_closed = c->br.closed;
	c->st.connected = c->connected;
}

static void failed(struct vcore *c, const char *what)
{
	enum views_breaker_state before = c->br.state;

	c->v->ops->disconnect(c->v);
	c->connected = false;
	views_breaker_failure(&c->br, mmo_mono_us());
	pthread_mutex_lock(&c->mu);
	c->st.retries++;
	snprintf(c->st.last_error, sizeof(c->st.last_error), "%s", what);
	sync_breaker(c);
	pthread_mutex_unlock(&c->mu);
	if (c->br.state == VIEWS_BREAKER_OPEN && before != VIEWS_BREAKER_OPEN)
		mmo_logf(MMO_LOG_WARN, "views", "%s: breaker open after %u failures: %s",
		         c->v->ops->name, c->br.failures, what);
}

static void succeeded(struct vcore *c)
{
	enum views_breaker_state before = c->br.state;

	views_breaker_success(&c->br);
	pthread_mutex_lock(&c->mu);
	sync_breaker(c);
	pthread_mutex_unlock(&c->mu);
	if (before != VIEWS_BREAKER_CLOSED)
		mmo_logf(MMO_LOG_INFO, "views", "%s: breaker closed: the store answers again",
		         c->v->ops->name);
}

/* Wait for the breaker (and the backoff of the attempt before). false when
 * stopped. */
static bool wait_turn(struct vcore *c, unsigned *attempt, bool backoff)
{
	unsigned wait;

	if (backoff) {
		nap(c, views_backoff_delay(&c->bo, *attempt));
		(*attempt)++;
	}
	while (!vcore_stopping(c)) {
		wait = 0;
		if (views_breaker_allow(&c->br, mmo_mono_us(), &wait)) {
			pthread_mutex_lock(&c->mu);
			sync_breaker(c);
			pthread_mutex_unlock(&c->mu);
			return true;
		}
		nap(c, wait > 100 ? 100 : wait);
	}
	return false;
}

static bool ensure_connected(struct vcore *c)
{
	if (c->connected)
		return true;
	if (c->v->ops->connect(c->v) != MMO_OK)
		return false;
	c->connected = true;
	return true;
}

int vcore_locate(struct vcore *c, uint64_t *ck)
{
	unsigned attempt = 0;
	bool backoff = false;

	for (;;) {
		if (!wait_turn(c, &attempt, backoff))
			return MMO_ECLOSED;
		if (ensure_connected(c) && c->v->ops->checkpoint(c->v, ck) == MMO_OK) {
			succeeded(c);
			pthread_mutex_lock(&c->mu);
			c->st.checkpoint = *ck;
			pthread_mutex_unlock(&c->mu);
			return MMO_OK;
		}
		failed(c, c->v->err);
		backoff = true;
	}
}

static int dlq_hook(struct vbatch *b, void *arg)
{
	struct vcore *c = arg;
	uint64_t nd = 0, np = 0;
	int err;

	if (!c->dlq) {
		for (size_t i = 0; i < b->n; i++) {
			if (b->ev[i].to_dlq)
				return MMO_EIO; /* nowhere to put it */
		}
		return MMO_OK;
	}
	err = views_dlq_write(c->dlq, c->view_id, b, &nd, &np);
	if (err)
		return err;
	pthread_mutex_lock(&c->mu);
	c->st.dead += nd;
	c->st.parked += np;
	pthread_mutex_unlock(&c->mu);
	return MMO_OK;
}

static unsigned bucket(uint64_t v, unsigned shift, unsigned n)
{
	unsigned i = 0;

	while (i < n - 1 && v > (1ull << (i + shift)))
		i++;
	return i;
}

static void count_success(struct vcore *c, const struct vbatch *b, int64_t us, bool write_ck)
{
	uint64_t applied = 0;

	for (size_t i = 0; i < b->n; i++)
		applied += b->ev[i].state == VEV_APPLY;
	pthread_mutex_lock(&c->mu);
	c->st.applied += applied;
	c->st.batches++;
	if (write_ck)
		c->st.checkpoint = b->last;
	c->batch_hist[bucket(b->n, 0, 14)]++;
	c->batch_events_sum += b->n;
	mmo_hist_observe(&c->lat, us);
	c->st.last_error[0] = 0;
	pthread_mutex_unlock(&c->mu);
}

int vcore_apply(struct vcore *c, struct vbatch *b, bool write_ck, bool once, uint64_t *found)
{
	unsigned attempt = 0, watch = 0;
	bool backoff = false;
	int err;

	for (;;) {
		int64_t t0;

		if (!once && !wait_turn(c, &attempt, backoff))
			return MMO_ECLOSED;
		backoff = false;
		if (!ensure_connected(c)) {
			failed(c, c->v->err);
			if (once)
				return MMO_EUNAVAIL;
			backoff = true;
			continue;
		}
		if (c->dlq && views_dlq_lock(c->dlq, c->view_id) != MMO_OK) {
			failed(c, "dlq: cannot take the apply lock");
			if (once)
				return MMO_EIO;
			backoff = true;
			continue;
		}
		views_dlq_prepare(c->dlq, c->view_id, b);
		b->hook = dlq_hook;
		b->hook_arg = c;
		t0 = mmo_mono_us();
		err = c->v->ops->apply(c->v, b, write_ck, b->first - 1, found);
		if (c->dlq)
			views_dlq_unlock(c->dlq, c->view_id);
		if (err == MMO_OK) {
			count_success(c, b, mmo_mono_us() - t0, write_ck);
			succeeded(c);
			return MMO_OK;
		}
		if (err == MMO_EREWIND) {
			succeeded(c);
			pthread_mutex_lock(&c->mu);
			c->st.rewinds++;
			c->st.checkpoint = *found;
			pthread_mutex_unlock(&c->mu);
			mmo_logf(
			    MMO_LOG_WARN, "views",
			    "%s: the store's checkpoint is %llu, expected %llu: folding from %llu",
			    c->v->ops->name, (unsigned long long)*found,
			    (unsigned long long)(b->first - 1), (unsigned long long)(*found + 1));
			return MMO_EREWIND;
		}
		if (err == MMO_ERACE && ++watch < WATCH_TRIES) {
			pthread_mutex_lock(&c->mu);
			c->st.retries++;
			pthread_mutex_unlock(&c->mu);
			continue;
		}
		failed(c, c->v->err[0] ? c->v->err : mmo_strerror(err));
		if (once)
			return err == MMO_ERACE ? MMO_EBUSY : err;
		backoff = true;
	}
}

void vcore_status(struct vcore *c, struct views_status *st)
{
	pthread_mutex_lock(&c->mu);
	*st = c->st;
	pthread_mutex_unlock(&c->mu);
	st->dlq_depth = c->dlq ? views_dlq_depth(c->dlq, c->v->ops->name) : 0;
}
