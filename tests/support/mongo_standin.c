/*
 * mongo_standin.c - mongo-standin, a TEST DOUBLE for MongoDB. It is not a
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

/* ---- errors ---------------------------------------------------------- */

struct err {
	int code;
	char msg[512];
};

__attribute__((format(printf, 3, 0))) static void vfail(struct err *e, int code, const char *fmt,
                                                        va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

/* Records an error; false, for functions that answer true or false. */
__attribute__((format(printf, 3, 4))) static bool fail(struct err *e, int code, const char *fmt,
                                                       ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(e, code, fmt, ap);
	va_end(ap);
	return false;
}

/* Records an error; -1, for the matchers, which answer 1, 0 or -1. */
__attribute__((format(printf, 3, 4))) static int fail_tri(struct err *e, int code, const char *fmt,
                                                          ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *code_name(int code)
{
	switch (code) {
	case 2: return "BadValue";
	case 9: return "FailedToParse";
	case 14: return "TypeMismatch";
	case 20: return "IllegalOperation";
	case 26: return "NamespaceNotFound";
	case 27: return "IndexNotFound";
	case 40: return "ConflictingUpdateOperators";
	case 43: return "CursorNotFound";
	case 48: return "NamespaceExists";
	case 59: return "CommandNotFound";
	case 66: return "ImmutableField";
	case 72: return "InvalidOptions";
	case 73: return "InvalidNamespace";
	case 85: return "IndexOptionsConflict";
	case 86: return "IndexKeySpecsConflict";
	case 91: return "ShutdownInProgress";
	case 121: return "DocumentValidationFailure";
	case 189: return "PrimarySteppedDown";
	case 10107: return "NotWritablePrimary";
	case 10334: return "BSONObjectTooLarge";
	case 11000: return "DuplicateKey";
	case 11600: return "InterruptedAtShutdown";
	default: {
		static char buf[32];

		snprintf(buf, sizeof(buf), "Location%d", code);
		return buf;
	}
	}
}

/* ---- small BSON helpers ------------------------------------------------ */

/* A sub-document or array as a static bson_t borrowing the iterator's
 * buffer (valid while that buffer is). */
static bool iter_doc(const bson_iter_t *it, bson_t *out)
{
	uint32_t len;
	const uint8_t *data;

	if (BSON_ITER_HOLDS_DOCUMENT(it))
		bson_iter_document(it, &len, &data);
	else if (BSON_ITER_HOLDS_ARRAY(it))
		bson_iter_array(it, &len, &data);
	else
		return false;
	return bson_init_static(out, data, len);
}

/* Optional sub-document field: 1 present, 0 absent or null, -1 wrong type. */
static int field_doc(const bson_t *b, const char *key, bson_t *out)
{
	bson_iter_t it;

	if (!bson_iter_init_find(&it, b, key) || BSON_ITER_HOLDS_NULL(&it))
		return 0;
	if (!BSON_ITER_HOLDS_DOCUMENT(&it))
		return -1;
	return iter_doc(&it, out) ? 1 : -1;
}

/* Optional numeric field: 1 present, 0 absent, -1 not a number. */
static int field_i64(const bson_t *b, const char *key, int64_t *out)
{
	bson_iter_t it;

	if (!bson_iter_init_find(&it, b, key) || BSON_ITER_HOLDS_NULL(&it))
		return 0;
	if (!BSON_ITER_HOLDS_NUMBER(&it))
		return -1;
	*out = bson_iter_as_int64(&it);
	return 1;
}

static bool field_bool(const bson_t *b, const char *key, bool dflt)
{
	bson_iter_t it;

	if (!bson_iter_init_find(&it, b, key))
		return dflt;
	return bson_iter_as_bool(&it);
}

static const char *field_str(const bson_t *b, const char *key)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_UTF8(&it))
		return bson_iter_utf8(&it, NULL);
	return NULL;
}

static const char *idx_key(uint32_t i, char *buf, size_t cap)
{
	const char *key;

	bson_uint32_to_string(i, &key, buf, cap);
	return key;
}

static void append_count(bson_t *b, const char *key, int64_t n)
{
	if (n >= INT32_MIN && n <= INT32_MAX)
		bson_append_int32(b, key, -1, (int32_t)n);
	else
		bson_append_int64(b, key, -1, n);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Walks every nested document without recursion: false when the bytes are
 * not well-formed BSON or nest deeper than MAX_DEPTH. Everything else in this
 * file may recurse because of this bound. */
static bool doc_ok(const bson_t *b)
{
	static struct {
		bson_iter_t it; /* wrapped: bson_iter_t is over-aligned for an array */
	} st[MAX_DEPTH + 1];
	int top = 0;

	if (!bson_iter_init(&st[0].it, b))
		return false;
	for (;;) {
		bson_iter_t *it = &st[top].it;

		if (bson_iter_next(it)) {
			if (!BSON_ITER_HOLDS_DOCUMENT(it) && !BSON_ITER_HOLDS_ARRAY(it))
				continue;
			if (top == MAX_DEPTH || !bson_iter_recurse(it, &st[top + 1].it))
				return false;
			top++;
			continue;
		}
		if (it->err_off != 0)
			return false;
		if (top == 0)
			return true;
		top--;
	}
}

/* Finds a top-level or dotted path in doc. */
static bool find_path(const bson_t *doc, const char *path, bson_iter_t *out)
{
	bson_iter_t it;

	if (!bson_iter_init(&it, doc))
		return false;
	if (!strchr(path, '.')) {
		if (!bson_iter_find(&it, path))
			return false;
		*out = it;
		return true;
	}
	return bson_iter_find_descendant(&it, path, out);
}

/* ---- MongoDB's BSON order ------------------------------------------------ */

static int type_rank(bson_type_t t)
{
	switch (t) {
	case BSON_TYPE_MINKEY: return 1;
	case BSON_TYPE_EOD:
	case BSON_TYPE_UNDEFINED:
	case BSON_TYPE_NULL: return 2;
	case BSON_TYPE_INT32:
	case BSON_TYPE_INT64:
	case BSON_TYPE_DOUBLE:
	case BSON_TYPE_DECIMAL128: return 3;
	case BSON_TYPE_SYMBOL:
	case BSON_TYPE_UTF8: return 4;
	case BSON_TYPE_DOCUMENT: return 5;
	case BSON_TYPE_ARRAY: return 6;
	case BSON_TYPE_BINARY: return 7;
	case BSON_TYPE_OID: return 8;
	case BSON_TYPE_BOOL: return 9;
	case BSON_TYPE_DATE_TIME: return 10;
	case BSON_TYPE_TIMESTAMP: return 11;
	case BSON_TYPE_REGEX: return 12;
	case BSON_TYPE_DBPOINTER: return 13;
	case BSON_TYPE_CODE: return 14;
	case BSON_TYPE_CODEWSCOPE: return 15;
	case BSON_TYPE_MAXKEY: return 17;
	default: return 16;
	}
}

static bson_type_t type_of(const bson_iter_t *it)
{
	return it ? bson_iter_type(it) : BSON_TYPE_NULL;
}

static long double num_of(const bson_iter_t *it)
{
	bson_decimal128_t d;
	char s[BSON_DECIMAL128_STRING];

	switch (bson_iter_type(it)) {
	case BSON_TYPE_INT32: return bson_iter_int32(it);
	case BSON_TYPE_INT64: return (long double)bson_iter_int64(it);
	case BSON_TYPE_DOUBLE: return bson_iter_double(it);
	case BSON_TYPE_DECIMAL128:
		bson_iter_decimal128(it, &d);
		bson_decimal128_to_string(&d, s);
		return strtold(s, NULL);
	default: return 0;
	}
}

static bool is_int_type(bson_type_t t)
{
	return t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64;
}

static int sign(long double a, long double b)
{
	return a < b ? -1 : (a > b ? 1 : 0);
}

static int cmp_values(const bson_iter_t *a, const bson_iter_t *b);

static int cmp_children(const bson_iter_t *a, const bson_iter_t *b)
{
	bson_iter_t ca, cb;

	if (!bson_iter_recurse(a, &ca) || !bson_iter_recurse(b, &cb))
		return 0;
	for (;;) {
		bool ha = bson_iter_next(&ca), hb = bson_iter_next(&cb);
		int c;

		if (!ha || !hb)
			return ha == hb ? 0 : (ha ? 1 : -1);
		c = type_rank(bson_iter_type(&ca)) - type_rank(bson_iter_type(&cb));
		if (c)
			return c < 0 ? -1 : 1;
		c = strcmp(bson_iter_key(&ca), bson_iter_key(&cb));
		if (c)
			return c < 0 ? -1 : 1;
		c = cmp_values(&ca, &cb);
		if (c)
			return c;
	}
}

static int cmp_bytes(const void *a, size_t la, const void *b, size_t lb)
{
	int c = memcmp(a, b, la < lb ? la : lb);

	if (c)
		return c < 0 ? -1 : 1;
	return la == lb ? 0 : (la < lb ? -1 : 1);
}

/* Compares two values in MongoDB's order; NULL stands for a missing field,
 * which sorts as null. Numbers of any type compare by value. */
static int cmp_values(const bson_iter_t *a, const bson_iter_t *b)
{
	bson_type_t ta = type_of(a), tb = type_of(b);
	int ra = type_rank(ta), rb = type_rank(tb);
	uint32_t la, lb, t1, i1, t2, i2;
	const uint8_t *da, *db;
	const char *sa, *sb;
	bson_subtype_t st1, st2;

	if (ra != rb)
		return ra < rb ? -1 : 1;
	switch (ra) {
	case 3: {
		if (is_int_type(ta) && is_int_type(tb)) {
			int64_t x = bson_iter_as_int64(a), y = bson_iter_as_int64(b);

			return x < y ? -1 : (x > y);
		}
		long double x = num_of(a), y = num_of(b);

		if (isnan(x) || isnan(y))
			return isnan(x) ? (isnan(y) ? 0 : -1) : 1;
		return sign(x, y);
	}
	case 4:
		sa = ta == BSON_TYPE_UTF8 ? bson_iter_utf8(a, &la) : bson_iter_symbol(a, &la);
		sb = tb == BSON_TYPE_UTF8 ? bson_iter_utf8(b, &lb) : bson_iter_symbol(b, &lb);
		return cmp_bytes(sa, la, sb, lb);
	case 5:
	case 6: return cmp_children(a, b);
	case 7:
		bson_iter_binary(a, &st1, &la, &da);
		bson_iter_binary(b, &st2, &lb, &db);
		if (la != lb)
			return la < lb ? -1 : 1;
		if (st1 != st2)
			return st1 < st2 ? -1 : 1;
		return cmp_bytes(da, la, db, lb);
	case 8: {
		int c = bson_oid_compare(bson_iter_oid(a), bson_iter_oid(b));

		return c < 0 ? -1 : (c > 0);
	}
	case 9: return (int)bson_iter_bool(a) - (int)bson_iter_bool(b);
	case 10:
		return sign((long double)bson_iter_date_time(a),
		            (long double)bson_iter_date_time(b));
	case 11:
		bson_iter_timestamp(a, &t1, &i1);
		bson_iter_timestamp(b, &t2, &i2);
		if (t1 != t2)
			return t1 < t2 ? -1 : 1;
		return i1 < i2 ? -1 : (i1 > i2);
	case 12: {
		const char *oa, *ob;
		int c = strcmp(bson_iter_regex(a, &oa), bson_iter_regex(b, &ob));

		if (!c)
			c = strcmp(oa, ob);
		return c < 0 ? -1 : (c > 0);
	}
	case 14:
		sa = bson_iter_code(a, &la);
		sb = bson_iter_code(b, &lb);
		return cmp_bytes(sa, la, sb, lb);
	default: return 0;
	}
}

static bool values_equal(const bson_iter_t *a, const bson_iter_t *b)
{
	return cmp_values(a, b) == 0;
}

/* ---- storage ---------------------------------------------------------- */

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

static struct {
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
} S = {.journal_fd = -1};

/* Hash consistent with cmp_values: equal values hash equal. */
static uint64_t hash_value(const bson_iter_t *it)
{
	uint64_t h = MMO_FNV1A_INIT;
	bson_type_t t = bson_iter_type(it);
	uint8_t rank = (uint8_t)type_rank(t);
	uint32_t len;
	const uint8_t *data;
	const char *s;

	h = mmo_fnv1a_more(h, &rank, 1);
	switch (rank) {
	case 3: {
		long double v = num_of(it);

		if (v >= -9.0e18L && v <= 9.0e18L && (long double)(int64_t)v == v) {
			int64_t i = (int64_t)v;

			return mmo_fnv1a_more(h, &i, sizeof(i));
		}
		double d = (double)v;

		return mmo_fnv1a_more(h, &d, sizeof(d));
	}
	case 4:
		s = t == BSON_TYPE_UTF8 ? bson_iter_utf8(it, &len) : bson_iter_symbol(it, &len);
		return mmo_fnv1a_more(h, s, len);
	case 7: bson_iter_binary(it, NULL, &len, &data); return mmo_fnv1a_more(h, data, len);
	case 8: return mmo_fnv1a_more(h, bson_iter_oid(it)->bytes, 12);
	case 10: {
		int64_t v = bson_iter_date_time(it);

		return mmo_fnv1a_more(h, &v, sizeof(v));
	}
	default: return h; /* documents and the rest share a chain per type */
	}
}

static bool doc_id(const bson_t *b, bson_iter_t *id)
{
	return bson_iter_init_find(id, b, "_id");
}

static void coll_rehash(struct coll *c, size_t n)
{
	struct doc **nb = bson_malloc0(n * sizeof(*nb));

	for (struct doc *d = c->head; d; d = d->next) {
		size_t i = d->h & (n - 1);

		d->hnext = nb[i];
		nb[i] = d;
	}
	bson_free(c->buckets);
	c->buckets = nb;
	c->nbuckets = n;
}

static struct doc *coll_find_id(const struct coll *c, const bson_iter_t *id)
{
	uint64_t h = hash_value(id);
	bson_iter_t other;

	if (!c->nbuckets)
		return NULL;
	for (struct doc *d = c->buckets[h & (c->nbuckets - 1)]; d; d = d->hnext)
		if (d->h == h && doc_id(d->b, &other) && values_equal(id, &other))
			return d;
	return NULL;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "mongo-standin: journal write: %s\n", strerror(errno));
			exit(2);
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Appends one change to the journal: o is the kind, d its payload. */
static void journal(char o, const struct db *db, const struct coll *c, const bson_t *d)
{
	bson_t rec = BSON_INITIALIZER;
	char op[2] = {o, 0};

	if (S.journal_fd < 0)
		return;
	BSON_APPEND_UTF8(&rec, "o", op);
	if (db)
		BSON_APPEND_UTF8(&rec, "db", db->name);
	if (c)
		BSON_APPEND_UTF8(&rec, "c", c->name);
	if (d)
		BSON_APPEND_DOCUMENT(&rec, "d", d);
	write_all(S.journal_fd, bson_get_data(&rec), rec.len);
	bson_destroy(&rec);
}

static void journal_id(char o, const struct coll *c, const bson_t *doc)
{
	bson_t d = BSON_INITIALIZER;
	bson_iter_t id;

	if (S.journal_fd < 0)
		return;
	if (doc_id(doc, &id))
		bson_append_iter(&d, "_id", 3, &id);
	journal(o, c->db, c, &d);
	bson_destroy(&d);
}

static bool valid_db_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 64 && !strpbrk(s, "/\\. \"$*<>:|?");
}

