/* bench_gateway.c - `mmo bench gateway`: the gateway's authenticated moves
 * against the HTTP ceiling of its own stack, open-loop latency at a fixed
 * offered rate, and WebSocket fan-out at tens of thousands of sockets, in
 * one run.
 *
 * How to run (the full scale; small numbers while developing):
 *   build/mmo bench gateway                 # 256 clients, 40,000 sockets
 *   build/mmo bench gateway --runs 1 --ws-clients 400 --ws-rate 200 \
 *       --ws-moves rest --http-threads 800  # against a thread-per-socket server
 * No process may hold more descriptors than RLIMIT_NOFILE (20,000 hard
 * here), so the sockets are spread over processes on both sides: N gateway
 * processes (--gateways, by default the fewest with at most 16,000 sockets
 * each: 3 for 40,000) and M WebSocket client processes (--ws-procs, the
 * same rule). It raises the soft limit to the hard one itself, prints what
 * each kind of process needs, and stops (exit 1) if one would need more.
 * The last line is
 *   gateway moves_per_s=N p99_ms=N ratio_vs_http_ceiling=R ws_clients=N
 *           ws_moves_per_s=N ws_deliveries_per_s=N ws_p99_ms=N rss_mb=N
 *
 * The processes (all forked from this one before it has any thread):
 *   backend   log (fresh folder, durable commits), world, views and the
 *             first gateway, wired as `mmo serve` wires them, with a
 *             redis-server this command starts on a free port, and the
 *             gateway options serve cannot set (http_threads, ws_max,
 *             aoi_radius); its ingest and bus are inproc, or tcp on free
 *             ports when N > 1 (bench_backend.c);
 *   gateways  N-1 more, each wired as `mmo serve --roles gateway --ingest
 *             tcp://... --bus tcp://... --data <the backend's> --redis
 *             <the same>` wires it, with the same tuning (serve cannot set
 *             the AOI radius the clusters need); forked before the players
 *             exist and started once the backend's log is up;
 *   clients   M WebSocket client processes, each with whole clusters, its
 *             share of --ws-rate and its sockets spread over the gateways
 *             (bench_gateway_ws.c); they report counts and histograms over
 *             pipes and this process prints one merged result.
 * rss_mb is the sum of the peak RSS (VmHWM) of the backend and the
 * gateways. Every child dies with this process (PR_SET_PDEATHSIG) and is
 * stopped at the end, on failure too: SIGTERM, then SIGKILL after a bound.
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
 *   ws        W WebSockets (bench_ws.c: epoll threads, non-blocking) in
 *             the client processes, each subscribed to its player's region;
 *             moves at --ws-rate sent over the sockets ({"op":"move",...},
 *             --ws-moves socket) or as REST moves (--ws-moves rest), evenly
 *             over players and time; per delivered world.update, the time
 *             from the move's send to its arrival at each socket of the
 *             cluster; every expected delivery is counted (the matching is
 *             described in bench_gateway_ws.c).
 */
#include <civetweb.h>
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_backend.h"
#include "bench_gateway_int.h"
#include "bench_hist.h"
#include "bench_players.h"
#include "bench_util.h"
#include "schemas/mmo_util.h"
#include "tools/bench/bench.h"
#include "tools/cli/cli_util.h"

#define CMD         BENCH_GW_CMD
#define RUNS_MAX    99
#define CLIENTS_MAX 1024
#define RING        (0.3 * AOI)
#define SPACING     (2.5 * AOI)
#define SPAWN       5000.0
#define MAX_SPEED   10.0 /* projector/world/rules.c */
#define JWT_KEY     "bench-gateway-signing-key-0123456789"
#define TOKEN_TTL_S (3 * 3600)

/* ------------------------------------------------------------ signals */

volatile sig_atomic_t bench_gw_interrupted;
static volatile pid_t redis_pid;
static struct bench_gw_sut sut; /* the backend and the gateways */

static void on_signal(int sig)
{
	(void)sig;
	if (bench_gw_interrupted)
		_exit(130);
	bench_gw_interrupted = 1;
	if (redis_pid > 0)
		kill(redis_pid, SIGKILL);
	for (unsigned i = 0; i < PROCS_MAX; i++)
		if (sut.pid[i] > 0)
			kill(sut.pid[i], SIGKILL);
	bench_gw_ws_kill();
}

