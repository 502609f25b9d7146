/* intent.h - the gateway's side of the log: appends through a client pool, and
 * the outcomes intents wait for. */
#ifndef MMO_GW_INTENT_H
#define MMO_GW_INTENT_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/gateway.h"
#include "schemas/event.h"

/* How many threads may use a pool at once: civetweb's workers, the
 * WebSocket workers and a margin (health checks, the follower). Each pool
 * keeps that many idle connections, so none is opened per request. */
static inline size_t gw_pool_users(const struct gw_opts *o)
{
	return (size_t)o->http_threads + (size_t)o->ws_workers + 8;
}

struct gw_outcome {
	uint64_t cause; /* the intent's seq */
	uint64_t seq;   /* the outcome event's seq; 0 while decided but not committed */
	char event_id[MMO_ID_MAX + 1]; /* the outcome event's id ("w:<cause>:0") */
	char type[24];                 /* world.update, combat.result or world.reject */
	char region_id[MMO_ID_MAX + 1];
	double x, y, z;
	char reason[MMO_ID_MAX + 1];
	char detail[MMO_TEXT_MAX + 1];
	char result[16];
	uint32_t damage, defender_hp;
};

struct gw_intents;
/* Set up the client pool (g->intents must be set to *out before use)... */
int gw_intents_start(gw *g, struct gw_intents **out, char *err, size_t errlen);
void gw_intents_stop(struct gw_intents *it);
/* Append one event (priority = its effective one) through a pooled client.
 * MMO_OK with *seq, MMO_EUNAVAIL (timeout, busy, no log), or the event's
 * own error (a bug: the gateway builds valid events). */
int gw_log_append(gw *g, const Mmo__Event *ev, uint64_t *seq);
int gw_log_head(gw *g, uint64_t *head);
/* An outcome is known: decided by the world in this process (seq 0), or
 * committed (seen on the bus). Wakes the requests waiting for it. */
void gw_outcome_post(gw *g, const struct gw_outcome *o);
/* Fill o from an outcome event (cause_seq != 0) at seq (0 = not committed
 * yet). false if it is not an outcome the gateway answers with. */
bool gw_outcome_of(const Mmo__Event *ev, uint64_t seq, struct gw_outcome *o);
/* Wait for the outcome of the intent at cause: MMO_OK or MMO_ETIMEOUT. */
int gw_outcome_wait(gw *g, uint64_t cause, int timeout_ms, struct gw_outcome *out);

/* The event loop's wait, without a thread: fn(arg, cookie, o) is called
 * once, from the thread that posts the outcome and under the intents' lock
 * (so fn must neither block nor call back into these functions; o is valid
 * during the call). */
struct gw_watch {
	uint64_t cause;  /* the intent's seq; or, when eid is set, 0 and ... */
	const char *eid; /* ... the intent's event_id: only a world in this
	                  * process answers it (gw_world_decided), possibly
	                  * before the intent's ack reached the watcher; the
	                  * string is borrowed for as long as w is */
	void (*fn)(void *arg, uint64_t cookie, const struct gw_outcome *o);
	void *arg;
	uint64_t cookie;
	struct gw_watch *next; /* intent.c's */
	bool linked;           /* intent.c's */
};
/* Register w (the caller's memory, borrowed until fn ran or unwatch
 * returned): true with *now filled when the outcome is already known (w is
 * then not registered and fn is never called; never for an eid watch). */
bool gw_outcome_watch(gw *g, struct gw_watch *w, struct gw_outcome *now);
/* Forget w if fn has not run yet; once this returns fn will not run. */
void gw_outcome_unwatch(gw *g, struct gw_watch *w);
/* Append encoded bytes (len, priority prio) through a pooled client; as
 * gw_log_append. */
int gw_log_append_raw(gw *g, const uint8_t *buf, size_t len, unsigned prio, const char *what,
                      uint64_t *seq);

#endif