static bool valid_coll_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 200 && !strchr(s, '$') && s[0] != '.' && s[n - 1] != '.';
}

static struct db *db_find(const char *name)
{
	for (struct db *d = S.dbs; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

static struct db *db_open(const char *name)
{
	struct db *d = db_find(name);

	if (d)
		return d;
	d = bson_malloc0(sizeof(*d));
	d->name = bson_strdup(name);
	d->next = S.dbs;
	S.dbs = d;
	return d;
}

static struct coll *coll_find(const struct db *db, const char *name)
{
	if (!db)
		return NULL;
	for (struct coll *c = db->colls; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static struct coll *coll_lookup(const char *db, const char *name)
{
	return coll_find(db_find(db), name);
}

static struct coll *coll_open(struct db *db, const char *name, bool *created)
{
	struct coll *c = coll_find(db, name), **tail;

	if (created)
		*created = !c;
	if (c)
		return c;
	c = bson_malloc0(sizeof(*c));
	c->name = bson_strdup(name);
	c->db = db;
	for (tail = &db->colls; *tail; tail = &(*tail)->next)
		;
	*tail = c;
	journal('c', db, c, NULL);
	return c;
}

static void coll_free(struct coll *c)
{
	struct doc *d = c->head, *next;

	for (; d; d = next) {
		next = d->next;
		bson_destroy(d->b);
		bson_free(d);
	}
	for (size_t i = 0; i < c->nindexes; i++)
		bson_destroy(c->indexes[i]);
	bson_free(c->indexes);
	bson_free(c->buckets);
	bson_free(c->name);
	bson_free(c);
}

static void coll_drop(struct coll *c)
{
	struct coll **p = &c->db->colls;

	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	journal('D', c->db, c, NULL);
	coll_free(c);
}

static void db_free(struct db *d)
{
	struct coll *c = d->colls, *next;

	for (; c; c = next) {
		next = c->next;
		coll_free(c);
	}
	bson_free(d->name);
	bson_free(d);
}

static void db_drop(struct db *d)
{
	struct db **p = &S.dbs;

	while (*p != d)
		p = &(*p)->next;
	*p = d->next;
	journal('X', d, NULL, NULL);
	db_free(d);
}

/* Links b (owned from now on, _id first and unique) at the end of c. */
static void doc_insert(struct coll *c, bson_t *b)
{
	struct doc *d = bson_malloc0(sizeof(*d));
	bson_iter_t id;
	size_t i;

	d->b = b;
	doc_id(b, &id);
	d->h = hash_value(&id);
	d->prev = c->tail;
	if (c->tail)
		c->tail->next = d;
	else
		c->head = d;
	c->tail = d;
	c->count++;
	if (c->count > c->nbuckets)
		coll_rehash(c, c->nbuckets ? c->nbuckets * 2 : 64);
	else {
		i = d->h & (c->nbuckets - 1);
		d->hnext = c->buckets[i];
		c->buckets[i] = d;
	}
	journal('i', c->db, c, b);
}

/* Replaces d's document by b (owned from now on; same _id). */
static void doc_replace(struct coll *c, struct doc *d, bson_t *b)
{
	bson_destroy(d->b);
	d->b = b;
	journal('r', c->db, c, b);
}

static void doc_delete(struct coll *c, struct doc *d)
{
	struct doc **p = &c->buckets[d->h & (c->nbuckets - 1)];

	journal_id('d', c, d->b);
	while (*p != d)
		p = &(*p)->hnext;
	*p = d->hnext;
	if (d->prev)
		d->prev->next = d->next;
	else
		c->head = d->next;
	if (d->next)
		d->next->prev = d->prev;
	else
		c->tail = d->prev;
	c->count--;
	bson_destroy(d->b);
	bson_free(d);
}

/* ---- cursors ---------------------------------------------------------- */

struct docvec {
	bson_t **v;
	size_t n, cap;
};

static void vec_push(struct docvec *dv, bson_t *b)
{
	if (dv->n == dv->cap) {
		dv->cap = dv->cap ? dv->cap * 2 : 16;
		dv->v = bson_realloc(dv->v, dv->cap * sizeof(*dv->v));
	}
	dv->v[dv->n++] = b;
}

/* Frees the array only (the documents are borrowed). */
static void vec_release(struct docvec *dv)
{
	bson_free(dv->v);
	memset(dv, 0, sizeof(*dv));
}

/* Frees the array and destroys the documents it owns. */
static void vec_free(struct docvec *dv)
{
	for (size_t i = 0; i < dv->n; i++)
		bson_destroy(dv->v[i]);
	vec_release(dv);
}

static void cursor_free(struct cursor *cur)
{
	if (cur->prev)
		cur->prev->next = cur->next;
	else
		S.cur_head = cur->next;
	if (cur->next)
		cur->next->prev = cur->prev;
	else
		S.cur_tail = cur->prev;
	S.ncursors--;
	for (size_t i = cur->pos; i < cur->n; i++)
		bson_destroy(cur->docs[i]);
	bson_free(cur->docs);
	bson_free(cur->ns);
	bson_free(cur);
}

/* Takes the documents of dv from pos on; dv is left empty. */
static struct cursor *cursor_new(const char *ns, struct docvec *dv, size_t pos)
{
	struct cursor *cur = bson_malloc0(sizeof(*cur));

	if (S.ncursors >= MAX_CURSORS)
		cursor_free(S.cur_head);
	for (size_t i = 0; i < pos; i++)
		bson_destroy(dv->v[i]);
	cur->id = ++S.next_cursor;
	cur->ns = bson_strdup(ns);
	cur->docs = dv->v;
	cur->n = dv->n;
	cur->pos = pos;
	memset(dv, 0, sizeof(*dv));
	cur->prev = S.cur_tail;
	if (S.cur_tail)
		S.cur_tail->next = cur;
	else
		S.cur_head = cur;
	S.cur_tail = cur;
	S.ncursors++;
	return cur;
}

static struct cursor *cursor_find(int64_t id)
{
	for (struct cursor *c = S.cur_head; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* End of the next batch from pos: at most batch documents (batch < 0: any
 * number) and MAX_BATCH_BYTES, but always at least one. */
static size_t batch_end(bson_t **docs, size_t n, size_t pos, int64_t batch)
{
	size_t end = pos, bytes = 0;

	while (end < n && (batch < 0 || end - pos < (size_t)batch)) {
		if (end > pos && bytes + docs[end]->len > MAX_BATCH_BYTES)
			break;
		bytes += docs[end]->len;
		end++;
	}
	return end;
}

static void append_cursor(bson_t *reply, const char *field, bson_t **docs, size_t from, size_t to,
                          int64_t id, const char *ns)
{
	bson_t cur, arr;
	char buf[16];

	bson_append_document_begin(reply, "cursor", 6, &cur);
	bson_append_array_begin(&cur, field, -1, &arr);
	for (size_t i = from; i < to; i++)
		bson_append_document(&arr, idx_key((uint32_t)(i - from), buf, sizeof(buf)), -1,
		                     docs[i]);
	bson_append_array_end(&cur, &arr);
	bson_append_int64(&cur, "id", 2, id);
	BSON_APPEND_UTF8(&cur, "ns", ns);
	bson_append_document_end(reply, &cur);
}

/* Replies with the first batch of dv (whose documents it takes) and keeps the
 * rest in a new cursor unless single. batch < 0 means the default. */
static void reply_first_batch(bson_t *reply, const char *ns, struct docvec *dv, int64_t batch,
                              bool single)
{
	size_t end = batch_end(dv->v, dv->n, 0, batch < 0 ? DEFAULT_BATCH : batch);
	struct cursor *cur = NULL;

	if (end < dv->n && !single)
		cur = cursor_new(ns, dv, 0);
	if (cur) {
		append_cursor(reply, "firstBatch", cur->docs, 0, end, cur->id, ns);
		for (size_t i = 0; i < end; i++)
			bson_destroy(cur->docs[i]);
		cur->pos = end;
	} else {
		append_cursor(reply, "firstBatch", dv->v, 0, end, 0, ns);
		vec_free(dv);
	}
}

/* ---- matching ----------------------------------------------------------- */

static int match(const bson_t *doc, const bson_t *filter, struct err *e);

/* Equality as a filter means it: null matches missing, and an array field
 * matches when the whole array or any element equals the operand. */
static bool match_eq(const bson_iter_t *v, const bson_iter_t *operand)
{
	bson_iter_t el;

	if (BSON_ITER_HOLDS_NULL(operand) &&
	    (!v || BSON_ITER_HOLDS_NULL(v) || BSON_ITER_HOLDS_UNDEFINED(v)))
		return true;
	if (!v)
		return false;
	if (values_equal(v, operand))
		return true;
	if (BSON_ITER_HOLDS_ARRAY(v) && bson_iter_recurse(v, &el))
		while (bson_iter_next(&el))
			if (values_equal(&el, operand))
				return true;
	return false;
}

/* $gt and friends: only within one type bracket; arrays by any element. */
static bool match_cmp(const bson_iter_t *v, const bson_iter_t *operand, int want_lo, int want_hi)
{
	bson_iter_t el;
	int c;

	if (!v)
		return BSON_ITER_HOLDS_NULL(operand) && want_lo <= 0 && want_hi >= 0;
	if (type_rank(bson_iter_type(v)) == type_rank(bson_iter_type(operand))) {
		c = cmp_values(v, operand);
		if (c >= want_lo && c <= want_hi)
			return true;
	}
	if (BSON_ITER_HOLDS_ARRAY(v) && bson_iter_recurse(v, &el))
		while (bson_iter_next(&el))
			if (type_rank(bson_iter_type(&el)) == type_rank(bson_iter_type(operand))) {
				c = cmp_values(&el, operand);
				if (c >= want_lo && c <= want_hi)
					return true;
			}
	return false;
}

static int match_in(const bson_iter_t *v, const bson_iter_t *operand, const char *op, struct err *e)
{
	bson_iter_t el;

	if (!BSON_ITER_HOLDS_ARRAY(operand) || !bson_iter_recurse(operand, &el))
		return fail_tri(e, 2, "%s needs an array", op);
	while (bson_iter_next(&el))
		if (match_eq(v, &el))
			return 1;
	return 0;
}

static bool is_operator_doc(const bson_iter_t *it)
{
	bson_iter_t child;

	return BSON_ITER_HOLDS_DOCUMENT(it) && bson_iter_recurse(it, &child) &&
	       bson_iter_next(&child) && bson_iter_key(&child)[0] == '$';
}

static int match_field(const bson_t *doc, const char *path, const bson_iter_t *cond, struct err *e)
{
	bson_iter_t found, ops;
	const bson_iter_t *v;
	int r;

	v = find_path(doc, path, &found) ? &found : NULL;
	if (!is_operator_doc(cond))
		return match_eq(v, cond);
	bson_iter_recurse(cond, &ops);
	while (bson_iter_next(&ops)) {
		const char *op = bson_iter_key(&ops);

		if (!strcmp(op, "$eq"))
			r = match_eq(v, &ops);
		else if (!strcmp(op, "$ne"))
			r = !match_eq(v, &ops);
		else if (!strcmp(op, "$gt"))
			r = match_cmp(v, &ops, 1, 1);
		else if (!strcmp(op, "$gte"))
			r = match_cmp(v, &ops, 0, 1);
		else if (!strcmp(op, "$lt"))
			r = match_cmp(v, &ops, -1, -1);
		else if (!strcmp(op, "$lte"))
			r = match_cmp(v, &ops, -1, 0);
		else if (!strcmp(op, "$in"))
			r = match_in(v, &ops, op, e);
		else if (!strcmp(op, "$nin")) {
			r = match_in(v, &ops, op, e);
			if (r >= 0)
				r = !r;
		} else if (!strcmp(op, "$exists"))
			r = (v != NULL) == bson_iter_as_bool(&ops);
		else
			return fail_tri(e, 2, "unknown operator: %s (not in the mongo stand-in)",
			                op);
		if (r != 1)
			return r;
	}
	return 1;
}

static int match_logical(const bson_t *doc, const bson_iter_t *f, struct err *e)
{
	const char *op = bson_iter_key(f);
	bson_iter_t arr;
	bson_t sub;
	bool any = false;
	int r;

	if (!strcmp(op, "$comment"))
		return 1;
	if (strcmp(op, "$and") && strcmp(op, "$or") && strcmp(op, "$nor"))
		return fail_tri(e, 2, "unknown top level operator: %s (not in the mongo stand-in)",
		                op);
	if (!BSON_ITER_HOLDS_ARRAY(f) || !bson_iter_recurse(f, &arr))
		return fail_tri(e, 2, "%s must be an array", op);
	while (bson_iter_next(&arr)) {
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !iter_doc(&arr, &sub))
			return fail_tri(e, 2, "%s entries must be objects", op);
		any = true;
		r = match(doc, &sub, e);
		if (r < 0)
			return r;
		if (op[1] == 'a' && !r)
			return 0;
		if (op[1] != 'a' && r)
			return op[1] == 'o';
	}
	if (!any)
		return fail_tri(e, 2, "%s must be a nonempty array", op);
	return op[1] != 'o';
}

/* 1 when doc matches filter, 0 when not, -1 on a bad filter (e says why). */
static int match(const bson_t *doc, const bson_t *filter, struct err *e)
{
	bson_iter_t f;
	int r;

	if (!bson_iter_init(&f, filter))
		return fail_tri(e, 2, "bad filter");
	while (bson_iter_next(&f)) {
		if (bson_iter_key(&f)[0] == '$')
			r = match_logical(doc, &f, e);
		else
			r = match_field(doc, bson_iter_key(&f), &f, e);
		if (r != 1)
			return r;
	}
	return 1;
}

/* The value of a plain {_id: v} or {_id: {$eq: v}} in filter, if any. */
static bool filter_id(const bson_t *filter, bson_iter_t *id)
{
	bson_iter_t it, child;

	if (!filter || !bson_iter_init_find(&it, filter, "_id"))
		return false;
	if (!is_operator_doc(&it)) {
		*id = it;
		return !BSON_ITER_HOLDS_ARRAY(&it) && !BSON_ITER_HOLDS_NULL(&it);
	}
	bson_iter_recurse(&it, &child);
	if (bson_iter_next(&child) && !strcmp(bson_iter_key(&child), "$eq") &&
	    !BSON_ITER_HOLDS_ARRAY(&child)) {
		*id = child;
		return !bson_iter_next(&child);
	}
	return false;
}

/* Borrowed pointers to the documents of c matching filter (NULL: all). */
static bool select_docs(const struct coll *c, const bson_t *filter, struct docvec *out,
                        struct err *e)
{
	bson_iter_t id;
	int r;

	if (!c)
		return true;
	if (filter_id(filter, &id)) {
		struct doc *d = coll_find_id(c, &id);

		r = d ? match(d->b, filter, e) : 0;
		if (r > 0)
			vec_push(out, d->b);
		return r >= 0;
	}
	for (struct doc *d = c->head; d; d = d->next) {
		r = filter ? match(d->b, filter, e) : 1;
		if (r < 0)
			return false;
		if (r)
			vec_push(out, d->b);
	}
	return true;
}

/* ---- sort and projection ------------------------------------------------ */

struct sortspec {
	const char *path[MAX_SORT_KEYS];
	int dir[MAX_SORT_KEYS];
	size_t n;
};

static bool parse_sort(const bson_t *spec, struct sortspec *s, struct err *e)
{
	bson_iter_t it;

	s->n = 0;
	if (!bson_iter_init(&it, spec))
		return fail(e, 2, "bad sort");
	while (bson_iter_next(&it)) {
		int64_t d;

		if (s->n == MAX_SORT_KEYS)
			return fail(e, 2, "too many sort keys");
		if (!BSON_ITER_HOLDS_NUMBER(&it) || (d = bson_iter_as_int64(&it)) == 0)
			return fail(e, 2,
			            "$sort key ordering must be 1 (for ascending) or -1 (for "
			            "descending); the mongo stand-in has no $meta");
		s->path[s->n] = bson_iter_key(&it);
		s->dir[s->n++] = d > 0 ? 1 : -1;
	}
	return true;
}

static int sort_cmp(const struct sortspec *s, const bson_t *a, const bson_t *b)
{
	for (size_t k = 0; k < s->n; k++) {
		bson_iter_t ia, ib;
		bool ha = find_path(a, s->path[k], &ia), hb = find_path(b, s->path[k], &ib);
		int c = cmp_values(ha ? &ia : NULL, hb ? &ib : NULL);

		if (c)
			return c * s->dir[k];
	}
	return 0;
}

/* Stable merge sort; tmp has room for n pointers. */
static void merge_sort(bson_t **v, bson_t **tmp, size_t n, const struct sortspec *s)
{
	size_t h = n / 2, i = 0, j = h, k = 0;

	if (n < 2)
		return;
	merge_sort(v, tmp, h, s);
	merge_sort(v + h, tmp, n - h, s);
	while (i < h && j < n)
		tmp[k++] = sort_cmp(s, v[j], v[i]) < 0 ? v[j++] : v[i++];
	while (i < h)
		tmp[k++] = v[i++];
	while (j < n)
		tmp[k++] = v[j++];
	memcpy(v, tmp, n * sizeof(*v));
}

static void sort_vec(struct docvec *dv, const struct sortspec *s)
{
	bson_t **tmp;

	if (dv->n < 2 || !s->n)
		return;
	tmp = bson_malloc(dv->n * sizeof(*tmp));
	merge_sort(dv->v, tmp, dv->n, s);
	bson_free(tmp);
}

/* Checks a top-level projection; *inclusive says which kind it is. */
static bool parse_projection(const bson_t *proj, bool *inclusive, struct err *e)
{
	bson_iter_t it;
	int kind = -1;

	if (!bson_iter_init(&it, proj))
		return fail(e, 2, "bad projection");
	while (bson_iter_next(&it)) {
		const char *k = bson_iter_key(&it);
		int v;

		if (!BSON_ITER_HOLDS_NUMBER(&it) && !BSON_ITER_HOLDS_BOOL(&it))
			return fail(e, 2,
			            "projection of %s: the mongo stand-in only supports "
			            "0/1 and true/false",
			            k);
		if (strchr(k, '.') || k[0] == '$')
			return fail(e, 2,
			            "projection of %s: no dotted or $ paths in the mongo "
			            "stand-in",
			            k);
		v = bson_iter_as_bool(&it);
		if (!strcmp(k, "_id"))
			continue;
		if (kind >= 0 && kind != v)
			return fail(e, 31254, "cannot mix inclusion and exclusion in a projection");
		kind = v;
	}
	*inclusive = kind == 1;
	return true;
}

static bson_t *project(const bson_t *doc, const bson_t *proj, bool inclusive)
{
	bson_t *out = bson_new();
	bson_iter_t it, p;

	bson_iter_init(&it, doc);
	while (bson_iter_next(&it)) {
		const char *k = bson_iter_key(&it);
		bool listed = bson_iter_init_find(&p, proj, k);
		bool keep = !strcmp(k, "_id") ? !listed || bson_iter_as_bool(&p)
		                              : (inclusive ? listed : !listed);

		if (keep)
			bson_append_iter(out, NULL, 0, &it);
	}
	return out;
}

/* ---- updates -------------------------------------------------------------- */

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

static int op_code(const char *name)
{
	static const char *names[] = {"$set", "$setOnInsert", "$inc", "$unset", "$min", "$max"};

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (!strcmp(name, names[i]))
			return (int)i;
	return -1;
}

static bool parse_update(const bson_t *u, struct updspec *s, struct err *e)
{
	bson_iter_t it, f;
	bool first = true;

	s->n = 0;
	s->replacement = false;
	bson_iter_init(&it, u);
	while (bson_iter_next(&it)) {
		const char *name = bson_iter_key(&it);
		int op = op_code(name);

		if (first && name[0] != '$') {
			s->replacement = true;
			s->repl = u;
			break;
		}
		first = false;
		if (op < 0)
			return fail(e, 9, "Unknown modifier: %s (not in the mongo stand-in)", name);
		if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !bson_iter_recurse(&it, &f))
			return fail(e, 9,
			            "Modifiers operate on fields but we found another type "
			            "instead");
		while (bson_iter_next(&f)) {
			const char *k = bson_iter_key(&f);

			if (strchr(k, '.') || k[0] == '$' || !k[0])
				return fail(e, 2,
				            "update path '%s': the mongo stand-in only updates "
				            "top-level fields",
				            k);
			if ((op == U_INC || op == U_UNSET || op == U_MIN || op == U_MAX) &&
			    !strcmp(k, "_id"))
				return fail(e, 66,
				            "Performing an update on the path '_id' would "
				            "modify the immutable field '_id'");
			for (size_t j = 0; j < s->n; j++)
				if (!strcmp(s->f[j].key, k))
					return fail(e, 40,
					            "Updating the path '%s' would create a "
					            "conflict at '%s'",
					            k, k);
			if (s->n == MAX_UPD_FIELDS)
				return fail(e, 2, "too many fields in one update");
			if (op == U_INC && !BSON_ITER_HOLDS_NUMBER(&f))
				return fail(e, 14, "Cannot increment with non-numeric argument");
			s->f[s->n].op = op;
			s->f[s->n].key = k;
			s->f[s->n++].val = f;
		}
	}
	if (s->replacement) {
		bson_iter_init(&it, u);
		while (bson_iter_next(&it))
			if (bson_iter_key(&it)[0] == '$')
				return fail(e, 9, "replacement documents cannot hold $ fields");
	}
	return true;
}

static bool add_numbers(const bson_iter_t *a, const bson_iter_t *b, bson_t *out, const char *key,
                        struct err *e)
{
	bson_type_t ta = bson_iter_type(a), tb = bson_iter_type(b);
	int64_t x, y, s;

	if (!BSON_ITER_HOLDS_NUMBER(a))
		return fail(e, 14, "Cannot apply $inc to a value of non-numeric type (field %s)",
		            key);
	if (ta == BSON_TYPE_DOUBLE || tb == BSON_TYPE_DOUBLE)
		return bson_append_double(out, key, -1,
		                          bson_iter_as_double(a) + bson_iter_as_double(b));
	x = bson_iter_as_int64(a);
	y = bson_iter_as_int64(b);
	if (__builtin_add_overflow(x, y, &s))
		return fail(e, 2, "Failed to apply $inc to %s: overflow", key);
	if (ta == BSON_TYPE_INT32 && tb == BSON_TYPE_INT32 && s >= INT32_MIN && s <= INT32_MAX)
		return bson_append_int32(out, key, -1, (int32_t)s);
	return bson_append_int64(out, key, -1, s);
}

static const struct upd *upd_find(const struct updspec *s, const char *k, bool inserting,
                                  size_t *slot)
{
	for (size_t j = 0; j < s->n; j++)
		if (!strcmp(s->f[j].key, k) && (s->f[j].op != U_SETONINSERT || inserting)) {
			*slot = j;
			return &s->f[j];
		}
	return NULL;
}

/* Builds in out (initialised) the document old becomes under s. */
static bool apply_ops(const bson_t *old, const struct updspec *s, bool inserting, bson_t *out,
                      struct err *e)
{
	bool used[MAX_UPD_FIELDS] = {0};
	bson_iter_t it;
	size_t j;

	bson_iter_init(&it, old);
	while (bson_iter_next(&it)) {
		const char *k = bson_iter_key(&it);
		const struct upd *u = upd_find(s, k, inserting, &j);

		if (!u) {
			bson_append_iter(out, NULL, 0, &it);
			continue;
		}
		used[j] = true;
		switch (u->op) {
		case U_SET:
		case U_SETONINSERT:
			if (!strcmp(k, "_id") && !values_equal(&it, &u->val))
				return fail(e, 66,
				            "Performing an update on the path '_id' would "
				            "modify the immutable field '_id'");
			bson_append_iter(out, k, -1, &u->val);
			break;
		case U_INC:
			if (!add_numbers(&it, &u->val, out, k, e))
				return false;
			break;
		case U_UNSET: break;
		case U_MIN:
		case U_MAX: {
			int c = cmp_values(&u->val, &it);
			bool take = u->op == U_MIN ? c < 0 : c > 0;

			bson_append_iter(out, k, -1, take ? &u->val : &it);
			break;
		}
		}
	}
	for (j = 0; j < s->n; j++) {
		const struct upd *u = &s->f[j];

		if (used[j] || u->op == U_UNSET || (u->op == U_SETONINSERT && !inserting))
			continue;
		bson_append_iter(out, u->key, -1, &u->val);
	}
	return true;
}

/* The fields an upsert starts from: the filter's equalities. */
static void upsert_seed(const bson_t *filter, bson_t *out)
{
	bson_iter_t it, child, arr;
	bson_t sub;

	bson_iter_init(&it, filter);
	while (bson_iter_next(&it)) {
		const char *k = bson_iter_key(&it);

		if (!strcmp(k, "$and") && bson_iter_recurse(&it, &arr)) {
			while (bson_iter_next(&arr))
				if (iter_doc(&arr, &sub))
					upsert_seed(&sub, out);
			continue;
		}
		if (k[0] == '$' || strchr(k, '.') || bson_has_field(out, k))
			continue;
		if (!is_operator_doc(&it)) {
			bson_append_iter(out, k, -1, &it);
			continue;
		}
		bson_iter_recurse(&it, &child);
		if (bson_iter_find(&child, "$eq"))
			bson_append_iter(out, k, -1, &child);
	}
}

/* A copy of in with _id first (made up if missing); NULL and e on a bad
 * document. */
static bson_t *with_id_first(const bson_t *in, struct err *e)
{
	bson_iter_t it, id;
	bson_t *out;
	bson_oid_t oid;

	if (in->len > MAX_BSON_BYTES) {
		fail(e, 10334, "object to insert too large: %u bytes", in->len);
		return NULL;
	}
	if (doc_id(in, &id)) {
		if (BSON_ITER_HOLDS_ARRAY(&id) || BSON_ITER_HOLDS_REGEX(&id)) {
			fail(e, 2, "can't use an %s for _id",
			     BSON_ITER_HOLDS_ARRAY(&id) ? "array" : "regex");
			return NULL;
		}
		bson_iter_init(&it, in);
		if (bson_iter_next(&it) && !strcmp(bson_iter_key(&it), "_id"))
			return bson_copy(in);
	}
	out = bson_new();
	if (doc_id(in, &id))
		bson_append_iter(out, "_id", 3, &id);
	else {
		bson_oid_init(&oid, NULL);
		bson_append_oid(out, "_id", 3, &oid);
	}
	bson_iter_init(&it, in);
	while (bson_iter_next(&it))
		if (strcmp(bson_iter_key(&it), "_id"))
			bson_append_iter(out, NULL, 0, &it);
	return out;
}

/* ---- write checks: duplicate keys, unique indexes, injected rejects ----- */

static bool index_applies(const bson_t *spec, const bson_t *doc)
{
	bson_t key, pfe;
	bson_iter_t it, v;
	struct err e;

	if (field_doc(spec, "partialFilterExpression", &pfe) == 1 && match(doc, &pfe, &e) != 1)
		return false;
	if (!field_bool(spec, "sparse", false))
		return true;
	if (field_doc(spec, "key", &key) != 1 || !bson_iter_init(&it, &key))
		return false;
	while (bson_iter_next(&it))
		if (find_path(doc, bson_iter_key(&it), &v))
			return true;
	return false;
}

static bool same_index_key(const bson_t *spec, const bson_t *a, const bson_t *b)
{
	bson_t key;
	bson_iter_t it, va, vb;

	if (field_doc(spec, "key", &key) != 1 || !bson_iter_init(&it, &key))
		return false;
	while (bson_iter_next(&it)) {
		bool ha = find_path(a, bson_iter_key(&it), &va);
		bool hb = find_path(b, bson_iter_key(&it), &vb);

		if (cmp_values(ha ? &va : NULL, hb ? &vb : NULL))
			return false;
	}
	return true;
}

static bool dup_error(const struct coll *c, const char *iname, const bson_t *doc, struct err *e)
{
	bson_t key = BSON_INITIALIZER;
	bson_iter_t id;
	char *json;

	if (!strcmp(iname, "_id_") && doc_id(doc, &id))
		bson_append_iter(&key, "_id", 3, &id);
	json = bson_as_relaxed_extended_json(&key, NULL);
	fail(e, 11000, "E11000 duplicate key error collection: %s.%s index: %s dup key: %s",
	     c->db->name, c->name, iname, json ? json : "{}");
	bson_free(json);
	bson_destroy(&key);
	return false;
}

/* May doc (about to replace self, or new when self is NULL) be stored? */
static bool write_allowed(const struct coll *c, const bson_t *doc, const struct doc *self,
                          struct err *e)
{
	bson_iter_t id;
	struct doc *other;
	char ns[512];
	struct err me;

	if (doc->len > MAX_BSON_BYTES)
		return fail(e, 10334, "document too large: %u bytes", doc->len);
	doc_id(doc, &id);
	other = coll_find_id(c, &id);
	if (other && other != self)
		return dup_error(c, "_id_", doc, e);
	for (size_t i = 0; i < c->nindexes; i++) {
		const bson_t *spec = c->indexes[i];

		if (!field_bool(spec, "unique", false) || !index_applies(spec, doc))
			continue;
		for (struct doc *d = c->head; d; d = d->next)
			if (d != self && index_applies(spec, d->b) &&
			    same_index_key(spec, doc, d->b))
				return dup_error(c, field_str(spec, "name"), doc, e);
	}
	snprintf(ns, sizeof(ns), "%s.%s", c->db->name, c->name);
	if (S.reject && (!S.reject_ns[0] || !strcmp(S.reject_ns, ns)) &&
	    match(doc, S.reject, &me) == 1)
		return fail(e, S.reject_code,
		            "Document failed validation (mongo stand-in "
		            "mmoReject rule)");
	return true;
}

/* ---- commands --------------------------------------------------------- */

struct req {
	struct conn *conn;
	int32_t conn_id;
	const char *db;
	const bson_t *cmd;
	const char *name;
};

typedef bool (*cmd_fn)(const struct req *r, bson_t *reply, struct err *e);

/* The collection named by the command's first field. */
static bool coll_arg(const struct req *r, const char **out, struct err *e)
{
	bson_iter_t it;

	bson_iter_init(&it, r->cmd);
	bson_iter_next(&it);
	if (!BSON_ITER_HOLDS_UTF8(&it))
		return fail(e, 73, "collection name must be a string (mongo stand-in)");
	*out = bson_iter_utf8(&it, NULL);
	if (!valid_coll_name(*out))
		return fail(e, 73, "Invalid collection name: %s", *out);
	return true;
}

static void make_ns(char *buf, size_t cap, const char *db, const char *coll)
{
	snprintf(buf, cap, "%s.%s", db, coll);
}

static bool cmd_hello(const struct req *r, bson_t *reply, struct err *e)
{
	if (field_bool(r->cmd, "helloOk", false))
		BSON_APPEND_BOOL(reply, "helloOk", true);
	BSON_APPEND_BOOL(reply, strcmp(r->name, "hello") ? "ismaster" : "isWritablePrimary", true);
	BSON_APPEND_INT32(reply, "maxBsonObjectSize", MAX_BSON_BYTES);
	BSON_APPEND_INT32(reply, "maxMessageSizeBytes", MAX_MSG_BYTES);
	BSON_APPEND_INT32(reply, "maxWriteBatchSize", 100000);
	BSON_APPEND_DATE_TIME(reply, "localTime", now_ms());
	BSON_APPEND_INT32(reply, "logicalSessionTimeoutMinutes", 30);
	BSON_APPEND_INT32(reply, "connectionId", r->conn_id);
	BSON_APPEND_INT32(reply, "minWireVersion", 0);
	BSON_APPEND_INT32(reply, "maxWireVersion", WIRE_VERSION);
	BSON_APPEND_BOOL(reply, "readOnly", false);
	return true;
}

static bool cmd_ping(const struct req *r, bson_t *reply, struct err *e)
{
	return true;
}

static bool cmd_buildinfo(const struct req *r, bson_t *reply, struct err *e)
{
	bson_t arr;

	BSON_APPEND_UTF8(reply, "version", "5.0.0-mmo-standin");
	BSON_APPEND_UTF8(reply, "gitVersion", "mongo-standin (a test double)");
	bson_append_array_begin(reply, "versionArray", -1, &arr);
	BSON_APPEND_INT32(&arr, "0", 5);
	BSON_APPEND_INT32(&arr, "1", 0);
	BSON_APPEND_INT32(&arr, "2", 0);
	BSON_APPEND_INT32(&arr, "3", 0);
	bson_append_array_end(reply, &arr);
	BSON_APPEND_INT32(reply, "bits", 64);
	BSON_APPEND_INT32(reply, "maxBsonObjectSize", MAX_BSON_BYTES);
	return true;
}

static bool cmd_server_status(const struct req *r, bson_t *reply, struct err *e)
{
	bson_t sub;

	BSON_APPEND_UTF8(reply, "process", "mongo-standin");
	BSON_APPEND_UTF8(reply, "version", "5.0.0-mmo-standin");
	BSON_APPEND_DATE_TIME(reply, "localTime", now_ms());
	bson_append_document_begin(reply, "connections", -1, &sub);
	append_count(&sub, "current", (int64_t)S.nconns);
	bson_append_document_end(reply, &sub);
	return true;
}

static bool cmd_ok(const struct req *r, bson_t *reply, struct err *e)
{
	return true;
}

/* Write results as the wire reports them. */
struct wres {
	int64_t n, nmod;
	bson_t errs, ups;
	uint32_t nerrs, nups;
};

static void wres_init(struct wres *w)
{
	memset(w, 0, sizeof(*w));
	bson_init(&w->errs);
	bson_init(&w->ups);
}

static void wres_error(struct wres *w, uint32_t at, const struct err *e)
{
	bson_t ent;
	char buf[16];

	bson_append_document_begin(&w->errs, idx_key(w->nerrs++, buf, sizeof(buf)), -1, &ent);
	BSON_APPEND_INT32(&ent, "index", (int32_t)at);
	BSON_APPEND_INT32(&ent, "code", e->code);
	BSON_APPEND_UTF8(&ent, "errmsg", e->msg);
	bson_append_document_end(&w->errs, &ent);
}

static void wres_upserted(struct wres *w, uint32_t at, const bson_t *doc)
{
	bson_t ent;
	bson_iter_t id;
	char buf[16];

	bson_append_document_begin(&w->ups, idx_key(w->nups++, buf, sizeof(buf)), -1, &ent);
	BSON_APPEND_INT32(&ent, "index", (int32_t)at);
	if (doc_id(doc, &id))
		bson_append_iter(&ent, "_id", 3, &id);
	bson_append_document_end(&w->ups, &ent);
}

static void wres_finish(struct wres *w, bson_t *reply, bool is_update)
{
	append_count(reply, "n", w->n);
	if (is_update)
		append_count(reply, "nModified", w->nmod);
	if (w->nups)
		bson_append_array(reply, "upserted", -1, &w->ups);
	if (w->nerrs)
		bson_append_array(reply, "writeErrors", -1, &w->errs);
	bson_destroy(&w->errs);
	bson_destroy(&w->ups);
}

/* The array a write command's statements come in (body or sequence). */
static bool statements(const struct req *r, const char *field, bson_iter_t *out, struct err *e)
{
	bson_iter_t it;

	if (!bson_iter_init_find(&it, r->cmd, field) || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, out))
		return fail(e, 9, "BSON field '%s.%s' is missing but a required field", r->name,
		            field);
	return true;
}

static bool cmd_insert(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it;
	struct coll *c;
	struct wres w;
	uint32_t i = 0;
	bool ordered = field_bool(r->cmd, "ordered", true);

	if (!coll_arg(r, &name, e) || !statements(r, "documents", &it, e))
		return false;
	c = coll_open(db_open(r->db), name, NULL);
	wres_init(&w);
	for (; bson_iter_next(&it); i++) {
		struct err we = {0};
		bson_t src, *doc = NULL;

		if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !iter_doc(&it, &src))
			fail(&we, 14, "documents to insert must be objects");
		else if ((doc = with_id_first(&src, &we)) && write_allowed(c, doc, NULL, &we)) {
			doc_insert(c, doc);
			w.n++;
			continue;
		}
		if (doc)
			bson_destroy(doc);
		wres_error(&w, i, &we);
		if (ordered)
			break;
	}
	wres_finish(&w, reply, false);
	return true;
}

/* Builds the new version of d's document under s into nb. */
static bool updated_doc(const struct doc *d, const struct updspec *s, bson_t *nb, struct err *e)
{
	bson_iter_t id, it;

	if (!s->replacement)
		return apply_ops(d->b, s, false, nb, e);
	doc_id(d->b, &id);
	bson_append_iter(nb, "_id", 3, &id);
	bson_iter_init(&it, s->repl);
	while (bson_iter_next(&it)) {
		if (strcmp(bson_iter_key(&it), "_id"))
			bson_append_iter(nb, NULL, 0, &it);
		else if (!values_equal(&it, &id))
			return fail(e, 66,
			            "After applying the update, the (immutable) field '_id' "
			            "was found to have been altered");
	}
	return true;
}

/* The upsert branch of an update statement that matched nothing. */
static bool upsert_doc(struct coll *c, const bson_t *q, const struct updspec *s, uint32_t at,
                       struct wres *w, struct err *e)
{
	bson_t seed = BSON_INITIALIZER, built = BSON_INITIALIZER, *nd = NULL;
	bson_iter_t id;
	bool ok = true;

	upsert_seed(q, &seed);
	if (!s->replacement)
		ok = apply_ops(&seed, s, true, &built, e);
	else {
		if (!bson_has_field(s->repl, "_id") && doc_id(&seed, &id))
			bson_append_iter(&built, "_id", 3, &id);
		bson_concat(&built, s->repl);
	}
	ok = ok && (nd = with_id_first(&built, e)) && write_allowed(c, nd, NULL, e);
	if (ok) {
		wres_upserted(w, at, nd);
		doc_insert(c, nd);
		nd = NULL;
		w->n++;
	}
	if (nd)
		bson_destroy(nd);
	bson_destroy(&seed);
	bson_destroy(&built);
	return ok;
}

/* Applies one update statement (number at); false and e on its write
 * error. */
static bool update_stmt(struct coll *c, const bson_t *stmt, uint32_t at, struct wres *w,
                        struct err *e)
{
	bson_t q = BSON_INITIALIZER, u;
	bson_iter_t it, id;
	struct updspec *s = bson_malloc(sizeof(*s));
	bool upsert = field_bool(stmt, "upsert", false), multi = field_bool(stmt, "multi", false);
	bool ok = false;
	int64_t matched = 0;
	struct docvec hits = {0};

	if (field_doc(stmt, "q", &q) < 0)
		fail(e, 14, "q must be an object");
	else if (!bson_iter_init_find(&it, stmt, "u") || BSON_ITER_HOLDS_ARRAY(&it))
		fail(e, 2,
		     "u must be an update document (the mongo stand-in has no pipeline "
		     "updates)");
	else if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !iter_doc(&it, &u))
		fail(e, 14, "u must be an object");
	else if (bson_has_field(stmt, "arrayFilters") || bson_has_field(stmt, "collation"))
		fail(e, 2, "arrayFilters and collation are not in the mongo stand-in");
	else if (parse_update(&u, s, e)) {
		if (s->replacement && multi)
			fail(e, 9, "multi update is not supported for replacement-style update");
		else
			ok = select_docs(c, &q, &hits, e);
	}
	/* The hits are borrowed: each is read before it is replaced. */
	for (size_t k = 0; ok && k < hits.n && (multi || matched == 0); k++) {
		bson_t *nb = bson_new();
		struct doc *d;

		doc_id(hits.v[k], &id);
		d = coll_find_id(c, &id);
		matched++;
		ok = updated_doc(d, s, nb, e);
		if (ok && nb->len == d->b->len &&
		    !memcmp(bson_get_data(nb), bson_get_data(d->b), nb->len)) {
			bson_destroy(nb);
			continue;
		}
		ok = ok && write_allowed(c, nb, d, e);
		if (!ok) {
			bson_destroy(nb);
			break;
		}
		doc_replace(c, d, nb);
		w->nmod++;
	}
	w->n += matched;
	if (ok && !matched && upsert)
		ok = upsert_doc(c, &q, s, at, w, e);
	vec_release(&hits);
	bson_free(s);
	return ok;
}

static bool cmd_update(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it;
	struct coll *c;
	struct wres w;
	uint32_t i = 0;
	bool ordered = field_bool(r->cmd, "ordered", true);

	if (!coll_arg(r, &name, e) || !statements(r, "updates", &it, e))
		return false;
	c = coll_open(db_open(r->db), name, NULL);
	wres_init(&w);
	for (; bson_iter_next(&it); i++) {
		struct err we = {0};
		bson_t stmt;

		if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !iter_doc(&it, &stmt))
			fail(&we, 14, "update statements must be objects");
		else if (update_stmt(c, &stmt, i, &w, &we))
			continue;
		wres_error(&w, i, &we);
		if (ordered)
			break;
	}
	wres_finish(&w, reply, true);
	return true;
}

