/* auth.c - register, login, logout, and the session check of every
 * authenticated request.
 *
 * A session is the Redis key mmo:session:{jti} = player id, with the
 * token's TTL: logout deletes it, so the token dies at once even though its
 * signature and expiry are still good. A session Redis confirmed is trusted for a
 * short while after (sessions.c), only while every change to its key is
 * notified to this gateway. Redis unreachable means no token can
 * be checked: requests fail closed with 503.
 *
 * Failed logins are counted in two token buckets, per username and per
 * client address; an empty bucket answers 429 before the password is even
 * checked. Unknown usernames cost the same Argon2id verification as known
 * ones (against a dummy hash), so timing does not reveal which exist.
 */
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw.h"
#include "schemas/mmo_util.h"

static const struct gw_field cred_fields[] = {
    {"username", GW_FT_STRING, 0, 0, 0, GW_BODY_MAX},
    {"password", GW_FT_STRING, 0, 0, 0, GW_BODY_MAX},
};

int gw_auth_token_cached(gw *g, struct gw_tokcache *tc, const char *tok, struct gw_auth *a)
{
	int rc = gw_token_verify_cached(tc, &g->key, tok, (int64_t)time(NULL), a);

	if (rc)
		return rc;
	return gw_sess_hit(g->sess, a->jti, a->sub) ? MMO_OK : MMO_EBUSY;
}

int gw_auth_token(gw *g, const char *tok, struct gw_auth *a)
{
	redisReply *rep;
	int rc;

	uint64_t mark;

	rc = gw_token_verify(&g->key, tok, (int64_t)time(NULL), a);
	if (rc)
		return rc;
	if (gw_sess_hit(g->sess, a->jti, a->sub))
		return MMO_OK;
	mark = gw_sess_mark(g->sess);
	rep = gw_redis_cmd(g->redis, "GET mmo:session:%s", a->jti);
	if (!rep)
		return MMO_EUNAVAIL;
	if (rep->type == REDIS_REPLY_NIL)
		rc = MMO_ENOTFOUND;
	else if (rep->type != REDIS_REPLY_STRING || strcmp(rep->str, a->sub))
		rc = MMO_EINVAL;
	else
		gw_sess_put(g->sess, mark, a->jti, a->sub);
	freeReplyObject(rep);
	return rc;
}

/* Argon2id with a bound on how many run at once (64 MiB each). */
static int hash_pw(gw *g, const char *pw, size_t len, char out[GW_HASH_MAX])
{
	int rc;

	sem_wait(&g->pw_sem);
	rc = gw_pw_hash(pw, len, out);
	sem_post(&g->pw_sem);
	return rc;
}

static bool verify_pw(gw *g, const char *hash, const char *pw, size_t len)
{
	bool ok;

	sem_wait(&g->pw_sem);
	ok = gw_pw_verify(hash, pw, len);
	sem_post(&g->pw_sem);
	return ok;
}

/* Check the credential fields shared by register and login. */
static int read_creds(struct gw_req *r, json_t **body, const char **user, size_t *ulen,
                      const char **pw, size_t *pwlen, bool strict)
{
	json_t *o;
	int rc = gw_read_json(r, &o);

	if (rc)
		return rc;
	rc = gw_check_fields(r, o, cred_fields, 2);
	if (rc) {
		json_decref(o);
		return rc;
	}
	*user = json_string_value(json_object_get(o, "username"));
	*ulen = json_string_length(json_object_get(o, "username"));
	*pw = json_string_value(json_object_get(o, "password"));
	*pwlen = json_string_length(json_object_get(o, "password"));
	if (strict && !gw_username_valid(*user, *ulen)) {
		json_decref(o);
		return gw_reply_err(r, 400, "invalid_field", "username",
		                    "username must be %d..%d of [A-Za-z0-9_]", GW_USER_MIN,
		                    GW_USER_MAX);
	}
	if (strict && (*pwlen < GW_PW_MIN || *pwlen > GW_PW_MAX)) {
		json_decref(o);
		return gw_reply_err(r, 400, "invalid_field", "password",
		                    "password must be %d..%d bytes", GW_PW_MIN, GW_PW_MAX);
	}
	*body = o;
	return 0;
}

/* The player.register event of an account; its id is derived from the
 * player id, so logging it again (a retry, a first login after `mmo user
 * add`) is answered with the original seq. */
static int log_register(gw *g, const struct gw_account *acc, uint64_t *seq)
{
	struct mmo_ev b;
	char eid[MMO_ID_MAX + 1];

	snprintf(eid, sizeof(eid), "gw:reg:%.56s", acc->player_id);
	if (mmo_ev_init(&b, "player.register", eid, acc->player_id, NULL))
		return MMO_EBADTYPE;
	b.body.player_register.username = (char *)acc->username;
	return gw_log_append(g, &b.ev, seq);
}

