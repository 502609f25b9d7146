/* evlog.h - the event log: an append-only LMDB journal behind a ZeroMQ ingest.
 *
 * The log is the single source of truth. It owns one LMDB environment (the
 * folder given as `dir`) holding:
 *   events      seq (8 bytes, big-endian) -> record (see below), MDB_APPEND
 *   ids         event_id -> seq: idempotency, durable
 *   meta        "format" -> u32 BE, "head" -> seq BE8 ‖ hash[32]
 * Every record and its id are written in the same transaction. The
 * auditors' secondary indexes live in a second environment, `dir`/index:
 *   idx_player  player_id -> seq   (dupsort, fixed 8-byte big-endian values)
 *   idx_type    type -> seq        (same)
 *   idx_region  region_id -> seq   (same)
 *   meta        "indexed" -> seq BE8: the checkpoint of the indexer
 * maintained off the ack path by the server's indexer thread (or
 * evlog_index_sync), rebuilt from seq 1 if it is ever unreadable. Readers
 * never see the lag: index iterators and queries read the index up to its
 * checkpoint and scan the records after it. Time ranges need no index: ts
 * never goes backwards, so they are binary searches over the events.
 *
 * A stored record is:
 *   hash[32] ‖ ts (int64 BE, µs) ‖ priority (u8) ‖ 3 zero bytes ‖ event bytes
 * where the event bytes are exactly the protobuf mmo.Event the client sent
 * (its seq and ts are 0: the log's are in the key and header) and
 *   hash = SHA-256(prev_hash ‖ seq (u64 BE) ‖ record[32..])
 * with prev_hash of seq 1 being 32 zero bytes.
 *
 * Threads: an evlog handle may be shared by threads. Only one thread (the
 * server's writer) may append. Iterators belong to the thread that opened
 * them. Other processes may open the same folder read-only at any time.
 */
#ifndef MMO_EVLOG_H
#define MMO_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schemas/event.h"

#define EVLOG_FORMAT          1 /* on-disk format version of this build */
#define EVLOG_HASH_LEN        32
#define EVLOG_HDR_LEN         44                 /* hash + ts + priority + pad */
#define EVLOG_REQ_MAX         1024               /* max events in one ingest request */
#define EVLOG_READ_MAX        4096               /* max records in one read reply */
#define EVLOG_REQ_BYTES_MAX   ((size_t)1 << 20)  /* default: event bytes in one request */
#define EVLOG_QUEUE_BYTES_MAX ((size_t)64 << 20) /* default: event bytes pending */
#define EVLOG_BUS_REGIONS_MAX 65536              /* default: regions whose last seq the bus keeps */

typedef struct evlog evlog;
typedef struct evlog_iter evlog_iter;
typedef struct evlog_server evlog_server;
typedef struct evlog_client evlog_client;
typedef struct evlog_sub evlog_sub;

/* ---------------------------------------------------------------- storage */

struct evlog_opts {
	const char *dir; /* folder of the LMDB environment; created if absent (rw) */
	size_t map_size; /* bytes; 0 = 16 GiB. Writes past it fail with MMO_EFULL */
	bool readonly;   /* open read-only (another process may be writing) */
	bool nosync;     /* no fsync at commit: benchmarks only, unsafe */
};

/* Open a log. Errors: MMO_EINVAL (no dir), MMO_EIO (cannot create or open;
 * errmsg says why), MMO_EVERSION (written by a newer format), MMO_ECORRUPT
 * (meta unreadable). errmsg (may be NULL) receives a one-line reason on
 * failure. On success the caller owns *out and closes it with evlog_close(). */
int evlog_open(const struct evlog_opts *o, evlog **out, char *errmsg, size_t errlen);
void evlog_close(evlog *l);

/* Head of the log: the last seq (0 if empty) and its hash (may be NULL). */
int evlog_head(evlog *l, uint64_t *seq, uint8_t hash[EVLOG_HASH_LEN]);

