/* invariants.c - the built-in invariants `mmo replay --bisect` looks for.
 *
 * State invariants (hp_range, in_bounds, region_match) are properties of
 * each player or entity, so they can be checked on one id after an event
 * that touched it, or on a whole snapshot. dead_action is a property of the
 * history: a counter kept by the fold since it started (it is not part of
 * the canonical state).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "world_int.h"

static const char *const names[] = {"hp_range", "in_bounds", "region_match", "dead_action"};

#define NINV (sizeof(names) / sizeof(names[0]))

const char *world_invariant_at(size_t i)
{
	return i < NINV ? names[i] : NULL;
}

bool world_invariant_known(const char *name)
{
	if (name && !strcmp(name, "all"))
		return true;
	for (size_t i = 0; name && i < NINV; i++) {
		if (!strcmp(names[i], name))
			return true;
	}
	return false;
}

static bool vec_in(const struct world_vec *p)
{
	const struct world_rules *r = world_rules();

	return p->x >= r->min.x && p->x <= r->max.x && p->y >= r->min.y && p->y <= r->max.y &&
	       p->z >= r->min.z && p->z <= r->max.z;
}

static bool player_ok(size_t inv, const struct world_player *p, char *why, size_t cap)
{
	char region[MMO_ID_MAX + 1];

	switch (inv) {
	case 0:
		if (p->hp > world_rules()->max_hp || p->alive != (p->hp > 0)) {
			snprintf(why, cap, "hp_range: player %s has hp %u (max %u) and is %s",
			         p->id, p->hp, world_rules()->max_hp, p->alive ? "alive" : "dead");
			return false;
		}
		return true;
	case 1:
		if (!vec_in(&p->pos)) {
			snprintf(why, cap, "in_bounds: player %s is at (%g, %g, %g)", p->id,
			         p->pos.x, p->pos.y, p->pos.z);
			return false;
		}
		return true;
	case 2:
		world_region_of(&p->pos, region, sizeof(region));
		if (strcmp(region, p->region_id)) {
			snprintf(why, cap,
			         "region_match: player %s is in %s but its position is in %s",
			         p->id, p->region_id, region);
			return false;
		}
		return true;
	default: return true;
	}
}

static bool entity_ok(size_t inv, const struct world_entity *e, char *why, size_t cap)
{
	if (inv == 1 && !vec_in(&e->pos)) {
		snprintf(why, cap, "in_bounds: entity %s is at (%g, %g, %g)", e->id, e->pos.x,
		         e->pos.y, e->pos.z);
		return false;
	}
	return true;
}

static bool holds(const world *w, size_t inv, const char *id, char *why, size_t cap)
{
	if (inv == 3) {
		if (w->dead_actions) {
			snprintf(why, cap, "dead_action: %s", w->anomaly);
			return false;
		}
		return true;
	}
	if (id) {
		const struct world_player *p = world_pl_find(w, id);
		const struct world_entity *e = world_en_find(w, id);

		return (!p || player_ok(inv, p, why, cap)) && (!e || entity_ok(inv, e, why, cap));
	}
	/* Sorted, so the reason names the smallest id that fails. */
	const struct world_player **pl = world_pl_sorted(w);
	const struct world_entity **en = world_en_sorted(w);
	bool ok = true;

	for (size_t i = 0; ok && pl && i < w->npl; i++)
		ok = player_ok(inv, pl[i], why, cap);
	for (size_t i = 0; ok && en && i < w->nen; i++)
		ok = entity_ok(inv, en[i], why, cap);
	free(pl);
	free(en);
	return ok;
}

bool world_invariant_holds(const world *w, const char *name, const char *id, char *why, size_t cap)
{
	char tmp[8];
	bool all = name && !strcmp(name, "all");

	if (!why) {
		why = tmp;
		cap = sizeof(tmp);
	}
	for (size_t i = 0; i < NINV; i++) {
		if ((all || (name && !strcmp(name, names[i]))) && !holds(w, i, id, why, cap))
			return false;
	}
	return true;
}
