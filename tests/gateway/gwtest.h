/* gwtest.h - what the gateway tests share: an environment with the real log
 * server, the real world runner, a real redis-server and the gateway, all
 * on free ports; a tiny HTTP/1.1 client and a tiny WebSocket client over
 * plain sockets. */
#ifndef MMO_GWTEST_H
#define MMO_GWTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "gateway/gateway.h"
#include "log/evlog.h"
#include "projector/world/world.h"

#define GWT_KEY "gateway-test-signing-key-0123456789"

struct gwt {
	char dir[256], logdir[300], ingest[64], bus[64], http[64], redis_url[64];
	void *zctx;
	evlog *log;
	evlog_server *srv;
	world_runner *world;
	pid_t redis;
	int redis_port;
	gw *g;
	int port;
	struct gw_opts o;
};

/* Start everything; tweak (may be NULL) adjusts the gateway options after
 * the test defaults are set. Fails the test on error. */
struct gwt *gwt_start(void (*tweak)(struct gw_opts *));
void gwt_stop(struct gwt *e);
/* Restart only the gateway with other options (same log, Redis, data). */
void gwt_restart_gw(struct gwt *e, void (*tweak)(struct gw_opts *));
/* Kill / restart redis-server on the same port. */
void gwt_redis_kill(struct gwt *e);
void gwt_redis_restart(struct gwt *e);
/* Run a redis-cli-like command on the test Redis (%s args); returns the
 * reply as a string (integer replies printed), "" for nil; caller frees. */
char *gwt_redis(struct gwt *e, const char *fmt, ...);

struct resp {
	int status;
	char *headers; /* raw header block */
	char *body;
	size_t body_len;
	json_t *json; /* parsed body when it is JSON, else NULL */
};

/* One request on a fresh connection. headers: extra lines each ending in
 * \r\n (may be NULL). body may be NULL. Returns the status (0 on I/O
 * failure). Free r with resp_free. */
int gwt_http(struct gwt *e, const char *method, const char *path, const char *headers,
             const char *body, size_t body_len, struct resp *r);
/* A request with a raw prebuilt message (anything goes): the status. */
int gwt_raw(struct gwt *e, const char *raw, size_t len, struct resp *r);
void resp_free(struct resp *r);
/* The value of a response header (case-insensitive), copied into buf. */
bool resp_header(const struct resp *r, const char *name, char *buf, size_t cap);
/* JSON POST with a Bearer token (tok may be NULL). */
int gwt_post(struct gwt *e, const char *path, const char *tok, const char *json, struct resp *r);
int gwt_get(struct gwt *e, const char *path, const char *tok, struct resp *r);
/* Assert {"error":{"code":code,...}} (and "field" when field != NULL). */
void gwt_assert_error(const struct resp *r, int status, const char *code, const char *field);

/* Register + login; player_id and token are written (token malloc'ed). */
void gwt_user(struct gwt *e, const char *name, const char *pw, char *player_id, char **token);

/* ---------------------------------------------------------------- websocket */

struct wsc {
	int fd;
	char buf[1 << 16];
	size_t len;
};

/* Upgrade /ws with extra headers and query (may be NULL). Returns the
 * HTTP status (101 on success; then *out is connected). rcvbuf > 0 sets
 * SO_RCVBUF before connecting. */
int wsc_open(struct gwt *e, const char *query, const char *headers, int rcvbuf, struct wsc **out,
             struct resp *fail);
void wsc_close(struct wsc *w);
int wsc_send(struct wsc *w, int opcode, const char *data, size_t len, bool fin);
/* Next frame within timeout_ms: its opcode (-1 timeout or error), payload
 * malloc'ed into *data (NUL-terminated). */
int wsc_recv(struct wsc *w, int timeout_ms, char **data, size_t *len);
/* Next text frame parsed as JSON (skipping nothing); NULL on timeout. A
 * close frame returns NULL and sets *close_code if given. */
json_t *wsc_json(struct wsc *w, int timeout_ms, int *close_code);

/* A WebSocket of the token's player (Bearer header); fails the test if the
 * upgrade is refused. */
struct wsc *gwt_ws(struct gwt *e, const char *tok);
/* Sleep ms milliseconds. */
void gwt_sleep_ms(int ms);
/* The jti of a token signed with GWT_KEY (caller frees). */
char *gwt_jti_of(const char *tok);

/* A value of the gateway's /metrics: the first line that is name (with
 * its labels) followed by a space; -1 if absent. */
long long gwt_metric(struct gwt *e, const char *name);

/* A TCP connection to 127.0.0.1:port from source address 127.0.0.src
 * (caller closes), or -1 if the connect fails. */
int gwt_dial_from(int port, int src);

/* A plain TCP connection to the gateway (caller closes), or -1. */
int gwt_connect(struct gwt *e);

/* Append events straight to the log (as another producer would). */
void gwt_append(struct gwt *e, struct mmo_ev *b);

#endif