/* One event to append: the encoded mmo.Event bytes (borrowed for the call). */
struct evlog_in {
	const uint8_t *buf;
	size_t len;
	unsigned priority; /* ingest only: the request's declared priority, 0 = medium */
};

/* The outcome of one appended event. */
struct evlog_out {
	uint64_t seq; /* its seq (the original one for a duplicate), or 0 */
	int err;      /* MMO_OK or the reason it was refused */
	bool dup;     /* already in the log: not appended again */
	/* For a newly appended event (err == MMO_OK, !dup): its stored header,
	 * so the caller can publish the record without reading it back. */
	int64_t ts;
	unsigned priority;
	uint8_t hash[32];
	char region_id[MMO_ID_MAX + 1];
};

/* Append n events in one durable transaction (the writer's group commit).
 * Each event is decoded and validated; a bad one gets its error in out[i]
 * and the others go on. ts_us is the timestamp given to the new events
 * (made monotonic by the log). Returns MMO_OK when the transaction
 * committed (out[] filled), or an error for the whole batch (MMO_EFULL,
 * MMO_EIO): then nothing of it was written and out[i].err carries it too.
 * Must be called from one thread at a time. */
int evlog_append(evlog *l, const struct evlog_in *in, size_t n, int64_t ts_us,
                 struct evlog_out *out);

/* ---------------------------------------------------------------- reading */

/* A record as stored. The pointers point into the map (zero copy) and stay
 * valid until the next evlog_iter_next() or evlog_iter_close() on the
 * iterator that produced it. */
struct evlog_rec {
	uint64_t seq;
	int64_t ts;
	unsigned priority;
	const uint8_t *hash; /* EVLOG_HASH_LEN bytes */
	const uint8_t *raw;  /* the whole stored value (hash first) */
	size_t raw_len;
	const uint8_t *event; /* the protobuf event bytes */
	size_t event_len;
};

/* Parse a stored value (raw bytes: hash ‖ header ‖ event). MMO_ECORRUPT if it
 * is shorter than the header. rec borrows raw. */
int evlog_rec_parse(uint64_t seq, const uint8_t *raw, size_t len, struct evlog_rec *rec);

/* Decode rec's event and fill its seq and ts from the record. The caller owns
 * *out (mmo_event_free). */
int evlog_rec_decode(const struct evlog_rec *rec, Mmo__Event **out);

enum evlog_index {
	EVLOG_ALL = 0, /* every event, key ignored */
	EVLOG_BY_PLAYER,
	EVLOG_BY_TYPE,
	EVLOG_BY_REGION,
};

/* An iterator over the events of one index key (or all events) with
 * seq >= from_seq, in seq order, on a snapshot of the log taken at open.
 * key is copied. Errors: MMO_EINVAL, MMO_EIO. */
int evlog_iter_open(evlog *l, enum evlog_index idx, const char *key, uint64_t from_seq,
                    evlog_iter **out);

/* An iterator over events with since_us <= ts < until_us, in seq order. */
int evlog_iter_open_time(evlog *l, int64_t since_us, int64_t until_us, evlog_iter **out);

/* The next record: MMO_OK, MMO_ENOTFOUND at the end, MMO_ECORRUPT if an
 * index points at a missing or short record. */
int evlog_iter_next(evlog_iter *it, struct evlog_rec *rec);
void evlog_iter_close(evlog_iter *it);

/* Copy of one record's raw bytes into buf (cap bytes). MMO_ENOTFOUND if no
 * such seq, MMO_ETOOBIG if cap is too small; *len written on success. */
int evlog_get(evlog *l, uint64_t seq, uint8_t *buf, size_t cap, size_t *len);

/* Bring the secondary indexes up to the head, at most max events (0 = no
 * limit) in one transaction; *indexed (may be NULL) receives the new
 * checkpoint. Only one thread may call it at a time; evlog_server runs it
 * in its indexer thread, so with a server running, do not call it. For a
 * writable log only: MMO_EINVAL otherwise. */
int evlog_index_sync(evlog *l, size_t max, uint64_t *indexed);

