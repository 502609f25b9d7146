/* verify.c - check the hash chain, the ids map and the indexes.
 *
 * Forward pass: every seq in [from, to] present, in order, each record's hash
 * recomputed from its predecessor, each event decodes, and (when asked) its
 * id and, if it is indexed yet, its index entries exist. Reverse check (whole
 * log only): the number of entries of each index equals what the forward
 * pass expects of the indexed events, so together every index entry points
 * at an existing event that matches it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evlog_int.h"

#define PROGRESS_EVERY (64 * 1024)

struct counts {
	uint64_t ids;
	uint64_t idx[EVLOG_BY_REGION + 1]; /* entries expected per index (seq <= indexed) */
};

static int bad(struct evlog_verify_result *res, uint64_t seq, const char *what)
{
	res->bad_seq = seq;
	snprintf(res->what, sizeof(res->what), "%s", what);
	return MMO_ECORRUPT;
}

static bool has_entry(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, const uint8_t *sk)
{
	MDB_cursor *cur;
	MDB_val k = {klen, (void *)key}, v = {8, (void *)sk};
	bool ok;

	if (mdb_cursor_open(txn, dbi, &cur))
		return false;
	ok = mdb_cursor_get(cur, &k, &v, MDB_GET_BOTH) == MDB_SUCCESS;
	mdb_cursor_close(cur);
	return ok;
}

static int check_entries(evlog *l, MDB_txn *txn, MDB_txn *itxn, uint64_t indexed,
                         const struct evlog_rec *rec, const Mmo__Event *ev, const uint8_t *sk,
                         struct counts *c, struct evlog_verify_result *res)
{
	static const char *names[] = {"", "missing from the player index",
	                              "missing from the type index",
	                              "missing from the region index"};
	struct evlog_ikey keys[EVLOG_IKEYS_MAX];
	MDB_val k, v;
	size_t n;

	k.mv_size = strlen(ev->event_id);
	k.mv_data = ev->event_id;
	if (mdb_get(txn, l->ids, &k, &v) || v.mv_size != 8 || memcmp(v.mv_data, sk, 8))
		return bad(res, rec->seq, "ids map does not point at this event");
	c->ids++;
	if (!itxn || rec->seq > indexed)
		return MMO_OK; /* not indexed yet: the indexer will get to it */
	n = evlog_index_keys(ev, keys);
	for (size_t i = 0; i < n; i++) {
		if (!has_entry(itxn, evlog_index_dbi(l, keys[i].idx), keys[i].key,
		               strlen(keys[i].key), sk))
			return bad(res, rec->seq, names[keys[i].idx]);
		c->idx[keys[i].idx]++;
	}
	return MMO_OK;
}

/* Entries in a dupsort table. */
static int count_dups(MDB_txn *txn, MDB_dbi dbi, uint64_t *n)
{
	MDB_stat st;
	int rc = mdb_stat(txn, dbi, &st);

	if (rc)
		return evlog_mdb_err(rc);
	*n = st.ms_entries;
	return MMO_OK;
}

static int check_counts(evlog *l, MDB_txn *txn, MDB_txn *itxn, const struct counts *c,
                        uint64_t last, struct evlog_verify_result *res)
{
	struct {
		const char *name;
		MDB_txn *txn;
		MDB_dbi dbi;
		uint64_t want;
	} t[] = {
	    {"ids map", txn, l->ids, c->ids},
	    {"player index", itxn, l->idx_player, c->idx[EVLOG_BY_PLAYER]},
	    {"type index", itxn, l->idx_type, c->idx[EVLOG_BY_TYPE]},
	    {"region index", itxn, l->idx_region, c->idx[EVLOG_BY_REGION]},
	};
	char what[160];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t have = 0;
		int err;

		if (!t[i].txn)
			continue;
		err = count_dups(t[i].txn, t[i].dbi, &have);
		if (err)
			return err;
		if (have != t[i].want) {
			snprintf(what, sizeof(what),
			         "%s has %llu entries, the events need %llu: stray entries",
			         t[i].name, (unsigned long long)have, (unsigned long long)t[i].want);
			return bad(res, last, what);
		}
	}
	return MMO_OK;
}

int evlog_verify(evlog *l, uint64_t from, uint64_t to, const uint8_t *anchor,
                 bool check_indexes, evlog_progress_fn *progress, void *arg,
                 struct evlog_verify_result *res)
{
	uint8_t prev[EVLOG_HASH_LEN], h[EVLOG_HASH_LEN], sk[8];
	struct counts c = {0};
	MDB_txn *txn = NULL, *itxn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	uint64_t head = 0, expect, total, indexed = 0;
	struct evlog_rec rec;
	char what[160];
	/* Every event must decode, indexes checked or not: a decode arena of
	 * our own (the log's belongs to the writer thread). */
	struct arena arena = {NULL, ARENA_CAP, 0};
	Mmo__Event *ev;
	int err, rc;

