/* inflight.c - intents in flight on the event loop, with no thread waiting.
 *
 * The loop owns one DEALER to the log's ingest (ZeroMQ sockets are used by
 * one thread: this one). An intent is sent tagged with its flight's id; the
 * log's reply (after its commit) gives the intent's seq; the outcome is
 * then watched (gw_outcome_watch): the world in this process, or the bus
 * follower for a world elsewhere, posts it to the loop (RT_I_DECIDED) and
 * the answer goes to the client, over REST or its WebSocket. A world in
 * this process may decide before the loop has read the log's reply (the
 * loop is busy): the flight also watches its intent's event_id from the
 * start, keeps such an early decision, and answers with it at the ack.
 *
 * Batches: the intents submitted during one pass of the loop go to the log
 * as one append request (at most BATCH_MAX events) at the end of the pass
 * (or as soon as BATCH_EARLY are waiting),
 * so a busy loop sends one ZeroMQ message, and gets one reply, for many
 * intents; the reply's results are per event, in order.
 *
 * Ids: a flight's id is its slot in the low FLIGHT_BITS and a generation
 * above them, so a reply or a decision that comes after its flight timed
 * out (or after the slot was reused) matches nothing and is dropped. A
 * batch's id (the request's req_id) is made the same way from its slot.
 * Timeouts: every flight of a stage has the same timeout, so each stage's
 * list is in deadline order and the tick looks at its front only.
 * The ZeroMQ descriptor is edge-like: replies are drained after every
 * wake-up of the descriptor and at the end of every loop iteration (a
 * send may have taken the edge).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "schemas/mmo_util.h"

#define FLIGHT_BITS 14
#define FLIGHTS_MAX (1u << FLIGHT_BITS) /* intents in flight at most */
#define DRAIN_MAX   4096                /* replies taken per drain */
#define BATCH_MAX   256                 /* intents in one append request */
#define BATCH_EARLY                                                                                \
	32 /* sent at once from this many: the log starts on them while the loop goes on */
#define BATCH_BITS 10
#define BATCHES    (1u << BATCH_BITS) /* append requests in flight at most */

enum stage { ST_FREE, ST_ACK, ST_OUTCOME, ST_LOOSE /* in use, in no list */ };

struct flight {
	uint32_t id;
	enum stage stage;
	struct rt_conn *c; /* holds a reference */
	struct gw_intent in;
	char ref[MMO_ID_MAX + 1]; /* WebSocket: the client's ref; "" = REST */
	uint64_t seq;
	int64_t deadline;           /* mono µs */
	struct gw_watch w;          /* by seq, after the ack */
	struct gw_watch we;         /* by event_id, from the start */
	struct gw_outcome *early;   /* decided before the ack (owned) */
	struct flight *prev, *next; /* its stage's list */
};

struct list {
	struct flight *head, *tail;
};

struct batch {
	uint32_t id; /* 0: free */
	uint32_t n;
	int64_t deadline; /* mono µs: forgotten then (its flights timed out) */
	uint32_t fid[BATCH_MAX];
};

struct rt_flights {
	struct rt *rt;
	evlog_client *cl;
	uv_poll_t poll;
	uv_check_t check;
	bool handles;
	struct flight *f;
	uint32_t *free_idx;
	uint32_t nfree;
	uint32_t gen;
	struct list ack, outcome;

	/* submitted in this pass, sent at its end */
	uint32_t pend_id[BATCH_MAX];
	struct evlog_in pend_in[BATCH_MAX];
	size_t pend_off[BATCH_MAX];
	size_t npend;
	uint8_t *pbuf; /* their encoded events */
	size_t plen, pcap;

	struct batch *b; /* BATCHES */
	uint32_t bgen, bnext;
	uint64_t results_seq[BATCH_MAX];
	int results_err[BATCH_MAX];
};

/* ---------------------------------------------------------------- lists */

static void list_push(struct list *l, struct flight *f)
{
	f->next = NULL;
	f->prev = l->tail;
	if (l->tail)
		l->tail->next = f;
	else
		l->head = f;
	l->tail = f;
}

static void list_del(struct list *l, struct flight *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		l->head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		l->tail = f->prev;
	f->prev = f->next = NULL;
}

static struct flight *by_id(struct rt_flights *fl, uint64_t id)
{
	struct flight *f = &fl->f[id & (FLIGHTS_MAX - 1)];

