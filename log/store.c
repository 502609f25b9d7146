/* store.c - the LMDB journal: open, append, lookups.
 *
 * See evlog.h for the on-disk layout. The writer keeps the head seq and
 * hash in memory and extends the chain as it appends; a batch (records,
 * the ids map, the meta head) goes into one write transaction, so a crash
 * leaves either all of it or none of it. The secondary indexes are not in
 * that transaction: they live in their own environment, kept off the ack
 * path by the indexer (index.c). Group commit, the batching of requests
 * into one evlog_append, is the intake's (intake.c). The record format
 * and its decoding are rec.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "evlog_int.h"

#define DEFAULT_MAP_SIZE ((size_t)16 << 30)

static const uint8_t zero_hash[EVLOG_HASH_LEN];

/* ------------------------------------------------------------ open/close */

static void __attribute__((format(printf, 3, 4)))
set_msg(char *msg, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!msg || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, len, fmt, ap);
	va_end(ap);
}

static int load_head(evlog *l, MDB_txn *txn)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	l->head_seq = 0;
	memcpy(l->head_hash, zero_hash, EVLOG_HASH_LEN);
	l->last_ts = 0;
	rc = mdb_cursor_open(txn, l->events, &cur);
	if (rc)
		return evlog_mdb_err(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == MDB_SUCCESS) {
		if (k.mv_size != 8 || v.mv_size < EVLOG_HDR_LEN) {
			mdb_cursor_close(cur);
			return MMO_ECORRUPT;
		}
		l->head_seq = mmo_be64_get(k.mv_data);
		memcpy(l->head_hash, v.mv_data, EVLOG_HASH_LEN);
		l->last_ts = (int64_t)mmo_be64_get((const uint8_t *)v.mv_data + EVLOG_HASH_LEN);
		rc = MDB_SUCCESS;
	} else if (rc == MDB_NOTFOUND) {
		rc = MDB_SUCCESS;
	}
	mdb_cursor_close(cur);
	return evlog_mdb_err(rc);
}

static int open_dbis(evlog *l, MDB_txn *txn, char *msg, size_t msglen)
{
	unsigned create = l->readonly ? 0 : MDB_CREATE;
	struct {
		const char *name;
		MDB_dbi *dbi;
		unsigned flags;
	} t[] = {
	    {"events", &l->events, 0},
	    {"ids", &l->ids, 0},
	    {"meta", &l->meta, 0},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int rc = mdb_dbi_open(txn, t[i].name, t[i].flags | create, t[i].dbi);

		if (rc == MDB_NOTFOUND) {
			set_msg(msg, msglen, "%s is not an mmo log (no '%s' table)", l->dir,
			        t[i].name);
			return MMO_EINVAL;
		}
		if (rc) {
			set_msg(msg, msglen, "cannot open table in %s: %s", l->dir,
			        mdb_strerror(rc));
			return evlog_mdb_err(rc);
		}
	}
	return MMO_OK;
}

static int check_format(evlog *l, MDB_txn *txn, char *msg, size_t msglen)
{
	MDB_val k = {6, "format"}, v;
	uint8_t fmt[4];
	int rc = mdb_get(txn, l->meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		if (l->readonly)
			return MMO_OK; /* a log that was never written to */
		mmo_be32_put(fmt, EVLOG_FORMAT);
		v.mv_size = sizeof(fmt);
		v.mv_data = fmt;
		rc = mdb_put(txn, l->meta, &k, &v, 0);
		return evlog_mdb_err(rc);
	}
	if (rc)
		return evlog_mdb_err(rc);
	if (v.mv_size != 4) {
		set_msg(msg, msglen, "%s: format record is corrupt", l->dir);
		return MMO_ECORRUPT;
	}
	uint32_t have = mmo_be32_get(v.mv_data);
	if (have > EVLOG_FORMAT) {
		set_msg(msg, msglen,
		        "%s: log format %u is newer than this build supports (%u); upgrade mmo",
		        l->dir, have, EVLOG_FORMAT);
		return MMO_EVERSION;
	}
	return MMO_OK;
}

