/* standin_colls.c - mongo-standin: the commands on collections, databases and indexes (see
 * mongo_standin.h). */
#include "mongo_standin.h"

/* ---- collections, databases and indexes ---------------------------------- */

bool cmd_create(const struct req *r, bson_t *reply, struct err *e)
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

bool cmd_drop(const struct req *r, bson_t *reply, struct err *e)
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

bool cmd_drop_database(const struct req *r, bson_t *reply, struct err *e)
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

bool cmd_list_collections(const struct req *r, bson_t *reply, struct err *e)
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

bool cmd_list_databases(const struct req *r, bson_t *reply, struct err *e)
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

bool cmd_list_indexes(const struct req *r, bson_t *reply, struct err *e)
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

bool cmd_create_indexes(const struct req *r, bson_t *reply, struct err *e)
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

bool cmd_drop_indexes(const struct req *r, bson_t *reply, struct err *e)
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