	return id && f->stage != ST_FREE && f->id == id ? f : NULL;
}

/* ---------------------------------------------------------------- answers */

/* Answer f's client and free f. */
static void complete(struct rt_flights *fl, struct flight *f, int append_rc, int wait_rc,
                     const struct gw_outcome *o)
{
	gw *g = fl->rt->g;
	struct gw_answer ans = {0};
	uint32_t idx = f->id & (FLIGHTS_MAX - 1);

	if (f->stage == ST_ACK)
		list_del(&fl->ack, f);
	else if (f->stage == ST_OUTCOME)
		list_del(&fl->outcome, f);
	gw_outcome_unwatch(g, &f->we);
	gw_outcome_unwatch(g, &f->w);
	gw_intent_answer(g, &f->in, append_rc, f->seq, wait_rc, o, &ans);
	if (!f->c->handle_closed) {
		if (f->ref[0])
			ws_answer(f->c, f->ref, &ans);
		else
			rest_answer(f->c, &ans);
	}
	json_decref(ans.body);
	rt_conn_unref(f->c);
	f->c = NULL;
	free(f->early);
	f->early = NULL;
	f->stage = ST_FREE;
	f->id = 0;
	fl->free_idx[fl->nfree++] = idx;
	atomic_fetch_sub(&g->m.waiters, 1);
}

/* Called by the thread that posts the outcome, under the intents' lock. */
static void on_decided(void *arg, uint64_t cookie, const struct gw_outcome *o)
{
	struct rt *rt = arg;
	struct rt_item *it = rt_item_new(RT_I_DECIDED);

	if (!it)
		return; /* the flight times out into a 202 */
	it->outcome = malloc(sizeof(*it->outcome));
	if (!it->outcome) {
		rt_item_free(it);
		return;
	}
	*it->outcome = *o;
	it->cookie = cookie;
	rt_post(rt, it);
}

void rt_flight_decided(struct rt *rt, struct rt_item *it)
{
	struct flight *f = by_id(rt->fl, it->cookie);

	if (!f)
		return; /* answered already (by its other watch, or timed out) */
	if (f->stage == ST_OUTCOME) {
		complete(rt->fl, f, MMO_OK, MMO_OK, it->outcome);
	} else if (f->stage == ST_ACK && !f->early) {
		f->early = it->outcome; /* answered at the ack */
		it->outcome = NULL;
	}
}

/* The log took (or refused) f's intent. */
static void acked(struct rt_flights *fl, struct flight *f, int status, uint64_t seq, int err)
{
	gw *g = fl->rt->g;
	struct gw_outcome o;

	if (status || err || !seq) {
		gw_metrics_error(&g->m, GW_F_LOG);
		mmo_logf(MMO_LOG_WARN, "gateway", "append %s: %s",
		         f->in.kind == GW_INTENT_MOVE ? "player.move" : "combat.attack",
		         mmo_errdesc(status ? status
		                     : err  ? err
		                            : MMO_EPROTO));
		complete(fl, f, MMO_EUNAVAIL, MMO_OK, NULL);
		return;
	}
	mmo_hist_observe(&g->m.stage[GW_S_COMMIT], mmo_mono_us() - f->in.t0);
	list_del(&fl->ack, f);
	f->stage = ST_LOOSE;
	f->seq = seq;
	if (f->early && f->early->cause == seq) {
		atomic_fetch_add(&g->m.decided_before_ack, 1);
		complete(fl, f, MMO_OK, MMO_OK, f->early);
		return;
	}
	f->w.cause = seq;
	f->w.fn = on_decided;
	f->w.arg = fl->rt;
	f->w.cookie = f->id;
	if (gw_outcome_watch(g, &f->w, &o)) {
		complete(fl, f, MMO_OK, MMO_OK, &o);
		return;
	}
	f->stage = ST_OUTCOME;
	f->deadline = mmo_mono_us() + (int64_t)g->o.outcome_timeout_ms * 1000;
	list_push(&fl->outcome, f);
}

/* ---------------------------------------------------------------- the socket */

static struct batch *batch_by_id(struct rt_flights *fl, uint32_t id)
{
	struct batch *b = &fl->b[id & (BATCHES - 1)];

	return id && b->id == id ? b : NULL;
}