int gw_h_register(struct gw_req *r)
{
	gw *g = r->g;
	struct gw_account acc = {0}, old;
	const char *user, *pw;
	size_t ulen, pwlen;
	json_t *body;
	uint64_t seq;
	int rc;

	rc = read_creds(r, &body, &user, &ulen, &pw, &pwlen, true);
	if (rc)
		return rc;
	memcpy(acc.username, user, ulen + 1);
	if (gw_accts_get(g->accts, acc.username, &old) == MMO_OK) {
		json_decref(body);
		return gw_reply_err(r, 409, "conflict", "username", "username '%s' is taken",
		                    acc.username);
	}
	rc = hash_pw(g, pw, pwlen, acc.hash);
	json_decref(body);
	if (rc)
		return gw_reply_err(r, 500, "internal", NULL, "cannot hash the password");
	strcpy(acc.role, "player");
	gw_new_player_id(acc.player_id);
	acc.created_us = mmo_now_us();

	pthread_mutex_lock(&g->reg_mu);
	if (gw_accts_get(g->accts, acc.username, &old) == MMO_OK) {
		rc = gw_reply_err(r, 409, "conflict", "username", "username '%s' is taken",
		                  acc.username);
		goto out;
	}
	rc = log_register(g, &acc, &seq);
	if (rc) {
		gw_metrics_error(&g->m, GW_F_AUTH);
		rc = gw_reply_retry(r, 503, 1, "unavailable", "the event log is unavailable");
		goto out;
	}
	acc.reg_seq = seq;
	rc = gw_accts_create(g->accts, &acc);
	if (rc == MMO_ECONFLICT) {
		rc = gw_reply_err(r, 409, "conflict", "username", "username '%s' is taken",
		                  acc.username);
	} else if (rc) {
		gw_metrics_error(&g->m, GW_F_AUTH);
		mmo_logf(MMO_LOG_ERROR, "gateway", "cannot store account %s: %s", acc.username,
		         mmo_errdesc(rc));
		rc = gw_reply_err(r, 500, "internal", NULL, "cannot store the account");
	} else {
		mmo_logf(MMO_LOG_INFO, "gateway", "registered %s as %s (seq %llu)", acc.username,
		         acc.player_id, (unsigned long long)seq);
		rc = gw_reply_json(r, 201, json_pack("{s:s}", "player_id", acc.player_id), NULL);
	}
out:
	pthread_mutex_unlock(&g->reg_mu);
	sodium_memzero(acc.hash, sizeof(acc.hash));
	return rc;
}

static int too_many(struct gw_req *r, int64_t retry_us, const char *user)
{
	atomic_fetch_add(&r->g->m.rate_limited, 1);
	gw_sec_note(r->g, "security.rate_limited", gw_peer_addr(r), user);
	return gw_reply_retry(r, 429, (int)((retry_us + 999999) / 1000000), "rate_limited",
	                      "too many failed logins; retry later");
}

