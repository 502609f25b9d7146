/* wsout.c - what the loop writes: frames built once and shared (gw_msg),
 * each WebSocket's bounded outbound queue, written without blocking.
 *
 * A socket's queue is written with uv_try_write (up to WRITE_BATCH frames in
 * one writev); what the kernel does not take becomes one uv_write whose
 * completion resumes the queue. When the queue is full, the oldest
 * droppable frame (priority 3 and 4: movement, statistics) goes; when none
 * can, or the queue has stayed full for ws_slow_ms, the socket is closed
 * with 1008. A socket that is behind keeps at most one position per moving
 * player (coalescing); critical and high frames are never dropped or
 * coalesced. Also the raw HTTP answers of the loop (errors before any
 * WebSocket, the 101). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "schemas/mmo_util.h"

#define WRITE_BATCH 32

/* ---------------------------------------------------------------- messages */

static struct gw_msg *msg_new(size_t len)
{
	struct gw_msg *m = malloc(sizeof(*m) + len);

	if (!m)
		return NULL;
	atomic_init(&m->ref, 1);
	m->prio = MMO_PRIO_CRITICAL;
	m->ts = 0;
	m->ckey = 0;
	m->len = len;
	return m;
}

struct gw_msg *gw_msg_text(const char *payload, size_t n, unsigned prio, int64_t ts)
{
	uint8_t hdr[WSF_HDR_MAX];
	size_t hl = wsf_header(hdr, WSF_TEXT, n);
	struct gw_msg *m = msg_new(hl + n);

	if (!m)
		return NULL;
	memcpy(m->data, hdr, hl);
	memcpy(m->data + hl, payload, n);
	m->prio = (uint8_t)prio;
	m->ts = ts;
	return m;
}

struct gw_msg *gw_msg_close(uint16_t code, const char *reason)
{
	size_t rl = reason ? strlen(reason) : 0;
	uint8_t hdr[WSF_HDR_MAX];
	struct gw_msg *m;
	size_t hl;

	if (rl > 120)
		rl = 120;
	hl = wsf_header(hdr, WSF_CLOSE, rl + 2);
	m = msg_new(hl + rl + 2);
	if (!m)
		return NULL;
	memcpy(m->data, hdr, hl);
	m->data[hl] = (uint8_t)(code >> 8);
	m->data[hl + 1] = (uint8_t)code;
	memcpy(m->data + hl + 2, reason, rl);
	return m;
}

void gw_msg_unref(struct gw_msg *m)
{
	if (m && atomic_fetch_sub(&m->ref, 1) == 1)
		free(m);
}

/* ---------------------------------------------------------------- writing */

static void on_ws_written(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct rt_conn *c = w->c;

	gw_msg_unref(w->m);
	free(w);
	c->writing = false;
	if (status < 0) {
		gw_metrics_error(&c->rt->g->m, GW_F_WS);
		rt_conn_close(c);
	} else if (!c->handle_closed) {
		rt_flush(c);
	}
	rt_conn_unref(c);
}

/* The head message is written: count it, pop it. */
static void pop_sent(struct rt_conn *c)
{
	gw *g = c->rt->g;
	struct gw_msg *m = c->q[c->qhead];

	if (m->ts) {
		atomic_fetch_add(&g->m.ws_sent, 1);
		mmo_hist_observe(&g->m.stage[GW_S_DELIVERY], mmo_now_us() - m->ts);
	}
	gw_msg_unref(m);
	c->qhead = (c->qhead + 1) % c->qcap;
	c->qlen--;
	c->off = 0;
	atomic_fetch_sub(&g->m.ws_queued, 1);
	if (c->qlen <= c->qcap / 2)
		c->full_since = 0;
}

