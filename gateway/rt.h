/* rt.h - the gateway's real-time tier (internal): the event loop that owns
 * the gateway's address, its connections, the WebSocket protocol, the hub
 * (subscriptions and the area-of-interest grid), the bus follower and the
 * worker pool. docs/gateway.md describes the threads.
 *
 * Ownership: everything about a connection (its socket, queues, hub
 * membership) belongs to the loop thread. Other threads talk to the loop
 * only by posting to its inbox (rt_post) and never touch a connection's
 * fields except the immutable ones (id, auth after the upgrade).
 */
#ifndef MMO_GW_RT_H
#define MMO_GW_RT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "gw.h"
#include "wsframe.h"

/* ---------------------------------------------------------------- messages */

/* One outbound WebSocket frame (header + payload), built once and shared
 * by every socket it goes to. */
struct gw_msg {
	atomic_int ref;
	uint8_t prio;  /* 1 critical .. 4 low: 3 and 4 may be dropped or coalesced */
	int64_t ts;    /* the event's commit time (µs), 0 for replies */
	uint64_t ckey; /* coalescing key (the moving player), 0 = never coalesced */
	size_t len;    /* frame bytes */
	uint8_t data[];
};

/* A text frame of payload (n bytes). NULL when out of memory. */
struct gw_msg *gw_msg_text(const char *payload, size_t n, unsigned prio, int64_t ts);
/* A close frame with code and reason (at most 120 bytes of it). */
struct gw_msg *gw_msg_close(uint16_t code, const char *reason);
void gw_msg_unref(struct gw_msg *m);

/* ---------------------------------------------------------------- connections */

#define RT_REGIONS_MAX GW_WS_REGIONS_MAX

enum rt_state {
	RT_HEAD,    /* reading the request head */
	RT_AUTH,    /* upgrade asked, the worker pool checks the token */
	RT_WS,      /* an open WebSocket */
	RT_REST,    /* a plain intent (move, attack) served here (rest.c) */
	RT_RELAY,   /* any other request: piped to civetweb */
	RT_CLOSING, /* flushing the last bytes, then closed */
};

struct hub_region;
struct hub_cell;
struct hub_player;

struct rt_conn {
	uv_tcp_t tcp; /* tcp.data = this */
	struct rt *rt;
	gw *rt_g;
	atomic_int ref; /* the loop's, plus one per job in the worker pool */
	uint64_t id;
	enum rt_state state;
	bool handle_closed;   /* uv_close was called */
	bool lingering;       /* write side shut, input discarded until close */
	char peer[64];        /* the client's address */
	struct rt_addr *addr; /* its count of open connections (front.c) */

	/* request head (RT_HEAD) */
	char *head; /* request bytes read and not consumed yet */
	size_t hlen, hcap;
	uv_timer_t timer; /* head timeout; later the slow-consumer check */

	/* REST intents served on the loop (RT_REST) */
	struct rt_rest *rest;

	/* relay (RT_RELAY) */
	struct rt_relay *relay;

	/* WebSocket (RT_WS) */
	char ws_key[32]; /* Sec-WebSocket-Key */
	struct gw_auth auth;
	uint8_t *in; /* bytes of an incomplete client frame */
	size_t inlen;
	uint64_t skip;     /* payload bytes of a too-large frame still to discard */
	struct gw_msg **q; /* outbound ring of qcap */
	size_t qhead, qlen, qcap;
	size_t off;         /* bytes of q[qhead] already written */
	bool writing;       /* a uv_write of q[qhead] is in flight */
	bool close_queued;  /* a close frame is queued: nothing more after it */
	int64_t full_since; /* mono µs the queue filled, 0 = not full */
	int check_failures; /* consecutive session checks without Redis */

	/* hub (hub.c) */
	struct hub_player *pl;
	struct hub_region *reg[RT_REGIONS_MAX];
	struct hub_cell *cell[RT_REGIONS_MAX];
	size_t nreg;
};

/* ---------------------------------------------------------------- the loop */

#define RT_READ_BUF 65536

