/* front.c - the event loop that owns the gateway's address (libuv).
 *
 * One thread serves every connection. It reads each request head (at most
 * HEAD_MAX bytes within head_timeout_ms, else 431/408 and close, so a peer
 * that never finishes its headers holds no worker); an upgrade of /ws
 * becomes a WebSocket served here (ws.c); a plain move or attack is served
 * here too (rest.c, inflight.c); anything else is relayed byte for
 * byte to civetweb, which listens on a loopback port of its own and serves
 * REST. civetweb sees the relay's address; gw_peer_addr() maps the relay's
 * port back to the client's address.
 *
 * Writes are non-blocking (wsout.c); the relay is relay.c. Other threads
 * reach the loop through its inbox (rt_post + uv_async).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rt.h"
#include "schemas/mmo_hash.h"
#include "schemas/mmo_util.h"

#define HEAD_MAX       8192
#define SLOW_TICK_MS   250
#define ACCEPT_WARN_US 10000000

/* ---------------------------------------------------------------- inbox */

struct rt_item *rt_item_new(enum rt_item_kind kind)
{
	struct rt_item *it = calloc(1, sizeof(*it));

	if (it)
		it->kind = kind;
	return it;
}

void rt_item_free(struct rt_item *it)
{
	if (!it)
		return;
	gw_msg_unref(it->msg);
	if (it->conn)
		rt_conn_unref(it->conn);
	for (size_t i = 0; it->conns && i < it->n; i++)
		rt_conn_unref(it->conns[i]);
	free(it->conns);
	free(it->verdict);
	free(it->outcome);
	json_decref(it->ans.body);
	free(it);
}

void rt_post(struct rt *rt, struct rt_item *it)
{
	pthread_mutex_lock(&rt->mu);
	if (rt->stop) {
		pthread_mutex_unlock(&rt->mu);
		rt_item_free(it);
		return;
	}
	it->next = NULL;
	*rt->tail = it;
	rt->tail = &it->next;
	pthread_mutex_unlock(&rt->mu);
	uv_async_send(&rt->wake);
}

/* ---------------------------------------------------------------- connections */

void rt_conn_ref(struct rt_conn *c)
{
	atomic_fetch_add(&c->ref, 1);
}

static void conn_free(struct rt_conn *c)
{
	while (c->qlen) {
		gw_msg_unref(c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
		atomic_fetch_sub(&c->rt->g->m.ws_queued, 1);
	}
	free(c->q);
	free(c->in);
	free(c->head);
	free(c->relay);
	free(c->rest);
	free(c);
}

void rt_conn_unref(struct rt_conn *c)
{
	if (c && atomic_fetch_sub(&c->ref, 1) == 1)
		conn_free(c);
}

/* ---------------------------------------------------------------- connections per address */

#define ADDR_BUCKETS 65536

struct rt_addr {
	char ip[64];
	uint32_t n; /* open connections */
	struct rt_addr *next;
};

static struct rt_addr **addr_bucket(struct rt *rt, const char *ip)
{
	return &rt->addrs[mmo_fnv1a_str(ip) & (ADDR_BUCKETS - 1)];
}

/* Count c against its address: false when the address is at its cap. */
static bool addr_take(struct rt_conn *c)
{
	struct rt *rt = c->rt;
	int cap = rt->g->o.conns_per_addr;
	struct rt_addr **b, *a;

	if (cap < 0 || !rt->addrs)
		return true;
	b = addr_bucket(rt, c->peer);
	for (a = *b; a && strcmp(a->ip, c->peer); a = a->next)
		;
	if (a && a->n >= (uint32_t)cap)
		return false;
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return true; /* uncounted rather than refused */
		snprintf(a->ip, sizeof(a->ip), "%s", c->peer);
		a->next = *b;
		*b = a;
	}
	a->n++;
	c->addr = a;
	return true;
}

