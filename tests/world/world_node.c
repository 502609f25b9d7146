/* world_node.c - a process running the log and the live world, wired the way
 * `mmo serve --roles log,world` wires them, for the crash test to kill.
 *
 *   world_node DATA INGEST BUS [SNAPSHOT_EVERY]
 *
 * Logs "world_node: ready" when both run; on SIGTERM stops the world, then
 * the log, and prints "world_node: stopped seq=N hash=HEX". */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "log/evlog.h"
#include "schemas/mmo_util.h"
#include "projector/world/world.h"

int main(int argc, char **argv)
{
	struct evlog_opts lo = {0};
	struct evlog_server_opts so = {0};
	struct world_runner_opts wo = {0};
	struct world_runner_status st;
	evlog_server *srv = NULL;
	world_runner *run = NULL;
	evlog *log = NULL;
	void *zctx;
	char logdir[4200], msg[512], hex[2 * WORLD_HASH_LEN + 1];
	sigset_t set;
	int sig;

	if (argc < 4) {
		fprintf(stderr, "usage: world_node DATA INGEST BUS [SNAPSHOT_EVERY]\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	mkdir(argv[1], 0750);
	snprintf(logdir, sizeof(logdir), "%s/log", argv[1]);
	lo.dir = logdir;
	if (evlog_open(&lo, &log, msg, sizeof(msg))) {
		fprintf(stderr, "world_node: %s\n", msg);
		return 1;
	}
	zctx = zmq_ctx_new();

	/* 1. the log */
	so.log = log;
	so.zctx = zctx;
	so.ingest = argv[2];
	so.bus = argv[3];
	if (evlog_server_start(&so, &srv, msg, sizeof(msg))) {
		fprintf(stderr, "world_node: %s\n", msg);
		return 1;
	}
	/* 2. the world, on the same log handle and endpoints */
	wo.log = log;
	wo.zctx = zctx;
	wo.ingest = argv[2];
	wo.bus = argv[3];
	wo.data_dir = argv[1];
	wo.snapshot_every = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
	if (world_runner_start(&wo, &run, msg, sizeof(msg))) {
		fprintf(stderr, "world_node: %s\n", msg);
		evlog_server_stop(srv);
		return 1;
	}
	mmo_logf(MMO_LOG_INFO, "world_node", "ready");

	do {
		if (sigwait(&set, &sig) != 0)
			sig = SIGTERM;
	} while (sig != SIGINT && sig != SIGTERM);

	/* 3. stop in reverse order: the world first (it flushes its outcomes
	 * into the still running log), then the log. */
	world_runner_status(run, true, &st);
	world_runner_stop(run);
	evlog_server_stop(srv);
	zmq_ctx_term(zctx);
	evlog_close(log);
	world_hash_hex(st.hash, hex);
	printf("world_node: stopped seq=%llu hash=%s\n", (unsigned long long)st.seq, hex);
	fflush(stdout);
	return 0;
}