/* The loop's state (front.c; the loop thread's, except the inbox). */
struct rt {
	gw *g;
	uv_loop_t loop;
	uv_tcp_t listener;
	uv_async_t wake;
	uv_timer_t tick;
	uv_thread_t th;
	bool started;
	struct sockaddr_storage upstream;
	uint8_t rbuf[RT_READ_BUF]; /* every read lands here (one thread) */
	bool stopping;
	uv_timer_t stop_timer;
	int64_t stop_deadline;
	size_t nconns; /* open client connections */
	uint64_t next_id;
	int64_t last_check;
	size_t check_cursor;

	pthread_mutex_t mu; /* the inbox */
	struct rt_item *head, **tail;
	bool stop;
	struct hub *hub;
	struct rt_flights *fl;    /* intents in flight (inflight.c) */
	struct gw_tokcache *toks; /* tokens verified on the loop (rest.c) */
	struct rt_addr **addrs;   /* open connections per client address */
	int64_t accept_warned;    /* mono µs of the last "connections refused" line */
	uint64_t nofile;          /* RLIMIT_NOFILE at start */
	size_t conns_max;         /* client connections at most (a reserve kept) */
};

struct rt_relay {
	uv_tcp_t up; /* to civetweb; up.data = the rt_conn */
	uv_connect_t creq;
	bool up_open, up_closed;
	bool client_paused, up_paused;
	size_t to_up, to_client; /* bytes queued in uv_writes */
	int port;                /* the relay's local port, for gw_peer_addr */
};

struct wreq {
	uv_write_t req;
	struct rt_conn *c;
	struct gw_msg *m; /* WebSocket frames */
	char *copy;       /* relay bytes, an HTTP answer */
	size_t n;
	bool to_up;
	void (*after)(struct rt_conn *c); /* rt_write_owned's */
};

/* Between the loop's files (loop thread only). */
void rt_conn_close(struct rt_conn *c);   /* close now (front.c) */
void rt_linger_close(struct rt_conn *c); /* after what is queued is sent (front.c) */
void rt_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
void rt_on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
void rt_on_up_closed(uv_handle_t *h);
void rt_relay_forget(struct rt_conn *c);
void rt_relay_open(struct rt_conn *c); /* relay.c */
void rt_relay_write(struct rt_conn *c, bool to_up, const char *p, size_t n);
void rt_flush(struct rt_conn *c); /* wsout.c */

/* Start the loop thread listening on addr (ADDR:PORT, port 0 = any),
 * relaying every request that is not a WebSocket upgrade of /ws to
 * 127.0.0.1:upstream_port (civetweb). *port receives the bound port. */
int rt_start(gw *g, const char *addr, int upstream_port, struct rt **out, int *port, char *err,
             size_t errlen);
/* Close every WebSocket with 1001, stop listening, join the thread. */
void rt_stop(struct rt *rt);

/* What other threads post to the loop. */
enum rt_item_kind {
	RT_I_EVENT,   /* a committed event to fan out (msg, meta) */
	RT_I_AUTHED,  /* an upgrade's token check finished */
	RT_I_REPLY,   /* a reply (msg) for one connection */
	RT_I_REVOKE,  /* close the sockets of session jti (logout) */
	RT_I_CHECKED, /* session check results */
	RT_I_DECIDED, /* an intent in flight was decided (cookie, outcome) */
	RT_I_RAUTHED, /* a REST intent's session was checked with Redis (ans, auth) */
};

struct rt_event_meta {
	char region[MMO_ID_MAX + 1];
	char player[MMO_ID_MAX + 1]; /* world.reject: its player; movement: who moved */
	bool reject;                 /* world.reject: only that player's sockets */
	bool moved;                  /* a player's position: x, y */
	bool aoi;                    /* world.update: only sockets within the radius */
	double x, y;
};

