/* snapshot.c - the world's snapshots, in their own LMDB environment.
 *
 * A snapshot is a cache: the log is the truth, so the environment is opened
 * with MDB_NOSYNC (a crash of the process loses nothing; a crash of the
 * machine may lose the newest snapshots, and each one is checked against
 * its hash before use anyway).
 *
 *   snaps  seq (u64 BE) -> "MWS1" ‖ format (u32 BE) ‖ seed (u64 BE) ‖
 *                          sha256[32] ‖ log hash at seq [32] ‖ canonical bytes
 *   meta   "seed" -> u64 BE
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "schemas/mmo_be.h"
#include "schemas/mmo_util.h"
#include "world_int.h"

#define MAGIC    "MWS1"
#define HDR_LEN  80
#define MAP_SIZE ((size_t)8 << 30)

struct world_snapdb {
	MDB_env *env;
	MDB_dbi snaps, meta;
	bool readonly;
};

static int mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return MMO_OK;
	case MDB_NOTFOUND: return MMO_ENOTFOUND;
	case MDB_MAP_FULL: return MMO_EFULL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID: return MMO_ECORRUPT;
	case MDB_VERSION_MISMATCH: return MMO_EVERSION;
	case ENOMEM: return MMO_ENOMEM;
	default: return MMO_EIO;
	}
}

int world_snapdb_open(const char *dir, bool readonly, world_snapdb **out, char *errmsg,
                      size_t errlen)
{
	world_snapdb *db;
	MDB_txn *txn = NULL;
	unsigned flags = MDB_NOTLS;
	int rc, err;

	if (!dir || !out)
		return MMO_EINVAL;
	if (!readonly && mkdir(dir, 0750) != 0 && errno != EEXIST) {
		if (errmsg)
			snprintf(errmsg, errlen, "cannot create %s: %s", dir, strerror(errno));
		return MMO_EIO;
	}
	db = calloc(1, sizeof(*db));
	if (!db)
		return MMO_ENOMEM;
	db->readonly = readonly;
	rc = mdb_env_create(&db->env);
	if (rc)
		goto fail;
	mdb_env_set_maxdbs(db->env, 2);
	mdb_env_set_maxreaders(db->env, 64);
	if (!readonly)
		mdb_env_set_mapsize(db->env, MAP_SIZE);
	flags |= readonly ? MDB_RDONLY : MDB_NOSYNC;
	rc = mdb_env_open(db->env, dir, flags, 0640);
	if (rc && readonly && (rc == EACCES || rc == EROFS))
		rc = mdb_env_open(db->env, dir, flags | MDB_NOLOCK, 0640);
	if (rc)
		goto fail;
	rc = mdb_txn_begin(db->env, NULL, readonly ? MDB_RDONLY : 0, &txn);
	if (rc)
		goto fail;
	rc = mdb_dbi_open(txn, "snaps", readonly ? 0 : MDB_CREATE, &db->snaps);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", readonly ? 0 : MDB_CREATE, &db->meta);
	if (rc)
		goto fail;
	rc = mdb_txn_commit(txn); /* also read-only: an abort would drop the handles */
	txn = NULL;
	if (rc)
		goto fail;
	*out = db;
	return MMO_OK;

fail:
	if (txn)
		mdb_txn_abort(txn);
	err = rc == ENOENT || rc == MDB_NOTFOUND ? MMO_ENOTFOUND : mdb_err(rc);
	if (errmsg)
		snprintf(errmsg, errlen, "cannot open world snapshots %s: %s", dir,
		         rc == ENOENT || rc == MDB_NOTFOUND ? "none there" : mdb_strerror(rc));
	if (db->env)
		mdb_env_close(db->env);
	free(db);
	return err;
}

void world_snapdb_close(world_snapdb *db)
{
	if (!db)
		return;
	mdb_env_close(db->env);
	free(db);
}

static int rtxn(world_snapdb *db, MDB_txn **txn)
{
	int rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, txn);

	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(db->env, 0);
		rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, txn);
	}
	return mdb_err(rc);
}

int world_snapdb_seed(world_snapdb *db, uint64_t *seed)
{
	MDB_val k = {4, "seed"}, v;
	MDB_txn *txn;
	int err = rtxn(db, &txn);

	if (err)
		return err;
	err = mdb_err(mdb_get(txn, db->meta, &k, &v));
	if (!err && v.mv_size != 8)
		err = MMO_ECORRUPT;
	if (!err)
		*seed = mmo_be64_get(v.mv_data);
	mdb_txn_abort(txn);
	return err;
}

