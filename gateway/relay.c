/* relay.c - every request that is not a WebSocket upgrade, piped byte for
 * byte between its client and civetweb on its loopback port, both ways,
 * with backpressure (a side stops being read while more than RELAY_HIGH
 * bytes wait to be written to the other). The relay's local port is noted
 * so that civetweb's handlers can name the real client (gw_peer_addr). A
 * client that half-closes gets its answer; civetweb closing first (an
 * early 413) lets the client read it before the connection ends. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "schemas/mmo_util.h"

#define RELAY_HIGH (1 << 20) /* bytes queued to one side before reading stops */

static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

static void on_relay_written(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct rt_conn *c = w->c;
	struct rt_relay *r = c->relay;
	bool to_up = w->to_up;

	if (to_up)
		r->to_up -= w->n;
	else
		r->to_client -= w->n;
	free(w->copy);
	free(w);
	if (status < 0) {
		/* civetweb closed before taking everything (an early answer to
		 * an oversized body): the client still gets that answer. */
		if (to_up)
			rt_linger_close(c);
		else
			rt_conn_close(c);
	} else if (!c->handle_closed && !c->lingering) {
		/* Resume the side that was paused for this one. */
		if (to_up && r->client_paused && r->to_up < RELAY_HIGH / 2) {
			r->client_paused = false;
			uv_read_start((uv_stream_t *)&c->tcp, rt_alloc, rt_on_client_read);
		} else if (!to_up && r->up_paused && r->to_client < RELAY_HIGH / 2) {
			r->up_paused = false;
			uv_read_start((uv_stream_t *)&r->up, rt_alloc, on_up_read);
		}
	}
	rt_conn_unref(c);
}

void rt_relay_write(struct rt_conn *c, bool to_up, const char *p, size_t n)
{
	struct rt_relay *r = c->relay;
	uv_stream_t *dst = to_up ? (uv_stream_t *)&r->up : (uv_stream_t *)&c->tcp;
	uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
	struct wreq *w;
	int done = 0;

	if (c->lingering)
		return; /* the upstream is gone: what the client sends is dropped */
	if ((to_up ? r->to_up : r->to_client) == 0) {
		done = uv_try_write(dst, &b, 1);
		if (done == UV_EAGAIN)
			done = 0;
		if (done < 0) {
			if (to_up)
				rt_linger_close(c);
			else
				rt_conn_close(c);
			return;
		}
		if ((size_t)done == n)
			return;
	}
	w = calloc(1, sizeof(*w));
	if (w)
		w->copy = malloc(n - (size_t)done);
	if (!w || !w->copy) {
		free(w);
		rt_conn_close(c);
		return;
	}
	memcpy(w->copy, p + done, n - (size_t)done);
	w->n = n - (size_t)done;
	w->c = c;
	w->to_up = to_up;
	b = uv_buf_init(w->copy, (unsigned)w->n);
	if (uv_write(&w->req, dst, &b, 1, on_relay_written) < 0) {
		free(w->copy);
		free(w);
		rt_conn_close(c);
		return;
	}
	rt_conn_ref(c);
	if (to_up) {
		r->to_up += w->n;
		if (r->to_up > RELAY_HIGH && !r->client_paused) {
			r->client_paused = true;
			uv_read_stop((uv_stream_t *)&c->tcp);
		}
	} else {
		r->to_client += w->n;
		if (r->to_client > RELAY_HIGH && !r->up_paused) {
			r->up_paused = true;
			uv_read_stop((uv_stream_t *)&r->up);
		}
	}
}

static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct rt_conn *c = s->data;

	if (n < 0) {
		/* civetweb closed: the client gets what it sent first. */
		rt_linger_close(c);
		return;
	}
	if (n > 0 && !c->handle_closed)
		rt_relay_write(c, false, b->base, (size_t)n);
}

static void on_up_connected(uv_connect_t *req, int status)
{
	struct rt_conn *c = req->data;
	struct rt_relay *r = c->relay;
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (c->handle_closed) {
		rt_conn_unref(c);
		return;
	}
	if (status < 0) {
		gw_metrics_error(&c->rt->g->m, GW_F_HTTP);
		rt_http_answer(c, 503, "Retry-After: 1\r\n",
		               "{\"error\":{\"code\":\"unavailable\",\"message\":\"the HTTP "
		               "server is not answering\"}}");
		rt_conn_unref(c);
		return;
	}
	if (uv_tcp_getsockname(&r->up, (struct sockaddr *)&ss, &len) == 0 &&
	    ss.ss_family == AF_INET) {
		r->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		gw_peer_note(c->rt->g, r->port, c->peer);
	}
	uv_tcp_nodelay(&r->up, 1);
	rt_relay_write(c, true, c->head, c->hlen);
	free(c->head);
	c->head = NULL;
	c->hlen = c->hcap = 0;
	if (!c->handle_closed) {
		uv_read_start((uv_stream_t *)&r->up, rt_alloc, on_up_read);
		uv_read_start((uv_stream_t *)&c->tcp, rt_alloc, rt_on_client_read);
	}
	rt_conn_unref(c);
}

void rt_relay_open(struct rt_conn *c)
{
	struct rt_relay *r = calloc(1, sizeof(*r));

	uv_timer_stop(&c->timer);
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (!r) {
		rt_conn_close(c);
		return;
	}
	c->relay = r;
	c->state = RT_RELAY;
	if (uv_tcp_init(&c->rt->loop, &r->up)) {
		rt_conn_close(c);
		return;
	}
	r->up_open = true;
	r->up.data = c;
	r->creq.data = c;
	rt_conn_ref(c);
	if (uv_tcp_connect(&r->creq, &r->up, (struct sockaddr *)&c->rt->upstream,
	                   on_up_connected)) {
		rt_conn_unref(c);
		rt_conn_close(c);
	}
}