/* Look up the seq of an event_id: MMO_OK or MMO_ENOTFOUND. */
int evlog_find_id(evlog *l, const char *event_id, uint64_t *seq);

/* ---------------------------------------------------------------- verify */

struct evlog_verify_result {
	uint64_t checked; /* records whose hash was checked */
	uint64_t bad_seq; /* first bad seq, 0 if none */
	char what[160];   /* what is wrong with it */
};

typedef void evlog_progress_fn(uint64_t done, uint64_t total, void *arg);

/* Check the hash chain over [from, to] (to = 0: up to the head). The chain
 * starts from the stored hash of from-1, or from anchor if not NULL (the
 * trusted hash of from-1; for from = 1, 32 zero bytes). Checks that no seq is
 * missing, every hash matches, every event decodes, and the meta head
 * matches the last record. If check_indexes, also that every id and index
 * entry points at an existing event that matches it. Returns MMO_OK, or
 * MMO_ECORRUPT with res->bad_seq and res->what set. progress (may be NULL)
 * is called about every 64 Ki records. */
int evlog_verify(evlog *l, uint64_t from, uint64_t to, const uint8_t *anchor, bool check_indexes,
                 evlog_progress_fn *progress, void *arg, struct evlog_verify_result *res);

/* SHA-256 of prev ‖ seq ‖ data: the chain step. */
void evlog_chain_hash(const uint8_t prev[EVLOG_HASH_LEN], uint64_t seq, const uint8_t *data,
                      size_t len, uint8_t out[EVLOG_HASH_LEN]);

/* ---------------------------------------------------------------- server */

struct evlog_server_opts {
	evlog *log;         /* borrowed, open read-write; outlives the server */
	void *zctx;         /* borrowed ZeroMQ context */
	const char *ingest; /* endpoint to bind (ROUTER) */
	const char *bus;    /* endpoint to bind (PUB), or NULL for none */
	size_t queue_max;   /* pending events before low/medium get busy; 0 = 8192 */
	size_t batch_max;   /* events per commit; 0 = 1024 */
	/* Bytes of event frames in one append request before it is refused
	 * too_big; 0 = EVLOG_REQ_BYTES_MAX (1 MiB). */
	size_t req_bytes_max;
	/* Bytes of event frames pending before low/medium get busy (past twice
	 * that the socket is left alone); 0 = EVLOG_QUEUE_BYTES_MAX (64 MiB). */
	size_t queue_bytes_max;
	/* Regions whose last seq the bus keeps (least recently used evicted
	 * past it); 0 = EVLOG_BUS_REGIONS_MAX. */
	size_t bus_regions_max;
};

struct evlog_stats {
	uint64_t head_seq;
	uint64_t appended;         /* events appended since start */
	uint64_t duplicates;       /* events answered from the ids map */
	uint64_t rejected;         /* events refused (bad input, conflict) */
	uint64_t busy;             /* requests answered busy */
	uint64_t batches;          /* committed transactions */
	uint64_t batch_events_max; /* largest batch */
	uint64_t queue_depth;      /* pending events now */
	uint64_t commit_us_sum;    /* total commit time */
	uint64_t commit_us_max;
	uint64_t commit_hist[12];     /* commit latency buckets: <= 2^(i+4) µs, last = +Inf */
	uint64_t batch_hist[12];      /* batch size buckets: <= 2^i events, last = +Inf */
	uint64_t full_errors;         /* batches refused because the map is full */
	uint64_t reads;               /* read requests served */
	uint64_t indexed_seq;         /* the secondary indexes cover seqs up to here */
	uint64_t bus_regions;         /* regions whose last seq the bus keeps now */
	uint64_t bus_regions_evicted; /* regions evicted from that table so far */
};

/* Bind the sockets and start the writer thread. Errors: MMO_EINVAL,
 * MMO_EIO (bind failed; errmsg says which endpoint and why). On success the
 * caller owns *out and stops it with evlog_server_stop(). */