	if (!l || !res)
		return MMO_EINVAL;
	memset(res, 0, sizeof(*res));
	if (from == 0)
		from = 1;
	arena.buf = malloc(ARENA_CAP);
	if (!arena.buf)
		return MMO_ENOMEM;
	/* The index snapshot first: all it holds is then in the log snapshot. */
	if (check_indexes) {
		err = evlog_index_rtxn(l, &itxn, &indexed);
		if (err) {
			free(arena.buf);
			return err;
		}
	}
	err = evlog_rtxn(l, &txn);
	if (err) {
		if (itxn)
			mdb_txn_abort(itxn);
		free(arena.buf);
		return err;
	}
	rc = mdb_cursor_open(txn, l->events, &cur);
	if (rc) {
		err = evlog_mdb_err(rc);
		goto out;
	}
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == MDB_SUCCESS) {
		if (k.mv_size != 8) {
			err = bad(res, 0, "a key of the events table is not 8 bytes");
			goto out;
		}
		head = be64_get(k.mv_data);
	} else if (rc != MDB_NOTFOUND) {
		err = evlog_mdb_err(rc);
		goto out;
	}
	if (to == 0 || to > head)
		to = head;
	if (from > to && head > 0 && from > head) {
		err = MMO_EINVAL;
		goto out;
	}

	/* The hash the chain starts from. */
	if (anchor) {
		memcpy(prev, anchor, EVLOG_HASH_LEN);
	} else if (from == 1) {
		memset(prev, 0, EVLOG_HASH_LEN);
	} else {
		be64_put(sk, from - 1);
		k.mv_size = 8;
		k.mv_data = sk;
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
		if (rc || v.mv_size < EVLOG_HDR_LEN) {
			err = bad(res, from - 1, "the record before the range is missing");
			goto out;
		}
		memcpy(prev, v.mv_data, EVLOG_HASH_LEN);
	}

	total = to >= from ? to - from + 1 : 0;
	expect = from;
	be64_put(sk, from);
	k.mv_size = 8;
	k.mv_data = sk;
	rc = total ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : MDB_NOTFOUND;
	while (expect <= to) {
		uint64_t seq;

		if (rc == MDB_NOTFOUND) {
			err = bad(res, expect, "record missing");
			goto out;
		}
		if (rc) {
			err = evlog_mdb_err(rc);
			goto out;
		}
		if (k.mv_size != 8) {
			err = bad(res, expect, "a key of the events table is not 8 bytes");
			goto out;
		}
		seq = be64_get(k.mv_data);
		if (seq != expect) {
			snprintf(what, sizeof(what), "record missing (next present is %llu)",
			         (unsigned long long)seq);
			err = bad(res, expect, what);
			goto out;
		}
		if (evlog_rec_parse(seq, v.mv_data, v.mv_size, &rec)) {
			err = bad(res, seq, "record shorter than its header");
			goto out;
		}
		evlog_chain_hash(prev, seq, rec.raw + EVLOG_HASH_LEN, rec.raw_len - EVLOG_HASH_LEN, h);
		if (memcmp(h, rec.hash, EVLOG_HASH_LEN) != 0) {
			err = bad(res, seq, "hash mismatch: record altered, reordered or a "
			                    "predecessor changed");
			goto out;
		}
		if (evlog_decode_arena(&arena, rec.event, rec.event_len, &ev) != MMO_OK) {
			err = bad(res, seq, "event bytes do not decode");
			goto out;
		}
		if (check_indexes) {
			be64_put(sk, seq);
			err = check_entries(l, txn, itxn, indexed, &rec, ev, sk, &c, res);
			if (err)
				goto out;
		}
		memcpy(prev, h, EVLOG_HASH_LEN);
		res->checked++;
		if (progress && res->checked % PROGRESS_EVERY == 0)
			progress(res->checked, total, arg);
		expect++;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}

	/* The meta head must be the last record. A meta head past the last
	 * record means the tail was cut: the first missing seq is the bad one. */
	if (to == head) {
		MDB_val mk = {4, "head"}, mv;

		rc = mdb_get(txn, l->meta, &mk, &mv);
		if (rc == MDB_SUCCESS && mv.mv_size == 8 + EVLOG_HASH_LEN &&
		    be64_get(mv.mv_data) > head) {
			snprintf(what, sizeof(what), "record missing (the meta head is %llu)",
			         (unsigned long long)be64_get(mv.mv_data));
			err = bad(res, head + 1, what);
			goto out;
		}
	}
	if (to == head && head > 0) {
		MDB_val mk = {4, "head"}, mv;

		rc = mdb_get(txn, l->meta, &mk, &mv);
		if (rc || mv.mv_size != 8 + EVLOG_HASH_LEN || be64_get(mv.mv_data) != head ||
		    memcmp((const uint8_t *)mv.mv_data + 8, prev, EVLOG_HASH_LEN) != 0) {
			err = bad(res, head, "meta head does not match the last record");
			goto out;
		}
	}
	if (check_indexes && from == 1 && to == head) {
		if (indexed > head) {
			err = bad(res, head, "the index checkpoint is past the head of the log");
			goto out;
		}
		err = check_counts(l, txn, itxn, &c, head, res);
		if (err)
			goto out;
	}
	if (progress)
		progress(res->checked, total, arg);
	err = MMO_OK;
out:
	if (cur)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (itxn)
		mdb_txn_abort(itxn);
	free(arena.buf);
	return err;
}
