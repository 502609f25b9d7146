/* serve.c - `mmo serve`: run the backend's roles in one process. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gateway/gateway.h"
#include "log/evlog.h"
#include "projector/views/views.h"
#include "projector/world/world.h"
#include "schemas/mmo_util.h"

#define ROLES_BUILT "log,world,views,gateway"

static void help(FILE *f)
{
	fprintf(f,
	        "usage: mmo serve [options]\n"
	        "  --data DIR         data folder (default ./data); the log lives in DIR/log\n"
	        "  --roles LIST       roles to run, comma-separated (default: " ROLES_BUILT ")\n"
	        "  --ingest ENDPOINT  the log's ingest ROUTER (default inproc://mmo-ingest, or\n"
	        "                     tcp://127.0.0.1:5555 when the log runs alone)\n"
	        "  --bus ENDPOINT     the log's PUB bus (default inproc://mmo-bus, or\n"
	        "                     tcp://127.0.0.1:5556 when the log runs alone)\n"
	        "  --insecure         let the log bind --ingest or --bus on an address other\n"
	        "                     than loopback; they have no authentication yet, so\n"
	        "                     anyone who reaches them can append and read\n"
	        "  --sync full|none   fsync each commit (default full); none is for benchmarks\n"
	        "                     only and loses acknowledged events on a crash\n"
	        "  --map-size SIZE    maximum log size, e.g. 16G (default 16G); past it writes\n"
	        "                     are refused with `full`\n"
	        "  --queue-max N      pending events before low/medium get `busy` (default 8192)\n"
	        "  --batch-max N      events per commit (default 1024)\n"
	        "  --snapshot-every N world snapshot every N events (default 10000)\n"
	        "  --world-seed N     the world's random seed (default: the stored one, or 1)\n"
	        "  --redis URL        the Redis view's server (default redis://127.0.0.1:6379)\n"
	        "  --mongo-uri URI    the MongoDB view's server (default: none, the view is off)\n"
	        "  --mongo-db NAME    the MongoDB view's database (default mmo)\n"
	        "  --http-threads N   gateway worker threads (default 64); civetweb holds one\n"
	        "                     per open WebSocket, so allow for them\n"
	        "  --ws-max N         open WebSockets at most (default 10000)\n"
	        "  --http ADDR:PORT   the gateway's REST and WebSocket listener\n"
	        "                     (default 127.0.0.1:8080); its signing key comes from\n"
	        "                     MMO_JWT_KEY, else DATA/jwt.key (made at first start)\n"
	        "Every option may also come from MMO_<OPTION>, e.g. MMO_DATA.\n"
	        "Stops cleanly on SIGTERM or SIGINT: commits what it has received, exits 0.\n");
}

/* Whether the log may bind ep without authentication: inproc and ipc, or
 * tcp/ws on a loopback host (127.x.x.x, ::1, localhost). Everything else
 * (another address, "*", an interface name, another transport) reaches
 * the network. */
static bool endpoint_is_local(const char *ep)
{
	const char *host, *colon;
	char h[256];
	size_t n;

	if (!strncmp(ep, "inproc://", 9) || !strncmp(ep, "ipc://", 6))
		return true;
	if (!strncmp(ep, "tcp://", 6))
		host = ep + 6;
	else if (!strncmp(ep, "ws://", 5))
		host = ep + 5;
	else
		return false;
	colon = strrchr(host, ':');
	if (!colon)
		return false;
	n = (size_t)(colon - host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(h))
		return false;
	memcpy(h, host, n);
	h[n] = 0;
	if (!strcmp(h, "localhost") || !strcmp(h, "::1"))
		return true;
	if (strncmp(h, "127.", 4))
		return false;
	for (const char *c = h + 4; *c; c++) {
		if (!(*c == '.' || (*c >= '0' && *c <= '9')))
			return false;
	}
	return true;
}

/* Create the data folder (one level) if absent. */
static int mkdir_p_data(const char *dir, char *msg, size_t msglen)
{
	if (mkdir(dir, 0750) == 0 || errno == EEXIST)
		return 0;
	snprintf(msg, msglen, "cannot create data folder %s: %s", dir, strerror(errno));
	return -1;
}

