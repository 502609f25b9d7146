/* rest.c - the two hot REST routes served on the event loop.
 *
 * POST /api/players/move and POST /api/combat/attack are what a game client
 * sends many times a second. When such a request is plain (HTTP/1.1, one
 * Content-Length of at most GW_BODY_MAX, no Transfer-Encoding, Expect or
 * Upgrade, no repeated Authorization or Content-Type) the loop serves it
 * itself: the same checks in the same order as civetweb's handler (api.c:
 * token and session, 415, the body's JSON and schema, the rate limit), the
 * intent sent without a thread waiting (inflight.c), the same answer. Every
 * other request, and anything unusual about these two, is relayed to
 * civetweb as before, which stays the REST server of the API; a keep-alive
 * connection that sends one becomes a relay from that request on.
 *
 * A connection has one request in the loop at a time: reading stops until
 * its answer is written, so pipelined requests are answered in order. A
 * session the cache (sessions.c) does not know is checked with Redis on the
 * worker pool, never on the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rt.h"
#include "schemas/mmo_util.h"

#define PIPELINED_MAX 65536 /* bytes read ahead behind a request being served */
/* Verified tokens the loop remembers: as many as sessions.c caches. */
#define TOKENS_CACHED 65536

struct rt_rest {
	struct rest_head h;
	bool served; /* a request was answered here */
	bool busy;   /* the request is whole and being served */
	bool eof;    /* the client half-closed: close after the answer */
	bool paused; /* reading stopped: too much pipelined behind it */
	int64_t t0;
	struct gw_auth auth;
};

/* ---------------------------------------------------------------- the head */

static bool name_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && !strncasecmp(p, name, n);
}

/* Copy the value v (n bytes) into dst (cap); false if it does not fit. */
static bool take(char *dst, size_t cap, bool *seen, const char *v, size_t n)
{
	if (*seen || n >= cap)
		return false;
	memcpy(dst, v, n);
	dst[n] = 0;
	*seen = true;
	return true;
}

/* Only "close" and "keep-alive" (comma-separated) are taken here. */
static bool connection_ok(const char *v, size_t n, bool *close_after)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		e = i;
		if (e == s)
			continue;
		if (name_is(v + s, e - s, "close"))
			*close_after = true;
		else if (!name_is(v + s, e - s, "keep-alive"))
			return false;
	}
	return true;
}

bool rest_parse_head(const char *h, size_t hend, struct rest_head *r)
{
	static const char move[] = "POST /api/players/move HTTP/1.1\r\n";
	static const char attack[] = "POST /api/combat/attack HTTP/1.1\r\n";
	const char *p, *end = h + hend - 2; /* the blank line's CRLF */
	bool have_len = false;
	size_t clen = 0;

	if (hend < 4 || memcmp(h + hend - 4, "\r\n\r\n", 4) || memchr(h, 0, hend))
		return false;
	if (hend > sizeof(move) - 1 && !memcmp(h, move, sizeof(move) - 1)) {
		r->kind = GW_INTENT_MOVE;
		r->route = GW_R_MOVE;
		p = h + sizeof(move) - 1;
	} else if (hend > sizeof(attack) - 1 && !memcmp(h, attack, sizeof(attack) - 1)) {
		r->kind = GW_INTENT_ATTACK;
		r->route = GW_R_ATTACK;
		p = h + sizeof(attack) - 1;
	} else {
		return false;
	}
	r->close_after = r->has_authz = r->has_ctype = false;
	while (p < end) {
		const char *eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		const char *colon, *v, *ve;
		size_t nlen;

		if (!eol || eol == p || *p == ' ' || *p == '\t')
			return false; /* folded or malformed: civetweb judges it */
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return false;
		nlen = (size_t)(colon - p);
		for (size_t i = 0; i < nlen; i++) {
			if (p[i] <= ' ' || p[i] > '~')
				return false;
		}
		v = colon + 1;
		ve = eol;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (name_is(p, nlen, "Content-Length")) {
			if (have_len || v == ve)
				return false;
			for (const char *d = v; d < ve; d++) {
				if (*d < '0' || *d > '9' || clen > GW_BODY_MAX)
					return false;
				clen = clen * 10 + (size_t)(*d - '0');
			}
			if (clen > GW_BODY_MAX)
				return false; /* civetweb's 413 */
			have_len = true;
		} else if (name_is(p, nlen, "Transfer-Encoding") || name_is(p, nlen, "Expect") ||
		           name_is(p, nlen, "Upgrade")) {
			return false;
		} else if (name_is(p, nlen, "Connection")) {
			if (!connection_ok(v, (size_t)(ve - v), &r->close_after))
				return false;
		} else if (name_is(p, nlen, "Authorization")) {
			if (!take(r->authz, sizeof(r->authz), &r->has_authz, v, (size_t)(ve - v)))
				return false;
		} else if (name_is(p, nlen, "Content-Type")) {
			if (!take(r->ctype, sizeof(r->ctype), &r->has_ctype, v, (size_t)(ve - v)))
				return false;
		}
		p = eol + 2;
	}
	if (!have_len)
		return false;
	r->hend = hend;
	r->need = hend + clen;
	return true;
}

