/* gateway.h - the gateway: REST and WebSocket on civetweb, JWT sessions in
 * Redis, accounts in LMDB (docs/gateway.md).
 *
 * The gateway turns client requests into intent events, appends them to the
 * log through the ingest, waits for the world's outcome (correlated by
 * cause_seq on the bus) and answers; it fans committed events out to
 * WebSocket clients by region, with an area of interest for movement.
 *
 * Threads: one event loop (libuv) owns the gateway's address and every
 * WebSocket; other requests are relayed to civetweb, whose workers run the
 * REST handlers; a worker pool does the loop's blocking work (token checks,
 * intents over WebSockets); one bus follower feeds outcomes and the fan-out;
 * one housekeeping thread. gw_start() and gw_stop() are called from one
 * thread.
 */
#ifndef MMO_GATEWAY_H
#define MMO_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log/evlog.h"

typedef struct gw gw;

/* Every field may be left 0/NULL for its default. */
struct gw_opts {
	evlog *log;             /* borrowed read handle on the log (audit queries,
	                         * head, gap fill); NULL: remote log (then
	                         * GET /api/events answers 503) */
	void *zctx;             /* borrowed ZeroMQ context (required) */
	const char *ingest;     /* the log's ingest endpoint (required) */
	const char *bus;        /* the log's bus endpoint (required) */
	const char *http;       /* ADDR:PORT to listen on; default 127.0.0.1:8080 */
	const char *redis_url;  /* redis://[:PASSWORD@]HOST[:PORT][/DB]; default
	                         * redis://127.0.0.1:6379 */
	const char *data_dir;   /* DATA: accounts in DATA/gateway, key DATA/jwt.key;
	                         * default ./data */
	const char *jwt_key;    /* HS256 secret (>= 16 bytes); NULL: read
	                         * DATA/jwt.key, or generate it (mode 0600) */
	int outcome_timeout_ms; /* wait for the world's outcome; 0 = 2000; then 202 */
	int log_timeout_ms;     /* wait for the log's ack; 0 = 3000; then 503 */
	int http_threads;       /* civetweb workers: one per concurrent keep-alive REST
	                         * connection; 0 = 300 */
	int ws_workers;         /* worker pool threads (token checks, intents over
	                         * WebSockets); 0 = 32 */
	int token_ttl_s;        /* token and session lifetime; 0 = 3600 */
	double aoi_radius;      /* movement area of interest; 0 = 100 units */
	int ws_queue_max;       /* messages queued per WebSocket; 0 = 256 */
	int ws_slow_ms;         /* a queue full this long closes the socket
	                         * (1008); 0 = 2000 */
	int ws_max;             /* open WebSockets at most; 0 = 100000 */
	int conns_per_addr;     /* open connections from one client address at
	                         * most (then 503 and close); 0 = 1000, < 0 =
	                         * no cap */
	int session_check_ms;   /* re-check WebSocket sessions (up to 4096 per
	                         * period, round robin); 0 = 1000 */
	int session_cache_ms;   /* trust a session Redis confirmed this long, while
	                         * keyspace notifications of mmo:session:* arrive
	                         * (sessions.c); 0 = 2000, < 0 = ask Redis each time */
	int head_timeout_ms;    /* a request head must arrive within this, else
	                         * 408 and close; 0 = 10000 */
	int security_window_ms; /* aggregation window of security events; 0 = 10000 */
	/* Failed logins allowed per window, per username and per client address. */
	int login_fail_user;     /* 0 = 5 */
	int login_fail_addr;     /* 0 = 20 */
	int login_fail_window_s; /* 0 = 60 */
	/* Per-player actions per second (burst = 2x) by priority class. */
	double rate_high;   /* combat; 0 = 10 */
	double rate_medium; /* movement; 0 = 20 */
	/* /health thresholds (0 = default). */
	int health_queue_depth;   /* 1000 queued messages */
	int health_latency_ms;    /* 100 ms p99 intent -> outcome over the window */
	double health_error_rate; /* 0.01 of requests answered 5xx over the window */
	int health_window_s;      /* 10 */
	double coord_max;         /* |x|,|y|,|z| accepted by the schema; 0 = 1e6 */
	/* Health of what else runs beside the gateway (the read views), polled
	 * once a second for the "views" check of /health: true if healthy, else
	 * false with a one-line reason in why. detail (always) describes it,
	 * e.g. "redis current, mongo off". NULL: the check reports "not here". */
	bool (*views_health)(void *arg, char *why, size_t whylen, char *detail, size_t detlen);
	void *views_health_arg;
	/* Metrics of the other roles in this process (log, world, views), as
	 * Prometheus text appended to /metrics: writes at most cap bytes into
	 * buf and returns the length. NULL: the gateway's own only. */
	size_t (*extra_metrics)(void *arg, char *buf, size_t cap);
	void *extra_metrics_arg;
};

/* Start the gateway: open the accounts, load or create the signing key,
 * connect the bus subscribers, start civetweb on o->http. Errors:
 * MMO_EINVAL (missing or bad option: err says which), MMO_EIO (cannot
 * listen, open DATA/gateway, write the key). err (errlen bytes, may be NULL)
 * receives a one-line reason. On success the caller owns *out and stops it
 * with gw_stop(). Borrowed pointers of o must outlive the gateway. */
int gw_start(const struct gw_opts *o, gw **out, char *err, size_t errlen);

/* Stop: refuse new requests, close WebSockets (1001), join every thread,
 * flush pending security events to the log, close the accounts. */
void gw_stop(gw *g);

/* The TCP port the gateway listens on (useful with port 0). */
int gw_port(const gw *g);

/* The world's decision hook (world_runner_set_decision_hook with arg = the
 * gateway): an intent's outcome, decided by a world in this process before
 * it is appended. The intent is durable, so its outcome is fixed: requests
 * waiting for it are answered now. Called on the world's thread; the events
 * are borrowed for the call. */
void gw_world_decided(void *arg, const Mmo__Event *intent, const Mmo__Event *const *outcomes,
                      size_t n);

/* ---------------------------------------------------------------- accounts
 * Operator administration (`mmo user`), usable while a gateway runs on the
 * same data folder (LMDB allows several processes). */

/* Create an account with role "player". password is pwlen bytes (8..128),
 * username 3..32 of [A-Za-z0-9_]. player_id (MMO_ID_MAX + 1 bytes, may be
 * NULL) receives the new id. The player.register event is written to the
 * log by the gateway at the account's first login. Errors: MMO_EINVAL (bad
 * name or password), MMO_ECONFLICT (name taken), MMO_EIO. */
int gw_user_add(const char *data_dir, const char *username, const char *password, size_t pwlen,
                char *player_id, char *err, size_t errlen);

/* Set the role ("player" or "auditor") of an account; tokens issued after
 * this carry it. Errors: MMO_EINVAL, MMO_ENOTFOUND, MMO_EIO. */
int gw_user_set_role(const char *data_dir, const char *username, const char *role, char *err,
                     size_t errlen);

#endif
