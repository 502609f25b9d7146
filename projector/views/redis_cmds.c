/* redis_cmds.c - what one event writes in the Redis view: the batch's
 * player and region state (as the batch changes it) and the HSET / SADD /
 * SREM / PUBLISH commands of each event, the seq guard applied per player
 * (docs/views.md). The round trips that send them are redis_view.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"
#include "schemas/mmo_hash.h"

/* ---------------------------------------------------------------- state */

/* Ready for up to n entries. */
int rv_sidx_reset(struct sidx *x, size_t n)
{
	size_t cap = 64;

	while (cap < n * 2)
		cap *= 2;
	if (cap > x->cap) {
		uint32_t *sl = realloc(x->slot, cap * sizeof(*sl));

		if (!sl)
			return MMO_ENOMEM;
		x->slot = sl;
		x->cap = cap;
	}
	memset(x->slot, 0, x->cap * sizeof(*x->slot));
	return MMO_OK;
}

/* The slot of key: filled (its position + 1) or empty (0). */
static uint32_t *sidx_slot(struct sidx *x, const char *key, const char *(*name)(void *, uint32_t),
                           void *arg)
{
	size_t mask = x->cap - 1, i = (size_t)mmo_fnv1a_str(key) & mask;

	while (x->slot[i] && strcmp(name(arg, x->slot[i] - 1), key))
		i = (i + 1) & mask;
	return &x->slot[i];
}

static const char *pl_name(void *arg, uint32_t i)
{
	return ((struct rview *)arg)->pl[i].id;
}

static const char *rg_name(void *arg, uint32_t i)
{
	return ((struct rview *)arg)->rg[i].id;
}

struct pl *rv_pl_find(struct rview *rv, const char *id)
{
	uint32_t *sl = sidx_slot(&rv->plx, id, pl_name, rv);

	return *sl ? &rv->pl[*sl - 1] : NULL;
}

/* Add id (if new). The table holds at most the batch's keys: sized by
 * pl_reset. */
int rv_pl_add(struct rview *rv, const char *id)
{
	uint32_t *sl = sidx_slot(&rv->plx, id, pl_name, rv);
	struct pl *p;

	if (*sl)
		return MMO_OK;
	p = &rv->pl[rv->npl];
	memset(p, 0, sizeof(*p));
	p->id = id;
	*sl = (uint32_t)++rv->npl;
	return MMO_OK;
}

int rv_pl_reset(struct rview *rv, size_t n)
{
	struct pl *p = views_grow(rv->pl, &rv->plcap, n ? n : 1, sizeof(*p));

	if (!p)
		return MMO_ENOMEM;
	rv->pl = p;
	rv->npl = 0;
	return rv_sidx_reset(&rv->plx, n);
}

struct rg *rv_rg_get(struct rview *rv, const char *id)
{
	uint32_t *sl = sidx_slot(&rv->rgx, id, rg_name, rv);
	struct rg *r;

	if (*sl)
		return &rv->rg[*sl - 1];
	if (rv->nrg * 2 + 2 > rv->rgx.cap)
		return NULL; /* sized by build() for every region a batch can name */
	r = views_grow(rv->rg, &rv->rgcap, rv->nrg + 1, sizeof(*r));
	if (!r)
		return NULL;
	rv->rg = r;
	r = &rv->rg[rv->nrg];
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%s", id);
	/* the slot may have moved only if the table did, and it did not */
	*sl = (uint32_t)++rv->nrg;
	return r;
}

/* ---------------------------------------------------------------- the fold */

void rv_key_player(char *buf, size_t cap, const char *id)
{
	snprintf(buf, cap, "mmo:player:%s", id);
}

/* The region an event puts a player in: its own, else where it was. */
static const char *new_region(const Mmo__Event *ev, const struct pl *p)
{
	return ev->region_id && *ev->region_id ? ev->region_id : p->s_region;
}

/* Move p between region sets as its online state and region change. */
static int membership(struct rview *rv, struct resp *c, int owner, struct pl *p, bool online,
                      const char *region)
{
	char key[MMO_ID_MAX + 32];
	bool was = p->s_online && p->s_region[0];
	bool now = online && region[0];

	if (was && (!now || strcmp(p->s_region, region))) {
		if (!rv_rg_get(rv, p->s_region))
			return MMO_ENOMEM;
		snprintf(key, sizeof(key), "mmo:region:%s:players", p->s_region);
		resp_cmd(c, owner);
		resp_args(c, "SREM");
		resp_args(c, key);
		resp_args(c, p->id);
	}
	if (now) {
		if (!rv_rg_get(rv, region))
			return MMO_ENOMEM;
		snprintf(key, sizeof(key), "mmo:region:%s:players", region);
		resp_cmd(c, owner);
		resp_args(c, "SADD");
		resp_args(c, key);
		resp_args(c, p->id);
	}
	return MMO_OK;
}

static void hset_start(struct resp *c, int owner, const struct pl *p, uint64_t seq)
{
	char key[MMO_ID_MAX + 16];

	rv_key_player(key, sizeof(key), p->id);
	resp_cmd(c, owner);
	resp_args(c, "HSET");
	resp_args(c, key);
	resp_args(c, "seq");
	resp_argf(c, "%llu", (unsigned long long)seq);
}

/* The last field of a player's HSET: how many events its hash has folded
 * (read in step 1, so no HINCRBY is needed: the watch keeps it exact). */
