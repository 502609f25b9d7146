/* bench_ws.h - the benchmark's event-driven WebSocket client (internal to
 * tools/bench): tens of thousands of sockets on a few epoll threads. */
#ifndef MMO_BENCH_WS_H
#define MMO_BENCH_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench_players.h"

#define BENCH_WS_PORTS_MAX 16

typedef struct bench_ws bench_ws;

struct bench_ws_opts {
	int ports[BENCH_WS_PORTS_MAX]; /* the gateways on 127.0.0.1 */
	unsigned nports;               /* 1..BENCH_WS_PORTS_MAX */
	const struct player *pl; /* socket i is player i's (token, place); borrowed until stop */
	unsigned n;              /* sockets */
	unsigned first;          /* socket i is socket first + i of the whole run (other processes
	                          * hold the rest): it connects to ports[(first + i) % nports] */
	unsigned threads;        /* epoll threads (1..16) */
	unsigned per_addr;       /* sockets per loopback source address: socket first + i binds
	                          * 127.0.0.2 + (first + i) / per_addr */
	double sway;             /* socket moves go to tx +- sway */
};

/* One delivered world.update: the intent seq it answers, when it arrived,
 * and at which socket. */
struct bench_ws_delivery {
	uint64_t cause_seq;
	int64_t t;
	uint32_t sock;
};

/* One move sent over a socket and acknowledged: its seq, when it was sent,
 * and by which socket (= player). */
struct bench_ws_send {
	uint64_t seq;
	int64_t t;
	uint32_t sock;
};

struct bench_ws_counts {
	unsigned opened, failed, subscribed, closed;
	uint64_t sent, acked, move_errors, unacked;
	uint64_t delivered; /* world.updates recorded so far */
};

/* Start the threads; they connect, upgrade (?token=) and subscribe every
 * socket to its player's region at once. 0 or -1 with why filled. */
int bench_ws_start(const struct bench_ws_opts *o, bench_ws **out, char *why, size_t wl);

/* Snapshot of the counters; why (optional) gets the first failure text. */
void bench_ws_counts(bench_ws *w, struct bench_ws_counts *c, char *why, size_t wl);

/* From now on record every world.update; when rate > 0, also send moves
 * over the sockets at rate moves/s in total, spread evenly over sockets
 * and time, in [start_us, end_us) (mmo_mono_us). */
void bench_ws_measure(bench_ws *w, unsigned rate, int64_t start_us, int64_t end_us);

/* Stop recording (moves already stopped at end_us). */
void bench_ws_quiet(bench_ws *w);

/* Join the threads and close the sockets. The records stay readable until
 * bench_ws_free(): deliveries and sends (pointers into w), and whether
 * socket i was open and subscribed to the end. */
void bench_ws_stop(bench_ws *w);
size_t bench_ws_deliveries(bench_ws *w, const struct bench_ws_delivery **v);
size_t bench_ws_sends(bench_ws *w, const struct bench_ws_send **v);
bool bench_ws_alive(bench_ws *w, unsigned i);
void bench_ws_free(bench_ws *w);

#endif
