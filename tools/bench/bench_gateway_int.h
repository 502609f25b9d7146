/* bench_gateway_int.h - what the files of `mmo bench gateway` share
 * (bench_gateway.c the command and a run's phases; bench_gateway_load.c
 * the REST load; bench_gateway_ws.c phase (c) in client processes;
 * bench_gateway_procs.c the bench's view of its processes; bench_backend.c
 * the processes under test). Not a public header (bench.h is). */
#ifndef MMO_BENCH_GATEWAY_INT_H
#define MMO_BENCH_GATEWAY_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench_hist.h"
#include "bench_players.h"

#define BENCH_GW_CMD "bench gateway"
#define AOI          1.0
#define CLUSTER      20
#define SWAY         (0.05 * AOI)
#define PER_ADDR     10000 /* WebSockets per loopback source address */
#define FD_SPARE     1024  /* descriptors of a process besides its sockets */
#define PROCS_MAX    16    /* gateway processes, and WebSocket client processes */
/* The automatic --gateways and --ws-procs: at most this many WebSockets per
 * process (RLIMIT_NOFILE is 20,000 here and cannot be raised). */
#define SOCKETS_PER_PROC 16000

struct bench_gw_config {
	unsigned duration, clients, players, ws_clients, rest_rate, ws_rate, runs;
	unsigned http_threads, ws_threads;
	unsigned gateways, ws_procs; /* processes: gateways (the backend's is the first) and
	                              * WebSocket clients */
	bool gateways_auto, ws_procs_auto;
	const char *data, *redis_path;
	bool nosync, ws_socket;
	unsigned soak_minutes; /* --soak: 0 = the benchmark */
};

/* The sockets of WebSocket client process k: players first..first+n-1,
 * whole clusters (the clusters are split evenly over the processes). */
static inline void bench_gw_slice(const struct bench_gw_config *cfg, unsigned k, unsigned *first,
                                  unsigned *n)
{
	unsigned nc = (cfg->ws_clients + CLUSTER - 1) / CLUSTER, m = cfg->ws_procs;
	unsigned c0 = m ? k * nc / m : 0, c1 = m ? (k + 1) * nc / m : 0;
	unsigned a = c0 * CLUSTER, b = c1 * CLUSTER;

	if (b > cfg->ws_clients)
		b = cfg->ws_clients;
	*first = a;
	*n = b > a ? b - a : 0;
}

/* Set by SIGINT and SIGTERM. */
extern volatile sig_atomic_t bench_gw_interrupted;

/* CPU seconds (user + system) of pid so far, from /proc; 0 if unknown. */
double bench_gw_pid_cpu_s(pid_t pid);

/* One line on stderr: the fd limits (soft/hard) of process pid, "who k". */
void bench_gw_note_limits(const char *who, unsigned k, pid_t pid);

/* SIGTERM (sig) to *pp, SIGKILL after wait_ms, reaped; clears *pp. */
void bench_gw_child_stop(volatile pid_t *pp, int sig, int wait_ms);

/* One int (a port) from fd within timeout_ms; 0 when none came. */
int bench_gw_read_port(int fd, int timeout_ms);

/* A pipe whose two ends this process keeps for a child (bench_gw_fd_keep;
 * O_CLOEXEC: nothing exec'd inherits it). 0 or -1 (errno). */
int bench_gw_pipe(int p[2]);

/* Descriptors this process holds for its children (pipe ends): each child
 * forked later closes all but its own (bench_gw_fd_close_kept), so that a
 * pipe reaches end of file when its one writer goes. */
void bench_gw_fd_keep(int fd);
void bench_gw_fd_close(int *fd); /* closes and forgets *fd (if >= 0), sets it to -1 */
void bench_gw_fd_close_kept(int keep_a, int keep_b); /* in a child: -1 for none */

/* The system under test: the backend (index 0) and the extra gateways. */
struct bench_gw_sut {
	volatile pid_t pid[PROCS_MAX];
	int port[PROCS_MAX]; /* their gateways' ports on 127.0.0.1 */
	long peak_kb[PROCS_MAX];
	unsigned n;
};

