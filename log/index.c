/* index.c - the auditors' secondary indexes, kept off the ack path.
 *
 * The indexes (by player, type and region) live in their own LMDB
 * environment, DIR/index, written by a follower: it reads committed records
 * from its checkpoint on and indexes them in large transactions, so a batch
 * of appends pays for its records and ids only. Random-key index inserts
 * cost about one page per event; paid in the writer's transaction they made
 * each event write ~30 KB (see docs/performance.md).
 *
 * The index environment is opened with MDB_NOSYNC: it is derived data. Its
 * checkpoint ("indexed" in its meta table) is written in the same
 * transaction as the entries, so after a process crash it resumes exactly
 * where it was; if it is ever unreadable, or ahead of the log (the log was
 * replaced), it is deleted and rebuilt from seq 1. Readers never see the
 * lag: iterators and queries read the index up to the checkpoint of their
 * snapshot and scan the (short) unindexed tail of the log.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evlog_int.h"
#include "schemas/mmo_util.h"

#define SYNC_EVERY_US 1000000 /* flush the index env at most once a second */

static int open_env(evlog *l, size_t map_size, bool create)
{
	unsigned flags = MDB_NOTLS | (l->readonly ? MDB_RDONLY : MDB_NOSYNC);
	unsigned dbflags = MDB_DUPSORT | MDB_DUPFIXED | (create ? MDB_CREATE : 0);
	MDB_txn *txn;
	int rc;

	rc = mdb_env_create(&l->ienv);
	if (rc)
		return rc;
	mdb_env_set_maxdbs(l->ienv, 8);
	mdb_env_set_maxreaders(l->ienv, 512);
	if (!l->readonly)
		mdb_env_set_mapsize(l->ienv, map_size);
	rc = mdb_env_open(l->ienv, l->idir, flags, 0640);
	if (rc && l->readonly && (rc == EACCES || rc == EROFS))
		rc = mdb_env_open(l->ienv, l->idir, flags | MDB_NOLOCK, 0640);
	if (rc)
		goto fail;
	rc = mdb_txn_begin(l->ienv, NULL, l->readonly ? MDB_RDONLY : 0, &txn);
	if (rc)
		goto fail;
	if ((rc = mdb_dbi_open(txn, "idx_player", dbflags, &l->idx_player)) ||
	    (rc = mdb_dbi_open(txn, "idx_type", dbflags, &l->idx_type)) ||
	    (rc = mdb_dbi_open(txn, "idx_region", dbflags, &l->idx_region)) ||
	    (rc = mdb_dbi_open(txn, "meta", create ? MDB_CREATE : 0, &l->imeta))) {
		mdb_txn_abort(txn);
		goto fail;
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		goto fail;
	return MDB_SUCCESS;
fail:
	mdb_env_close(l->ienv);
	l->ienv = NULL;
	return rc;
}

static void remove_env(const char *dir)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	unlink(path);
}

int evlog_index_open(evlog *l, size_t map_size)
{
	uint64_t indexed = 0, head = l->head_seq;
	MDB_txn *txn;
	int rc, err;

	snprintf(l->idir, sizeof(l->idir), "%s/index", l->dir);
	if (l->readonly) {
		/* Optional for readers: without it everything is "tail". */
		if (open_env(l, 0, false) != MDB_SUCCESS)
			l->ienv = NULL;
		return MMO_OK;
	}
	if (mkdir(l->idir, 0750) != 0 && errno != EEXIST)
		return MMO_EIO;
	rc = open_env(l, map_size, true);
	if (rc == MDB_SUCCESS) {
		err = evlog_index_rtxn(l, &txn, &indexed);
		if (err == MMO_OK)
			mdb_txn_abort(txn);
		if (err == MMO_OK && indexed <= head)
			return MMO_OK;
		mdb_env_close(l->ienv);
		l->ienv = NULL;
	}
	mmo_logf(MMO_LOG_WARN, "log",
	         "index in %s is unreadable or ahead of the log (%s): rebuilding it from seq 1",
	         l->idir, rc ? mdb_strerror(rc) : "checkpoint past the head");
	remove_env(l->idir);
	rc = open_env(l, map_size, true);
	return rc ? evlog_mdb_err(rc) : MMO_OK;
}

void evlog_index_close(evlog *l)
{
	if (l->ienv) {
		if (!l->readonly)
			mdb_env_sync(l->ienv, 1);
		mdb_env_close(l->ienv);
		l->ienv = NULL;
	}
}

