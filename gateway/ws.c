/* ws.c - WebSocket connections: authentication at the upgrade, the client
 * protocol, and each connection's bounded outbound queue and writer.
 *
 * civetweb gives every WebSocket a worker thread that reads (on_data);
 * writes come from a second thread per connection (writer_main), so a
 * client that stops reading blocks only its own writer. Everything sent to
 * a client goes through its queue (at most ws_queue_max messages). When the
 * queue is full, the oldest low-priority message (movement, statistics:
 * priority 3 and 4) is dropped to make room; when none can be dropped, or
 * the queue has stayed full (not drained to half) for ws_slow_ms, the
 * client is closed with 1008 "slow consumer". A burst a reader absorbs
 * costs it a few low-priority messages, never the connection. Both count
 * in the metrics.
 *
 * Client messages are JSON objects: {"op":"subscribe","region_id":"..."}
 * and {"op":"unsubscribe","region_id":"..."}. Anything else gets
 * {"type":"error","code","message"} and the connection stays open.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_int.h"
#include "schemas/mmo_util.h"

#define WRITER_STACK (256 * 1024)
#define REST_RESERVE 4  /* civetweb workers kept for REST */
#define MSGS_PER_S   20 /* client messages per second (burst 2x) */

/* ---------------------------------------------------------------- messages */

struct gw_msg *gw_msg_new(const char *data, size_t len, unsigned prio, int64_t ts)
{
	struct gw_msg *m = malloc(sizeof(*m) + len + 1);

	if (!m)
		return NULL;
	atomic_init(&m->ref, 1);
	m->prio = prio;
	m->ts = ts;
	m->len = len;
	memcpy(m->data, data, len);
	m->data[len] = 0;
	return m;
}

void gw_msg_unref(struct gw_msg *m)
{
	if (m && atomic_fetch_sub(&m->ref, 1) == 1)
		free(m);
}

/* ---------------------------------------------------------------- connections */

void gw_wsc_ref(struct ws_conn *c)
{
	atomic_fetch_add(&c->ref, 1);
}