static bool cmd_delete(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it, id;
	struct coll *c;
	struct wres w;
	uint32_t i = 0;
	bool ordered = field_bool(r->cmd, "ordered", true);

	if (!coll_arg(r, &name, e) || !statements(r, "deletes", &it, e))
		return false;
	c = coll_lookup(r->db, name);
	wres_init(&w);
	for (; bson_iter_next(&it); i++) {
		struct err we = {0};
		bson_t stmt, q = BSON_INITIALIZER;
		struct docvec hits = {0};
		int64_t limit = 0;

		if (!BSON_ITER_HOLDS_DOCUMENT(&it) || !iter_doc(&it, &stmt) ||
		    field_doc(&stmt, "q", &q) < 0 || field_i64(&stmt, "limit", &limit) < 0)
			fail(&we, 14, "delete statements must be {q: object, limit: 0|1}");
		else if (limit != 0 && limit != 1)
			fail(&we, 9, "The limit field in delete objects must be 0 or 1. Got %lld",
			     (long long)limit);
		else if (select_docs(c, &q, &hits, &we)) {
			for (size_t k = 0; k < hits.n && (!limit || k < 1); k++) {
				doc_id(hits.v[k], &id);
				doc_delete(c, coll_find_id(c, &id));
				w.n++;
			}
			vec_release(&hits);
			continue;
		}
		vec_release(&hits);
		wres_error(&w, i, &we);
		if (ordered)
			break;
	}
	wres_finish(&w, reply, false);
	return true;
}

