/* bench_players.c - tens of thousands of players without 40,000 Argon2id
 * hashes: the bench owns the data folder and the signing key, so it makes
 * what a REST register + login would leave behind:
 *   - the token: HS256 (libjwt) with the gateway's claims (gateway/token.c);
 *   - the session: Redis mmo:session:{jti} = player id, EX the token TTL
 *     (gateway/auth.c), one hiredis pipeline;
 *   - the log: player.register (event id gw:reg:{id}) and player.login
 *     (gw:login:{jti}, session_id = jti) per player, so that the world
 *     spawns each at the spawn point, in ingest batches of up to 512.
 * No account is written to DATA/gateway: the paths the bench drives (moves,
 * WebSockets, GET /api/players/{id}) check the token and the session only.
 */
#include <hiredis/hiredis.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_players.h"
#include "log/evlog.h"
#include "schemas/event.h"
#include "schemas/mmo_err.h"

#define BATCH   512
#define ENC_MAX 1024

int bench_players_issue(struct player *pl, size_t n, const char *key, int ttl_s, char *why,
                        size_t wl)
{
	long now = (long)time(NULL);

	if (sodium_init() < 0) {
		snprintf(why, wl, "libsodium cannot start");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char b[16];
		jwt_t *j = NULL;
		char *s = NULL;
		int bad;

		randombytes_buf(b, 8);
		strcpy(pl[i].id, "p_");
		sodium_bin2hex(pl[i].id + 2, 17, b, 8);
		randombytes_buf(b, 16);
		sodium_bin2hex(pl[i].jti, sizeof(pl[i].jti), b, 16);
		bad = jwt_new(&j) ||
		      jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)key, (int)strlen(key)) ||
		      jwt_add_grant(j, "sub", pl[i].id) || jwt_add_grant(j, "role", "player") ||
		      jwt_add_grant_int(j, "iat", now) ||
		      jwt_add_grant_int(j, "exp", now + ttl_s) ||
		      jwt_add_grant(j, "jti", pl[i].jti) || !(s = jwt_encode_str(j)) ||
		      strlen(s) >= sizeof(pl[i].token);
		if (!bad)
			strcpy(pl[i].token, s);
		free(s);
		jwt_free(j);
		if (bad) {
			snprintf(why, wl, "cannot sign a token (libjwt)");
			return -1;
		}
	}
	return 0;
}

int bench_players_sessions(const struct player *pl, size_t n, unsigned port, int ttl_s, char *why,
                           size_t wl)
{
	redisContext *c = redisConnect("127.0.0.1", (int)port);
	int rc = -1;

	if (!c || c->err) {
		snprintf(why, wl, "redis on %u: %s", port, c ? c->errstr : "out of memory");
		goto out;
	}
	for (size_t at = 0; at < n; at += 1000) {
		size_t k = n - at < 1000 ? n - at : 1000;

		for (size_t i = at; i < at + k; i++)
			redisAppendCommand(c, "SET mmo:session:%s %s EX %d", pl[i].jti, pl[i].id,
			                   ttl_s);
		for (size_t i = 0; i < k; i++) {
			redisReply *r = NULL;

			if (redisGetReply(c, (void **)&r) != REDIS_OK || !r ||
			    r->type == REDIS_REPLY_ERROR) {
				snprintf(why, wl, "redis SET: %s",
				         r              ? r->str
				         : c->errstr[0] ? c->errstr
				                        : "no reply");
				freeReplyObject(r);
				goto out;
			}
			freeReplyObject(r);
		}
	}
	rc = 0;
out:
	if (c)
		redisFree(c);
	return rc;
}

/* Append the events made by make(i, k, b, ids) for i in [0, n), k in
 * [0, per), in batches. */
typedef int make_fn(const struct player *p, unsigned k, struct mmo_ev *b, char *eid);

static int append_all(void *zctx, const char *endpoint, const struct player *pl, size_t n,
                      unsigned per, make_fn *make, char *why, size_t wl)
{
	static uint8_t enc[BATCH][ENC_MAX];
	struct evlog_in in[BATCH];
	uint64_t seqs[BATCH];
	int errs[BATCH], rc = -1, err;
	evlog_client *c = NULL;
	size_t total = n * per, m = 0;

	err = evlog_client_open(zctx, endpoint, 30000, &c);
	if (err) {
		snprintf(why, wl, "ingest client: %s", mmo_errdesc(err));
		return -1;
	}
	for (size_t at = 0; at < total; at++) {
		struct mmo_ev b;
		char eid[MMO_ID_MAX + 1];
		size_t len;

		if (make(&pl[at / per], (unsigned)(at % per), &b, eid) ||
		    mmo_event_encode(&b.ev, enc[m], ENC_MAX, &len)) {
			snprintf(why, wl, "cannot encode an event of %s", pl[at / per].id);
			goto out;
		}
		in[m].buf = enc[m];
		in[m].len = len;
		in[m].priority = mmo_event_priority(&b.ev);
		if (++m < BATCH && at + 1 < total)
			continue;
		err = evlog_client_append(c, in, m, seqs, errs);
		for (size_t i = 0; !err && i < m; i++)
			err = errs[i];
		if (err) {
			snprintf(why, wl, "ingest append: %s", mmo_errdesc(err));
			goto out;
		}
		m = 0;
	}
	rc = 0;
out:
	evlog_client_close(c);
	return rc;
}

static int make_login(const struct player *p, unsigned k, struct mmo_ev *b, char *eid)
{
	static __thread char user[32];

	snprintf(user, sizeof(user), "b%s", p->id + 2);
	if (k == 0) {
		snprintf(eid, MMO_ID_MAX + 1, "gw:reg:%s", p->id);
		if (mmo_ev_init(b, "player.register", eid, p->id, NULL))
			return -1;
		b->body.player_register.username = user;
		return 0;
	}
	snprintf(eid, MMO_ID_MAX + 1, "gw:login:%s", p->jti);
	if (mmo_ev_init(b, "player.login", eid, p->id, NULL))
		return -1;
	b->body.player_login.session_id = (char *)p->jti;
	b->body.player_login.username = user;
	return 0;
}

static int make_place(const struct player *p, unsigned k, struct mmo_ev *b, char *eid)
{
	(void)k;
	snprintf(eid, MMO_ID_MAX + 1, "bench:place:%s", p->id);
	if (mmo_ev_init(b, "player.move", eid, p->id, NULL))
		return -1;
	mmo_ev_set_pos(b, p->tx, p->ty, 0);
	return 0;
}

int bench_players_log_login(void *zctx, const char *endpoint, const struct player *pl, size_t n,
                            char *why, size_t wl)
{
	return append_all(zctx, endpoint, pl, n, 2, make_login, why, wl);
}

int bench_players_log_place(void *zctx, const char *endpoint, const struct player *pl, size_t n,
                            char *why, size_t wl)
{
	return append_all(zctx, endpoint, pl, n, 1, make_place, why, wl);
}
