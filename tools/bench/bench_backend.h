/* bench_backend.h - the processes under test of `mmo bench gateway`
 * (internal to tools/bench): the backend child, and the extra gateway
 * children that run beside it. */
#ifndef MMO_BENCH_BACKEND_H
#define MMO_BENCH_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "bench_players.h"

/* The gateway options both kinds of process set as the bench wants them
 * (those `mmo serve` cannot set among them). */
struct bench_gw_tuning {
	int http_threads, ws_max;
	double aoi_radius;
	const char *jwt_key; /* borrowed, NUL-terminated */
	int token_ttl_s;
};

struct bench_backend_opts {
	const char *dir;         /* the data folder (the log goes to dir/log) */
	unsigned redis_port;     /* the redis-server on 127.0.0.1 */
	const char *ingest;      /* the log's endpoints; NULL: inproc (nothing outside can */
	const char *bus;         /* reach them), else e.g. tcp://127.0.0.1:PORT */
	int fd;                  /* where the gateway's port (int, 0 = failed) is written */
	bool nosync;             /* the log without fsync */
	const struct player *pl; /* logged in, then placed at (tx, ty) */
	unsigned n;
	int64_t hop_wait_us; /* between the logins and the placement moves */
	struct bench_gw_tuning gw;
};

/* Run the backend until SIGTERM or SIGINT, then stop it and _exit (1 when
 * it could not start, after writing port 0 to o->fd). Never returns. */
_Noreturn void bench_backend_main(const struct bench_backend_opts *o);

struct bench_gwproc_opts {
	const char *dir;     /* the backend's data folder: accounts, its log read-only */
	unsigned redis_port; /* the backend's redis-server */
	const char *ingest;  /* the backend's tcp endpoints */
	const char *bus;
	int go_fd; /* one byte here: start; end of file: _exit(0) */
	int fd;    /* where the gateway's port (int, 0 = failed) is written */
	struct bench_gw_tuning gw;
};

/* One more gateway, wired as `mmo serve --roles gateway --ingest ... --bus
 * ... --data DIR --redis ...` wires it (the log opened read-only when it
 * can be), plus the tuning: waits for the go byte, starts, writes its port,
 * runs until SIGTERM or SIGINT, then stops and _exits. Never returns. */
_Noreturn void bench_gwproc_main(const struct bench_gwproc_opts *o);

#endif
