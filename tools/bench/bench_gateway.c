/* bench_gateway.c - `mmo bench gateway`: the gateway's authenticated moves
 * against the HTTP ceiling of its own stack, and WebSocket fan-out latency
 * with thousands of connected clients, in one run.
 *
 * The backend under test runs in a child process (forked from this one
 * before any thread exists): log (fresh folder, durable commits), world,
 * views and gateway, wired as `mmo serve` wires them, with a redis-server
 * this command starts on a free port. It runs in its own process so that
 * its RSS and CPU are its own; it is not exec'ed as `mmo serve` because
 * serve cannot set the gateway's http_threads, and civetweb holds one
 * worker per WebSocket (docs/gateway.md), so thousands of sockets need
 * thousands of workers.
 *
 * Phases of a run, all driven by the same client code (C threads, one
 * keep-alive HTTP/1.1 connection each, one request at a time):
 *   ceiling  a civetweb server in this process with one handler that reads
 *            the body and answers 200 {} at once: the HTTP ceiling.
 *   moves    POST /api/players/move with Bearer tokens of P players, each
 *            paced under its per-player rate limit, steps the rules accept;
 *            time from send to the 200 (the durable world.update included).
 *   ws       W WebSockets (?token=, W/P per player), each subscribed to its
 *            player's region, read by a few epoll threads; moves offered at
 *            --rate; per delivered world.update, the time from the move's
 *            acceptance (its 200 received here, matched by seq = cause_seq)
 *            to its arrival on each socket in range.
 * Players stand on a grid around the spawn point, 1.5 AOI radii apart, so a
 * move is in range of its own player's sockets only (a fan-out of W/P);
 * the gateway's aoi_radius is set to 10 so that players can walk to their
 * places within the rules' speed limit in a few seconds (the code path is
 * the same at any radius).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_http.h"
#include "bench_util.h"
#include "tools/bench/bench.h"
#include "tools/cli/cli_util.h"
#include "log/evlog.h"
#include "gateway/gateway.h"
#include "schemas/mmo_util.h"
#include "projector/views/views.h"
#include "projector/world/world.h"

#define CMD         "bench gateway"
#define RUNS_MAX    99
#define CLIENTS_MAX 256
#define WS_THREADS  4
#define AOI         10.0
#define SPACING     (1.5 * AOI)
#define SPAWN       5000.0
#define PACE_US     55000 /* per player: under the 20 moves/s limit */
#define IO_TIMEOUT  BENCH_IO_TIMEOUT_MS
#define PASSWORD    "bench-password"
#define TOKEN_MAX   1024
#define WS_RECS_MAX (8u << 20)

struct config {
	unsigned duration, clients, players, ws_clients, rate, runs;
	const char *data, *redis_path;
	bool nosync;
};

/* ------------------------------------------------------------ signals */

static volatile sig_atomic_t interrupted;
static volatile pid_t redis_pid, server_pid;

static void on_signal(int sig)
{
	(void)sig;
	if (interrupted)
		_exit(130);
	interrupted = 1;
	if (redis_pid > 0)
		kill(redis_pid, SIGKILL);
	if (server_pid > 0)
		kill(server_pid, SIGKILL);
}

/* ------------------------------------------------------------ helpers */

static long pid_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmRSS:", 6)) {
			kb = strtol(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

/* ------------------------------------------------------------ histogram */

/* Log-linear buckets in µs: exact below 128, then 64 per power of two. */
#define HIST_SUB 64
#define HIST_N   (2 * HIST_SUB + 40 * HIST_SUB)

struct hist {
	uint64_t n, b[HIST_N];
};

static unsigned hist_idx(uint64_t v)
{
	unsigned e = 0;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	while ((v >> e) >= 2 * HIST_SUB)
		e++;
	if (e >= 40)
		return HIST_N - 1;
	return 2 * HIST_SUB + (e - 1) * HIST_SUB + (unsigned)((v >> e) - HIST_SUB);
}

static uint64_t hist_low(unsigned i)
{
	unsigned e;

	if (i < 2 * HIST_SUB)
		return i;
	e = (i - 2 * HIST_SUB) / HIST_SUB + 1;
	return ((uint64_t)HIST_SUB + (i - 2 * HIST_SUB) % HIST_SUB) << e;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->n++;
	h->b[hist_idx(v)]++;
}

static void hist_merge(struct hist *to, const struct hist *from)
{
	to->n += from->n;
	for (unsigned i = 0; i < HIST_N; i++)
		to->b[i] += from->b[i];
}

static uint64_t hist_pct(const struct hist *h, double p)
{
	uint64_t want = (uint64_t)ceil((double)h->n * p), seen = 0;

	if (!h->n)
		return 0;
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		seen += h->b[i];
		if (seen >= want)
			return hist_low(i);
	}
	return hist_low(HIST_N - 1);
}

/* ------------------------------------------------------------ redis-server */

static int redis_start(const struct config *cfg, const char *dir, unsigned *port, char *why,
                       size_t wl)
{
	return bench_redis_start(cfg->redis_path, dir, NULL, &redis_pid, &interrupted, port, why,
	                         wl);
}

