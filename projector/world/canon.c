/* canon.c - the canonical form of the world's state, its hash, and back.
 *
 * One spelling per state: keys in byte order, players and entities sorted
 * by id, one per line (so `diff` of two dumps shows the players that
 * differ), numbers in the shortest of %.15g/%.16g/%.17g that reads back
 * exactly, strings with ", \, control bytes and every byte >= 0x80 escaped
 * as \u00XX (so any byte string survives a round trip through a JSON
 * parser). The state hash is SHA-256 of exactly these bytes.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/mmo_sha256.h"
#include "world_int.h"

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (b->len + n + 1 > cap)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void put_u64(struct buf *b, uint64_t v)
{
	char t[24];

	put(b, t, (size_t)snprintf(t, sizeof(t), "%llu", (unsigned long long)v));
}

static void put_i64(struct buf *b, int64_t v)
{
	char t[24];

	put(b, t, (size_t)snprintf(t, sizeof(t), "%lld", (long long)v));
}

static void put_double(struct buf *b, double v)
{
	char t[40];
	int n = 0;

	if (!isfinite(v)) {
		puts_(b, "null"); /* never from a validated log; refused when read back */
		return;
	}
	v = world_norm(v);
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(t, sizeof(t), "%.*g", prec, v);
		if (strtod(t, NULL) == v)
			break;
	}
	put(b, t, (size_t)n);
}

static void put_str(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char t[2] = {'\\', (char)*p};
			put(b, t, 2);
		} else if (*p < 0x20 || *p >= 0x80) {
			char t[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
			put(b, t, 6);
		} else {
			put(b, (const char *)p, 1);
		}
	}
	put(b, "\"", 1);
}

static void put_pos(struct buf *b, const struct world_vec *v)
{
	puts_(b, "\"position\":{\"x\":");
	put_double(b, v->x);
	puts_(b, ",\"y\":");
	put_double(b, v->y);
	puts_(b, ",\"z\":");
	put_double(b, v->z);
	puts_(b, "}");
}

static void put_player(struct buf *b, const struct world_player *p)
{
	bool first = true;

	puts_(b, "{\"alive\":");
	puts_(b, p->alive ? "true" : "false");
	puts_(b, ",\"died_at\":");
	put_i64(b, p->died_at);
	puts_(b, ",\"hp\":");
	put_u64(b, p->hp);
	puts_(b, ",\"id\":");
	put_str(b, p->id);
	puts_(b, ",\"last_move_ts\":");
	put_i64(b, p->last_move_ts);
	puts_(b, ",\"name\":");
	put_str(b, p->name);
	puts_(b, ",\"online\":");
	puts_(b, p->online ? "true" : "false");
	puts_(b, ",");
	put_pos(b, &p->pos);
	puts_(b, ",\"region_id\":");
	put_str(b, p->region_id);
	puts_(b, ",\"seq\":");
	put_u64(b, p->seq);
	puts_(b, ",\"skill_used_at\":{");
	/* The skill table is sorted by name, so this is key order. */
	for (size_t i = 0; world_skill_at(i); i++) {
		if (!p->skill_used_at[i])
			continue;
		if (!first)
			puts_(b, ",");
		first = false;
		put_str(b, world_skill_at(i)->name);
		puts_(b, ":");
		put_i64(b, p->skill_used_at[i]);
	}
	puts_(b, "}}");
}

static void put_entity(struct buf *b, const struct world_entity *e)
{
	puts_(b, "{\"hp\":");
	put_u64(b, e->hp);
	puts_(b, ",\"id\":");
	put_str(b, e->id);
	puts_(b, ",");
	put_pos(b, &e->pos);
	puts_(b, ",\"region_id\":");
	put_str(b, e->region_id);
	puts_(b, ",\"seq\":");
	put_u64(b, e->seq);
	puts_(b, ",\"type\":");
	put_str(b, e->type);
	puts_(b, "}");
}

