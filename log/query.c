/* query.c - the auditors' queries: several filters, one driving index.
 *
 * A query holds one read transaction (its snapshot). It reads the candidates
 * of the most selective filter in seq order:
 *   - the events table over the seq range (from/to, narrowed by since/until
 *     by binary search: ts never goes backwards, so a time window is a seq
 *     range),
 *   - or the dup list of one player or region key,
 *   - or the dup lists of every type key matching an exact type or a prefix
 *     ending in '.', merged in seq order (a handful of keys: linear minimum).
 * The other filters are checked per candidate by an MDB_GET_BOTH lookup in
 * their index, so nothing is decoded. The index lags the log a little (it is
 * written off the ack path, see index.c): records past its checkpoint are
 * scanned after the index streams end, decoded and matched by the
 * indexer's own rule. The timestamp, in the record header, is
 * checked too, so a time filter never lets a wrong event through.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evlog_int.h"

#define TYPE_KEYS_MAX 256 /* type keys one prefix may match */

struct stream {
	MDB_cursor *cur;
	uint64_t seq; /* current candidate; valid when live */
	bool live;
	size_t klen;
	char key[MMO_ID_MAX + 1];
};

struct evlog_query_it {
	evlog *log;
	MDB_txn *txn;
	MDB_txn *itxn;    /* index snapshot, taken before txn; NULL: no index */
	uint64_t indexed; /* seqs <= indexed are in it */
	bool in_tail;     /* index driver done: scanning the unindexed tail */
	char type[MMO_ID_MAX + 1];
	bool type_prefix;
	Mmo__Event *ev; /* last decoded tail event */
	MDB_cursor *ev_cur;
	enum evlog_query_driver driver;
	bool empty;      /* nothing can match: next() ends at once */
	bool started;    /* seq driver: cursor positioned */
	uint64_t lo, hi; /* seq range */
	bool since_set, until_set;
	int64_t since, until;
	uint64_t head, candidates, scanned;

	/* Filters checked by lookup (those that do not drive). */
	MDB_cursor *player_cur, *region_cur, *type_cur;
	char player[MMO_ID_MAX + 1], region[MMO_ID_MAX + 1];
	struct stream *types; /* every matching type key (filter or driver) */
	size_t ntypes;
	struct stream one; /* player or region driver */
};

static bool set(const char *s)
{
	return s && *s;
}

static int cursor(evlog_query_it *it, MDB_dbi dbi, MDB_cursor **out)
{
	return evlog_mdb_err(mdb_cursor_open(it->txn, dbi, out));
}

/* A cursor on an index table (in the index snapshot). */
static int icursor(evlog_query_it *it, MDB_dbi dbi, MDB_cursor **out)
{
	return evlog_mdb_err(mdb_cursor_open(it->itxn, dbi, out));
}

/* Entries of one key in a dupsort table (0 if the key is absent). */
static int key_count(MDB_cursor *cur, const char *key, size_t klen, uint64_t *n)
{
	MDB_val k = {klen, (void *)key}, v;
	size_t c;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_SET);

	if (rc == MDB_NOTFOUND) {
		*n = 0;
		return MMO_OK;
	}
	if (rc)
		return evlog_mdb_err(rc);
	rc = mdb_cursor_count(cur, &c);
	if (rc)
		return evlog_mdb_err(rc);
	*n = c;
	return MMO_OK;
}