/* Reads the options find and aggregate share. */
static bool read_batch_size(const bson_t *b, int64_t *batch, struct err *e)
{
	int r = field_i64(b, "batchSize", batch);

	if (r < 0 || (r > 0 && *batch < 0))
		return fail(e, 2, "batchSize must be a non-negative number");
	if (r == 0)
		*batch = -1;
	return true;
}

static bool cmd_find(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_t filter, sort, proj;
	int hf, hs, hp;
	int64_t skip = 0, limit = 0, batch;
	struct sortspec ss = {.n = 0};
	struct docvec hits = {0}, out = {0};
	bool inclusive = false;
	char ns[512];

	if (!coll_arg(r, &name, e))
		return false;
	hf = field_doc(r->cmd, "filter", &filter);
	hs = field_doc(r->cmd, "sort", &sort);
	hp = field_doc(r->cmd, "projection", &proj);
	if (hf < 0 || hs < 0 || hp < 0)
		return fail(e, 14, "filter, sort and projection must be objects");
	if (field_i64(r->cmd, "skip", &skip) < 0 || skip < 0 ||
	    field_i64(r->cmd, "limit", &limit) < 0 || limit < 0)
		return fail(e, 2, "skip and limit must be non-negative numbers");
	if (!read_batch_size(r->cmd, &batch, e) || (hs > 0 && !parse_sort(&sort, &ss, e)) ||
	    (hp > 0 && !parse_projection(&proj, &inclusive, e)))
		return false;
	if (bson_has_field(r->cmd, "collation") || bson_has_field(r->cmd, "tailable"))
		return fail(e, 2, "collation and tailable cursors are not in the mongo stand-in");
	if (!select_docs(coll_lookup(r->db, name), hf > 0 ? &filter : NULL, &hits, e)) {
		vec_release(&hits);
		return false;
	}
	sort_vec(&hits, &ss);
	for (size_t i = (size_t)skip; i < hits.n && (!limit || out.n < (size_t)limit); i++)
		vec_push(&out,
		         hp > 0 ? project(hits.v[i], &proj, inclusive) : bson_copy(hits.v[i]));
	vec_release(&hits);
	make_ns(ns, sizeof(ns), r->db, name);
	reply_first_batch(reply, ns, &out, batch, field_bool(r->cmd, "singleBatch", false));
	return true;
}

