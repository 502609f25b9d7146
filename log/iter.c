/* iter.c - zero-copy iterators over the journal and its indexes.
 *
 * An iterator owns one read transaction (a consistent snapshot taken at
 * open) and reads records straight from the map.
 */
#include <stdlib.h>
#include <string.h>

#include "evlog_int.h"

struct evlog_iter {
	evlog *log;
	MDB_txn *txn;
	MDB_cursor *ev_cur;  /* over events (EVLOG_ALL) */
	MDB_cursor *ix_cur;  /* over an index */
	enum evlog_index idx;
	bool time;
	bool started;
	bool done;
	uint64_t from;
	uint8_t until_key[8]; /* time iterators: stop at ts >= until */
	size_t klen;
	char key[MMO_ID_MAX + 1];
};

static MDB_dbi index_dbi(evlog *l, enum evlog_index idx)
{
	switch (idx) {
	case EVLOG_BY_PLAYER:
		return l->idx_player;
	case EVLOG_BY_TYPE:
		return l->idx_type;
	case EVLOG_BY_REGION:
		return l->idx_region;
	default:
		return l->events;
	}
}

static int iter_new(evlog *l, evlog_iter **out)
{
	evlog_iter *it = calloc(1, sizeof(*it));
	int err, rc;

	if (!it)
		return MMO_ENOMEM;
	it->log = l;
	err = evlog_rtxn(l, &it->txn);
	if (err) {
		free(it);
		return err;
	}
	rc = mdb_cursor_open(it->txn, l->events, &it->ev_cur);
	if (rc) {
		mdb_txn_abort(it->txn);
		free(it);
		return evlog_mdb_err(rc);
	}
	*out = it;
	return MMO_OK;
}

int evlog_iter_open(evlog *l, enum evlog_index idx, const char *key, uint64_t from_seq,
                    evlog_iter **out)
{
	evlog_iter *it;
	int err, rc;

	if (!l || !out || idx < EVLOG_ALL || idx > EVLOG_BY_REGION)
		return MMO_EINVAL;
	if (idx != EVLOG_ALL) {
		if (!key || !*key || strlen(key) > MMO_ID_MAX)
			return MMO_EINVAL;
	}
	err = iter_new(l, &it);
	if (err)
		return err;
	it->idx = idx;
	it->from = from_seq ? from_seq : 1;
	if (idx != EVLOG_ALL) {
		it->klen = strlen(key);
		memcpy(it->key, key, it->klen + 1);
		rc = mdb_cursor_open(it->txn, index_dbi(l, idx), &it->ix_cur);
		if (rc) {
			evlog_iter_close(it);
			return evlog_mdb_err(rc);
		}
	}
	*out = it;
	return MMO_OK;
}

int evlog_iter_open_time(evlog *l, int64_t since_us, int64_t until_us, evlog_iter **out)
{
	evlog_iter *it;
	int err, rc;

	if (!l || !out || until_us < since_us)
		return MMO_EINVAL;
	err = iter_new(l, &it);
	if (err)
		return err;
	it->time = true;
	it->from = (uint64_t)(since_us < 0 ? 0 : since_us);
	be64_put(it->until_key, (uint64_t)(until_us < 0 ? 0 : until_us));
	rc = mdb_cursor_open(it->txn, l->idx_time, &it->ix_cur);
	if (rc) {
		evlog_iter_close(it);
		return evlog_mdb_err(rc);
	}
	*out = it;
	return MMO_OK;
}

/* Fetch the event a seq index value points at. */
static int fetch(evlog_iter *it, const MDB_val *sv, struct evlog_rec *rec)
{
	MDB_val k, v;
	int rc;

	if (sv->mv_size != 8)
		return MMO_ECORRUPT;
	k = *sv;
	rc = mdb_cursor_get(it->ev_cur, &k, &v, MDB_SET_KEY);
	if (rc == MDB_NOTFOUND)
		return MMO_ECORRUPT; /* an index entry without its event */
	if (rc)
		return evlog_mdb_err(rc);
	return evlog_rec_parse(be64_get(sv->mv_data), v.mv_data, v.mv_size, rec);
}

static int next_all(evlog_iter *it, struct evlog_rec *rec)
{
	uint8_t sk[8];
	MDB_val k, v;
	int rc;

	if (!it->started) {
		be64_put(sk, it->from);
		k.mv_size = 8;
		k.mv_data = sk;
		rc = mdb_cursor_get(it->ev_cur, &k, &v, MDB_SET_RANGE);
		it->started = true;
	} else {
		rc = mdb_cursor_get(it->ev_cur, &k, &v, MDB_NEXT);
	}
	if (rc)
		return evlog_mdb_err(rc);
	if (k.mv_size != 8)
		return MMO_ECORRUPT;
	return evlog_rec_parse(be64_get(k.mv_data), v.mv_data, v.mv_size, rec);
}

static int next_index(evlog_iter *it, struct evlog_rec *rec)
{
	uint8_t sk[8];
	MDB_val k, v;
	int rc;

	if (!it->started) {
		be64_put(sk, it->from);
		k.mv_size = it->klen;
		k.mv_data = it->key;
		v.mv_size = 8;
		v.mv_data = sk;
		rc = mdb_cursor_get(it->ix_cur, &k, &v, MDB_GET_BOTH_RANGE);
		it->started = true;
	} else {
		rc = mdb_cursor_get(it->ix_cur, &k, &v, MDB_NEXT_DUP);
	}
	if (rc)
		return evlog_mdb_err(rc);
	return fetch(it, &v, rec);
}

static int next_time(evlog_iter *it, struct evlog_rec *rec)
{
	uint8_t tk[8];
	MDB_val k, v;
	int rc;

	if (!it->started) {
		be64_put(tk, it->from);
		k.mv_size = 8;
		k.mv_data = tk;
		rc = mdb_cursor_get(it->ix_cur, &k, &v, MDB_SET_RANGE);
		it->started = true;
	} else {
		rc = mdb_cursor_get(it->ix_cur, &k, &v, MDB_NEXT);
	}
	if (rc)
		return evlog_mdb_err(rc);
	if (k.mv_size != 8)
		return MMO_ECORRUPT;
	if (memcmp(k.mv_data, it->until_key, 8) >= 0)
		return MMO_ENOTFOUND;
	return fetch(it, &v, rec);
}

int evlog_iter_next(evlog_iter *it, struct evlog_rec *rec)
{
	int err;

	if (!it || !rec)
		return MMO_EINVAL;
	if (it->done)
		return MMO_ENOTFOUND;
	if (it->time)
		err = next_time(it, rec);
	else if (it->idx == EVLOG_ALL)
		err = next_all(it, rec);
	else
		err = next_index(it, rec);
	if (err)
		it->done = true;
	return err;
}

void evlog_iter_close(evlog_iter *it)
{
	if (!it)
		return;
	if (it->ix_cur)
		mdb_cursor_close(it->ix_cur);
	if (it->ev_cur)
		mdb_cursor_close(it->ev_cur);
	mdb_txn_abort(it->txn);
	free(it);
}
