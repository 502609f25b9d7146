/* bench_gateway.c - `mmo bench gateway`: the gateway's authenticated moves
 * against the HTTP ceiling of its own stack, open-loop latency at a fixed
 * offered rate, and WebSocket fan-out at tens of thousands of sockets, in
 * one run.
 *
 * How to run (the full scale; small numbers while developing):
 *   build/mmo bench gateway                 # 256 clients, 40,000 sockets
 *   build/mmo bench gateway --runs 1 --ws-clients 400 --ws-rate 200 \
 *       --ws-moves rest --http-threads 800  # against a thread-per-socket server
 * It needs RLIMIT_NOFILE >= W + 3C + 1024 (41,792 at the defaults): it
 * raises the soft limit to the hard one itself and stops (exit 1) if that
 * is not enough. The last line is
 *   gateway moves_per_s=N p99_ms=N ratio_vs_http_ceiling=R ws_clients=N
 *           ws_moves_per_s=N ws_deliveries_per_s=N ws_p99_ms=N rss_mb=N
 *
 * The backend under test runs in a child process (forked from this one
 * before any thread exists): log (fresh folder, durable commits), world,
 * views and gateway, wired as `mmo serve` wires them, with a redis-server
 * this command starts on a free port, and the gateway options serve cannot
 * set (http_threads, ws_max, aoi_radius). Its RSS is sampled (rss_mb).
 *
 * Players are made directly (bench_players.c): ids, tokens signed with the
 * child's fixed key, sessions written to Redis, and player.register +
 * player.login appended to the log by the child before gw_start, so no
 * Argon2id runs. Each WebSocket is its own player.
 *
 * Placement: players stand in clusters of CLUSTER on a ring of RING around
 * the cluster's centre; centres on an even square grid SPACING apart around
 * the spawn point, so no cluster straddles a region border (x or y = 5000).
 * The gateway's aoi_radius is AOI (1 unit): a move (a sway of +-SWAY along
 * x) is within the radius of exactly its cluster (its 19 neighbours and
 * itself) and of no other. The child appends one player.move per player to
 * its place after waiting until the rules' max speed (10/s plus 1 unit of
 * slack) allows that hop from the spawn point since the login (40,000
 * players: a grid of 46 x 46 clusters, 81 units to the far corner, ~8 s).
 * This is the "centres near the spawn, within reach" choice: one hop, no
 * walk. The hub learns each socket's position from the Redis view when the
 * socket opens (gateway/ws.c initial_position), so no socket is "position
 * unknown" (which would receive every update of its region).
 *
 * Phases of a run:
 *   ceiling   a civetweb server in this process whose one handler answers
 *             200 {} at once: the HTTP ceiling, same client, C threads each
 *             with one keep-alive HTTP/1.1 connection (bench_http.c);
 *   moves     POST /api/players/move, closed loop, C clients, each player
 *             paced under its 20 moves/s limit: moves_per_s;
 *   open      the same at --rest-rate moves/s offered in total, each
 *             client on a fixed schedule; latency from the scheduled send
 *             time (no coordinated omission): p99_ms;
 *   ws        W WebSockets (bench_ws.c: epoll threads, non-blocking), each
 *             subscribed to its player's region; moves at --ws-rate sent
 *             over the sockets ({"op":"move",...}, --ws-moves socket) or as
 *             REST moves (--ws-moves rest), evenly over players and time;
 *             per delivered world.update, the time from the move's send to
 *             its arrival at each socket of the cluster. Matching is done
 *             after the phase: sends are (seq of the ack or 200, send time,
 *             player), deliveries (cause_seq, arrival, socket); a delivery
 *             counts when its cause_seq is a recorded send of a player of
 *             the receiving socket's cluster. Expected = per acknowledged
 *             move, the sockets of its cluster open to the end; missing =
 *             expected - matched (must be 0).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <civetweb.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_backend.h"
#include "bench_hist.h"
#include "bench_http.h"
#include "bench_players.h"
#include "bench_util.h"
#include "bench_ws.h"
#include "schemas/mmo_util.h"
#include "tools/bench/bench.h"
#include "tools/cli/cli_util.h"

#define CMD         "bench gateway"
#define RUNS_MAX    99
#define CLIENTS_MAX 1024
#define AOI         1.0
#define CLUSTER     20
#define RING        (0.3 * AOI)
#define SWAY        (0.05 * AOI)
#define SPACING     (2.5 * AOI)
#define SPAWN       5000.0
#define MAX_SPEED   10.0  /* projector/world/rules.c */
#define PACE_US     55000 /* per player: under the 20 moves/s limit */
#define JWT_KEY     "bench-gateway-signing-key-0123456789"
#define TOKEN_TTL_S (3 * 3600)
#define PER_ADDR    10000 /* WebSockets per loopback source address */
#define FD_SPARE    1024

