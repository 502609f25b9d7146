/* standin_aggregate.c - mongo-standin: the aggregation pipeline (see mongo_standin.h). */
#include "mongo_standin.h"

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

bool cmd_aggregate(const struct req *r, bson_t *reply, struct err *e)
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