static void child_stop(volatile pid_t *pp, int sig, int wait_ms)
{
	pid_t pid = *pp;
	int status;

	if (pid <= 0)
		return;
	kill(pid, sig);
	for (int i = 0; i < wait_ms / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			*pp = 0;
			return;
		}
		bench_sleep_us(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	*pp = 0;
}

/* ------------------------------------------------------------ the server child */

/* Runs in the forked child: log, world, views and gateway as `mmo serve`
 * wires them, plus the gateway options that serve cannot set. Writes the
 * HTTP port (or 0) to fd, then waits for SIGTERM. Never returns. */
static void server_main(const struct config *cfg, const char *dir, unsigned redis_port, int fd)
{
	char logdir[4300], redis_url[64], msg[512];
	struct evlog_opts lo = {0};
	struct evlog_server_opts so = {0};
	struct world_runner_opts wo = {0};
	struct views_opts vo = {0};
	struct gw_opts go = {0};
	evlog *log = NULL;
	evlog_server *srv = NULL;
	world_runner *wrun = NULL;
	views_runner *vrun = NULL;
	gw *g = NULL;
	void *zctx;
	sigset_t set;
	int port = 0, sig;
	ssize_t wr;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%u", redis_port);
	lo.dir = logdir;
	lo.nosync = cfg->nosync;
	zctx = zmq_ctx_new();
	if (evlog_open(&lo, &log, msg, sizeof(msg)))
		goto fail;
	so.log = log;
	so.zctx = zctx;
	so.ingest = "inproc://mmo-ingest";
	so.bus = "inproc://mmo-bus";
	if (evlog_server_start(&so, &srv, msg, sizeof(msg)))
		goto fail;
	wo.log = log;
	wo.zctx = zctx;
	wo.ingest = so.ingest;
	wo.bus = so.bus;
	wo.data_dir = dir;
	if (world_runner_start(&wo, &wrun, msg, sizeof(msg)))
		goto fail;
	vo.log = log;
	vo.zctx = zctx;
	vo.bus = so.bus;
	vo.ingest = so.ingest;
	vo.data_dir = dir;
	vo.redis_url = redis_url;
	if (views_runner_start(&vo, &vrun, msg, sizeof(msg)))
		goto fail;
	go.log = log;
	go.zctx = zctx;
	go.ingest = so.ingest;
	go.bus = so.bus;
	go.http = "127.0.0.1:0";
	go.redis_url = redis_url;
	go.data_dir = dir;
	go.jwt_key = "bench-gateway-signing-key-0123456789";
	go.http_threads = (int)(cfg->ws_clients + cfg->clients + 32);
	go.ws_max = (int)cfg->ws_clients + 16;
	go.aoi_radius = AOI;
	go.token_ttl_s = 3 * 3600;
	go.login_fail_addr = 1000000; /* every login comes from 127.0.0.1 */
	if (gw_start(&go, &g, msg, sizeof(msg)))
		goto fail;
	port = gw_port(g);
	wr = write(fd, &port, sizeof(port));
	(void)wr;
	close(fd);
	do {
		if (sigwait(&set, &sig) != 0)
			sig = SIGTERM;
	} while (sig != SIGINT && sig != SIGTERM);
	gw_stop(g);
	views_runner_stop(vrun);
	world_runner_stop(wrun);
	evlog_server_stop(srv);
	zmq_ctx_term(zctx);
	evlog_close(log);
	_exit(0);
fail:
	fprintf(stderr, "bench: server: %s\n", msg);
	wr = write(fd, &port, sizeof(port));
	(void)wr;
	_exit(1);
}

/* ------------------------------------------------------------ players */

struct player {
	char token[TOKEN_MAX];
	double x, y, tx, ty; /* accepted position, place on the grid */
	int64_t last_ok;     /* when the last accepted move (or login) was answered */
	int64_t next;        /* pacing: not before */
	unsigned osc;
};

struct setup {
	struct player *pl;
	unsigned n, port;
	atomic_uint next, done;
	atomic_int failed;
	char why[256];
};

static void *setup_main(void *arg)
{
	struct setup *s = arg;
	struct hconn *c = calloc(1, sizeof(*c));
	char body[256], out[2048];
	unsigned i;

	if (!c)
		return NULL;
	c->fd = -1;
	c->port = (int)s->port;
	while (!interrupted && !atomic_load(&s->failed) &&
	       (i = atomic_fetch_add(&s->next, 1)) < s->n) {
		struct player *p = &s->pl[i];
		int st;

		snprintf(body, sizeof(body),
		         "{\"username\":\"bench%u\",\"password\":\"" PASSWORD "\"}", i);
		st = bench_hc_request(c, "/api/auth/register", NULL, body, out, sizeof(out));
		if (st != 201 && st != 409) {
			snprintf(s->why, sizeof(s->why), "register bench%u: status %d %.120s", i,
			         st, out);
			atomic_store(&s->failed, 1);
			break;
		}
		st = bench_hc_request(c, "/api/auth/login", NULL, body, out, sizeof(out));
		if (st != 200 || !bench_json_str(out, "token", p->token, sizeof(p->token))) {
			snprintf(s->why, sizeof(s->why), "login bench%u: status %d %.120s", i, st,
			         out);
			atomic_store(&s->failed, 1);
			break;
		}
		p->x = SPAWN;
		p->y = SPAWN;
		p->last_ok = mmo_mono_us();
		atomic_fetch_add(&s->done, 1);
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
	return NULL;
}

/* ------------------------------------------------------------ load phases */

struct accept_rec {
	uint64_t seq;
	int64_t t;
	unsigned player;
};

struct phase {
	const struct config *cfg;
	struct player *pl;
	int port;
	bool ceiling;  /* the civetweb 200 {} server: no pacing */
	unsigned rate; /* moves/s offered in total; 0 = closed loop */
	int64_t start, end;
	/* out */
	struct hist h;
	uint64_t ok, rejected, pending, limited, errors;
	char reject_why[128];
	struct accept_rec *acc; /* per thread slices when recording */
	size_t acc_cap;
	atomic_size_t acc_n;
	pthread_mutex_t mu;
};

struct worker {
	struct phase *ph;
	unsigned id;
};

/* The next step of player p toward its place (or around it), within what
 * the rules accept since its last accepted move. */
static void next_pos(struct player *p, int64_t now, double *x, double *y)
{
	double dx = p->tx - p->x, dy = p->ty - p->y, d = sqrt(dx * dx + dy * dy);
	double allow = 9.0 * (double)(now - p->last_ok) / 1e6 + 0.9;

	if (d < 0.05) {
		/* At its place: sway by half a unit. */
		*x = p->tx + ((p->osc++ & 1) ? 0.5 : -0.5);
		*y = p->ty;
		return;
	}
	if (d > allow) {
		*x = p->x + dx * allow / d;
		*y = p->y + dy * allow / d;
	} else {
		*x = p->tx;
		*y = p->ty;
	}
}

static void *load_main(void *arg)
{
	struct worker *w = arg;
	struct phase *ph = w->ph;
	const struct config *cfg = ph->cfg;
	unsigned C = cfg->clients, nmine = 0, k = 0;
	struct hconn *c = calloc(1, sizeof(*c));
	struct hist *h = calloc(1, sizeof(*h));
	uint64_t ok = 0, rej = 0, pend = 0, lim = 0, err = 0;
	int64_t interval = 0, sched;
	char body[128], out[1024], why[128] = "";

	if (!c || !h)
		goto out;
	c->fd = -1;
	c->port = ph->port;
	for (unsigned i = w->id; i < cfg->players; i += C)
		nmine++;
	if (!nmine)
		goto out;
	if (ph->rate)
		interval = (int64_t)C * 1000000 / ph->rate;
	sched = ph->start + (interval ? interval * w->id / C : 0);
	while (!interrupted) {
		unsigned pi = w->id + C * (k++ % nmine);
		struct player *p = &ph->pl[pi];
		int64_t now = mmo_mono_us(), t0, t1;
		double x, y;
		int st;

		if (interval) {
			if (sched > now)
				bench_sleep_us(sched - now);
			sched += interval;
		}
		if (!ph->ceiling && p->next > mmo_mono_us())
			bench_sleep_us(p->next - mmo_mono_us());
		t0 = mmo_mono_us();
		if (t0 >= ph->end)
			break;
		next_pos(p, t0, &x, &y);
		snprintf(body, sizeof(body), "{\"x\":%.3f,\"y\":%.3f,\"z\":0}", x, y);
		st = bench_hc_request(c, "/api/players/move", p->token, body, out, sizeof(out));
		t1 = mmo_mono_us();
		p->next = t0 + PACE_US;
		if (st == 200) {
			ok++;
			hist_add(h, (uint64_t)(t1 - t0));
			if (!ph->ceiling) {
				const char *s = strstr(out, "\"seq\":");

				p->x = x;
				p->y = y;
				p->last_ok = t1;
				if (ph->acc && s) {
					size_t at = atomic_fetch_add(&ph->acc_n, 1);

					if (at < ph->acc_cap) {
						ph->acc[at].seq = strtoull(s + 6, NULL, 10);
						ph->acc[at].t = t1;
						ph->acc[at].player = pi;
					}
				}
			}
		} else if (st == 422) {
			rej++;
			if (!why[0])
				snprintf(why, sizeof(why), "%.120s", out);
		} else if (st == 202) {
			pend++;
		} else if (st == 429) {
			lim++;
		} else {
			err++;
			if (!st)
				bench_sleep_us(10000);
		}
	}
out:
	pthread_mutex_lock(&ph->mu);
	if (h)
		hist_merge(&ph->h, h);
	ph->ok += ok;
	ph->rejected += rej;
	ph->pending += pend;
	ph->limited += lim;
	ph->errors += err;
	if (why[0] && !ph->reject_why[0])
		snprintf(ph->reject_why, sizeof(ph->reject_why), "%s", why);
	pthread_mutex_unlock(&ph->mu);
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
	free(h);
	return NULL;
}

static int run_phase(struct phase *ph, char *why, size_t wl)
{
	pthread_t th[CLIENTS_MAX];
	struct worker w[CLIENTS_MAX];
	unsigned n = ph->cfg->clients, started = 0;

	pthread_mutex_init(&ph->mu, NULL);
	ph->start = mmo_mono_us() + 20000;
	ph->end = ph->start + (int64_t)ph->cfg->duration * 1000000;
	for (unsigned i = 0; i < n; i++) {
		w[i].ph = ph;
		w[i].id = i;
		if (pthread_create(&th[i], NULL, load_main, &w[i])) {
			snprintf(why, wl, "cannot start client threads");
			break;
		}
		started++;
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&ph->mu);
	return started == n ? 0 : -1;
}

/* ------------------------------------------------------------ the HTTP ceiling */

static int ceiling_handler(struct mg_connection *conn, void *cb)
{
	char buf[4096];

	(void)cb;
	while (mg_read(conn, buf, sizeof(buf)) > 0)
		;
	mg_printf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                "Content-Length: 2\r\nConnection: keep-alive\r\n\r\n{}");
	return 200;
}

/* ------------------------------------------------------------ WebSockets */

struct wsock {
	int fd;
	unsigned player;
	size_t len;
	bool open, resub; /* resub: the session's message budget said slow down */
	char buf[8192];
};

struct ws_rec {
	uint64_t seq;
	int64_t t;
};

struct wsrun {
	const struct config *cfg;
	struct player *pl;
	int port;
	atomic_uint opened, failed, subscribed, closed;
	atomic_bool measure, stop;
	atomic_size_t rec_n;
	struct ws_rec *rec;
	size_t rec_cap;
	char why[160];
	pthread_mutex_t mu;
};

struct wsworker {
	struct wsrun *r;
	unsigned id;
};

static bool ws_send_text(int fd, const char *s)
{
	uint8_t f[256];
	size_t n = strlen(s);

	if (n > 125)
		return false;
	f[0] = 0x81;
	f[1] = (uint8_t)(0x80 | n);
	memset(f + 2, 0, 4); /* a zero mask: the payload goes as is */
	memcpy(f + 6, s, n);
	return bench_send_all(fd, (char *)f, n + 6);
}

static void ws_pong(int fd, const uint8_t *pl, size_t n)
{
	uint8_t f[140];

	if (n > 125)
		return;
	f[0] = 0x8A;
	f[1] = (uint8_t)(0x80 | n);
	memset(f + 2, 0, 4);
	memcpy(f + 6, pl, n);
	bench_send_all(fd, (char *)f, n + 6);
}

/* Subscribe s to the region of its player's place. */
static bool ws_subscribe(struct wsrun *r, struct wsock *s)
{
	const struct player *p = &r->pl[s->player];
	char m[96];

	snprintf(m, sizeof(m), "{\"op\":\"subscribe\",\"region_id\":\"r_%d_%d\"}",
	         (int)(p->tx / 500), (int)(p->ty / 500));
	return ws_send_text(s->fd, m);
}

static int ws_open(struct wsrun *r, struct wsock *s, char *why, size_t wl)
{
	char req[2048], *end;
	int status = 0;
	int64_t deadline = mmo_mono_us() + (int64_t)IO_TIMEOUT * 1000;

	s->fd = bench_dial(r->port);
	if (s->fd < 0) {
		snprintf(why, wl, "connect: %s", strerror(errno));
		return -1;
	}
	snprintf(req, sizeof(req),
	         "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	         "Sec-WebSocket-Version: 13\r\n\r\n",
	         r->pl[s->player].token);
	if (!bench_send_all(s->fd, req, strlen(req)))
		goto fail;
	while (!(end = memmem(s->buf, s->len, "\r\n\r\n", 4))) {
		struct pollfd p = {s->fd, POLLIN, 0};
		ssize_t n;

		if (mmo_mono_us() > deadline || poll(&p, 1, 1000) < 0)
			goto fail;
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len - 1, 0);
		if (n <= 0)
			goto fail;
		s->len += (size_t)n;
		s->buf[s->len] = 0;
	}
	if (sscanf(s->buf, "HTTP/1.%*d %d", &status) != 1 || status != 101) {
		snprintf(why, wl, "upgrade answered %d", status);
		close(s->fd);
		s->fd = -1;
		return -1;
	}
	{
		size_t head = (size_t)(end + 4 - s->buf);

		memmove(s->buf, s->buf + head, s->len - head);
		s->len -= head;
	}
	if (!ws_subscribe(r, s))
		goto fail;
	fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK);
	s->open = true;
	return 0;
