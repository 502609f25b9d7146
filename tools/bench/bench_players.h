/* bench_players.h - the benchmark's players, made directly (internal to
 * tools/bench): ids, sessions and tokens without the REST register/login
 * (Argon2id) path, and their events appended straight to the log. */
#ifndef MMO_BENCH_PLAYERS_H
#define MMO_BENCH_PLAYERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_TOKEN_MAX 512
#define BENCH_PID_MAX   24 /* "p_" + 16 hex + NUL */
#define BENCH_JTI_MAX   33 /* 32 hex + NUL */

struct player {
	char id[BENCH_PID_MAX], jti[BENCH_JTI_MAX];
	char token[BENCH_TOKEN_MAX];
	double x, y, tx, ty; /* accepted position, place */
	int64_t last_ok;     /* when the last accepted move (or placement) was answered */
	int64_t next;        /* pacing: not before */
	unsigned osc, cluster;
};

/* Give each of the n players an id, a session id (jti) and an HS256 token
 * signed with key (borrowed, NUL-terminated) carrying the claims the
 * gateway issues (sub, role=player, iat, exp=iat+ttl_s, jti). 0 or -1 with
 * why filled. */
int bench_players_issue(struct player *pl, size_t n, const char *key, int ttl_s, char *why,
                        size_t wl);

/* Store the sessions (mmo:session:{jti} = id, EX ttl_s) in the Redis on
 * 127.0.0.1:port, pipelined. 0 or -1 with why filled. */
int bench_players_sessions(const struct player *pl, size_t n, unsigned port, int ttl_s, char *why,
                           size_t wl);

/* Append player.register + player.login of each player (event ids as the
 * gateway makes them) through an ingest client of zctx at endpoint, in
 * batches. 0 or -1 with why filled. */
int bench_players_log_login(void *zctx, const char *endpoint, const struct player *pl, size_t n,
                            char *why, size_t wl);

/* Append one player.move of each player to its place (tx, ty, 0). The
 * caller waits first until the rules allow the hop since the login. */
int bench_players_log_place(void *zctx, const char *endpoint, const struct player *pl, size_t n,
                            char *why, size_t wl);

#endif
