/* gw.h - the gateway's state, shared by the files that compose it (not a
 * public interface: gateway.h is). Leaves (metrics, ratelimit, accounts,
 * token, redis) do not see it. */
#ifndef MMO_GW_H
#define MMO_GW_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "accounts.h"
#include "gateway/gateway.h"
#include "health.h"
#include "http.h"
#include "intent.h"
#include "log/evlog.h"
#include "metrics.h"
#include "ratelimit.h"
#include "redis.h"
#include "security.h"
#include "sessions.h"
#include "token.h"

#define GW_PW_PARALLEL 4 /* Argon2id hashes at once (64 MiB each) */

#define GW_WS_REGIONS_MAX 16   /* regions one connection may follow */
#define GW_WS_IN_MAX      4096 /* bytes of one client message */
#define RT_CHECK_MAX      4096 /* sessions re-checked per session_check_ms */

/* Close the sockets of a session (logout) with 1008 and reason. Any thread. */
void gw_ws_close_session(gw *g, const char *jti, const char *reason);

/* Prometheus text; *out is malloc'ed (caller frees). */
int gw_metrics_render(gw *g, char **out, size_t *len);

struct gw {
	struct gw_opts o; /* defaults applied; strings point below */
	char http[256], redis_url[512], data_dir[4096], ingest[512], bus[512];
	struct mg_context *mg;
	int port;
	gw_accts *accts;
	struct gw_key key;
	struct gw_redis *redis;
	struct gw_sessions *sess; /* checked sessions, kept by keyspace notifications */
	struct gw_intents *intents;
	struct rt *rt;           /* the event loop on the gateway's address */
	struct jobs *jobs;       /* the worker pool */
	struct follower *follow; /* the bus follower */
	int mg_port;             /* civetweb's own loopback port */
	pthread_mutex_t peer_mu;
	char (*peers)[48]; /* relay port -> client address */
	struct gw_health *health;
	struct gw_rl *rl_user, *rl_addr, *rl_player;
	struct gw_sec *sec;
	struct gw_metrics m;
	pthread_mutex_t reg_mu; /* registration: check + log + store */
	sem_t pw_sem;           /* bounds concurrent Argon2id */
	char dummy_hash[GW_HASH_MAX];
	atomic_bool stopping;
	pthread_t house;
	bool house_started;
	pthread_mutex_t house_mu;
	pthread_cond_t house_cv;
};

#endif