int evlog_index_rtxn(evlog *l, MDB_txn **txn, uint64_t *indexed)
{
	MDB_val k = {7, "indexed"}, v;
	int rc;

	*indexed = 0;
	if (!l->ienv) {
		*txn = NULL;
		return MMO_OK;
	}
	rc = mdb_txn_begin(l->ienv, NULL, MDB_RDONLY, txn);
	if (rc == MDB_MAP_RESIZED) {
		mdb_env_set_mapsize(l->ienv, 0);
		rc = mdb_txn_begin(l->ienv, NULL, MDB_RDONLY, txn);
	}
	if (rc)
		return evlog_mdb_err(rc);
	rc = mdb_get(*txn, l->imeta, &k, &v);
	if (rc == MDB_SUCCESS && v.mv_size == 8)
		*indexed = mmo_be64_get(v.mv_data);
	else if (rc != MDB_NOTFOUND) {
		mdb_txn_abort(*txn);
		*txn = NULL;
		return rc ? evlog_mdb_err(rc) : MMO_ECORRUPT;
	}
	return MMO_OK;
}

size_t evlog_index_keys(const Mmo__Event *ev, struct evlog_ikey keys[EVLOG_IKEYS_MAX])
{
	size_t n = 0;

	if (ev->player_id && *ev->player_id)
		keys[n++] = (struct evlog_ikey){EVLOG_BY_PLAYER, ev->player_id};
	if (ev->type && *ev->type)
		keys[n++] = (struct evlog_ikey){EVLOG_BY_TYPE, ev->type};
	if (ev->region_id && *ev->region_id)
		keys[n++] = (struct evlog_ikey){EVLOG_BY_REGION, ev->region_id};
	return n;
}

MDB_dbi evlog_index_dbi(evlog *l, enum evlog_index idx)
{
	switch (idx) {
	case EVLOG_BY_PLAYER: return l->idx_player;
	case EVLOG_BY_TYPE: return l->idx_type;
	default: return l->idx_region;
	}
}

int evlog_index_sync(evlog *l, size_t max, uint64_t *indexed_out)
{
	struct mmo_arena arena = {0};
	MDB_txn *rtxn = NULL, *wtxn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v, mk = {7, "indexed"}, mv;
	uint8_t sk[8], ik[8];
	uint64_t indexed, done = 0;
	int err, rc;

	if (!l || l->readonly || !l->ienv)
		return MMO_EINVAL;
	if (mmo_arena_init(&arena, 0))
		return MMO_ENOMEM;
	rc = mdb_txn_begin(l->ienv, NULL, 0, &wtxn);
	if (rc) {
		err = evlog_mdb_err(rc);
		goto out;
	}
	rc = mdb_get(wtxn, l->imeta, &mk, &mv);
	indexed = rc == MDB_SUCCESS && mv.mv_size == 8 ? mmo_be64_get(mv.mv_data) : 0;
	err = evlog_rtxn(l, &rtxn);
	if (err)
		goto out;
	rc = mdb_cursor_open(rtxn, l->events, &cur);
	if (rc) {
		err = evlog_mdb_err(rc);
		goto out;
	}
	mmo_be64_put(sk, indexed + 1);
	k.mv_size = 8;
	k.mv_data = sk;
	rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	while (rc == MDB_SUCCESS && (!max || done < max)) {
		struct evlog_ikey keys[EVLOG_IKEYS_MAX];
		struct evlog_rec rec;
		Mmo__Event *ev;
		uint64_t seq;
		size_t nk;

		if (k.mv_size != 8 || (seq = mmo_be64_get(k.mv_data)) != indexed + 1 ||
		    evlog_rec_parse(seq, v.mv_data, v.mv_size, &rec) ||
		    mmo_event_decode_arena(&arena, rec.event, rec.event_len, &ev)) {
			/* A damaged log: index what precedes it; verify names it. */
			mmo_logf(MMO_LOG_ERROR, "log",
			         "indexer stopped at seq %llu: record damaged",
			         (unsigned long long)(indexed + 1));
			break;
		}
		mmo_be64_put(ik, seq);
		nk = evlog_index_keys(ev, keys);
		for (size_t i = 0; i < nk; i++) {
			MDB_val ek = {strlen(keys[i].key), (void *)keys[i].key}, ev8 = {8, ik};

			rc = mdb_put(wtxn, evlog_index_dbi(l, keys[i].idx), &ek, &ev8, 0);
			if (rc) {
				err = evlog_mdb_err(rc);
				goto out;
			}
		}
		indexed = seq;
		done++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
		err = evlog_mdb_err(rc);
		goto out;
	}
	if (done) {
		mmo_be64_put(ik, indexed);
		mv.mv_size = 8;
		mv.mv_data = ik;
		rc = mdb_put(wtxn, l->imeta, &mk, &mv, 0);
		if (rc) {
			err = evlog_mdb_err(rc);
			goto out;
		}
		rc = mdb_txn_commit(wtxn);
		wtxn = NULL;
		if (rc) {
			err = evlog_mdb_err(rc);
			goto out;
		}
		int64_t now = mmo_mono_us();
		if (now - l->isynced_us >= SYNC_EVERY_US) {
			mdb_env_sync(l->ienv, 1);
			l->isynced_us = now;
		}
	}
	if (indexed_out)
		*indexed_out = indexed;
	err = MMO_OK;
out:
	if (cur)
		mdb_cursor_close(cur);
	if (rtxn)
		mdb_txn_abort(rtxn);
	if (wtxn)
		mdb_txn_abort(wtxn);
	mmo_arena_release(&arena);
	return err;
}

