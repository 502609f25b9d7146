/* bench_backend.h - the backend child of `mmo bench gateway` (internal to
 * tools/bench). */
#ifndef MMO_BENCH_BACKEND_H
#define MMO_BENCH_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "bench_players.h"

struct bench_backend_opts {
	const char *dir;         /* the data folder (the log goes to dir/log) */
	unsigned redis_port;     /* the redis-server on 127.0.0.1 */
	int fd;                  /* where the gateway's port (int, 0 = failed) is written */
	bool nosync;             /* the log without fsync */
	const struct player *pl; /* logged in, then placed at (tx, ty) */
	unsigned n;
	int64_t hop_wait_us; /* between the logins and the placement moves */
	int http_threads, ws_max;
	double aoi_radius;
	const char *jwt_key;
	int token_ttl_s;
};

/* Run the backend until SIGTERM or SIGINT, then stop it and _exit (1 when
 * it could not start, after writing port 0 to o->fd). Never returns. */
_Noreturn void bench_backend_main(const struct bench_backend_opts *o);

#endif
