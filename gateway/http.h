/* http.h - the REST plumbing: requests, replies, bodies, strict schemas,
 * client addresses; the handlers the route table (routes.c) calls. */
#ifndef MMO_GW_HTTP_H
#define MMO_GW_HTTP_H

#include <civetweb.h>
#include <jansson.h>
#include <stdbool.h>

#include "gateway/gateway.h"
#include "metrics.h"
#include "token.h"

#define GW_BODY_MAX       (16 * 1024) /* request bodies, bytes */
#define GW_JSON_DEPTH_MAX 16          /* nesting of any JSON we accept */

/* Token + session: MMO_OK, MMO_EINVAL, MMO_ETIMEOUT, MMO_ENOTFOUND
 * (session revoked), MMO_EUNAVAIL (Redis down: fail closed). */
int gw_auth_token(gw *g, const char *tok, struct gw_auth *a);

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
/* The error reply with more header lines (extra, each ending in \r\n). */
int gw_reply_err_extra(struct gw_req *r, int status, const char *extra, const char *code,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
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
/* The checks of gw_read_json on a body already read (buf, n bytes): 0 with
 * *out (caller decrefs), or the 400's status with ans filled. */
struct gw_answer;
int gw_body_json(const char *buf, size_t n, json_t **out, struct gw_answer *ans);
/* Is the Content-Type value ct application/json (parameters allowed)? */
bool gw_is_json_type(const char *ct);
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
/* The same on an Authorization header value h (NULL: absent) of a client
 * at peer: 0 with a filled, or the status with ans filled (the caller
 * decrefs ans->body). tc NULL: may block on Redis. tc not NULL: the
 * calling thread's verified tokens, and never block: -1 when the session
 * cache cannot answer (ask again with tc NULL, off the event loop). */
int gw_auth_bearer(gw *g, const char *h, const char *peer, struct gw_tokcache *tc,
                   struct gw_auth *a, struct gw_answer *ans);
/* Token (through tc) + session from the session cache only: as
 * gw_auth_token, or MMO_EBUSY when the cache does not know the session. */
int gw_auth_token_cached(gw *g, struct gw_tokcache *tc, const char *tok, struct gw_auth *a);

/* An intent's answer, whatever the transport: the REST status and body
 * (caller decrefs body), and Retry-After seconds for 429/503. */
struct gw_answer {
	int status;
	json_t *body;
	int retry_s;
};
/* An intent: what its answer needs, and (gw_intent_ev) its encoded event. */
enum gw_intent_kind { GW_INTENT_MOVE, GW_INTENT_ATTACK };
struct gw_intent {
	enum gw_intent_kind kind;
	char eid[MMO_ID_MAX + 1];      /* the intent's event_id */
	char defender[MMO_ID_MAX + 1]; /* an attack's, echoed in its answer */
	int64_t t0;                    /* mono µs when prepared (the stage histograms) */
};
struct gw_intent_ev {
	uint8_t buf[2048];
	size_t len;
	unsigned prio;
};
/* The strict schema of an intent's body (f has room for 3): its count. */
size_t gw_intent_schema(enum gw_intent_kind k, double coord_max, struct gw_field *f);
/* Check body against the intent's schema, rate-limit and build the
 * intent: true, or false with the answer (400 naming the field, 429). */
bool gw_intent_from_json(gw *g, const struct gw_auth *a, enum gw_intent_kind k, json_t *body,
                         struct gw_intent *in, struct gw_intent_ev *ev, struct gw_answer *ans);
/* Rate-limit and build the intent: true, or false with the answer (429). */
bool gw_intent_move_prepare(gw *g, const struct gw_auth *a, double x, double y, double z,
                            struct gw_intent *in, struct gw_intent_ev *ev, struct gw_answer *ans);
bool gw_intent_attack_prepare(gw *g, const struct gw_auth *a, const char *defender,
                              const char *skill, struct gw_intent *in, struct gw_intent_ev *ev,
                              struct gw_answer *ans);
/* The answer of an appended intent: append_rc is the append's result (not
 * MMO_OK: 503), wait_rc the wait's (MMO_ETIMEOUT: 202 pending), o the
 * outcome (200, or 422 with the world's reason). */
struct gw_outcome;
void gw_intent_answer(gw *g, const struct gw_intent *in, int append_rc, uint64_t seq, int wait_rc,
                      const struct gw_outcome *o, struct gw_answer *ans);
/* Fill ans with the error body of status (retry_s > 0: Retry-After);
 * field may be NULL. Returns status. */
int gw_answer_err(struct gw_answer *ans, int status, int retry_s, const char *code,
                  const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Send an answer over REST (consumes ans->body): WWW-Authenticate on 401,
 * Retry-After when retry_s. */
int gw_reply_answer(struct gw_req *r, struct gw_answer *ans);
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

#endif
