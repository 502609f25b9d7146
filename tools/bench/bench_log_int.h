/* bench_log_int.h - what the files of `mmo bench log` share (bench_log.c
 * the command and the log phase, bench_log_load.c the events it sends and
 * how it measures them, bench_log_peers.c the same load into raw LMDB and
 * into Redis Streams). Not a public header (bench.h is). */
#ifndef MMO_BENCH_LOG_INT_H
#define MMO_BENCH_LOG_INT_H

#include "bench_hist.h"
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_LOG_CMD     "bench log"
#define PRODUCERS_MAX     64
#define WINDOW_MAX        4096
#define RUNS_MAX          99
#define REGIONS           16
#define CLIENT_TIMEOUT_MS 5000
#define REDIS_KEY         "mmo:bench"
#define TPL_CAP           2048

struct bench_log_config {
	uint64_t events;
	size_t size;
	unsigned producers, window, per_req, runs, players;
	uint64_t rate;    /* events/s offered in total; 0 = as fast as possible */
	const char *data; /* parent of the temporary folder */
	const char *redis_path;
	bool skip_redis;
	bool nosync;
};

/* Set by SIGINT/SIGTERM; the redis-server the Redis phase started (0 if none). */
extern volatile sig_atomic_t bench_log_interrupted;
extern volatile pid_t bench_log_redis_pid;

/* Process figures from /proc: CPU time (user + system) in µs, bytes
 * written to storage; 0 when unknown (status fields: bench_pid_status). */
int64_t bench_self_cpu_us(void);
uint64_t bench_io_write_bytes(pid_t pid);

struct bench_evtpl {
	uint8_t buf[TPL_CAP];
	size_t len;
	const char *type;
	size_t id_off;     /* "PP-NNNNNNNNNNNN": producer, then event number */
	size_t player_off; /* 6 digits */
	size_t region_off; /* 2 digits */
	size_t pad[4];     /* event id, player id, region id, detail */
	size_t id_len[3];  /* event id, player id, region id */
};

int bench_tpl_make(struct bench_evtpl *t, size_t want, size_t *lo, size_t *hi);
void bench_tpl_stamp(const struct bench_evtpl *t, uint8_t *dst, unsigned p, uint64_t idx,
                     unsigned players);

struct bench_progress {
	int64_t t0, last;
	uint64_t last_done;
};
void bench_progress_tick(struct bench_progress *pg, const char *phase, unsigned run, uint64_t done,
                         uint64_t total);

struct bench_raw_result {
	double secs, per_s, disk_per_event;
	uint64_t batch, txns;
};

struct bench_redis_result {
	double secs, per_s, server_cpu_pct, disk_per_event;
	uint64_t p50, p99;
};

int bench_log_raw_phase(const struct bench_log_config *cfg, const struct bench_evtpl *tpl,
                        const char *dir, uint64_t batch, unsigned run_no,
                        struct bench_raw_result *res, char *why, size_t wl);
int bench_log_redis_phase(const struct bench_log_config *cfg, const struct bench_evtpl *tpl,
                          const char *dir, unsigned run_no, struct bench_redis_result *res,
                          char *why, size_t wl);

#endif