bool rest_take(struct rt_conn *c, size_t hend)
{
	if (hend < 5 || memcmp(c->head, "POST ", 5))
		return false; /* not ours: no state for it */
	if (!c->rest && !(c->rest = calloc(1, sizeof(*c->rest))))
		return false;
	if (!rest_parse_head(c->head, hend, &c->rest->h))
		return false;
	c->rest->t0 = mmo_mono_us();
	c->state = RT_REST;
	atomic_fetch_add(&c->rt_g->m.rest_on_loop, 1);
	rest_more(c);
	return true;
}

bool rest_served(const struct rt_conn *c)
{
	return c->rest && c->rest->served;
}

/* ---------------------------------------------------------------- serving */

static void authed(struct rt_conn *c)
{
	struct rt_rest *r = c->rest;
	gw *g = c->rt_g;
	struct gw_answer ans = {0};
	struct gw_intent in;
	struct gw_intent_ev ev;
	json_t *body = NULL;

	if (!gw_is_json_type(r->h.has_ctype ? r->h.ctype : NULL)) {
		gw_answer_err(&ans, 415, 0, "unsupported_media_type", NULL,
		              "the body must be application/json");
		goto answer;
	}
	if (gw_body_json(c->head + r->h.hend, r->h.need - r->h.hend, &body, &ans))
		goto answer;
	if (!gw_intent_from_json(g, &r->auth, r->h.kind, body, &in, &ev, &ans))
		goto answer;
	json_decref(body);
	rt_flight_submit(c, &in, &ev, NULL);
	return;
answer:
	json_decref(body);
	rest_answer(c, &ans);
	json_decref(ans.body);
}

struct auth_job {
	struct rt_conn *c; /* holds a reference */
	struct rt *rt;
	char authz[GW_TOKEN_MAX + 16];
	bool has_authz;
	char peer[64];
};

/* On the worker pool: the session with Redis. */
static void auth_job(void *arg)
{
	struct auth_job *j = arg;
	struct rt_item *it = rt_item_new(RT_I_RAUTHED);

	if (!it) {
		rt_conn_unref(j->c); /* the request's head timeout is stopped: close */
		free(j);
		return;
	}
	gw_auth_bearer(j->rt->g, j->has_authz ? j->authz : NULL, j->peer, NULL, &it->auth,
	               &it->ans);
	it->conn = j->c;
	rt_post(j->rt, it);
	free(j);
}

void rest_authed(struct rt_conn *c, struct rt_item *it)
{
	if (c->state != RT_REST)
		return;
	if (it->ans.status) {
		rest_answer(c, &it->ans);
		return;
	}
	c->rest->auth = it->auth;
	authed(c);
}

