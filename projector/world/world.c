/* world.c - the world's state and how events change it.
 *
 * Players and entities live in arrays indexed by id (idmap). Nothing here
 * decides anything: rules.c decides, this file only applies facts and
 * outcomes, exactly as they are written in the log (step.c does both).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/mmo_hash.h"
#include "world_int.h"

/* ---------------------------------------------------------------- idmap */

typedef const char *key_fn(const world *w, size_t pos);

static const char *pl_key(const world *w, size_t pos)
{
	return w->pl[pos].id;
}

static const char *en_key(const world *w, size_t pos)
{
	return w->en[pos].id;
}

/* The slot holding id, or the empty slot where it would go. */
static size_t map_slot(const world *w, const struct idmap *m, key_fn *key, const char *id)
{
	size_t mask = m->cap - 1, i = (size_t)mmo_fnv1a_str(id) & mask;

	while (m->slot[i] && strcmp(key(w, m->slot[i] - 1), id))
		i = (i + 1) & mask;
	return i;
}

static int map_grow(world *w, struct idmap *m, key_fn *key)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	uint32_t *old = m->slot;
	size_t oldcap = m->cap;

	m->slot = calloc(cap, sizeof(*m->slot));
	if (!m->slot) {
		m->slot = old;
		return MMO_ENOMEM;
	}
	m->cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i])
			m->slot[map_slot(w, m, key, key(w, old[i] - 1))] = old[i];
	}
	free(old);
	return MMO_OK;
}

static long map_get(const world *w, const struct idmap *m, key_fn *key, const char *id)
{
	size_t i;

	if (!m->cap || !id)
		return -1;
	i = map_slot(w, m, key, id);
	return m->slot[i] ? (long)m->slot[i] - 1 : -1;
}

/* Remove the entry of id (backward-shift deletion keeps probes intact). */
static void map_del(const world *w, struct idmap *m, key_fn *key, const char *id)
{
	size_t mask = m->cap - 1, i = map_slot(w, m, key, id), j = i;

	if (!m->slot[i])
		return;
	m->slot[i] = 0;
	m->n--;
	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (!m->slot[j])
			return;
		home = (size_t)mmo_fnv1a_str(key(w, m->slot[j] - 1)) & mask;
		/* Move j back to i if its home is not cyclically within (i, j]. */
		if ((i < j && (home <= i || home > j)) || (i > j && home <= i && home > j)) {
			m->slot[i] = m->slot[j];
			m->slot[j] = 0;
			i = j;
		}
	}
}

/* Point the entry of id at pos (the entry must exist). */
static void map_repoint(const world *w, struct idmap *m, key_fn *key, const char *id, size_t pos)
{
	m->slot[map_slot(w, m, key, id)] = (uint32_t)pos + 1;
}

/* ---------------------------------------------------------------- state */

void world_strlcpy(char *dst, const char *src, size_t cap)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= cap)
		n = cap - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = 0;
}

int world_new(uint64_t seed, world **out)
{
	world *w = calloc(1, sizeof(*w));

	if (!w)
		return MMO_ENOMEM;
	w->seed = seed;
	*out = w;
	return MMO_OK;
}

void world_free(world *w)
{
	if (!w)
		return;
	free(w->pl);
	free(w->plmap.slot);
	free(w->en);
	free(w->enmap.slot);
	free(w);
}

uint64_t world_seed(const world *w)
{
	return w->seed;
}

uint64_t world_seq(const world *w)
{
	return w->seq;
}

void world_set_seq(world *w, uint64_t seq)
{
	w->seq = seq;
}

size_t world_player_count(const world *w)
{
	return w->npl;
}

size_t world_entity_count(const world *w)
{
	return w->nen;
}

struct world_player *world_pl_find(const world *w, const char *id)
{
	long i = map_get(w, &w->plmap, pl_key, id);

	return i < 0 ? NULL : &w->pl[i];
}