static bool cmd_getmore(const struct req *r, bson_t *reply, struct err *e)
{
	bson_iter_t it;
	int64_t id, batch = -1;
	const char *name = field_str(r->cmd, "collection");
	struct cursor *cur;
	char ns[512];
	size_t end;

	bson_iter_init_find(&it, r->cmd, "getMore");
	if (!BSON_ITER_HOLDS_INT64(&it) || !name)
		return fail(e, 14, "getMore takes an int64 cursor id and a collection name");
	id = bson_iter_int64(&it);
	if (field_i64(r->cmd, "batchSize", &batch) < 0)
		return fail(e, 14, "batchSize must be a number");
	make_ns(ns, sizeof(ns), r->db, name);
	cur = cursor_find(id);
	if (!cur || strcmp(cur->ns, ns))
		return fail(e, 43, "cursor id %lld not found", (long long)id);
	end = batch_end(cur->docs, cur->n, cur->pos, batch > 0 ? batch : -1);
	append_cursor(reply, "nextBatch", cur->docs, cur->pos, end, end < cur->n ? cur->id : 0, ns);
	for (size_t i = cur->pos; i < end; i++)
		bson_destroy(cur->docs[i]);
	cur->pos = end;
	if (end == cur->n)
		cursor_free(cur);
	return true;
}

static bool cmd_kill_cursors(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it;
	bson_t killed = BSON_INITIALIZER, missing = BSON_INITIALIZER, empty = BSON_INITIALIZER;
	uint32_t nk = 0, nm = 0;
	char ns[512], buf[16];

	if (!coll_arg(r, &name, e) || !statements(r, "cursors", &it, e))
		return false;
	make_ns(ns, sizeof(ns), r->db, name);
	while (bson_iter_next(&it)) {
		struct cursor *cur;
		int64_t id;

		if (!BSON_ITER_HOLDS_INT64(&it))
			continue;
		id = bson_iter_int64(&it);
		cur = cursor_find(id);
		if (cur && !strcmp(cur->ns, ns)) {
			cursor_free(cur);
			bson_append_int64(&killed, idx_key(nk++, buf, sizeof(buf)), -1, id);
		} else
			bson_append_int64(&missing, idx_key(nm++, buf, sizeof(buf)), -1, id);
	}
	bson_append_array(reply, "cursorsKilled", -1, &killed);
	bson_append_array(reply, "cursorsNotFound", -1, &missing);
	bson_append_array(reply, "cursorsAlive", -1, &empty);
	bson_append_array(reply, "cursorsUnknown", -1, &empty);
	bson_destroy(&killed);
	bson_destroy(&missing);
	return true;
}

static bool cmd_count(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_t q;
	int hq;
	int64_t skip = 0, limit = 0, n;
	struct docvec hits = {0};
	bool ok;

	if (!coll_arg(r, &name, e))
		return false;
	hq = field_doc(r->cmd, "query", &q);
	if (hq < 0 || field_i64(r->cmd, "skip", &skip) < 0 || skip < 0 ||
	    field_i64(r->cmd, "limit", &limit) < 0)
		return fail(e, 14, "count takes query: object, skip, limit: numbers");
	ok = select_docs(coll_lookup(r->db, name), hq > 0 ? &q : NULL, &hits, e);
	n = (int64_t)hits.n - skip;
	if (n < 0)
		n = 0;
	if (limit < 0)
		limit = -limit;
	if (limit && n > limit)
		n = limit;
	vec_release(&hits);
	if (ok)
		append_count(reply, "n", n);
	return ok;
}

/* ---- aggregate ----------------------------------------------------------- */

/* Evaluates an expression against doc, appending it under key: 1 appended,
 * 0 the path is missing, -1 unsupported (e set). */
static int eval_expr(const bson_iter_t *x, const bson_t *doc, bson_t *out, const char *key,
                     struct err *e)
{
	bson_iter_t v, child;
	bson_t sub;
	int r;

	if (BSON_ITER_HOLDS_UTF8(x) && bson_iter_utf8(x, NULL)[0] == '$') {
		const char *path = bson_iter_utf8(x, NULL) + 1;

		if (path[0] == '$')
			return fail_tri(e, 2, "variables are not in the mongo stand-in");
		if (!find_path(doc, path, &v))
			return 0;
		bson_append_iter(out, key, -1, &v);
		return 1;
	}
	if (!BSON_ITER_HOLDS_DOCUMENT(x))
		return bson_append_iter(out, key, -1, x) ? 1 : -1;
	if (is_operator_doc(x))
		return fail_tri(e, 2, "expression operators are not in the mongo stand-in");
	bson_iter_recurse(x, &child);
	bson_append_document_begin(out, key, -1, &sub);
	while (bson_iter_next(&child)) {
		r = eval_expr(&child, doc, &sub, bson_iter_key(&child), e);
		if (r < 0) {
			bson_append_document_end(out, &sub);
			return -1;
		}
	}
	bson_append_document_end(out, &sub);
	return 1;
}

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

static bool parse_group(const bson_t *spec, bson_iter_t *idx, struct acc *accs, size_t *nacc,
                        struct err *e)
{
	static const char *kinds[] = {"$sum", "$avg", "$min", "$max", "$first", "$last", "$count"};
	bson_iter_t it, op;
	bool have_id = false;

	*nacc = 0;
	bson_iter_init(&it, spec);
	while (bson_iter_next(&it)) {
		const char *f = bson_iter_key(&it);
		int kind = -1;

		if (!strcmp(f, "_id")) {
			*idx = it;
			have_id = true;
			continue;
		}
		if (!is_operator_doc(&it) || !bson_iter_recurse(&it, &op) || !bson_iter_next(&op))
			return fail(e, 40234, "The field '%s' must be an accumulator object", f);
		for (size_t k = 0; k < sizeof(kinds) / sizeof(*kinds); k++)
			if (!strcmp(bson_iter_key(&op), kinds[k]))
				kind = (int)k;
		if (kind < 0 || strchr(f, '.') || *nacc == MAX_ACCS)
			return fail(e, 15952,
			            "unknown group operator '%s' (not in the mongo "
			            "stand-in)",
			            bson_iter_key(&op));
		accs[*nacc].field = f;
		accs[*nacc].kind = kind;
		accs[(*nacc)++].expr = op;
	}
	if (!have_id)
		return fail(e, 15955, "a group specification must include an _id");
	return true;
}

static void acc_number(struct accstate *s, const bson_iter_t *v)
{
	if (!BSON_ITER_HOLDS_NUMBER(v))
		return;
	s->cnt++;
	s->dsum += num_of(v);
	if (BSON_ITER_HOLDS_DOUBLE(v))
		s->dbl = true;
	else {
		if (BSON_ITER_HOLDS_INT64(v))
			s->i64 = true;
		if (__builtin_add_overflow(s->isum, bson_iter_as_int64(v), &s->isum))
			s->overflow = true;
	}
}

static bool acc_step(struct accstate *s, const struct acc *a, const bson_t *doc, struct err *e)
{
	bson_t tmp = BSON_INITIALIZER;
	bson_iter_t v;
	int r = 1;

	if (a->kind == A_COUNT) {
		s->isum++;
		goto out;
	}
	r = eval_expr(&a->expr, doc, &tmp, "v", e);
	if (r < 0)
		goto out;
	if (r == 0)
		BSON_APPEND_NULL(&tmp, "v");
	bson_iter_init_find(&v, &tmp, "v");
	switch (a->kind) {
	case A_SUM:
	case A_AVG: acc_number(s, &v); break;
	case A_MIN:
	case A_MAX: {
		bson_iter_t cur;

		if (BSON_ITER_HOLDS_NULL(&v))
			break;
		if (s->val && bson_iter_init_find(&cur, s->val, "v")) {
			int c = cmp_values(&v, &cur);

			if (a->kind == A_MIN ? c >= 0 : c <= 0)
				break;
		}
		if (s->val)
			bson_destroy(s->val);
		s->val = bson_copy(&tmp);
		break;
	}
	case A_FIRST:
	case A_LAST:
		if (s->val && a->kind == A_FIRST)
			break;
		if (s->val)
			bson_destroy(s->val);
		s->val = bson_copy(&tmp);
		break;
	}
out:
	bson_destroy(&tmp);
	return r >= 0;
}

static void acc_result(const struct accstate *s, const struct acc *a, bson_t *out)
{
	bson_iter_t v;

	switch (a->kind) {
	case A_COUNT: append_count(out, a->field, s->isum); break;
	case A_SUM:
		if (s->dbl || s->overflow)
			bson_append_double(out, a->field, -1, (double)s->dsum);
		else if (s->i64)
			bson_append_int64(out, a->field, -1, s->isum);
		else
			append_count(out, a->field, s->isum);
		break;
	case A_AVG:
		if (s->cnt)
			bson_append_double(out, a->field, -1, (double)(s->dsum / s->cnt));
		else
			bson_append_null(out, a->field, -1);
		break;
	default:
		if (s->val && bson_iter_init_find(&v, s->val, "v"))
			bson_append_iter(out, a->field, -1, &v);
		else
			bson_append_null(out, a->field, -1);
	}
}

static void groups_free(struct group **g, size_t n, size_t nacc)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < nacc; k++)
			if (g[i]->st[k].val)
				bson_destroy(g[i]->st[k].val);
		bson_destroy(g[i]->key);
		bson_free(g[i]);
	}
	bson_free(g);
}

static bool stage_group(struct docvec *dv, const bson_t *spec, struct err *e)
{
	struct acc accs[MAX_ACCS];
	size_t nacc, ng = 0, cap = 0;
	struct group **g = NULL;
	bson_iter_t idx, ki, gi;
	bool ok = parse_group(spec, &idx, accs, &nacc, e);

	for (size_t i = 0; ok && i < dv->n; i++) {
		bson_t *key = bson_new();
		size_t j;
		int r = eval_expr(&idx, dv->v[i], key, "_id", e);

		if (r == 0)
			BSON_APPEND_NULL(key, "_id");
		ok = r >= 0;
		bson_iter_init_find(&ki, key, "_id");
		for (j = 0; ok && j < ng; j++)
			if (bson_iter_init_find(&gi, g[j]->key, "_id") && values_equal(&ki, &gi))
				break;
		if (ok && j == ng) {
			if (ng == cap) {
				cap = cap ? cap * 2 : 16;
				g = bson_realloc(g, cap * sizeof(*g));
			}
			g[ng] = bson_malloc0(sizeof(**g));
			g[ng++]->key = key;
			key = NULL;
		}
		if (key)
			bson_destroy(key);
		for (size_t k = 0; ok && k < nacc; k++)
			ok = acc_step(&g[j]->st[k], &accs[k], dv->v[i], e);
	}
	if (ok) {
		vec_free(dv);
		for (size_t j = 0; j < ng; j++) {
			bson_t *out = bson_copy(g[j]->key);

			for (size_t k = 0; k < nacc; k++)
				acc_result(&g[j]->st[k], &accs[k], out);
			vec_push(dv, out);
		}
	}
	groups_free(g, ng, nacc);
	return ok;
}

static bool stage_count(struct docvec *dv, const bson_iter_t *it, struct err *e)
{
	const char *name = BSON_ITER_HOLDS_UTF8(it) ? bson_iter_utf8(it, NULL) : NULL;
	size_t n = dv->n;
	bson_t *out;

	if (!name || !name[0] || name[0] == '$' || strchr(name, '.'))
		return fail(e, 40156, "the count field must be a non-empty string without $ or .");
	vec_free(dv);
	if (n) {
		out = bson_new();
		append_count(out, name, (int64_t)n);
		vec_push(dv, out);
	}
	return true;
}

