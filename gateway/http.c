/* http.c - the REST plumbing: bodies, strict JSON schemas, replies, client
 * addresses (the route table is routes.c).
 *
 * Bodies are at most 16 KiB (413),
 * application/json (415), one JSON object (400) whose fields match the
 * route's schema exactly (400 naming the field). Every string in a reply is
 * produced by jansson, which escapes it; text taken from the request is cut
 * back to valid UTF-8 first.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "schemas/mmo_utf8.h"
#include "schemas/mmo_util.h"

/* ---------------------------------------------------------------- replies */

/* Cut s at its first byte that is not part of a valid UTF-8 sequence (the
 * one validator, mmo_utf8_len: no surrogates, no overlong forms), so jansson
 * accepts it (it escapes control characters itself). */
static void utf8_trim(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n;

	while (*p && (n = mmo_utf8_len(p)) > 0)
		p += n;
	*p = 0;
}

int gw_reply(struct gw_req *r, int status, const char *ctype, const char *body, size_t len,
             const char *extra)
{
	const char *text = mg_get_response_code_text(r->c, status);

	if (r->status)
		return r->status; /* already answered: never send two replies */
	r->status = status;
	/* A body left unread (refused early) is not drained: the connection
	 * closes, so a huge declared length cannot hold a worker. */
	if (!r->body_read)
		mg_disable_connection_keep_alive(r->c);
	mg_printf(r->c,
	          "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	          "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
	          status, text ? text : "Status", ctype, len, extra ? extra : "",
	          r->body_read ? "" : "Connection: close\r\n");
	if (len)
		mg_write(r->c, body, len);
	return status;
}

int gw_reply_json(struct gw_req *r, int status, json_t *o, const char *extra)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int rc;

	json_decref(o);
	if (!s) {
		static const char oom[] =
		    "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
		return gw_reply(r, 500, "application/json", oom, sizeof(oom) - 1, NULL);
	}
	rc = gw_reply(r, status, "application/json", s, strlen(s), extra);
	free(s);
	return rc;
}

/* {"error":{"code","message"[,"field"]}} (NULL when out of memory). */
static json_t *verror_json(const char *code, const char *field, const char *fmt, va_list ap)
{
	char msg[512], fbuf[MMO_ID_MAX * 4 + 1];
	json_t *e;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	utf8_trim(msg);
	e = json_pack("{s:s,s:s}", "code", code, "message", msg);
	if (e && field) {
		snprintf(fbuf, sizeof(fbuf), "%s", field);
		utf8_trim(fbuf);
		json_object_set_new(e, "field", json_string(fbuf));
	}
	return e ? json_pack("{s:o}", "error", e) : NULL;
}

int gw_answer_err(struct gw_answer *ans, int status, int retry_s, const char *code,
                  const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ans->body = verror_json(code, field, fmt, ap);
	va_end(ap);
	ans->status = status;
	ans->retry_s = retry_s;
	return status;
}

static int vreply_err(struct gw_req *r, int status, const char *extra, const char *code,
                      const char *field, const char *fmt, va_list ap)
{
	return gw_reply_json(r, status, verror_json(code, field, fmt, ap), extra);
}