void rt_flush(struct rt_conn *c)
{
	while (c->qlen && !c->writing && !c->handle_closed) {
		uv_buf_t b[WRITE_BATCH];
		unsigned nb = 0;
		int n;

		for (size_t i = 0; i < c->qlen && nb < WRITE_BATCH; i++) {
			struct gw_msg *m = c->q[(c->qhead + i) % c->qcap];
			size_t off = i == 0 ? c->off : 0;

			b[nb++] = uv_buf_init((char *)m->data + off, (unsigned)(m->len - off));
		}
		n = uv_try_write((uv_stream_t *)&c->tcp, b, nb);
		if (n == UV_EAGAIN)
			n = 0;
		if (n < 0) {
			rt_conn_close(c);
			return;
		}
		/* Pop what went out whole. */
		while (c->qlen && n > 0) {
			struct gw_msg *m = c->q[c->qhead];
			size_t left = m->len - c->off;

			if ((size_t)n < left) {
				c->off += (size_t)n;
				n = 0;
				break;
			}
			n -= (int)left;
			if (m->data[0] == (0x80 | WSF_CLOSE)) {
				pop_sent(c);
				rt_conn_close(c); /* our close frame is out: done */
				return;
			}
			pop_sent(c);
		}
		if (!c->qlen)
			return;
		/* The kernel took less than everything: hand the rest of the head
		 * message to libuv and resume from its completion. */
		{
			struct gw_msg *m = c->q[c->qhead];
			struct wreq *w = calloc(1, sizeof(*w));
			uv_buf_t rest;

			if (!w) {
				rt_conn_close(c);
				return;
			}
			w->c = c;
			w->m = m;
			atomic_fetch_add(&m->ref, 1);
			rest = uv_buf_init((char *)m->data + c->off, (unsigned)(m->len - c->off));
			if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &rest, 1, on_ws_written) <
			    0) {
				gw_msg_unref(m);
				free(w);
				rt_conn_close(c);
				return;
			}
			rt_conn_ref(c);
			c->writing = true;
			/* When it completes, the head is whole: account for it now. */
			c->off = m->len;
			pop_sent(c);
		}
	}
}

/* Drop the oldest droppable queued message (not the one being written).
 * Returns false if none can be dropped. */
static bool drop_one(struct rt_conn *c)
{
	size_t i = c->off || c->writing ? 1 : 0;

	for (; i < c->qlen; i++) {
		if (c->q[(c->qhead + i) % c->qcap]->prio >= MMO_PRIO_MEDIUM)
			break;
	}
	if (i >= c->qlen)
		return false;
	gw_msg_unref(c->q[(c->qhead + i) % c->qcap]);
	for (; i + 1 < c->qlen; i++)
		c->q[(c->qhead + i) % c->qcap] = c->q[(c->qhead + i + 1) % c->qcap];
	c->qlen--;
	atomic_fetch_sub(&c->rt->g->m.ws_queued, 1);
	atomic_fetch_add(&c->rt->g->m.ws_dropped, 1);
	return true;
}

/* A socket that is behind gets at most one position per player queued:
 * replace an unsent one of the same player. */
static bool coalesce(struct rt_conn *c, struct gw_msg *m)
{
	size_t i = c->off || c->writing ? 1 : 0;

	if (!m->ckey || c->qlen < c->qcap / 8)
		return false;
	for (; i < c->qlen; i++) {
		struct gw_msg **slot = &c->q[(c->qhead + i) % c->qcap];

		if ((*slot)->ckey == m->ckey) {
			gw_msg_unref(*slot);
			atomic_fetch_add(&m->ref, 1);
			*slot = m;
			atomic_fetch_add(&c->rt->g->m.ws_coalesced, 1);
			return true;
		}
	}
	return false;
}

static void slow(struct rt_conn *c, const char *reason)
{
	atomic_fetch_add(&c->rt->g->m.ws_closed_slow, 1);
	rt_close(c, 1008, reason);
}

