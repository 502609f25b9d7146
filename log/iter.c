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
	MDB_txn *txn;       /* log env snapshot */
	MDB_txn *itxn;      /* index env snapshot (NULL: no index) */
	MDB_cursor *ev_cur; /* over events */
	MDB_cursor *ix_cur; /* over an index */
	enum evlog_index idx;
	bool started;
	bool tail; /* index part done: scanning unindexed records */
	bool done;
	uint64_t from;
	uint64_t to;      /* last seq wanted (time iterators), 0 = no bound */
	uint64_t indexed; /* seqs <= indexed are in the index snapshot */
	size_t klen;
	char key[MMO_ID_MAX + 1];
	Mmo__Event *ev; /* tail scan: last decoded event */
};

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
		/* Index snapshot first: everything it holds is in the log snapshot
		 * taken after it; what is newer is read from the tail. */
		mdb_txn_abort(it->txn);
		it->txn = NULL;
		err = evlog_index_rtxn(l, &it->itxn, &it->indexed);
		if (!err)
			err = evlog_rtxn(l, &it->txn);
		if (!err && (rc = mdb_cursor_renew(it->txn, it->ev_cur)))
			err = evlog_mdb_err(rc);
		if (!err && it->itxn &&
		    (rc = mdb_cursor_open(it->itxn, evlog_index_dbi(l, idx), &it->ix_cur)))
			err = evlog_mdb_err(rc);
		if (err) {
			evlog_iter_close(it);
			return err;
		}
		it->tail = it->itxn == NULL;
	}
	*out = it;
	return MMO_OK;
}

int evlog_iter_open_time(evlog *l, int64_t since_us, int64_t until_us, evlog_iter **out)
{
	evlog_iter *it;
	uint64_t lo, hi;
	int err;

	if (!l || !out || until_us < since_us)
		return MMO_EINVAL;
	err = iter_new(l, &it);
	if (err)
		return err;
	it->idx = EVLOG_ALL;
	err = evlog_time_range(l, it->txn, since_us, until_us, &lo, &hi);
	if (err == MMO_ENOTFOUND) {
		it->done = true;
	} else if (err) {
		evlog_iter_close(it);
		return err;
	}
	it->from = lo;
	it->to = hi;
	*out = it;
	return MMO_OK;
}

/* ts of the record at seq (which exists: 1 <= seq <= head). */
static int ts_at(evlog *l, MDB_txn *txn, uint64_t seq, int64_t *ts)
{
	uint8_t sk[8];
	MDB_val k = {8, sk}, v;
	int rc;

	mmo_be64_put(sk, seq);
	rc = mdb_get(txn, l->events, &k, &v);
	if (rc)
		return rc == MDB_NOTFOUND ? MMO_ECORRUPT : evlog_mdb_err(rc);
	if (v.mv_size < EVLOG_HDR_LEN)
		return MMO_ECORRUPT;
	*ts = (int64_t)mmo_be64_get((const uint8_t *)v.mv_data + EVLOG_HASH_LEN);
	return MMO_OK;
}

/* The first seq in [1, head+1] whose ts is >= t. */
static int first_at_or_after(evlog *l, MDB_txn *txn, uint64_t head, int64_t t, uint64_t *out)
{
	uint64_t lo = 1, hi = head + 1;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		int64_t ts = 0;
		int err = ts_at(l, txn, mid, &ts);

		if (err)
			return err;
		if (ts < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	*out = lo;
	return MMO_OK;
}

int evlog_time_range(evlog *l, MDB_txn *txn, int64_t since, int64_t until, uint64_t *lo,
                     uint64_t *hi)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t head = 0, a, b;
	int rc, err;

	rc = mdb_cursor_open(txn, l->events, &cur);
	if (rc)
		return evlog_mdb_err(rc);
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == MDB_SUCCESS && k.mv_size == 8)
		head = mmo_be64_get(k.mv_data);
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return evlog_mdb_err(rc);
	if (head == 0 || until <= since)
		return MMO_ENOTFOUND;
	err = first_at_or_after(l, txn, head, since, &a);
	if (!err)
		err = first_at_or_after(l, txn, head, until, &b);
	if (err)
		return err;
	if (a >= b)
		return MMO_ENOTFOUND;
	*lo = a;
	*hi = b - 1;
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
	return evlog_rec_parse(mmo_be64_get(sv->mv_data), v.mv_data, v.mv_size, rec);
}