int world_encode(const world *w, char **out, size_t *len)
{
	const struct world_player **pl = NULL;
	const struct world_entity **en = NULL;
	struct buf b = {0};
	int err = MMO_ENOMEM;

	if (!w || !out || !len)
		return MMO_EINVAL;
	pl = world_pl_sorted(w);
	en = world_en_sorted(w);
	if (!pl || !en)
		goto out;
	puts_(&b, "{\"entities\":[\n");
	for (size_t i = 0; i < w->nen; i++) {
		put_entity(&b, en[i]);
		puts_(&b, i + 1 < w->nen ? ",\n" : "\n");
	}
	puts_(&b, "],\n\"format\":");
	put_u64(&b, WORLD_FORMAT);
	puts_(&b, ",\n\"players\":[\n");
	for (size_t i = 0; i < w->npl; i++) {
		put_player(&b, pl[i]);
		puts_(&b, i + 1 < w->npl ? ",\n" : "\n");
	}
	puts_(&b, "],\n\"seq\":");
	put_u64(&b, w->seq);
	puts_(&b, "}\n");
	if (b.failed)
		goto out;
	*out = b.p;
	*len = b.len;
	b.p = NULL;
	err = MMO_OK;
out:
	free(b.p);
	free(pl);
	free(en);
	return err;
}

int world_player_json(const world *w, const char *id, char **out, size_t *len)
{
	const struct world_player *p = world_pl_find(w, id);
	struct buf b = {0};

	if (!p)
		return MMO_ENOTFOUND;
	put_player(&b, p);
	if (b.failed) {
		free(b.p);
		return MMO_ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return MMO_OK;
}

int world_hash(const world *w, uint8_t hash[WORLD_HASH_LEN])
{
	char *buf;
	size_t len;
	int err = world_encode(w, &buf, &len);

	if (err)
		return err;
	err = mmo_sha256(buf, len, hash);
	free(buf);
	return err;
}

_Static_assert(WORLD_HASH_LEN == MMO_SHA256_LEN, "the world's hash is a SHA-256");

void world_hash_hex(const uint8_t hash[WORLD_HASH_LEN], char hex[2 * WORLD_HASH_LEN + 1])
{
	mmo_sha256_hex(hash, hex);
}

int world_canon_hash(const char *buf, size_t len, uint8_t hash[WORLD_HASH_LEN])
{
	return mmo_sha256(buf, len, hash);
}

/* ---------------------------------------------------------------- decode */

/* A string as put_str wrote it: code points U+0001..U+00FF are bytes. */
static bool get_str(json_t *o, const char *key, char *dst, size_t cap)
{
	json_t *v = json_object_get(o, key);
	const unsigned char *s;
	size_t n = 0;

	if (!json_is_string(v))
		return false;
	s = (const unsigned char *)json_string_value(v);
	while (*s) {
		unsigned c = *s++;

		if (c >= 0x80) {
			/* Only U+0080..U+00FF (two bytes C2/C3 xx) come from put_str. */
			if ((c != 0xc2 && c != 0xc3) || (*s & 0xc0) != 0x80)
				return false;
			c = ((c & 0x1f) << 6) | (*s++ & 0x3f);
		}
		if (n + 1 >= cap)
			return false;
		dst[n++] = (char)c;
	}
	dst[n] = 0;
	return true;
}

static bool get_i64(json_t *o, const char *key, int64_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return false;
	*out = (int64_t)json_integer_value(v);
	return true;
}

static bool get_u64(json_t *o, const char *key, uint64_t max, uint64_t *out)
{
	int64_t v;

	if (!get_i64(o, key, &v) || v < 0 || (uint64_t)v > max)
		return false;
	*out = (uint64_t)v;
	return true;
}

static bool get_bool(json_t *o, const char *key, bool *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_boolean(v))
		return false;
	*out = json_is_true(v);
	return true;
}