fail:
	snprintf(why, wl, "upgrade failed: %s", status ? "bad answer" : "no answer");
	close(s->fd);
	s->fd = -1;
	return -1;
}

/* Handle the complete frames in s->buf; false when the socket closed. */
static bool ws_frames(struct wsrun *r, struct wsock *s, int64_t now, struct ws_rec *local,
                      size_t *nlocal, size_t cap)
{
	size_t off = 0;
	bool alive = true;

	while (s->len - off >= 2) {
		uint8_t *f = (uint8_t *)s->buf + off;
		unsigned op = f[0] & 0x0f;
		size_t plen = f[1] & 0x7f, h = 2;

		if (plen == 126) {
			if (s->len - off < 4)
				break;
			plen = (size_t)f[2] << 8 | f[3];
			h = 4;
		} else if (plen == 127) {
			if (s->len - off < 10)
				break;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = plen << 8 | f[2 + i];
			h = 10;
		}
		if (h + plen > sizeof(s->buf)) {
			alive = false; /* a frame larger than we read: give up on it */
			break;
		}
		if (s->len - off < h + plen)
			break;
		if (op == 0x1) {
			const char *p = (char *)f + h, *q;

			if (memmem(p, plen, "\"type\":\"subscribed\"", 19))
				atomic_fetch_add(&r->subscribed, 1);
			else if (memmem(p, plen, "\"code\":\"rate_limited\"", 22))
				s->resub = true;
			else if (atomic_load(&r->measure) && memmem(p, plen, "world.update", 12) &&
			         (q = memmem(p, plen, "\"cause_seq\":", 12)) && *nlocal < cap) {
				local[*nlocal].seq = strtoull(q + 12, NULL, 10);
				local[*nlocal].t = now;
				(*nlocal)++;
			}
		} else if (op == 0x9) {
			ws_pong(s->fd, f + h, plen);
		} else if (op == 0x8) {
			alive = false;
		}
		off += h + plen;
	}
	memmove(s->buf, s->buf + off, s->len - off);
	s->len -= off;
	return alive;
}