int world_snapdb_set_seed(world_snapdb *db, uint64_t seed)
{
	uint8_t b[8];
	MDB_val k = {4, "seed"}, v = {8, b};
	MDB_txn *txn;
	int rc;

	if (db->readonly)
		return MMO_EINVAL;
	mmo_be64_put(b, seed);
	rc = mdb_txn_begin(db->env, NULL, 0, &txn);
	if (rc)
		return mdb_err(rc);
	rc = mdb_put(txn, db->meta, &k, &v, 0);
	if (rc) {
		mdb_txn_abort(txn);
		return mdb_err(rc);
	}
	return mdb_err(mdb_txn_commit(txn));
}

int world_snapdb_put(world_snapdb *db, const world *w, const uint8_t log_hash[EVLOG_HASH_LEN])
{
	uint8_t key[8], hash[WORLD_HASH_LEN];
	MDB_val k = {8, key}, v;
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_stat st;
	char *canon = NULL;
	size_t len;
	int rc, err;

	if (!db || !w || db->readonly)
		return MMO_EINVAL;
	err = world_encode(w, &canon, &len);
	if (err)
		return err;
	err = world_canon_hash(canon, len, hash);
	if (err)
		goto out;
	mmo_be64_put(key, w->seq);
	rc = mdb_txn_begin(db->env, NULL, 0, &txn);
	if (rc)
		goto fail;
	v.mv_size = HDR_LEN + len;
	rc = mdb_put(txn, db->snaps, &k, &v, MDB_RESERVE);
	if (rc)
		goto fail;
	{
		uint8_t *p = v.mv_data;

		memcpy(p, MAGIC, 4);
		p[4] = 0, p[5] = 0, p[6] = 0, p[7] = WORLD_FORMAT;
		mmo_be64_put(p + 8, w->seed);
		memcpy(p + 16, hash, WORLD_HASH_LEN);
		if (log_hash)
			memcpy(p + 48, log_hash, EVLOG_HASH_LEN);
		else
			memset(p + 48, 0, EVLOG_HASH_LEN);
		memcpy(p + HDR_LEN, canon, len);
	}
	/* Keep the newest WORLD_SNAP_KEEP. */
	rc = mdb_stat(txn, db->snaps, &st);
	if (rc)
		goto fail;
	if (st.ms_entries > WORLD_SNAP_KEEP) {
		size_t drop = st.ms_entries - WORLD_SNAP_KEEP;

		rc = mdb_cursor_open(txn, db->snaps, &cur);
		if (rc)
			goto fail;
		while (drop-- > 0) {
			MDB_val ck, cv;

			rc = mdb_cursor_get(cur, &ck, &cv, MDB_FIRST);
			if (!rc)
				rc = mdb_cursor_del(cur, 0);
			if (rc)
				goto fail;
		}
		mdb_cursor_close(cur);
		cur = NULL;
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc)
		goto fail;
	err = MMO_OK;
	goto out;
fail:
	err = mdb_err(rc);
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
	free(canon);
	return err;
}

/* Check a stored value: header, format, hash over the canonical bytes. */
static int check(const MDB_val *v, struct world_snapinfo *info)
{
	const uint8_t *p = v->mv_data;
	uint8_t h[WORLD_HASH_LEN];

	if (v->mv_size < HDR_LEN || memcmp(p, MAGIC, 4))
		return MMO_ECORRUPT;
	if (((uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7]) >
	    WORLD_FORMAT)
		return MMO_EVERSION;
	if (info) {
		memcpy(info->hash, p + 16, WORLD_HASH_LEN);
		memcpy(info->log_hash, p + 48, EVLOG_HASH_LEN);
	}
	if (world_canon_hash((const char *)p + HDR_LEN, v->mv_size - HDR_LEN, h))
		return MMO_EIO;
	return memcmp(h, p + 16, WORLD_HASH_LEN) ? MMO_ECORRUPT : MMO_OK;
}