static void serve(struct rt_conn *c)
{
	struct rt_rest *r = c->rest;
	gw *g = c->rt_g;
	struct gw_answer ans = {0};
	struct auth_job *j;
	int rc;

	if (atomic_load(&g->stopping)) {
		gw_answer_err(&ans, 503, 1, "unavailable", NULL, "the gateway is stopping");
		goto answer;
	}
	if (!c->rt->toks && gw_tokcache_new(TOKENS_CACHED, &c->rt->toks))
		c->rt->toks = NULL;
	/* Without the loop's token cache (out of memory) every check goes to
	 * the worker pool: tc NULL would block on Redis. */
	rc = c->rt->toks ? gw_auth_bearer(g, r->h.has_authz ? r->h.authz : NULL, c->peer,
	                                  c->rt->toks, &r->auth, &ans)
	                 : -1;
	if (rc == 0) {
		authed(c);
		return;
	}
	if (rc > 0)
		goto answer;
	/* The cache does not know the session: Redis, off the loop. */
	j = calloc(1, sizeof(*j));
	if (j) {
		j->c = c;
		j->rt = rt_of(c);
		memcpy(j->authz, r->h.authz, sizeof(j->authz));
		j->has_authz = r->h.has_authz;
		snprintf(j->peer, sizeof(j->peer), "%s", c->peer);
		rt_conn_ref(c);
		if (jobs_run(g->jobs, auth_job, j) == MMO_OK)
			return;
		rt_conn_unref(c);
		free(j);
	}
	gw_answer_err(&ans, 503, 1, "unavailable", NULL, "the gateway is overloaded; retry");
answer:
	rest_answer(c, &ans);
	json_decref(ans.body);
}

void rest_more(struct rt_conn *c)
{
	struct rt_rest *r = c->rest;

	if (r->busy) {
		/* Pipelined bytes wait for this answer; reading goes on (no
		 * epoll change per request) up to a bound. */
		if (c->hlen > PIPELINED_MAX && !r->paused) {
			r->paused = true;
			rt_read_stop(c);
		}
		return;
	}
	if (c->hlen < r->h.need)
		return; /* the body is still coming (the head timeout runs) */
	r->busy = true;
	uv_timer_stop(&c->timer);
	serve(c);
}

bool rest_eof(struct rt_conn *c)
{
	if (!c->rest || !c->rest->busy)
		return false;
	c->rest->eof = true;
	rt_read_stop(c);
	return true;
}

/* ---------------------------------------------------------------- answering */

/* The answer is written: on to the connection's next request. */
static void done(struct rt_conn *c)
{
	struct rt_rest *r = c->rest;

	r->served = true;
	r->busy = false;
	memmove(c->head, c->head + r->h.need, c->hlen - r->h.need);
	c->hlen -= r->h.need;
	c->head[c->hlen] = 0;
	c->state = RT_HEAD;
	if (r->h.close_after || r->eof) {
		rt_linger_close(c);
		return;
	}
	rt_head_wait(c);
	if (r->paused) {
		r->paused = false;
		rt_read_start(c);
	}
	if (c->hlen)
		rt_head_scan(c, 0);
}

static void written(struct rt_conn *c)
{
	if (!c->handle_closed && c->state == RT_REST)
		done(c);
}

void rest_answer(struct rt_conn *c, struct gw_answer *ans)
{
	static const char oom[] =
	    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
	struct rt_rest *r = c->rest;
	gw *g = c->rt_g;
	char *body = ans->body ? json_dumps(ans->body, JSON_COMPACT) : NULL;
	const char *b = body ? body : oom;
	int status = body ? ans->status : 500;
	size_t blen = strlen(b), cap = blen + 512;
	char extra[64] = "", *buf = malloc(cap);
	int n;

	if (status == 401)
		snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer\r\n");
	else if (ans->retry_s)
		snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", ans->retry_s);
	gw_metrics_request(&g->m, r->h.route, status, mmo_mono_us() - r->t0);
	if (!buf) {
		free(body);
		rt_conn_close(c);
		return;
	}
	n = snprintf(buf, cap,
	             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	             "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
	             status, gw_status_text(status), blen, extra,
	             r->h.close_after ? "Connection: close\r\n" : "");
	memcpy(buf + n, b, blen);
	free(body);
	rt_write_owned(c, buf, (size_t)n + blen, written);
}