static void ws_flush_local(struct wsrun *r, struct ws_rec *local, size_t *n)
{
	size_t at;

	if (!*n)
		return;
	at = atomic_fetch_add(&r->rec_n, *n);
	if (at < r->rec_cap) {
		size_t k = *n < r->rec_cap - at ? *n : r->rec_cap - at;

		memcpy(r->rec + at, local, k * sizeof(*local));
	}
	*n = 0;
}

static void *ws_main(void *arg)
{
	struct wsworker *ww = arg;
	struct wsrun *r = ww->r;
	unsigned W = r->cfg->ws_clients, n = 0, k = 0;
	struct wsock *socks;
	struct epoll_event ev[256];
	size_t cap = 4096, nlocal = 0;
	struct ws_rec *local = calloc(cap, sizeof(*local));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int64_t last_resub = 0;
	char why[160];

	for (unsigned j = ww->id; j < W; j += WS_THREADS)
		n++;
	socks = calloc(n ? n : 1, sizeof(*socks));
	if (!socks || !local || ep < 0) {
		atomic_fetch_add(&r->failed, n);
		goto out;
	}
	for (unsigned j = ww->id; j < W && !interrupted && !atomic_load(&r->stop);
	     j += WS_THREADS, k++) {
		struct wsock *s = &socks[k];
		struct epoll_event e = {.events = EPOLLIN};

		s->player = j % r->cfg->players;
		if (ws_open(r, s, why, sizeof(why))) {
			pthread_mutex_lock(&r->mu);
			if (!r->why[0])
				snprintf(r->why, sizeof(r->why), "socket %u: %.120s", j, why);
			pthread_mutex_unlock(&r->mu);
			atomic_fetch_add(&r->failed, 1);
			continue;
		}
		e.data.ptr = s;
		epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &e);
		atomic_fetch_add(&r->opened, 1);
		/* Drain what arrived meanwhile so that no server queue fills. */
		if (k % 64 == 63) {
			int m = epoll_wait(ep, ev, 256, 0);

			for (int i = 0; i < m; i++) {
				struct wsock *t = ev[i].data.ptr;
				ssize_t got =
				    recv(t->fd, t->buf + t->len, sizeof(t->buf) - t->len, 0);

				if (got > 0) {
					t->len += (size_t)got;
					ws_frames(r, t, mmo_mono_us(), local, &nlocal, cap);
				}
			}
		}
	}
	while (!atomic_load(&r->stop) && !interrupted) {
		int m = epoll_wait(ep, ev, 256, 50);
		int64_t now = mmo_mono_us();

		if (now - last_resub > 1000000) {
			last_resub = now;
			for (unsigned i = 0; i < k; i++)
				if (socks[i].open && socks[i].resub) {
					socks[i].resub = false;
					ws_subscribe(r, &socks[i]);
				}
		}

		for (int i = 0; i < m; i++) {
			struct wsock *s = ev[i].data.ptr;
			bool alive = true;

			for (;;) {
				ssize_t got =
				    recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);

				if (got > 0) {
					s->len += (size_t)got;
					if (!ws_frames(r, s, now, local, &nlocal, cap)) {
						alive = false;
						break;
					}
					if (nlocal > cap - 64)
						ws_flush_local(r, local, &nlocal);
					continue;
				}
				if (got == 0 || (errno != EAGAIN && errno != EINTR))
					alive = false;
				break;
			}
			if (!alive && s->open) {
				s->open = false;
				epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
				atomic_fetch_add(&r->closed, 1);
			}
		}
		ws_flush_local(r, local, &nlocal);
	}