struct world_entity *world_en_find(const world *w, const char *id)
{
	long i = map_get(w, &w->enmap, en_key, id);

	return i < 0 ? NULL : &w->en[i];
}

struct world_player *world_pl_add(world *w, const char *id)
{
	const struct world_rules *r = world_rules();
	struct world_player *p;

	if (w->npl >= UINT32_MAX - 1)
		return NULL;
	if ((w->plmap.n + 1) * 2 > w->plmap.cap && map_grow(w, &w->plmap, pl_key))
		return NULL;
	if (w->npl == w->cappl) {
		size_t cap = w->cappl ? w->cappl * 2 : 64;
		struct world_player *n = realloc(w->pl, cap * sizeof(*n));

		if (!n)
			return NULL;
		w->pl = n;
		w->cappl = cap;
	}
	p = &w->pl[w->npl];
	memset(p, 0, sizeof(*p));
	world_strlcpy(p->id, id, sizeof(p->id));
	p->pos = r->spawn;
	world_region_of(&p->pos, p->region_id, sizeof(p->region_id));
	p->hp = r->max_hp;
	p->alive = true;
	w->plmap.slot[map_slot(w, &w->plmap, pl_key, p->id)] = (uint32_t)w->npl + 1;
	w->plmap.n++;
	w->npl++;
	return p;
}

struct world_entity *world_en_add(world *w, const char *id)
{
	struct world_entity *e;

	if (w->nen >= UINT32_MAX - 1)
		return NULL;
	if ((w->enmap.n + 1) * 2 > w->enmap.cap && map_grow(w, &w->enmap, en_key))
		return NULL;
	if (w->nen == w->capen) {
		size_t cap = w->capen ? w->capen * 2 : 16;
		struct world_entity *n = realloc(w->en, cap * sizeof(*n));

		if (!n)
			return NULL;
		w->en = n;
		w->capen = cap;
	}
	e = &w->en[w->nen];
	memset(e, 0, sizeof(*e));
	world_strlcpy(e->id, id, sizeof(e->id));
	w->enmap.slot[map_slot(w, &w->enmap, en_key, e->id)] = (uint32_t)w->nen + 1;
	w->enmap.n++;
	w->nen++;
	return e;
}

void world_en_remove(world *w, const char *id)
{
	long i = map_get(w, &w->enmap, en_key, id);

	if (i < 0)
		return;
	map_del(w, &w->enmap, en_key, id);
	if ((size_t)i != w->nen - 1) {
		w->en[i] = w->en[w->nen - 1];
		map_repoint(w, &w->enmap, en_key, w->en[i].id, (size_t)i);
	}
	w->nen--;
}

static int cmp_pl(const void *a, const void *b)
{
	return strcmp((*(const struct world_player *const *)a)->id,
	              (*(const struct world_player *const *)b)->id);
}

static int cmp_en(const void *a, const void *b)
{
	return strcmp((*(const struct world_entity *const *)a)->id,
	              (*(const struct world_entity *const *)b)->id);
}

const struct world_player **world_pl_sorted(const world *w)
{
	const struct world_player **v = malloc((w->npl ? w->npl : 1) * sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < w->npl; i++)
		v[i] = &w->pl[i];
	qsort(v, w->npl, sizeof(*v), cmp_pl);
	return v;
}

const struct world_entity **world_en_sorted(const world *w)
{
	const struct world_entity **v = malloc((w->nen ? w->nen : 1) * sizeof(*v));

	if (!v)
		return NULL;
	for (size_t i = 0; i < w->nen; i++)
		v[i] = &w->en[i];
	qsort(v, w->nen, sizeof(*v), cmp_en);
	return v;
}

int world_player_get(const world *w, const char *id, struct world_player *out)
{
	const struct world_player *p = world_pl_find(w, id);

	if (!p)
		return MMO_ENOTFOUND;
	*out = *p;
	return MMO_OK;
}