int gw_reply_err_extra(struct gw_req *r, int status, const char *extra, const char *code,
                       const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vreply_err(r, status, extra, code, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int gw_reply_err(struct gw_req *r, int status, const char *code, const char *field, const char *fmt,
                 ...)
{
	const char *extra = status == 401 ? "WWW-Authenticate: Bearer\r\n" : NULL;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vreply_err(r, status, extra, code, field, fmt, ap);
	va_end(ap);
	return rc;
}

int gw_reply_retry(struct gw_req *r, int status, int retry_s, const char *code, const char *fmt,
                   ...)
{
	char extra[64];
	va_list ap;
	int rc;

	snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", retry_s > 0 ? retry_s : 1);
	va_start(ap, fmt);
	rc = vreply_err(r, status, extra, code, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---------------------------------------------------------------- bodies */

bool gw_is_json_type(const char *ct)
{
	static const char want[] = "application/json";
	size_t n = sizeof(want) - 1;

	if (!ct)
		return false;
	while (*ct == ' ')
		ct++;
	if (strncasecmp(ct, want, n))
		return false;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == 0 || *ct == ';';
}

/* Read the whole body (at most GW_BODY_MAX) into buf. Returns its length, or
 * -1 after a 413 reply, -2 on a read error (connection gone). */
static long read_body(struct gw_req *r, char *buf)
{
	long long cl = r->ri->content_length;
	size_t got = 0;

	if (cl > GW_BODY_MAX)
		return gw_reply_err(r, 413, "too_large", NULL, "the body is larger than %d bytes",
		                    GW_BODY_MAX),
		       -1;
	for (;;) {
		int n = mg_read(r->c, buf + got, GW_BODY_MAX + 1 - got);

		if (n < 0)
			return -2;
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > GW_BODY_MAX)
			return gw_reply_err(r, 413, "too_large", NULL,
			                    "the body is larger than %d bytes", GW_BODY_MAX),
			       -1;
	}
	r->body_read = true;
	return (long)got;
}

/* The key whose value ends just before pos in a flat object text, for
 * naming the field of a number jansson refused ("real number overflow"). */
static bool key_before(const char *s, size_t pos, char *key, size_t cap)
{
	size_t i = pos, end;

	while (i > 0 && (isdigit((unsigned char)s[i - 1]) || strchr("eE+-.", s[i - 1])))
		i--;
	while (i > 0 && isspace((unsigned char)s[i - 1]))
		i--;
	if (i == 0 || s[i - 1] != ':')
		return false;
	i--;
	while (i > 0 && isspace((unsigned char)s[i - 1]))
		i--;
	if (i == 0 || s[i - 1] != '"')
		return false;
	end = --i;
	while (i > 0 && s[i - 1] != '"')
		i--;
	if (i == 0 || end - i >= cap)
		return false;
	memcpy(key, s + i, end - i);
	key[end - i] = 0;
	return true;
}

/* Is the nesting of brackets outside strings at most max? jansson parses
 * recursively, and civetweb's worker stacks are small: deep input is
 * refused before it is parsed. */
bool gw_json_depth_ok(const char *s, size_t n, int max)
{
	bool str = false;
	int d = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				str = false;
		} else if (c == '"') {
			str = true;
		} else if (c == '[' || c == '{') {
			if (++d > max)
				return false;
		} else if (c == ']' || c == '}') {
			d--;
		}
	}
	return true;
}

int gw_body_json(const char *buf, size_t n, json_t **out, struct gw_answer *ans)
{
	json_error_t je;
	json_t *o;

	if (n == 0)
		return gw_answer_err(ans, 400, 0, "bad_json", NULL,
		                     "a JSON object body is required");
	if (!gw_json_depth_ok(buf, n, GW_JSON_DEPTH_MAX))
		return gw_answer_err(ans, 400, 0, "bad_json", NULL, "JSON nested deeper than %d",
		                     GW_JSON_DEPTH_MAX);
	o = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		char key[MMO_ID_MAX + 1];
		bool overflow = strstr(je.text, "overflow") != NULL;
		bool bigint = strstr(je.text, "too big") != NULL;

		if ((overflow || bigint) && je.position > 0 && (size_t)je.position <= n &&
		    key_before(buf, (size_t)je.position, key, sizeof(key)))
			return gw_answer_err(ans, 400, 0, overflow ? "non_finite" : "out_of_range",
			                     key, "%s must be a finite number in range", key);
		return gw_answer_err(ans, 400, 0, "bad_json", NULL, "malformed JSON: %s", je.text);
	}
	if (!json_is_object(o)) {
		json_decref(o);
		return gw_answer_err(ans, 400, 0, "bad_json", NULL,
		                     "the body must be a JSON object");
	}
	*out = o;
	return 0;
}

int gw_reply_answer(struct gw_req *r, struct gw_answer *ans)
{
	char extra[96] = "";
	json_t *body = ans->body;

	ans->body = NULL;
	if (ans->status == 401)
		snprintf(extra, sizeof(extra), "WWW-Authenticate: Bearer\r\n");
	else if (ans->retry_s)
		snprintf(extra, sizeof(extra), "Retry-After: %d\r\n", ans->retry_s);
	return gw_reply_json(r, ans->status, body, extra[0] ? extra : NULL);
}