int gw_h_login(struct gw_req *r)
{
	gw *g = r->g;
	const struct gw_opts *o = &g->o;
	struct gw_account acc;
	const char *user, *pw;
	size_t ulen, pwlen;
	char ukey[GW_USER_MAX + 8], akey[64], jti[MMO_ID_MAX + 1], eid[MMO_ID_MAX + 1];
	char *tok = NULL;
	json_t *body;
	int64_t now = mmo_mono_us(), retry = 0, now_s = (int64_t)time(NULL);
	double wu = (double)o->login_fail_user, wa = (double)o->login_fail_addr;
	double win = (double)o->login_fail_window_s;
	bool known, ok;
	uint64_t seq;
	redisReply *rep;
	struct mmo_ev b;
	int rc;

	rc = read_creds(r, &body, &user, &ulen, &pw, &pwlen, false);
	if (rc)
		return rc;
	/* The bucket key of a name that cannot exist still limits its guesser. */
	snprintf(ukey, sizeof(ukey), "u:%.*s", GW_USER_MAX, user);
	snprintf(akey, sizeof(akey), "a:%s", gw_peer_addr(r));
	if (!gw_rl_take(g->rl_user, ukey, wu / win, wu, 0, now, &retry) ||
	    !gw_rl_take(g->rl_addr, akey, wa / win, wa, 0, now, &retry)) {
		char u[GW_USER_MAX + 1];
		bool valid = gw_username_valid(user, ulen);

		snprintf(u, sizeof(u), "%s", valid ? user : "");
		json_decref(body);
		return too_many(r, retry, valid ? u : NULL);
	}
	known = gw_username_valid(user, ulen) && gw_accts_get(g->accts, user, &acc) == MMO_OK;
	ok = verify_pw(g, known ? acc.hash : g->dummy_hash, pw, pwlen) && known &&
	     pwlen <= GW_PW_MAX;
	if (!ok) {
		char u[GW_USER_MAX + 1];
		bool valid = gw_username_valid(user, ulen);

		snprintf(u, sizeof(u), "%s", valid ? user : "(invalid name)");
		json_decref(body);
		gw_rl_take(g->rl_user, ukey, wu / win, wu, 1, now, NULL);
		gw_rl_take(g->rl_addr, akey, wa / win, wa, 1, now, NULL);
		atomic_fetch_add(&g->m.login_failed, 1);
		gw_sec_note(g, "security.login_failed", gw_peer_addr(r), u);
		return gw_reply_err(r, 401, "invalid_credentials", NULL,
		                    "wrong username or password");
	}
	json_decref(body);
	sodium_memzero(acc.hash, sizeof(acc.hash));

	if (acc.reg_seq == 0) {
		/* Created by `mmo user add`: the world learns of it now. */
		rc = log_register(g, &acc, &seq);
		if (rc)
			goto log_down;
		struct gw_account cur;
		if (gw_accts_get(g->accts, acc.username, &cur) == MMO_OK) {
			cur.reg_seq = seq;
			gw_accts_update(g->accts, &cur);
			sodium_memzero(cur.hash, sizeof(cur.hash));
		}
	}
	if (gw_token_issue(&g->key, acc.player_id, acc.role, now_s, o->token_ttl_s, jti, &tok))
		return gw_reply_err(r, 500, "internal", NULL, "cannot issue a token");
	rep = gw_redis_cmd(g->redis, "SET mmo:session:%s %s EX %d", jti, acc.player_id,
	                   o->token_ttl_s);
	if (!rep) {
		free(tok);
		gw_metrics_error(&g->m, GW_F_AUTH);
		return gw_reply_retry(r, 503, 1, "unavailable",
		                      "sessions cannot be stored now (Redis unavailable)");
	}
	freeReplyObject(rep);
	snprintf(eid, sizeof(eid), "gw:login:%.54s", jti);
	mmo_ev_init(&b, "player.login", eid, acc.player_id, NULL);
	b.body.player_login.session_id = jti;
	b.body.player_login.username = acc.username;
	rc = gw_log_append(g, &b.ev, &seq);
	if (rc) {
		freeReplyObject(gw_redis_cmd(g->redis, "DEL mmo:session:%s", jti));
		free(tok);
		goto log_down;
	}
	rc = gw_reply_json(r, 200,
	                   json_pack("{s:s,s:s,s:i,s:s}", "token", tok, "player_id", acc.player_id,
	                             "expires_in", o->token_ttl_s, "role", acc.role),
	                   NULL);
	free(tok);
	return rc;
log_down:
	gw_metrics_error(&g->m, GW_F_AUTH);
	return gw_reply_retry(r, 503, 1, "unavailable", "the event log is unavailable");
}

int gw_h_logout(struct gw_req *r)
{
	gw *g = r->g;
	struct gw_auth a;
	char eid[MMO_ID_MAX + 1];
	redisReply *rep;
	struct mmo_ev b;
	uint64_t seq;
	int rc;

	rc = gw_require_auth(r, &a);
	if (rc)
		return rc;
	rc = gw_read_empty(r);
	if (rc)
		return rc;
	rep = gw_redis_cmd(g->redis, "DEL mmo:session:%s", a.jti);
	if (!rep)
		return gw_reply_retry(r, 503, 1, "unavailable",
		                      "the session cannot be revoked now (Redis unavailable)");
	freeReplyObject(rep);
	gw_sess_drop(g->sess, a.jti); /* here at once; elsewhere by its notification */
	gw_ws_close_session(g, a.jti, "session revoked");
	snprintf(eid, sizeof(eid), "gw:logout:%.53s", a.jti);
	mmo_ev_init(&b, "player.logout", eid, a.sub, NULL);
	b.body.player_logout.session_id = a.jti;
	b.body.player_logout.reason = "logout";
	if (gw_log_append(g, &b.ev, &seq)) {
		/* The token is dead already; the world hears of it at next login. */
		gw_metrics_error(&g->m, GW_F_AUTH);
		mmo_logf(MMO_LOG_WARN, "gateway", "logout of %s not logged: log unavailable",
		         a.sub);
	}
	return gw_reply(r, 204, "application/json", "", 0, NULL);
}
