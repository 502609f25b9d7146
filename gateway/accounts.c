/* accounts.c - player accounts, durable in LMDB (DATA/gateway).
 *
 *   accounts  username -> {"player_id","role","hash","reg_seq","created_us"}
 *   players   player_id -> username
 * Both are written in one transaction. The hash is libsodium's Argon2id
 * string (crypto_pwhash_str, interactive limits); it never leaves this
 * store (the player.register event carries only the username).
 * Several processes may open the store at once (`mmo user` while the
 * gateway runs): LMDB serialises the writers.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sodium.h>

#include "accounts.h"
#include "gateway/gateway.h"
#include "schemas/mmo_err.h"
#include "schemas/mmo_util.h"

struct gw_accts {
	MDB_env *env;
	MDB_dbi accounts, players;
};

bool gw_username_valid(const char *s, size_t len)
{
	if (!s || len < GW_USER_MIN || len > GW_USER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

bool gw_role_valid(const char *s)
{
	return s && (!strcmp(s, "player") || !strcmp(s, "auditor"));
}

void gw_random_hex(char *out, size_t nbytes)
{
	unsigned char b[64];

	if (nbytes > sizeof(b))
		nbytes = sizeof(b);
	randombytes_buf(b, nbytes);
	sodium_bin2hex(out, nbytes * 2 + 1, b, nbytes);
}

void gw_new_player_id(char out[MMO_ID_MAX + 1])
{
	out[0] = 'p';
	out[1] = '_';
	gw_random_hex(out + 2, 8);
}

int gw_pw_hash(const char *pw, size_t len, char out[GW_HASH_MAX])
{
	if (crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
	                      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		return MMO_ENOMEM;
	return MMO_OK;
}

bool gw_pw_verify(const char *hash, const char *pw, size_t len)
{
	return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

static int mdb_err(int rc)
{
	switch (rc) {
	case 0: return MMO_OK;
	case MDB_NOTFOUND: return MMO_ENOTFOUND;
	case MDB_KEYEXIST: return MMO_ECONFLICT;
	case MDB_MAP_FULL: return MMO_EFULL;
	case ENOMEM: return MMO_ENOMEM;
	default: return MMO_EIO;
	}
}

int gw_accts_open(const char *data_dir, gw_accts **out, char *err, size_t errlen)
{
	gw_accts *a = calloc(1, sizeof(*a));
	char dir[4200];
	MDB_txn *txn = NULL;
	int rc;

	if (!a)
		return MMO_ENOMEM;
	snprintf(dir, sizeof(dir), "%s/gateway", data_dir);
	if (mkdir(data_dir, 0750) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", data_dir, strerror(errno));
		goto fail;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		goto fail;
	}
	if ((rc = mdb_env_create(&a->env)) || (rc = mdb_env_set_maxdbs(a->env, 4)) ||
	    (rc = mdb_env_set_mapsize(a->env, (size_t)1 << 30)) ||
	    (rc = mdb_env_open(a->env, dir, MDB_NOTLS, 0600))) {
		snprintf(err, errlen, "cannot open accounts in %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	if ((rc = mdb_txn_begin(a->env, NULL, 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, "accounts", MDB_CREATE, &a->accounts)) ||
	    (rc = mdb_dbi_open(txn, "players", MDB_CREATE, &a->players)) ||
	    (rc = mdb_txn_commit(txn))) {
		if (txn && rc)
			mdb_txn_abort(txn);
		snprintf(err, errlen, "cannot open accounts in %s: %s", dir, mdb_strerror(rc));
		goto fail;
	}
	*out = a;
	return MMO_OK;
fail:
	if (a->env)
		mdb_env_close(a->env);
	free(a);
	return MMO_EIO;
}

void gw_accts_close(gw_accts *a)
{
	if (!a)
		return;
	mdb_env_close(a->env);
	free(a);
}

static char *encode(const struct gw_account *acc, size_t *len)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:I}", "player_id", acc->player_id, "role",
	                      acc->role, "hash", acc->hash, "reg_seq", (json_int_t)acc->reg_seq,
	                      "created_us", (json_int_t)acc->created_us);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s)
		*len = strlen(s);
	return s;
}

static int decode(const char *user, size_t ulen, const MDB_val *v, struct gw_account *out)
{
	json_t *o = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	const char *pid, *role, *hash;
	json_int_t reg = 0, created = 0;
	int rc = MMO_ECORRUPT;

	if (!o || json_unpack(o, "{s:s,s:s,s:s,s?I,s?I}", "player_id", &pid, "role", &role, "hash",
	                      &hash, "reg_seq", &reg, "created_us", &created))
		goto out;
	if (ulen > GW_USER_MAX || strlen(pid) > MMO_ID_MAX || strlen(role) > GW_ROLE_MAX ||
	    strlen(hash) >= GW_HASH_MAX)
		goto out;
	memcpy(out->username, user, ulen);
	out->username[ulen] = 0;
	strcpy(out->player_id, pid);
	strcpy(out->role, role);
	strcpy(out->hash, hash);
	out->reg_seq = (uint64_t)reg;
	out->created_us = created;
	rc = MMO_OK;
out:
	json_decref(o);
	return rc;
}

static int put(gw_accts *a, const struct gw_account *acc, bool create)
{
	MDB_val k = {strlen(acc->username), (void *)acc->username}, v, pk, pv;
	MDB_txn *txn;
	size_t len;
	char *s = encode(acc, &len);
	int rc;

	if (!s)
		return MMO_ENOMEM;
	v.mv_size = len;
	v.mv_data = s;
	rc = mdb_txn_begin(a->env, NULL, 0, &txn);
	if (rc) {
		free(s);
		return mdb_err(rc);
	}
	if (!create) {
		MDB_val old;

		rc = mdb_get(txn, a->accounts, &k, &old);
		if (rc)
			goto abort;
	}
	rc = mdb_put(txn, a->accounts, &k, &v, create ? MDB_NOOVERWRITE : 0);
	if (rc)
		goto abort;
	pk.mv_size = strlen(acc->player_id);
	pk.mv_data = (void *)acc->player_id;
	pv = k;
	rc = mdb_put(txn, a->players, &pk, &pv, 0);
	if (rc)
		goto abort;
	rc = mdb_txn_commit(txn);
	free(s);
	return mdb_err(rc);
abort:
	mdb_txn_abort(txn);
	free(s);
	return mdb_err(rc);
}

int gw_accts_create(gw_accts *a, const struct gw_account *acc)
{
	return put(a, acc, true);
}

int gw_accts_update(gw_accts *a, const struct gw_account *acc)
{
	return put(a, acc, false);
}

int gw_accts_get(gw_accts *a, const char *username, struct gw_account *out)
{
	MDB_val k = {strlen(username), (void *)username}, v;
	MDB_txn *txn;
	int rc;

	if (!gw_username_valid(username, k.mv_size))
		return MMO_ENOTFOUND;
	rc = mdb_txn_begin(a->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_err(rc);
	rc = mdb_get(txn, a->accounts, &k, &v);
	rc = rc ? mdb_err(rc) : decode(username, k.mv_size, &v, out);
	mdb_txn_abort(txn);
	return rc;
}

int gw_accts_get_by_player(gw_accts *a, const char *player_id, struct gw_account *out)
{
	MDB_val k = {strlen(player_id), (void *)player_id}, u, v;
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(a->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return mdb_err(rc);
	rc = mdb_get(txn, a->players, &k, &u);
	if (!rc)
		rc = mdb_get(txn, a->accounts, &u, &v);
	rc = rc ? mdb_err(rc) : decode(u.mv_data, u.mv_size, &v, out);
	mdb_txn_abort(txn);
	return rc;
}

/* ---------------------------------------------------------------- operator API */