int gw_read_json(struct gw_req *r, json_t **out)
{
	char *buf = malloc(GW_BODY_MAX + 2);
	struct gw_answer ans = {0};
	long n;
	int rc;

	if (!buf)
		return gw_reply_err(r, 500, "internal", NULL, "out of memory");
	if (r->ri->content_length > GW_BODY_MAX) {
		rc = gw_reply_err(r, 413, "too_large", NULL, "the body is larger than %d bytes",
		                  GW_BODY_MAX);
		goto out;
	}
	if (!gw_is_json_type(mg_get_header(r->c, "Content-Type"))) {
		rc = gw_reply_err(r, 415, "unsupported_media_type", NULL,
		                  "the body must be application/json");
		goto out;
	}
	n = read_body(r, buf);
	if (n < 0) {
		rc = n == -1 ? r->status
		             : gw_reply_err(r, 400, "bad_request", NULL, "body unreadable");
		goto out;
	}
	buf[n] = 0;
	rc = gw_body_json(buf, (size_t)n, out, &ans);
	if (rc)
		gw_reply_answer(r, &ans);
out:
	free(buf);
	return rc;
}

int gw_read_empty(struct gw_req *r)
{
	char *buf;
	json_t *o;
	long n;

	if (r->ri->content_length == 0) {
		r->body_read = true;
		return 0;
	}
	if (r->ri->content_length > GW_BODY_MAX)
		return gw_reply_err(r, 413, "too_large", NULL, "the body is larger than %d bytes",
		                    GW_BODY_MAX);
	buf = malloc(GW_BODY_MAX + 2);
	if (!buf)
		return gw_reply_err(r, 500, "internal", NULL, "out of memory");
	n = read_body(r, buf);
	if (n <= 0) {
		free(buf);
		return n == 0    ? 0
		       : n == -1 ? r->status
		                 : gw_reply_err(r, 400, "bad_request", NULL, "body unreadable");
	}
	if (!gw_is_json_type(mg_get_header(r->c, "Content-Type"))) {
		free(buf);
		return gw_reply_err(r, 415, "unsupported_media_type", NULL,
		                    "the body must be application/json");
	}
	o = gw_json_depth_ok(buf, (size_t)n, GW_JSON_DEPTH_MAX)
	        ? json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL)
	        : NULL;
	free(buf);
	if (!json_is_object(o) || json_object_size(o) != 0) {
		const char *k = NULL;

		if (json_is_object(o)) {
			void *it = json_object_iter(o);
			k = it ? json_object_iter_key(it) : NULL;
		}
		int rc = k ? gw_reply_err(r, 400, "unknown_field", k, "unknown field '%.64s'", k)
		           : gw_reply_err(r, 400, "bad_json", NULL, "the body must be empty or {}");
		json_decref(o);
		return rc;
	}
	json_decref(o);
	return 0;
}

/* ---------------------------------------------------------------- schemas */

