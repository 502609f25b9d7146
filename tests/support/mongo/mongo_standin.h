/*
 * mongo_standin.h - mongo-standin, a TEST DOUBLE for MongoDB. It is not a
 * database: never point anything that matters at it.
 *
 * MongoDB's server cannot be installed on the build machines, so the tests of
 * the Mongo projector talk to this instead: one process, one thread, a poll()
 * loop over many connections, speaking just enough of the wire protocol that
 * libmongoc 1.23 uses. Run `mongo-standin --help` for the same list.
 *
 * Supported
 *   wire      OP_QUERY commands on <db>.$cmd (the handshake and the driver's
 *             monitoring), answered with OP_REPLY; OP_MSG (2013) with one
 *             kind-0 body and kind-1 document sequences, a checksum (skipped,
 *             not verified) and moreToCome (no reply is sent). hello says
 *             maxWireVersion 13, standalone, no topologyVersion (so drivers
 *             poll rather than stream). A message over 48,000,000 bytes, BSON
 *             nested deeper than 100 levels or anything malformed closes that
 *             connection; the server carries on.
 *   commands  hello/isMaster, ping, buildInfo, serverStatus, insert, update,
 *             delete, find, getMore, killCursors, aggregate, count, create,
 *             drop, dropDatabase, createIndexes, listIndexes, dropIndexes,
 *             listCollections, listDatabases, endSessions, killSessions.
 *             Anything else: {ok:0, code:59, codeName:"CommandNotFound"}.
 *   filters   equality on top-level or dotted fields (an array field matches
 *             when any element does), $eq $ne $gt $gte $lt $lte $in $nin
 *             $exists, $and $or $nor; values compare in MongoDB's BSON order.
 *   updates   $set $setOnInsert $inc $unset $min $max on top-level fields,
 *             replacement documents, upsert (the filter's equality fields seed
 *             the new document), multi; replies carry n, nModified, upserted.
 *             A duplicate _id or unique-index key is write error 11000.
 *   reads     find with filter, sort on several keys, skip, limit, batchSize,
 *             singleBatch, top-level inclusion or exclusion projection;
 *             cursors hold a snapshot and are walked with getMore.
 *   aggregate $match $sort $skip $limit $count $project (as find) $group (_id
 *             null, a constant, "$field" or {k: "$field"}; $sum $avg $min $max
 *             $first $last $count) and a leading $collStats {count: {}}.
 *   indexes   kept and listed (_id_ always); unique is enforced by a scan;
 *             nothing is ever faster because of an index.
 *   faults    {mmoFailNext: n, code, errmsg, writeError, ns} fails the next n
 *             write commands; {mmoReject: <filter> | null, code, ns} refuses
 *             every written document that matches; {mmoReset: 1} forgets all;
 *             {mmoStats: 1}; --fail-writes N [--fail-code C] at start.
 *   storage   in memory, insertion order, hashed by _id. --journal FILE logs
 *             every change and replays it at start, so a restart (even after
 *             kill -9) keeps the data.
 * Not supported: transactions, auth, TLS, compression, read/write concern
 *   semantics, collation, arrayFilters, pipeline updates, dotted paths in
 *   update operators, $regex $elemMatch $type $expr $where, findAndModify,
 *   distinct, change streams, tailable cursors.
 */

/* What the stand-in's files share (internal to it). One file per idea:
 *   standin_bson.c  errors, BSON helpers and MongoDB's order of values
 *   standin_store.c  databases, collections and documents in memory
 *   standin_journal.c  the journal file: appending changes, replaying them at start
 *   standin_query.c  cursors, filters, sort and projection
 *   standin_update.c  update operators, upserts and the write checks (duplicate keys, unique
 * indexes, rejects) standin_cmd.c  the commands that read and write documents, and the command
 * table standin_colls.c  the commands on collections, databases and indexes standin_aggregate.c the
 * aggregation pipeline standin_fault.c  fault injection (mmoFailNext, mmoReject, mmoReset,
 * mmoStats) standin_wire.c  the wire protocol, connections, the poll loop and main() */

#ifndef MMO_MONGO_STANDIN_H
#define MMO_MONGO_STANDIN_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bson/bson.h>

#include "schemas/mmo_hash.h"

#define OP_REPLY 1
#define OP_QUERY 2004
#define OP_MSG   2013

#define MSG_CHECKSUM      0x1u
#define MSG_MORE_TO_COME  0x2u
#define MSG_KNOWN_LOW     (MSG_CHECKSUM | MSG_MORE_TO_COME)
#define MSG_REQUIRED_BITS 0xffffu /* bits a parser must understand */