out:
	for (unsigned i = 0; socks && i < k; i++)
		if (socks[i].fd > 0)
			close(socks[i].fd);
	if (ep >= 0)
		close(ep);
	free(socks);
	free(local);
	return NULL;
}

/* ------------------------------------------------------------ one run */

struct result {
	double ceil_per_s, per_s, p50_ms, p99_ms, ratio, ws_p50_ms, ws_p99_ms;
	double ws_rate;
	unsigned ws_open;
	uint64_t delivered, expected;
};

static int cmp_acc(const void *a, const void *b)
{
	uint64_t x = ((const struct accept_rec *)a)->seq, y = ((const struct accept_rec *)b)->seq;

	return (x > y) - (x < y);
}

static const struct accept_rec *find_acc(const struct accept_rec *v, size_t n, uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].seq == seq ? &v[lo] : NULL;
}

static void note_phase(const char *name, unsigned r, const struct phase *ph, double secs)
{
	printf("run %u %s: per_s=%.0f ok=%llu p50_us=%llu p99_us=%llu rejected=%llu "
	       "pending_202=%llu rate_limited=%llu errors=%llu\n",
	       r, name, (double)ph->ok / secs, (unsigned long long)ph->ok,
	       (unsigned long long)hist_pct(&ph->h, 0.50),
	       (unsigned long long)hist_pct(&ph->h, 0.99), (unsigned long long)ph->rejected,
	       (unsigned long long)ph->pending, (unsigned long long)ph->limited,
	       (unsigned long long)ph->errors);
	if (ph->reject_why[0])
		printf("run %u %s: first rejection: %s\n", r, name, ph->reject_why);
	fflush(stdout);
}