struct rt_item {
	enum rt_item_kind kind;
	struct rt_item *next;
	struct gw_msg *msg;   /* owned by the item */
	struct rt_conn *conn; /* holds a reference */
	struct rt_event_meta meta;
	int status;       /* RT_I_AUTHED: 0 ok, else the HTTP status to answer */
	const char *code; /* RT_I_AUTHED error code */
	const char *message;
	bool pos_known;
	double x, y;
	char jti[MMO_ID_MAX + 1];
	size_t n; /* RT_I_CHECKED */
	struct rt_conn **conns;
	int8_t *verdict;            /* per conn: 0 live, 1 revoked, -1 unknown (Redis down) */
	uint64_t cookie;            /* RT_I_DECIDED: the flight's id */
	struct gw_outcome *outcome; /* RT_I_DECIDED, owned */
	struct gw_answer ans;       /* RT_I_RAUTHED: status 0 = authenticated; body owned */
	struct gw_auth auth;        /* RT_I_RAUTHED */
};

/* Post an item to the loop (takes ownership of it). Any thread. */
void rt_post(struct rt *rt, struct rt_item *it);
struct rt_item *rt_item_new(enum rt_item_kind kind);
void rt_item_free(struct rt_item *it);

void rt_conn_ref(struct rt_conn *c);
void rt_conn_unref(struct rt_conn *c);

/* Loop thread: queue m for c (the queue takes its own reference), with the
 * drop and coalescing policy; may close c as a slow consumer (1008). */
void rt_send(struct rt_conn *c, struct gw_msg *m);
/* Loop thread: queue a close frame and close c once it is written. */
void rt_close(struct rt_conn *c, uint16_t code, const char *reason);
/* Loop thread: a JSON reply to c (never dropped). */
void rt_reply_json(struct rt_conn *c, json_t *o);

/* Loop thread: answer an HTTP request head with status and a JSON body,
 * then close (extra: more header lines, each ending in \r\n, or NULL). */
void rt_http_answer(struct rt_conn *c, int status, const char *extra, const char *body);
/* Loop thread: write buf (n bytes, malloc'ed; owned by the write from
 * here on) to c, then after(c) once it is written (NULL: nothing); c is
 * closed if it cannot be written. */
void rt_write_owned(struct rt_conn *c, char *buf, size_t n, void (*after)(struct rt_conn *c));
/* Loop thread: write the bytes now (a handshake answer); MMO_EIO if the
 * socket did not take them whole. */
int rt_write_raw(struct rt_conn *c, const char *p, size_t n);
void rt_read_start(struct rt_conn *c);
void rt_read_stop(struct rt_conn *c);
struct hub *rt_hub(struct rt_conn *c);
struct rt *rt_of(struct rt_conn *c);

/* ---------------------------------------------------------------- WebSocket protocol (ws.c) */

/* A request head asked for /ws: check the upgrade and hand the token to the
 * worker pool (loop thread). */
void ws_upgrade(struct rt_conn *c, const char *head, size_t hlen);
/* The token check finished (loop thread). */
void ws_authed(struct rt_conn *c, struct rt_item *it);
/* Bytes read from an open WebSocket (loop thread). */
void ws_input(struct rt_conn *c, const uint8_t *p, size_t n);

/* A WebSocket client's intent answered: {"type":"ack","ref",...REST body}
 * or {"type":"error","ref","code","message","status"} (consumes ans->body). */
void ws_answer(struct rt_conn *c, const char *ref, struct gw_answer *ans);

/* ---------------------------------------------------------------- REST intents (rest.c, loop
 * thread) */

/* A plain request of a hot route, as the loop serves it. */
struct rest_head {
	size_t hend, need; /* head bytes; head + body bytes */
	enum gw_route route;
	enum gw_intent_kind kind;
	bool close_after; /* Connection: close */
	bool has_authz, has_ctype;
	char authz[GW_TOKEN_MAX + 16];
	char ctype[128];
};
/* Is h (hend bytes, ending in the blank line) a plain POST of a move or an
 * attack (see rest.c)? Fills r. Pure: fuzzed. */
