/* gwtest.c - the gateway tests' environment and clients (see gwtest.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>
#include <jwt.h>

#include "gwtest.h"
#include "schemas/mmo_util.h"
#include "testsupport.h"

static int env_no;

static void default_opts(struct gwt *e, void (*tweak)(struct gw_opts *))
{
	struct gw_opts *o = &e->o;

	memset(o, 0, sizeof(*o));
	o->log = e->log;
	o->zctx = e->zctx;
	o->ingest = e->ingest;
	o->bus = e->bus;
	snprintf(e->http, sizeof(e->http), "127.0.0.1:%d", ts_free_port());
	o->http = e->http;
	o->redis_url = e->redis_url;
	o->data_dir = e->dir;
	o->jwt_key = GWT_KEY;
	o->outcome_timeout_ms = 5000;
	o->http_threads = 48;
	o->security_window_ms = 300;
	o->login_fail_user = 3;
	o->login_fail_addr = 100000;
	o->login_fail_window_s = 60;
	o->session_check_ms = 200;
	o->ws_queue_max = 32;
	o->health_window_s = 2;
	o->rate_high = 1000;
	o->rate_medium = 1000;
	if (tweak)
		tweak(o);
}

static void start_gw(struct gwt *e, void (*tweak)(struct gw_opts *))
{
	char msg[512];
	int rc = -1;

	for (int attempt = 0; attempt < 5 && rc; attempt++) {
		default_opts(e, tweak);
		rc = gw_start(&e->o, &e->g, msg, sizeof(msg));
	}
	if (rc)
		fail_msg("gw_start: %s", msg);
	e->port = gw_port(e->g);
	assert_true(e->port > 0);
	/* As `mmo serve` wires them: answers at the world's decision. */
	if (e->world)
		world_runner_set_decision_hook(e->world, gw_world_decided, e->g);
}

static void stop_gw(struct gwt *e)
{
	if (e->world)
		world_runner_set_decision_hook(e->world, NULL, NULL);
	gw_stop(e->g);
	e->g = NULL;
}

struct gwt *gwt_start(void (*tweak)(struct gw_opts *))
{
	struct gwt *e = calloc(1, sizeof(*e));
	struct evlog_opts lo = {0};
	struct evlog_server_opts so = {0};
	struct world_runner_opts wo = {0};
	char msg[256];

	signal(SIGPIPE, SIG_IGN);
	assert_non_null(e);
	assert_int_equal(ts_tmpdir(e->dir, sizeof(e->dir)), 0);
	snprintf(e->logdir, sizeof(e->logdir), "%s/log", e->dir);
	env_no++;
	snprintf(e->ingest, sizeof(e->ingest), "inproc://gwt-ingest-%d", env_no);
	snprintf(e->bus, sizeof(e->bus), "inproc://gwt-bus-%d", env_no);
	lo.dir = e->logdir;
	lo.nosync = true;
	lo.map_size = (size_t)1 << 30;
	assert_int_equal(evlog_open(&lo, &e->log, msg, sizeof(msg)), MMO_OK);
	e->zctx = zmq_ctx_new();
	so.log = e->log;
	so.zctx = e->zctx;
	so.ingest = e->ingest;
	so.bus = e->bus;
	if (evlog_server_start(&so, &e->srv, msg, sizeof(msg)))
		fail_msg("evlog_server_start: %s", msg);
	wo.log = e->log;
	wo.zctx = e->zctx;
	wo.ingest = e->ingest;
	wo.bus = e->bus;
	wo.data_dir = e->dir;
	if (world_runner_start(&wo, &e->world, msg, sizeof(msg)))
		fail_msg("world_runner_start: %s", msg);
	e->redis = ts_redis_start(e->dir, &e->redis_port, NULL);
	if (e->redis <= 0)
		fail_msg("redis-server did not start");
	snprintf(e->redis_url, sizeof(e->redis_url), "redis://127.0.0.1:%d", e->redis_port);
	start_gw(e, tweak);
	return e;
}

void gwt_restart_gw(struct gwt *e, void (*tweak)(struct gw_opts *))
{
	stop_gw(e);
	start_gw(e, tweak);
}

void gwt_stop(struct gwt *e)
{
	if (!e)
		return;
	stop_gw(e);
	world_runner_stop(e->world);
	evlog_server_stop(e->srv);
	zmq_ctx_term(e->zctx);
	evlog_close(e->log);
	if (e->redis > 0)
		ts_stop(e->redis, SIGKILL, 2000);
	ts_rmrf(e->dir);
	free(e);
}

