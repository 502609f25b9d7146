/* evlog_int.h - internals shared by the log's files. Not for other modules. */
#ifndef MMO_EVLOG_INT_H
#define MMO_EVLOG_INT_H

#include <lmdb.h>
#include <pthread.h>

#include "log/evlog.h"
#include "schemas/mmo_arena.h"
#include "schemas/mmo_be.h"

struct evlog {
	MDB_env *env;
	MDB_dbi events, ids, meta;
	bool readonly;
	char dir[4096];

	/* The secondary indexes: their own environment (index.c). ienv is NULL
	 * for a read-only log that has none: then everything is "tail". */
	MDB_env *ienv;
	MDB_dbi idx_player, idx_type, idx_region, imeta;
	char idir[4200];
	int64_t isynced_us;

	/* Writer state: touched only by the appending thread. */
	uint64_t head_seq;
	uint8_t head_hash[EVLOG_HASH_LEN];
	int64_t last_ts;
	struct mmo_arena arena; /* decodes the events it appends */
};

/* ------------------------------------------------------------ rec.c */

/* Begin a read-only transaction, adopting a map grown by another process. */
int evlog_rtxn(evlog *l, MDB_txn **txn);

/* Translate an LMDB return code into mmo_err. */
int evlog_mdb_err(int rc);

/* ------------------------------------------------------------ bus.c */

/* A region's last seq; also a node of the hash chain and the LRU list
 * (indexes into evlog_bus.regions, UINT32_MAX = none). */
struct evlog_bus_region {
	char name[MMO_ID_MAX + 1];
	uint64_t last;
	uint32_t hnext, prev, next;
};

/* The PUB side of the server: pub (NULL: no bus; the last seq per region
 * is still kept) is the server's socket, closed by the server. At most
 * regions_max regions are kept (bus.c). */
struct evlog_bus {
	evlog *log;
	void *pub;
	struct evlog_bus_region *regions; /* regions_max nodes */
	uint32_t *buckets;                /* nbuckets chain heads */
	size_t nregions, regions_max, nbuckets;
	uint32_t lru_head, lru_tail; /* most / least recently used */
	uint64_t first_seq;          /* the first seq this bus saw (0: none yet) */
	uint64_t evicted_last;       /* the newest last seq of an evicted region */
	uint64_t evicted;            /* regions evicted so far */
};

/* regions_max 0 = EVLOG_BUS_REGIONS_MAX. */
int evlog_bus_init(struct evlog_bus *b, evlog *log, size_t regions_max);
void evlog_bus_free(struct evlog_bus *b);
/* Publish one committed event (in its input, o its outcome), and remember
 * its seq as its region's newest. Drops it if the socket refuses. */
void evlog_bus_publish(struct evlog_bus *b, const struct evlog_in *in, const struct evlog_out *o);

/* ------------------------------------------------------------ index.c */

#define EVLOG_IKEYS_MAX 3

/* One index entry of an event: the index and its key (borrowed from ev). */
struct evlog_ikey {
	enum evlog_index idx;
	const char *key;
};

/* Open (rw: create, or rebuild if unreadable or ahead of the log) the index
 * environment DIR/index. Read-only: optional, l->ienv stays NULL if absent. */
int evlog_index_open(evlog *l, size_t map_size);
void evlog_index_close(evlog *l);

/* A read txn on the index env and the checkpoint it holds (seqs <= *indexed
 * are indexed). *txn is NULL (and *indexed 0) when there is no index env. */
int evlog_index_rtxn(evlog *l, MDB_txn **txn, uint64_t *indexed);

/* The index entries of ev, the single rule the indexer, the iterators'
 * tail scan and verify all follow. */
size_t evlog_index_keys(const Mmo__Event *ev, struct evlog_ikey keys[EVLOG_IKEYS_MAX]);
bool evlog_index_matches(const Mmo__Event *ev, enum evlog_index idx, const char *key);
MDB_dbi evlog_index_dbi(evlog *l, enum evlog_index idx);

/* The seq of the last event of region before seq `before` (0 if none). */
int evlog_region_prev(evlog *l, const char *region, uint64_t before, uint64_t *prev);
/* The same, when the caller knows that no event of region after tail_max
 * exists below before: the unindexed tail is scanned from
 * min(before - 1, tail_max) down only. */
int evlog_region_prev_upto(evlog *l, const char *region, uint64_t before, uint64_t tail_max,
                           uint64_t *prev);

/* The seq range [lo, hi] of events with since <= ts < until, by binary
 * search over the events table (ts never goes backwards). MMO_ENOTFOUND if
 * none. txn is a read txn on the log env. */
int evlog_time_range(evlog *l, MDB_txn *txn, int64_t since, int64_t until, uint64_t *lo,
                     uint64_t *hi);

/* The indexer thread: follows the commits the intake announces and keeps
 * the secondary indexes up to them (evlog_index_sync), retrying on error. */
struct evlog_indexer {
	evlog *log;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	uint64_t committed; /* head seq to reach (mu) */
	uint64_t indexed;   /* reached so far (mu) */
	bool stop;          /* (mu) */
};

int evlog_indexer_start(struct evlog_indexer *x, evlog *log);
/* Commits reached head. */
void evlog_indexer_notify(struct evlog_indexer *x, uint64_t head);
/* Catch up to head (0: to what was announced), then stop and join. */
void evlog_indexer_stop(struct evlog_indexer *x, uint64_t head);
uint64_t evlog_indexer_indexed(struct evlog_indexer *x);

#endif
