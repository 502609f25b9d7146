/* views.h - the read views: Redis and MongoDB projectors of the log
 * (docs/views.md).
 *
 * A view folds the committed events of the log, in seq order, from its own
 * checkpoint, in batches, into a store other services read:
 *   redis  mmo:player:{id} hash, mmo:region:{id}:players set, pub/sub on
 *          mmo:region:{id}, checkpoint mmo:checkpoint:redis; a batch and its
 *          checkpoint in one MULTI/EXEC;
 *   mongo  collections players, combat, checkpoints; bulk writes per batch,
 *          each document carrying the seq it reflects.
 * A store that fails is retried with exponential backoff and full jitter
 * behind a circuit breaker; the projector keeps its place and its order. An
 * event the store refuses for good goes to the dead-letter queue (LMDB, in
 * DATA/views/dlq) and the projector moves on; later events that share a
 * player with a dead-lettered event are parked behind it, so each player's
 * events are always applied in order.
 *
 * Threads: views_runner runs one thread per enabled view. A views_dlq handle
 * may be shared by threads and processes (LMDB).
 */
#ifndef MMO_VIEWS_H
#define MMO_VIEWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log/evlog.h"

#define VIEWS_BATCH_DEFAULT 512
#define VIEWS_BATCH_MAX     8192
#define VIEWS_NAME_MAX      15  /* "redis", "mongo" */
#define VIEWS_ERROR_MAX     255 /* bytes of a DLQ error text */

/* ---------------------------------------------------------------- runner */

struct views_opts {
	evlog *log;            /* borrowed local log (gap fill, head, lag); may be NULL */
	void *zctx;            /* borrowed ZeroMQ context */
	const char *bus;       /* the log's bus endpoint (SUB) */
	const char *ingest;    /* the log's ingest, used to fill gaps when log is NULL */
	const char *data_dir;  /* DATA: the DLQ lives in DATA/views/dlq */
	const char *redis_url; /* redis://[[user]:password@]host[:port][/db] (mmo_redis_url.h); NULL
	                          or "" = off */
	const char *mongo_uri; /* mongodb://...; NULL or "" = the Mongo view is off */
	const char *mongo_db;  /* database name; NULL = "mmo" */
	size_t batch_max;      /* events per batch; 0 = VIEWS_BATCH_DEFAULT */
	unsigned backoff_base_ms;   /* first retry delay bound; 0 = 50 */
	unsigned backoff_cap_ms;    /* largest retry delay bound; 0 = 5000 */
	unsigned breaker_threshold; /* consecutive failures that open the breaker; 0 = 5 */
	unsigned breaker_open_ms;   /* how long it stays open before a probe; 0 = backoff_cap_ms */
};

typedef struct views_runner views_runner;

/* Open the DLQ, take each enabled view's run lock (DATA/views/<view>.lock:
 * one projector per view and data folder) and start one thread per view.
 * A store that is down at start is not an error: the thread retries it
 * (see views_runner_status). Errors: MMO_EINVAL (no view enabled, missing
 * option), MMO_EIO (DLQ or lock; errmsg says why), MMO_EBUSY (another
 * projector holds the lock). On success the caller owns *out and stops it
 * with views_runner_stop(); opts and the strings in it are copied, log and
 * zctx are borrowed and must outlive the runner. */
int views_runner_start(const struct views_opts *opts, views_runner **out, char *errmsg,
                       size_t errlen);

/* Stop: finish the batch in hand if its store answers (one attempt, no
 * retry), close connections, join the threads, free r. NULL is a no-op. */
void views_runner_stop(views_runner *r);

enum views_breaker_state {
	VIEWS_BREAKER_CLOSED = 0,
	VIEWS_BREAKER_OPEN = 1,
	VIEWS_BREAKER_HALF_OPEN = 2,
};

/* A consistent copy of one view's state. */
struct views_status {
	bool enabled;
	bool connected; /* the last attempt reached the store */
	enum views_breaker_state breaker;
	uint64_t checkpoint;     /* last seq applied (as the store holds it) */
	uint64_t head;           /* the log's head seq at the last look */
	uint64_t applied;        /* events applied since start */
	uint64_t batches;        /* batches committed since start */
	uint64_t retries;        /* failed attempts that were retried */
	uint64_t breaker_opened; /* closed/half-open -> open transitions */
	uint64_t breaker_closed; /* half-open -> closed transitions */
	uint64_t rewinds;        /* times the store's checkpoint moved under us */
	uint64_t dead;           /* events dead-lettered since start */
	uint64_t parked;         /* events parked since start */
	uint64_t dlq_depth;      /* entries of this view in the DLQ now */
	char last_error[160];    /* the last failure, "" if none */
};

/* Status of view "redis" or "mongo": MMO_OK, or MMO_ENOTFOUND when that
 * view is off. */
int views_runner_status(views_runner *r, const char *view, struct views_status *out);

/* Every enabled view connected with its breaker closed? why (may be NULL)
 * receives a one-line reason when not. */
bool views_runner_healthy(views_runner *r, char *why, size_t cap);

/* The views' metrics as Prometheus text into buf (cap bytes, NUL-terminated);
 * returns the length written. Names start with mmo_views_ and carry a
 * view label. */
