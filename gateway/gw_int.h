/* gw_int.h - what the gateway's files share (not a public interface). */
#ifndef MMO_GW_INT_H
#define MMO_GW_INT_H

#include <civetweb.h>
#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "gateway/gateway.h"
#include "log/evlog.h"
#include "schemas/event.h"

#define GW_BODY_MAX       (16 * 1024) /* request bodies, bytes */
#define GW_TOKEN_MAX      4096        /* bearer tokens, bytes */
#define GW_JSON_DEPTH_MAX 16          /* nesting of any JSON we accept */
#define GW_USER_MIN       3
#define GW_USER_MAX       32
#define GW_PW_MIN         8
#define GW_PW_MAX         128
#define GW_ROLE_MAX       15
#define GW_HASH_MAX       128 /* crypto_pwhash_STRBYTES */
#define GW_POOL_MAX       64  /* idle log clients kept */
#define GW_PW_PARALLEL    4   /* Argon2id hashes at once (64 MiB each) */

/* ---------------------------------------------------------------- metrics */

enum gw_route {
	GW_R_REGISTER,
	GW_R_LOGIN,
	GW_R_LOGOUT,
	GW_R_MOVE,
	GW_R_ATTACK,
	GW_R_PLAYER,
	GW_R_REGION,
	GW_R_EVENTS,
	GW_R_HEALTH,
	GW_R_METRICS,
	GW_R_WS,
	GW_R_OTHER,
	GW_R_COUNT
};

enum gw_flow { GW_F_AUTH, GW_F_INTENT, GW_F_REDIS, GW_F_LOG, GW_F_WS, GW_F_HTTP, GW_F_COUNT };

/* Stages of an event's life seen by the gateway. */
enum gw_stage {
	GW_S_COMMIT,   /* intent received -> acked by the log */
	GW_S_OUTCOME,  /* intent received -> outcome seen on the bus */
	GW_S_DELIVERY, /* event committed (its ts) -> written to a WebSocket */
	GW_S_COUNT
};

#define GW_HIST_N   14 /* buckets of a latency histogram (last = +Inf) */
#define GW_STATUS_N 20