static bool has_role(const char *list, const char *role)
{
	size_t n = strlen(role);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncmp(p, role, n))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* Is every role of list also in built? bad receives the first that is not. */
static bool role_list_within(const char *list, const char *built, char *bad, size_t badlen)
{
	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char role[32];

		snprintf(role, sizeof(role), "%.*s", (int)(len < 31 ? len : 31), p);
		if (!has_role(built, role)) {
			snprintf(bad, badlen, "%s", role);
			return false;
		}
		p = end ? end + 1 : NULL;
	}
	return true;
}

/* Everything the process runs, for the gateway's /metrics. */
struct roles {
	evlog_server *srv;
	world_runner *world;
	views_runner *views;
};

static size_t roles_metrics(void *arg, char *buf, size_t cap)
{
	struct roles *r = arg;
	size_t n = 0;

	if (!cap)
		return 0;
	buf[0] = 0;
	if (r->srv) {
		struct evlog_stats st;

		evlog_server_stats(r->srv, &st);
		n += evlog_stats_format(&st, buf + n, cap - n);
	}
	if (r->world && n + 1 < cap) {
		struct world_runner_status ws;
		int w;

		world_runner_status(r->world, false, &ws);
		w = snprintf(
		    buf + n, cap - n,
		    "# TYPE mmo_world_seq gauge\nmmo_world_seq %llu\n"
		    "# TYPE mmo_world_intents_total counter\nmmo_world_intents_total %llu\n"
		    "# TYPE mmo_world_outcomes_sent_total counter\n"
		    "mmo_world_outcomes_sent_total %llu\n"
		    "# TYPE mmo_world_snapshots_total counter\nmmo_world_snapshots_total %llu\n"
		    "# TYPE mmo_world_errors_total counter\nmmo_world_errors_total %llu\n",
		    (unsigned long long)ws.seq, (unsigned long long)ws.intents,
		    (unsigned long long)ws.appended, (unsigned long long)ws.snapshots,
		    (unsigned long long)ws.errors);
		if (w > 0)
			n = n + (size_t)w < cap ? n + (size_t)w : cap - 1;
	}
	if (r->views && n + 1 < cap)
		n += views_runner_metrics(r->views, buf + n, cap - n);
	if (n + 1 < cap) {
		const char *subs[3];
		size_t ns = 0;

		if (r->world)
			subs[ns++] = "world";
		if (r->views)
			subs[ns++] = "views";
		subs[ns++] = "gateway"; /* these metrics are the gateway's page */
		n += evlog_sub_metrics_format(subs, ns, buf + n, cap - n);
	}
	return n < cap ? n : cap - 1;
}

/* The views' part of the gateway's /health. */
static bool views_health(void *arg, char *why, size_t whylen, char *detail, size_t detlen)
{
	views_runner *v = arg;
	struct views_status st;
	bool redis_on = views_runner_status(v, "redis", &st) == MMO_OK;
	bool mongo_on = views_runner_status(v, "mongo", &st) == MMO_OK;

	snprintf(detail, detlen, "redis %s, mongo %s", redis_on ? "on" : "off",
	         mongo_on ? "on" : "off (no --mongo-uri)");
	return views_runner_healthy(v, why, whylen);
}

static bool roles_valid(const char *list, char *bad, size_t badlen)
{
	static const char *known[] = {"log", "world", "views", "gateway"};

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		bool ok = false;

		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok |= len == strlen(known[i]) && !strncmp(p, known[i], len);
		if (!ok || len == 0) {
			snprintf(bad, badlen, "%.*s", (int)len, p);
			return false;
		}
		p = end ? end + 1 : NULL;
	}
	return true;
}

