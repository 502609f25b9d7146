/* standin_store.c - mongo-standin: databases, collections and documents in memory (see
 * mongo_standin.h). */
#include "mongo_standin.h"

/* ---- storage ---------------------------------------------------------- */

struct standin S = {.journal_fd = -1};

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

bool doc_id(const bson_t *b, bson_iter_t *id)
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

struct doc *coll_find_id(const struct coll *c, const bson_iter_t *id)
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

bool valid_db_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 64 && !strpbrk(s, "/\\. \"$*<>:|?");
}

bool valid_coll_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 200 && !strchr(s, '$') && s[0] != '.' && s[n - 1] != '.';
}

struct db *db_find(const char *name)
{
	for (struct db *d = S.dbs; d; d = d->next)
		if (!strcmp(d->name, name))
			return d;
	return NULL;
}

struct db *db_open(const char *name)
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

struct coll *coll_lookup(const char *db, const char *name)
{
	return coll_find(db_find(db), name);
}

struct coll *coll_open(struct db *db, const char *name, bool *created)
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

void coll_drop(struct coll *c)
{
	struct coll **p = &c->db->colls;

	while (*p != c)
		p = &(*p)->next;
	*p = c->next;
	journal('D', c->db, c, NULL);
	coll_free(c);
}

void db_free(struct db *d)
{
	struct coll *c = d->colls, *next;

	for (; c; c = next) {
		next = c->next;
		coll_free(c);
	}
	bson_free(d->name);
	bson_free(d);
}

void db_drop(struct db *d)
{
	struct db **p = &S.dbs;

	while (*p != d)
		p = &(*p)->next;
	*p = d->next;
	journal('X', d, NULL, NULL);
	db_free(d);
}

/* Links b (owned from now on, _id first and unique) at the end of c. */
void doc_insert(struct coll *c, bson_t *b)
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
void doc_replace(struct coll *c, struct doc *d, bson_t *b)
{
	bson_destroy(d->b);
	d->b = b;
	journal('r', c->db, c, b);
}

void doc_delete(struct coll *c, struct doc *d)
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