/* Collect the type keys matching q->type (exact, or prefix ending in '.'). */
static int type_keys(evlog_query_it *it, const char *type, uint64_t *total)
{
	size_t plen = strlen(type);
	bool prefix = type[plen - 1] == '.';
	MDB_val k = {plen, (void *)type}, v;
	int rc, err;

	*total = 0;
	it->types = calloc(prefix ? TYPE_KEYS_MAX : 1, sizeof(*it->types));
	if (!it->types)
		return MMO_ENOMEM;
	err = icursor(it, it->log->idx_type, &it->type_cur);
	if (err)
		return err;
	if (!prefix) {
		uint64_t n;

		err = key_count(it->type_cur, type, plen, &n);
		if (err)
			return err;
		if (n) {
			memcpy(it->types[0].key, type, plen + 1);
			it->types[0].klen = plen;
			it->ntypes = 1;
			*total = n;
		}
		return MMO_OK;
	}
	rc = mdb_cursor_get(it->type_cur, &k, &v, MDB_SET_RANGE);
	while (rc == MDB_SUCCESS) {
		size_t c;
		struct stream *s;

		if (k.mv_size < plen || memcmp(k.mv_data, type, plen) != 0)
			break;
		if (k.mv_size > MMO_ID_MAX || it->ntypes == TYPE_KEYS_MAX)
			return MMO_ECORRUPT;
		s = &it->types[it->ntypes++];
		memcpy(s->key, k.mv_data, k.mv_size);
		s->key[k.mv_size] = 0;
		s->klen = k.mv_size;
		rc = mdb_cursor_count(it->type_cur, &c);
		if (rc)
			return evlog_mdb_err(rc);
		*total += c;
		rc = mdb_cursor_get(it->type_cur, &k, &v, MDB_NEXT_NODUP);
	}
	if (rc && rc != MDB_NOTFOUND)
		return evlog_mdb_err(rc);
	return MMO_OK;
}

static int head_of(MDB_cursor *ev_cur, uint64_t *head)
{
	MDB_val k, v;
	int rc = mdb_cursor_get(ev_cur, &k, &v, MDB_LAST);

	*head = 0;
	if (rc == MDB_NOTFOUND)
		return MMO_OK;
	if (rc)
		return evlog_mdb_err(rc);
	if (k.mv_size != 8)
		return MMO_ECORRUPT;
	*head = mmo_be64_get(k.mv_data);
	return MMO_OK;
}

/* Position a stream at its first seq >= from. */
static int stream_start(struct stream *s, uint64_t from)
{
	uint8_t sk[8];
	MDB_val k = {s->klen, s->key}, v = {8, sk};
	int rc;

	mmo_be64_put(sk, from);
	rc = mdb_cursor_get(s->cur, &k, &v, MDB_GET_BOTH_RANGE);
	s->live = rc == MDB_SUCCESS;
	if (rc == MDB_NOTFOUND)
		return MMO_OK;
	if (rc)
		return evlog_mdb_err(rc);
	if (v.mv_size != 8)
		return MMO_ECORRUPT;
	s->seq = mmo_be64_get(v.mv_data);
	return MMO_OK;
}

static int stream_next(struct stream *s)
{
	MDB_val k, v;
	int rc = mdb_cursor_get(s->cur, &k, &v, MDB_NEXT_DUP);

	s->live = rc == MDB_SUCCESS;
	if (rc == MDB_NOTFOUND)
		return MMO_OK;
	if (rc)
		return evlog_mdb_err(rc);
	if (v.mv_size != 8)
		return MMO_ECORRUPT;
	s->seq = mmo_be64_get(v.mv_data);
	return MMO_OK;
}