static bool stage_match(struct docvec *dv, const bson_t *filter, struct err *e)
{
	size_t k = 0;
	int r = 1;

	for (size_t i = 0; i < dv->n; i++) {
		r = r < 0 ? r : match(dv->v[i], filter, e);
		if (r == 1)
			dv->v[k++] = dv->v[i];
		else
			bson_destroy(dv->v[i]);
	}
	dv->n = k;
	return r >= 0;
}

static void stage_slice(struct docvec *dv, size_t from, size_t to)
{
	size_t k = 0;

	for (size_t i = 0; i < dv->n; i++)
		if (i >= from && i < to)
			dv->v[k++] = dv->v[i];
		else
			bson_destroy(dv->v[i]);
	dv->n = k;
}

static bool run_stage(struct docvec *dv, const char *op, const bson_iter_t *arg, struct err *e)
{
	bson_t spec;
	bool is_doc = BSON_ITER_HOLDS_DOCUMENT(arg) && iter_doc(arg, &spec);
	int64_t n = BSON_ITER_HOLDS_NUMBER(arg) ? bson_iter_as_int64(arg) : -1;

	if (!strcmp(op, "$match") && is_doc)
		return stage_match(dv, &spec, e);
	if (!strcmp(op, "$sort") && is_doc) {
		struct sortspec ss;

		if (!parse_sort(&spec, &ss, e))
			return false;
		sort_vec(dv, &ss);
		return true;
	}
	if (!strcmp(op, "$skip") && n >= 0) {
		stage_slice(dv, (size_t)n, SIZE_MAX);
		return true;
	}
	if (!strcmp(op, "$limit") && n > 0) {
		stage_slice(dv, 0, (size_t)n);
		return true;
	}
	if (!strcmp(op, "$count"))
		return stage_count(dv, arg, e);
	if (!strcmp(op, "$group") && is_doc)
		return stage_group(dv, &spec, e);
	if (!strcmp(op, "$project") && is_doc) {
		bool inclusive;

		if (!parse_projection(&spec, &inclusive, e))
			return false;
		for (size_t i = 0; i < dv->n; i++) {
			bson_t *p = project(dv->v[i], &spec, inclusive);

			bson_destroy(dv->v[i]);
			dv->v[i] = p;
		}
		return true;
	}
	if (!strcmp(op, "$match") || !strcmp(op, "$sort") || !strcmp(op, "$skip") ||
	    !strcmp(op, "$limit") || !strcmp(op, "$group") || !strcmp(op, "$project"))
		return fail(e, 15955, "bad argument to %s", op);
	return fail(e, 40324, "Unrecognized pipeline stage name: '%s' (not in the mongo stand-in)",
	            op);
}

static bool cmd_aggregate(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_t cursor, stage;
	bson_iter_t pipe, st;
	int64_t batch;
	struct docvec dv = {0};
	struct coll *c;
	bool first = true, ok = true;
	char ns[512];

	if (!coll_arg(r, &name, e))
		return false;
	if (field_doc(r->cmd, "cursor", &cursor) != 1)
		return fail(e, 9,
		            "The 'cursor' option is required, except for aggregate with the "
		            "explain argument");
	if (!read_batch_size(&cursor, &batch, e) || !statements(r, "pipeline", &pipe, e))
		return false;
	c = coll_lookup(r->db, name);
	make_ns(ns, sizeof(ns), r->db, name);
	while (ok && bson_iter_next(&pipe)) {
		const char *op;

		if (!BSON_ITER_HOLDS_DOCUMENT(&pipe) || !iter_doc(&pipe, &stage) ||
		    !bson_iter_init(&st, &stage) || !bson_iter_next(&st) ||
		    bson_count_keys(&stage) != 1) {
			ok = fail(e, 40323,
			          "A pipeline stage specification object must contain "
			          "exactly one field.");
			break;
		}
		op = bson_iter_key(&st);
		if (first && !strcmp(op, "$collStats")) {
			bson_t *out = bson_new();

			BSON_APPEND_UTF8(out, "ns", ns);
			BSON_APPEND_DATE_TIME(out, "localTime", now_ms());
			append_count(out, "count", c ? (int64_t)c->count : 0);
			vec_push(&dv, out);
		} else if (first) {
			bson_t f;
			bool lead = !strcmp(op, "$match") && iter_doc(&st, &f);
			struct docvec hits = {0};

			ok = select_docs(c, lead ? &f : NULL, &hits, e);
			for (size_t i = 0; ok && i < hits.n; i++)
				vec_push(&dv, bson_copy(hits.v[i]));
			vec_release(&hits);
			if (ok && !lead)
				ok = run_stage(&dv, op, &st, e);
		} else
			ok = run_stage(&dv, op, &st, e);
		first = false;
	}
	if (!ok) {
		vec_free(&dv);
		return false;
	}
	if (first) { /* an empty pipeline passes everything */
		struct docvec hits = {0};

		select_docs(c, NULL, &hits, e);
		for (size_t i = 0; i < hits.n; i++)
			vec_push(&dv, bson_copy(hits.v[i]));
		vec_release(&hits);
	}
	reply_first_batch(reply, ns, &dv, batch, false);
	return true;
}

/* ---- collections, databases and indexes ---------------------------------- */

static bool cmd_create(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bool created;

	if (!coll_arg(r, &name, e))
		return false;
	coll_open(db_open(r->db), name, &created);
	if (!created)
		return fail(e, 48, "Collection %s.%s already exists.", r->db, name);
	return true;
}

static bool cmd_drop(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	struct coll *c;
	char ns[512];

	if (!coll_arg(r, &name, e))
		return false;
	c = coll_lookup(r->db, name);
	if (!c)
		return fail(e, 26, "ns not found");
	make_ns(ns, sizeof(ns), r->db, name);
	append_count(reply, "nIndexesWas", (int64_t)c->nindexes + 1);
	BSON_APPEND_UTF8(reply, "ns", ns);
	coll_drop(c);
	return true;
}

static bool cmd_drop_database(const struct req *r, bson_t *reply, struct err *e)
{
	struct db *d = db_find(r->db);

	if (d)
		db_drop(d);
	BSON_APPEND_UTF8(reply, "dropped", r->db);
	return true;
}

static void id_index_spec(bson_t *out)
{
	bson_t key;

	BSON_APPEND_INT32(out, "v", 2);
	bson_append_document_begin(out, "key", 3, &key);
	BSON_APPEND_INT32(&key, "_id", 1);
	bson_append_document_end(out, &key);
	BSON_APPEND_UTF8(out, "name", "_id_");
}

static bool cmd_list_collections(const struct req *r, bson_t *reply, struct err *e)
{
	bson_t filter, cursor = BSON_INITIALIZER, sub;
	struct db *d = db_find(r->db);
	int hf = field_doc(r->cmd, "filter", &filter);
	bool name_only = field_bool(r->cmd, "nameOnly", false);
	int64_t batch = -1;
	struct docvec dv = {0};
	char ns[512];
	int m;

	if (hf < 0 || field_doc(r->cmd, "cursor", &cursor) < 0 ||
	    !read_batch_size(&cursor, &batch, e))
		return hf < 0 ? fail(e, 14, "filter must be an object") : false;
	for (struct coll *c = d ? d->colls : NULL; c; c = c->next) {
		bson_t *doc = bson_new();

		BSON_APPEND_UTF8(doc, "name", c->name);
		BSON_APPEND_UTF8(doc, "type", "collection");
		if (!name_only) {
			bson_append_document_begin(doc, "options", -1, &sub);
			bson_append_document_end(doc, &sub);
			bson_append_document_begin(doc, "info", -1, &sub);
			BSON_APPEND_BOOL(&sub, "readOnly", false);
			bson_append_document_end(doc, &sub);
			bson_append_document_begin(doc, "idIndex", -1, &sub);
			id_index_spec(&sub);
			bson_append_document_end(doc, &sub);
		}
		m = hf > 0 ? match(doc, &filter, e) : 1;
		if (m == 1)
			vec_push(&dv, doc);
		else
			bson_destroy(doc);
		if (m < 0) {
			vec_free(&dv);
			return false;
		}
	}
	snprintf(ns, sizeof(ns), "%s.$cmd.listCollections", r->db);
	reply_first_batch(reply, ns, &dv, batch, false);
	return true;
}

static bool cmd_list_databases(const struct req *r, bson_t *reply, struct err *e)
{
	bson_t arr, ent;
	uint32_t i = 0;
	char buf[16];

	bson_append_array_begin(reply, "databases", -1, &arr);
	for (struct db *d = S.dbs; d; d = d->next) {
		bson_append_document_begin(&arr, idx_key(i++, buf, sizeof(buf)), -1, &ent);
		BSON_APPEND_UTF8(&ent, "name", d->name);
		BSON_APPEND_DOUBLE(&ent, "sizeOnDisk", 0.0);
		BSON_APPEND_BOOL(&ent, "empty", d->colls == NULL);
		bson_append_document_end(&arr, &ent);
	}
	bson_append_array_end(reply, &arr);
	BSON_APPEND_DOUBLE(reply, "totalSize", 0.0);
	return true;
}

static bool cmd_list_indexes(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_t cursor = BSON_INITIALIZER, *id;
	int64_t batch = -1;
	struct coll *c;
	struct docvec dv = {0};
	char ns[512];

	if (!coll_arg(r, &name, e) || field_doc(r->cmd, "cursor", &cursor) < 0 ||
	    !read_batch_size(&cursor, &batch, e))
		return false;
	c = coll_lookup(r->db, name);
	if (!c)
		return fail(e, 26, "ns does not exist: %s.%s", r->db, name);
	id = bson_new();
	id_index_spec(id);
	vec_push(&dv, id);
	for (size_t i = 0; i < c->nindexes; i++)
		vec_push(&dv, bson_copy(c->indexes[i]));
	make_ns(ns, sizeof(ns), r->db, name);
	reply_first_batch(reply, ns, &dv, batch, false);
	return true;
}

/* Default index name: the key's fields and directions joined with '_'. */
static void index_name(const bson_t *key, char *out, size_t cap)
{
	bson_iter_t it;
	size_t len = 0;

	out[0] = 0;
	bson_iter_init(&it, key);
	while (bson_iter_next(&it) && len < cap) {
		if (BSON_ITER_HOLDS_UTF8(&it))
			len += (size_t)snprintf(out + len, cap - len, "%s%s_%s", len ? "_" : "",
			                        bson_iter_key(&it), bson_iter_utf8(&it, NULL));
		else
			len += (size_t)snprintf(out + len, cap - len, "%s%s_%lld", len ? "_" : "",
			                        bson_iter_key(&it),
			                        (long long)bson_iter_as_int64(&it));
	}
}

/* A stored spec for one entry of createIndexes, or NULL and e. */
static bson_t *index_spec(const bson_iter_t *entry, struct err *e)
{
	bson_t src, key;
	bson_iter_t it;
	bson_t *out;
	char name[256];

	if (!iter_doc(entry, &src) || field_doc(&src, "key", &key) != 1 || bson_empty(&key)) {
		fail(e, 9, "each index needs a non-empty key object");
		return NULL;
	}
	bson_iter_init(&it, &key);
	while (bson_iter_next(&it))
		if (!BSON_ITER_HOLDS_UTF8(&it) &&
		    (!BSON_ITER_HOLDS_NUMBER(&it) || bson_iter_as_double(&it) == 0)) {
			fail(e, 67, "Values in the index key pattern can't be 0 or non-numbers");
			return NULL;
		}
	out = bson_new();
	BSON_APPEND_INT32(out, "v", 2);
	bson_iter_init(&it, &src);
	while (bson_iter_next(&it))
		if (strcmp(bson_iter_key(&it), "v"))
			bson_append_iter(out, NULL, 0, &it);
	if (!field_str(out, "name")) {
		index_name(&key, name, sizeof(name));
		BSON_APPEND_UTF8(out, "name", name);
	}
	return out;
}

static bool same_key(const bson_t *a, const bson_t *b)
{
	bson_t ka, kb;

	return field_doc(a, "key", &ka) == 1 && field_doc(b, "key", &kb) == 1 &&
	       bson_equal(&ka, &kb);
}

/* Would spec (unique) reject the documents already in c? */
static bool unique_holds(const struct coll *c, const bson_t *spec, struct err *e)
{
	if (!field_bool(spec, "unique", false))
		return true;
	for (struct doc *a = c->head; a; a = a->next)
		for (struct doc *b = a->next; b; b = b->next)
			if (index_applies(spec, a->b) && index_applies(spec, b->b) &&
			    same_index_key(spec, a->b, b->b))
				return dup_error(c, field_str(spec, "name"), b->b, e);
	return true;
}

static bool cmd_create_indexes(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name;
	bson_iter_t it;
	struct coll *c;
	struct docvec add = {0};
	bool created, ok = true;
	size_t before;

	if (!coll_arg(r, &name, e) || !statements(r, "indexes", &it, e))
		return false;
	c = coll_open(db_open(r->db), name, &created);
	before = c->nindexes + 1;
	while (ok && bson_iter_next(&it)) {
		bson_t *spec = index_spec(&it, e);
		const char *n = spec ? field_str(spec, "name") : NULL;
		bool dup = false;

		ok = spec != NULL;
		if (ok && !strcmp(n, "_id_"))
			dup = true;
		for (size_t i = 0; ok && !dup && i < c->nindexes + add.n; i++) {
			const bson_t *o = i < c->nindexes ? c->indexes[i] : add.v[i - c->nindexes];
			bool same_name = !strcmp(field_str(o, "name"), n);

			if (same_name && same_key(o, spec))
				dup = true;
			else if (same_name)
				ok = fail(e, 86,
				          "An existing index has the same name (%s) as the "
				          "requested index but a different key",
				          n);
			else if (same_key(o, spec))
				ok = fail(e, 85, "Index already exists with a different name: %s",
				          field_str(o, "name"));
		}
		if (ok)
			ok = unique_holds(c, spec, e);
		if (ok && !dup)
			vec_push(&add, spec);
		else if (spec)
			bson_destroy(spec);
	}
	if (!ok) {
		vec_free(&add);
		return false;
	}
	for (size_t i = 0; i < add.n; i++) {
		c->indexes = bson_realloc(c->indexes, (c->nindexes + 1) * sizeof(*c->indexes));
		c->indexes[c->nindexes++] = add.v[i];
		journal('x', c->db, c, add.v[i]);
	}
	vec_release(&add);
	BSON_APPEND_BOOL(reply, "createdCollectionAutomatically", created);
	append_count(reply, "numIndexesBefore", (int64_t)before);
	append_count(reply, "numIndexesAfter", (int64_t)c->nindexes + 1);
	if (before == c->nindexes + 1)
		BSON_APPEND_UTF8(reply, "note", "all indexes already exist");
	return true;
}

