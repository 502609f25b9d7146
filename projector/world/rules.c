/* rules.c - the game rules, in one place (docs/rules.md says the same).
 *
 * world_decide() reads the state and one intent and writes the outcome
 * events; it never changes the state (world.c applies outcomes, step.c does
 * both for one event). The numbers it plays by are in tuning.c. Every
 * decision depends only on the state, the intent (its seq and ts) and the
 * world seed: randomness is SplitMix64 seeded from (seed, seq).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "world_int.h"

static bool in_bounds(const Mmo__Vec3 *v)
{
	return v->x >= world_tuning.min.x && v->x <= world_tuning.max.x &&
	       v->y >= world_tuning.min.y && v->y <= world_tuning.max.y &&
	       v->z >= world_tuning.min.z && v->z <= world_tuning.max.z;
}

static double dist2(const struct world_vec *a, double x, double y, double z)
{
	double dx = a->x - x, dy = a->y - y, dz = a->z - z;

	return dx * dx + dy * dy + dz * dz;
}

/* ---------------------------------------------------------------- rng */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng_init(uint64_t seed, uint64_t seq)
{
	uint64_t t = seq, s = seed ^ splitmix64(&t);

	(void)splitmix64(&s);
	return s;
}

/* ---------------------------------------------------------------- outcomes */

static struct world_outcome_ev *add(struct world_outcome *o, const Mmo__Event *in, const char *type,
                                    const char *player_id, const char *region_id)
{
	struct world_outcome_ev *e = &o->ev[o->n];

	snprintf(e->event_id, sizeof(e->event_id), "w:%llu:%zu", (unsigned long long)in->seq, o->n);
	world_strlcpy(e->player_id, player_id, sizeof(e->player_id));
	world_strlcpy(e->region_id, region_id, sizeof(e->region_id));
	e->id1[0] = e->id2[0] = e->detail[0] = 0;
	if (mmo_ev_init(&e->b, type, e->event_id, e->player_id, e->region_id))
		return NULL; /* a type of the table: cannot happen */
	e->b.ev.cause_seq = in->seq;
	o->n++;
	return e;
}