int evlog_open(const struct evlog_opts *o, evlog **out, char *msg, size_t msglen)
{
	evlog *l = NULL;
	MDB_txn *txn = NULL;
	unsigned flags = MDB_NOTLS;
	int rc, err;

	if (!o || !o->dir || !*o->dir || strlen(o->dir) >= sizeof(l->dir)) {
		set_msg(msg, msglen, "no log folder given");
		return MMO_EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return MMO_ENOMEM;
	snprintf(l->dir, sizeof(l->dir), "%s", o->dir);
	l->readonly = o->readonly;
	if (!l->readonly) {
		if (mkdir(o->dir, 0750) != 0 && errno != EEXIST) {
			set_msg(msg, msglen, "cannot create %s: %s", o->dir, strerror(errno));
			err = MMO_EIO;
			goto out_free;
		}
		if (mmo_arena_init(&l->arena, 0)) {
			err = MMO_ENOMEM;
			goto out_free;
		}
	}
	rc = mdb_env_create(&l->env);
	if (rc) {
		err = evlog_mdb_err(rc);
		goto out_free;
	}
	mdb_env_set_maxdbs(l->env, 16);
	mdb_env_set_maxreaders(l->env, 512);
	if (!l->readonly)
		mdb_env_set_mapsize(l->env, o->map_size ? o->map_size : DEFAULT_MAP_SIZE);
	if (l->readonly)
		flags |= MDB_RDONLY;
	if (o->nosync)
		flags |= MDB_NOSYNC;
	rc = mdb_env_open(l->env, o->dir, flags, 0640);
	if (rc && l->readonly && (rc == EACCES || rc == EROFS)) {
		/* A read-only copy (a snapshot, a CD, a mount): no lock file. */
		rc = mdb_env_open(l->env, o->dir, flags | MDB_NOLOCK, 0640);
	}
	if (rc) {
		set_msg(msg, msglen, "cannot open log %s: %s", o->dir,
		        rc == ENOENT ? "no such log" : mdb_strerror(rc));
		err = rc == ENOENT ? MMO_ENOTFOUND : evlog_mdb_err(rc);
		goto out_env;
	}
	rc = mdb_txn_begin(l->env, NULL, l->readonly ? MDB_RDONLY : 0, &txn);
	if (rc) {
		set_msg(msg, msglen, "cannot begin transaction on %s: %s", o->dir,
		        mdb_strerror(rc));
		err = evlog_mdb_err(rc);
		goto out_env;
	}
	err = open_dbis(l, txn, msg, msglen);
	if (err)
		goto out_txn;
	err = check_format(l, txn, msg, msglen);
	if (err)
		goto out_txn;
	err = load_head(l, txn);
	if (err) {
		set_msg(msg, msglen, "%s: the last record is corrupt", o->dir);
		goto out_txn;
	}
	if (!l->readonly) {
		/* Never hand out a seq twice: if records past the last one are
		 * recorded in the meta head, the tail was cut. */
		MDB_val mk = {4, "head"}, mv;

		rc = mdb_get(txn, l->meta, &mk, &mv);
		if (rc == MDB_SUCCESS && mv.mv_size == 8 + EVLOG_HASH_LEN &&
		    (mmo_be64_get(mv.mv_data) != l->head_seq ||
		     memcmp((const uint8_t *)mv.mv_data + 8, l->head_hash, EVLOG_HASH_LEN) != 0)) {
			set_msg(msg, msglen,
			        "%s: the meta head (seq %llu) does not match the last record (seq "
			        "%llu): "
			        "records are missing or altered; refusing to write (see mmo audit "
			        "verify)",
			        o->dir, (unsigned long long)mmo_be64_get(mv.mv_data),
			        (unsigned long long)l->head_seq);
			err = MMO_ECORRUPT;
			goto out_txn;
		}
	}
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc) {
		set_msg(msg, msglen, "cannot initialise %s: %s", o->dir, mdb_strerror(rc));
		err = evlog_mdb_err(rc);
		goto out_env;
	}
	err = evlog_index_open(l, o->map_size ? o->map_size : DEFAULT_MAP_SIZE);
	if (err) {
		set_msg(msg, msglen, "cannot open the index of %s: %s", o->dir, mmo_errdesc(err));
		goto out_env;
	}
	*out = l;
	return MMO_OK;

out_txn:
	mdb_txn_abort(txn);
out_env:
	mdb_env_close(l->env);
out_free:
	mmo_arena_release(&l->arena);
	free(l);
	return err;
}

void evlog_close(evlog *l)
{
	if (!l)
		return;
	evlog_index_close(l);
	mdb_env_close(l->env);
	mmo_arena_release(&l->arena);
	free(l);
}

