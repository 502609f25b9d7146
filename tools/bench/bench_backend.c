/* bench_backend.c - the processes under test of `mmo bench gateway`, each
 * a child forked before the bench has any thread.
 *
 * The backend: log (fresh folder), world, views and gateway wired as `mmo
 * serve` wires them, plus the gateway options serve cannot set
 * (http_threads, ws_max, aoi_radius). Before the gateway starts, the
 * bench's players are logged in and placed through the log's ingest
 * (bench_players.c). Its endpoints are inproc, or tcp when more gateways
 * must reach them.
 *
 * An extra gateway: what `mmo serve --roles gateway` runs against a log in
 * another process (remote ingest and bus, the log opened read-only for gap
 * fills), with the same tuning as the backend's gateway. serve has no
 * --aoi-radius, and the bench's clusters need a radius of one unit (at the
 * default 100 every move would reach a whole region), so the bench runs
 * this wiring itself instead of exec'ing serve.
 *
 * Each has its own RSS and CPU; each inherits the bench's RLIMIT_NOFILE.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_backend.h"
#include "bench_util.h"
#include "gateway/gateway.h"
#include "log/evlog.h"
#include "projector/views/views.h"
#include "projector/world/world.h"
#include "schemas/mmo_util.h"

/* SIGINT and SIGTERM go to sigwait() (blocked in every thread to come). */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void wait_stop(const sigset_t *set)
{
	int sig;

	do {
		if (sigwait(set, &sig) != 0)
			sig = SIGTERM;
	} while (sig != SIGINT && sig != SIGTERM);
}

static void tune(struct gw_opts *go, const struct bench_gw_tuning *t)
{
	go->http = "127.0.0.1:0";
	go->jwt_key = t->jwt_key;
	go->http_threads = t->http_threads;
	go->ws_max = t->ws_max;
	go->aoi_radius = t->aoi_radius;
	go->token_ttl_s = t->token_ttl_s;
	go->login_fail_addr = 1000000;
	go->conns_per_addr = -1; /* thousands of sockets per source address */
}

static void report_port(int fd, int port)
{
	ssize_t wr = write(fd, &port, sizeof(port));

	(void)wr;
	close(fd);
}

/* Runs in the forked child: log, world, views and gateway as `mmo serve`
 * wires them, plus the gateway options that serve cannot set; before the
 * gateway starts, the players' register + login and (once the rules allow
 * the hop) their placement moves go into the log. Writes the HTTP port (or
 * 0) to fd, then waits for SIGTERM. Never returns. */
void bench_backend_main(const struct bench_backend_opts *o)
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
	int64_t t_login;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	block_signals(&set);
	snprintf(logdir, sizeof(logdir), "%s/log", o->dir);
	snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%u", o->redis_port);
	lo.dir = logdir;
	lo.nosync = o->nosync;
	zctx = zmq_ctx_new();
	if (evlog_open(&lo, &log, msg, sizeof(msg)))
		goto fail;
	so.log = log;
	so.zctx = zctx;
	so.ingest = o->ingest ? o->ingest : "inproc://mmo-ingest";
	so.bus = o->bus ? o->bus : "inproc://mmo-bus";
	if (evlog_server_start(&so, &srv, msg, sizeof(msg)))
		goto fail;
	wo.log = log;
	wo.zctx = zctx;
	wo.ingest = so.ingest;
	wo.bus = so.bus;
	wo.data_dir = o->dir;
	if (world_runner_start(&wo, &wrun, msg, sizeof(msg)))
		goto fail;
	vo.log = log;
	vo.zctx = zctx;
	vo.bus = so.bus;
	vo.ingest = so.ingest;
	vo.data_dir = o->dir;
	vo.redis_url = redis_url;
	if (views_runner_start(&vo, &vrun, msg, sizeof(msg)))
		goto fail;
	if (bench_players_log_login(zctx, so.ingest, o->pl, o->n, msg, sizeof(msg)))
		goto fail;
	t_login = mmo_mono_us();
	bench_sleep_us(t_login + o->hop_wait_us - mmo_mono_us());
	if (bench_players_log_place(zctx, so.ingest, o->pl, o->n, msg, sizeof(msg)))
		goto fail;
	go.log = log;
	go.zctx = zctx;
	go.ingest = so.ingest;
	go.bus = so.bus;
	go.redis_url = redis_url;
	go.data_dir = o->dir;
	tune(&go, &o->gw);
	if (gw_start(&go, &g, msg, sizeof(msg)))
		goto fail;
	world_runner_set_decision_hook(wrun, gw_world_decided, g); /* as mmo serve does */
	report_port(o->fd, gw_port(g));
	wait_stop(&set);
	world_runner_set_decision_hook(wrun, NULL, NULL);
	gw_stop(g);
	views_runner_stop(vrun);
	world_runner_stop(wrun);
	evlog_server_stop(srv);
	zmq_ctx_term(zctx);
	evlog_close(log);
	_exit(0);
fail:
	fprintf(stderr, "bench: server: %s\n", msg);
	report_port(o->fd, 0);
	_exit(1);
}

void bench_gwproc_main(const struct bench_gwproc_opts *o)
{
	char logdir[4300], redis_url[64], msg[512];
	struct evlog_opts lo = {0};
	struct gw_opts go = {0};
	evlog *log = NULL;
	gw *g = NULL;
	void *zctx;
	sigset_t set;
	char go_byte;
	ssize_t rd;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGINT, SIG_DFL); /* until the go: a signal simply ends it */
	signal(SIGTERM, SIG_DFL);
	do
		rd = read(o->go_fd, &go_byte, 1);
	while (rd < 0 && errno == EINTR);
	close(o->go_fd);
	if (rd != 1)
		_exit(0); /* the bench stopped before the backend was up */
	block_signals(&set);
	snprintf(logdir, sizeof(logdir), "%s/log", o->dir);
	snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%u", o->redis_port);
	lo.dir = logdir;
	lo.readonly = true;
	if (evlog_open(&lo, &log, msg, sizeof(msg)))
		log = NULL; /* as serve: everything over the ingest */
	zctx = zmq_ctx_new();
	go.log = log;
	go.zctx = zctx;
	go.ingest = o->ingest;
	go.bus = o->bus;
	go.redis_url = redis_url;
	go.data_dir = o->dir;
	tune(&go, &o->gw);
	if (gw_start(&go, &g, msg, sizeof(msg))) {
		fprintf(stderr, "bench: gateway: %s\n", msg);
		report_port(o->fd, 0);
		_exit(1);
	}
	report_port(o->fd, gw_port(g));
	wait_stop(&set);
	gw_stop(g);
	zmq_ctx_term(zctx);
	evlog_close(log);
	_exit(0);
}
