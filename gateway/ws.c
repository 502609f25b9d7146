/* ws.c - the WebSocket protocol on the event loop: the upgrade (the token
 * is checked on the worker pool), client frames, and client messages.
 *
 * Client messages are JSON text frames of at most GW_WS_IN_MAX bytes:
 *   {"op":"subscribe","region_id"}, {"op":"unsubscribe","region_id"}
 *   {"op":"move","x","y","z","ref"}, {"op":"attack","defender_id","skill_id","ref"}
 * A move or attack is the REST intent (same validation, rate limits,
 * idempotency and security events, run on the worker pool) and is answered
 * {"type":"ack","ref",...the REST body} or {"type":"error","ref","code",
 * "message",...} with the REST error code. Any other bad message gets
 * {"type":"error","code","message"} and the socket stays open.
 *
 * Frames: an unmasked frame, reserved bits, an unknown opcode or a bad
 * control frame closes with 1002; a frame over 1 MiB closes with 1009; a
 * data frame over GW_WS_IN_MAX is skipped unread with a "too_large" error;
 * binary and fragmented messages get "bad_message". Pings are answered.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "schemas/mmo_util.h"

#define MSGS_PER_S     20 /* client messages per second (burst 2x) */
#define FRAME_HARD_MAX (1u << 20)
#define WS_SNDBUF      (128 * 1024) /* kernel send buffer of a WebSocket */

/* ---------------------------------------------------------------- the upgrade */

/* The value of header name in head (case-insensitive), copied to out. */
static bool header(const char *head, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p && p[2] != '\r') {
		const char *line = p + 2, *end = strstr(line, "\r\n");
		size_t vl;

		if (!end)
			return false;
		if ((size_t)(end - line) > nl && !strncasecmp(line, name, nl) && line[nl] == ':') {
			const char *v = line + nl + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			vl = (size_t)(end - v);
			while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			if (vl >= cap)
				return false;
			memcpy(out, v, vl);
			out[vl] = 0;
			return true;
		}
		p = end;
	}
	return false;
}