uint64_t world_anomalies(const world *w, uint64_t *last_seq, const char **what)
{
	if (last_seq)
		*last_seq = w->anomaly_seq;
	if (what)
		*what = w->anomaly;
	return w->anomalies;
}

static void anomaly(world *w, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void anomaly(world *w, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	w->anomalies++;
	w->anomaly_seq = seq;
	va_start(ap, fmt);
	vsnprintf(w->anomaly, sizeof(w->anomaly), fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- kinds */

enum world_kind world_kind(const Mmo__Event *ev)
{
	if (!ev)
		return WORLD_IGNORED;
	switch (ev->body_case) {
	case MMO__EVENT__BODY_PLAYER_REGISTER: return WORLD_FACT;
	case MMO__EVENT__BODY_PLAYER_LOGIN:
	case MMO__EVENT__BODY_PLAYER_LOGOUT:
	case MMO__EVENT__BODY_PLAYER_MOVE:
	case MMO__EVENT__BODY_COMBAT_ATTACK: return WORLD_INTENT;
	case MMO__EVENT__BODY_WORLD_SPAWN:
	case MMO__EVENT__BODY_WORLD_DESPAWN:
	case MMO__EVENT__BODY_WORLD_UPDATE:
	case MMO__EVENT__BODY_COMBAT_RESULT:
	case MMO__EVENT__BODY_WORLD_REJECT: return ev->cause_seq ? WORLD_OUTCOME : WORLD_FACT;
	default: return WORLD_IGNORED;
	}
}

/* ---------------------------------------------------------------- apply */

static bool is_player_type(const char *t)
{
	return !t || !*t || !strcmp(t, "player");
}

static void set_pos(struct world_vec *dst, const Mmo__Vec3 *v)
{
	if (!v)
		return;
	dst->x = world_norm(v->x);
	dst->y = world_norm(v->y);
	dst->z = world_norm(v->z);
}

/* The region an outcome names, else the region of the position. */
static void set_region(char *dst, size_t cap, const char *given, const struct world_vec *pos)
{
	if (given && *given)
		world_strlcpy(dst, given, cap);
	else
		world_region_of(pos, dst, cap);
}

/* Apply an outcome-type event. seq is the seq it is applied at, now the
 * time it happens at, actor the player whose intent it answers (or NULL). */
static int apply_body(world *w, const Mmo__Event *ev, uint64_t seq, int64_t now, const char *actor)
{
	struct world_player *p;
	struct world_entity *e;

	switch (ev->body_case) {
	case MMO__EVENT__BODY_PLAYER_REGISTER:
		if (world_pl_find(w, ev->player_id))
			return MMO_OK; /* the account exists: the first registration stands */
		if (!mmo_id_valid(ev->player_id))
			return MMO_EINVAL;
		p = world_pl_add(w, ev->player_id);
		if (!p)
			return MMO_ENOMEM;
		world_strlcpy(p->name, ev->player_register->username, sizeof(p->name));
		p->seq = seq;
		return MMO_OK;

	case MMO__EVENT__BODY_WORLD_SPAWN: {
		const Mmo__WorldSpawn *s = ev->world_spawn;

		if (is_player_type(s->entity_type)) {
			p = world_pl_find(w, s->entity_id);
			if (!p) {
				anomaly(w, seq, "spawn of unknown player %s", s->entity_id);
				return MMO_OK;
			}
			set_pos(&p->pos, s->position);
			set_region(p->region_id, sizeof(p->region_id), ev->region_id, &p->pos);
			p->hp = s->hp;
			p->alive = s->hp > 0;
			p->online = true;
			p->last_move_ts = now;
			p->seq = seq;
			return MMO_OK;
		}
		if (!mmo_id_valid(s->entity_id))
			return MMO_EINVAL;
		e = world_en_find(w, s->entity_id);
		if (!e && !(e = world_en_add(w, s->entity_id)))
			return MMO_ENOMEM;
		world_strlcpy(e->type, s->entity_type, sizeof(e->type));
		set_pos(&e->pos, s->position);
		set_region(e->region_id, sizeof(e->region_id), ev->region_id, &e->pos);
		e->hp = s->hp;
		e->seq = seq;
		return MMO_OK;
	}

	case MMO__EVENT__BODY_WORLD_DESPAWN: {
		const Mmo__WorldDespawn *d = ev->world_despawn;

		if (is_player_type(d->entity_type)) {
			p = world_pl_find(w, d->entity_id);
			if (!p) {
				anomaly(w, seq, "despawn of unknown player %s", d->entity_id);
				return MMO_OK;
			}
			if (d->reason && !strcmp(d->reason, "death")) {
				p->alive = false;
				p->hp = 0;
				p->died_at = now;
			} else {
				p->online = false;
			}
			p->seq = seq;
			return MMO_OK;
		}
		world_en_remove(w, d->entity_id);
		return MMO_OK;
	}

	case MMO__EVENT__BODY_WORLD_UPDATE: {
		const Mmo__WorldUpdate *u = ev->world_update;

		if (is_player_type(u->entity_type)) {
			p = world_pl_find(w, u->entity_id);
			if (!p) {
				anomaly(w, seq, "update of unknown player %s", u->entity_id);
				return MMO_OK;
			}
			if (actor && !strcmp(actor, p->id) && !p->alive) {
				w->dead_actions++;
				anomaly(w, seq, "move by dead player %s", p->id);
			}
			set_pos(&p->pos, u->position);
			set_region(p->region_id, sizeof(p->region_id), ev->region_id, &p->pos);
			p->last_move_ts = now;
			p->seq = seq;
			return MMO_OK;
		}
		e = world_en_find(w, u->entity_id);
		if (!e) {
			anomaly(w, seq, "update of unknown entity %s", u->entity_id);
			return MMO_OK;
		}
		set_pos(&e->pos, u->position);
		set_region(e->region_id, sizeof(e->region_id), ev->region_id, &e->pos);
		e->seq = seq;
		return MMO_OK;
	}

	case MMO__EVENT__BODY_COMBAT_RESULT: {
		const Mmo__CombatResult *c = ev->combat_result;
		struct world_player *a = world_pl_find(w, c->attacker_id);
		struct world_player *d = world_pl_find(w, c->defender_id);
		size_t skill;

		if (!a || !d) {
			anomaly(w, seq, "combat between unknown players %s, %s", c->attacker_id,
			        c->defender_id);
			return MMO_OK;
		}
		if (!a->alive) {
			w->dead_actions++;
			anomaly(w, seq, "attack by dead player %s", a->id);
		} else if (!d->alive)
			anomaly(w, seq, "attack on dead player %s", d->id);
		if (world_skill_find(c->skill_id, &skill)) {
			a->skill_used_at[skill] = now;
			a->seq = seq;
		}
		d->hp = c->defender_hp;
		d->seq = seq;
		return MMO_OK;
	}

	case MMO__EVENT__BODY_WORLD_REJECT: return MMO_OK; /* refused: nothing changes */

	default: return MMO_OK;
	}
}

int world_apply_fact(world *w, const Mmo__Event *ev)
{
	if (!w || !ev)
		return MMO_EINVAL;
	if (world_kind(ev) != WORLD_FACT)
		return MMO_EINVAL;
	return apply_body(w, ev, ev->seq, ev->ts, NULL);
}

int world_apply_outcome(world *w, const Mmo__Event *outcome, const Mmo__Event *intent)
{
	if (!w || !outcome || !intent)
		return MMO_EINVAL;
	if (outcome->body_case == MMO__EVENT__BODY_PLAYER_REGISTER)
		return MMO_EINVAL;
	return apply_body(w, outcome, intent->seq, intent->ts, intent->player_id);
}