static int setup(evlog_query_it *it, const struct evlog_query *q)
{
	evlog *l = it->log;
	uint64_t n_seq, n_player = UINT64_MAX, n_region = UINT64_MAX, n_type = UINT64_MAX, best;
	int err;

	err = cursor(it, l->events, &it->ev_cur);
	if (!err)
		err = head_of(it->ev_cur, &it->head);
	if (err)
		return err;
	it->lo = q->from_seq ? q->from_seq : 1;
	it->hi = q->to_seq && q->to_seq < it->head ? q->to_seq : it->head;
	if (q->since_set || q->until_set) {
		uint64_t tlo, thi;

		err = evlog_time_range(l, it->txn, q->since_set ? q->since_us : INT64_MIN,
		                       q->until_set ? q->until_us : INT64_MAX, &tlo, &thi);
		if (err == MMO_ENOTFOUND) {
			it->empty = true;
			return MMO_OK;
		}
		if (err)
			return err;
		if (tlo > it->lo)
			it->lo = tlo;
		if (thi < it->hi)
			it->hi = thi;
	}
	if (it->lo > it->hi) {
		it->empty = true;
		return MMO_OK;
	}
	n_seq = it->hi - it->lo + 1;
	if (set(q->type)) {
		snprintf(it->type, sizeof(it->type), "%s", q->type);
		it->type_prefix = q->type[strlen(q->type) - 1] == '.';
	}
	if (set(q->player))
		snprintf(it->player, sizeof(it->player), "%s", q->player);
	if (set(q->region))
		snprintf(it->region, sizeof(it->region), "%s", q->region);
	if (!it->itxn) {
		/* No index at all: every filter is checked on the decoded event. */
		it->driver = EVLOG_DRIVE_SEQ;
		it->candidates = n_seq;
		return MMO_OK;
	}
	/* Index counts cover seqs <= indexed; the tail may hold more. */
	uint64_t tail = it->head > it->indexed ? it->head - it->indexed : 0;

	if (set(q->player)) {
		err = icursor(it, l->idx_player, &it->player_cur);
		if (!err)
			err = key_count(it->player_cur, it->player, strlen(it->player), &n_player);
		if (err)
			return err;
		n_player += tail;
	}
	if (set(q->region)) {
		err = icursor(it, l->idx_region, &it->region_cur);
		if (!err)
			err = key_count(it->region_cur, it->region, strlen(it->region), &n_region);
		if (err)
			return err;
		n_region += tail;
	}
	if (set(q->type)) {
		err = type_keys(it, q->type, &n_type);
		if (err)
			return err;
		n_type += tail;
	}
	if (n_player == 0 || n_region == 0 || n_type == 0) {
		it->empty = true;
		return MMO_OK;
	}

	best = n_seq;
	it->driver = EVLOG_DRIVE_SEQ;
	if (n_player < best) {
		best = n_player;
		it->driver = EVLOG_DRIVE_PLAYER;
	}
	if (n_region < best) {
		best = n_region;
		it->driver = EVLOG_DRIVE_REGION;
	}
	if (n_type < best) {
		best = n_type;
		it->driver = EVLOG_DRIVE_TYPE;
	}
	it->candidates = best;

	switch (it->driver) {
	case EVLOG_DRIVE_PLAYER:
	case EVLOG_DRIVE_REGION: {
		bool pl = it->driver == EVLOG_DRIVE_PLAYER;
		const char *key = pl ? it->player : it->region;

		it->one.klen = strlen(key);
		memcpy(it->one.key, key, it->one.klen + 1);
		/* The driver's cursor becomes the stream; the filter is not checked. */
		it->one.cur = pl ? it->player_cur : it->region_cur;
		if (pl)
			it->player_cur = NULL;
		else
			it->region_cur = NULL;
		return stream_start(&it->one, it->lo);
	}
	case EVLOG_DRIVE_TYPE:
		for (size_t i = 0; i < it->ntypes; i++) {
			err = icursor(it, l->idx_type, &it->types[i].cur);
			if (!err)
				err = stream_start(&it->types[i], it->lo);
			if (err)
				return err;
		}
		return MMO_OK;
	default: return MMO_OK;
	}
}