static void addr_release(struct rt_conn *c)
{
	struct rt_addr *a = c->addr, **pp;

	c->addr = NULL;
	if (!a || --a->n)
		return;
	for (pp = addr_bucket(c->rt, a->ip); *pp && *pp != a; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = a->next;
	free(a);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct rt_conn *c = h->data;

	c->rt->nconns--;
	addr_release(c);
	rt_conn_unref(c);
}

void rt_on_up_closed(uv_handle_t *h)
{
	struct rt_conn *c = h->data;

	rt_conn_unref(c);
}

void rt_relay_forget(struct rt_conn *c)
{
	if (c->relay && c->relay->port)
		gw_peer_forget(c->rt->g, c->relay->port);
}

/* Close the connection (idempotent): the hub forgets it, its handles are
 * closed, the memory goes with the last reference. */
void rt_conn_close(struct rt_conn *c)
{
	gw *g = c->rt->g;

	if (c->handle_closed)
		return;
	c->handle_closed = true;
	if (c->state == RT_WS || (c->state == RT_CLOSING && c->pl)) {
		hub_unregister(c->rt->hub, c);
		atomic_fetch_sub(&g->m.ws_conns, 1);
	}
	c->state = RT_CLOSING;
	uv_close((uv_handle_t *)&c->timer, NULL);
	if (c->relay) {
		rt_relay_forget(c);
		if (c->relay->up_open && !c->relay->up_closed) {
			c->relay->up_closed = true;
			rt_conn_ref(c);
			uv_close((uv_handle_t *)&c->relay->up, rt_on_up_closed);
		}
	}
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* ---------------------------------------------------------------- lingering close */

/* Close after what is queued to the client is sent: shut the write side
 * down (libuv sends the FIN after the pending writes), discard what the
 * client still sends until it closes or LINGER_MS pass, then close. A
 * plain close with unread input would reset the connection and could lose
 * the answer. */
#define LINGER_MS 2000

static void on_linger_timeout(uv_timer_t *t)
{
	rt_conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct rt_conn *c = req->data;

	free(req);
	if (status < 0)
		rt_conn_close(c);
	rt_conn_unref(c);
}

void rt_linger_close(struct rt_conn *c)
{
	uv_shutdown_t *req;

	if (c->handle_closed || c->lingering)
		return;
	c->lingering = true;
	if (c->relay && c->relay->up_open && !c->relay->up_closed) {
		rt_relay_forget(c);
		c->relay->up_closed = true;
		rt_conn_ref(c);
		uv_close((uv_handle_t *)&c->relay->up, rt_on_up_closed);
	}
	c->state = RT_CLOSING;
	req = malloc(sizeof(*req));
	if (!req) {
		rt_conn_close(c);
		return;
	}
	req->data = c;
	rt_conn_ref(c);
	if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
		free(req);
		rt_conn_unref(c);
		rt_conn_close(c);
		return;
	}
	uv_timer_stop(&c->timer);
	uv_timer_start(&c->timer, on_linger_timeout, LINGER_MS, 0);
	rt_read_start(c);
}

/* ---------------------------------------------------------------- reading */

void rt_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct rt_conn *c = h->data;
	struct rt *rt = c->rt;

	(void)suggested;
	/* One loop thread: the shared buffer is free again once the read
	 * callback that got it returns (ws.c copies what it keeps). */
	b->base = (char *)rt->rbuf;
	b->len = sizeof(rt->rbuf);
}

static bool head_is_ws(const char *h)
{
	/* "GET /ws HTTP/1.1" or "GET /ws?token=..." */
	return !strncmp(h, "GET /ws", 7) && (h[7] == ' ' || h[7] == '?');
}

static void head_input(struct rt_conn *c, const char *p, size_t n)
{
	size_t scan_from = c->hlen > 3 ? c->hlen - 3 : 0;
	char *nh;

	/* The buffer also keeps whatever followed the head in the same reads
	 * (a body, the next request): the relay forwards it all. */
	if (c->hlen + n + 1 > c->hcap) {
		size_t cap = c->hcap ? c->hcap : 1024;

		while (cap < c->hlen + n + 1)
			cap *= 2;
		nh = realloc(c->head, cap);
		if (!nh) {
			rt_conn_close(c);
			return;
		}
		c->head = nh;
		c->hcap = cap;
	}
	memcpy(c->head + c->hlen, p, n);
	c->hlen += n;
	c->head[c->hlen] = 0;
	if (c->state == RT_REST)
		rest_more(c);
	else
		rt_head_scan(c, scan_from);
}