static void count_event(struct resp *c, struct pl *p)
{
	resp_args(c, "events");
	resp_argf(c, "%llu", (unsigned long long)++p->s_events);
}

static void set_pos(struct resp *c, const Mmo__Vec3 *v)
{
	resp_args(c, "x");
	resp_argd(c, v ? v->x : 0);
	resp_args(c, "y");
	resp_argd(c, v ? v->y : 0);
	resp_args(c, "z");
	resp_argd(c, v ? v->z : 0);
}

static void publish(struct resp *c, int owner, const char *region, const char *json, size_t len)
{
	char ch[MMO_ID_MAX + 16];

	snprintf(ch, sizeof(ch), "mmo:region:%s", region);
	resp_cmd(c, owner);
	resp_args(c, "PUBLISH");
	resp_args(c, ch);
	resp_arg(c, json, len);
}

/* The writes of one event (index i). *skipped: every player part was
 * already in the store (nothing written, nothing published). */
int rv_event_cmds(struct rview *rv, struct resp *c, int i, const struct vev *e, const char *json,
                  size_t jlen, bool *skipped)
{
	const Mmo__Event *ev = e->ev;
	struct pl *p = NULL, *q = NULL;
	const char *region;
	int err = MMO_OK;

	*skipped = false;
	if (e->nkeys > 0) {
		bool any = false;

		for (size_t k = 0; k < e->nkeys; k++) {
			struct pl *x = rv_pl_find(rv, e->keys[k]);

			if (x && x->s_seq < e->seq)
				any = true;
		}
		if (!any) {
			*skipped = true;
			return MMO_OK;
		}
		p = rv_pl_find(rv, e->keys[0]);
		if (p && p->s_seq >= e->seq)
			p = NULL; /* that part is already in the store */
	}

	switch (ev->body_case) {
	case MMO__EVENT__BODY_PLAYER_REGISTER:
		if (!p || p->s_exists)
			break; /* the first registration stands */
		hset_start(c, i, p, e->seq);
		resp_args(c, "username");
		resp_args(c, ev->player_register && ev->player_register->username
		                 ? ev->player_register->username
		                 : "");
		resp_args(c, "region_id");
		resp_args(c, "");
		set_pos(c, NULL);
		resp_args(c, "hp");
		resp_args(c, "0");
		resp_args(c, "online");
		resp_args(c, "0");
		count_event(c, p);
		p->s_exists = true;
		p->s_seq = e->seq;
		break;

	case MMO__EVENT__BODY_WORLD_SPAWN:
		if (!p)
			break;
		region = new_region(ev, p);
		err = membership(rv, c, i, p, true, region);
		hset_start(c, i, p, e->seq);
		resp_args(c, "region_id");
		resp_args(c, region);
		set_pos(c, ev->world_spawn->position);
		resp_args(c, "hp");
		resp_argf(c, "%u", ev->world_spawn->hp);
		resp_args(c, "online");
		resp_args(c, "1");
		count_event(c, p);
		if (region != p->s_region)
			snprintf(p->s_region, sizeof(p->s_region), "%s", region);
		p->s_online = true;
		p->s_exists = true;
		p->s_seq = e->seq;
		break;

	case MMO__EVENT__BODY_WORLD_UPDATE:
		if (!p)
			break;
		region = new_region(ev, p);
		err = membership(rv, c, i, p, p->s_online, region);
		hset_start(c, i, p, e->seq);
		resp_args(c, "region_id");
		resp_args(c, region);
		set_pos(c, ev->world_update->position);
		count_event(c, p);
		if (region != p->s_region)
			snprintf(p->s_region, sizeof(p->s_region), "%s", region);
		p->s_exists = true;
		p->s_seq = e->seq;
		break;

	case MMO__EVENT__BODY_WORLD_DESPAWN: {
		bool death;

		if (!p)
			break;
		death = ev->world_despawn->reason && !strcmp(ev->world_despawn->reason, "death");
		if (!death)
			err = membership(rv, c, i, p, false, p->s_region);
		hset_start(c, i, p, e->seq);
		if (death) {
			resp_args(c, "hp");
			resp_args(c, "0");
		} else {
			resp_args(c, "online");
			resp_args(c, "0");
			p->s_online = false;
		}
		count_event(c, p);
		p->s_exists = true;
		p->s_seq = e->seq;
		break;
	}

	case MMO__EVENT__BODY_COMBAT_RESULT:
		/* keys[0] is the defender (its hp), keys[1] the attacker (its seq:
		 * the world marks the skill used). */
		if (p) {
			hset_start(c, i, p, e->seq);
			resp_args(c, "hp");
			resp_argf(c, "%u", ev->combat_result->defender_hp);
			count_event(c, p);
			p->s_exists = true;
			p->s_seq = e->seq;
		}
		if (e->nkeys > 1 && (q = rv_pl_find(rv, e->keys[1])) && q->s_seq < e->seq) {
			hset_start(c, i, q, e->seq);
			count_event(c, q);
			q->s_exists = true;
			q->s_seq = e->seq;
		}
		break;

	default: break;
	}
	if (err)
		return err;
	if (ev->region_id && *ev->region_id) {
		publish(c, i, ev->region_id, json, jlen);
		if (ev->body_case == MMO__EVENT__BODY_WORLD_UPDATE &&
		    ev->world_update->from_region_id && *ev->world_update->from_region_id &&
		    strcmp(ev->world_update->from_region_id, ev->region_id))
			publish(c, i, ev->world_update->from_region_id, json, jlen);
	}
	return MMO_OK;
}