static int reject(struct world_outcome *o, const Mmo__Event *in, const struct world_player *p,
                  const char *reason, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int reject(struct world_outcome *o, const Mmo__Event *in, const struct world_player *p,
                  const char *reason, const char *fmt, ...)
{
	struct world_outcome_ev *e =
	    add(o, in, "world.reject", in->player_id, p ? p->region_id : "");
	va_list ap;

	if (!e)
		return MMO_EBADTYPE;
	va_start(ap, fmt);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	va_end(ap);
	e->b.body.world_reject.reason = (char *)reason;
	e->b.body.world_reject.detail = e->detail;
	o->reason = reason;
	return MMO_OK;
}

static int spawn(struct world_outcome *o, const Mmo__Event *in, struct world_player *a,
                 const struct world_vec *pos, uint32_t hp)
{
	char region[MMO_ID_MAX + 1];
	struct world_outcome_ev *e;

	world_region_of(pos, region, sizeof(region));
	e = add(o, in, "world.spawn", a->id, region);
	if (!e)
		return MMO_EBADTYPE;
	world_strlcpy(e->id1, a->id, sizeof(e->id1));
	e->b.body.world_spawn.entity_id = e->id1;
	e->b.body.world_spawn.entity_type = "player";
	e->b.body.world_spawn.hp = hp;
	mmo_ev_set_pos(&e->b, pos->x, pos->y, pos->z);
	/* What the spawn does to the player, for the rest of this decision. */
	a->pos = *pos;
	world_strlcpy(a->region_id, region, sizeof(a->region_id));
	a->hp = hp;
	a->alive = hp > 0;
	a->online = true;
	a->last_move_ts = in->ts;
	return MMO_OK;
}

static bool respawn_due(const struct world_player *a, int64_t ts)
{
	return !a->alive && ts - a->died_at >= world_tuning.respawn_delay_us;
}

/* A dead actor respawns if the delay is over (adding a world.spawn), else
 * the intent is refused. Whether the decision ends here (refused, or *err). */
static bool revive(struct world_outcome *o, const Mmo__Event *in, struct world_player *a, int *err)
{
	if (a->alive)
		return false;
	if (respawn_due(a, in->ts)) {
		*err = spawn(o, in, a, &world_tuning.spawn, world_tuning.max_hp);
		return *err != MMO_OK;
	}
	*err = reject(o, in, a, "dead", "dead until %.3f s after death (%.3f s left)",
	              world_tuning.respawn_delay_us / 1e6,
	              (double)(a->died_at + world_tuning.respawn_delay_us - in->ts) / 1e6);
	return true;
}

static int decide_login(struct world_outcome *o, const Mmo__Event *in, struct world_player *a)
{
	if (a->online)
		return reject(o, in, a, "already_online", "player %s is already online", a->id);
	if (respawn_due(a, in->ts))
		return spawn(o, in, a, &world_tuning.spawn, world_tuning.max_hp);
	struct world_vec pos = a->pos;
	return spawn(o, in, a, &pos, a->alive ? a->hp : 0);
}

static int decide_logout(struct world_outcome *o, const Mmo__Event *in, struct world_player *a)
{
	struct world_outcome_ev *e;

	if (!a->online)
		return reject(o, in, a, "not_logged_in", "player %s is not logged in", a->id);
	e = add(o, in, "world.despawn", a->id, a->region_id);
	if (!e)
		return MMO_EBADTYPE;
	world_strlcpy(e->id1, a->id, sizeof(e->id1));
	e->b.body.world_despawn.entity_id = e->id1;
	e->b.body.world_despawn.entity_type = "player";
	e->b.body.world_despawn.reason = "logout";
	return MMO_OK;
}

static int decide_move(struct world_outcome *o, const Mmo__Event *in, struct world_player *a)
{
	const Mmo__Vec3 *to = in->player_move->position;
	struct world_outcome_ev *e;
	char region[MMO_ID_MAX + 1];
	double dt, allowed, d2;
	int err = MMO_OK;

	if (!a->online)
		return reject(o, in, a, "not_logged_in", "player %s is not logged in", a->id);
	if (revive(o, in, a, &err))
		return err;
	if (!to)
		return reject(o, in, a, "invalid", "player.move without a position");
	if (!in_bounds(to))
		return reject(o, in, a, "out_of_bounds",
		              "(%.3f, %.3f, %.3f) is outside [%g, %g] x [%g, %g] x [%g, %g]", to->x,
		              to->y, to->z, world_tuning.min.x, world_tuning.max.x,
		              world_tuning.min.y, world_tuning.max.y, world_tuning.min.z,
		              world_tuning.max.z);
	dt = in->ts > a->last_move_ts ? (double)(in->ts - a->last_move_ts) / 1e6 : 0;
	allowed = world_tuning.max_speed * dt + world_tuning.move_slack;
	d2 = dist2(&a->pos, to->x, to->y, to->z);
	if (d2 > allowed * allowed)
		return reject(o, in, a, "too_fast", "distance %.3f > allowed %.3f after %.6f s",
		              sqrt(d2), allowed, dt);
	world_region_of(&(struct world_vec){to->x, to->y, to->z}, region, sizeof(region));
	e = add(o, in, "world.update", a->id, region);
	if (!e)
		return MMO_EBADTYPE;
	world_strlcpy(e->id1, a->id, sizeof(e->id1));
	world_strlcpy(e->id2, a->region_id, sizeof(e->id2));
	e->b.body.world_update.entity_id = e->id1;
	e->b.body.world_update.entity_type = "player";
	e->b.body.world_update.from_region_id = e->id2;
	mmo_ev_set_pos(&e->b, world_norm(to->x), world_norm(to->y), world_norm(to->z));
	return MMO_OK;
}

static int decide_attack(const world *w, struct world_outcome *o, const Mmo__Event *in,
                         struct world_player *a)
{
	const Mmo__CombatAttack *at = in->combat_attack;
	const struct world_skill *sk;
	const struct world_player *d;
	struct world_outcome_ev *e;
	const char *result;
	uint32_t damage = 0, hp;
	uint64_t rng;
	size_t k;
	double d2;
	int err = MMO_OK;

	if (!a->online)
		return reject(o, in, a, "not_logged_in", "player %s is not logged in", a->id);
	if (revive(o, in, a, &err))
		return err;
	sk = world_skill_find(at->skill_id, &k);
	if (!sk)
		return reject(o, in, a, "unknown_skill", "no skill '%.64s'", at->skill_id);
	if (!at->defender_id || !strcmp(at->defender_id, a->id))
		return reject(o, in, a, "invalid_target", "a player cannot attack itself");
	d = world_pl_find(w, at->defender_id);
	if (!d)
		return reject(o, in, a, "unknown_target", "no player %.64s", at->defender_id);
	if (!d->online)
		return reject(o, in, a, "target_offline", "player %s is not logged in", d->id);
	if (!d->alive)
		return reject(o, in, a, "target_dead", "player %s is dead", d->id);
	d2 = dist2(&a->pos, d->pos.x, d->pos.y, d->pos.z);
	if (d2 > sk->range * sk->range)
		return reject(o, in, a, "out_of_range", "distance %.3f > range %.3f of %s",
		              sqrt(d2), sk->range, sk->name);
	if (a->skill_used_at[k] && in->ts - a->skill_used_at[k] < sk->cooldown_us)
		return reject(o, in, a, "cooldown", "%s ready in %.3f s", sk->name,
		              (double)(a->skill_used_at[k] + sk->cooldown_us - in->ts) / 1e6);

	rng = rng_init(w->seed, in->seq);
	uint64_t roll = splitmix64(&rng) % 10000;
	if (roll < world_tuning.miss_bp) {
		result = "miss";
	} else {
		damage = sk->damage + (uint32_t)(splitmix64(&rng) % ((uint64_t)sk->spread + 1));
		if (roll < world_tuning.miss_bp + world_tuning.crit_bp) {
			result = "critical";
			damage *= world_tuning.crit_mult;
		} else {
			result = "hit";
		}
	}
	hp = d->hp > damage ? d->hp - damage : 0;

	e = add(o, in, "combat.result", a->id, a->region_id);
	if (!e)
		return MMO_EBADTYPE;
	world_strlcpy(e->id1, a->id, sizeof(e->id1));
	world_strlcpy(e->id2, d->id, sizeof(e->id2));
	e->b.body.combat_result.attacker_id = e->id1;
	e->b.body.combat_result.defender_id = e->id2;
	e->b.body.combat_result.skill_id = (char *)sk->name;
	e->b.body.combat_result.result = (char *)result;
	e->b.body.combat_result.damage = damage;
	e->b.body.combat_result.defender_hp = hp;
	if (hp > 0)
		return MMO_OK;

	e = add(o, in, "world.despawn", d->id, d->region_id);
	if (!e)
		return MMO_EBADTYPE;
	world_strlcpy(e->id1, d->id, sizeof(e->id1));
	e->b.body.world_despawn.entity_id = e->id1;
	e->b.body.world_despawn.entity_type = "player";
	e->b.body.world_despawn.reason = "death";
	return MMO_OK;
}

int world_decide(const world *w, const Mmo__Event *in, struct world_outcome *o)
{
	const struct world_player *p;
	struct world_player a;

	if (!w || !in || !o)
		return MMO_EINVAL;
	o->n = 0;
	o->reason = NULL;
	if (world_kind(in) != WORLD_INTENT)
		return MMO_EINVAL;
	p = world_pl_find(w, in->player_id);
	if (!p)
		return reject(o, in, NULL, "unknown_player", "no player %.64s", in->player_id);
	a = *p; /* the actor as this decision sees it (a respawn changes it) */
	switch (in->body_case) {
	case MMO__EVENT__BODY_PLAYER_LOGIN: return decide_login(o, in, &a);
	case MMO__EVENT__BODY_PLAYER_LOGOUT: return decide_logout(o, in, &a);
	case MMO__EVENT__BODY_PLAYER_MOVE: return decide_move(o, in, &a);
	case MMO__EVENT__BODY_COMBAT_ATTACK: return decide_attack(w, o, in, &a);
	default: return MMO_EINVAL;
	}
}
