/* tuning.c - the numbers the game is played by: bounds, regions, speeds,
 * hit points, the skills (docs/rules.md). A leaf: the state (world.c) and the
 * rules (rules.c) both read it, it reads neither.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "world_int.h"

/* A test build (-DMMO_WORLD_ALTERED_RULES) changes one rule on purpose, so
 * tests can prove that `mmo replay --verify` finds the divergence. */
#ifdef MMO_WORLD_ALTERED_RULES
#define PUNCH_DAMAGE 6
#else
#define PUNCH_DAMAGE 5
#endif

const struct world_rules world_tuning = {
    .min = {0, 0, 0},
    .max = {10000, 10000, 1000},
    .region_size = 500,
    .spawn = {5000, 5000, 0},
    .max_speed = 10,
    .move_slack = 1,
    .max_hp = 100,
    .respawn_delay_us = 10 * 1000000LL,
    .miss_bp = 1000,
    .crit_bp = 1000,
    .crit_mult = 2,
};

/* Sorted by name; the index is a player's skill_used_at slot: append only. */
static const struct world_skill skills[] = {
    {"fireball", 20.0, 3000000, 25, 10},
    {"punch", 2.0, 500000, PUNCH_DAMAGE, 2},
    {"slash", 3.0, 1000000, 12, 6},
};

#define NSKILLS (sizeof(skills) / sizeof(skills[0]))
_Static_assert(NSKILLS <= WORLD_SKILL_MAX, "too many skills for world_player");

const struct world_rules *world_rules(void)
{
	return &world_tuning;
}

const struct world_skill *world_skill_at(size_t i)
{
	return i < NSKILLS ? &skills[i] : NULL;
}

const struct world_skill *world_skill_find(const char *name, size_t *index)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < NSKILLS; i++) {
		if (!strcmp(skills[i].name, name)) {
			if (index)
				*index = i;
			return &skills[i];
		}
	}
	return NULL;
}

static int cell(double v, double min, double max)
{
	int n = (int)ceil((max - min) / world_tuning.region_size);

	if (!(v >= min)) /* also NaN */
		return 0;
	if (v >= max)
		return n - 1;
	int c = (int)((v - min) / world_tuning.region_size);
	return c >= n ? n - 1 : c;
}

void world_region_of(const struct world_vec *p, char *buf, size_t cap)
{
	snprintf(buf, cap, "r_%d_%d", cell(p->x, world_tuning.min.x, world_tuning.max.x),
	         cell(p->y, world_tuning.min.y, world_tuning.max.y));
}