int cmd_serve(int argc, char **argv)
{
	static const struct option lo[] = {{"data", required_argument, 0, 'd'},
	                                   {"roles", required_argument, 0, 'r'},
	                                   {"ingest", required_argument, 0, 'i'},
	                                   {"bus", required_argument, 0, 'b'},
	                                   {"sync", required_argument, 0, 's'},
	                                   {"map-size", required_argument, 0, 'm'},
	                                   {"queue-max", required_argument, 0, 'q'},
	                                   {"batch-max", required_argument, 0, 'B'},
	                                   {"http", required_argument, 0, 'H'},
	                                   {"redis", required_argument, 0, 'R'},
	                                   {"mongo-uri", required_argument, 0, 'M'},
	                                   {"help", no_argument, 0, 'h'},
	                                   {"snapshot-every", required_argument, 0, 'S'},
	                                   {"world-seed", required_argument, 0, 'W'},
	                                   {"mongo-db", required_argument, 0, 'D'},
	                                   {"http-threads", required_argument, 0, 'T'},
	                                   {"ws-max", required_argument, 0, 'X'},
	                                   {"insecure", no_argument, 0, 'I'},
	                                   {0, 0, 0, 0}};
	const char *a_data = NULL, *a_roles = NULL, *a_ingest = NULL, *a_bus = NULL, *a_sync = NULL,
	           *a_map = NULL, *a_q = NULL, *a_b = NULL;
	const char *data, *roles, *ingest, *bus, *sync;
	struct evlog_opts lo_opts = {0};
	struct evlog_server_opts so = {0};
	evlog_server *srv = NULL;
	evlog *log = NULL;
	void *zctx = NULL;
	char logdir[4096], msg[512], bad[64];
	uint64_t qmax = 0, bmax = 0, snap_every = 0, seed = 0;
	const char *a_snap = NULL, *a_seed = NULL;
	world_runner *wrun = NULL;
	views_runner *vrun = NULL;
	gw *gwy = NULL;
	struct roles rs = {0};
	const char *a_redis = NULL, *a_mongo = NULL, *a_mongo_db = NULL, *redis, *mongo;
	const char *a_http = NULL, *http, *a_threads = NULL, *a_wsmax = NULL;
	uint64_t http_threads = 0, ws_max = 0;
	bool run_log, run_world, run_views, run_gw;
	sigset_t set;
	int c, sig, rc = EXIT_FAIL;
	bool alone, insecure = false;

	optind = 1;
	opterr = 0; /* one line of our own instead of getopt's and the usage */
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': a_data = optarg; break;
		case 'r': a_roles = optarg; break;
		case 'i': a_ingest = optarg; break;
		case 'b': a_bus = optarg; break;
		case 's': a_sync = optarg; break;
		case 'm': a_map = optarg; break;
		case 'q': a_q = optarg; break;
		case 'B': a_b = optarg; break;
		case 'S': a_snap = optarg; break;
		case 'W': a_seed = optarg; break;
		case 'R': a_redis = optarg; break;
		case 'M': a_mongo = optarg; break;
		case 'D': a_mongo_db = optarg; break;
		case 'H': a_http = optarg; break;
		case 'T': a_threads = optarg; break;
		case 'X': a_wsmax = optarg; break;
		case 'I': insecure = true; break;
		case 'h': help(stdout); return EXIT_OK;
		default:
			cli_err("serve", "unrecognized option '%s' (see mmo serve --help)",
			        argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		cli_err("serve", "unexpected argument '%s' (see mmo serve --help)", argv[optind]);
		return EXIT_USAGE;
	}
	data = cli_opt("data", a_data, "./data");
	roles = cli_opt("roles", a_roles, ROLES_BUILT);
	sync = cli_opt("sync", a_sync, "full");
	if (!roles_valid(roles, bad, sizeof(bad))) {
		cli_err("serve", "unknown role '%s' (roles: log, world, views, gateway)", bad);
		return EXIT_USAGE;
	}
	if (!role_list_within(roles, ROLES_BUILT, bad, sizeof(bad))) {
		cli_err("serve", "role '%s' is not part of this build yet (built: " ROLES_BUILT ")",
		        bad);
		return EXIT_USAGE;
	}
	run_log = has_role(roles, "log");
	run_world = has_role(roles, "world");
	run_views = has_role(roles, "views");
	run_gw = has_role(roles, "gateway");
	http = cli_opt("http", a_http, "127.0.0.1:8080");
	a_threads = cli_opt("http-threads", a_threads, NULL);
	a_wsmax = cli_opt("ws-max", a_wsmax, NULL);
	if ((a_threads && (!cli_parse_u64(a_threads, &http_threads) || http_threads == 0 ||
	                   http_threads > 20000)) ||
	    (a_wsmax && (!cli_parse_u64(a_wsmax, &ws_max) || ws_max == 0 || ws_max > 100000))) {
		cli_err("serve", "--http-threads takes 1..20000 and --ws-max 1..100000");
		return EXIT_USAGE;
	}
	redis = cli_opt("redis", a_redis, "redis://127.0.0.1:6379");
	mongo = cli_opt("mongo-uri", a_mongo, NULL);
	a_mongo_db = cli_opt("mongo-db", a_mongo_db, NULL);
	if (strcmp(sync, "full") && strcmp(sync, "none")) {
		cli_err("serve", "--sync must be full or none, not '%s'", sync);
		return EXIT_USAGE;
	}
	a_map = cli_opt("map-size", a_map, NULL);
	if (a_map && !cli_parse_size(a_map, &lo_opts.map_size)) {
		cli_err("serve", "--map-size: '%s' is not a size (e.g. 512M, 16G)", a_map);
		return EXIT_USAGE;
	}
	a_q = cli_opt("queue-max", a_q, NULL);
	a_b = cli_opt("batch-max", a_b, NULL);
	if ((a_q && (!cli_parse_u64(a_q, &qmax) || qmax == 0 || qmax > 1000000)) ||
	    (a_b && (!cli_parse_u64(a_b, &bmax) || bmax == 0 || bmax > 65536))) {
		cli_err("serve", "--queue-max takes 1..1000000 and --batch-max 1..65536");
		return EXIT_USAGE;
	}
	a_snap = cli_opt("snapshot-every", a_snap, NULL);
	a_seed = cli_opt("world-seed", a_seed, NULL);
	if ((a_snap && (!cli_parse_u64(a_snap, &snap_every) || snap_every == 0)) ||
	    (a_seed && (!cli_parse_u64(a_seed, &seed) || seed == 0))) {
		cli_err("serve", "--snapshot-every and --world-seed take a number >= 1");
		return EXIT_USAGE;
	}
	/* Alone, a role talks over TCP so that the other roles can reach it. */
	alone = !run_log || !(run_world || run_views || run_gw);
	ingest =
	    cli_opt("ingest", a_ingest, alone ? "tcp://127.0.0.1:5555" : "inproc://mmo-ingest");
	bus = cli_opt("bus", a_bus, alone ? "tcp://127.0.0.1:5556" : "inproc://mmo-bus");
	/* The log's sockets have no authentication until CURVE: bind them off
	 * loopback only when asked to. Other roles connect, they do not bind. */
	if (run_log) {
		const char *a_insecure = cli_opt("insecure", insecure ? "1" : NULL, NULL);

		insecure = a_insecure && strcmp(a_insecure, "0") && strcmp(a_insecure, "");
		for (int i = 0; i < 2; i++) {
			const char *name = i ? "--bus" : "--ingest", *ep = i ? bus : ingest;

			if (endpoint_is_local(ep))
				continue;
			if (!insecure) {
				cli_err("serve",
				        "%s %s is not a loopback address and the log has no "
				        "authentication; pass --insecure to serve it anyway",
				        name, ep);
				return EXIT_USAGE;
			}
			mmo_logf(MMO_LOG_WARN, "serve",
			         "--insecure: %s %s accepts anyone who can reach it, without "
			         "authentication",
			         name, ep);
		}
	}

	/* Signals go to sigwait() below, not to the worker threads. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (mkdir_p_data(data, msg, sizeof(msg))) {
		cli_err("serve", "%s", msg);
		return EXIT_FAIL;
	}
	snprintf(logdir, sizeof(logdir), "%s/log", data);
	lo_opts.dir = logdir;
	lo_opts.nosync = !strcmp(sync, "none");
	lo_opts.readonly = !run_log;
	if (lo_opts.nosync && run_log)
		mmo_logf(
		    MMO_LOG_WARN, "serve",
		    "--sync=none: commits are not fsynced; acknowledged events can be lost on a "
		    "crash. For benchmarks only.");
	int err = evlog_open(&lo_opts, &log, msg, sizeof(msg));
	if (err && run_log) {
		cli_err("serve", "%s", msg);
		return EXIT_FAIL;
	}
	if (err)
		log = NULL; /* a world on another host: everything over the ingest */
	zctx = zmq_ctx_new();
	if (run_log) {
		so.log = log;
		so.zctx = zctx;
		so.ingest = ingest;
		so.bus = bus;
		so.queue_max = (size_t)qmax;
		so.batch_max = (size_t)bmax;
		err = evlog_server_start(&so, &srv, msg, sizeof(msg));
		if (err) {
			mmo_logf(MMO_LOG_ERROR, "serve", "log failed to start: %s", msg);
			goto out;
		}
	}
	if (run_world) {
		struct world_runner_opts wo = {0};

		wo.log = log;
		wo.zctx = zctx;
		wo.ingest = ingest;
		wo.bus = bus;
		wo.data_dir = data;
		wo.snapshot_every = snap_every;
		wo.seed = seed;
		err = world_runner_start(&wo, &wrun, msg, sizeof(msg));
		if (err) {
			mmo_logf(MMO_LOG_ERROR, "serve", "world failed to start: %s", msg);
			goto out;
		}
	}
	if (run_views) {
		struct views_opts vo = {0};

		vo.log = log;
		vo.zctx = zctx;
		vo.bus = bus;
		vo.ingest = ingest;
		vo.data_dir = data;
		vo.redis_url = redis;
		vo.mongo_uri = mongo;
		vo.mongo_db = a_mongo_db;
		err = views_runner_start(&vo, &vrun, msg, sizeof(msg));
		if (err) {
			mmo_logf(MMO_LOG_ERROR, "serve", "views failed to start: %s", msg);
			goto out;
		}
	}
	if (run_gw) {
		struct gw_opts go = {0};

		go.log = log;
		go.zctx = zctx;
		go.ingest = ingest;
		go.bus = bus;
		go.http = http;
		go.redis_url = redis;
		go.data_dir = data;
		go.http_threads = (int)http_threads;
		go.ws_max = (int)ws_max;
		go.jwt_key = cli_opt("jwt-key", NULL, NULL); /* MMO_JWT_KEY only: never argv */
		if (vrun) {
			go.views_health = views_health;
			go.views_health_arg = vrun;
		}
		rs.srv = srv;
		rs.world = wrun;
		rs.views = vrun;
		go.extra_metrics = roles_metrics;
		go.extra_metrics_arg = &rs;
		err = gw_start(&go, &gwy, msg, sizeof(msg));
		if (err) {
			mmo_logf(MMO_LOG_ERROR, "serve", "gateway failed to start: %s", msg);
			goto out;
		}
		/* Intents are answered at the world's decision, not its commit. */
		if (wrun)
			world_runner_set_decision_hook(wrun, gw_world_decided, gwy);
	}
	uint64_t head = 0;
	if (log)
		evlog_head(log, &head, NULL);
	mmo_logf(MMO_LOG_INFO, "serve",
	         "ready: roles=%s data=%s head_seq=%llu ingest=%s bus=%s sync=%s http=%s pid=%d",
	         roles, data, (unsigned long long)head, ingest, bus, sync, run_gw ? http : "-",
	         (int)getpid());

	do {
		if (sigwait(&set, &sig) != 0)
			sig = SIGTERM;
	} while (sig != SIGINT && sig != SIGTERM);
	mmo_logf(MMO_LOG_INFO, "serve", "stopping on %s: draining and committing",
	         sig == SIGINT ? "SIGINT" : "SIGTERM");
	/* The gateway first (no new intents), then the readers, then the world
	 * (it flushes its last outcomes into the running log), then the log. */
	if (wrun)
		world_runner_set_decision_hook(wrun, NULL, NULL);
	gw_stop(gwy);
	gwy = NULL;
	views_runner_stop(vrun);
	vrun = NULL;
	world_runner_stop(wrun);
	wrun = NULL;
	evlog_server_stop(srv);
	srv = NULL;
	if (log)
		evlog_head(log, &head, NULL);
	mmo_logf(MMO_LOG_INFO, "serve", "stopped: head_seq=%llu", (unsigned long long)head);
	rc = EXIT_OK;
out:
	gw_stop(gwy);
	views_runner_stop(vrun);
	world_runner_stop(wrun);
	evlog_server_stop(srv);
	if (zctx)
		zmq_ctx_term(zctx);
	evlog_close(log);
	return rc;
}