/* ------------------------------------------------------------ redis-server */

static int redis_start(const struct bench_gw_config *cfg, const char *dir, unsigned *port,
                       char *why, size_t wl)
{
	return bench_redis_start(cfg->redis_path, dir, NULL, &redis_pid, &bench_gw_interrupted,
	                         port, why, wl);
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
			if (mmo_mono_us() > until || bench_gw_interrupted) {
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

/* ------------------------------------------------------------ one run */

/* Phases (a), (b) against the backend's gateway, then (c) through every
 * gateway. */
static int one_run(const struct bench_gw_config *cfg, struct player *pl, int ceil_port, unsigned r,
                   struct bench_gw_result *res, char *why, size_t wl)
{
	int gw_port = sut.port[0];
	struct bench_gw_phase *ph = calloc(1, sizeof(*ph));
	double secs = cfg->duration;
	struct bench_gw_stages st0, st1;
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
	if (bench_gw_run_phase(ph, why, wl) || bench_gw_interrupted)
		goto out;
	bench_gw_note_phase("http_ceiling", r, ph, secs);
	res->ceil_per_s = (double)ph->ok / secs;

	fprintf(stderr, "bench: run %u: authenticated moves, closed loop, %u clients, %u players\n",
	        r, cfg->clients, cfg->players);
	memset(ph, 0, sizeof(*ph));
	ph->cfg = cfg;
	ph->pl = pl;
	ph->np = cfg->players;
	ph->port = gw_port;
	if (bench_gw_run_phase(ph, why, wl) || bench_gw_interrupted)
		goto out;
	bench_gw_note_phase("moves", r, ph, secs);
	res->per_s = (double)ph->ok / secs;
	res->p50_ms = (double)bench_hist_quantile(&ph->h, 0.50) / 1000.0;
	res->p99_ms = (double)bench_hist_quantile(&ph->h, 0.99) / 1000.0;
	res->ratio = res->ceil_per_s > 0 ? res->per_s / res->ceil_per_s : 0;
	bench_gw_sut_sample(&sut);
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
	bench_gw_read_stages(sut.port, 1, &st0);
	if (bench_gw_run_phase(ph, why, wl) || bench_gw_interrupted)
		goto out;
	bench_gw_read_stages(sut.port, 1, &st1);
	bench_gw_note_phase("moves_open_loop", r, ph, secs);
	bench_gw_note_stages(r, "moves_open_loop", &st0, &st1);
	fflush(stdout);
	res->open_per_s = (double)ph->ok / secs;
	res->open_p99_ms = (double)bench_hist_quantile(&ph->h, 0.99) / 1000.0;
	bench_gw_sut_sample(&sut);

	if (bench_gw_sut_check(&sut, why, wl))
		goto out;
	if (cfg->ws_clients && bench_gw_ws_phase(cfg, &sut, r, res, why, wl))
		goto out;
	if (bench_gw_sut_check(&sut, why, wl))
		goto out;
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
	        "Argon2id), more gateway processes beside it when asked, and drives them over\n"
	        "HTTP/1.1 keep-alive from here and over WebSockets from client processes:\n"
	        "  (a) authenticated moves, closed loop: moves/s and p50/p99 from send to the\n"
	        "      200 (durable outcome included), against a civetweb handler answering\n"
	        "      200 {} at once, same client, same concurrency;\n"
	        "  (b) the same moves, open loop at --rest-rate: p99 from the scheduled send;\n"
	        "  (c) W WebSockets, each its own player, in clusters of %d within one area of\n"
	        "      interest; moves at --ws-rate; time from a move's send to its world.update\n"
	        "      at each socket of its cluster; every expected delivery is counted.\n"
	        "(a) and (b) go to the backend's gateway; in (c) socket i connects to gateway\n"
	        "i %% N, so a cluster's sockets are spread over the gateways (deliveries cross\n"
	        "them through the log's bus).\n"
	        "  --duration S         seconds per phase (default 8)\n"
	        "  --clients C          HTTP client threads and connections (default 256, max %d)\n"
	        "  --players P          players of the REST phases (default: max(W, 1024));\n"
	        "                       the first W of them have the sockets\n"
	        "  --rest-rate N        moves/s offered in (b) (default 10000)\n"
	        "  --ws-clients W       WebSockets (default 40000, 0 = no phase (c))\n"
	        "  --ws-rate N          moves/s in (c), in total over the client processes\n"
	        "                       (default 5000; <= 18 per player)\n"
	        "  --ws-moves socket|rest  moves of (c) as {\"op\":\"move\"} over the sockets\n"
	        "                       (default) or as POST /api/players/move (from the client\n"
	        "                       processes, C in total, to the gateways in turn)\n"
	        "  --gateways N         gateway processes (max %d): the backend's, plus N-1 more\n"
	        "                       on its tcp ingest and bus, sharing its data folder and\n"
	        "                       Redis (default: the fewest with at most %d sockets\n"
	        "                       each, so 1 up to %d sockets, 3 for 40000)\n"
	        "  --ws-procs M         WebSocket client processes (max %d), each with whole\n"
	        "                       clusters (default: the fewest with at most %d sockets\n"
	        "                       each)\n"
	        "  --ws-threads T       epoll threads of the WebSocket clients in total, at least\n"
	        "                       one per client process (default 2, max 16)\n"
	        "  --http-threads N     each gateway's civetweb workers (default C + 64; a server\n"
	        "                       with a worker per WebSocket needs C + W + 64)\n"
	        "  --runs R             runs; each is printed, then the medians (default 1)\n"
	        "  --soak MINUTES       instead of the benchmark: rounds of (b) and (c) for\n"
	        "                       MINUTES, the backend's RSS, descriptors and threads\n"
	        "                       after each; exit 1 if they grow after the first round\n"
	        "  --data DIR           where the temporary folder goes (default $TMPDIR or /tmp)\n"
	        "  --redis-server PATH  (default /usr/bin/redis-server)\n"
	        "  --sync full|none     the log's commits (default full)\n"
	        "Every option may also come from MMO_<OPTION>, e.g. MMO_WS_CLIENTS.\n"
	        "RLIMIT_NOFILE is raised to its hard limit, which every process inherits; the\n"
	        "run stops with exit status 1 if a process would need more: the backend its\n"
	        "share of W + 3C + %d, another gateway its share + %d, a client process its\n"
	        "sockets (+ its REST connections) + %d, this process 3C + %d.\n"
	        "The last line of the output is (p99_ms is (b)'s, ws_* are (c)'s over all\n"
	        "client processes, rss_mb the sum of the peak RSS (VmHWM) of the backend and\n"
	        "of every gateway process, the client processes not counted):\n"
	        "  gateway moves_per_s=N p99_ms=N ratio_vs_http_ceiling=R ws_clients=N\n"
	        "          ws_moves_per_s=N ws_deliveries_per_s=N ws_p99_ms=N rss_mb=N\n"
	        "Exit status: 0 measured, 1 failed, 2 bad usage.\n",
	        CLUSTER, CLIENTS_MAX, PROCS_MAX, SOCKETS_PER_PROC, SOCKETS_PER_PROC, PROCS_MAX,
	        SOCKETS_PER_PROC, FD_SPARE, FD_SPARE, FD_SPARE, FD_SPARE);
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

static int parse_config(int argc, char **argv, struct bench_gw_config *cfg)
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
	                                   {"gateways", required_argument, 0, 'g'},
	                                   {"ws-procs", required_argument, 0, 'P'},
	                                   {"soak", required_argument, 0, 'K'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {0, 0, 0, 0}};
	const char *a_d = NULL, *a_c = NULL, *a_p = NULL, *a_R = NULL, *a_w = NULL, *a_r = NULL,
	           *a_m = NULL, *a_t = NULL, *a_H = NULL, *a_n = NULL, *a_D = NULL, *a_S = NULL,
	           *a_y = NULL, *a_g = NULL, *a_P = NULL, *a_K = NULL, *s;
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
		case 'K': a_K = optarg; break;
		case 'm': a_m = optarg; break;
		case 't': a_t = optarg; break;
		case 'H': a_H = optarg; break;
		case 'n': a_n = optarg; break;
		case 'D': a_D = optarg; break;
		case 'S': a_S = optarg; break;
		case 'y': a_y = optarg; break;
		case 'g': a_g = optarg; break;
		case 'P': a_P = optarg; break;
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
	    !parse_u("runs", cli_opt("runs", a_n, "1"), 1, RUNS_MAX, &cfg->runs) ||
	    !parse_u("soak", cli_opt("soak", a_K, "0"), 0, 600, &cfg->soak_minutes))
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
	/* Processes: the fewest that keep each under SOCKETS_PER_PROC sockets. */
	{
		unsigned need = (cfg->ws_clients + SOCKETS_PER_PROC - 1) / SOCKETS_PER_PROC;
		unsigned nc = (cfg->ws_clients + CLUSTER - 1) / CLUSTER;

		need = need ? need : 1;
		a_g = cli_opt("gateways", a_g, NULL);
		a_P = cli_opt("ws-procs", a_P, NULL);
		cfg->gateways_auto = !a_g;
		cfg->ws_procs_auto = !a_P;
		cfg->gateways = need;
		cfg->ws_procs = cfg->ws_clients ? need : 0;
		if ((a_g && !parse_u("gateways", a_g, 1, PROCS_MAX, &cfg->gateways)) ||
		    (a_P && !parse_u("ws-procs", a_P, 1, PROCS_MAX, &cfg->ws_procs)))
			return EXIT_USAGE;
		if (!cfg->ws_clients)
			cfg->ws_procs = 0;
		if (cfg->gateways > PROCS_MAX || cfg->ws_procs > PROCS_MAX) {
			cli_err(CMD, "%u WebSockets need more than %d processes of %d sockets",
			        cfg->ws_clients, PROCS_MAX, SOCKETS_PER_PROC);
			return EXIT_USAGE;
		}
		if (cfg->ws_procs > nc) {
			cli_err(CMD, "--ws-procs %u is more than the %u clusters of %u WebSockets",
			        cfg->ws_procs, nc, cfg->ws_clients);
			return EXIT_USAGE;
		}
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

/* The descriptors each kind of process needs at most: this one (the REST
 * clients and the ceiling server), the backend (its share of the sockets
 * and the REST phases), another gateway, a WebSocket client process. */
struct fd_plan {
	rlim_t bench, backend, gateway, client;
};

static void fd_plan(const struct bench_gw_config *cfg, struct fd_plan *p)
{
	unsigned n0 = 0, first, n;

	/* Socket i goes to gateway i % N: the first gateways get one more. */
	n0 = (cfg->ws_clients + cfg->gateways - 1) / cfg->gateways;
	p->bench = 3 * (rlim_t)cfg->clients + FD_SPARE;
	p->backend = n0 + 3 * (rlim_t)cfg->clients + FD_SPARE;
	p->gateway = cfg->gateways > 1 ? n0 + (rlim_t)FD_SPARE : 0;
	p->client = 0;
	for (unsigned k = 0; k < cfg->ws_procs; k++) {
		rlim_t need;

		bench_gw_slice(cfg, k, &first, &n);
		need = n + (cfg->ws_socket ? 0 : (rlim_t)cfg->clients) + FD_SPARE;
		if (need > p->client)
			p->client = need;
	}
}

/* The most sockets one client process has. */
static unsigned max_slice(const struct bench_gw_config *cfg)
{
	unsigned m = 0, first, n;

	for (unsigned k = 0; k < cfg->ws_procs; k++) {
		bench_gw_slice(cfg, k, &first, &n);
		m = n > m ? n : m;
	}
	return m;
}

/* Raise RLIMIT_NOFILE to its hard limit (and the hard limit to the need
 * when privileged); false (with a message) when it stays below what a
 * process of the run needs. Every child inherits it. */
static bool raise_nofile(const struct bench_gw_config *cfg)
{
	struct fd_plan p;
	rlim_t need;
	struct rlimit rl;

	fd_plan(cfg, &p);
	need = p.bench;
	need = p.backend > need ? p.backend : need;
	need = p.gateway > need ? p.gateway : need;
	need = p.client > need ? p.client : need;
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
	printf("bench gateway: fd limit %llu (hard %llu) for every process; needed at most: "
	       "bench %llu, backend %llu, other gateway %llu, ws client process %llu\n",
	       (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
	       (unsigned long long)p.bench, (unsigned long long)p.backend,
	       (unsigned long long)p.gateway, (unsigned long long)p.client);
	if (cfg->ws_clients)
		printf("bench gateway: gateways=%u (%s) ws_procs=%u (%s), at most %u sockets per "
		       "gateway and %u per client process\n",
		       cfg->gateways, cfg->gateways_auto ? "automatic" : "--gateways",
		       cfg->ws_procs, cfg->ws_procs_auto ? "automatic" : "--ws-procs",
		       (cfg->ws_clients + cfg->gateways - 1) / cfg->gateways, max_slice(cfg));
	if (rl.rlim_cur < need) {
		cli_err(CMD,
		        "RLIMIT_NOFILE hard limit %llu is below the %llu a process of this run "
		        "needs (ulimit -Hn, more --gateways or --ws-procs, or fewer --ws-clients)",
		        (unsigned long long)rl.rlim_max, (unsigned long long)need);
		return false;
	}
	return true;
}

/* Fork gateway k (1..N-1) of sut: it waits for a byte on *go, then
 * writes its port on *port (the parent's ends, kept). 0 or -1 with why. */
static int fork_gateway(const struct bench_gw_config *cfg, unsigned k, const char *dir,
                        unsigned redis_port, const char *ingest, const char *bus, int *go,
                        int *port, char *why, size_t wl)
{
	int gp[2], pp[2];
	pid_t pid;

	if (bench_gw_pipe(gp) || bench_gw_pipe(pp)) {
		snprintf(why, wl, "pipe: %s", strerror(errno));
		return -1;
	}
	*go = gp[1];
	*port = pp[0];
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		snprintf(why, wl, "fork: %s", strerror(errno));
		bench_gw_fd_close(&gp[0]);
		bench_gw_fd_close(&pp[1]);
		return -1;
	}
	if (pid == 0) {
		struct bench_gwproc_opts go_ = {.dir = dir,
		                                .redis_port = redis_port,
		                                .ingest = ingest,
		                                .bus = bus,
		                                .go_fd = gp[0],
		                                .fd = pp[1],
		                                .gw = {.http_threads = (int)cfg->http_threads,
		                                       .ws_max = (int)cfg->ws_clients + 16,
		                                       .aoi_radius = AOI,
		                                       .jwt_key = JWT_KEY,
		                                       .token_ttl_s = TOKEN_TTL_S}};

		bench_gw_fd_close_kept(gp[0], pp[1]);
		bench_gwproc_main(&go_);
	}
	sut.pid[k] = pid;
	bench_gw_fd_close(&gp[0]);
	bench_gw_fd_close(&pp[1]);
	return 0;
}

int bench_gateway(int argc, char **argv)
{
	struct bench_gw_config cfg = {0};
	struct sigaction sa = {0}, old_int, old_term, old_pipe;
	char root[4096] = "", dir[4200], why[512] = "", ingest[64] = "", bus[64] = "";
	double v_rate[RUNS_MAX], v_p99[RUNS_MAX], v_ratio[RUNS_MAX], v_wsp99[RUNS_MAX],
	    v_ceil[RUNS_MAX], v_p50[RUNS_MAX], v_wsp50[RUNS_MAX], v_open[RUNS_MAX],
	    v_closed99[RUNS_MAX], v_wsrate[RUNS_MAX], v_wsdps[RUNS_MAX];
	unsigned redis_port = 0, ws_open_min = ~0u;
	uint64_t missing = 0;
	struct mg_context *mg = NULL;
	struct player *pl = NULL;
	int pfd[2] = {-1, -1}, go[PROCS_MAX], gport[PROCS_MAX], ceil_port = 0, rc;
	const char *base;
	int64_t t_setup;

	for (unsigned k = 0; k < PROCS_MAX; k++)
		go[k] = gport[k] = -1;
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
	memset(&sut, 0, sizeof(sut));
	sut.n = cfg.gateways;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, &old_pipe);

	printf("bench gateway: duration=%u clients=%u players=%u rest_rate=%u ws_clients=%u "
	       "ws_rate=%u ws_moves=%s ws_threads=%u http_threads=%u gateways=%u ws_procs=%u "
	       "runs=%u sync=%s aoi_radius=%.1f cluster=%u fanout_per_move=%u cpus=%ld "
	       "data=%s\n",
	       cfg.duration, cfg.clients, cfg.players, cfg.rest_rate, cfg.ws_clients, cfg.ws_rate,
	       cfg.ws_socket ? "socket" : "rest", cfg.ws_threads, cfg.http_threads, cfg.gateways,
	       cfg.ws_procs, cfg.runs, cfg.nosync ? "none" : "full", AOI, CLUSTER, CLUSTER,
	       sysconf(_SC_NPROCESSORS_ONLN), root);
	fflush(stdout);

	/* Redis, the extra gateways (waiting for the backend; forked first so
	 * that they do not carry the players), players, sessions and tokens,
	 * the backend, then the client processes: all before this process has
	 * any thread. */
	t_setup = mmo_mono_us();
	snprintf(dir, sizeof(dir), "%s/redis", root);
	if (mkdir(dir, 0750)) {
		snprintf(why, sizeof(why), "cannot create %.300s: %s", dir, strerror(errno));
		goto fail;
	}
	if (redis_start(&cfg, dir, &redis_port, why, sizeof(why)))
		goto fail;
	snprintf(dir, sizeof(dir), "%s/data", root);
	if (mkdir(dir, 0750)) {
		snprintf(why, sizeof(why), "cannot create %.300s: %s", dir, strerror(errno));
		goto fail;
	}
	if (cfg.gateways > 1) {
		unsigned pi = bench_free_port(), pb = bench_free_port();

		if (!pi || !pb || pi == pb) {
			snprintf(why, sizeof(why), "no free ports for the log's ingest and bus");
			goto fail;
		}
		snprintf(ingest, sizeof(ingest), "tcp://127.0.0.1:%u", pi);
		snprintf(bus, sizeof(bus), "tcp://127.0.0.1:%u", pb);
	}
	for (unsigned k = 1; k < cfg.gateways; k++)
		if (fork_gateway(&cfg, k, dir, redis_port, ingest, bus, &go[k], &gport[k], why,
		                 sizeof(why)))
			goto fail;
	pl = calloc(cfg.players, sizeof(*pl));
	if (!pl) {
		snprintf(why, sizeof(why), "out of memory");
		goto fail;
	}
	place_players(pl, cfg.players);
	if (bench_players_issue(pl, cfg.players, JWT_KEY, TOKEN_TTL_S, why, sizeof(why)))
		goto fail;
	if (bench_players_sessions(pl, cfg.players, redis_port, TOKEN_TTL_S, why, sizeof(why)))
		goto fail;
	if (bench_gw_pipe(pfd)) {
		snprintf(why, sizeof(why), "pipe: %s", strerror(errno));
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
			    .ingest = ingest[0] ? ingest : NULL,
			    .bus = bus[0] ? bus : NULL,
			    .fd = pfd[1],
			    .nosync = cfg.nosync,
			    .pl = pl,
			    .n = cfg.players,
			    .hop_wait_us =
			        (int64_t)(max_hop(pl, cfg.players) / MAX_SPEED * 1e6) + 500000,
			    .gw = {.http_threads = (int)cfg.http_threads,
			           .ws_max = (int)cfg.ws_clients + 16,
			           .aoi_radius = AOI,
			           .jwt_key = JWT_KEY,
			           .token_ttl_s = TOKEN_TTL_S}};

			bench_gw_fd_close_kept(pfd[1], -1);
			bench_backend_main(&bo);
		}
		sut.pid[0] = pid;
	}
	bench_gw_fd_close(&pfd[1]);
	sut.port[0] = bench_gw_read_port(pfd[0], 300000);
	bench_gw_fd_close(&pfd[0]);
	if (!sut.port[0]) {
		snprintf(why, sizeof(why), "the backend did not start (see its error above)");
		goto fail;
	}
	fprintf(stderr, "bench: backend pid %d, gateway on 127.0.0.1:%d, redis on %u%s%s%s%s\n",
	        (int)sut.pid[0], sut.port[0], redis_port, ingest[0] ? ", ingest " : "", ingest,
	        bus[0] ? ", bus " : "", bus);
	/* The log is up: the other gateways may start. */
	for (unsigned k = 1; k < cfg.gateways; k++) {
		char one = 1;

		if (write(go[k], &one, 1) != 1) {
			snprintf(why, sizeof(why), "gateway %u: %s", k, strerror(errno));
			goto fail;
		}
		bench_gw_fd_close(&go[k]);
	}
	for (unsigned k = 1; k < cfg.gateways; k++) {
		sut.port[k] = bench_gw_read_port(gport[k], 60000);
		bench_gw_fd_close(&gport[k]);
		if (!sut.port[k]) {
			snprintf(why, sizeof(why), "gateway %u did not start (see its error above)",
			         k);
			goto fail;
		}
		fprintf(stderr, "bench: gateway %u pid %d on 127.0.0.1:%d\n", k, (int)sut.pid[k],
		        sut.port[k]);
	}
	if (check_players(pl, cfg.players, redis_port, why, sizeof(why)))
		goto fail;
	fprintf(stderr, "bench: %u players placed in %.1f s (a sample checked in the view)\n",
	        cfg.players, (double)(mmo_mono_us() - t_setup) / 1e6);
	for (unsigned i = 0; i < cfg.players; i++)
		pl[i].last_ok = mmo_mono_us();
	if (cfg.ws_procs && bench_gw_ws_fork(&cfg, pl, why, sizeof(why)))
		goto fail;
	bench_gw_note_limits("bench", 0, getpid());
	bench_gw_note_limits("backend", 0, sut.pid[0]);
	for (unsigned k = 1; k < cfg.gateways; k++)
		bench_gw_note_limits("gateway", k, sut.pid[k]);
	bench_gw_ws_note_limits();

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

	if (cfg.soak_minutes) {
		if (bench_gw_soak(&cfg, pl, &sut, why, sizeof(why)))
			goto fail;
		rc = EXIT_OK;
		goto out;
	}
	for (unsigned r = 0; r < cfg.runs; r++) {
		struct bench_gw_result res = {0};

		if (one_run(&cfg, pl, ceil_port, r + 1, &res, why, sizeof(why)))
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
		double rss_mb = 0;

		bench_gw_sut_sample(&sut);
		for (unsigned k = 0; k < sut.n; k++)
			rss_mb += (double)sut.peak_kb[k] / 1024.0;

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
		printf("target: ws_p99_ms <= 50 with 40000 clients: %s\n",
		       ws_open_min < 40000 ? "not measured (fewer clients)"
		       : m_ws99 <= 50      ? "met"
		                           : "MISSED");
		printf("target: no expected WebSocket delivery missing: %s\n",
		       missing ? "MISSED" : "met");
		printf("target: rss_mb < 2048 (backend + %u gateway processes): %s\n", sut.n - 1,
		       rss_mb < 2048 ? "met" : "MISSED");
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
	cli_err(CMD, "%s", bench_gw_interrupted ? "interrupted" : why);
	rc = EXIT_FAIL;
out:
	if (mg)
		mg_stop(mg);
	/* The clients first (they hold the gateways' sockets), then the
	 * gateways, the backend, Redis. Each gets SIGTERM, then SIGKILL. */
	bench_gw_ws_stop();
	for (unsigned k = 1; k < PROCS_MAX; k++) {
		bench_gw_fd_close(&go[k]); /* a gateway still waiting for the go: end of file */
		bench_gw_fd_close(&gport[k]);
	}
	for (unsigned k = 1; k < PROCS_MAX; k++)
		bench_gw_child_stop(&sut.pid[k], SIGTERM, 10000);
	bench_gw_child_stop(&sut.pid[0], SIGTERM, 20000);
	bench_gw_child_stop(&redis_pid, SIGTERM, 3000);
	bench_gw_fd_close(&pfd[0]);
	bench_gw_fd_close(&pfd[1]);
	free(pl);
	bench_rm_tree(root);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGPIPE, &old_pipe, NULL);
	return rc;
}