void rt_head_scan(struct rt_conn *c, size_t scan_from)
{
	char *end = memmem(c->head + scan_from, c->hlen - scan_from, "\r\n\r\n", 4);

	if (!end || end + 4 - c->head > HEAD_MAX) {
		if (c->hlen > HEAD_MAX)
			rt_http_answer(c, 431, NULL,
			               "{\"error\":{\"code\":\"headers_too_large\",\"message\":"
			               "\"the request head is over 8 KiB\"}}");
		return;
	}
	if (head_is_ws(c->head)) {
		uv_timer_stop(&c->timer);
		ws_upgrade(c, c->head, c->hlen);
		return;
	}
	if (rest_take(c, (size_t)(end + 4 - c->head)))
		return;
	rt_relay_open(c);
}

static void on_up_shutdown(uv_shutdown_t *req, int status)
{
	struct rt_conn *c = req->data;

	(void)status;
	free(req);
	rt_conn_unref(c);
}

void rt_on_client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct rt_conn *c = s->data;

	if (n == UV_EOF && c->state == RT_REST && rest_eof(c))
		return; /* answered first, then closed */
	if (n == UV_EOF && c->state == RT_RELAY && c->relay->up_open && !c->lingering) {
		/* The client is done sending: pass that on and wait for the answer. */
		uv_shutdown_t *req = malloc(sizeof(*req));

		uv_read_stop((uv_stream_t *)&c->tcp);
		if (req) {
			req->data = c;
			rt_conn_ref(c);
			if (uv_shutdown(req, (uv_stream_t *)&c->relay->up, on_up_shutdown) == 0)
				return;
			rt_conn_unref(c);
			free(req);
		}
	}
	if (n < 0) {
		rt_conn_close(c);
		return;
	}
	if (n == 0 || c->handle_closed || c->lingering)
		return;
	switch (c->state) {
	case RT_HEAD:
	case RT_REST: head_input(c, b->base, (size_t)n); break;
	case RT_RELAY: rt_relay_write(c, true, b->base, (size_t)n); break;
	case RT_WS: ws_input(c, (const uint8_t *)b->base, (size_t)n); break;
	default: break; /* RT_AUTH: nothing is read until the answer */
	}
}

void rt_read_start(struct rt_conn *c)
{
	uv_read_start((uv_stream_t *)&c->tcp, rt_alloc, rt_on_client_read);
}

void rt_read_stop(struct rt_conn *c)
{
	uv_read_stop((uv_stream_t *)&c->tcp);
}

struct hub *rt_hub(struct rt_conn *c)
{
	return c->rt->hub;
}

struct rt *rt_of(struct rt_conn *c)
{
	return c->rt;
}

void gw_ws_close_session(gw *g, const char *jti, const char *reason)
{
	struct rt_item *it;

	if (!g->rt || !(it = rt_item_new(RT_I_REVOKE)))
		return;
	snprintf(it->jti, sizeof(it->jti), "%s", jti);
	it->message = reason; /* a string literal */
	rt_post(g->rt, it);
}

static void on_head_timeout(uv_timer_t *t)
{
	struct rt_conn *c = t->data;

	if (c->state == RT_HEAD && !c->hlen && rest_served(c))
		rt_conn_close(c); /* an idle keep-alive connection */
	else if (c->state == RT_HEAD || c->state == RT_REST)
		rt_http_answer(c, 408, NULL,
		               "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request "
		               "did not arrive in time\"}}");
}

void rt_head_wait(struct rt_conn *c)
{
	uv_timer_start(&c->timer, on_head_timeout, (uint64_t)c->rt->g->o.head_timeout_ms, 0);
}

/* One address past conns_per_addr: 503, then a lingering close (bounded by
 * LINGER_MS), so a flood from one address cannot take every descriptor. */
