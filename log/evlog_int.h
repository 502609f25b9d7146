/* evlog_int.h - internals shared by the log's files. Not for other modules. */
#ifndef MMO_EVLOG_INT_H
#define MMO_EVLOG_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "evlog.h"

#define ARENA_CAP (256 * 1024) /* decode arena: one event of up to MMO_RECORD_MAX */

struct arena {
	uint8_t *buf;
	size_t cap;
	size_t used;
};

struct evlog {
	MDB_env *env;
	MDB_dbi events, ids, meta, idx_player, idx_type, idx_region, idx_time;
	bool readonly;
	char dir[4096];

	/* Writer state: touched only by the appending thread. */
	uint64_t head_seq;
	uint8_t head_hash[EVLOG_HASH_LEN];
	int64_t last_ts;
	struct arena arena;
};

/* Begin a read-only transaction, adopting a map grown by another process. */
int evlog_rtxn(evlog *l, MDB_txn **txn);

/* Translate an LMDB return code. */
int evlog_mdb_err(int rc);

static inline void be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Decode an event with allocations from an arena (reset by the caller). */
int evlog_decode_arena(struct arena *a, const uint8_t *buf, size_t len, Mmo__Event **out);

#endif