static void drain_locked(struct ws_conn *c)
{
	while (c->qlen) {
		gw_msg_unref(c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
		atomic_fetch_sub(&c->g->m.ws_queued, 1);
	}
}

void gw_wsc_unref(struct ws_conn *c)
{
	if (!c || atomic_fetch_sub(&c->ref, 1) != 1)
		return;
	drain_locked(c);
	free(c->q);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

static void close_locked(struct ws_conn *c, uint16_t code, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
	drain_locked(c);
	pthread_cond_signal(&c->cv);
}

static void slow(struct ws_conn *c, const char *reason)
{
	if (!c->closing)
		atomic_fetch_add(&c->g->m.ws_closed_slow, 1);
	close_locked(c, 1008, reason);
}

bool gw_wsc_stalled(struct ws_conn *c, int64_t now_mono)
{
	bool stalled;

	pthread_mutex_lock(&c->mu);
	stalled = c->full_since && now_mono - c->full_since > (int64_t)c->g->o.ws_slow_ms * 1000;
	if (stalled)
		slow(c, "slow consumer: outbound queue full for too long");
	pthread_mutex_unlock(&c->mu);
	return stalled;
}

void gw_wsc_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	pthread_mutex_lock(&c->mu);
	close_locked(c, code, reason);
	pthread_mutex_unlock(&c->mu);
}

void gw_wsc_send(struct ws_conn *c, struct gw_msg *m)
{
	gw *g = c->g;

	pthread_mutex_lock(&c->mu);
	if (c->closing || c->gone)
		goto out;
	if (c->qlen == c->qcap) {
		bool drop_new = false;
		size_t i;

		for (i = 0; i < c->qlen; i++) {
			if (c->q[(c->qhead + i) % c->qcap]->prio >= MMO_PRIO_MEDIUM)
				break;
		}
		if (i < c->qlen) {
			/* Drop the oldest droppable message: close the gap. */
			gw_msg_unref(c->q[(c->qhead + i) % c->qcap]);
			for (; i + 1 < c->qlen; i++)
				c->q[(c->qhead + i) % c->qcap] = c->q[(c->qhead + i + 1) % c->qcap];
			c->qlen--;
			atomic_fetch_sub(&g->m.ws_queued, 1);
		} else if (m->prio >= MMO_PRIO_MEDIUM) {
			drop_new = true;
		} else {
			slow(c, "slow consumer: outbound queue full");
			goto out;
		}
		atomic_fetch_add(&g->m.ws_dropped, 1);
		if (!c->full_since) {
			c->full_since = mmo_mono_us();
		} else if (mmo_mono_us() - c->full_since > (int64_t)g->o.ws_slow_ms * 1000) {
			slow(c, "slow consumer: outbound queue full for too long");
			goto out;
		}
		if (drop_new)
			goto out;
	}
	atomic_fetch_add(&m->ref, 1);
	c->q[(c->qhead + c->qlen) % c->qcap] = m;
	c->qlen++;
	atomic_fetch_add(&g->m.ws_queued, 1);
	pthread_cond_signal(&c->cv);
out:
	pthread_mutex_unlock(&c->mu);
}

static void *writer_main(void *arg)
{
	struct ws_conn *c = arg;
	gw *g = c->g;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct gw_msg *m;
		int rc;

		while (!c->qlen && !c->closing)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->gone)
			break;
		if (c->closing) {
			char frame[2 + sizeof(c->close_reason)];
			size_t rl = strlen(c->close_reason);

			if (rl > 120)
				rl = 120;
			frame[0] = (char)(c->close_code >> 8);
			frame[1] = (char)(c->close_code & 0xff);
			memcpy(frame + 2, c->close_reason, rl);
			c->close_sent = true;
			pthread_mutex_unlock(&c->mu);
			mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, frame,
			                   rl + 2);
			pthread_mutex_lock(&c->mu);
			break;
		}
		m = c->q[c->qhead];
		c->qhead = (c->qhead + 1) % c->qcap;
		c->qlen--;
		atomic_fetch_sub(&g->m.ws_queued, 1);
		pthread_mutex_unlock(&c->mu);
		rc = mg_websocket_write(c->conn, MG_WEBSOCKET_OPCODE_TEXT, m->data, m->len);
		if (rc > 0) {
			atomic_fetch_add(&g->m.ws_sent, 1);
			if (m->ts)
				gw_hist_observe(&g->m.stage[GW_S_DELIVERY], mmo_now_us() - m->ts);
		}
		gw_msg_unref(m);
		pthread_mutex_lock(&c->mu);
		if (rc <= 0) {
			gw_metrics_error(g, GW_F_WS);
			c->close_sent = true; /* the socket is dead: nothing more to say */
			close_locked(c, 1006, "write failed");
			break;
		}
		if (c->qlen <= c->qcap / 2)
			c->full_since = 0; /* caught up */
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* A reply to the client itself (never dropped). */
static void reply(struct ws_conn *c, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	struct gw_msg *m = s ? gw_msg_new(s, strlen(s), MMO_PRIO_CRITICAL, 0) : NULL;

	json_decref(o);
	free(s);
	if (m) {
		gw_wsc_send(c, m);
		gw_msg_unref(m);
	}
}

static void error_msg(struct ws_conn *c, const char *code, const char *msg)
{
	atomic_fetch_add(&c->g->m.ws_bad_msgs, 1);
	reply(c, json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "message", msg));
}

/* ---------------------------------------------------------------- civetweb callbacks */

static int reject(gw *g, const struct mg_connection *conn, int status, const char *code,
                  const char *msg, int64_t t0)
{
	struct gw_req r = {
	    g, (struct mg_connection *)conn, mg_get_request_info(conn), GW_R_WS, 0, {0}, false};

	if (status == 503)
		gw_reply_retry(&r, 503, 1, code, "%s", msg);
	else
		gw_reply_err(&r, status, code, NULL, "%s", msg);
	gw_metrics_request(g, GW_R_WS, status, mmo_mono_us() - t0);
	return 1;
}