int evlog_query_open(evlog *l, const struct evlog_query *q, evlog_query_it **out)
{
	evlog_query_it *it;
	int err;

	if (!l || !q || !out)
		return MMO_EINVAL;
	if ((set(q->player) && strlen(q->player) > MMO_ID_MAX) ||
	    (set(q->region) && strlen(q->region) > MMO_ID_MAX) ||
	    (set(q->type) && strlen(q->type) > MMO_ID_MAX) ||
	    (q->to_seq && q->from_seq > q->to_seq) ||
	    (q->since_set && q->until_set && q->since_us > q->until_us))
		return MMO_EINVAL;
	it = calloc(1, sizeof(*it));
	if (!it)
		return MMO_ENOMEM;
	it->log = l;
	it->since_set = q->since_set;
	it->since = q->since_us;
	it->until_set = q->until_set;
	it->until = q->until_us;
	/* The index snapshot first: all it holds is then in the log snapshot. */
	err = evlog_index_rtxn(l, &it->itxn, &it->indexed);
	if (!err)
		err = evlog_rtxn(l, &it->txn);
	if (err) {
		if (it->itxn)
			mdb_txn_abort(it->itxn);
		free(it);
		return err;
	}
	err = setup(it, q);
	if (err) {
		evlog_query_close(it);
		return err;
	}
	*out = it;
	return MMO_OK;
}

static bool has(MDB_cursor *cur, const char *key, size_t klen, const uint8_t *sk)
{
	MDB_val k = {klen, (void *)key}, v = {8, (void *)sk};

	return mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH) == MDB_SUCCESS;
}

/* Do the filters that do not drive accept seq? */
static bool accepts(evlog_query_it *it, uint64_t seq)
{
	uint8_t sk[8];

	mmo_be64_put(sk, seq);
	if (it->player_cur && !has(it->player_cur, it->player, strlen(it->player), sk))
		return false;
	if (it->region_cur && !has(it->region_cur, it->region, strlen(it->region), sk))
		return false;
	if (it->driver != EVLOG_DRIVE_TYPE && it->type_cur) {
		for (size_t i = 0; i < it->ntypes; i++) {
			if (has(it->type_cur, it->types[i].key, it->types[i].klen, sk))
				return true;
		}
		return false;
	}
	return true;
}

/* Do all filters accept this (unindexed) record? Decodes it. */
static bool accepts_decoded(evlog_query_it *it, const struct evlog_rec *rec)
{
	mmo_event_free(it->ev);
	it->ev = NULL;
	if (mmo_event_decode(rec->event, rec->event_len, &it->ev) != MMO_OK)
		return false;
	if (*it->player && !evlog_index_matches(it->ev, EVLOG_BY_PLAYER, it->player))
		return false;
	if (*it->region && !evlog_index_matches(it->ev, EVLOG_BY_REGION, it->region))
		return false;
	if (*it->type) {
		if (it->type_prefix)
			return !strncmp(it->ev->type, it->type, strlen(it->type));
		return !strcmp(it->ev->type, it->type);
	}
	return true;
}

/* The next candidate seq of an index driver, or 0 at the end. */
static int next_candidate(evlog_query_it *it, uint64_t *seq)
{
	struct stream *s = NULL;
	int err;

	*seq = 0;
	if (it->driver == EVLOG_DRIVE_TYPE) {
		for (size_t i = 0; i < it->ntypes; i++) {
			if (it->types[i].live && (!s || it->types[i].seq < s->seq))
				s = &it->types[i];
		}
	} else if (it->one.live) {
		s = &it->one;
	}
	if (!s)
		return MMO_OK;
	*seq = s->seq;
	err = stream_next(s);
	return err;
}

static int fetch(evlog_query_it *it, uint64_t seq, MDB_cursor_op op, struct evlog_rec *rec,
                 uint64_t *got)
{
	uint8_t sk[8];
	MDB_val k = {8, sk}, v;
	int rc;

	mmo_be64_put(sk, seq);
	rc = mdb_cursor_get(it->ev_cur, &k, &v, op);
	if (rc == MDB_NOTFOUND)
		return op == MDB_SET_KEY ? MMO_ECORRUPT : MMO_ENOTFOUND;
	if (rc)
		return evlog_mdb_err(rc);
	if (k.mv_size != 8)
		return MMO_ECORRUPT;
	*got = mmo_be64_get(k.mv_data);
	return evlog_rec_parse(*got, v.mv_data, v.mv_size, rec);
}