void rt_send(struct rt_conn *c, struct gw_msg *m)
{
	gw *g = c->rt->g;

	if (c->state != RT_WS || c->close_queued || c->handle_closed)
		return;
	if (coalesce(c, m))
		return;
	if (c->qlen == c->qcap) {
		bool ok = drop_one(c);

		if (!c->full_since)
			c->full_since = mmo_mono_us();
		else if (mmo_mono_us() - c->full_since > (int64_t)g->o.ws_slow_ms * 1000) {
			slow(c, "slow consumer: outbound queue full for too long");
			return;
		}
		if (!ok) {
			if (m->prio >= MMO_PRIO_MEDIUM) {
				atomic_fetch_add(&g->m.ws_dropped, 1);
				return;
			}
			slow(c, "slow consumer: outbound queue full");
			return;
		}
	}
	atomic_fetch_add(&m->ref, 1);
	c->q[(c->qhead + c->qlen) % c->qcap] = m;
	c->qlen++;
	atomic_fetch_add(&g->m.ws_queued, 1);
	rt_flush(c);
}

void rt_close(struct rt_conn *c, uint16_t code, const char *reason)
{
	struct gw_msg *m;

	if (c->handle_closed || c->close_queued)
		return;
	if (c->state != RT_WS) {
		rt_conn_close(c);
		return;
	}
	/* Whatever is queued and unsent is dropped: the close goes next. */
	while (c->qlen > (c->off || c->writing ? 1u : 0u)) {
		size_t last = (c->qhead + c->qlen - 1) % c->qcap;

		gw_msg_unref(c->q[last]);
		c->qlen--;
		atomic_fetch_sub(&c->rt->g->m.ws_queued, 1);
	}
	m = gw_msg_close(code, reason);
	if (!m) {
		rt_conn_close(c);
		return;
	}
	c->q[(c->qhead + c->qlen) % c->qcap] = m; /* the queue's reference */
	c->qlen++;
	atomic_fetch_add(&c->rt->g->m.ws_queued, 1);
	c->close_queued = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	rt_flush(c);
}

void rt_reply_json(struct rt_conn *c, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	struct gw_msg *m = s ? gw_msg_text(s, strlen(s), MMO_PRIO_CRITICAL, 0) : NULL;

	json_decref(o);
	free(s);
	if (m) {
		rt_send(c, m);
		gw_msg_unref(m);
	}
}

static void on_owned_written(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct rt_conn *c = w->c;
	void (*after)(struct rt_conn * c) = w->after;

	free(w->copy);
	free(w);
	if (status < 0)
		rt_conn_close(c);
	else if (after)
		after(c);
	rt_conn_unref(c);
}

void rt_write_owned(struct rt_conn *c, char *buf, size_t n, void (*after)(struct rt_conn *c))
{
	struct wreq *w = calloc(1, sizeof(*w));
	uv_buf_t b = uv_buf_init(buf, (unsigned)n);

	if (!w) {
		free(buf);
		rt_conn_close(c);
		return;
	}
	w->copy = buf;
	w->n = n;
	w->c = c;
	w->after = after;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_owned_written) < 0) {
		free(w->copy);
		free(w);
		rt_conn_close(c);
		return;
	}
	rt_conn_ref(c);
}

/* An HTTP answer before any WebSocket, then a lingering close. */
void rt_http_answer(struct rt_conn *c, int status, const char *extra, const char *body)
{
	size_t cap = 512 + strlen(body) + (extra ? strlen(extra) : 0);
	char *buf = malloc(cap);
	int n;

	uv_read_stop((uv_stream_t *)&c->tcp);
	c->state = RT_CLOSING;
	if (!buf) {
		rt_conn_close(c);
		return;
	}
	n = snprintf(buf, cap,
	             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
	             "%zu\r\nConnection: close\r\n%s\r\n%s",
	             status, gw_status_text(status), strlen(body), extra ? extra : "", body);
	rt_write_owned(c, buf, (size_t)n, rt_linger_close);
}

/* Write raw bytes and keep the connection (the 101 of an upgrade). */
int rt_write_raw(struct rt_conn *c, const char *p, size_t n)
{
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
	int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

	/* A fresh socket's buffer always takes a handshake answer whole. */
	return w == (int)n ? MMO_OK : MMO_EIO;
}