static int on_connect(const struct mg_connection *conn, void *cb)
{
	gw *g = cb;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *h = mg_get_header(conn, "Authorization");
	char tok[GW_TOKEN_MAX + 1] = "";
	int64_t t0 = mmo_mono_us();
	struct ws_conn *c;
	struct gw_auth a;
	int rc, limit = g->o.ws_max;

	if (atomic_load(&g->stopping))
		return reject(g, conn, 503, "unavailable", "the gateway is stopping", t0);
	if (limit > g->o.http_threads - REST_RESERVE)
		limit = g->o.http_threads - REST_RESERVE;
	if ((int)atomic_load(&g->m.ws_conns) >= limit)
		return reject(g, conn, 503, "unavailable", "too many WebSocket connections", t0);
	if (h) {
		while (*h == ' ')
			h++;
		if (strncasecmp(h, "Bearer ", 7))
			return reject(g, conn, 401, "unauthorized",
			              "the Authorization scheme must be Bearer", t0);
		for (h += 7; *h == ' '; h++)
			;
		snprintf(tok, sizeof(tok), "%s", h);
	} else if (ri->query_string) {
		if (mg_get_var2(ri->query_string, strlen(ri->query_string), "token", tok,
		                sizeof(tok), 0) < 0)
			tok[0] = 0;
	}
	if (!tok[0])
		return reject(g, conn, 401, "unauthorized", "a Bearer token or ?token= is required",
		              t0);
	rc = gw_auth_token(g, tok, &a);
	switch (rc) {
	case MMO_OK: break;
	case MMO_ETIMEOUT: return reject(g, conn, 401, "token_expired", "the token expired", t0);
	case MMO_ENOTFOUND:
		return reject(g, conn, 401, "session_revoked", "the session has ended", t0);
	case MMO_EUNAVAIL:
		return reject(g, conn, 503, "unavailable",
		              "sessions cannot be checked now (Redis unavailable)", t0);
	default:
		gw_sec_note(g, "security.token_refused", ri->remote_addr, NULL);
		return reject(g, conn, 401, "invalid_token", "the token is not valid", t0);
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->q = calloc((size_t)g->o.ws_queue_max, sizeof(*c->q));
	if (!c || !c->q) {
		free(c);
		return reject(g, conn, 503, "unavailable", "out of memory", t0);
	}
	c->g = g;
	c->qcap = (size_t)g->o.ws_queue_max;
	c->auth = a;
	atomic_init(&c->ref, 1);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	mg_set_user_connection_data(conn, c);
	return 0;
}

/* The player's last known position, for the area of interest. */
static void initial_position(gw *g, struct ws_conn *c)
{
	redisReply *rep = gw_redis_cmd(g, "HMGET mmo:player:%s x y", c->auth.sub);

	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
	    rep->element[0]->type == REDIS_REPLY_STRING &&
	    rep->element[1]->type == REDIS_REPLY_STRING) {
		char *e1, *e2;
		double x = strtod(rep->element[0]->str, &e1), y = strtod(rep->element[1]->str, &e2);

		if (!*e1 && !*e2)
			gw_hub_player_pos(g, c->auth.sub, x, y);
	}
	freeReplyObject(rep);
}

static void on_ready(struct mg_connection *conn, void *cb)
{
	gw *g = cb;
	struct ws_conn *c = mg_get_user_connection_data(conn);
	pthread_attr_t attr;

	if (!c)
		return;
	c->conn = conn;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WRITER_STACK);
	if (pthread_create(&c->writer, &attr, writer_main, c) == 0) {
		c->writer_started = true;
		gw_wsc_ref(c);
	} else {
		gw_wsc_close(c, 1011, "out of threads");
	}
	pthread_attr_destroy(&attr);
	atomic_fetch_add(&g->m.ws_conns, 1);
	gw_metrics_request(g, GW_R_WS, 101, 0);
	if (gw_hub_register(g, c))
		gw_wsc_close(c, 1011, "out of memory");
	else
		initial_position(g, c);
}