int evlog_query_next(evlog_query_it *it, struct evlog_rec *rec)
{
	uint64_t seq, got;
	int err;

	if (!it || !rec)
		return MMO_EINVAL;
	if (it->empty)
		return MMO_ENOTFOUND;
	for (;;) {
		bool scan = it->driver == EVLOG_DRIVE_SEQ || it->in_tail;

		if (scan) {
			MDB_val k, v;

			if (!it->started) {
				uint64_t from = it->lo;

				if (it->in_tail && from <= it->indexed)
					from = it->indexed + 1;
				it->started = true;
				err = fetch(it, from, MDB_SET_RANGE, rec, &got);
			} else {
				int rc = mdb_cursor_get(it->ev_cur, &k, &v, MDB_NEXT);

				if (rc) {
					err = evlog_mdb_err(rc);
				} else if (k.mv_size != 8) {
					err = MMO_ECORRUPT;
				} else {
					got = mmo_be64_get(k.mv_data);
					err = evlog_rec_parse(got, v.mv_data, v.mv_size, rec);
				}
			}
			if (err)
				goto end;
			seq = got;
		} else {
			err = next_candidate(it, &seq);
			if (err)
				goto end;
			if (seq == 0) {
				/* The index is exhausted: the tail may hold more. */
				it->in_tail = true;
				it->started = false;
				continue;
			}
		}
		if (seq > it->hi) {
			err = MMO_ENOTFOUND;
			goto end;
		}
		it->scanned++;
		if (scan && seq > it->indexed) {
			if (!accepts_decoded(it, rec))
				continue;
		} else {
			if (!accepts(it, seq))
				continue;
			if (!scan) {
				err = fetch(it, seq, MDB_SET_KEY, rec, &got);
				if (err)
					goto end;
			}
		}
		if ((it->since_set && rec->ts < it->since) ||
		    (it->until_set && rec->ts >= it->until))
			continue;
		return MMO_OK;
	}
end:
	it->empty = true;
	return err;
}

void evlog_query_close(evlog_query_it *it)
{
	if (!it)
		return;
	for (size_t i = 0; i < it->ntypes; i++) {
		if (it->types[i].cur)
			mdb_cursor_close(it->types[i].cur);
	}
	free(it->types);
	if (it->one.cur)
		mdb_cursor_close(it->one.cur);
	if (it->player_cur)
		mdb_cursor_close(it->player_cur);
	if (it->region_cur)
		mdb_cursor_close(it->region_cur);
	if (it->type_cur)
		mdb_cursor_close(it->type_cur);
	if (it->ev_cur)
		mdb_cursor_close(it->ev_cur);
	if (it->txn)
		mdb_txn_abort(it->txn);
	if (it->itxn)
		mdb_txn_abort(it->itxn);
	mmo_event_free(it->ev);
	free(it);
}

enum evlog_query_driver evlog_query_driver(const evlog_query_it *it, uint64_t *candidates)
{
	if (candidates)
		*candidates = it->candidates;
	return it->driver;
}

uint64_t evlog_query_scanned(const evlog_query_it *it)
{
	return it->scanned;
}

uint64_t evlog_query_head(const evlog_query_it *it)
{
	return it->head;
}

int evlog_time_to_seq(evlog *l, int64_t since_us, int64_t until_us, uint64_t *lo, uint64_t *hi)
{
	MDB_txn *txn;
	int err;

	if (!l || !lo || !hi || since_us > until_us)
		return MMO_EINVAL;
	err = evlog_rtxn(l, &txn);
	if (err)
		return err;
	err = evlog_time_range(l, txn, since_us, until_us, lo, hi);
	mdb_txn_abort(txn);
	return err;
}