bool rest_parse_head(const char *h, size_t hend, struct rest_head *r);
/* A complete request head (hend bytes, through the blank line) is in
 * c->head: true if the loop serves it (a plain POST of a move or an
 * attack), false to relay it to civetweb. */
bool rest_take(struct rt_conn *c, size_t hend);
/* More bytes of the request being served arrived (in c->head). */
void rest_more(struct rt_conn *c);
/* The answer of the connection's request (consumes ans->body). */
void rest_answer(struct rt_conn *c, struct gw_answer *ans);
/* The client half-closed during its request: true if the request is
 * whole (it is answered, then the connection closes), false to close now. */
bool rest_eof(struct rt_conn *c);
/* RT_I_RAUTHED arrived. */
void rest_authed(struct rt_conn *c, struct rt_item *it);
/* The head of the next request (front.c): scan c->head from offset from;
 * wait for it at most head_timeout_ms. */
void rt_head_scan(struct rt_conn *c, size_t from);
void rt_head_wait(struct rt_conn *c);
/* Has the connection served a request on the loop (an idle keep-alive
 * connection is closed without a 408)? */
bool rest_served(const struct rt_conn *c);

/* ---------------------------------------------------------------- intents in flight (inflight.c,
 * loop thread) */

/* Appends from the loop through one DEALER (no thread waits): the reply
 * gives the intent's seq, the world's decision (gw_outcome_watch) its
 * answer. At most FLIGHTS_MAX in flight; past that 503. */
int rt_flights_start(struct rt *rt, char *err, size_t errlen); /* before the loop runs */
void rt_flights_close(struct rt *rt); /* at stop, on the loop: close its handles */
void rt_flights_free(struct rt *rt);  /* after the loop ended */
/* Append ev for c; in's answer goes to c over REST (ref NULL) or as the
 * WebSocket answer of ref. */
void rt_flight_submit(struct rt_conn *c, const struct gw_intent *in, const struct gw_intent_ev *ev,
                      const char *ref);
void rt_flight_decided(struct rt *rt, struct rt_item *it);
void rt_flights_tick(struct rt *rt); /* timeouts */

/* ---------------------------------------------------------------- hub (hub.c, loop thread) */

struct hub;
int hub_new(gw *g, struct hub **out);
void hub_free(struct hub *h);
int hub_register(struct hub *h, struct rt_conn *c);
void hub_unregister(struct hub *h, struct rt_conn *c);
/* MMO_OK, MMO_EFULL (too many regions), MMO_ENOTFOUND (unsubscribe). */
int hub_subscribe(struct hub *h, struct rt_conn *c, const char *region);
int hub_unsubscribe(struct hub *h, struct rt_conn *c, const char *region);
void hub_player_pos(struct hub *h, const char *player, double x, double y);
bool hub_player_known(struct hub *h, const char *player);
/* Fan an event out to the sockets it concerns. */
void hub_deliver(struct hub *h, const struct rt_event_meta *meta, struct gw_msg *m);
/* Call fn for every open WebSocket of session jti (NULL: every one). */
void hub_each(struct hub *h, const char *jti, void (*fn)(struct rt_conn *c, void *arg), void *arg);
size_t hub_count(const struct hub *h);

/* ---------------------------------------------------------------- worker pool (jobs.c) */

/* Blocking work the loop must not do: token checks at the upgrade (JWT and
 * the Redis session), intents sent over a WebSocket (append, wait for the
 * decision), session re-checks. */
struct jobs;
int jobs_start(gw *g, int nthreads, struct jobs **out);
void jobs_stop(struct jobs *j);
/* Queue fn(arg) on a worker. MMO_OK or MMO_EFULL (queue bound reached). */
int jobs_run(struct jobs *j, void (*fn)(void *arg), void *arg);

/* ---------------------------------------------------------------- bus follower (follow.c) */

struct follower;
/* One bus subscriber for the gateway: outcomes to the waiters (intent.c),
 * every event with a region rendered once and posted to the loop. */
int follower_start(gw *g, struct follower **out, char *err, size_t errlen);
void follower_stop(struct follower *f);

#endif