/* Update each process's peak RSS (VmHWM). */
void bench_gw_sut_sample(struct bench_gw_sut *s);
/* -1 with why filled when one of them has ended (it is reaped). */
int bench_gw_sut_check(struct bench_gw_sut *s, char *why, size_t wl);
/* CPU seconds of all of them. */
double bench_gw_sut_cpu_s(const struct bench_gw_sut *s);

/* ------------------------------------------------------------ REST load */

struct bench_gw_accept {
	uint64_t seq;
	int64_t t; /* when the move was sent */
	unsigned player;
};

struct bench_gw_phase {
	const struct bench_gw_config *cfg;
	struct player *pl;
	unsigned first, np; /* players first..first+np-1 move */
	unsigned clients;   /* client threads; 0 = cfg->clients */
	int port;
	bool ceiling;  /* the civetweb 200 {} server: no pacing */
	unsigned rate; /* moves/s offered in total; 0 = closed loop */
	int64_t start, end;
	/* out */
	struct bench_hist h;
	uint64_t ok, rejected, pending, limited, errors;
	char reject_why[128];
	struct bench_gw_accept *acc; /* accepted moves, when recording */
	size_t acc_cap;
	atomic_size_t acc_n;
	pthread_mutex_t mu;
};

/* Run ph's clients for cfg->duration seconds. 0 or -1 with why filled. */
int bench_gw_run_phase(struct bench_gw_phase *ph, char *why, size_t wl);
/* One line of ph's figures over secs. */
void bench_gw_note_phase(const char *name, unsigned r, const struct bench_gw_phase *ph,
                         double secs);

/* ------------------------------------------------------------ figures */

/* The gateways' own per-stage latency sums (GET /metrics, no auth): commit
 * (append to the log durable), outcome (the world's decision back),
 * delivery (to the sockets). Differences of two reads give a phase's mean. */
struct bench_gw_stages {
	double sum[3];
	double n[3];
	unsigned gateways; /* how many were read */
};

/* The sums of the gateways on ports[0..n). */
void bench_gw_read_stages(const int *ports, unsigned n, struct bench_gw_stages *st);
void bench_gw_note_stages(unsigned r, const char *phase, const struct bench_gw_stages *a,
                          const struct bench_gw_stages *b);

struct bench_gw_result {
	double ceil_per_s, per_s, p50_ms, p99_ms, ratio, open_per_s, open_p99_ms;
	double ws_rate, ws_dps, ws_p50_ms, ws_p99_ms;
	unsigned ws_open;
	uint64_t delivered, expected, missing;
};

/* ------------------------------------------------------------ phase (c) */

/* Fork the cfg->ws_procs WebSocket client processes, each with its share
 * of whole clusters of pl (borrowed: each child has its copy). Call while
 * this process has no thread. 0 or -1 with why filled. */
int bench_gw_ws_fork(const struct bench_gw_config *cfg, struct player *pl, char *why, size_t wl);

/* Print the fd limits of the client processes. */
void bench_gw_ws_note_limits(void);

/* Phase (c) of run r: the clients open their sockets to the gateways of
 * sut, move, and report; fills res->ws_*. 0 or -1 with why filled. */
int bench_gw_ws_phase(const struct bench_gw_config *cfg, struct bench_gw_sut *sut, unsigned r,
                      struct bench_gw_result *res, char *why, size_t wl);

/* --soak: rounds of the REST open loop and phase (c) for
 * cfg->soak_minutes, the backend's RSS, descriptors and threads after each;
 * -1 with why filled when they grow after the first round or a round
 * fails. */
int bench_gw_soak(const struct bench_gw_config *cfg, struct player *pl, struct bench_gw_sut *sut,
                  char *why, size_t wl);

/* End the client processes: end of file on their commands, then SIGTERM,
 * then SIGKILL after a bound; reaps them. */
void bench_gw_ws_stop(void);

/* SIGKILL every client process (async-signal-safe). */
void bench_gw_ws_kill(void);

#endif
