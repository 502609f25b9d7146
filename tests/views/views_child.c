/* views_child.c - the views role alone in a process, for the tests that kill
 * it with SIGKILL: `views_child DATA BUS REDIS_URL`. Opens DATA/log read-only
 * (gaps are filled from it), prints "views-child ready", runs until SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "log/evlog.h"
#include "projector/views/views.h"

int main(int argc, char **argv)
{
	struct evlog_opts lo = {0};
	struct views_opts vo = {0};
	views_runner *r = NULL;
	evlog *log = NULL;
	char dir[4096], msg[256] = "";
	sigset_t set;
	void *ctx;
	int sig;

	if (argc != 4) {
		fprintf(stderr, "usage: views_child DATA BUS REDIS_URL\n");
		return 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	snprintf(dir, sizeof(dir), "%s/log", argv[1]);
	lo.dir = dir;
	lo.readonly = true;
	if (evlog_open(&lo, &log, msg, sizeof(msg))) {
		fprintf(stderr, "views_child: log: %s\n", msg);
		return 1;
	}
	ctx = zmq_ctx_new();
	vo.log = log;
	vo.zctx = ctx;
	vo.bus = argv[2];
	vo.data_dir = argv[1];
	vo.redis_url = argv[3];
	vo.batch_max = 32;
	vo.backoff_base_ms = 20;
	vo.backoff_cap_ms = 300;
	if (views_runner_start(&vo, &r, msg, sizeof(msg))) {
		fprintf(stderr, "views_child: %s\n", msg);
		return 1;
	}
	fprintf(stderr, "views-child ready\n");
	sigwait(&set, &sig);
	views_runner_stop(r);
	zmq_ctx_term(ctx);
	evlog_close(log);
	return 0;
}