struct gw_hist {
	_Atomic uint64_t b[GW_HIST_N];
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

struct gw_metrics {
	_Atomic uint64_t req[GW_R_COUNT][GW_STATUS_N];
	struct gw_hist req_lat[GW_R_COUNT];
	struct gw_hist stage[GW_S_COUNT];
	struct gw_hist redis_lat;
	_Atomic int64_t ws_conns;
	_Atomic int64_t ws_queued; /* messages in all WebSocket queues */
	_Atomic int64_t waiters;   /* requests waiting for an outcome */
	_Atomic uint64_t ws_sent, ws_dropped, ws_coalesced, ws_closed_slow, ws_closed_revoked,
	    ws_bad_msgs;
	_Atomic uint64_t errors[GW_F_COUNT];
	_Atomic uint64_t login_failed, rate_limited, outcome_timeouts, security_events;
	_Atomic uint64_t decided_early; /* intents answered at the world's decision */
};

extern const int64_t gw_hist_bounds_us[GW_HIST_N - 1];
void gw_hist_observe(struct gw_hist *h, int64_t us);
/* The value below which q (0..1) of the observations of a bucket count
 * vector fall, in µs (the bucket's upper bound); 0 when empty. */
int64_t gw_hist_quantile(const uint64_t b[GW_HIST_N], double q);
void gw_metrics_request(gw *g, enum gw_route r, int status, int64_t us);
void gw_metrics_error(gw *g, enum gw_flow f);
/* The status code counted in column i of req[][] (0: other). */
int gw_metrics_status_at(int i);
/* Prometheus text; *out is malloc'ed (caller frees). */
int gw_metrics_render(gw *g, char **out, size_t *len);

/* ---------------------------------------------------------------- health */

enum gw_check {
	GW_C_REDIS,
	GW_C_LOG,
	GW_C_QUEUE,
	GW_C_LATENCY,
	GW_C_ERRORS,
	GW_C_VIEWS,
	GW_C_COUNT
};

struct gw_health;
int gw_health_new(gw *g, struct gw_health **out);
void gw_health_free(struct gw_health *h);
/* Sample the counters (once a second, from the housekeeping thread) and
 * re-evaluate the thresholds; dependencies are checked live (probe). */
void gw_health_tick(gw *g, int64_t now_us);
/* GET /health body: 200 or 503; *out is a new reference. */
int gw_health_report(gw *g, json_t **out);

/* ---------------------------------------------------------------- redis */

struct gw_redis;
int gw_redis_new(gw *g, const char *url, struct gw_redis **out, char *err, size_t errlen);
void gw_redis_free(struct gw_redis *r);
/* Run one command (hiredis format: every %s is one binary-safe argument, so
 * input only ever travels as values). Returns the reply (caller frees with
 * freeReplyObject) or NULL when Redis is unreachable or answered an error. */
struct redisReply *gw_redis_cmd(gw *g, const char *fmt, ...);
/* Run fmt (one %s) for each of args[0..n) in one pipeline; replies[i]
 * receive the replies (caller frees each). MMO_OK or MMO_EUNAVAIL (then
 * every replies[i] is NULL). */
int gw_redis_pipe(gw *g, const char *fmt, const char *const *args, size_t n,
                  struct redisReply **replies);
/* An integer reply's value (0 for any other type); free a reply. */
long long gw_redis_int(const struct redisReply *r);
void gw_redis_reply_free(struct redisReply *r);
/* Is Redis answering? (PING) */
bool gw_redis_up(gw *g);

/* ---------------------------------------------------------------- rate limits */

struct gw_rl;
int gw_rl_new(size_t cap, struct gw_rl **out);
void gw_rl_free(struct gw_rl *t);
/* Token bucket of key: refills rate tokens/s up to burst. take: consume n
 * tokens if there are that many and return true; else false with
 * *retry_us (may be NULL) the time until there will be. n = 0 only checks
 * for one token. */
bool gw_rl_take(struct gw_rl *t, const char *key, double rate, double burst, double n,
                int64_t now_us, int64_t *retry_us);
/* Forget the buckets that are full again (idle keys). */
void gw_rl_purge(struct gw_rl *t, int64_t now_us);

/* ---------------------------------------------------------------- accounts */

struct gw_account {
	char username[GW_USER_MAX + 1];
	char player_id[MMO_ID_MAX + 1];
	char role[GW_ROLE_MAX + 1];
	char hash[GW_HASH_MAX];
	uint64_t reg_seq; /* seq of its player.register in the log; 0 = not yet */
	int64_t created_us;
};

typedef struct gw_accts gw_accts;
int gw_accts_open(const char *data_dir, gw_accts **out, char *err, size_t errlen);
void gw_accts_close(gw_accts *a);
/* MMO_OK, MMO_ECONFLICT (username taken), MMO_EIO. */
int gw_accts_create(gw_accts *a, const struct gw_account *acc);
/* MMO_OK, MMO_ENOTFOUND, MMO_EIO, MMO_ECORRUPT. */
int gw_accts_get(gw_accts *a, const char *username, struct gw_account *out);
int gw_accts_get_by_player(gw_accts *a, const char *player_id, struct gw_account *out);
/* Rewrite an existing account (role, reg_seq). MMO_ENOTFOUND, MMO_EIO. */
int gw_accts_update(gw_accts *a, const struct gw_account *acc);
bool gw_username_valid(const char *s, size_t len);
bool gw_role_valid(const char *s);
/* Argon2id (interactive limits). MMO_OK or MMO_ENOMEM. */
int gw_pw_hash(const char *pw, size_t len, char out[GW_HASH_MAX]);
bool gw_pw_verify(const char *hash, const char *pw, size_t len);
void gw_new_player_id(char out[MMO_ID_MAX + 1]);
void gw_random_hex(char *out, size_t nbytes); /* 2*nbytes chars + NUL */

/* ---------------------------------------------------------------- tokens */

struct gw_auth {
	char sub[MMO_ID_MAX + 1];
	char role[GW_ROLE_MAX + 1];
	char jti[MMO_ID_MAX + 1];
	int64_t exp; /* s since the epoch */
};

int gw_key_load(gw *g, const char *given, char *err, size_t errlen);
/* A signed token for sub/role valid ttl_s from now_s; *tok is malloc'ed. */
int gw_token_issue(gw *g, const char *sub, const char *role, int64_t now_s, int ttl_s,
                   char jti[MMO_ID_MAX + 1], char **tok);
/* MMO_OK (a filled), MMO_EINVAL (malformed, bad signature, wrong alg or
 * claims), MMO_ETIMEOUT (expired). */
int gw_token_verify(gw *g, const char *tok, int64_t now_s, struct gw_auth *a);

/* Token + session: MMO_OK, MMO_EINVAL, MMO_ETIMEOUT, MMO_ENOTFOUND
 * (session revoked), MMO_EUNAVAIL (Redis down: fail closed). */
int gw_auth_token(gw *g, const char *tok, struct gw_auth *a);

/* ---------------------------------------------------------------- security events */

struct gw_sec;
int gw_sec_new(struct gw_sec **out);
void gw_sec_free(struct gw_sec *s);
/* Count one occurrence of a security event type ("security.login_failed")
 * from source; item (may be NULL) is remembered in the detail (a few). One
 * event per (type, source) and window goes to the log. */
void gw_sec_note(gw *g, const char *type, const char *source, const char *item);
/* Append the aggregates whose window ended (all of them if all). */
void gw_sec_flush(gw *g, int64_t now_us, bool all);

/* ---------------------------------------------------------------- log, intents */

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

/* ---------------------------------------------------------------- websocket */

#define GW_WS_REGIONS_MAX 16   /* regions one connection may follow */
#define GW_WS_IN_MAX      4096 /* bytes of one client message */
#define RT_CHECK_MAX      4096 /* sessions re-checked per session_check_ms */

/* Close the sockets of a session (logout) with 1008 and reason. Any thread. */
void gw_ws_close_session(gw *g, const char *jti, const char *reason);

/* ---------------------------------------------------------------- http */

struct gw_req {
	gw *g;
	struct mg_connection *c;
	const struct mg_request_info *ri;
	enum gw_route route;
	int status;              /* the status sent, 0 until then */
	char id[MMO_ID_MAX + 2]; /* the {id} of the path, if any (validated) */
	bool body_read;
	char peer[48]; /* the client's address, once looked up (gw_peer_addr) */
};

/* Send a complete response (the body is len bytes, type ctype; extra is
 * more header lines, each ending in \r\n, or NULL). Returns status. */
int gw_reply(struct gw_req *r, int status, const char *ctype, const char *body, size_t len,
             const char *extra);
/* o is consumed (decref'd). */
int gw_reply_json(struct gw_req *r, int status, json_t *o, const char *extra);
/* {"error":{"code","message"[,"field"]}}; field may be NULL. */
int gw_reply_err(struct gw_req *r, int status, const char *code, const char *field, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
/* 429/503 with Retry-After: retry_s. */
int gw_reply_retry(struct gw_req *r, int status, int retry_s, const char *code, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

/* A client's WebSocket message, parsed and checked with the REST schemas
 * (no side effects, so it can be fuzzed): 0 with the op and its fields, or
 * -1 with the error code and message to send back (ref set when the
 * message had a valid one). coord_max bounds move coordinates. */
enum gw_ws_op { GW_WS_SUBSCRIBE, GW_WS_UNSUBSCRIBE, GW_WS_MOVE, GW_WS_ATTACK };
struct gw_ws_msg {
	enum gw_ws_op op;
	char region[MMO_ID_MAX + 1];
	char ref[MMO_ID_MAX + 1];
	double x, y, z;
	char defender[MMO_ID_MAX + 1];
	char skill[MMO_ID_MAX + 1];
	const char *code;
	char message[160];
};
int gw_ws_parse(const char *data, size_t len, double coord_max, struct gw_ws_msg *m);

/* Is the bracket nesting of the JSON text s (n bytes) at most max? */
bool gw_json_depth_ok(const char *s, size_t n, int max);
/* Read the body as a JSON object (<= 16 KiB, application/json). Returns 0
 * with *out (caller decrefs), or the status of the error reply sent. */
int gw_read_json(struct gw_req *r, json_t **out);
/* Requests without a body (logout): accept none or an empty object. */
int gw_read_empty(struct gw_req *r);

enum gw_ftype { GW_FT_STRING, GW_FT_ID, GW_FT_NUMBER };
struct gw_field {
	const char *name;
	enum gw_ftype type;
	double min, max;       /* numbers: inclusive range */
	size_t minlen, maxlen; /* strings: bytes */
};
/* Why a body failed its schema. */
struct gw_bad {
	const char *code;
	char field[72];
	char message[160];
};
/* The strict schema check alone: true, or false with *bad filled. */
bool gw_fields_check(json_t *o, const struct gw_field *f, size_t n, struct gw_bad *bad);
/* Strict schema: every field present with its type and range, no other
 * key. Returns 0 or the status of the 400 sent (naming the field). */
int gw_check_fields(struct gw_req *r, json_t *o, const struct gw_field *f, size_t n);

/* Authenticate the request (Bearer). 0 with a filled, or the status sent. */
int gw_require_auth(struct gw_req *r, struct gw_auth *a);

/* An intent's answer, whatever the transport: the REST status and body
 * (caller decrefs body), and Retry-After seconds for 429/503. */
struct gw_answer {
	int status;
	json_t *body;
	int retry_s;
};
/* Validate, rate-limit, append and wait for the decision (api.c). */
void gw_intent_move(gw *g, const struct gw_auth *a, double x, double y, double z,
                    struct gw_answer *ans);
void gw_intent_attack(gw *g, const struct gw_auth *a, const char *defender, const char *skill,
                      struct gw_answer *ans);

/* The client address of a request: civetweb sees the event loop's relay
 * (front.c), whose local port maps back to the client. */
const char *gw_peer_addr(struct gw_req *r);
void gw_peer_note(gw *g, int port, const char *addr);
void gw_peer_forget(gw *g, int port);
const char *gw_status_text(int status);

/* The handlers (auth.c, api.c). Each returns the status it sent. */
int gw_h_register(struct gw_req *r);
int gw_h_login(struct gw_req *r);
int gw_h_logout(struct gw_req *r);
int gw_h_move(struct gw_req *r);
int gw_h_attack(struct gw_req *r);
int gw_h_player(struct gw_req *r);
int gw_h_region(struct gw_req *r);
int gw_h_events(struct gw_req *r);

/* The catch-all civetweb request handler (http.c). */
int gw_http_handler(struct mg_connection *c, void *cbdata);

/* ---------------------------------------------------------------- the gateway */

struct gw {
	struct gw_opts o; /* defaults applied; strings point below */
	char http[256], redis_url[512], data_dir[4096], ingest[512], bus[512];
	struct mg_context *mg;
	int port;
	gw_accts *accts;
	uint8_t key[512];
	size_t keylen;
	struct gw_redis *redis;
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
