/* standin_query.c - mongo-standin: cursors, filters, sort and projection (see mongo_standin.h). */
#include "mongo_standin.h"

/* ---- cursors ---------------------------------------------------------- */

void vec_push(struct docvec *dv, bson_t *b)
{
	if (dv->n == dv->cap) {
		dv->cap = dv->cap ? dv->cap * 2 : 16;
		dv->v = bson_realloc(dv->v, dv->cap * sizeof(*dv->v));
	}
	dv->v[dv->n++] = b;
}

/* Frees the array only (the documents are borrowed). */
void vec_release(struct docvec *dv)
{
	bson_free(dv->v);
	memset(dv, 0, sizeof(*dv));
}

/* Frees the array and destroys the documents it owns. */
void vec_free(struct docvec *dv)
{
	for (size_t i = 0; i < dv->n; i++)
		bson_destroy(dv->v[i]);
	vec_release(dv);
}

void cursor_free(struct cursor *cur)
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

struct cursor *cursor_find(int64_t id)
{
	for (struct cursor *c = S.cur_head; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* End of the next batch from pos: at most batch documents (batch < 0: any
 * number) and MAX_BATCH_BYTES, but always at least one. */
size_t batch_end(bson_t **docs, size_t n, size_t pos, int64_t batch)
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

void append_cursor(bson_t *reply, const char *field, bson_t **docs, size_t from, size_t to,
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
void reply_first_batch(bson_t *reply, const char *ns, struct docvec *dv, int64_t batch, bool single)
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

bool is_operator_doc(const bson_iter_t *it)
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
int match(const bson_t *doc, const bson_t *filter, struct err *e)
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
bool select_docs(const struct coll *c, const bson_t *filter, struct docvec *out, struct err *e)
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

bool parse_sort(const bson_t *spec, struct sortspec *s, struct err *e)
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

void sort_vec(struct docvec *dv, const struct sortspec *s)
{
	bson_t **tmp;

	if (dv->n < 2 || !s->n)
		return;
	tmp = bson_malloc(dv->n * sizeof(*tmp));
	merge_sort(dv->v, tmp, dv->n, s);
	bson_free(tmp);
}

/* Checks a top-level projection; *inclusive says which kind it is. */
bool parse_projection(const bson_t *proj, bool *inclusive, struct err *e)
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

bson_t *project(const bson_t *doc, const bson_t *proj, bool inclusive)
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