void gwt_redis_kill(struct gwt *e)
{
	ts_stop(e->redis, SIGKILL, 2000);
	e->redis = 0;
}

void gwt_redis_restart(struct gwt *e)
{
	char conf[400], logf[400], line[64];
	FILE *f;

	/* Same port as before, so the gateway's URL stays right. */
	snprintf(conf, sizeof(conf), "%s/redis.conf", e->dir);
	snprintf(logf, sizeof(logf), "%s/redis2.log", e->dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\nappendonly no\n", e->redis_port,
	        e->dir);
	fclose(f);
	char *argv[] = {"/usr/bin/redis-server", conf, NULL};
	e->redis = ts_spawn(argv, logf);
	assert_true(e->redis > 0);
	snprintf(line, sizeof(line), "Ready to accept connections");
	assert_true(ts_wait_log(logf, line, 10000));
}

char *gwt_redis(struct gwt *e, const char *fmt, ...)
{
	redisContext *c = redisConnect("127.0.0.1", e->redis_port);
	redisReply *rep;
	va_list ap;
	char *out = NULL;

	assert_true(c && !c->err);
	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	assert_non_null(rep);
	if (rep->type == REDIS_REPLY_INTEGER) {
		out = malloc(32);
		snprintf(out, 32, "%lld", rep->integer);
	} else if (rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_STATUS) {
		out = strdup(rep->str);
	} else {
		out = strdup("");
	}
	freeReplyObject(rep);
	redisFree(c);
	return out;
}

/* ---------------------------------------------------------------- http */

static int dial(struct gwt *e, int rcvbuf)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)e->port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

struct wsc *gwt_ws(struct gwt *e, const char *tok)
{
	char h[4200];
	struct wsc *w = NULL;
	struct resp r;

	snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok);
	if (wsc_open(e, NULL, h, 0, &w, &r) != 101)
		fail_msg("upgrade: %d %.*s", r.status, (int)r.body_len, r.body ? r.body : "");
	return w;
}

char *gwt_jti_of(const char *tok)
{
	jwt_t *j = NULL;
	char *s;

	assert_int_equal(jwt_decode(&j, tok, (const unsigned char *)GWT_KEY, strlen(GWT_KEY)), 0);
	s = strdup(jwt_get_grant(j, "jti"));
	jwt_free(j);
	return s;
}

void gwt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

int gwt_connect(struct gwt *e)
{
	return dial(e, 0);
}