static int one_run(const struct config *cfg, struct player *pl, int gw_port, int ceil_port,
                   unsigned r, long *rss_peak, struct result *res, char *why, size_t wl)
{
	struct phase *ph = calloc(1, sizeof(*ph));
	struct wsrun *wr = calloc(1, sizeof(*wr));
	pthread_t wth[WS_THREADS];
	struct wsworker ww[WS_THREADS];
	unsigned wstarted = 0;
	struct hist *dh = calloc(1, sizeof(*dh));
	uint64_t early = 0, matched = 0;
	unsigned *per_player = NULL;
	double secs = cfg->duration;
	int rc = -1;
	long rss;

	if (!ph || !wr || !dh) {
		snprintf(why, wl, "out of memory");
		goto out;
	}
	/* (a) the ceiling, then the gateway, same client code and concurrency. */
	fprintf(stderr, "bench: run %u: HTTP ceiling, %u clients, %u s\n", r, cfg->clients,
	        cfg->duration);
	ph->cfg = cfg;
	ph->pl = pl;
	ph->port = ceil_port;
	ph->ceiling = true;
	if (run_phase(ph, why, wl))
		goto out;
	if (interrupted)
		goto out;
	note_phase("http_ceiling", r, ph, secs);
	res->ceil_per_s = (double)ph->ok / secs;

	fprintf(stderr, "bench: run %u: authenticated moves, %u clients, %u players, %u s\n", r,
	        cfg->clients, cfg->players, cfg->duration);
	memset(ph, 0, sizeof(*ph));
	ph->cfg = cfg;
	ph->pl = pl;
	ph->port = gw_port;
	if (run_phase(ph, why, wl))
		goto out;
	if (interrupted)
		goto out;
	note_phase("moves", r, ph, secs);
	res->per_s = (double)ph->ok / secs;
	res->p50_ms = (double)hist_pct(&ph->h, 0.50) / 1000.0;
	res->p99_ms = (double)hist_pct(&ph->h, 0.99) / 1000.0;
	res->ratio = res->ceil_per_s > 0 ? res->per_s / res->ceil_per_s : 0;
	rss = pid_rss_kb(server_pid);
	if (rss > *rss_peak)
		*rss_peak = rss;
	if (ph->ok == 0) {
		snprintf(why, wl, "no move was accepted (rejected %llu, errors %llu) %s",
		         (unsigned long long)ph->rejected, (unsigned long long)ph->errors,
		         ph->reject_why);
		goto out;
	}

	/* (b) WebSockets. */
	fprintf(stderr, "bench: run %u: opening %u WebSockets\n", r, cfg->ws_clients);
	wr->cfg = cfg;
	wr->pl = pl;
	wr->port = gw_port;
	wr->rec_cap = WS_RECS_MAX;
	wr->rec = malloc(wr->rec_cap * sizeof(*wr->rec));
	pthread_mutex_init(&wr->mu, NULL);
	if (!wr->rec) {
		snprintf(why, wl, "out of memory");
		goto out;
	}
	for (unsigned i = 0; i < WS_THREADS; i++) {
		ww[i].r = wr;
		ww[i].id = i;
		if (pthread_create(&wth[i], NULL, ws_main, &ww[i]))
			break;
		wstarted++;
	}
	{
		int64_t t0 = mmo_mono_us(), last = 0;

		while (!interrupted &&
		       atomic_load(&wr->opened) + atomic_load(&wr->failed) < cfg->ws_clients &&
		       mmo_mono_us() - t0 < 120000000) {
			if (mmo_mono_us() - last > 2000000) {
				last = mmo_mono_us();
				fprintf(stderr, "bench: ws: %u open, %u failed\n",
				        atomic_load(&wr->opened), atomic_load(&wr->failed));
			}
			bench_sleep_us(50000);
		}
		t0 = mmo_mono_us();
		while (!interrupted && atomic_load(&wr->subscribed) < atomic_load(&wr->opened) &&
		       mmo_mono_us() - t0 < 30000000)
			bench_sleep_us(50000);
	}
	res->ws_open = atomic_load(&wr->opened);
	rss = pid_rss_kb(server_pid);
	if (rss > *rss_peak)
		*rss_peak = rss;
	fprintf(stderr,
	        "bench: ws: %u open, %u failed%s%s, %u/%u subscriptions answered; rss %ld MB\n",
	        res->ws_open, atomic_load(&wr->failed), wr->why[0] ? " - " : "", wr->why,
	        atomic_load(&wr->subscribed), res->ws_open, rss / 1024);
	if (interrupted || res->ws_open == 0) {
		snprintf(why, wl, "no WebSocket could be opened: %s", wr->why);
		goto stop_ws;
	}
	fprintf(stderr, "bench: run %u: %u moves/s offered for %u s to %u WebSockets\n", r,
	        cfg->rate, cfg->duration, res->ws_open);
	memset(ph, 0, sizeof(*ph));
	ph->cfg = cfg;
	ph->pl = pl;
	ph->port = gw_port;
	ph->rate = cfg->rate;
	ph->acc_cap = (size_t)cfg->rate * cfg->duration * 2 + 1024;
	ph->acc = calloc(ph->acc_cap, sizeof(*ph->acc));
	if (!ph->acc) {
		snprintf(why, wl, "out of memory");
		goto stop_ws;
	}
	atomic_store(&wr->measure, true);
	if (run_phase(ph, why, wl))
		goto stop_ws;
	bench_sleep_us(1000000); /* deliveries still in flight */
	atomic_store(&wr->measure, false);
	rss = pid_rss_kb(server_pid);
	if (rss > *rss_peak)
		*rss_peak = rss;
	note_phase("ws_moves", r, ph, secs);
	res->ws_rate = (double)ph->ok / secs;
stop_ws:
	atomic_store(&wr->stop, true);
	for (unsigned i = 0; i < wstarted; i++)
		pthread_join(wth[i], NULL);
	if (!ph->acc || interrupted || !res->ws_open)
		goto out;
	{
		size_t na = atomic_load(&ph->acc_n), nr = atomic_load(&wr->rec_n);

		if (na > ph->acc_cap)
			na = ph->acc_cap;
		if (nr > wr->rec_cap)
			nr = wr->rec_cap;
		qsort(ph->acc, na, sizeof(*ph->acc), cmp_acc);
		for (size_t i = 0; i < nr; i++) {
			const struct accept_rec *a = find_acc(ph->acc, na, wr->rec[i].seq);

			if (!a)
				continue;
			matched++;
			if (wr->rec[i].t < a->t) {
				early++;
				hist_add(dh, 0);
			} else {
				hist_add(dh, (uint64_t)(wr->rec[i].t - a->t));
			}
		}
		/* Expected: every accepted move, to each open socket of its player. */
		per_player = calloc(cfg->players, sizeof(*per_player));
		if (per_player) {
			for (unsigned j = 0; j < res->ws_open && j < cfg->ws_clients; j++)
				per_player[j % cfg->players]++;
			for (size_t i = 0; i < na; i++)
				res->expected += per_player[ph->acc[i].player];
		}
		res->delivered = matched;
		res->ws_p50_ms = (double)hist_pct(dh, 0.50) / 1000.0;
		res->ws_p99_ms = (double)hist_pct(dh, 0.99) / 1000.0;
		printf("run %u ws: clients=%u moves_per_s=%.0f delivered=%llu expected=%llu "
		       "before_http_answer=%llu closed=%u p50_us=%llu p99_us=%llu\n",
		       r, res->ws_open, res->ws_rate, (unsigned long long)matched,
		       (unsigned long long)res->expected, (unsigned long long)early,
		       atomic_load(&wr->closed), (unsigned long long)hist_pct(dh, 0.50),
		       (unsigned long long)hist_pct(dh, 0.99));
		fflush(stdout);
		if (!matched) {
			snprintf(why, wl, "no move was delivered to a WebSocket");
			goto out;
		}
	}
	rc = 0;
out:
	if (wr) {
		free(wr->rec);
		if (wr->cfg)
			pthread_mutex_destroy(&wr->mu);
	}
	if (ph)
		free(ph->acc);
	free(per_player);
	free(ph);
	free(wr);
	free(dh);
	return rc;
}

/* ------------------------------------------------------------ the command */

static void help(FILE *f)
{
	fprintf(f,
	        "usage: mmo bench gateway [options]\n"
	        "Runs log, world, views and gateway in a child process (fresh folder, a\n"
	        "redis-server started here) and drives it over HTTP/1.1 keep-alive and\n"
	        "WebSockets from this process:\n"
	        "  (a) authenticated moves (register + login first, not timed): moves/s and\n"
	        "      p50/p99 latency, send to 200 (durable outcome included), against a\n"
	        "      civetweb handler answering 200 {} at once, same client, same concurrency;\n"
	        "  (b) W WebSockets, each subscribed to its player's region; moves at --rate;\n"
	        "      time from a move's 200 to its world.update on each socket in range.\n"
	        "  --duration S       seconds per phase (default 8)\n"
	        "  --clients C        HTTP client threads and connections (default 16, max %d)\n"
	        "  --players P        players (default 160; each moves <= 18/s, the gateway\n"
	        "                     allows 20; Argon2id makes registering ~0.15 s of CPU each)\n"
	        "  --ws-clients W     WebSockets (default 5000), W/P per player\n"
	        "  --rate MOVES_PER_S moves offered in phase (b) (default 2000)\n"
	        "  --runs R           runs; each is printed, then the medians (default 1)\n"
	        "  --data DIR         where the temporary folder goes (default $TMPDIR or /tmp)\n"
	        "  --redis-server PATH  (default /usr/bin/redis-server)\n"
	        "  --sync full|none   the log's commits (default full)\n"
	        "Every option may also come from MMO_<OPTION>, e.g. MMO_DURATION.\n"
	        "The last line of the output is:\n"
	        "  gateway moves_per_s=N p99_ms=N ratio_vs_http_ceiling=R ws_clients=N\n"
	        "          ws_p99_ms=N rss_mb=N\n"
	        "Exit status: 0 measured, 1 failed, 2 bad usage.\n",
	        CLIENTS_MAX);
}