static int next_all(evlog_iter *it, struct evlog_rec *rec)
{
	uint8_t sk[8];
	MDB_val k, v;
	int rc;

	if (!it->started) {
		mmo_be64_put(sk, it->from);
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
	return evlog_rec_parse(mmo_be64_get(k.mv_data), v.mv_data, v.mv_size, rec);
}

/* The unindexed tail: records after the index snapshot, decoded and
 * matched by the indexer's own rule. */
static int next_tail(evlog_iter *it, struct evlog_rec *rec)
{
	uint8_t sk[8];
	MDB_val k, v;
	int rc, err;

	for (;;) {
		if (!it->started) {
			uint64_t from = it->from > it->indexed ? it->from : it->indexed + 1;

			mmo_be64_put(sk, from);
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
		err = evlog_rec_parse(mmo_be64_get(k.mv_data), v.mv_data, v.mv_size, rec);
		if (err)
			return err;
		mmo_event_free(it->ev);
		it->ev = NULL;
		if (mmo_event_decode(rec->event, rec->event_len, &it->ev) != MMO_OK)
			return MMO_ECORRUPT;
		if (evlog_index_matches(it->ev, it->idx, it->key))
			return MMO_OK;
	}
}

static int next_index(evlog_iter *it, struct evlog_rec *rec)
{
	uint8_t sk[8];
	MDB_val k, v;
	int rc;

	if (!it->tail) {
		if (!it->started) {
			mmo_be64_put(sk, it->from);
			k.mv_size = it->klen;
			k.mv_data = it->key;
			v.mv_size = 8;
			v.mv_data = sk;
			rc = mdb_cursor_get(it->ix_cur, &k, &v, MDB_GET_BOTH_RANGE);
			it->started = true;
		} else {
			rc = mdb_cursor_get(it->ix_cur, &k, &v, MDB_NEXT_DUP);
		}
		if (rc == MDB_SUCCESS && v.mv_size == 8 && mmo_be64_get(v.mv_data) <= it->indexed)
			return fetch(it, &v, rec);
		if (rc && rc != MDB_NOTFOUND)
			return evlog_mdb_err(rc);
		it->tail = true;
		it->started = false;
	}
	return next_tail(it, rec);
}

int evlog_iter_next(evlog_iter *it, struct evlog_rec *rec)
{
	int err;

	if (!it || !rec)
		return MMO_EINVAL;
	if (it->done)
		return MMO_ENOTFOUND;
	if (it->idx == EVLOG_ALL) {
		err = next_all(it, rec);
		if (!err && it->to && rec->seq > it->to)
			err = MMO_ENOTFOUND;
	} else {
		err = next_index(it, rec);
	}
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
	if (it->txn)
		mdb_txn_abort(it->txn);
	if (it->itxn)
		mdb_txn_abort(it->itxn);
	mmo_event_free(it->ev);
	free(it);
}

int evlog_region_prev(evlog *l, const char *region, uint64_t before, uint64_t *prev)
{
	return evlog_region_prev_upto(l, region, before, UINT64_MAX, prev);
}

int evlog_region_prev_upto(evlog *l, const char *region, uint64_t before, uint64_t tail_max,
                           uint64_t *prev)
{
	MDB_txn *txn = NULL, *itxn = NULL;
	MDB_cursor *cur = NULL;
	uint64_t indexed = 0;
	uint8_t sk[8];
	MDB_val k, v;
	int err, rc;

	*prev = 0;
	err = evlog_index_rtxn(l, &itxn, &indexed);
	if (!err)
		err = evlog_rtxn(l, &txn);
	if (err)
		goto out;
	/* The unindexed tail first, newest to oldest. */
	if (before > indexed + 1 && tail_max > indexed) {
		rc = mdb_cursor_open(txn, l->events, &cur);
		if (rc) {
			err = evlog_mdb_err(rc);
			goto out;
		}
		mmo_be64_put(sk, before - 1 < tail_max ? before - 1 : tail_max);
		k.mv_size = 8;
		k.mv_data = sk;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		while (rc == MDB_SUCCESS && k.mv_size == 8 && mmo_be64_get(k.mv_data) > indexed) {
			struct evlog_rec rec;
			Mmo__Event *ev;

			if (evlog_rec_parse(mmo_be64_get(k.mv_data), v.mv_data, v.mv_size, &rec) ==
			        MMO_OK &&
			    mmo_event_decode(rec.event, rec.event_len, &ev) == MMO_OK) {
				bool hit = evlog_index_matches(ev, EVLOG_BY_REGION, region);

				mmo_event_free(ev);
				if (hit) {
					*prev = rec.seq;
					goto out;
				}
			}
			rc = mdb_cursor_get(cur, &k, &v, MDB_PREV);
		}
		mdb_cursor_close(cur);
		cur = NULL;
	}
	if (!itxn)
		goto out;
	/* Then the index: the last entry of the region below `before`. */
	rc = mdb_cursor_open(itxn, l->idx_region, &cur);
	if (rc) {
		err = evlog_mdb_err(rc);
		goto out;
	}
	mmo_be64_put(sk, before);
	k.mv_size = strlen(region);
	k.mv_data = (void *)region;
	v.mv_size = 8;
	v.mv_data = sk;
	rc = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH_RANGE);
	if (rc == MDB_SUCCESS)
		rc = mdb_cursor_get(cur, &k, &v, MDB_PREV_DUP);
	else if (rc == MDB_NOTFOUND) {
		k.mv_size = strlen(region);
		k.mv_data = (void *)region;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		if (rc == MDB_SUCCESS)
			rc = mdb_cursor_get(cur, &k, &v, MDB_LAST_DUP);
	}
	if (rc == MDB_SUCCESS && v.mv_size == 8 && mmo_be64_get(v.mv_data) < before)
		*prev = mmo_be64_get(v.mv_data);
out:
	if (cur)
		mdb_cursor_close(cur);
	if (txn)
		mdb_txn_abort(txn);
	if (itxn)
		mdb_txn_abort(itxn);
	return err;
}
