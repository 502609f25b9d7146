/* standin_bson.c - mongo-standin: errors, BSON helpers and MongoDB's order of values (see
 * mongo_standin.h). */
#include "mongo_standin.h"

/* ---- errors ---------------------------------------------------------- */

__attribute__((format(printf, 3, 0))) static void vfail(struct err *e, int code, const char *fmt,
                                                        va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

/* Records an error; false, for functions that answer true or false. */
__attribute__((format(printf, 3, 4))) bool fail(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(e, code, fmt, ap);
	va_end(ap);
	return false;
}

/* Records an error; -1, for the matchers, which answer 1, 0 or -1. */
__attribute__((format(printf, 3, 4))) int fail_tri(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfail(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

const char *code_name(int code)
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
bool iter_doc(const bson_iter_t *it, bson_t *out)
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
int field_doc(const bson_t *b, const char *key, bson_t *out)
{
	bson_iter_t it;

	if (!bson_iter_init_find(&it, b, key) || BSON_ITER_HOLDS_NULL(&it))
		return 0;
	if (!BSON_ITER_HOLDS_DOCUMENT(&it))
		return -1;
	return iter_doc(&it, out) ? 1 : -1;
}

/* Optional numeric field: 1 present, 0 absent, -1 not a number. */
int field_i64(const bson_t *b, const char *key, int64_t *out)
{
	bson_iter_t it;

	if (!bson_iter_init_find(&it, b, key) || BSON_ITER_HOLDS_NULL(&it))
		return 0;
	if (!BSON_ITER_HOLDS_NUMBER(&it))
		return -1;
	*out = bson_iter_as_int64(&it);
	return 1;
}

bool field_bool(const bson_t *b, const char *key, bool dflt)
{
	bson_iter_t it;

	if (!bson_iter_init_find(&it, b, key))
		return dflt;
	return bson_iter_as_bool(&it);
}

const char *field_str(const bson_t *b, const char *key)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, b, key) && BSON_ITER_HOLDS_UTF8(&it))
		return bson_iter_utf8(&it, NULL);
	return NULL;
}

const char *idx_key(uint32_t i, char *buf, size_t cap)
{
	const char *key;

	bson_uint32_to_string(i, &key, buf, cap);
	return key;
}

void append_count(bson_t *b, const char *key, int64_t n)
{
	if (n >= INT32_MIN && n <= INT32_MAX)
		bson_append_int32(b, key, -1, (int32_t)n);
	else
		bson_append_int64(b, key, -1, n);
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Walks every nested document without recursion: false when the bytes are
 * not well-formed BSON or nest deeper than MAX_DEPTH. Everything else in this
 * file may recurse because of this bound. */
bool doc_ok(const bson_t *b)
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
bool find_path(const bson_t *doc, const char *path, bson_iter_t *out)
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

int type_rank(bson_type_t t)
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

long double num_of(const bson_iter_t *it)
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
int cmp_values(const bson_iter_t *a, const bson_iter_t *b)
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

bool values_equal(const bson_iter_t *a, const bson_iter_t *b)
{
	return cmp_values(a, b) == 0;
}