int gw_user_add(const char *data_dir, const char *username, const char *password, size_t pwlen,
                char *player_id, char *err, size_t errlen)
{
	struct gw_account acc = {0};
	gw_accts *a;
	char dummy[8];
	int rc;

	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!username || !gw_username_valid(username, strlen(username))) {
		snprintf(err, errlen, "the username must be %d..%d of [A-Za-z0-9_]", GW_USER_MIN,
		         GW_USER_MAX);
		return MMO_EINVAL;
	}
	if (!password || pwlen < GW_PW_MIN || pwlen > GW_PW_MAX) {
		snprintf(err, errlen, "the password must be %d..%d bytes", GW_PW_MIN, GW_PW_MAX);
		return MMO_EINVAL;
	}
	if (sodium_init() < 0) {
		snprintf(err, errlen, "libsodium failed to initialise");
		return MMO_EIO;
	}
	rc = gw_accts_open(data_dir ? data_dir : "./data", &a, err, errlen);
	if (rc)
		return rc;
	strcpy(acc.username, username);
	strcpy(acc.role, "player");
	gw_new_player_id(acc.player_id);
	acc.created_us = mmo_now_us();
	rc = gw_pw_hash(password, pwlen, acc.hash);
	if (!rc)
		rc = gw_accts_create(a, &acc);
	if (rc == MMO_ECONFLICT)
		snprintf(err, errlen, "username '%s' is taken", username);
	else if (rc)
		snprintf(err, errlen, "cannot store the account: %s", mmo_errdesc(rc));
	else if (player_id)
		strcpy(player_id, acc.player_id);
	sodium_memzero(acc.hash, sizeof(acc.hash));
	gw_accts_close(a);
	return rc;
}

int gw_user_set_role(const char *data_dir, const char *username, const char *role, char *err,
                     size_t errlen)
{
	struct gw_account acc;
	gw_accts *a;
	char dummy[8];
	int rc;

	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!gw_role_valid(role)) {
		snprintf(err, errlen, "the role must be player or auditor");
		return MMO_EINVAL;
	}
	if (!username || !gw_username_valid(username, strlen(username))) {
		snprintf(err, errlen, "no user '%.64s'", username ? username : "");
		return MMO_ENOTFOUND;
	}
	rc = gw_accts_open(data_dir ? data_dir : "./data", &a, err, errlen);
	if (rc)
		return rc;
	rc = gw_accts_get(a, username, &acc);
	if (!rc) {
		strcpy(acc.role, role);
		rc = gw_accts_update(a, &acc);
	}
	if (rc == MMO_ENOTFOUND)
		snprintf(err, errlen, "no user '%s'", username);
	else if (rc)
		snprintf(err, errlen, "cannot update the account: %s", mmo_errdesc(rc));
	gw_accts_close(a);
	return rc;
}