int evlog_server_start(const struct evlog_server_opts *o, evlog_server **out, char *errmsg,
                       size_t errlen);

/* Stop: serve what was already received, commit, ack, close sockets, join. */
void evlog_server_stop(evlog_server *s);

/* A consistent copy of the counters. */
void evlog_server_stats(evlog_server *s, struct evlog_stats *st);

/* Render st as Prometheus text into buf (cap bytes, NUL-terminated);
 * returns the length written (truncated output still ends in a newline). */
size_t evlog_stats_format(const struct evlog_stats *st, char *buf, size_t cap);

/* ---------------------------------------------------------------- client */

/* Connect a DEALER socket to the ingest endpoint. Not thread-safe: one
 * client per thread. timeout_ms bounds every blocking call (0 = 5000). */
int evlog_client_open(void *zctx, const char *endpoint, int timeout_ms, evlog_client **out);
void evlog_client_close(evlog_client *c);

/* Send one request of n (1..EVLOG_REQ_MAX) encoded events and wait for its
 * reply: seqs[i] and errs[i] per event. Returns MMO_OK when a reply came
 * (per-event errors are in errs), MMO_ETIMEOUT, MMO_EPROTO, or the request
 * error (MMO_EBUSY when the whole request was refused as busy). */
int evlog_client_append(evlog_client *c, const struct evlog_in *in, size_t n, uint64_t *seqs,
                        int *errs);

/* Pipelining: send a request tagged req_id without waiting ... */
int evlog_client_send(evlog_client *c, uint32_t req_id, const struct evlog_in *in, size_t n);
/* ... and receive any reply: its req_id, status and up to cap results.
 * timeout_ms < 0 uses the client's timeout. */
int evlog_client_recv(evlog_client *c, int timeout_ms, uint32_t *req_id, int *status,
                      uint64_t *seqs, int *errs, size_t cap, size_t *n);

/* For an event loop: the file descriptor that becomes readable when the
 * client may have replies (ZMQ_FD: edge-like, so after any send or wake-up
 * drain with evlog_client_recv(c, 0, ...) until MMO_ETIMEOUT). */
int evlog_client_fd(evlog_client *c, int *fd);

/* Read up to max records with seq >= from (of one region if region is not
 * NULL), in order. fn is called for each with a record that is only valid
 * during the call. *last receives the seq of the last record returned (or
 * from-1) and *head the log's head at the time of the read. */
typedef int evlog_rec_fn(const struct evlog_rec *rec, void *arg);
int evlog_client_read(evlog_client *c, uint64_t from, size_t max, const char *region,
                      evlog_rec_fn *fn, void *arg, uint64_t *last, uint64_t *head);

/* The log's head seq. */
int evlog_client_head(evlog_client *c, uint64_t *head);

/* The server's metrics as Prometheus text (NUL-terminated, truncated to cap). */
int evlog_client_stats(evlog_client *c, char *buf, size_t cap);

/* ---------------------------------------------------------------- bus */

/* A bus subscriber that delivers every committed event with seq >= from_seq
 * exactly once and in seq order (per region when regions are given),
 * filling any gap the bus drops from the log: from the local log if `log`
 * is set, else through a client of `ingest`. */
struct evlog_sub_opts {
	void *zctx;
	const char *bus;            /* endpoint to connect (SUB) */
	evlog *log;                 /* local log to fill gaps from, or NULL */
	const char *ingest;         /* else: the log's ingest endpoint */
	const char *const *regions; /* NULL: all events; else only these regions */
	size_t nregions;
	uint64_t from_seq; /* first seq wanted (1 = from the start) */
	const char *role;  /* "world", "views", ...: whose gaps these are in
	                      /metrics (copied; NULL: not counted per role) */
};

int evlog_sub_open(const struct evlog_sub_opts *o, evlog_sub **out);
void evlog_sub_close(evlog_sub *s);

/* Wait up to timeout_ms for events and deliver them in order through fn
 * (the record is valid only during the call; fn returning non-zero stops
 * and is returned). Returns MMO_OK (possibly delivering none), or an error.
 * *delivered (may be NULL) receives the count. */