int evlog_head(evlog *l, uint64_t *seq, uint8_t hash[EVLOG_HASH_LEN])
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int err = evlog_rtxn(l, &txn);
	int rc;

	if (err)
		return err;
	rc = mdb_cursor_open(txn, l->events, &cur);
	if (rc) {
		mdb_txn_abort(txn);
		return evlog_mdb_err(rc);
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == MDB_NOTFOUND) {
		*seq = 0;
		if (hash)
			memset(hash, 0, EVLOG_HASH_LEN);
		err = MMO_OK;
	} else if (rc) {
		err = evlog_mdb_err(rc);
	} else if (k.mv_size != 8 || v.mv_size < EVLOG_HDR_LEN) {
		err = MMO_ECORRUPT;
	} else {
		*seq = mmo_be64_get(k.mv_data);
		if (hash)
			memcpy(hash, v.mv_data, EVLOG_HASH_LEN);
		err = MMO_OK;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return err;
}

/* ------------------------------------------------------------ append */

/* Same id already logged: the original seq if the payload is identical. */
static int check_dup(evlog *l, MDB_txn *txn, const MDB_val *idv, const struct evlog_in *in,
                     struct evlog_out *o)
{
	uint8_t sk[8];
	MDB_val k = {8, sk}, v;
	int rc;

	if (idv->mv_size != 8)
		return MMO_ECORRUPT;
	memcpy(sk, idv->mv_data, 8);
	rc = mdb_get(txn, l->events, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? MMO_ECORRUPT : evlog_mdb_err(rc);
	if (v.mv_size != EVLOG_HDR_LEN + in->len ||
	    memcmp((const uint8_t *)v.mv_data + EVLOG_HDR_LEN, in->buf, in->len) != 0)
		return MMO_ECONFLICT;
	o->seq = mmo_be64_get(sk);
	o->dup = true;
	return MMO_OK;
}

/* Append one event inside txn. Returns MMO_OK with o filled, an event error
 * (the event is refused, the batch goes on) or, through *fatal, an LMDB
 * error that dooms the whole transaction. */
static int append_one(evlog *l, MDB_txn *txn, const struct evlog_in *in, int64_t ts,
                      struct evlog_out *o, int *fatal)
{
	Mmo__Event *ev;
	uint8_t sk[8];
	MDB_val k, v, idk, idv;
	uint64_t seq;
	uint8_t *rec;
	int err, rc;

	err = mmo_event_decode_arena(&l->arena, in->buf, in->len, &ev);
	if (err)
		return err;
	err = mmo_event_validate(ev, NULL);
	if (err)
		return err;
	if (ev->seq != 0 || ev->ts != 0)
		return MMO_EINVAL; /* the log assigns both */

	idk.mv_size = strlen(ev->event_id);
	idk.mv_data = ev->event_id;
	rc = mdb_get(txn, l->ids, &idk, &idv);
	if (rc == MDB_SUCCESS) {
		err = check_dup(l, txn, &idv, in, o);
		if (err == MMO_ECORRUPT || err == MMO_EIO)
			*fatal = err;
		return err;
	}
	if (rc != MDB_NOTFOUND)
		goto fail;

	seq = l->head_seq + 1;
	mmo_be64_put(sk, seq);
	k.mv_size = 8;
	k.mv_data = sk;
	v.mv_size = EVLOG_HDR_LEN + in->len;
	v.mv_data = NULL;
	rc = mdb_put(txn, l->events, &k, &v, MDB_APPEND | MDB_RESERVE);
	if (rc)
		goto fail;
	rec = v.mv_data;
	mmo_be64_put(rec + EVLOG_HASH_LEN, (uint64_t)ts);
	rec[EVLOG_HASH_LEN + 8] = (uint8_t)mmo_event_priority(ev);
	memset(rec + EVLOG_HASH_LEN + 9, 0, 3);
	memcpy(rec + EVLOG_HDR_LEN, in->buf, in->len);
	evlog_chain_hash(l->head_hash, seq, rec + EVLOG_HASH_LEN, v.mv_size - EVLOG_HASH_LEN, rec);
	/* rec is valid only until the next put: keep what we need of it. */
	memcpy(o->hash, rec, EVLOG_HASH_LEN);
	o->priority = rec[EVLOG_HASH_LEN + 8];
	rec = NULL;