static bool send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* Read until EOF (or 15 s). */
static char *read_all(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	int64_t deadline = mmo_mono_us() + 15000000;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		int left = (int)((deadline - mmo_mono_us()) / 1000);
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
		}
		r = recv(fd, buf + n, cap - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static int parse(char *raw, size_t n, struct resp *r)
{
	char *end = strstr(raw, "\r\n\r\n");
	char ct[128];

	memset(r, 0, sizeof(*r));
	if (!end || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1) {
		free(raw);
		return 0;
	}
	*end = 0;
	r->headers = raw;
	r->body = end + 4;
	r->body_len = n - (size_t)(r->body - raw);
	if (resp_header(r, "Content-Type", ct, sizeof(ct)) && strstr(ct, "application/json") &&
	    r->body_len)
		r->json = json_loadb(r->body, r->body_len, 0, NULL);
	return r->status;
}

int gwt_raw(struct gwt *e, const char *raw, size_t len, struct resp *r)
{
	int fd = dial(e, 0);
	size_t n;
	char *buf;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return 0;
	if (!send_all(fd, raw, len)) {
		/* The server may answer and close before taking everything. */
	}
	shutdown(fd, SHUT_WR);
	buf = read_all(fd, &n);
	close(fd);
	return parse(buf, n, r);
}

int gwt_http(struct gwt *e, const char *method, const char *path, const char *headers,
             const char *body, size_t body_len, struct resp *r)
{
	int fd = dial(e, 0);
	char head[8192];
	size_t n;
	char *buf;

	memset(r, 0, sizeof(*r));
	if (fd < 0)
		return 0;
	snprintf(head, sizeof(head),
	         "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s"
	         "Content-Length: %zu\r\n\r\n",
	         method, path, e->port, headers ? headers : "", body ? body_len : 0);
	if (send_all(fd, head, strlen(head)) && body && body_len)
		send_all(fd, body, body_len);
	buf = read_all(fd, &n);
	close(fd);
	return parse(buf, n, r);
}

void resp_free(struct resp *r)
{
	json_decref(r->json);
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

bool resp_header(const struct resp *r, const char *name, char *buf, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = r->headers;

	while (p && (p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (!strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1, *end;

			while (*v == ' ')
				v++;
			end = strstr(v, "\r\n");
			snprintf(buf, cap, "%.*s", (int)(end ? (size_t)(end - v) : strlen(v)), v);
			return true;
		}
	}
	return false;
}

int gwt_post(struct gwt *e, const char *path, const char *tok, const char *json, struct resp *r)
{
	char h[6000];

	snprintf(h, sizeof(h), "Content-Type: application/json\r\n%s%s%s",
	         tok ? "Authorization: Bearer " : "", tok ? tok : "", tok ? "\r\n" : "");
	return gwt_http(e, "POST", path, h, json, json ? strlen(json) : 0, r);
}

int gwt_get(struct gwt *e, const char *path, const char *tok, struct resp *r)
{
	char h[6000] = "";

	if (tok)
		snprintf(h, sizeof(h), "Authorization: Bearer %s\r\n", tok);
	return gwt_http(e, "GET", path, h, NULL, 0, r);
}

void gwt_assert_error(const struct resp *r, int status, const char *code, const char *field)
{
	json_t *err;

	if (r->status != status)
		fail_msg("status %d, want %d; body: %.*s", r->status, status, (int)r->body_len,
		         r->body ? r->body : "");
	assert_non_null(r->json);
	err = json_object_get(r->json, "error");
	assert_true(json_is_object(err));
	assert_true(json_is_string(json_object_get(err, "message")));
	if (strcmp(json_string_value(json_object_get(err, "code")), code))
		fail_msg("code %s, want %s; body: %.*s",
		         json_string_value(json_object_get(err, "code")), code, (int)r->body_len,
		         r->body);
	if (field)
		assert_string_equal(json_string_value(json_object_get(err, "field")), field);
}

void gwt_user(struct gwt *e, const char *name, const char *pw, char *player_id, char **token)
{
	struct resp r;
	char body[512];

	snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", name, pw);
	if (gwt_post(e, "/api/auth/register", NULL, body, &r) != 201)
		fail_msg("register %s: %d %.*s", name, r.status, (int)r.body_len, r.body);
	strcpy(player_id, json_string_value(json_object_get(r.json, "player_id")));
	resp_free(&r);
	if (gwt_post(e, "/api/auth/login", NULL, body, &r) != 200)
		fail_msg("login %s: %d %.*s", name, r.status, (int)r.body_len, r.body);
	*token = strdup(json_string_value(json_object_get(r.json, "token")));
	resp_free(&r);
}

/* ---------------------------------------------------------------- websocket */

int wsc_open(struct gwt *e, const char *query, const char *headers, int rcvbuf, struct wsc **out,
             struct resp *fail)
{
	struct wsc *w = calloc(1, sizeof(*w));
	char req[8192], *end;
	int status = 0;

	memset(fail, 0, sizeof(*fail));
	w->fd = dial(e, rcvbuf);
	assert_true(w->fd >= 0);
	snprintf(req, sizeof(req),
	         "GET /ws%s%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
	         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	         "Sec-WebSocket-Version: 13\r\n%s\r\n",
	         query ? "?" : "", query ? query : "", e->port, headers ? headers : "");
	assert_true(send_all(w->fd, req, strlen(req)));
	/* Read the response head. */
	int64_t deadline = mmo_mono_us() + 10000000;
	while (!(end = memmem(w->buf, w->len, "\r\n\r\n", 4))) {
		struct pollfd p = {w->fd, POLLIN, 0};
		ssize_t r;

		if (mmo_mono_us() > deadline || poll(&p, 1, 1000) < 0)
			break;
		r = recv(w->fd, w->buf + w->len, sizeof(w->buf) - w->len - 1, 0);
		if (r <= 0)
			break;
		w->len += (size_t)r;
	}
	w->buf[w->len] = 0;
	if (!end || sscanf(w->buf, "HTTP/1.%*d %d", &status) != 1) {
		close(w->fd);
		free(w);
		return 0;
	}
	if (status != 101) {
		size_t n;
		char *rest = read_all(w->fd, &n), *all = malloc(w->len + n + 1);

		memcpy(all, w->buf, w->len);
		memcpy(all + w->len, rest, n);
		all[w->len + n] = 0;
		free(rest);
		parse(all, w->len + n, fail);
		close(w->fd);
		free(w);
		return status;
	}
	size_t head = (size_t)(end + 4 - w->buf);
	memmove(w->buf, w->buf + head, w->len - head);
	w->len -= head;
	*out = w;
	return 101;
}

void wsc_close(struct wsc *w)
{
	if (!w)
		return;
	close(w->fd);
	free(w);
}

int wsc_send(struct wsc *w, int opcode, const char *data, size_t len, bool fin)
{
	uint8_t hdr[14], mask[4] = {0x12, 0x34, 0x56, 0x78};
	size_t h = 0;
	char *p = malloc(len + 1);
	bool ok;

	hdr[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (len < 126) {
		hdr[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (uint8_t)(len >> 8);
		hdr[h++] = (uint8_t)len;
	} else {
		hdr[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memcpy(hdr + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		p[i] = (char)(data[i] ^ mask[i % 4]);
	ok = send_all(w->fd, (char *)hdr, h) && send_all(w->fd, p, len);
	free(p);
	return ok ? 0 : -1;
}

/* Make sure at least n bytes are buffered, waiting until deadline. */
static bool fill(struct wsc *w, size_t n, int64_t deadline)
{
	while (w->len < n) {
		struct pollfd p = {w->fd, POLLIN, 0};
		int left = (int)((deadline - mmo_mono_us()) / 1000);
		ssize_t r;

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return false;
		r = recv(w->fd, w->buf + w->len, sizeof(w->buf) - w->len, 0);
		if (r <= 0)
			return false;
		w->len += (size_t)r;
	}
	return true;
}

int wsc_recv(struct wsc *w, int timeout_ms, char **data, size_t *len)
{
	int64_t deadline = mmo_mono_us() + (int64_t)timeout_ms * 1000;
	const uint8_t *b = (const uint8_t *)w->buf;
	size_t h = 2;
	uint64_t n;
	int op;

	if (!fill(w, 2, deadline))
		return -1;
	op = b[0] & 0x0f;
	n = b[1] & 0x7f;
	if (n == 126) {
		h = 4;
		if (!fill(w, h, deadline))
			return -1;
		n = ((uint64_t)b[2] << 8) | b[3];
	} else if (n == 127) {
		h = 10;
		if (!fill(w, h, deadline))
			return -1;
		n = 0;
		for (int i = 0; i < 8; i++)
			n = (n << 8) | b[2 + i];
	}
	if (h + n > sizeof(w->buf) || !fill(w, h + n, deadline))
		return -1;
	*data = malloc(n + 1);
	memcpy(*data, w->buf + h, n);
	(*data)[n] = 0;
	*len = n;
	memmove(w->buf, w->buf + h + n, w->len - h - n);
	w->len -= h + n;
	return op;
}

json_t *wsc_json(struct wsc *w, int timeout_ms, int *close_code)
{
	int64_t deadline = mmo_mono_us() + (int64_t)timeout_ms * 1000;

	for (;;) {
		int left = (int)((deadline - mmo_mono_us()) / 1000);
		char *d = NULL;
		size_t n;
		int op = wsc_recv(w, left > 0 ? left : 0, &d, &n);

		if (op < 0)
			return NULL;
		if (op == 8) {
			if (close_code)
				*close_code = n >= 2 ? ((uint8_t)d[0] << 8 | (uint8_t)d[1]) : 1005;
			free(d);
			return NULL;
		}
		if (op == 1) {
			json_t *j = json_loadb(d, n, 0, NULL);

			free(d);
			return j;
		}
		free(d); /* ping, pong */
	}
}

void gwt_append(struct gwt *e, struct mmo_ev *b)
{
	evlog_client *c;
	uint8_t buf[4096];
	struct evlog_in in;
	uint64_t seq;
	int err;
	size_t len;

	assert_int_equal(mmo_event_encode(&b->ev, buf, sizeof(buf), &len), MMO_OK);
	in.buf = buf;
	in.len = len;
	in.priority = mmo_event_priority(&b->ev);
	assert_int_equal(evlog_client_open(e->zctx, e->ingest, 10000, &c), MMO_OK);
	assert_int_equal(evlog_client_append(c, &in, 1, &seq, &err), MMO_OK);
	assert_int_equal(err, MMO_OK);
	evlog_client_close(c);
}

long long gwt_metric(struct gwt *e, const char *name)
{
	struct resp r;
	long long v = -1;
	size_t n = strlen(name);

	assert_int_equal(gwt_get(e, "/metrics", NULL, &r), 200);
	for (const char *l = r.body; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (!strncmp(l, name, n) && l[n] == ' ') {
			v = strtoll(l + n + 1, NULL, 10);
			break;
		}
	}
	resp_free(&r);
	return v;
}

int gwt_dial_from(int port, int src)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, me = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	me.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	assert_int_equal(bind(fd, (struct sockaddr *)&me, sizeof(me)), 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}