int evlog_sub_poll(evlog_sub *s, int timeout_ms, evlog_rec_fn *fn, void *arg, size_t *delivered);

/* Subscribe to / leave one more region (only for region subscribers). */
int evlog_sub_add_region(evlog_sub *s, const char *region, uint64_t from_seq);
int evlog_sub_remove_region(evlog_sub *s, const char *region);

/* Counters: gaps detected and records filled from the log. */
void evlog_sub_counters(evlog_sub *s, uint64_t *gaps, uint64_t *filled);

/* The same counters summed over every subscriber of this process opened
 * with opts.role == role, closed ones included (0 for a role never seen). */
void evlog_sub_role_counters(const char *role, uint64_t *gaps, uint64_t *filled);

/* mmo_bus_gaps_total and mmo_bus_gap_events_filled_total{role="..."} for
 * each of the roles as Prometheus text into buf (NUL-terminated, whole
 * lines only). Returns the length written. */
size_t evlog_sub_metrics_format(const char *const *role, size_t nroles, char *buf, size_t cap);

/* ================================================================ audit queries
 * (log/query.c) The auditors' queries: events matching several filters at
 * once, in seq order, driven by the most selective index. */

/* The filters of a query. Every filter that is set must match. */
struct evlog_query {
	const char *player; /* player_id, or NULL/"" for any */
	const char *type;   /* exact type, or a prefix ending in '.' ("combat."), or NULL/"" */
	const char *region; /* region_id, or NULL/"" for any */
	uint64_t from_seq;  /* first seq (0 = 1) */
	uint64_t to_seq;    /* last seq (0 = the head at open) */
	bool since_set;     /* ts >= since_us */
	int64_t since_us;
	bool until_set; /* ts < until_us */
	int64_t until_us;
};

/* Which index a query reads. */
enum evlog_query_driver {
	EVLOG_DRIVE_SEQ = 0, /* the events table over [from, to] (time bounds narrow it) */
	EVLOG_DRIVE_PLAYER,
	EVLOG_DRIVE_TYPE, /* one stream per matching type key, merged in seq order */
	EVLOG_DRIVE_REGION,
};

typedef struct evlog_query_it evlog_query_it;

/* Open a query on a snapshot of the log taken now. The driver is the filter
 * with the fewest candidate entries (index key counts, or the width of the
 * seq range, which time bounds narrow by binary search since ts never goes
 * backwards); the other filters are checked per candidate with index
 * lookups, without decoding. Strings in q are copied. Errors: MMO_EINVAL
 * (bad filter: an id too long, since > until), MMO_EIO, MMO_ENOMEM. On
 * success the caller owns *out (evlog_query_close). */
int evlog_query_open(evlog *l, const struct evlog_query *q, evlog_query_it **out);

/* The next matching record (pointers valid until the next call or close):
 * MMO_OK, MMO_ENOTFOUND at the end, MMO_ECORRUPT if an index entry points at
 * a missing or short record. */
int evlog_query_next(evlog_query_it *it, struct evlog_rec *rec);
void evlog_query_close(evlog_query_it *it);

/* What the query reads: its driver, the candidate count that chose it, the
 * entries read so far (index entries or records visited: a query for one
 * player reads only that player's entries), and the head seq of its snapshot. */
enum evlog_query_driver evlog_query_driver(const evlog_query_it *it, uint64_t *candidates);
uint64_t evlog_query_scanned(const evlog_query_it *it);
uint64_t evlog_query_head(const evlog_query_it *it);

/* The seq range [*lo, *hi] of the events with since_us <= ts < until_us
 * (a binary search over the events; exact because ts never goes backwards). MMO_ENOTFOUND
 * when no event is in the window. */
int evlog_time_to_seq(evlog *l, int64_t since_us, int64_t until_us, uint64_t *lo, uint64_t *hi);

/* ================================================================ end of audit queries */

#endif