static void refuse_addr(struct rt_conn *c)
{
	atomic_fetch_add(&c->rt->g->m.conns_refused_addr, 1);
	rt_http_answer(c, 503, "Retry-After: 1\r\n",
	               "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"too many "
	               "open connections from this address\"}}");
}

/* A connection refused for want of descriptors: counted always, said once
 * per ACCEPT_WARN_US. */
static void refused_fds(struct rt *rt, const char *why)
{
	int64_t now = mmo_mono_us();

	atomic_fetch_add(&rt->g->m.conns_refused_fds, 1);
	if (!rt->accept_warned || now - rt->accept_warned > ACCEPT_WARN_US) {
		rt->accept_warned = now;
		mmo_logf(MMO_LOG_WARN, "gateway",
		         "connections refused: %s (%zu open, at most %zu with RLIMIT_NOFILE %llu)",
		         why, rt->nconns, rt->conns_max, (unsigned long long)rt->nofile);
	}
}

static void on_accept(uv_stream_t *ls, int status)
{
	struct rt *rt = ls->data;
	struct rt_conn *c;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (status < 0) {
		refused_fds(rt, uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->rt = rt;
	c->rt_g = rt->g;
	atomic_init(&c->ref, 1);
	c->id = ++rt->next_id;
	c->state = RT_HEAD;
	rt->nconns++;
	c->tcp.data = c;
	c->timer.data = c;
	uv_tcp_init(&rt->loop, &c->tcp);
	uv_timer_init(&rt->loop, &c->timer);
	if (uv_accept(ls, (uv_stream_t *)&c->tcp)) {
		rt_conn_close(c);
		return;
	}
	if (rt->nconns > rt->conns_max) {
		/* Keep descriptors for the log, Redis and the relay: close now. */
		refused_fds(rt, "at the descriptor limit");
		rt_conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			uv_ip4_name((struct sockaddr_in *)&ss, c->peer, sizeof(c->peer));
		else if (ss.ss_family == AF_INET6)
			uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer, sizeof(c->peer));
	}
	if (!addr_take(c)) {
		refuse_addr(c);
		return;
	}
	rt_head_wait(c);
	rt_read_start(c);
}

/* ---------------------------------------------------------------- the loop */

static void check_cb(struct rt_conn *c, void *arg);

static void handle_item(struct rt *rt, struct rt_item *it)
{
	switch (it->kind) {
	case RT_I_EVENT:
		if (it->meta.moved)
			hub_player_pos(rt->hub, it->meta.player, it->meta.x, it->meta.y);
		hub_deliver(rt->hub, &it->meta, it->msg);
		break;
	case RT_I_AUTHED:
		if (!it->conn->handle_closed)
			ws_authed(it->conn, it);
		break;
	case RT_I_REPLY:
		if (!it->conn->handle_closed && it->msg)
			rt_send(it->conn, it->msg);
		break;
	case RT_I_REVOKE: hub_each(rt->hub, it->jti, check_cb, it); break;
	case RT_I_DECIDED: rt_flight_decided(rt, it); break;
	case RT_I_RAUTHED:
		if (!it->conn->handle_closed)
			rest_authed(it->conn, it);
		break;
	case RT_I_CHECKED:
		for (size_t i = 0; i < it->n; i++) {
			struct rt_conn *c = it->conns[i];

			if (c->handle_closed || c->state != RT_WS)
				continue;
			if (it->verdict[i] == 1) {
				atomic_fetch_add(&rt->g->m.ws_closed_revoked, 1);
				rt_close(c, 1008, "session revoked");
			} else if (it->verdict[i] == 0) {
				c->check_failures = 0;
			} else if (++c->check_failures >= 5) {
				/* Fail closed: a session that cannot be checked is
				 * not trusted for long. */
				rt_close(c, 1011, "session check unavailable");
			}
		}
		break;
	}
}

static void check_cb(struct rt_conn *c, void *arg)
{
	struct rt_item *it = arg;

	atomic_fetch_add(&c->rt->g->m.ws_closed_revoked, 1);
	rt_close(c, 1008, it->message ? it->message : "logged out");
}

/* At stop: WebSockets get 1001, every other connection is closed. */
static void stop_walk(uv_handle_t *h, void *arg)
{
	struct rt_conn *c = h->data;

	if (arg) { /* the second pass: whatever is left */
		if (!uv_is_closing(h))
			uv_close(h, h->type == UV_TCP && c && &c->tcp == (uv_tcp_t *)h
			                ? on_handle_closed
			                : NULL);
		return;
	}
	if (h->type != UV_TCP || !c || (uv_tcp_t *)h != &c->tcp || c->handle_closed)
		return;
	if (c->state == RT_WS)
		rt_close(c, 1001, "server stopping");
	else
		rt_conn_close(c);
}

static void force_walk(uv_handle_t *h, void *arg)
{
	struct rt_conn *c = h->data;

	(void)arg;
	if (uv_is_closing(h))
		return;
	if (h->type == UV_TCP && c && (uv_tcp_t *)h == &c->tcp) {
		rt_conn_close(c);
		return;
	}
	if (h->type == UV_TCP && c && c->relay && (uv_tcp_t *)h == &c->relay->up)
		return; /* closed with its connection */
	if (h->type == UV_TIMER && c && (uv_timer_t *)h == &c->timer)
		return;
	uv_close(h, NULL);
}

static void on_stop_timer(uv_timer_t *t)
{
	struct rt *rt = t->data;

	if (rt->nconns && mmo_mono_us() < rt->stop_deadline)
		return;
	uv_walk(&rt->loop, force_walk, NULL);
}

static void on_wake(uv_async_t *a)
{
	struct rt *rt = a->data;
	struct rt_item *list;
	bool stop;

	pthread_mutex_lock(&rt->mu);
	list = rt->head;
	rt->head = NULL;
	rt->tail = &rt->head;
	stop = rt->stop;
	pthread_mutex_unlock(&rt->mu);
	while (list) {
		struct rt_item *it = list;

		list = it->next;
		handle_item(rt, it);
		rt_item_free(it);
	}
	if (stop && !rt->stopping) {
		rt->stopping = true;
		uv_close((uv_handle_t *)&rt->listener, NULL);
		uv_close((uv_handle_t *)&rt->tick, NULL);
		rt_flights_close(rt);
		uv_walk(&rt->loop, stop_walk, NULL);
		/* Peers that do not read their close frame get a second. */
		rt->stop_deadline = mmo_mono_us() + 1000000;
		uv_timer_start(&rt->stop_timer, on_stop_timer, 10, 10);
	}
}

/* Slow consumers, token expiry, session re-checks. */
struct check_job {
	gw *g;
	struct rt *rt;
	struct rt_item *it;
};

static void check_sessions_job(void *arg)
{
	struct check_job *j = arg;
	struct rt_item *it = j->it;
	const char **jtis = malloc((it->n ? it->n : 1) * sizeof(*jtis));
	struct redisReply **reps = calloc(it->n ? it->n : 1, sizeof(*reps));
	bool ok = false;

	for (size_t i = 0; jtis && i < it->n; i++)
		jtis[i] = it->conns[i]->auth.jti; /* immutable after the upgrade */
	if (jtis && reps)
		ok = gw_redis_pipe(j->g->redis, "EXISTS mmo:session:%s", jtis, it->n, reps) ==
		     MMO_OK;
	for (size_t i = 0; i < it->n; i++) {
		it->verdict[i] = -1;
		if (ok && reps[i])
			it->verdict[i] = gw_redis_int(reps[i]) == 0 ? 1 : 0;
		gw_redis_reply_free(reps ? reps[i] : NULL);
	}
	free(jtis);
	free(reps);
	rt_post(j->rt, it);
	free(j);
}

struct tick_ctx {
	struct rt *rt;
	int64_t now_mono, now_s;
	struct rt_item *it;
	size_t want, seen;
};

static void tick_conn(struct rt_conn *c, void *arg)
{
	struct tick_ctx *t = arg;
	gw *g = t->rt->g;

	if (c->handle_closed || c->state != RT_WS)
		return;
	if (c->full_since && t->now_mono - c->full_since > (int64_t)g->o.ws_slow_ms * 1000) {
		atomic_fetch_add(&g->m.ws_closed_slow, 1);
		rt_close(c, 1008, "slow consumer: outbound queue full for too long");
		return;
	}
	if (c->auth.exp <= t->now_s) {
		rt_close(c, 1008, "token expired");
		return;
	}
	/* Round robin: up to want sockets' sessions per check. */
	if (t->it && t->seen++ >= t->rt->check_cursor && t->it->n < t->want) {
		rt_conn_ref(c);
		t->it->conns[t->it->n++] = c;
	}
}

static void on_tick(uv_timer_t *tm)
{
	struct rt *rt = tm->data;
	gw *g = rt->g;
	struct tick_ctx t = {rt, mmo_mono_us(), mmo_now_us() / 1000000, NULL, 0, 0};
	size_t total = hub_count(rt->hub);

	rt_flights_tick(rt);

	if (total && t.now_mono - rt->last_check >= (int64_t)g->o.session_check_ms * 1000) {
		rt->last_check = t.now_mono;
		t.want = total < RT_CHECK_MAX ? total : RT_CHECK_MAX;
		t.it = rt_item_new(RT_I_CHECKED);
		if (t.it) {
			t.it->conns = calloc(t.want, sizeof(*t.it->conns));
			t.it->verdict = calloc(t.want, sizeof(*t.it->verdict));
			if (!t.it->conns || !t.it->verdict) {
				rt_item_free(t.it);
				t.it = NULL;
			}
		}
		if (rt->check_cursor >= total)
			rt->check_cursor = 0;
	}
	hub_each(rt->hub, NULL, tick_conn, &t);
	if (t.it) {
		struct check_job *j = malloc(sizeof(*j));

		rt->check_cursor += t.it->n;
		if (t.it->n < t.want)
			rt->check_cursor = 0;
		if (j && t.it->n) {
			j->g = g;
			j->rt = rt;
			j->it = t.it;
			if (jobs_run(g->jobs, check_sessions_job, j) == MMO_OK)
				return;
		}
		free(j);
		rt_item_free(t.it);
	}
}

static void loop_main(void *arg)
{
	struct rt *rt = arg;

	mmo_thread_name("gw-loop");
	uv_run(&rt->loop, UV_RUN_DEFAULT);
}

static int parse_addr(const char *addr, struct sockaddr_storage *ss)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	int port;
	size_t hl;

	if (!colon)
		return MMO_EINVAL;
	hl = (size_t)(colon - addr);
	if (hl >= sizeof(host))
		return MMO_EINVAL;
	memcpy(host, addr, hl);
	host[hl] = 0;
	port = atoi(colon + 1);
	if (port < 0 || port > 65535)
		return MMO_EINVAL;
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		host[hl - 1] = 0;
		return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss) ? MMO_EINVAL : MMO_OK;
	}
	if (!strcmp(host, "*") || !host[0])
		snprintf(host, sizeof(host), "0.0.0.0");
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	return uv_ip4_addr(host, port, (struct sockaddr_in *)ss) ? MMO_EINVAL : MMO_OK;
}