/* Does ev carry key under idx (the same rule the indexer follows)? */
bool evlog_index_matches(const Mmo__Event *ev, enum evlog_index idx, const char *key)
{
	struct evlog_ikey keys[EVLOG_IKEYS_MAX];
	size_t n = evlog_index_keys(ev, keys);

	for (size_t i = 0; i < n; i++) {
		if (keys[i].idx == idx && !strcmp(keys[i].key, key))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ the indexer thread */

/* Events per index transaction. LMDB keeps the pages a transaction dirtied
 * on a free list for reuse, so this bounds the indexer's memory (random
 * player keys dirty about one page per event: 4096 events, ~16 MB). */
#define INDEX_CHUNK 4096

static void *indexer_main(void *arg)
{
	struct evlog_indexer *x = arg;
	uint64_t indexed = 0;
	bool failed = false;

	mmo_thread_name("log-indexer");
	for (;;) {
		uint64_t target;
		bool stop;
		int err;

		pthread_mutex_lock(&x->mu);
		while (!x->stop && x->committed <= indexed) {
			struct timespec ts;

			/* Also wake now and then: the head may come from before start. */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&x->cond, &x->mu, &ts);
			if (x->committed <= indexed)
				break;
		}
		target = x->committed;
		stop = x->stop;
		pthread_mutex_unlock(&x->mu);

		err = evlog_index_sync(x->log, INDEX_CHUNK, &indexed);
		if (err && !failed)
			mmo_logf(MMO_LOG_ERROR, "log", "indexer failed: %s (will retry)",
			         mmo_strerror(err));
		failed = err != MMO_OK;
		pthread_mutex_lock(&x->mu);
		x->indexed = indexed;
		pthread_mutex_unlock(&x->mu);
		if (stop && (indexed >= target || failed))
			break;
		if (failed) {
			struct timespec d = {0, 100 * 1000 * 1000};

			nanosleep(&d, NULL);
		}
	}
	return NULL;
}

int evlog_indexer_start(struct evlog_indexer *x, evlog *log)
{
	x->log = log;
	x->committed = log->head_seq;
	x->indexed = 0;
	x->stop = false;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cond, NULL);
	if (pthread_create(&x->thread, NULL, indexer_main, x) != 0) {
		pthread_cond_destroy(&x->cond);
		pthread_mutex_destroy(&x->mu);
		return MMO_ENOMEM;
	}
	return MMO_OK;
}

void evlog_indexer_notify(struct evlog_indexer *x, uint64_t head)
{
	pthread_mutex_lock(&x->mu);
	x->committed = head;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->mu);
}

void evlog_indexer_stop(struct evlog_indexer *x, uint64_t head)
{
	pthread_mutex_lock(&x->mu);
	if (head)
		x->committed = head;
	x->stop = true;
	pthread_cond_signal(&x->cond);
	pthread_mutex_unlock(&x->mu);
	pthread_join(x->thread, NULL);
	pthread_cond_destroy(&x->cond);
	pthread_mutex_destroy(&x->mu);
}

uint64_t evlog_indexer_indexed(struct evlog_indexer *x)
{
	uint64_t v;

	pthread_mutex_lock(&x->mu);
	v = x->indexed;
	pthread_mutex_unlock(&x->mu);
	return v;
}