static bool parse_u(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	uint64_t v;

	if (!cli_parse_u64(s, &v) || v < lo || v > hi) {
		cli_err(CMD, "--%s takes %u..%u, not '%s'", opt, lo, hi, s);
		return false;
	}
	*out = (unsigned)v;
	return true;
}

static int parse_config(int argc, char **argv, struct config *cfg)
{
	static const struct option lo[] = {{"duration", required_argument, 0, 'd'},
	                                   {"clients", required_argument, 0, 'c'},
	                                   {"players", required_argument, 0, 'p'},
	                                   {"ws-clients", required_argument, 0, 'w'},
	                                   {"rate", required_argument, 0, 'r'},
	                                   {"runs", required_argument, 0, 'n'},
	                                   {"data", required_argument, 0, 'D'},
	                                   {"redis-server", required_argument, 0, 'S'},
	                                   {"sync", required_argument, 0, 'y'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *a_d = NULL, *a_c = NULL, *a_p = NULL, *a_w = NULL, *a_r = NULL, *a_n = NULL,
	           *a_D = NULL, *a_S = NULL, *a_y = NULL, *s;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_d = optarg; break;
		case 'c': a_c = optarg; break;
		case 'p': a_p = optarg; break;
		case 'w': a_w = optarg; break;
		case 'r': a_r = optarg; break;
		case 'n': a_n = optarg; break;
		case 'D': a_D = optarg; break;
		case 'S': a_S = optarg; break;
		case 'y': a_y = optarg; break;
		case 'h': help(stdout); return -1;
		default:
			cli_err(CMD, "unrecognized option '%s' (see mmo bench gateway --help)",
			        argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err(CMD, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (!parse_u("duration", cli_opt("duration", a_d, "8"), 1, 3600, &cfg->duration) ||
	    !parse_u("clients", cli_opt("clients", a_c, "16"), 1, CLIENTS_MAX, &cfg->clients) ||
	    !parse_u("players", cli_opt("players", a_p, "160"), 1, 100000, &cfg->players) ||
	    !parse_u("ws-clients", cli_opt("ws-clients", a_w, "5000"), 0, 50000,
	             &cfg->ws_clients) ||
	    !parse_u("rate", cli_opt("rate", a_r, "2000"), 1, 1000000, &cfg->rate) ||
	    !parse_u("runs", cli_opt("runs", a_n, "1"), 1, RUNS_MAX, &cfg->runs))
		return EXIT_USAGE;
	cfg->data = cli_opt("data", a_D, NULL);
	cfg->redis_path = cli_opt("redis-server", a_S, "/usr/bin/redis-server");
	s = cli_opt("sync", a_y, "full");
	if (!strcmp(s, "none")) {
		cfg->nosync = true;
	} else if (strcmp(s, "full")) {
		cli_err(CMD, "--sync takes full or none, not '%s'", s);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int bench_gateway(int argc, char **argv)
{
	struct config cfg = {0};
	struct sigaction sa = {0}, old_int, old_term, old_pipe;
	char root[4096] = "", dir[4200], why[512] = "";
	double v_rate[RUNS_MAX], v_p99[RUNS_MAX], v_ratio[RUNS_MAX], v_wsp99[RUNS_MAX],
	    v_ceil[RUNS_MAX], v_p50[RUNS_MAX], v_wsp50[RUNS_MAX];
	unsigned redis_port = 0, ws_open_min = ~0u;
	struct mg_context *mg = NULL;
	struct player *pl = NULL;
	struct rlimit rl;
	long rss_peak = 0;
	int pfd[2] = {-1, -1}, gw_port_n = 0, ceil_port = 0, rc;
	const char *base;
	int64_t t_setup;

	rc = parse_config(argc, argv, &cfg);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)cfg.ws_clients * 2 + 1024) {
		unsigned w = rl.rlim_cur > 2048 ? (unsigned)((rl.rlim_cur - 1024) / 2) : 0;

		fprintf(stderr,
		        "bench: warning: RLIMIT_NOFILE is %llu: --ws-clients cut from %u to %u\n",
		        (unsigned long long)rl.rlim_cur, cfg.ws_clients, w);
		cfg.ws_clients = w;
	}
	base = cfg.data ? cfg.data
	                : (getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	snprintf(root, sizeof(root), "%s/mmo-bench.XXXXXX", base);
	if (!mkdtemp(root)) {
		cli_err(CMD, "cannot create a folder in %s: %s", base, strerror(errno));
		return EXIT_FAIL;
	}
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);

	printf("bench gateway: duration=%u clients=%u players=%u ws_clients=%u rate=%u runs=%u "
	       "sync=%s aoi_radius=%.0f spacing=%.0f fanout_per_move=%.1f cpus=%ld data=%s\n",
	       cfg.duration, cfg.clients, cfg.players, cfg.ws_clients, cfg.rate, cfg.runs,
	       cfg.nosync ? "none" : "full", AOI, SPACING, (double)cfg.ws_clients / cfg.players,
	       sysconf(_SC_NPROCESSORS_ONLN), root);
	fflush(stdout);

	/* Processes first, before this process has any thread. */
	snprintf(dir, sizeof(dir), "%s/redis", root);
	if (mkdir(dir, 0750)) {
		snprintf(why, sizeof(why), "cannot create %.300s: %s", dir, strerror(errno));
		goto fail;
	}
	if (redis_start(&cfg, dir, &redis_port, why, sizeof(why)))
		goto fail;
	snprintf(dir, sizeof(dir), "%s/data", root);
	if (mkdir(dir, 0750) || pipe(pfd)) {
		snprintf(why, sizeof(why), "cannot create %.300s: %s", dir, strerror(errno));
		goto fail;
	}
	fflush(stdout);
	fflush(stderr);
	{
		pid_t pid = fork();

		if (pid < 0) {
			snprintf(why, sizeof(why), "fork: %s", strerror(errno));
			goto fail;
		}
		if (pid == 0) {
			close(pfd[0]);
			server_main(&cfg, dir, redis_port, pfd[1]);
		}
		server_pid = pid;
	}
	close(pfd[1]);
	pfd[1] = -1;
	{
		struct pollfd p = {pfd[0], POLLIN, 0};

		if (poll(&p, 1, 60000) <= 0 ||
		    read(pfd[0], &gw_port_n, sizeof(gw_port_n)) != sizeof(gw_port_n) ||
		    !gw_port_n) {
			snprintf(why, sizeof(why),
			         "the backend did not start (see its error above)");
			goto fail;
		}
	}
	fprintf(stderr, "bench: backend pid %d, gateway on 127.0.0.1:%d, redis on %u\n",
	        (int)server_pid, gw_port_n, redis_port);

	/* The ceiling: civetweb with the same keep-alive settings. */
	{
		char threads[16];
		const char *opts[] = {"listening_ports",
		                      "127.0.0.1:0",
		                      "num_threads",
		                      threads,
		                      "enable_keep_alive",
		                      "yes",
		                      "keep_alive_timeout_ms",
		                      "30000",
		                      "tcp_nodelay",
		                      "1",
		                      "listen_backlog",
		                      "1024",
		                      NULL};
		struct mg_callbacks cb;
		struct mg_server_port ports[2];

		snprintf(threads, sizeof(threads), "%u", cfg.clients + 8);
		memset(&cb, 0, sizeof(cb));
		mg_init_library(0);
		mg = mg_start(&cb, NULL, opts);
		if (!mg) {
			snprintf(why, sizeof(why), "cannot start the ceiling server");
			goto fail;
		}
		mg_set_request_handler(mg, "**", ceiling_handler, NULL);
		memset(ports, 0, sizeof(ports));
		if (mg_get_server_ports(mg, 2, ports) > 0)
			ceil_port = ports[0].port;
	}

	/* Players: register + login in parallel (Argon2id; not timed). */
	pl = calloc(cfg.players, sizeof(*pl));
	if (!pl) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	{
		unsigned n = (unsigned)ceil(sqrt((double)cfg.players)), nth = 8;
		struct setup st = {.pl = pl, .n = cfg.players, .port = (unsigned)gw_port_n};
		pthread_t th[8];
		int64_t last = 0;

		for (unsigned i = 0; i < cfg.players; i++) {
			/* Half a spacing off the region borders (x = 5000). */
			pl[i].tx = SPAWN + ((double)(i % n) - n / 2 + 0.5) * SPACING;
			pl[i].ty = SPAWN + ((double)(i / n) - n / 2 + 0.5) * SPACING;
		}
		t_setup = mmo_mono_us();
		fprintf(stderr, "bench: registering %u players (Argon2id: ~%.0f s)\n", cfg.players,
		        cfg.players * 0.3 / 2);
		for (unsigned i = 0; i < nth; i++)
			pthread_create(&th[i], NULL, setup_main, &st);
		while (atomic_load(&st.next) < cfg.players && !atomic_load(&st.failed) &&
		       !interrupted) {
			if (mmo_mono_us() - last > 5000000) {
				last = mmo_mono_us();
				fprintf(stderr, "bench: %u/%u players ready\n",
				        atomic_load(&st.done), cfg.players);
			}
			bench_sleep_us(100000);
		}
		for (unsigned i = 0; i < nth; i++)
			pthread_join(th[i], NULL);
		if (atomic_load(&st.failed) || interrupted) {
			snprintf(why, sizeof(why), "%s", interrupted ? "interrupted" : st.why);
			goto fail;
		}
		fprintf(stderr, "bench: %u players ready in %.1f s\n", cfg.players,
		        (double)(mmo_mono_us() - t_setup) / 1e6);
	}

	for (unsigned r = 0; r < cfg.runs; r++) {
		struct result res = {0};

		if (one_run(&cfg, pl, gw_port_n, ceil_port, r + 1, &rss_peak, &res, why,
		            sizeof(why)))
			goto fail;
		v_ceil[r] = res.ceil_per_s;
		v_rate[r] = res.per_s;
		v_p50[r] = res.p50_ms;
		v_p99[r] = res.p99_ms;
		v_ratio[r] = res.ratio;
		v_wsp50[r] = res.ws_p50_ms;
		v_wsp99[r] = res.ws_p99_ms;
		if (res.ws_open < ws_open_min)
			ws_open_min = res.ws_open;
	}
	{
		double m_rate = bench_median(v_rate, cfg.runs), m_p99 = bench_median(v_p99, cfg.runs),
		       m_ratio = bench_median(v_ratio, cfg.runs), m_ws99 = bench_median(v_wsp99, cfg.runs);
		double rss_mb = (double)rss_peak / 1024.0;

		printf("median: http_ceiling_per_s=%.0f moves_per_s=%.0f p50_ms=%.2f p99_ms=%.2f "
		       "ws_p50_ms=%.2f ws_p99_ms=%.2f\n",
		       bench_median(v_ceil, cfg.runs), m_rate, bench_median(v_p50, cfg.runs), m_p99,
		       bench_median(v_wsp50, cfg.runs), m_ws99);
		printf("target: ratio_vs_http_ceiling >= 0.25: %s\n",
		       m_ratio >= 0.25 ? "met" : "MISSED");
		printf("target: p99_ms <= 10 at %.0f moves/s: %s\n", m_rate,
		       m_p99 <= 10 ? "met" : "MISSED");
		printf("target: ws_p99_ms <= 20 with 5000 clients: %s\n",
		       ws_open_min < 5000 ? "not measured (fewer clients)"
		       : m_ws99 <= 20     ? "met"
		                          : "MISSED");
		printf("target: rss_mb < 1536: %s\n", rss_mb < 1536 ? "met" : "MISSED");
		printf(
		    "gateway moves_per_s=%.0f p99_ms=%.2f ratio_vs_http_ceiling=%.3f ws_clients=%u "
		    "ws_p99_ms=%.2f rss_mb=%.0f\n",
		    m_rate, m_p99, m_ratio, ws_open_min, m_ws99, rss_mb);
		fflush(stdout);
	}
	rc = EXIT_OK;
	goto out;
fail:
	cli_err(CMD, "%s", interrupted ? "interrupted" : why);
	rc = EXIT_FAIL;
out:
	if (mg)
		mg_stop(mg);
	child_stop(&server_pid, SIGTERM, 20000);
	child_stop(&redis_pid, SIGTERM, 3000);
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	free(pl);
	bench_rm_tree(root);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	return rc;
}
