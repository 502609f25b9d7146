/* standin_update.c - mongo-standin: update operators, upserts and the write checks (duplicate keys,
 * unique indexes, rejects) (see mongo_standin.h). */
#include "mongo_standin.h"

/* ---- updates -------------------------------------------------------------- */

static int op_code(const char *name)
{
	static const char *names[] = {"$set", "$setOnInsert", "$inc", "$unset", "$min", "$max"};

	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		if (!strcmp(name, names[i]))
			return (int)i;
	return -1;
}

bool parse_update(const bson_t *u, struct updspec *s, struct err *e)
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
bool apply_ops(const bson_t *old, const struct updspec *s, bool inserting, bson_t *out,
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
void upsert_seed(const bson_t *filter, bson_t *out)
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
bson_t *with_id_first(const bson_t *in, struct err *e)
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

bool index_applies(const bson_t *spec, const bson_t *doc)
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

bool same_index_key(const bson_t *spec, const bson_t *a, const bson_t *b)
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

bool dup_error(const struct coll *c, const char *iname, const bson_t *doc, struct err *e)
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
bool write_allowed(const struct coll *c, const bson_t *doc, const struct doc *self, struct err *e)
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