static bool bad_set(struct gw_bad *b, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool bad_set(struct gw_bad *b, const char *code, const char *field, const char *fmt, ...)
{
	va_list ap;

	b->code = code;
	snprintf(b->field, sizeof(b->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(b->message, sizeof(b->message), fmt, ap);
	va_end(ap);
	return false;
}

bool gw_fields_check(json_t *o, const struct gw_field *f, size_t n, struct gw_bad *bad)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v)
	{
		size_t i;

		for (i = 0; i < n && strcmp(f[i].name, key); i++)
			;
		if (i == n)
			return bad_set(bad, "unknown_field", key, "unknown field '%.64s'", key);
	}
	for (size_t i = 0; i < n; i++) {
		v = json_object_get(o, f[i].name);
		if (!v)
			return bad_set(bad, "missing_field", f[i].name, "%s is required",
			               f[i].name);
		switch (f[i].type) {
		case GW_FT_STRING:
		case GW_FT_ID: {
			size_t len;

			if (!json_is_string(v))
				return bad_set(bad, "wrong_type", f[i].name, "%s must be a string",
				               f[i].name);
			len = json_string_length(v);
			if (f[i].type == GW_FT_ID) {
				if (len != strlen(json_string_value(v)) ||
				    !mmo_id_valid(json_string_value(v)))
					return bad_set(bad, "bad_id", f[i].name,
					               "%s must be 1..%d of [A-Za-z0-9_.:-]",
					               f[i].name, MMO_ID_MAX);
			} else if (len < f[i].minlen || len > f[i].maxlen ||
			           len != strlen(json_string_value(v))) {
				return bad_set(bad, "invalid_field", f[i].name,
				               "%s must be %zu..%zu bytes", f[i].name, f[i].minlen,
				               f[i].maxlen);
			}
			break;
		}
		case GW_FT_NUMBER: {
			double d;

			if (!json_is_number(v))
				return bad_set(bad, "wrong_type", f[i].name, "%s must be a number",
				               f[i].name);
			d = json_number_value(v);
			if (!isfinite(d))
				return bad_set(bad, "non_finite", f[i].name,
				               "%s must be a finite number", f[i].name);
			if (d < f[i].min || d > f[i].max)
				return bad_set(bad, "out_of_range", f[i].name,
				               "%s must be within [%g, %g]", f[i].name, f[i].min,
				               f[i].max);
			break;
		}
		}
	}
	return true;
}

int gw_check_fields(struct gw_req *r, json_t *o, const struct gw_field *f, size_t n)
{
	struct gw_bad bad;

	if (gw_fields_check(o, f, n, &bad))
		return 0;
	return gw_reply_err(r, 400, bad.code, bad.field, "%s", bad.message);
}

/* ---------------------------------------------------------------- peers */

void gw_peer_note(gw *g, int port, const char *addr)
{
	if (!g->peers || port <= 0 || port > 65535)
		return;
	pthread_mutex_lock(&g->peer_mu);
	snprintf(g->peers[port], sizeof(g->peers[port]), "%s", addr);
	pthread_mutex_unlock(&g->peer_mu);
}

void gw_peer_forget(gw *g, int port)
{
	if (!g->peers || port <= 0 || port > 65535)
		return;
	pthread_mutex_lock(&g->peer_mu);
	g->peers[port][0] = 0;
	pthread_mutex_unlock(&g->peer_mu);
}

const char *gw_peer_addr(struct gw_req *r)
{
	int port = r->ri->remote_port;

	if (!r->peer[0]) {
		snprintf(r->peer, sizeof(r->peer), "%s", r->ri->remote_addr);
		/* Requests reach civetweb through the event loop's relay on
		 * loopback: its port names the client. */
		if (r->g->peers && port > 0 && port <= 65535 &&
		    !strcmp(r->ri->remote_addr, "127.0.0.1")) {
			pthread_mutex_lock(&r->g->peer_mu);
			if (r->g->peers[port][0])
				snprintf(r->peer, sizeof(r->peer), "%s", r->g->peers[port]);
			pthread_mutex_unlock(&r->g->peer_mu);
		}
	}
	return r->peer;
}

const char *gw_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 202: return "Accepted";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

/* ---------------------------------------------------------------- auth */

int gw_auth_bearer(gw *g, const char *h, const char *peer, struct gw_tokcache *tc,
                   struct gw_auth *a, struct gw_answer *ans)
{
	int err;

	if (!h)
		return gw_answer_err(ans, 401, 0, "unauthorized", NULL,
		                     "a Bearer token is required");
	while (*h == ' ')
		h++;
	if (strncasecmp(h, "Bearer ", 7))
		return gw_answer_err(ans, 401, 0, "unauthorized", NULL,
		                     "the Authorization scheme must be Bearer");
	h += 7;
	while (*h == ' ')
		h++;
	err = tc ? gw_auth_token_cached(g, tc, h, a) : gw_auth_token(g, h, a);
	switch (err) {
	case MMO_OK: return 0;
	case MMO_EBUSY: return -1;
	case MMO_ETIMEOUT:
		return gw_answer_err(ans, 401, 0, "token_expired", NULL, "the token expired");
	case MMO_ENOTFOUND:
		return gw_answer_err(ans, 401, 0, "session_revoked", NULL, "the session has ended");
	case MMO_EUNAVAIL:
		return gw_answer_err(ans, 503, 1, "unavailable", NULL,
		                     "sessions cannot be checked now (Redis unavailable)");
	default:
		gw_sec_note(g, "security.token_refused", peer, NULL);
		return gw_answer_err(ans, 401, 0, "invalid_token", NULL, "the token is not valid");
	}
}

int gw_require_auth(struct gw_req *r, struct gw_auth *a)
{
	struct gw_answer ans = {0};

	if (gw_auth_bearer(r->g, mg_get_header(r->c, "Authorization"), gw_peer_addr(r), NULL, a,
	                   &ans) == 0)
		return 0;
	return gw_reply_answer(r, &ans);
}