int rt_start(gw *g, const char *addr, int upstream_port, struct rt **out, int *port, char *err,
             size_t errlen)
{
	struct rt *rt = calloc(1, sizeof(*rt));
	struct sockaddr_storage ss;
	int len = sizeof(ss), rc;

	if (!rt)
		return MMO_ENOMEM;
	rt->g = g;
	rt->addrs = calloc(ADDR_BUCKETS, sizeof(*rt->addrs)); /* NULL: no cap */
	{
		/* Client connections may use the descriptors but a reserve (a
		 * quarter, at most 1,024) for everything else the process opens. */
		struct rlimit rl = {1024, 1024};

		getrlimit(RLIMIT_NOFILE, &rl);
		rt->nofile = rl.rlim_cur == RLIM_INFINITY ? 1048576 : (uint64_t)rl.rlim_cur;
		rt->conns_max =
		    (size_t)(rt->nofile - (rt->nofile / 4 < 1024 ? rt->nofile / 4 : 1024));
	}
	pthread_mutex_init(&rt->mu, NULL);
	rt->tail = &rt->head;
	uv_ip4_addr("127.0.0.1", upstream_port, (struct sockaddr_in *)&rt->upstream);
	if (hub_new(g, &rt->hub) || uv_loop_init(&rt->loop)) {
		hub_free(rt->hub);
		free(rt->addrs);
		free(rt);
		return MMO_ENOMEM;
	}
	memset(&ss, 0, sizeof(ss));
	if (parse_addr(addr, &ss)) {
		snprintf(err, errlen, "--http %s: expected ADDR:PORT", addr);
		rc = MMO_EINVAL;
		goto fail;
	}
	uv_tcp_init(&rt->loop, &rt->listener);
	rt->listener.data = rt;
	rc = uv_tcp_bind(&rt->listener, (struct sockaddr *)&ss, 0);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&rt->listener, 4096, on_accept);
	if (rc) {
		snprintf(err, errlen, "cannot listen on %s: %s", addr, uv_strerror(rc));
		uv_close((uv_handle_t *)&rt->listener, NULL);
		uv_run(&rt->loop, UV_RUN_DEFAULT);
		rc = MMO_EIO;
		goto fail;
	}
	uv_tcp_getsockname(&rt->listener, (struct sockaddr *)&ss, &len);
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                       : ((struct sockaddr_in *)&ss)->sin_port);
	uv_async_init(&rt->loop, &rt->wake, on_wake);
	rt->wake.data = rt;
	uv_timer_init(&rt->loop, &rt->tick);
	rt->tick.data = rt;
	uv_timer_start(&rt->tick, on_tick, SLOW_TICK_MS, SLOW_TICK_MS);
	uv_timer_init(&rt->loop, &rt->stop_timer);
	rt->stop_timer.data = rt;
	rt->last_check = mmo_mono_us();
	rc = rt_flights_start(rt, err, errlen);
	if (rc || uv_thread_create(&rt->th, loop_main, rt)) {
		if (!rc)
			snprintf(err, errlen, "cannot start the event loop thread");
		uv_close((uv_handle_t *)&rt->listener, NULL);
		uv_close((uv_handle_t *)&rt->tick, NULL);
		uv_close((uv_handle_t *)&rt->wake, NULL);
		uv_close((uv_handle_t *)&rt->stop_timer, NULL);
		rt_flights_close(rt);
		uv_run(&rt->loop, UV_RUN_DEFAULT);
		rt_flights_free(rt);
		rc = MMO_EIO;
		goto fail;
	}
	rt->started = true;
	*out = rt;
	return MMO_OK;
fail:
	uv_loop_close(&rt->loop);
	hub_free(rt->hub);
	pthread_mutex_destroy(&rt->mu);
	free(rt->addrs);
	free(rt);
	return rc;
}

void rt_stop(struct rt *rt)
{
	if (!rt)
		return;
	pthread_mutex_lock(&rt->mu);
	rt->stop = true;
	pthread_mutex_unlock(&rt->mu);
	uv_async_send(&rt->wake);
	if (rt->started)
		uv_thread_join(&rt->th);
	rt_flights_free(rt);
	gw_tokcache_free(rt->toks);
	for (size_t i = 0; rt->addrs && i < ADDR_BUCKETS; i++) {
		while (rt->addrs[i]) {
			struct rt_addr *a = rt->addrs[i];

			rt->addrs[i] = a->next;
			free(a);
		}
	}
	free(rt->addrs);
	/* Items posted after the stop were freed by rt_post. */
	while (rt->head) {
		struct rt_item *it = rt->head;

		rt->head = it->next;
		rt_item_free(it);
	}
	uv_loop_close(&rt->loop);
	hub_free(rt->hub);
	pthread_mutex_destroy(&rt->mu);
	free(rt);
}