static void drain(struct rt_flights *fl)
{
	for (int i = 0; i < DRAIN_MAX; i++) {
		uint32_t id = 0;
		int status = 0;
		size_t n = 0;
		struct batch *b;
		int rc = evlog_client_recv(fl->cl, 0, &id, &status, fl->results_seq,
		                           fl->results_err, BATCH_MAX, &n);

		if (rc == MMO_ETIMEOUT)
			return;
		if (rc || !(b = batch_by_id(fl, id)))
			continue; /* malformed, or forgotten: its flights time out */
		if (!status && n != b->n)
			status = MMO_EPROTO;
		for (uint32_t k = 0; k < b->n; k++) {
			struct flight *f = by_id(fl, b->fid[k]);

			if (f && f->stage == ST_ACK) /* else timed out already */
				acked(fl, f, status, status ? 0 : fl->results_seq[k],
				      status ? 0 : fl->results_err[k]);
		}
		b->id = 0;
	}
}

/* Send what this pass submitted as one request. */
static void flush(struct rt_flights *fl)
{
	gw *g = fl->rt->g;
	struct batch *b = NULL;
	size_t n = fl->npend;
	int rc = MMO_EUNAVAIL;

	if (!n)
		return;
	fl->npend = 0;
	fl->plen = 0;
	for (uint32_t tries = 0; tries < BATCHES && !b; tries++) {
		struct batch *c = &fl->b[fl->bnext++ & (BATCHES - 1)];

		if (!c->id)
			b = c;
	}
	if (b) {
		if (++fl->bgen >= (1u << (32 - BATCH_BITS)))
			fl->bgen = 1;
		b->id = fl->bgen << BATCH_BITS | (uint32_t)(b - fl->b);
		b->n = (uint32_t)n;
		b->deadline = mmo_mono_us() + (int64_t)g->o.log_timeout_ms * 1000;
		for (size_t i = 0; i < n; i++) {
			b->fid[i] = fl->pend_id[i];
			fl->pend_in[i].buf = fl->pbuf + fl->pend_off[i];
		}
		rc = evlog_client_send(fl->cl, b->id, fl->pend_in, n);
		if (rc)
			b->id = 0;
	}
	if (!rc)
		return;
	for (size_t i = 0; i < n; i++) {
		struct flight *f = by_id(fl, fl->pend_id[i]);

		if (f)
			complete(fl, f, MMO_EUNAVAIL, MMO_OK, NULL);
	}
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	drain(p->data);
}

static void on_check(uv_check_t *c)
{
	flush(c->data);
	drain(c->data);
}

void rt_flight_submit(struct rt_conn *c, const struct gw_intent *in, const struct gw_intent_ev *ev,
                      const char *ref)
{
	struct rt_flights *fl = c->rt->fl;
	gw *g = c->rt->g;
	struct flight *f;
	uint32_t idx;

	if (fl->plen + ev->len > fl->pcap) {
		size_t cap = fl->pcap ? fl->pcap : 65536;
		uint8_t *nb;

		while (cap < fl->plen + ev->len)
			cap *= 2;
		nb = realloc(fl->pbuf, cap);
		if (nb) {
			fl->pbuf = nb;
			fl->pcap = cap;
		}
	}
	if (!fl->nfree || fl->plen + ev->len > fl->pcap) {
		struct gw_answer ans = {0};

		gw_answer_err(&ans, 503, 1, "unavailable", NULL,
		              "the gateway has too many intents in flight; retry");
		if (ref)
			ws_answer(c, ref, &ans);
		else
			rest_answer(c, &ans);
		json_decref(ans.body);
		return;
	}
	idx = fl->free_idx[--fl->nfree];
	f = &fl->f[idx];
	if (++fl->gen >= (1u << (32 - FLIGHT_BITS)))
		fl->gen = 1;
	f->id = fl->gen << FLIGHT_BITS | idx;
	f->in = *in;
	snprintf(f->ref, sizeof(f->ref), "%s", ref ? ref : "");
	f->seq = 0;
	f->c = c;
	rt_conn_ref(c);
	f->early = NULL;
	memset(&f->w, 0, sizeof(f->w));
	f->we =
	    (struct gw_watch){.eid = f->in.eid, .fn = on_decided, .arg = c->rt, .cookie = f->id};
	gw_outcome_watch(g, &f->we, NULL);
	f->stage = ST_ACK;
	f->deadline = mmo_mono_us() + (int64_t)g->o.log_timeout_ms * 1000;
	list_push(&fl->ack, f);
	atomic_fetch_add(&g->m.waiters, 1);
	memcpy(fl->pbuf + fl->plen, ev->buf, ev->len);
	fl->pend_id[fl->npend] = f->id;
	fl->pend_off[fl->npend] = fl->plen;
	fl->pend_in[fl->npend].len = ev->len;
	fl->pend_in[fl->npend].priority = ev->prio;
	fl->plen += ev->len;
	if (++fl->npend >= BATCH_EARLY)
		flush(fl);
}