	idv.mv_size = 8;
	idv.mv_data = sk;
	rc = mdb_put(txn, l->ids, &idk, &idv, MDB_NOOVERWRITE);
	if (rc)
		goto fail;
	l->head_seq = seq;
	memcpy(l->head_hash, o->hash, EVLOG_HASH_LEN);
	o->seq = seq;
	o->ts = ts;
	snprintf(o->region_id, sizeof(o->region_id), "%s", ev->region_id);
	return MMO_OK;
fail:
	*fatal = evlog_mdb_err(rc);
	return *fatal;
}

int evlog_append(evlog *l, const struct evlog_in *in, size_t n, int64_t ts_us,
                 struct evlog_out *out)
{
	uint64_t head0 = l->head_seq;
	uint8_t hash0[EVLOG_HASH_LEN];
	uint8_t hv[8 + EVLOG_HASH_LEN];
	MDB_val k = {4, "head"}, v = {sizeof(hv), hv};
	MDB_txn *txn;
	int fatal = MMO_OK, rc;
	int64_t ts;

	if (l->readonly)
		return MMO_EINVAL;
	memcpy(hash0, l->head_hash, EVLOG_HASH_LEN);
	ts = ts_us > l->last_ts ? ts_us : l->last_ts; /* never goes back */

	rc = mdb_txn_begin(l->env, NULL, 0, &txn);
	if (rc) {
		fatal = evlog_mdb_err(rc);
		goto out_fail;
	}
	/* Another process may have appended (an operator command while the
	 * server runs): LMDB serialises writers, so the head read here, inside
	 * the write transaction, is the true one. */
	fatal = load_head(l, txn);
	if (fatal)
		goto out_abort;
	head0 = l->head_seq;
	memcpy(hash0, l->head_hash, EVLOG_HASH_LEN);
	if (l->last_ts > ts)
		ts = l->last_ts;
	for (size_t i = 0; i < n && !fatal; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].err = append_one(l, txn, &in[i], ts, &out[i], &fatal);
	}
	if (fatal)
		goto out_abort;
	if (l->head_seq != head0) {
		mmo_be64_put(hv, l->head_seq);
		memcpy(hv + 8, l->head_hash, EVLOG_HASH_LEN);
		rc = mdb_put(txn, l->meta, &k, &v, 0);
		if (rc) {
			fatal = evlog_mdb_err(rc);
			goto out_abort;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc) {
		fatal = evlog_mdb_err(rc);
		goto out_fail;
	}
	l->last_ts = ts;
	return MMO_OK;

out_abort:
	mdb_txn_abort(txn);
out_fail:
	l->head_seq = head0;
	memcpy(l->head_hash, hash0, EVLOG_HASH_LEN);
	for (size_t i = 0; i < n; i++) {
		memset(&out[i], 0, sizeof(out[i]));
		out[i].err = fatal;
	}
	return fatal;
}

/* ------------------------------------------------------------ lookups */

int evlog_get(evlog *l, uint64_t seq, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t sk[8];
	MDB_val k = {8, sk}, v;
	MDB_txn *txn;
	int err = evlog_rtxn(l, &txn);
	int rc;

	if (err)
		return err;
	mmo_be64_put(sk, seq);
	rc = mdb_get(txn, l->events, &k, &v);
	if (rc) {
		err = evlog_mdb_err(rc);
	} else if (v.mv_size > cap) {
		err = MMO_ETOOBIG;
	} else {
		memcpy(buf, v.mv_data, v.mv_size);
		*len = v.mv_size;
		err = MMO_OK;
	}
	mdb_txn_abort(txn);
	return err;
}

int evlog_find_id(evlog *l, const char *event_id, uint64_t *seq)
{
	MDB_val k, v;
	MDB_txn *txn;
	int err, rc;

	if (!mmo_id_valid(event_id))
		return MMO_EBADID;
	err = evlog_rtxn(l, &txn);
	if (err)
		return err;
	k.mv_size = strlen(event_id);
	k.mv_data = (void *)event_id;
	rc = mdb_get(txn, l->ids, &k, &v);
	if (rc) {
		err = evlog_mdb_err(rc);
	} else if (v.mv_size != 8) {
		err = MMO_ECORRUPT;
	} else {
		*seq = mmo_be64_get(v.mv_data);
		err = MMO_OK;
	}
	mdb_txn_abort(txn);
	return err;
}