static bool get_pos(json_t *o, struct world_vec *p)
{
	json_t *v = json_object_get(o, "position");
	json_t *x = json_object_get(v, "x"), *y = json_object_get(v, "y"),
	       *z = json_object_get(v, "z");

	if (!json_is_number(x) || !json_is_number(y) || !json_is_number(z))
		return false;
	p->x = world_norm(json_number_value(x));
	p->y = world_norm(json_number_value(y));
	p->z = world_norm(json_number_value(z));
	return true;
}

static bool decode_player(world *w, json_t *o)
{
	char id[MMO_ID_MAX + 1];
	struct world_player *p;
	uint64_t hp, seq;
	json_t *su;
	const char *k;
	json_t *v;

	if (!json_is_object(o) || !get_str(o, "id", id, sizeof(id)) || !mmo_id_valid(id) ||
	    world_pl_find(w, id))
		return false;
	p = world_pl_add(w, id);
	if (!p)
		return false;
	memset(p->skill_used_at, 0, sizeof(p->skill_used_at));
	if (!get_str(o, "name", p->name, sizeof(p->name)) ||
	    !get_str(o, "region_id", p->region_id, sizeof(p->region_id)) || !get_pos(o, &p->pos) ||
	    !get_u64(o, "hp", UINT32_MAX, &hp) || !get_bool(o, "alive", &p->alive) ||
	    !get_bool(o, "online", &p->online) || !get_i64(o, "last_move_ts", &p->last_move_ts) ||
	    !get_i64(o, "died_at", &p->died_at) || !get_u64(o, "seq", UINT64_MAX, &seq))
		return false;
	p->hp = (uint32_t)hp;
	p->seq = seq;
	su = json_object_get(o, "skill_used_at");
	if (!json_is_object(su))
		return false;
	json_object_foreach(su, k, v)
	{
		size_t i;

		if (!world_skill_find(k, &i) || !json_is_integer(v))
			return false;
		p->skill_used_at[i] = (int64_t)json_integer_value(v);
	}
	return true;
}

static bool decode_entity(world *w, json_t *o)
{
	char id[MMO_ID_MAX + 1];
	struct world_entity *e;
	uint64_t hp, seq;

	if (!json_is_object(o) || !get_str(o, "id", id, sizeof(id)) || !mmo_id_valid(id) ||
	    world_en_find(w, id))
		return false;
	e = world_en_add(w, id);
	if (!e)
		return false;
	if (!get_str(o, "type", e->type, sizeof(e->type)) ||
	    !get_str(o, "region_id", e->region_id, sizeof(e->region_id)) || !get_pos(o, &e->pos) ||
	    !get_u64(o, "hp", UINT32_MAX, &hp) || !get_u64(o, "seq", UINT64_MAX, &seq))
		return false;
	e->hp = (uint32_t)hp;
	e->seq = seq;
	return true;
}

int world_decode(const char *buf, size_t len, uint64_t seed, world **out)
{
	json_error_t jerr;
	json_t *root, *arr, *v;
	world *w = NULL;
	uint64_t format, seq;
	size_t i;
	int err = MMO_EMALFORMED;

	if (!buf || !out)
		return MMO_EINVAL;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return MMO_EMALFORMED;
	if (!get_u64(root, "format", UINT32_MAX, &format))
		goto out;
	if (format > WORLD_FORMAT) {
		err = MMO_EVERSION;
		goto out;
	}
	if (!get_u64(root, "seq", UINT64_MAX, &seq))
		goto out;
	if (world_new(seed, &w)) {
		err = MMO_ENOMEM;
		goto out;
	}
	w->seq = seq;
	arr = json_object_get(root, "players");
	if (!json_is_array(arr))
		goto out;
	json_array_foreach(arr, i, v)
	{
		if (!decode_player(w, v))
			goto out;
	}
	arr = json_object_get(root, "entities");
	if (!json_is_array(arr))
		goto out;
	json_array_foreach(arr, i, v)
	{
		if (!decode_entity(w, v))
			goto out;
	}
	*out = w;
	w = NULL;
	err = MMO_OK;
out:
	world_free(w);
	json_decref(root);
	return err;
}
