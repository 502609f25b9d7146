/* rec.c - the leaf of the log's files: a stored record's parts and its
 * decoding, the hash chain, read transactions and the translation of LMDB
 * errors into mmo_err. store.c, index.c, iter.c, query.c and verify.c all
 * build on it; it includes none of them. */
#define OPENSSL_API_COMPAT 0x10101000L /* SHA256_Init & co: the fastest path */
#include <errno.h>
#include <openssl/sha.h>

#include "evlog_int.h"

int evlog_mdb_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return MMO_OK;
	case MDB_NOTFOUND: return MMO_ENOTFOUND;
	case MDB_MAP_FULL: return MMO_EFULL;
	case ENOMEM: return MMO_ENOMEM;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_BAD_VALSIZE: return MMO_ECORRUPT;
	case MDB_VERSION_MISMATCH: return MMO_EVERSION;
	default: return MMO_EIO;
	}
}

void evlog_chain_hash(const uint8_t prev[EVLOG_HASH_LEN], uint64_t seq, const uint8_t *data,
                      size_t len, uint8_t out[EVLOG_HASH_LEN])
{
	SHA256_CTX c;
	uint8_t s[8];

	mmo_be64_put(s, seq);
	SHA256_Init(&c);
	SHA256_Update(&c, prev, EVLOG_HASH_LEN);
	SHA256_Update(&c, s, sizeof(s));
	SHA256_Update(&c, data, len);
	SHA256_Final(out, &c);
}

int evlog_rtxn(evlog *l, MDB_txn **txn)
{
	int rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, txn);

	if (rc == MDB_MAP_RESIZED) {
		/* Another process grew the map: adopt its size and retry once. */
		mdb_env_set_mapsize(l->env, 0);
		rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, txn);
	}
	return evlog_mdb_err(rc);
}

int evlog_rec_parse(uint64_t seq, const uint8_t *raw, size_t len, struct evlog_rec *rec)
{
	if (!raw || len < EVLOG_HDR_LEN)
		return MMO_ECORRUPT;
	rec->seq = seq;
	rec->hash = raw;
	rec->ts = (int64_t)mmo_be64_get(raw + EVLOG_HASH_LEN);
	rec->priority = raw[EVLOG_HASH_LEN + 8];
	rec->raw = raw;
	rec->raw_len = len;
	rec->event = raw + EVLOG_HDR_LEN;
	rec->event_len = len - EVLOG_HDR_LEN;
	return MMO_OK;
}

int evlog_rec_decode(const struct evlog_rec *rec, Mmo__Event **out)
{
	Mmo__Event *ev;
	int err = mmo_event_decode(rec->event, rec->event_len, &ev);

	if (err)
		return err;
	ev->seq = rec->seq;
	ev->ts = rec->ts;
	*out = ev;
	return MMO_OK;
}