void rt_flights_tick(struct rt *rt)
{
	struct rt_flights *fl = rt->fl;
	int64_t now = mmo_mono_us();

	while (fl->ack.head && fl->ack.head->deadline <= now) {
		gw_metrics_error(&rt->g->m, GW_F_LOG);
		complete(fl, fl->ack.head, MMO_EUNAVAIL, MMO_OK, NULL);
	}
	while (fl->outcome.head && fl->outcome.head->deadline <= now) {
		struct flight *f = fl->outcome.head;

		gw_outcome_unwatch(rt->g, &f->w);
		complete(fl, f, MMO_OK, MMO_ETIMEOUT, NULL);
	}
	/* A reply that never came (the log restarted): its flights have timed
	 * out above; the batch is forgotten. */
	for (uint32_t i = 0; i < BATCHES; i++) {
		if (fl->b[i].id && fl->b[i].deadline <= now)
			fl->b[i].id = 0;
	}
}

/* ---------------------------------------------------------------- start, stop */

int rt_flights_start(struct rt *rt, char *err, size_t errlen)
{
	struct rt_flights *fl = calloc(1, sizeof(*fl));
	int fd, rc;

	if (!fl)
		return MMO_ENOMEM;
	fl->rt = rt;
	fl->f = calloc(FLIGHTS_MAX, sizeof(*fl->f));
	fl->free_idx = malloc(FLIGHTS_MAX * sizeof(*fl->free_idx));
	fl->b = calloc(BATCHES, sizeof(*fl->b));
	if (!fl->f || !fl->free_idx || !fl->b) {
		rc = MMO_ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < FLIGHTS_MAX; i++)
		fl->free_idx[i] = FLIGHTS_MAX - 1 - i;
	fl->nfree = FLIGHTS_MAX;
	rc = evlog_client_open(rt->g->o.zctx, rt->g->ingest, rt->g->o.log_timeout_ms, &fl->cl);
	if (!rc)
		rc = evlog_client_fd(fl->cl, &fd);
	if (rc) {
		snprintf(err, errlen, "cannot connect to the log at %s: %s", rt->g->ingest,
		         mmo_strerror(rc));
		goto fail;
	}
	if (uv_poll_init(&rt->loop, &fl->poll, fd) || uv_check_init(&rt->loop, &fl->check)) {
		snprintf(err, errlen, "cannot watch the log's socket");
		rc = MMO_EIO;
		goto fail;
	}
	fl->poll.data = fl;
	fl->check.data = fl;
	uv_poll_start(&fl->poll, UV_READABLE, on_poll);
	uv_check_start(&fl->check, on_check);
	fl->handles = true;
	rt->fl = fl;
	return MMO_OK;
fail:
	evlog_client_close(fl->cl);
	free(fl->b);
	free(fl->free_idx);
	free(fl->f);
	free(fl);
	return rc;
}

void rt_flights_close(struct rt *rt)
{
	struct rt_flights *fl = rt->fl;

	if (!fl || !fl->handles)
		return;
	fl->handles = false;
	uv_close((uv_handle_t *)&fl->poll, NULL);
	uv_close((uv_handle_t *)&fl->check, NULL);
}

void rt_flights_free(struct rt *rt)
{
	struct rt_flights *fl = rt->fl;

	if (!fl)
		return;
	/* The loop has ended: no decision can reach a flight now that it is
	 * unwatched. */
	for (uint32_t i = 0; i < FLIGHTS_MAX; i++) {
		struct flight *f = &fl->f[i];

		if (f->stage == ST_FREE)
			continue;
		gw_outcome_unwatch(rt->g, &f->w);
		gw_outcome_unwatch(rt->g, &f->we);
		free(f->early);
		rt_conn_unref(f->c);
		atomic_fetch_sub(&rt->g->m.waiters, 1);
	}
	evlog_client_close(fl->cl);
	free(fl->pbuf);
	free(fl->b);
	free(fl->free_idx);
	free(fl->f);
	free(fl);
	rt->fl = NULL;
}