size_t views_runner_metrics(views_runner *r, char *buf, size_t cap);

/* ---------------------------------------------------------------- DLQ */

typedef struct views_dlq views_dlq;

/* One dead-letter entry. status "dead": the store refused the event;
 * "parked": it waits behind the entry at seq `behind` (same player). */
struct views_dlq_entry {
	uint64_t seq;
	char view[VIEWS_NAME_MAX + 1];
	bool parked;
	uint64_t behind;                 /* parked: the seq it waits behind */
	char error[VIEWS_ERROR_MAX + 1]; /* why (dead) or "parked behind seq N" */
	uint32_t attempts;               /* times the store refused it */
	int64_t first_us, last_us;       /* first and last failure, wall clock µs */
	size_t nplayers;                 /* players whose view it writes */
	char players[2][MMO_ID_MAX + 1];
};

/* Open (readonly: must exist) the DLQ in DATA/views/dlq. Errors: MMO_EIO,
 * MMO_ENOTFOUND (readonly and absent). The caller owns *out. */
int views_dlq_open(const char *data_dir, bool readonly, views_dlq **out, char *errmsg,
                   size_t errlen);
void views_dlq_close(views_dlq *q);

/* Entries in (view, seq) order, of one view (NULL = all), strictly after the
 * cursor (view "" = from the start), at most cap. *n receives how many;
 * *more whether entries remain after the last one written. */
struct views_dlq_cursor {
	char view[VIEWS_NAME_MAX + 1];
	uint64_t seq;
};
int views_dlq_list(views_dlq *q, const char *view, const struct views_dlq_cursor *after,
                   struct views_dlq_entry *out, size_t cap, size_t *n, bool *more);

/* One entry: MMO_OK or MMO_ENOTFOUND. */
int views_dlq_get(views_dlq *q, const char *view, uint64_t seq, struct views_dlq_entry *out);

/* Entries of a view (NULL = all) now. */
uint64_t views_dlq_depth(views_dlq *q, const char *view);

/* Remove entries of view (NULL = all views) with seq == seq (0 = all).
 * *removed receives how many. */
int views_dlq_drop(views_dlq *q, const char *view, uint64_t seq, uint64_t *removed);

/* Retry dead-lettered events: every entry of the view in seq order (or,
 * with seq, that entry and then the parked entries it alone was holding),
 * each applied on its own with the view's seq guard, so an event already in
 * the store changes nothing (retrying is idempotent). An entry applied is
 * removed; one refused again stays dead with attempts + 1; one still behind
 * an entry that stays is left parked. A store that does not answer stops
 * the retry with MMO_EUNAVAIL. dry_run lists what would be tried to `out`
 * without changing anything. The DLQ's lock keeps a running projector of
 * the view from applying the same players meanwhile. */
struct views_retry_opts {
	const char *data_dir; /* DATA */
	evlog *log;           /* borrowed: the events are read from it */
	const char *view;     /* "redis" or "mongo" */
	uint64_t seq;         /* 0 = every entry of the view */
	bool dry_run;
	const char *redis_url;
	const char *mongo_uri;
	const char *mongo_db; /* NULL = "mmo" */
	FILE *out;            /* one line per entry tried (may be NULL) */
};
struct views_retry_result {
	uint64_t tried, applied, failed, left_parked;
};
int views_dlq_retry(const struct views_retry_opts *o, struct views_retry_result *res, char *errmsg,
                    size_t errlen);

/* ---------------------------------------------------------------- rebuild */

typedef void views_progress_fn(const char *phase, uint64_t done, uint64_t total, void *arg);

/* Drop a view ("redis": every mmo:player:* and mmo:region:*:players key and
 * the checkpoint, found by SCAN, never FLUSHALL; "mongo": the players and
 * combat collections and the checkpoint document) and its DLQ entries, then
 * fold the log from seq 1 to its head. Refuses with MMO_EBUSY while a
 * projector of that view runs on the same data folder. progress (may be
 * NULL) is called about once a second. */
struct views_rebuild_opts {
	const char *data_dir;
	evlog *log; /* borrowed, open (read-only is enough) */
	const char *view;
	const char *redis_url;
	const char *mongo_uri;
	const char *mongo_db;
	size_t batch_max; /* 0 = VIEWS_BATCH_DEFAULT */
	views_progress_fn *progress;
	void *arg;
};
int views_rebuild(const struct views_rebuild_opts *o, uint64_t *applied, char *errmsg,
                  size_t errlen);

/* ---------------------------------------------------------------- bench */

/* `mmo bench views`: the Redis projector applying n synthetic events
 * (world.update of 1000 players across 16 regions, each moving region) in
 * batches of `batch` (0 = default), then, in the same run on the same
 * server, n pipelined HSETs sent by a bare hiredis loop in batches of the
 * same size (the peer limit). Rates in events/s. It drops the view's keys
 * before and after: point it at a scratch server or database. */
int views_bench_redis(const char *redis_url, size_t n, size_t batch, double *views_per_s,
                      double *raw_per_s, char *errmsg, size_t errlen);

#endif