static void index_remove(struct coll *c, size_t i)
{
	bson_t d = BSON_INITIALIZER;

	BSON_APPEND_UTF8(&d, "n", field_str(c->indexes[i], "name"));
	journal('y', c->db, c, &d);
	bson_destroy(&d);
	bson_destroy(c->indexes[i]);
	memmove(&c->indexes[i], &c->indexes[i + 1], (c->nindexes - i - 1) * sizeof(*c->indexes));
	c->nindexes--;
}

static bool cmd_drop_indexes(const struct req *r, bson_t *reply, struct err *e)
{
	const char *name, *which;
	struct coll *c;
	bson_t key;
	bson_iter_t it;
	size_t was;

	if (!coll_arg(r, &name, e))
		return false;
	c = coll_lookup(r->db, name);
	if (!c)
		return fail(e, 26, "ns not found %s.%s", r->db, name);
	was = c->nindexes + 1;
	which = field_str(r->cmd, "index");
	if (which && !strcmp(which, "*")) {
		while (c->nindexes)
			index_remove(c, c->nindexes - 1);
	} else if (which && !strcmp(which, "_id_")) {
		return fail(e, 72, "cannot drop _id index");
	} else {
		size_t i;

		if (!which && (!bson_iter_init_find(&it, r->cmd, "index") || !iter_doc(&it, &key)))
			return fail(e, 14, "index must be a name or a key pattern");
		for (i = 0; i < c->nindexes; i++) {
			bson_t k;

			if (which
			        ? !strcmp(field_str(c->indexes[i], "name"), which)
			        : field_doc(c->indexes[i], "key", &k) == 1 && bson_equal(&k, &key))
				break;
		}
		if (i == c->nindexes)
			return fail(e, 27, "index not found with name [%s]", which ? which : "?");
		index_remove(c, i);
	}
	append_count(reply, "nIndexesWas", (int64_t)was);
	return true;
}

/* ---- fault injection ---------------------------------------------------- */

static bool cmd_fail_next(const struct req *r, bson_t *reply, struct err *e)
{
	int64_t n = 0, code = 91;
	const char *msg = field_str(r->cmd, "errmsg"), *ns = field_str(r->cmd, "ns");

	if (field_i64(r->cmd, "mmoFailNext", &n) != 1 || n < 0 ||
	    field_i64(r->cmd, "code", &code) < 0)
		return fail(e, 2, "mmoFailNext takes a count >= 0 and a numeric code");
	S.fail_n = n;
	S.fail_code = (int)code;
	S.fail_write_error = field_bool(r->cmd, "writeError", false);
	snprintf(S.fail_errmsg, sizeof(S.fail_errmsg), "%s", msg ? msg : "injected failure");
	snprintf(S.fail_ns, sizeof(S.fail_ns), "%s", ns ? ns : "");
	return true;
}

static bool cmd_reject(const struct req *r, bson_t *reply, struct err *e)
{
	bson_t rule;
	int64_t code = 121;
	int h = field_doc(r->cmd, "mmoReject", &rule);
	const char *ns = field_str(r->cmd, "ns");

	if (h < 0 || field_i64(r->cmd, "code", &code) < 0)
		return fail(e, 2, "mmoReject takes a filter (or null) and a numeric code");
	if (S.reject)
		bson_destroy(S.reject);
	S.reject = h > 0 ? bson_copy(&rule) : NULL;
	S.reject_code = (int)code;
	snprintf(S.reject_ns, sizeof(S.reject_ns), "%s", ns ? ns : "");
	return true;
}

static void reset_all(void)
{
	while (S.dbs) {
		struct db *d = S.dbs;

		S.dbs = d->next;
		db_free(d);
	}
	while (S.cur_head)
		cursor_free(S.cur_head);
	if (S.reject)
		bson_destroy(S.reject);
	S.reject = NULL;
	S.fail_n = 0;
}

static bool cmd_reset(const struct req *r, bson_t *reply, struct err *e)
{
	reset_all();
	journal('R', NULL, NULL, NULL);
	return true;
}

static bool cmd_stats(const struct req *r, bson_t *reply, struct err *e)
{
	size_t ndb = 0, ndocs = 0;

	for (struct db *d = S.dbs; d; d = d->next, ndb++)
		for (struct coll *c = d->colls; c; c = c->next)
			ndocs += c->count;
	append_count(reply, "connections", (int64_t)S.nconns);
	append_count(reply, "commands", (int64_t)S.commands);
	append_count(reply, "cursors", (int64_t)S.ncursors);
	append_count(reply, "databases", (int64_t)ndb);
	append_count(reply, "documents", (int64_t)ndocs);
	append_count(reply, "failNextRemaining", S.fail_n);
	BSON_APPEND_BOOL(reply, "rejecting", S.reject != NULL);
	return true;
}

static const struct command {
	const char *name;
	cmd_fn fn;
	bool write;
} commands[] = {
    {"hello", cmd_hello, false},
    {"isMaster", cmd_hello, false},
    {"ismaster", cmd_hello, false},
    {"ping", cmd_ping, false},
    {"buildInfo", cmd_buildinfo, false},
    {"buildinfo", cmd_buildinfo, false},
    {"serverStatus", cmd_server_status, false},
    {"insert", cmd_insert, true},
    {"update", cmd_update, true},
    {"delete", cmd_delete, true},
    {"find", cmd_find, false},
    {"getMore", cmd_getmore, false},
    {"killCursors", cmd_kill_cursors, false},
    {"aggregate", cmd_aggregate, false},
    {"count", cmd_count, false},
    {"create", cmd_create, false},
    {"drop", cmd_drop, false},
    {"dropDatabase", cmd_drop_database, false},
    {"createIndexes", cmd_create_indexes, false},
    {"listIndexes", cmd_list_indexes, false},
    {"dropIndexes", cmd_drop_indexes, false},
    {"listCollections", cmd_list_collections, false},
    {"listDatabases", cmd_list_databases, false},
    {"endSessions", cmd_ok, false},
    {"killSessions", cmd_ok, false},
    {"mmoFailNext", cmd_fail_next, false},
    {"mmoReject", cmd_reject, false},
    {"mmoReset", cmd_reset, false},
    {"mmoStats", cmd_stats, false},
};

/* An injected failure for a write command, if one is armed. */
static bool injected(const struct req *r, bson_t *reply, struct err *e)
{
	char ns[512];
	const char *coll = NULL;
	bson_iter_t it;
	bson_t errs = BSON_INITIALIZER, ent;

	if (S.fail_n <= 0)
		return false;
	if (bson_iter_init(&it, r->cmd) && bson_iter_next(&it) && BSON_ITER_HOLDS_UTF8(&it))
		coll = bson_iter_utf8(&it, NULL);
	make_ns(ns, sizeof(ns), r->db, coll ? coll : "");
	if (S.fail_ns[0] && strcmp(S.fail_ns, ns))
		return false;
	S.fail_n--;
	fail(e, S.fail_code, "%s", S.fail_errmsg);
	if (!S.fail_write_error)
		return true;
	BSON_APPEND_INT32(reply, "n", 0);
	if (!strcmp(r->name, "update"))
		BSON_APPEND_INT32(reply, "nModified", 0);
	bson_append_document_begin(&errs, "0", 1, &ent);
	BSON_APPEND_INT32(&ent, "index", 0);
	BSON_APPEND_INT32(&ent, "code", e->code);
	BSON_APPEND_UTF8(&ent, "errmsg", e->msg);
	bson_append_document_end(&errs, &ent);
	bson_append_array(reply, "writeErrors", -1, &errs);
	bson_destroy(&errs);
	e->code = 0;
	return true;
}

/* Runs cmd against db; reply (initialised) receives the answer. */
static void run_command(struct conn *conn, int32_t conn_id, const char *db, const bson_t *cmd,
                        bson_t *reply)
{
	struct err e = {0};
	struct req r = {.conn = conn, .conn_id = conn_id, .db = db, .cmd = cmd};
	const struct command *c = NULL;
	bson_iter_t it;
	bool ok = false;

	S.commands++;
	if (!bson_iter_init(&it, cmd) || !bson_iter_next(&it)) {
		fail(&e, 59, "no command given");
		goto out;
	}
	r.name = bson_iter_key(&it);
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++)
		if (!strcmp(commands[i].name, r.name))
			c = &commands[i];
	if (S.verbose)
		fprintf(stderr, "mongo-standin: conn %d: %s.%s\n", conn_id, db ? db : "?", r.name);
	if (!c) {
		fail(&e, 59, "no such command: '%s' (the mongo stand-in does not have it)", r.name);
		goto out;
	}
	if (!db || !valid_db_name(db)) {
		fail(&e, 73, "a valid $db is required");
		goto out;
	}
	if (bson_has_field(cmd, "txnNumber") || bson_has_field(cmd, "startTransaction")) {
		fail(&e, 20,
		     "Transaction numbers are only allowed on a replica set member or "
		     "mongos");
		goto out;
	}
	if (c->write && injected(&r, reply, &e))
		ok = e.code == 0;
	else
		ok = c->fn(&r, reply, &e);
out:
	if (ok) {
		BSON_APPEND_DOUBLE(reply, "ok", 1.0);
		return;
	}
	bson_reinit(reply);
	BSON_APPEND_DOUBLE(reply, "ok", 0.0);
	BSON_APPEND_UTF8(reply, "errmsg", e.msg);
	BSON_APPEND_INT32(reply, "code", e.code);
	BSON_APPEND_UTF8(reply, "codeName", code_name(e.code));
}

/* ---- journal replay ----------------------------------------------------- */

static void replay_one(const bson_t *rec)
{
	const char *o = field_str(rec, "o"), *dbn = field_str(rec, "db"), *cn = field_str(rec, "c");
	struct db *db = dbn ? db_open(dbn) : NULL;
	struct coll *c = db && cn ? coll_open(db, cn, NULL) : NULL;
	bson_t d;
	bson_iter_t id;
	struct doc *doc = NULL;
	bool hd = field_doc(rec, "d", &d) == 1;

	if (!o)
		return;
	if (c && hd && doc_id(&d, &id))
		doc = coll_find_id(c, &id);
	switch (o[0]) {
	case 'i':
		if (c && hd && !doc && doc_id(&d, &id))
			doc_insert(c, bson_copy(&d));
		break;
	case 'r':
		if (doc)
			doc_replace(c, doc, bson_copy(&d));
		break;
	case 'd':
		if (doc)
			doc_delete(c, doc);
		break;
	case 'D':
		if (c)
			coll_drop(c);
		break;
	case 'X':
		if (db)
			db_drop(db);
		break;
	case 'x':
		if (c && hd) {
			c->indexes = bson_realloc(c->indexes, (c->nindexes + 1) * sizeof(bson_t *));
			c->indexes[c->nindexes++] = bson_copy(&d);
		}
		break;
	case 'y':
		for (size_t i = 0; c && hd && i < c->nindexes; i++)
			if (field_str(&d, "n") &&
			    !strcmp(field_str(c->indexes[i], "name"), field_str(&d, "n"))) {
				bson_destroy(c->indexes[i]);
				memmove(&c->indexes[i], &c->indexes[i + 1],
				        (c->nindexes - i - 1) * sizeof(*c->indexes));
				c->nindexes--;
				break;
			}
		break;
	case 'R': reset_all(); break;
	}
}

/* Replays path into memory, cuts a torn tail, and opens it for appending. */
static int journal_open(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	struct stat st;
	uint8_t *buf = NULL;
	size_t off = 0, n = 0, records = 0;

	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "mongo-standin: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (st.st_size > 0) {
		buf = bson_malloc((size_t)st.st_size);
		while (n < (size_t)st.st_size) {
			ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);

			if (got <= 0)
				break;
			n += (size_t)got;
		}
	}
	while (off + 4 <= n) {
		uint32_t len;
		bson_t rec;

		memcpy(&len, buf + off, 4);
		len = BSON_UINT32_FROM_LE(len);
		if (len < 5 || len > n - off || !bson_init_static(&rec, buf + off, len) ||
		    !doc_ok(&rec))
			break;
		replay_one(&rec);
		off += len;
		records++;
	}
	bson_free(buf);
	if (off != n && ftruncate(fd, (off_t)off) != 0) {
		fprintf(stderr, "mongo-standin: truncating %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	if (records)
		fprintf(stderr, "mongo-standin: replayed %zu journal records from %s\n", records,
		        path);
	return fd;
}

/* ---- the wire ------------------------------------------------------------ */

struct conn {
	int fd;
	int32_t id;
	uint8_t *in, *out;
	size_t inlen, incap, outlen, outoff, outcap;
	bool eof, dead, pending;
};

static int32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return (int32_t)BSON_UINT32_FROM_LE(v);
}

static void wr32(uint8_t *p, int32_t v)
{
	uint32_t le = BSON_UINT32_TO_LE((uint32_t)v);

	memcpy(p, &le, 4);
}

static uint8_t *out_reserve(struct conn *c, size_t n)
{
	if (c->outlen + n > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 65536;

		while (cap < c->outlen + n)
			cap *= 2;
		c->out = bson_realloc(c->out, cap);
		c->outcap = cap;
	}
	c->outlen += n;
	return c->out + c->outlen - n;
}

static void send_reply(struct conn *c, int32_t opcode, int32_t response_to, const bson_t *doc)
{
	size_t head = opcode == OP_MSG ? 16 + 4 + 1 : 16 + 4 + 8 + 4 + 4;
	uint8_t *p = out_reserve(c, head + doc->len);

	wr32(p, (int32_t)(head + doc->len));
	wr32(p + 4, ++S.next_req_id);
	wr32(p + 8, response_to);
	wr32(p + 12, opcode);
	wr32(p + 16, 0); /* flagBits / responseFlags */
	if (opcode == OP_MSG) {
		p[20] = 0; /* section kind 0: the body */
	} else {
		memset(p + 20, 0, 8); /* cursorID */
		wr32(p + 28, 0);      /* startingFrom */
		wr32(p + 32, 1);      /* numberReturned */
	}
	memcpy(p + head, bson_get_data(doc), doc->len);
}