static bool has_token(const char *list, const char *tok)
{
	size_t tl = strlen(tok);

	for (const char *p = list; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		if (!strncasecmp(p, tok, tl) && (p[tl] == 0 || p[tl] == ',' || p[tl] == ' '))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

static void answer_err(struct rt_conn *c, int status, const char *code, const char *msg)
{
	char body[400];

	snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
	gw_metrics_request(&c->rt_g->m, GW_R_WS, status, 0);
	rt_http_answer(c, status, status == 503 ? "Retry-After: 1\r\n" : NULL, body);
}

struct auth_job {
	struct rt_conn *c; /* holds a reference */
	struct rt *rt;
	gw *g;
	char tok[GW_TOKEN_MAX + 1];
};

static void auth_job(void *arg)
{
	struct auth_job *j = arg;
	struct rt_item *it = rt_item_new(RT_I_AUTHED);
	struct gw_auth a;
	int rc = gw_auth_token(j->g, j->tok, &a);

	if (!it) {
		rt_conn_unref(j->c);
		free(j);
		return;
	}
	it->conn = j->c;
	switch (rc) {
	case MMO_OK:
		j->c->auth = a; /* read by the loop only after the post below */
		it->status = 0;
		{
			redisReply *rep =
			    gw_redis_cmd(j->g->redis, "HMGET mmo:player:%s x y", a.sub);

			if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2 &&
			    rep->element[0]->type == REDIS_REPLY_STRING &&
			    rep->element[1]->type == REDIS_REPLY_STRING && rep->element[0]->len &&
			    rep->element[1]->len) {
				char *e1, *e2;

				it->x = strtod(rep->element[0]->str, &e1);
				it->y = strtod(rep->element[1]->str, &e2);
				it->pos_known = !*e1 && !*e2;
			}
			freeReplyObject(rep);
		}
		break;
	case MMO_ETIMEOUT:
		it->status = 401;
		it->code = "token_expired";
		it->message = "the token expired";
		break;
	case MMO_ENOTFOUND:
		it->status = 401;
		it->code = "session_revoked";
		it->message = "the session has ended";
		break;
	case MMO_EUNAVAIL:
		it->status = 503;
		it->code = "unavailable";
		it->message = "sessions cannot be checked now (Redis unavailable)";
		break;
	default:
		gw_sec_note(j->g, "security.token_refused", j->c->peer, NULL);
		it->status = 401;
		it->code = "invalid_token";
		it->message = "the token is not valid";
	}
	rt_post(j->rt, it);
	free(j);
}

void ws_upgrade(struct rt_conn *c, const char *head, size_t hlen)
{
	gw *g = c->rt_g;
	char upgrade[64], conn[128], version[16], auth[GW_TOKEN_MAX + 16];
	struct auth_job *j;
	const char *q, *sp;

	(void)hlen;
	rt_read_stop(c);
	if (atomic_load(&g->stopping))
		return answer_err(c, 503, "unavailable", "the gateway is stopping");
	if (!header(head, "Upgrade", upgrade, sizeof(upgrade)) ||
	    strcasecmp(upgrade, "websocket") || !header(head, "Connection", conn, sizeof(conn)) ||
	    !has_token(conn, "upgrade") ||
	    !header(head, "Sec-WebSocket-Key", c->ws_key, sizeof(c->ws_key)) ||
	    strlen(c->ws_key) != 24)
		return answer_err(c, 400, "websocket_required",
		                  "/ws takes a WebSocket upgrade (GET with Upgrade: websocket)");
	if (!header(head, "Sec-WebSocket-Version", version, sizeof(version)) ||
	    strcmp(version, "13"))
		return answer_err(c, 426, "upgrade_required", "Sec-WebSocket-Version must be 13");
	if ((int)atomic_load(&g->m.ws_conns) >= g->o.ws_max)
		return answer_err(c, 503, "unavailable", "too many WebSocket connections");
	j = calloc(1, sizeof(*j));
	if (!j)
		return answer_err(c, 503, "unavailable", "out of memory");
	if (header(head, "Authorization", auth, sizeof(auth))) {
		if (strncasecmp(auth, "Bearer ", 7)) {
			free(j);
			return answer_err(c, 401, "unauthorized",
			                  "the Authorization scheme must be Bearer");
		}
		sp = auth + 7;
		while (*sp == ' ')
			sp++;
		if (strlen(sp) >= sizeof(j->tok)) {
			free(j);
			return answer_err(c, 401, "invalid_token", "the token is not valid");
		}
		memcpy(j->tok, sp, strlen(sp) + 1);
	} else if ((q = strchr(head, '?')) && (sp = strchr(q, ' ')) && sp < strstr(head, "\r\n")) {
		if (mg_get_var2(q + 1, (size_t)(sp - q - 1), "token", j->tok, sizeof(j->tok), 0) <
		    0)
			j->tok[0] = 0;
	}
	if (!j->tok[0]) {
		free(j);
		return answer_err(c, 401, "unauthorized", "a Bearer token or ?token= is required");
	}
	j->c = c;
	j->rt = rt_of(c);
	j->g = g;
	c->state = RT_AUTH;
	rt_conn_ref(c);
	if (jobs_run(g->jobs, auth_job, j)) {
		rt_conn_unref(c);
		free(j);
		c->state = RT_HEAD;
		return answer_err(c, 503, "unavailable", "the gateway is overloaded");
	}
}

void ws_authed(struct rt_conn *c, struct rt_item *it)
{
	gw *g = c->rt_g;
	char accept[29], resp[256];
	int n;

	if (it->status) {
		c->state = RT_HEAD;
		return answer_err(c, it->status, it->code, it->message);
	}
	c->q = calloc((size_t)g->o.ws_queue_max, sizeof(*c->q));
	if (!c->q) {
		c->state = RT_HEAD;
		return answer_err(c, 503, "unavailable", "out of memory");
	}
	c->qcap = (size_t)g->o.ws_queue_max;
	wsf_accept_key(c->ws_key, strlen(c->ws_key), accept);
	n = snprintf(resp, sizeof(resp),
	             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
	             "Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	             accept);
	if (rt_write_raw(c, resp, (size_t)n)) {
		c->state = RT_CLOSING;
		rt_close(c, 1006, "");
		return;
	}
	free(c->head);
	c->head = NULL;
	c->hlen = c->hcap = 0;
	c->state = RT_WS;
	{
		/* Bound what the kernel holds for one socket: memory at tens of
		 * thousands of sockets, and a reader that stops shows up in its
		 * queue (the slow-consumer rule) instead of megabytes later. */
		int sndbuf = WS_SNDBUF;

		uv_send_buffer_size((uv_handle_t *)&c->tcp, &sndbuf);
	}
	atomic_fetch_add(&g->m.ws_conns, 1);
	gw_metrics_request(&g->m, GW_R_WS, 101, 0);
	if (hub_register(rt_hub(c), c)) {
		rt_close(c, 1011, "out of memory");
		return;
	}
	/* What the bus showed is newer than the Redis view's copy. */
	if (it->pos_known && !hub_player_known(rt_hub(c), c->auth.sub))
		hub_player_pos(rt_hub(c), c->auth.sub, it->x, it->y);
	rt_read_start(c);
}

/* ---------------------------------------------------------------- client messages */

static json_t *with_ref(json_t *o, const char *ref)
{
	if (o && ref)
		json_object_set_new(o, "ref", json_string(ref));
	return o;
}

static void error_msg(struct rt_conn *c, const char *ref, const char *code, const char *msg)
{
	json_t *o = json_pack("{s:s,s:s,s:s}", "type", "error", "code", code, "message", msg);

	atomic_fetch_add(&c->rt_g->m.ws_bad_msgs, 1);
	if (o && ref)
		json_object_set_new(o, "ref", json_string(ref));
	rt_reply_json(c, o);
}

/* The REST answer of an intent, as a WebSocket message. */
static json_t *as_ws(const char *ref, struct gw_answer *a)
{
	json_t *o;

	if (a->status == 200) {
		o = a->body ? a->body : json_object();
		a->body = NULL;
		json_object_set_new(o, "type", json_string("ack"));
	} else {
		json_t *e = json_object_get(a->body, "error");

		/* A 202 has no error object: its code is "pending". */
		bool pending = a->status == 202 && !e;

		o = json_pack(
		    "{s:s,s:s,s:s,s:i}", "type", "error", "code",
		    json_string_value(json_object_get(e, "code"))
		        ?: (pending ? "pending" : "internal"),
		    "message",
		    json_string_value(json_object_get(e, "message"))
		        ?: (pending ? "not decided in time; the intent is in the log at seq" : ""),
		    "status", a->status);
		if (o && a->body) {
			const char *k;
			json_t *v;

			json_object_foreach(a->body, k, v)
			{
				if (!json_object_get(o, k) && strcmp(k, "error"))
					json_object_set(o, k,
					                v); /* never over type, code, status */
			}
		}
		if (o && a->retry_s)
			json_object_set_new(o, "retry_after_s", json_integer(a->retry_s));
	}
	if (o)
		json_object_set_new(o, "ref", json_string(ref));
	return o;
}

void ws_answer(struct rt_conn *c, const char *ref, struct gw_answer *ans)
{
	json_t *o = as_ws(ref, ans);

	if (o)
		rt_reply_json(c, o);
}

static void handle(struct rt_conn *c, const char *data, size_t len)
{
	gw *g = c->rt_g;
	struct gw_ws_msg m;
	char rkey[MMO_ID_MAX + 8];
	const char *ref;
	int rc;

	if (gw_ws_parse(data, len, g->o.coord_max, &m)) {
		error_msg(c, m.ref[0] ? m.ref : NULL, m.code, m.message);
		return;
	}
	ref = m.ref[0] ? m.ref : NULL;
	snprintf(rkey, sizeof(rkey), "wsmsg:%s", c->auth.jti);
	if (!gw_rl_take(g->rl_player, rkey, MSGS_PER_S, 2 * MSGS_PER_S, 1, mmo_mono_us(), NULL)) {
		error_msg(c, ref, "rate_limited", "too many messages; slow down");
		return;
	}
	switch (m.op) {
	case GW_WS_SUBSCRIBE:
		rc = hub_subscribe(rt_hub(c), c, m.region);
		if (rc == MMO_EFULL)
			error_msg(c, ref, "too_many_regions", "at most 16 regions per connection");
		else if (rc)
			error_msg(c, ref, "unavailable", "out of memory");
		else
			rt_reply_json(c, with_ref(json_pack("{s:s,s:s}", "type", "subscribed",
			                                    "region_id", m.region),
			                          ref));
		break;
	case GW_WS_UNSUBSCRIBE:
		rc = hub_unsubscribe(rt_hub(c), c, m.region);
		if (rc)
			error_msg(c, ref, "not_subscribed", "not subscribed to that region");
		else
			rt_reply_json(c, with_ref(json_pack("{s:s,s:s}", "type", "unsubscribed",
			                                    "region_id", m.region),
			                          ref));
		break;
	case GW_WS_MOVE:
	case GW_WS_ATTACK: {
		struct gw_answer ans = {0};
		struct gw_intent in;
		struct gw_intent_ev ev;
		bool ok = m.op == GW_WS_MOVE
		              ? gw_intent_move_prepare(g, &c->auth, m.x, m.y, m.z, &in, &ev, &ans)
		              : gw_intent_attack_prepare(g, &c->auth, m.defender, m.skill, &in, &ev,
		                                         &ans);

		if (ok)
			rt_flight_submit(c, &in, &ev, m.ref);
		else
			ws_answer(c, m.ref, &ans);
		json_decref(ans.body);
		break;
	}
	}
}

/* ---------------------------------------------------------------- frames */

/* One complete frame at p (header + payload, f parsed). */
static void frame(struct rt_conn *c, const struct wsf_frame *f, uint8_t *payload)
{
	wsf_unmask(payload, (size_t)f->len, f->mask, 0);
	switch (f->op) {
	case WSF_CLOSE: {
		uint16_t code = f->len >= 2 ? (uint16_t)(payload[0] << 8 | payload[1]) : 1000;

		rt_close(c, code == 1005 || code == 1006 || code < 1000 ? 1000 : code, "");
		return;
	}
	case WSF_PING: {
		uint8_t hdr[WSF_HDR_MAX];
		size_t hl = wsf_header(hdr, WSF_PONG, f->len);
		struct gw_msg *m = gw_msg_text("", 0, MMO_PRIO_CRITICAL, 0);
		struct gw_msg *pong = m ? realloc(m, sizeof(*m) + hl + f->len) : NULL;

		if (!pong) {
			free(m);
			return;
		}
		memcpy(pong->data, hdr, hl);
		memcpy(pong->data + hl, payload, (size_t)f->len);
		pong->len = hl + (size_t)f->len;
		rt_send(c, pong);
		gw_msg_unref(pong);
		return;
	}
	case WSF_PONG: return;
	case WSF_BINARY:
		error_msg(c, NULL, "bad_message", "only text messages are supported");
		return;
	case WSF_CONT:
	case WSF_TEXT:
		if (!f->fin || f->op == WSF_CONT) {
			error_msg(c, NULL, "bad_message", "fragmented messages are not supported");
			return;
		}
		handle(c, (const char *)payload, (size_t)f->len);
		return;
	}
}

void ws_input(struct rt_conn *c, const uint8_t *p, size_t n)
{
	while (n && c->state == RT_WS && !c->close_queued) {
		struct wsf_frame f;
		const uint8_t *buf = p;
		size_t avail = n, used;
		enum wsf_status st;

		if (c->skip) {
			size_t k = c->skip < n ? (size_t)c->skip : n;

			c->skip -= k;
			p += k;
			n -= k;
			continue;
		}
		if (c->inlen) {
			/* Complete the pending frame from the new bytes. */
			size_t room = GW_WS_IN_MAX + WSF_HDR_MAX - c->inlen,
			       k = n < room ? n : room;

			memcpy(c->in + c->inlen, p, k);
			buf = c->in;
			avail = c->inlen + k;
		}
		st = wsf_parse(buf, avail, &f);
		if (st == WSF_PROTOCOL) {
			rt_close(c, 1002, "protocol error");
			return;
		}
		if (st == WSF_OK && f.len > FRAME_HARD_MAX) {
			rt_close(c, 1009, "message too big");
			return;
		}
		if (st == WSF_OK && f.len > GW_WS_IN_MAX) {
			/* Skip it unread: the header's bytes, then len bytes. */
			used = f.hdr_len - (c->inlen < f.hdr_len ? c->inlen : f.hdr_len);
			if (c->inlen > f.hdr_len) {
				/* part of the payload was buffered too */
				uint64_t have = c->inlen - f.hdr_len;

				c->skip = f.len - have;
			} else {
				c->skip = f.len;
			}
			c->inlen = 0;
			p += used;
			n -= used;
			error_msg(c, NULL, "too_large", "a message is at most 4096 bytes");
			continue;
		}
		if (st == WSF_NEED_MORE || avail < f.hdr_len + f.len) {
			/* Keep what there is for the next read. */
			if (!c->in) {
				c->in = malloc(GW_WS_IN_MAX + WSF_HDR_MAX);
				if (!c->in) {
					rt_close(c, 1011, "out of memory");
					return;
				}
			}
			if (buf == p)
				memcpy(c->in, p, n);
			c->inlen = avail;
			return;
		}
		{
			size_t total = f.hdr_len + (size_t)f.len, from_new;
			uint8_t tmp[GW_WS_IN_MAX + WSF_HDR_MAX];

			memcpy(tmp, buf, total);
			from_new = total - c->inlen;
			c->inlen = 0;
			p += from_new;
			n -= from_new;
			frame(c, &f, tmp + f.hdr_len);
		}
	}
	if (c->in && !c->inlen) {
		free(c->in);
		c->in = NULL;
	}
}