#define WIRE_VERSION    13
#define MAX_MSG_BYTES   48000000
#define MAX_BSON_BYTES  (16 * 1024 * 1024)
#define MAX_BATCH_BYTES (MAX_BSON_BYTES - 64 * 1024)
#define MAX_DEPTH       100
#define MAX_CONNS       1000
#define MAX_CURSORS     1000
#define MAX_SEQS        8
#define MAX_SORT_KEYS   32
#define MAX_UPD_FIELDS  256
#define MAX_ACCS        32
#define MSGS_PER_PASS   32
#define READ_PER_PASS   (4 * 1024 * 1024)
#define OUT_HIGH_WATER  (16 * 1024 * 1024)
#define DEFAULT_BATCH   101

struct err {
	int code;
	char msg[512];
};

struct doc {
	bson_t *b; /* owned; "_id" is always its first field */
	uint64_t h;
	struct doc *prev, *next, *hnext;
};

struct db;

struct coll {
	char *name;
	struct db *db;
	struct doc *head, *tail;
	size_t count;
	struct doc **buckets;
	size_t nbuckets;
	bson_t **indexes; /* secondary index specs; _id_ is implicit */
	size_t nindexes;
	struct coll *next;
};

struct db {
	char *name;
	struct coll *colls;
	struct db *next;
};

struct cursor {
	int64_t id;
	char *ns;
	bson_t **docs; /* owned snapshot */
	size_t n, pos;
	struct cursor *prev, *next;
};

struct conn;

/* The whole state of the stand-in (one thread: no locks). */
struct standin {
	struct db *dbs;
	struct cursor *cur_head, *cur_tail; /* oldest first */
	size_t ncursors;
	int64_t next_cursor;
	int32_t next_conn_id, next_req_id;
	size_t nconns;
	uint64_t commands;
	int journal_fd;
	bool verbose;
	/* mmoFailNext */
	int64_t fail_n;
	int fail_code;
	bool fail_write_error;
	char fail_errmsg[256], fail_ns[256];
	/* mmoReject */
	bson_t *reject;
	int reject_code;
	char reject_ns[256];
};

extern struct standin S;

struct docvec {
	bson_t **v;
	size_t n, cap;
};

struct sortspec {
	const char *path[MAX_SORT_KEYS];
	int dir[MAX_SORT_KEYS];
	size_t n;
};

enum { U_SET, U_SETONINSERT, U_INC, U_UNSET, U_MIN, U_MAX };

struct upd {
	int op;
	const char *key;
	bson_iter_t val;
};

struct updspec {
	struct upd f[MAX_UPD_FIELDS];
	size_t n;
	bool replacement;
	const bson_t *repl; /* the replacement document, borrowed */
};

struct req {
	struct conn *conn;
	int32_t conn_id;
	const char *db;
	const bson_t *cmd;
	const char *name;
};

typedef bool (*cmd_fn)(const struct req *r, bson_t *reply, struct err *e);

/* Write results as the wire reports them. */
struct wres {
	int64_t n, nmod;
	bson_t errs, ups;
	uint32_t nerrs, nups;
};

enum { A_SUM, A_AVG, A_MIN, A_MAX, A_FIRST, A_LAST, A_COUNT };

struct acc {
	const char *field;
	int kind;
	bson_iter_t expr;
};

struct accstate {
	long double dsum;
	int64_t isum, cnt;
	bool dbl, i64, overflow;
	bson_t *val; /* {"v": value} */
};

struct group {
	bson_t *key; /* {"_id": value} */
	struct accstate st[MAX_ACCS];
};

struct conn {
	int fd;
	int32_t id;
	uint8_t *in, *out;
	size_t inlen, incap, outlen, outoff, outcap;
	bool eof, dead, pending;
};

/* ---- standin_bson.c */