/* One OP_MSG: body, document sequences folded into the body as arrays. */
static bool handle_op_msg(struct conn *c, const uint8_t *m, size_t len, int32_t req_id)
{
	uint32_t flags = (uint32_t)rd32(m + 16);
	size_t off = 20, end = len;
	bson_t body, merged, reply = BSON_INITIALIZER;
	const bson_t *cmd = &body;
	bool have_body = false, ok = true;
	struct {
		const char *id;
		const uint8_t *p;
		size_t len;
	} seq[MAX_SEQS];
	size_t nseq = 0;
	const char *db;

	if (len < 21 || (flags & MSG_REQUIRED_BITS & ~MSG_KNOWN_LOW))
		return false;
	if (flags & MSG_CHECKSUM) {
		if (end < 25)
			return false;
		end -= 4;
	}
	while (off < end) {
		uint8_t kind = m[off++];
		size_t n;

		if (end - off < 4)
			return false;
		n = (size_t)(uint32_t)rd32(m + off);
		if (n < 5 || n > end - off)
			return false;
		if (kind == 0) {
			if (have_body || !bson_init_static(&body, m + off, n) || !doc_ok(&body))
				return false;
			have_body = true;
		} else if (kind == 1) {
			const uint8_t *nul = memchr(m + off + 4, 0, n - 4);
			size_t p;

			if (!nul || nseq == MAX_SEQS)
				return false;
			seq[nseq].id = (const char *)(m + off + 4);
			seq[nseq].p = nul + 1;
			seq[nseq].len = (size_t)(m + off + n - (nul + 1));
			for (p = 0; p < seq[nseq].len;) {
				bson_t d;
				size_t dl;

				if (seq[nseq].len - p < 5)
					return false;
				dl = (size_t)(uint32_t)rd32(seq[nseq].p + p);
				if (dl < 5 || dl > seq[nseq].len - p ||
				    !bson_init_static(&d, seq[nseq].p + p, dl) || !doc_ok(&d))
					return false;
				p += dl;
			}
			nseq++;
		} else
			return false;
		off += n;
	}
	if (!have_body)
		return false;
	if (nseq > 0) {
		bson_copy_to(&body, &merged);
		cmd = &merged;
		for (size_t i = 0; i < nseq && ok; i++) {
			bson_t arr;
			uint32_t k = 0;
			char buf[16];

			if (bson_has_field(&merged, seq[i].id)) {
				ok = false;
				break;
			}
			bson_append_array_begin(&merged, seq[i].id, -1, &arr);
			for (size_t p = 0; p < seq[i].len;) {
				bson_t d;
				size_t dl = (size_t)(uint32_t)rd32(seq[i].p + p);

				bson_init_static(&d, seq[i].p + p, dl);
				bson_append_document(&arr, idx_key(k++, buf, sizeof(buf)), -1, &d);
				p += dl;
			}
			bson_append_array_end(&merged, &arr);
		}
	}
	if (ok) {
		db = field_str(cmd, "$db");
		run_command(c, c->id, db, cmd, &reply);
		if (!(flags & MSG_MORE_TO_COME))
			send_reply(c, OP_MSG, req_id, &reply);
	}
	if (nseq)
		bson_destroy(&merged);
	bson_destroy(&reply);
	return ok;
}

/* One OP_QUERY: only commands on <db>.$cmd, as the handshake sends. */
static bool handle_op_query(struct conn *c, const uint8_t *m, size_t len, int32_t req_id)
{
	const uint8_t *nsend;
	size_t off, nslen, dl;
	char db[128];
	bson_t q, inner, reply = BSON_INITIALIZER;
	const bson_t *cmd = &q;
	bson_iter_t it;

	if (len < 20 + 1 + 8 + 5)
		return false;
	nsend = memchr(m + 20, 0, len - 20);
	if (!nsend)
		return false;
	nslen = (size_t)(nsend - (m + 20));
	off = 20 + nslen + 1 + 8;
	if (off + 5 > len)
		return false;
	dl = (size_t)(uint32_t)rd32(m + off);
	if (dl < 5 || dl > len - off || !bson_init_static(&q, m + off, dl) || !doc_ok(&q))
		return false;
	if (nslen < 5 || nslen - 5 >= sizeof(db) || memcmp(m + 20 + nslen - 5, ".$cmd", 5)) {
		BSON_APPEND_UTF8(&reply, "$err",
		                 "the mongo stand-in answers only commands over "
		                 "OP_QUERY");
		BSON_APPEND_INT32(&reply, "code", 2);
		BSON_APPEND_DOUBLE(&reply, "ok", 0.0);
		send_reply(c, OP_REPLY, req_id, &reply);
		bson_destroy(&reply);
		return true;
	}
	memcpy(db, m + 20, nslen - 5);
	db[nslen - 5] = 0;
	if (bson_iter_init_find(&it, &q, "$query") && iter_doc(&it, &inner))
		cmd = &inner;
	run_command(c, c->id, db, cmd, &reply);
	send_reply(c, OP_REPLY, req_id, &reply);
	bson_destroy(&reply);
	return true;
}

static bool handle_message(struct conn *c, const uint8_t *m, size_t len)
{
	int32_t req_id = rd32(m + 4), opcode = rd32(m + 12);

	if (opcode == OP_MSG)
		return handle_op_msg(c, m, len, req_id);
	if (opcode == OP_QUERY)
		return handle_op_query(c, m, len, req_id);
	return false;
}

static void conn_read(struct conn *c)
{
	size_t budget = READ_PER_PASS;

	while (budget > 0 && !c->eof) {
		ssize_t n;

		if (c->incap - c->inlen < 65536) {
			c->incap = c->incap ? c->incap * 2 : 65536;
			c->in = bson_realloc(c->in, c->incap);
		}
		n = recv(c->fd, c->in + c->inlen, BSON_MIN(c->incap - c->inlen, budget), 0);
		if (n > 0) {
			c->inlen += (size_t)n;
			budget -= (size_t)n;
		} else if (n == 0) {
			c->eof = true;
		} else if (errno == EINTR) {
			continue;
		} else {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				c->dead = true;
			break;
		}
	}
}

/* Handles up to MSGS_PER_PASS complete messages. */
static void conn_process(struct conn *c)
{
	size_t off = 0;
	int done = 0;

	c->pending = false;
	while (!c->dead && c->inlen - off >= 4) {
		int32_t len = rd32(c->in + off);

		if (len < 16 || len > MAX_MSG_BYTES) {
			if (S.verbose)
				fprintf(stderr, "mongo-standin: conn %d: bad length %d\n", c->id,
				        len);
			c->dead = true;
			break;
		}
		if (c->inlen - off < (size_t)len)
			break;
		if (done == MSGS_PER_PASS || c->outlen - c->outoff > OUT_HIGH_WATER) {
			c->pending = true;
			break;
		}
		if (!handle_message(c, c->in + off, (size_t)len)) {
			if (S.verbose)
				fprintf(stderr, "mongo-standin: conn %d: malformed message\n",
				        c->id);
			c->dead = true;
			break;
		}
		off += (size_t)len;
		done++;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	if (c->inlen == 0 && c->incap > 4 * 1024 * 1024) {
		bson_free(c->in);
		c->in = NULL;
		c->incap = 0;
	}
	if (c->eof && !c->pending)
		c->dead = true;
}

static void conn_flush(struct conn *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);

		if (n > 0) {
			c->outoff += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				c->dead = true;
			break;
		}
	}
	if (c->outoff == c->outlen) {
		c->outoff = c->outlen = 0;
		if (c->outcap > 4 * 1024 * 1024) {
			bson_free(c->out);
			c->out = NULL;
			c->outcap = 0;
		}
	}
}

static void conn_free(struct conn *c)
{
	close(c->fd);
	bson_free(c->in);
	bson_free(c->out);
	bson_free(c);
}

static int listen_on(const char *bind_addr, int port, int *bound)
{
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	int fd, one = 1;

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, bind_addr, &a.sin_addr) != 1) {
		fprintf(stderr, "mongo-standin: --bind wants an IPv4 address, not %s\n", bind_addr);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		fprintf(stderr, "mongo-standin: listen on %s:%d: %s\n", bind_addr, port,
		        strerror(errno));
		close(fd);
		return -1;
	}
	*bound = ntohs(a.sin_port);
	return fd;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mongo-standin [--port P] [--bind ADDR] [--journal FILE]\n"
	           "                     [--fail-writes N] [--fail-code C] [--verbose]\n"
	           "\n"
	           "mongo-standin is a TEST DOUBLE for MongoDB, not a database. It speaks enough\n"
	           "of the wire protocol for libmongoc 1.23 and the mmo projector's tests.\n"
	           "\n"
	           "  --port P         listen on P (default 27017; 0 picks a free port)\n"
	           "  --bind ADDR      IPv4 address to listen on (default 127.0.0.1)\n"
	           "  --journal FILE   log every change to FILE and replay it at start, so\n"
	           "                   data survives a restart (even kill -9)\n"
	           "  --fail-writes N  fail the first N write commands (see mmoFailNext)\n"
	           "  --fail-code C    the error code for --fail-writes (default 91)\n"
	           "  --verbose        log each command to stderr\n"
	           "\n"
	           "Prints \"mongo-standin ready port=P\" once listening; exits 0 on SIGTERM.\n"
	           "\n"
	           "Supports: OP_QUERY commands (handshake, monitoring) and OP_MSG with document\n"
	           "sequences, checksum (skipped) and moreToCome (no reply); hello/isMaster\n"
	           "(maxWireVersion 13, standalone, no topologyVersion), ping, buildInfo,\n"
	           "serverStatus, insert, update ($set $setOnInsert $inc $unset $min $max on\n"
	           "top-level fields, replacement, upsert, multi), delete, find (filter, sort,\n"
	           "skip, limit, batchSize, singleBatch, projection), getMore, killCursors,\n"
	           "aggregate ($match $sort $skip $limit $count $project $group, $collStats\n"
	           "count), count, create, drop, dropDatabase, createIndexes, listIndexes,\n"
	           "dropIndexes, listCollections, listDatabases, endSessions, killSessions.\n"
	           "Filters: equality, $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $nor.\n"
	           "Duplicate _id or unique key: write error 11000. Unknown commands: code 59.\n"
	           "Fault injection: {mmoFailNext: n, code, errmsg, writeError: bool, ns},\n"
	           "{mmoReject: <filter>|null, code (default 121), ns}, {mmoReset: 1},\n"
	           "{mmoStats: 1}, on any database.\n"
	           "Not supported: transactions, auth, TLS, compression, collation,\n"
	           "arrayFilters, pipeline updates, dotted update paths, $regex, $elemMatch,\n"
	           "$expr, findAndModify, distinct, change streams, tailable cursors.\n"
	           "Messages over 48,000,000 bytes or malformed close the connection.\n");
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	const char *bind_addr = "127.0.0.1", *journal_path = NULL;
	long port = 27017, fail_writes = 0, fail_code = 91;
	struct conn *conns[MAX_CONNS];
	struct pollfd pfd[MAX_CONNS + 2];
	size_t nconns = 0;
	int lfd, sfd, bound = 0, rc = 0;
	sigset_t mask;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = true;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
			S.verbose = true;
			continue;
		} else if (!v) {
			ok = false;
		} else if (!strcmp(a, "--port")) {
			ok = parse_int(v, 0, 65535, &port);
		} else if (!strcmp(a, "--bind")) {
			bind_addr = v;
		} else if (!strcmp(a, "--journal")) {
			journal_path = v;
		} else if (!strcmp(a, "--fail-writes")) {
			ok = parse_int(v, 0, INT32_MAX, &fail_writes);
		} else if (!strcmp(a, "--fail-code")) {
			ok = parse_int(v, 1, INT32_MAX, &fail_code);
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "mongo-standin: bad argument %s\n", a);
			usage(stderr);
			return 2;
		}
		i++;
	}
	S.fail_n = fail_writes;
	S.fail_code = (int)fail_code;
	snprintf(S.fail_errmsg, sizeof(S.fail_errmsg), "injected failure (--fail-writes)");

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0) {
		perror("mongo-standin: signalfd");
		return 1;
	}
	if (journal_path && (S.journal_fd = journal_open(journal_path)) < 0) {
		rc = 1;
		goto out;
	}
	lfd = listen_on(bind_addr, (int)port, &bound);
	if (lfd < 0) {
		rc = 1;
		goto out;
	}
	S.next_cursor = ((int64_t)(now_ms() & 0xffffff) << 24) | 1;
	printf("mongo-standin ready port=%d\n", bound);
	fflush(stdout);

	for (;;) {
		bool pending = false;
		int n;

		pfd[0] = (struct pollfd){.fd = sfd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = lfd, .events = POLLIN};
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			short ev = 0;

			if (!c->pending && c->outlen - c->outoff <= OUT_HIGH_WATER && !c->eof)
				ev |= POLLIN;
			if (c->outlen > c->outoff)
				ev |= POLLOUT;
			pending |= c->pending;
			pfd[i + 2] = (struct pollfd){.fd = c->fd, .events = ev};
		}
		n = poll(pfd, nconns + 2, pending ? 0 : 1000);
		if (n < 0 && errno != EINTR) {
			perror("mongo-standin: poll");
			rc = 1;
			break;
		}
		if (n > 0 && (pfd[0].revents & POLLIN))
			break;
		for (size_t i = 0; i < nconns; i++) {
			struct conn *c = conns[i];
			short re = n > 0 ? pfd[i + 2].revents : 0;

			if (re & (POLLIN | POLLHUP | POLLERR))
				conn_read(c);
			if (re || c->pending)
				conn_process(c);
			if (c->outlen > c->outoff)
				conn_flush(c);
		}
		for (size_t i = 0; i < nconns;) {
			if (conns[i]->dead) {
				conn_free(conns[i]);
				conns[i] = conns[--nconns];
			} else
				i++;
		}
		S.nconns = nconns;
		for (int k = 0; n > 0 && (pfd[1].revents & POLLIN) && k < 64; k++) {
			int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
			struct conn *c;

			if (fd < 0)
				break;
			if (nconns == MAX_CONNS) {
				close(fd);
				continue;
			}
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			c = bson_malloc0(sizeof(*c));
			c->fd = fd;
			c->id = ++S.next_conn_id;
			conns[nconns++] = c;
		}
		S.nconns = nconns;
	}
	for (size_t i = 0; i < nconns; i++)
		conn_free(conns[i]);
	close(lfd);
out:
	reset_all();
	if (S.journal_fd >= 0)
		close(S.journal_fd);
	close(sfd);
	return rc;
}
