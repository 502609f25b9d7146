/* sessions.h - a short-lived cache of checked sessions, kept true by Redis
 * keyspace notifications (a leaf: needs only the Redis pool). */
#ifndef MMO_GW_SESSIONS_H
#define MMO_GW_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "redis.h"

struct gw_sessions;
/* A cache of up to slots sessions (a power of two), each trusted for ttl_ms
 * after Redis confirmed it; ttl_ms <= 0: no cache (every check asks Redis).
 * gw_sess_start starts the thread that subscribes to the keyspace of
 * mmo:session:*. r and m are borrowed and outlive the cache. */
/* gone(arg, jti), if not NULL, is called from the subscriber's thread when
 * a session key is deleted or evicted (a logout on any gateway, an
 * operator): the gateway closes that session's WebSockets at once. */
int gw_sess_new(struct gw_redis *r, int ttl_ms, size_t slots, struct gw_metrics *m,
                void (*gone)(void *arg, const char *jti), void *arg, struct gw_sessions **out);
/* Start the subscriber (the cache is used once it is subscribed), and
 * stop it (the cache is off from then on; gone is not called any more). */
int gw_sess_start(struct gw_sessions *s);
void gw_sess_stop(struct gw_sessions *s);
void gw_sess_free(struct gw_sessions *s);
/* Is jti a session of sub, as Redis said less than ttl_ms ago and nothing
 * has touched its key since? false: ask Redis. */
bool gw_sess_hit(struct gw_sessions *s, const char *jti, const char *sub);
/* Take a mark before asking Redis; after Redis confirmed the session, put
 * it with that mark: it is cached only if no notification arrived in
 * between (one that did may be about this key). */
uint64_t gw_sess_mark(struct gw_sessions *s);
void gw_sess_put(struct gw_sessions *s, uint64_t mark, const char *jti, const char *sub);
/* Forget jti now (a logout here, before its notification comes back). */
void gw_sess_drop(struct gw_sessions *s, const char *jti);
/* Is the subscription up (so the cache is in use)? */
bool gw_sess_live(struct gw_sessions *s);

#endif