__attribute__((format(printf, 3, 4))) bool fail(struct err *e, int code, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int fail_tri(struct err *e, int code, const char *fmt, ...);
const char *code_name(int code);
bool iter_doc(const bson_iter_t *it, bson_t *out);
int field_doc(const bson_t *b, const char *key, bson_t *out);
int field_i64(const bson_t *b, const char *key, int64_t *out);
bool field_bool(const bson_t *b, const char *key, bool dflt);
const char *field_str(const bson_t *b, const char *key);
const char *idx_key(uint32_t i, char *buf, size_t cap);
void append_count(bson_t *b, const char *key, int64_t n);
int64_t now_ms(void);
bool doc_ok(const bson_t *b);
bool find_path(const bson_t *doc, const char *path, bson_iter_t *out);
int type_rank(bson_type_t t);
long double num_of(const bson_iter_t *it);
int cmp_values(const bson_iter_t *a, const bson_iter_t *b);
bool values_equal(const bson_iter_t *a, const bson_iter_t *b);

/* ---- standin_store.c */

bool doc_id(const bson_t *b, bson_iter_t *id);
struct doc *coll_find_id(const struct coll *c, const bson_iter_t *id);
bool valid_db_name(const char *s);
bool valid_coll_name(const char *s);
struct db *db_find(const char *name);
struct db *db_open(const char *name);
struct coll *coll_lookup(const char *db, const char *name);
struct coll *coll_open(struct db *db, const char *name, bool *created);
void coll_drop(struct coll *c);
void db_free(struct db *d);
void db_drop(struct db *d);
void doc_insert(struct coll *c, bson_t *b);
void doc_replace(struct coll *c, struct doc *d, bson_t *b);
void doc_delete(struct coll *c, struct doc *d);

/* ---- standin_journal.c */

void journal(char o, const struct db *db, const struct coll *c, const bson_t *d);
void journal_id(char o, const struct coll *c, const bson_t *doc);
int journal_open(const char *path);

/* ---- standin_query.c */

void vec_push(struct docvec *dv, bson_t *b);
void vec_release(struct docvec *dv);
void vec_free(struct docvec *dv);
void cursor_free(struct cursor *cur);
struct cursor *cursor_find(int64_t id);
size_t batch_end(bson_t **docs, size_t n, size_t pos, int64_t batch);
void append_cursor(bson_t *reply, const char *field, bson_t **docs, size_t from, size_t to,
                   int64_t id, const char *ns);
void reply_first_batch(bson_t *reply, const char *ns, struct docvec *dv, int64_t batch,
                       bool single);
bool is_operator_doc(const bson_iter_t *it);
int match(const bson_t *doc, const bson_t *filter, struct err *e);
bool select_docs(const struct coll *c, const bson_t *filter, struct docvec *out, struct err *e);
bool parse_sort(const bson_t *spec, struct sortspec *s, struct err *e);
void sort_vec(struct docvec *dv, const struct sortspec *s);
bool parse_projection(const bson_t *proj, bool *inclusive, struct err *e);
bson_t *project(const bson_t *doc, const bson_t *proj, bool inclusive);

/* ---- standin_update.c */

bool parse_update(const bson_t *u, struct updspec *s, struct err *e);
bool apply_ops(const bson_t *old, const struct updspec *s, bool inserting, bson_t *out,
               struct err *e);
void upsert_seed(const bson_t *filter, bson_t *out);
bson_t *with_id_first(const bson_t *in, struct err *e);
bool index_applies(const bson_t *spec, const bson_t *doc);
bool same_index_key(const bson_t *spec, const bson_t *a, const bson_t *b);
bool dup_error(const struct coll *c, const char *iname, const bson_t *doc, struct err *e);
bool write_allowed(const struct coll *c, const bson_t *doc, const struct doc *self, struct err *e);

/* ---- standin_cmd.c */

bool coll_arg(const struct req *r, const char **out, struct err *e);
void make_ns(char *buf, size_t cap, const char *db, const char *coll);
bool statements(const struct req *r, const char *field, bson_iter_t *out, struct err *e);
bool read_batch_size(const bson_t *b, int64_t *batch, struct err *e);
void run_command(struct conn *conn, int32_t conn_id, const char *db, const bson_t *cmd,
                 bson_t *reply);

/* ---- standin_colls.c */

bool cmd_create(const struct req *r, bson_t *reply, struct err *e);
bool cmd_drop(const struct req *r, bson_t *reply, struct err *e);
bool cmd_drop_database(const struct req *r, bson_t *reply, struct err *e);
bool cmd_list_collections(const struct req *r, bson_t *reply, struct err *e);
bool cmd_list_databases(const struct req *r, bson_t *reply, struct err *e);
bool cmd_list_indexes(const struct req *r, bson_t *reply, struct err *e);
bool cmd_create_indexes(const struct req *r, bson_t *reply, struct err *e);
bool cmd_drop_indexes(const struct req *r, bson_t *reply, struct err *e);

/* ---- standin_aggregate.c */

bool cmd_aggregate(const struct req *r, bson_t *reply, struct err *e);

/* ---- standin_fault.c */

bool cmd_fail_next(const struct req *r, bson_t *reply, struct err *e);
bool cmd_reject(const struct req *r, bson_t *reply, struct err *e);
void reset_all(void);
bool cmd_reset(const struct req *r, bson_t *reply, struct err *e);
bool cmd_stats(const struct req *r, bson_t *reply, struct err *e);
bool injected(const struct req *r, bson_t *reply, struct err *e);

#endif