struct config {
	unsigned duration, clients, players, ws_clients, rest_rate, ws_rate, runs;
	unsigned http_threads, ws_threads;
	const char *data, *redis_path;
	bool nosync, ws_socket;
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

/* CPU seconds (user + system) of pid so far, from /proc; 0 if unknown. */
static double pid_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
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

/* The farthest place from the spawn point. */
static double max_hop(const struct player *pl, unsigned n)
{
	double m = 0;

	for (unsigned i = 0; i < n; i++) {
		double dx = pl[i].tx - SPAWN, dy = pl[i].ty - SPAWN, d = sqrt(dx * dx + dy * dy);

		if (d > m)
			m = d;
	}
	return m;
}

/* ------------------------------------------------------------ players */

/* Cluster c = i / CLUSTER on an even square grid around the spawn, member
 * i % CLUSTER on its ring. */
static void place_players(struct player *pl, unsigned n)
{
	unsigned nc = (n + CLUSTER - 1) / CLUSTER, g = (unsigned)ceil(sqrt((double)nc));

	if (g % 2)
		g++;
	for (unsigned i = 0; i < n; i++) {
		unsigned c = i / CLUSTER, k = i % CLUSTER;
		double a = 2 * M_PI * k / CLUSTER;

		pl[i].cluster = c;
		pl[i].tx = SPAWN + ((double)(c % g) - g / 2.0 + 0.5) * SPACING + RING * cos(a);
		pl[i].ty = SPAWN + ((double)(c / g) - g / 2.0 + 0.5) * SPACING + RING * sin(a);
		/* Rounded as the wire (%.3f) carries them. */
		pl[i].tx = round(pl[i].tx * 1000) / 1000;
		pl[i].ty = round(pl[i].ty * 1000) / 1000;
		pl[i].x = pl[i].tx;
		pl[i].y = pl[i].ty;
	}
}

/* The world knows the players: a sample of their views (what GET
 * /api/players/{id} serves) stands at its place. Waits up to 60 s for the
 * projections. 0 or -1 with why filled. */
static int check_players(const struct player *pl, unsigned n, unsigned redis_port, char *why,
                         size_t wl)
{
	redisContext *c = redisConnect("127.0.0.1", (int)redis_port);
	unsigned idx[4] = {0, n / 3, 2 * n / 3, n - 1};
	int64_t until = mmo_mono_us() + 60000000;
	int rc = -1;

	if (!c || c->err) {
		snprintf(why, wl, "redis: %s", c ? c->errstr : "out of memory");
		goto out;
	}
	for (unsigned k = 0; k < 4; k++) {
		const struct player *p = &pl[idx[k]];

		for (;;) {
			redisReply *r = redisCommand(c, "HMGET mmo:player:%s x y", p->id);
			bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
			          r->element[0]->type == REDIS_REPLY_STRING &&
			          r->element[1]->type == REDIS_REPLY_STRING &&
			          fabs(strtod(r->element[0]->str, NULL) - p->tx) < 0.01 &&
			          fabs(strtod(r->element[1]->str, NULL) - p->ty) < 0.01;

			freeReplyObject(r);
			if (ok)
				break;
			if (mmo_mono_us() > until || interrupted) {
				snprintf(why, wl,
				         "player %s is not at its place (%.3f, %.3f) in the view",
				         p->id, p->tx, p->ty);
				goto out;
			}
			bench_sleep_us(100000);
		}
	}
	rc = 0;
out:
	if (c)
		redisFree(c);
	return rc;
}

/* ------------------------------------------------------------ load phases */

struct accept_rec {
	uint64_t seq;
	int64_t t; /* when the move was sent */
	unsigned player;
};

struct phase {
	const struct config *cfg;
	struct player *pl;
	unsigned np; /* players 0..np-1 move */
	int port;
	bool ceiling;  /* the civetweb 200 {} server: no pacing */
	unsigned rate; /* moves/s offered in total; 0 = closed loop */
	int64_t start, end;
	/* out */
	struct bench_hist h;
	uint64_t ok, rejected, pending, limited, errors;
	char reject_why[128];
	struct accept_rec *acc; /* accepted moves, when recording */
	size_t acc_cap;
	atomic_size_t acc_n;
	pthread_mutex_t mu;
};

struct worker {
	struct phase *ph;
	unsigned id;
};

/* The next step of player p: its place, or a sway around it. */
static void next_pos(struct player *p, int64_t now, double *x, double *y)
{
	double dx = p->tx - p->x, dy = p->ty - p->y, d = sqrt(dx * dx + dy * dy);
	double allow = 9.0 * (double)(now - p->last_ok) / 1e6 + 0.9;

	if (d < SWAY / 2) {
		*x = p->tx + ((p->osc++ & 1) ? SWAY : -SWAY);
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
	struct bench_hist *h = calloc(1, sizeof(*h));
	uint64_t ok = 0, rej = 0, pend = 0, lim = 0, err = 0;
	int64_t interval = 0, sched;
	char body[128], out[1024], why[128] = "";

	if (!c || !h)
		goto out;
	c->fd = -1;
	c->port = ph->port;
	for (unsigned i = w->id; i < ph->np; i += C)
		nmine++;
	if (!nmine)
		goto out;
	if (ph->rate)
		interval = (int64_t)C * 1000000 / ph->rate;
	sched = ph->start + (interval ? interval * w->id / C : 0);
	while (!interrupted) {
		unsigned pi = w->id + C * (k++ % nmine);
		struct player *p = &ph->pl[pi];
		int64_t now = mmo_mono_us(), t0, t1, from;
		double x, y;
		int st;

		if (interval) {
			if (sched > now)
				bench_sleep_us(sched - now);
		}
		if (!ph->ceiling && p->next > mmo_mono_us())
			bench_sleep_us(p->next - mmo_mono_us());
		t0 = mmo_mono_us();
		/* Open loop: latency counts from the scheduled time. */
		from = interval && sched < t0 ? sched : t0;
		if (interval)
			sched += interval;
		if (t0 >= ph->end)
			break;
		next_pos(p, t0, &x, &y);
		snprintf(body, sizeof(body), "{\"x\":%.3f,\"y\":%.3f,\"z\":0}", x, y);
		st = bench_hc_request(c, "/api/players/move", p->token, body, out, sizeof(out));
		t1 = mmo_mono_us();
		p->next = t0 + PACE_US;
		if (st == 200) {
			ok++;
			bench_hist_add(h, (uint64_t)(t1 - from));
			if (!ph->ceiling) {
				const char *s = strstr(out, "\"seq\":");

				p->x = x;
				p->y = y;
				p->last_ok = t1;
				if (ph->acc && s) {
					size_t at = atomic_fetch_add(&ph->acc_n, 1);

					if (at < ph->acc_cap) {
						ph->acc[at].seq = strtoull(s + 6, NULL, 10);
						ph->acc[at].t = t0;
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
		bench_hist_merge(&ph->h, h);
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
	unsigned n = ph->cfg->clients, started = 0;
	pthread_t *th = calloc(n, sizeof(*th));
	struct worker *w = calloc(n, sizeof(*w));

	if (!th || !w) {
		free(th);
		free(w);
		snprintf(why, wl, "out of memory");
		return -1;
	}
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
	free(th);
	free(w);
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

/* ------------------------------------------------------------ WebSocket matching */

struct sent {
	uint64_t seq;
	int64_t t;
	unsigned player, got;
};

static int cmp_sent(const void *a, const void *b)
{
	uint64_t x = ((const struct sent *)a)->seq, y = ((const struct sent *)b)->seq;

	return (x > y) - (x < y);
}

static struct sent *find_sent(struct sent *v, size_t n, uint64_t seq)
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

/* ------------------------------------------------------------ server stages */

/* The gateway's own per-stage latency sums (GET /metrics, no auth):
 * commit (append to the log durable), outcome (the world's decision back),
 * delivery (to the sockets). Differences of two reads give a phase's mean. */
struct stages {
	double sum[3];
	double n[3];
};

static const char *const stage_name[3] = {"commit", "outcome", "delivery"};

static void read_stages(int port, struct stages *st)
{
	struct hconn *c = calloc(1, sizeof(*c));
	char *body = malloc(sizeof(c->buf));

	memset(st, 0, sizeof(*st));
	if (!c || !body)
		goto out;
	c->fd = -1;
	c->port = port;
	if (bench_hc_request(c, "/metrics", NULL, NULL, body, sizeof(c->buf)) != 200)
		goto out;
	for (int k = 0; k < 3; k++) {
		char key[96];
		const char *q;

		snprintf(key, sizeof(key), "mmo_gw_event_latency_seconds_sum{stage=\"%s\"} ",
		         stage_name[k]);
		if ((q = strstr(body, key)))
			st->sum[k] = strtod(q + strlen(key), NULL);
		snprintf(key, sizeof(key), "mmo_gw_event_latency_seconds_count{stage=\"%s\"} ",
		         stage_name[k]);
		if ((q = strstr(body, key)))
			st->n[k] = strtod(q + strlen(key), NULL);
	}
out:
	if (c && c->fd >= 0)
		close(c->fd);
	free(c);
	free(body);
}

/* One line of the stages' mean latency between two reads. */
static void note_stages(unsigned r, const char *phase, const struct stages *a,
                        const struct stages *b)
{
	printf("run %u %s: gateway stages mean_ms", r, phase);
	for (int k = 0; k < 3; k++) {
		double n = b->n[k] - a->n[k];

		printf(" %s=%.2f", stage_name[k], n > 0 ? (b->sum[k] - a->sum[k]) / n * 1e3 : 0.0);
	}
	printf(" (from its /metrics)\n");
}

/* ------------------------------------------------------------ one run */

struct result {
	double ceil_per_s, per_s, p50_ms, p99_ms, ratio, open_per_s, open_p99_ms;
	double ws_rate, ws_dps, ws_p50_ms, ws_p99_ms;
	unsigned ws_open;
	uint64_t delivered, expected, missing;
};

static void note_phase(const char *name, unsigned r, const struct phase *ph, double secs)
{
	printf("run %u %s: per_s=%.0f ok=%llu p50_us=%llu p99_us=%llu rejected=%llu "
	       "pending_202=%llu rate_limited=%llu errors=%llu\n",
	       r, name, (double)ph->ok / secs, (unsigned long long)ph->ok,
	       (unsigned long long)bench_hist_quantile(&ph->h, 0.50),
	       (unsigned long long)bench_hist_quantile(&ph->h, 0.99),
	       (unsigned long long)ph->rejected, (unsigned long long)ph->pending,
	       (unsigned long long)ph->limited, (unsigned long long)ph->errors);
	if (ph->reject_why[0])
		printf("run %u %s: first rejection: %s\n", r, name, ph->reject_why);
	fflush(stdout);
}

static void sample_rss(long *peak)
{
	long rss = pid_rss_kb(server_pid);

	if (rss > *peak)
		*peak = rss;
}

/* The WebSocket phase; fills res->ws_*. */
static int ws_phase(const struct config *cfg, struct player *pl, int gw_port, unsigned r,
                    long *rss_peak, struct phase *ph, struct result *res, char *why, size_t wl)
{
	struct bench_ws_opts o = {.port = gw_port,
	                          .pl = pl,
	                          .n = cfg->ws_clients,
	                          .threads = cfg->ws_threads,
	                          .per_addr = PER_ADDR,
	                          .sway = SWAY};
	struct bench_ws_counts k;
	bench_ws *ws = NULL;
	struct bench_hist *dh = calloc(1, sizeof(*dh));
	unsigned *alive = NULL, nc = (cfg->ws_clients + CLUSTER - 1) / CLUSTER;
	struct sent *sv = NULL;
	size_t ns = 0;
	uint64_t matched = 0, unmatched = 0, foreign = 0, dup = 0;
	int64_t t0, last = 0, start = 0, end, t_quiet, t_last, t_max = 0;
	double secs = cfg->duration, cpu_me = 0, cpu_srv = 0;
	struct stages st0, st1;
	char fwhy[160] = "";
	int rc = -1;

	if (!dh) {
		snprintf(why, wl, "out of memory");
		return -1;
	}
	fprintf(stderr, "bench: run %u: opening %u WebSockets on %u threads\n", r, cfg->ws_clients,
	        cfg->ws_threads);
	if (bench_ws_start(&o, &ws, why, wl))
		goto out;
	t0 = mmo_mono_us();
	for (;;) {
		bench_ws_counts(ws, &k, NULL, 0);
		if (k.subscribed + k.failed >= cfg->ws_clients || interrupted ||
		    mmo_mono_us() - t0 > 60000000 + (int64_t)cfg->ws_clients * 5000)
			break;
		if (mmo_mono_us() - last > 2000000) {
			last = mmo_mono_us();
			fprintf(stderr, "bench: ws: %u open, %u failed\n", k.subscribed, k.failed);
		}
		bench_sleep_us(50000);
	}
	sample_rss(rss_peak);
	bench_ws_counts(ws, &k, fwhy, sizeof(fwhy));
	res->ws_open = k.subscribed;
	fprintf(stderr, "bench: ws: %u open and subscribed, %u failed%s%s in %.1f s; rss %ld MB\n",
	        k.subscribed, k.failed, fwhy[0] ? " - first: " : "", fwhy,
	        (double)(mmo_mono_us() - t0) / 1e6, pid_rss_kb(server_pid) / 1024);
	if (interrupted || !k.subscribed) {
		snprintf(why, wl, "no WebSocket could be opened: %s", fwhy);
		goto out;
	}
	fprintf(stderr, "bench: run %u: %u moves/s offered %s for %u s to %u WebSockets\n", r,
	        cfg->ws_rate, cfg->ws_socket ? "over the sockets" : "as REST moves", cfg->duration,
	        k.subscribed);
	start = mmo_mono_us() + 100000;
	end = start + (int64_t)cfg->duration * 1000000;
	read_stages(gw_port, &st0);
	cpu_me = pid_cpu_s(getpid());
	cpu_srv = pid_cpu_s(server_pid);
	bench_ws_measure(ws, cfg->ws_socket ? cfg->ws_rate : 0, start, end);
	if (!cfg->ws_socket) {
		memset(ph, 0, sizeof(*ph));
		ph->cfg = cfg;
		ph->pl = pl;
		ph->np = cfg->ws_clients;
		ph->port = gw_port;
		ph->rate = cfg->ws_rate;
		ph->acc_cap = (size_t)cfg->ws_rate * cfg->duration * 2 + 1024;
		ph->acc = calloc(ph->acc_cap, sizeof(*ph->acc));
		if (!ph->acc) {
			snprintf(why, wl, "out of memory");
			goto out;
		}
		if (run_phase(ph, why, wl))
			goto out;
		note_phase("ws_rest_moves", r, ph, secs);
	} else {
		while (!interrupted && mmo_mono_us() < end) {
			bench_sleep_us(200000);
			sample_rss(rss_peak);
		}
	}
	/* Deliveries still in flight: until none came for a second (30 s at most). */
	{
		int64_t t_end = mmo_mono_us();
		uint64_t seen = ~0ull;

		t_last = t_end;
		while (!interrupted && mmo_mono_us() - t_last < 1000000 &&
		       mmo_mono_us() - t_end < 30000000) {
			bench_ws_counts(ws, &k, NULL, 0);
			if (k.delivered != seen) {
				seen = k.delivered;
				t_last = mmo_mono_us();
			}
			bench_sleep_us(100000);
		}
		fprintf(stderr, "bench: ws: deliveries drained %.1f s after the last move\n",
		        (double)(t_last - t_end) / 1e6);
	}
	bench_ws_quiet(ws);
	t_quiet = mmo_mono_us();
	read_stages(gw_port, &st1);
	cpu_me = pid_cpu_s(getpid()) - cpu_me;
	cpu_srv = pid_cpu_s(server_pid) - cpu_srv;
	sample_rss(rss_peak);
	bench_ws_stop(ws);
	bench_ws_counts(ws, &k, fwhy, sizeof(fwhy));
	if (interrupted)
		goto out;
	{
		const struct bench_ws_delivery *dv;
		const struct bench_ws_send *wv;
		size_t nd = bench_ws_deliveries(ws, &dv), nw = bench_ws_sends(ws, &wv);
		size_t na = ph->acc ? atomic_load(&ph->acc_n) : 0;

		if (na > ph->acc_cap)
			na = ph->acc_cap;
		sv = calloc((cfg->ws_socket ? nw : na) + 1, sizeof(*sv));
		alive = calloc(nc + 1, sizeof(*alive));
		if (!sv || !alive) {
			snprintf(why, wl, "out of memory");
			goto out;
		}
		if (cfg->ws_socket) {
			for (size_t i = 0; i < nw; i++)
				sv[ns++] = (struct sent){wv[i].seq, wv[i].t, wv[i].sock, 0};
		} else {
			for (size_t i = 0; i < na; i++)
				sv[ns++] = (struct sent){ph->acc[i].seq, ph->acc[i].t,
				                         ph->acc[i].player, 0};
		}
		qsort(sv, ns, sizeof(*sv), cmp_sent);
		for (unsigned i = 0; i < cfg->ws_clients; i++)
			if (bench_ws_alive(ws, i))
				alive[pl[i].cluster]++;
		for (size_t i = 0; i < nd; i++) {
			struct sent *s = find_sent(sv, ns, dv[i].cause_seq);

			if (!s) {
				unmatched++;
			} else if (pl[s->player].cluster != pl[dv[i].sock].cluster) {
				foreign++;
			} else {
				matched++;
				s->got++;
				if (dv[i].t > t_max)
					t_max = dv[i].t;
				bench_hist_add(dh, dv[i].t > s->t ? (uint64_t)(dv[i].t - s->t) : 0);
			}
		}
		for (size_t i = 0; i < ns; i++) {
			unsigned want = alive[pl[sv[i].player].cluster];

			res->expected += want;
			if (sv[i].got < want)
				res->missing += want - sv[i].got;
			else
				dup += sv[i].got - want;
		}
		res->delivered = matched;
		res->ws_rate = (double)ns / secs;
		/* Over the moves' time, or to the last delivery if that is later. */
		res->ws_dps = (double)matched / fmax(secs, (double)(t_max - start) / 1e6);
		res->ws_p50_ms = (double)bench_hist_quantile(dh, 0.50) / 1000.0;
		res->ws_p99_ms = (double)bench_hist_quantile(dh, 0.99) / 1000.0;
		printf("run %u ws: clients=%u moves=%s moves_per_s=%.0f deliveries_per_s=%.0f "
		       "delivered=%llu expected=%llu missing=%llu duplicate=%llu foreign=%llu "
		       "unmatched=%llu closed=%u p50_us=%llu p99_us=%llu\n",
		       r, res->ws_open, cfg->ws_socket ? "socket" : "rest", res->ws_rate,
		       res->ws_dps, (unsigned long long)matched, (unsigned long long)res->expected,
		       (unsigned long long)res->missing, (unsigned long long)dup,
		       (unsigned long long)foreign, (unsigned long long)unmatched, k.closed,
		       (unsigned long long)bench_hist_quantile(dh, 0.50),
		       (unsigned long long)bench_hist_quantile(dh, 0.99));
		if (cfg->ws_socket)
			printf("run %u ws: socket moves sent=%llu acked=%llu errors=%llu "
			       "unacked=%llu%s%s\n",
			       r, (unsigned long long)k.sent, (unsigned long long)k.acked,
			       (unsigned long long)k.move_errors, (unsigned long long)k.unacked,
			       fwhy[0] ? " first failure: " : "", fwhy);
		printf("run %u ws: cpu_s bench=%.1f backend=%.1f over %.1f s (moves and drain)\n",
		       r, cpu_me, cpu_srv, (double)(t_quiet - start) / 1e6);
		note_stages(r, "ws", &st0, &st1);
		if (res->missing)
			printf("run %u ws: WARNING: %llu expected deliveries are missing\n", r,
			       (unsigned long long)res->missing);
		fflush(stdout);
		if (!matched) {
			snprintf(why, wl, "no move was delivered to a WebSocket%s%s",
			         fwhy[0] ? ": " : "", fwhy);
			goto out;
		}
	}
	rc = 0;
out:
	if (ws) {
		bench_ws_stop(ws);
		bench_ws_free(ws);
	}
	free(sv);
	free(alive);
	free(dh);
	return rc;
}

static int one_run(const struct config *cfg, struct player *pl, int gw_port, int ceil_port,
                   unsigned r, long *rss_peak, struct result *res, char *why, size_t wl)
{
	struct phase *ph = calloc(1, sizeof(*ph));
	double secs = cfg->duration;
	struct stages st0, st1;
	int rc = -1;

	if (!ph) {
		snprintf(why, wl, "out of memory");
		goto out;
	}
	fprintf(stderr, "bench: run %u: HTTP ceiling, %u clients, %u s\n", r, cfg->clients,
	        cfg->duration);
	ph->cfg = cfg;
	ph->pl = pl;
	ph->np = cfg->players;
	ph->port = ceil_port;
	ph->ceiling = true;
	if (run_phase(ph, why, wl) || interrupted)
		goto out;
	note_phase("http_ceiling", r, ph, secs);
	res->ceil_per_s = (double)ph->ok / secs;

	fprintf(stderr, "bench: run %u: authenticated moves, closed loop, %u clients, %u players\n",
	        r, cfg->clients, cfg->players);
	memset(ph, 0, sizeof(*ph));
	ph->cfg = cfg;
	ph->pl = pl;
	ph->np = cfg->players;
	ph->port = gw_port;
	if (run_phase(ph, why, wl) || interrupted)
		goto out;
	note_phase("moves", r, ph, secs);
	res->per_s = (double)ph->ok / secs;
	res->p50_ms = (double)bench_hist_quantile(&ph->h, 0.50) / 1000.0;
	res->p99_ms = (double)bench_hist_quantile(&ph->h, 0.99) / 1000.0;
	res->ratio = res->ceil_per_s > 0 ? res->per_s / res->ceil_per_s : 0;
	sample_rss(rss_peak);
	if (ph->ok == 0) {
		snprintf(why, wl, "no move was accepted (rejected %llu, errors %llu) %s",
		         (unsigned long long)ph->rejected, (unsigned long long)ph->errors,
		         ph->reject_why);
		goto out;
	}

	fprintf(stderr, "bench: run %u: authenticated moves, open loop at %u/s offered\n", r,
	        cfg->rest_rate);
	memset(ph, 0, sizeof(*ph));
	ph->cfg = cfg;
	ph->pl = pl;
	ph->np = cfg->players;
	ph->port = gw_port;
	ph->rate = cfg->rest_rate;
	read_stages(gw_port, &st0);
	if (run_phase(ph, why, wl) || interrupted)
		goto out;
	read_stages(gw_port, &st1);
	note_phase("moves_open_loop", r, ph, secs);
	note_stages(r, "moves_open_loop", &st0, &st1);
	res->open_per_s = (double)ph->ok / secs;
	res->open_p99_ms = (double)bench_hist_quantile(&ph->h, 0.99) / 1000.0;
	sample_rss(rss_peak);

	if (cfg->ws_clients) {
		memset(ph, 0, sizeof(*ph));
		if (ws_phase(cfg, pl, gw_port, r, rss_peak, ph, res, why, wl))
			goto out;
	}
	rc = 0;
out:
	if (ph)
		free(ph->acc);
	free(ph);
	return rc;
}

/* ------------------------------------------------------------ the command */

static void help(FILE *f)
{
	fprintf(f,
	        "usage: mmo bench gateway [options]\n"
	        "Runs log, world, views and gateway in a child process (fresh folder, a\n"
	        "redis-server started here; players, sessions and tokens made directly, no\n"
	        "Argon2id) and drives it over HTTP/1.1 keep-alive and WebSockets from here:\n"
	        "  (a) authenticated moves, closed loop: moves/s and p50/p99 from send to the\n"
	        "      200 (durable outcome included), against a civetweb handler answering\n"
	        "      200 {} at once, same client, same concurrency;\n"
	        "  (b) the same moves, open loop at --rest-rate: p99 from the scheduled send;\n"
	        "  (c) W WebSockets, each its own player, in clusters of %d within one area of\n"
	        "      interest; moves at --ws-rate; time from a move's send to its world.update\n"
	        "      at each socket of its cluster; every expected delivery is counted.\n"
	        "  --duration S         seconds per phase (default 8)\n"
	        "  --clients C          HTTP client threads and connections (default 256, max %d)\n"
	        "  --players P          players of the REST phases (default: max(W, 1024));\n"
	        "                       the first W of them have the sockets\n"
	        "  --rest-rate N        moves/s offered in (b) (default 10000)\n"
	        "  --ws-clients W       WebSockets (default 40000, 0 = no phase (c))\n"
	        "  --ws-rate N          moves/s in (c), in total (default 5000; <= 18 per player)\n"
	        "  --ws-moves socket|rest  moves of (c) as {\"op\":\"move\"} over the sockets\n"
	        "                       (default) or as POST /api/players/move\n"
	        "  --ws-threads T       epoll threads of the WebSocket client (default 2, max 16)\n"
	        "  --http-threads N     the gateway's civetweb workers (default C + 64; a server\n"
	        "                       with a worker per WebSocket needs C + W + 64)\n"
	        "  --runs R             runs; each is printed, then the medians (default 1)\n"
	        "  --data DIR           where the temporary folder goes (default $TMPDIR or /tmp)\n"
	        "  --redis-server PATH  (default /usr/bin/redis-server)\n"
	        "  --sync full|none     the log's commits (default full)\n"
	        "Every option may also come from MMO_<OPTION>, e.g. MMO_WS_CLIENTS.\n"
	        "RLIMIT_NOFILE is raised to its hard limit (the backend inherits it); below\n"
	        "W + 3C + %d the run stops with exit status 1.\n"
	        "The last line of the output is (p99_ms is (b)'s, ws_* are (c)'s, rss_mb the\n"
	        "backend's peak):\n"
	        "  gateway moves_per_s=N p99_ms=N ratio_vs_http_ceiling=R ws_clients=N\n"
	        "          ws_moves_per_s=N ws_deliveries_per_s=N ws_p99_ms=N rss_mb=N\n"
	        "Exit status: 0 measured, 1 failed, 2 bad usage.\n",
	        CLUSTER, CLIENTS_MAX, FD_SPARE);
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
	                                   {"rest-rate", required_argument, 0, 'R'},
	                                   {"ws-clients", required_argument, 0, 'w'},
	                                   {"ws-rate", required_argument, 0, 'r'},
	                                   {"ws-moves", required_argument, 0, 'm'},
	                                   {"ws-threads", required_argument, 0, 't'},
	                                   {"http-threads", required_argument, 0, 'H'},
	                                   {"runs", required_argument, 0, 'n'},
	                                   {"data", required_argument, 0, 'D'},
	                                   {"redis-server", required_argument, 0, 'S'},
	                                   {"sync", required_argument, 0, 'y'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *a_d = NULL, *a_c = NULL, *a_p = NULL, *a_R = NULL, *a_w = NULL, *a_r = NULL,
	           *a_m = NULL, *a_t = NULL, *a_H = NULL, *a_n = NULL, *a_D = NULL, *a_S = NULL,
	           *a_y = NULL, *s;
	char defp[16], defh[16];
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_d = optarg; break;
		case 'c': a_c = optarg; break;
		case 'p': a_p = optarg; break;
		case 'R': a_R = optarg; break;
		case 'w': a_w = optarg; break;
		case 'r': a_r = optarg; break;
		case 'm': a_m = optarg; break;
		case 't': a_t = optarg; break;
		case 'H': a_H = optarg; break;
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
	    !parse_u("clients", cli_opt("clients", a_c, "256"), 1, CLIENTS_MAX, &cfg->clients) ||
	    !parse_u("rest-rate", cli_opt("rest-rate", a_R, "10000"), 1, 1000000,
	             &cfg->rest_rate) ||
	    !parse_u("ws-clients", cli_opt("ws-clients", a_w, "40000"), 0, 200000,
	             &cfg->ws_clients) ||
	    !parse_u("ws-rate", cli_opt("ws-rate", a_r, "5000"), 1, 1000000, &cfg->ws_rate) ||
	    !parse_u("ws-threads", cli_opt("ws-threads", a_t, "2"), 1, 16, &cfg->ws_threads) ||
	    !parse_u("runs", cli_opt("runs", a_n, "1"), 1, RUNS_MAX, &cfg->runs))
		return EXIT_USAGE;
	snprintf(defp, sizeof(defp), "%u", cfg->ws_clients > 1024 ? cfg->ws_clients : 1024);
	snprintf(defh, sizeof(defh), "%u", cfg->clients + 64);
	if (!parse_u("players", cli_opt("players", a_p, defp), 1, 1000000, &cfg->players) ||
	    !parse_u("http-threads", cli_opt("http-threads", a_H, defh), 8, 300000,
	             &cfg->http_threads))
		return EXIT_USAGE;
	if (cfg->players < cfg->ws_clients) {
		cli_err(CMD, "--players (%u) must be at least --ws-clients (%u)", cfg->players,
		        cfg->ws_clients);
		return EXIT_USAGE;
	}
	if (cfg->ws_clients && (double)cfg->ws_rate / cfg->ws_clients > 18) {
		cli_err(CMD, "--ws-rate %u over %u players is %.1f moves/s each, over 18",
		        cfg->ws_rate, cfg->ws_clients, (double)cfg->ws_rate / cfg->ws_clients);
		return EXIT_USAGE;
	}
	s = cli_opt("ws-moves", a_m, "socket");
	if (!strcmp(s, "socket") || !strcmp(s, "rest")) {
		cfg->ws_socket = !strcmp(s, "socket");
	} else {
		cli_err(CMD, "--ws-moves takes socket or rest, not '%s'", s);
		return EXIT_USAGE;
	}
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

/* Raise RLIMIT_NOFILE to its hard limit (and the hard limit to the need
 * when privileged); false (with a message) when it stays below what the
 * run needs. The backend child inherits it. */
static bool raise_nofile(const struct config *cfg)
{
	rlim_t need = (rlim_t)cfg->ws_clients + 3 * (rlim_t)cfg->clients + FD_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl)) {
		cli_err(CMD, "getrlimit: %s", strerror(errno));
		return false;
	}
	if (rl.rlim_max < need) {
		/* Only a privileged process may raise the hard limit: try. */
		struct rlimit up = {need, need};

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) || getrlimit(RLIMIT_NOFILE, &rl)) {
			cli_err(CMD, "setrlimit: %s", strerror(errno));
			return false;
		}
	}
	printf("bench gateway: fd limit %llu (hard %llu), this run needs %llu\n",
	       (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
	       (unsigned long long)need);
	if (rl.rlim_cur < need) {
		cli_err(
		    CMD,
		    "RLIMIT_NOFILE hard limit %llu is below the %llu this run needs (ulimit -Hn, "
		    "or fewer --ws-clients)",
		    (unsigned long long)rl.rlim_max, (unsigned long long)need);
		return false;
	}
	return true;
}

int bench_gateway(int argc, char **argv)
{
	struct config cfg = {0};
	struct sigaction sa = {0}, old_int, old_term, old_pipe;
	char root[4096] = "", dir[4200], why[512] = "";
	double v_rate[RUNS_MAX], v_p99[RUNS_MAX], v_ratio[RUNS_MAX], v_wsp99[RUNS_MAX],
	    v_ceil[RUNS_MAX], v_p50[RUNS_MAX], v_wsp50[RUNS_MAX], v_open[RUNS_MAX],
	    v_closed99[RUNS_MAX], v_wsrate[RUNS_MAX], v_wsdps[RUNS_MAX];
	unsigned redis_port = 0, ws_open_min = ~0u;
	uint64_t missing = 0;
	struct mg_context *mg = NULL;
	struct player *pl = NULL;
	long rss_peak = 0;
	int pfd[2] = {-1, -1}, gw_port_n = 0, ceil_port = 0, rc;
	const char *base;
	int64_t t_setup;

	rc = parse_config(argc, argv, &cfg);
	if (rc)
		return rc < 0 ? EXIT_OK : rc;
	if (!raise_nofile(&cfg))
		return EXIT_FAIL;
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

	printf("bench gateway: duration=%u clients=%u players=%u rest_rate=%u ws_clients=%u "
	       "ws_rate=%u ws_moves=%s ws_threads=%u http_threads=%u runs=%u sync=%s "
	       "aoi_radius=%.1f cluster=%u fanout_per_move=%u cpus=%ld data=%s\n",
	       cfg.duration, cfg.clients, cfg.players, cfg.rest_rate, cfg.ws_clients, cfg.ws_rate,
	       cfg.ws_socket ? "socket" : "rest", cfg.ws_threads, cfg.http_threads, cfg.runs,
	       cfg.nosync ? "none" : "full", AOI, CLUSTER, CLUSTER, sysconf(_SC_NPROCESSORS_ONLN),
	       root);
	fflush(stdout);

	/* Players, sessions and tokens, then the processes, all before this
	 * process has any thread. */
	t_setup = mmo_mono_us();
	pl = calloc(cfg.players, sizeof(*pl));
	if (!pl) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	place_players(pl, cfg.players);
	if (bench_players_issue(pl, cfg.players, JWT_KEY, TOKEN_TTL_S, why, sizeof(why)))
		goto fail;
	snprintf(dir, sizeof(dir), "%s/redis", root);
	if (mkdir(dir, 0750)) {
		snprintf(why, sizeof(why), "cannot create %.300s: %s", dir, strerror(errno));
		goto fail;
	}
	if (redis_start(&cfg, dir, &redis_port, why, sizeof(why)))
		goto fail;
	if (bench_players_sessions(pl, cfg.players, redis_port, TOKEN_TTL_S, why, sizeof(why)))
		goto fail;
	snprintf(dir, sizeof(dir), "%s/data", root);
	if (mkdir(dir, 0750) || pipe(pfd)) {
		snprintf(why, sizeof(why), "cannot create %.300s: %s", dir, strerror(errno));
		goto fail;
	}
	fprintf(stderr,
	        "bench: %u players, sessions and tokens made in %.1f s; the backend logs "
	        "them in and places them (a %.0f-unit hop: ~%.0f s)\n",
	        cfg.players, (double)(mmo_mono_us() - t_setup) / 1e6, max_hop(pl, cfg.players),
	        max_hop(pl, cfg.players) / MAX_SPEED + 0.5);
	fflush(stdout);
	fflush(stderr);
	{
		pid_t pid = fork();

		if (pid < 0) {
			snprintf(why, sizeof(why), "fork: %s", strerror(errno));
			goto fail;
		}
		if (pid == 0) {
			struct bench_backend_opts bo = {
			    .dir = dir,
			    .redis_port = redis_port,
			    .fd = pfd[1],
			    .nosync = cfg.nosync,
			    .pl = pl,
			    .n = cfg.players,
			    .hop_wait_us =
			        (int64_t)(max_hop(pl, cfg.players) / MAX_SPEED * 1e6) + 500000,
			    .http_threads = (int)cfg.http_threads,
			    .ws_max = (int)cfg.ws_clients + 16,
			    .aoi_radius = AOI,
			    .jwt_key = JWT_KEY,
			    .token_ttl_s = TOKEN_TTL_S};

			close(pfd[0]);
			bench_backend_main(&bo);
		}
		server_pid = pid;
	}
	close(pfd[1]);
	pfd[1] = -1;
	{
		struct pollfd p = {pfd[0], POLLIN, 0};

		if (poll(&p, 1, 300000) <= 0 ||
		    read(pfd[0], &gw_port_n, sizeof(gw_port_n)) != sizeof(gw_port_n) ||
		    !gw_port_n) {
			snprintf(why, sizeof(why),
			         "the backend did not start (see its error above)");
			goto fail;
		}
	}
	fprintf(stderr, "bench: backend pid %d, gateway on 127.0.0.1:%d, redis on %u\n",
	        (int)server_pid, gw_port_n, redis_port);
	if (check_players(pl, cfg.players, redis_port, why, sizeof(why)))
		goto fail;
	fprintf(stderr, "bench: %u players placed in %.1f s (a sample checked in the view)\n",
	        cfg.players, (double)(mmo_mono_us() - t_setup) / 1e6);
	for (unsigned i = 0; i < cfg.players; i++)
		pl[i].last_ok = mmo_mono_us();

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

	for (unsigned r = 0; r < cfg.runs; r++) {
		struct result res = {0};

		if (one_run(&cfg, pl, gw_port_n, ceil_port, r + 1, &rss_peak, &res, why,
		            sizeof(why)))
			goto fail;
		v_ceil[r] = res.ceil_per_s;
		v_rate[r] = res.per_s;
		v_p50[r] = res.p50_ms;
		v_closed99[r] = res.p99_ms;
		v_p99[r] = res.open_p99_ms;
		v_open[r] = res.open_per_s;
		v_ratio[r] = res.ratio;
		v_wsp50[r] = res.ws_p50_ms;
		v_wsp99[r] = res.ws_p99_ms;
		v_wsrate[r] = res.ws_rate;
		v_wsdps[r] = res.ws_dps;
		missing += res.missing;
		if (res.ws_open < ws_open_min)
			ws_open_min = res.ws_open;
	}
	{
		double m_rate = bench_median(v_rate, cfg.runs),
		       m_p99 = bench_median(v_p99, cfg.runs),
		       m_ratio = bench_median(v_ratio, cfg.runs),
		       m_ws99 = bench_median(v_wsp99, cfg.runs);
		double rss_mb = (double)rss_peak / 1024.0;

		printf("median: http_ceiling_per_s=%.0f moves_per_s=%.0f p50_ms=%.2f "
		       "closed_loop_p99_ms=%.2f open_loop_per_s=%.0f open_loop_p99_ms=%.2f "
		       "ws_p50_ms=%.2f ws_p99_ms=%.2f ws_missing_total=%llu\n",
		       bench_median(v_ceil, cfg.runs), m_rate, bench_median(v_p50, cfg.runs),
		       bench_median(v_closed99, cfg.runs), bench_median(v_open, cfg.runs), m_p99,
		       bench_median(v_wsp50, cfg.runs), m_ws99, (unsigned long long)missing);
		printf("target: ratio_vs_http_ceiling >= 0.25: %s\n",
		       m_ratio >= 0.25 ? "met" : "MISSED");
		printf("target: p99_ms <= 10 at %u moves/s offered: %s\n", cfg.rest_rate,
		       m_p99 <= 10 ? "met" : "MISSED");
		printf("target: ws_p99_ms <= 20 with 40000 clients: %s\n",
		       ws_open_min < 40000 ? "not measured (fewer clients)"
		       : m_ws99 <= 20      ? "met"
		                           : "MISSED");
		printf("target: no expected WebSocket delivery missing: %s\n",
		       missing ? "MISSED" : "met");
		printf("target: rss_mb < 2048: %s\n", rss_mb < 2048 ? "met" : "MISSED");
		printf(
		    "gateway moves_per_s=%.0f p99_ms=%.2f ratio_vs_http_ceiling=%.3f ws_clients=%u "
		    "ws_moves_per_s=%.0f ws_deliveries_per_s=%.0f ws_p99_ms=%.2f rss_mb=%.0f\n",
		    m_rate, m_p99, m_ratio, cfg.ws_clients ? ws_open_min : 0,
		    bench_median(v_wsrate, cfg.runs), bench_median(v_wsdps, cfg.runs), m_ws99,
		    rss_mb);
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