int world_snapdb_list(world_snapdb *db, struct world_snapinfo *out, size_t cap, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	size_t cnt = 0;
	int err = rtxn(db, &txn), rc;

	if (err)
		return err;
	rc = mdb_cursor_open(txn, db->snaps, &cur);
	if (rc) {
		mdb_txn_abort(txn);
		return mdb_err(rc);
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !rc && cnt < cap;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct world_snapinfo *s = &out[cnt++];

		memset(s, 0, sizeof(*s));
		s->seq = k.mv_size == 8 ? mmo_be64_get(k.mv_data) : 0;
		s->valid = k.mv_size == 8 && check(&v, s) == MMO_OK;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	*n = cnt;
	return rc == MDB_NOTFOUND || !rc ? MMO_OK : mdb_err(rc);
}

/* Decode a stored value and check that it re-encodes to the same bytes. */
static int load_value(const MDB_val *v, world **out)
{
	const uint8_t *p = v->mv_data;
	const char *canon = (const char *)p + HDR_LEN;
	size_t len = v->mv_size - HDR_LEN;
	char *again = NULL;
	size_t alen;
	world *w = NULL;
	int err = check(v, NULL);

	if (err)
		return err;
	err = world_decode(canon, len, mmo_be64_get(p + 8), &w);
	if (err)
		return err == MMO_EVERSION ? err : MMO_ECORRUPT;
	err = world_encode(w, &again, &alen);
	if (!err && (alen != len || memcmp(again, canon, len)))
		err = MMO_ECORRUPT;
	free(again);
	if (err) {
		world_free(w);
		return err;
	}
	*out = w;
	return MMO_OK;
}

int world_snapdb_get(world_snapdb *db, uint64_t seq, world **out)
{
	uint8_t key[8];
	MDB_val k = {8, key}, v;
	MDB_txn *txn;
	int err = rtxn(db, &txn);

	if (err)
		return err;
	mmo_be64_put(key, seq);
	err = mdb_err(mdb_get(txn, db->snaps, &k, &v));
	if (!err)
		err = load_value(&v, out);
	mdb_txn_abort(txn);
	return err;
}

/* The log's hash of the record at seq: MMO_OK or MMO_ENOTFOUND. */
static int log_hash_at(evlog *log, uint64_t seq, uint8_t hash[EVLOG_HASH_LEN])
{
	struct evlog_rec rec;
	evlog_iter *it;
	int err = evlog_iter_open(log, EVLOG_ALL, NULL, seq, &it);

	if (err)
		return err;
	err = evlog_iter_next(it, &rec);
	if (!err && rec.seq != seq)
		err = MMO_ENOTFOUND;
	if (!err)
		memcpy(hash, rec.hash, EVLOG_HASH_LEN);
	evlog_iter_close(it);
	return err;
}

/* Does the snapshot belong to this log? */
static int matches_log(evlog *log, uint64_t seq, const MDB_val *v)
{
	static const uint8_t zero[EVLOG_HASH_LEN];
	const uint8_t *stored = (const uint8_t *)v->mv_data + 48;
	uint8_t h[EVLOG_HASH_LEN];
	int err;

	if (!log || v->mv_size < HDR_LEN)
		return MMO_OK;
	err = log_hash_at(log, seq, h);
	if (err == MMO_ENOTFOUND)
		return MMO_ENOTFOUND;
	if (err)
		return err;
	if (memcmp(stored, zero, EVLOG_HASH_LEN) && memcmp(stored, h, EVLOG_HASH_LEN))
		return MMO_ECONFLICT;
	return MMO_OK;
}

int world_snapdb_load(world_snapdb *db, evlog *log, uint64_t max_seq, world **out,
                      uint64_t *skipped)
{
	uint8_t key[8];
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k = {8, key}, v;
	uint64_t bad = 0;
	int err = rtxn(db, &txn), rc;

	if (err)
		return err;
	rc = mdb_cursor_open(txn, db->snaps, &cur);
	if (rc) {
		mdb_txn_abort(txn);
		return mdb_err(rc);
	}
	if (max_seq) {
		mmo_be64_put(key, max_seq);
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc == MDB_NOTFOUND)
			rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		else if (!rc && mmo_be64_get(k.mv_data) > max_seq)
			rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
	} else {
		rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	}
	err = MMO_ENOTFOUND;
	for (; !rc; rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
		uint64_t seq = k.mv_size == 8 ? mmo_be64_get(k.mv_data) : 0;
		int e = k.mv_size == 8 ? MMO_OK : MMO_ECORRUPT;
		const char *why;

		if (!e)
			e = matches_log(log, seq, &v);
		if (!e)
			e = load_value(&v, out);
		if (!e) {
			err = MMO_OK;
			break;
		}
		bad++;
		why = e == MMO_ENOTFOUND   ? "it is past the log's head"
		      : e == MMO_ECONFLICT ? "it was made from another log"
		                           : mmo_errdesc(e);
		mmo_logf(MMO_LOG_WARN, "world", "ignoring snapshot at seq %llu: %s",
		         (unsigned long long)seq, why);
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (skipped)
		*skipped = bad;
	return err;
}