int gw_ws_parse(const char *data, size_t len, struct gw_ws_msg *m)
{
	json_t *o = NULL, *v;
	const char *key, *op, *region;
	int rc = -1;

	memset(m, 0, sizeof(*m));
	if (gw_json_depth_ok(data, len, GW_JSON_DEPTH_MAX))
		o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(o)) {
		m->code = "bad_message";
		snprintf(m->message, sizeof(m->message), "a message must be a JSON object");
		goto out;
	}
	json_object_foreach(o, key, v)
	{
		if (strcmp(key, "op") && strcmp(key, "region_id")) {
			m->code = "unknown_field";
			snprintf(m->message, sizeof(m->message), "unknown field '%.64s'", key);
			goto out;
		}
	}
	op = json_string_value(json_object_get(o, "op"));
	region = json_string_value(json_object_get(o, "region_id"));
	if (!op || (strcmp(op, "subscribe") && strcmp(op, "unsubscribe"))) {
		m->code = "bad_op";
		snprintf(m->message, sizeof(m->message), "op must be \"subscribe\" or \"unsubscribe\"");
		goto out;
	}
	if (!region || !mmo_id_valid(region) ||
	    strlen(region) != json_string_length(json_object_get(o, "region_id"))) {
		m->code = "bad_id";
		snprintf(m->message, sizeof(m->message), "region_id must be 1..64 of [A-Za-z0-9_.:-]");
		goto out;
	}
	m->subscribe = !strcmp(op, "subscribe");
	snprintf(m->region, sizeof(m->region), "%s", region);
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static void handle(struct ws_conn *c, const char *data, size_t len)
{
	gw *g = c->g;
	struct gw_ws_msg m;
	const char *region = m.region;
	char rkey[MMO_ID_MAX + 8];
	int rc;

	if (gw_ws_parse(data, len, &m)) {
		error_msg(c, m.code, m.message);
		return;
	}
	snprintf(rkey, sizeof(rkey), "wsmsg:%s", c->auth.jti);
	if (!gw_rl_take(g->rl_player, rkey, MSGS_PER_S, 2 * MSGS_PER_S, 1, mmo_mono_us(), NULL)) {
		error_msg(c, "rate_limited", "too many messages; slow down");
		return;
	}
	if (m.subscribe) {
		rc = gw_hub_subscribe(g, c, region);
		if (rc == MMO_EFULL)
			error_msg(c, "too_many_regions", "at most 16 regions per connection");
		else if (rc)
			error_msg(c, "unavailable", "the event log is unavailable");
		else
			reply(c, json_pack("{s:s,s:s}", "type", "subscribed", "region_id", region));
	} else {
		rc = gw_hub_unsubscribe(g, c, region);
		if (rc)
			error_msg(c, "not_subscribed", "not subscribed to that region");
		else
			reply(c,
			      json_pack("{s:s,s:s}", "type", "unsubscribed", "region_id", region));
	}
}

static int on_data(struct mg_connection *conn, int flags, char *data, size_t len, void *cb)
{
	struct ws_conn *c = mg_get_user_connection_data(conn);
	int op = flags & 0x0f;
	bool done;

	(void)cb;
	if (!c)
		return 0;
	pthread_mutex_lock(&c->mu);
	done = c->close_sent || (c->closing && !c->writer_started);
	pthread_mutex_unlock(&c->mu);
	if (op == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE || done)
		return 0;
	if (op == MG_WEBSOCKET_OPCODE_PING || op == MG_WEBSOCKET_OPCODE_PONG)
		return 1;
	if (!(flags & 0x80) || op == MG_WEBSOCKET_OPCODE_CONTINUATION)
		error_msg(c, "bad_message", "fragmented messages are not supported");
	else if (op != MG_WEBSOCKET_OPCODE_TEXT)
		error_msg(c, "bad_message", "only text messages are supported");
	else if (len > GW_WS_IN_MAX)
		error_msg(c, "too_large", "a message is at most 4096 bytes");
	else
		handle(c, data, len);
	return 1;
}

static void on_close(const struct mg_connection *conn, void *cb)
{
	gw *g = cb;
	struct ws_conn *c = mg_get_user_connection_data(conn);
	bool ready;

	if (!c)
		return;
	mg_set_user_connection_data(conn, NULL);
	ready = c->conn != NULL;
	gw_hub_unregister(g, c);
	pthread_mutex_lock(&c->mu);
	c->gone = true;
	c->closing = true;
	drain_locked(c);
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->writer_started) {
		pthread_join(c->writer, NULL);
		gw_wsc_unref(c);
	}
	if (ready)
		atomic_fetch_sub(&g->m.ws_conns, 1);
	gw_wsc_unref(c);
}

void gw_ws_handlers(gw *g)
{
	mg_set_websocket_handler(g->mg, "/ws$", on_connect, on_ready, on_data, on_close, g);
}
