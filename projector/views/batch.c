/* batch.c - a batch of events for a view, which players each event writes,
 * and the parking rule: an event waits behind any earlier event of one of
 * its players that is dead or parked, so a player's events are applied in
 * order or not at all. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "views_int.h"

bool views_is_player_entity(const char *t)
{
	return !t || !*t || !strcmp(t, "player");
}

size_t views_event_keys(const Mmo__Event *ev, const char *keys[2])
{
	size_t n = 0;

	switch (ev->body_case) {
	case MMO__EVENT__BODY_PLAYER_REGISTER:
		if (ev->player_id && *ev->player_id)
			keys[n++] = ev->player_id;
		break;
	case MMO__EVENT__BODY_WORLD_SPAWN:
		if (ev->world_spawn && views_is_player_entity(ev->world_spawn->entity_type) &&
		    ev->world_spawn->entity_id && *ev->world_spawn->entity_id)
			keys[n++] = ev->world_spawn->entity_id;
		break;
	case MMO__EVENT__BODY_WORLD_UPDATE:
		if (ev->world_update && views_is_player_entity(ev->world_update->entity_type) &&
		    ev->world_update->entity_id && *ev->world_update->entity_id)
			keys[n++] = ev->world_update->entity_id;
		break;
	case MMO__EVENT__BODY_WORLD_DESPAWN:
		if (ev->world_despawn && views_is_player_entity(ev->world_despawn->entity_type) &&
		    ev->world_despawn->entity_id && *ev->world_despawn->entity_id)
			keys[n++] = ev->world_despawn->entity_id;
		break;
	case MMO__EVENT__BODY_COMBAT_RESULT: {
		const Mmo__CombatResult *c = ev->combat_result;

		if (!c)
			break;
		if (c->defender_id && *c->defender_id)
			keys[n++] = c->defender_id;
		if (c->attacker_id && *c->attacker_id &&
		    (n == 0 || strcmp(c->attacker_id, keys[0])))
			keys[n++] = c->attacker_id;
		break;
	}
	default:
		break;
	}
	return n;
}

int vb_add(struct vbatch *b, const struct evlog_rec *rec)
{
	struct vev *e;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct vev *ne = realloc(b->ev, cap * sizeof(*ne));

		if (!ne)
			return MMO_ENOMEM;
		b->ev = ne;
		b->cap = cap;
	}
	e = &b->ev[b->n];
	memset(e, 0, sizeof(*e));
	e->seq = rec->seq;
	e->ts = rec->ts;
	if (evlog_rec_decode(rec, &e->ev) != MMO_OK)
		e->ev = NULL;
	if (e->ev)
		e->nkeys = views_event_keys(e->ev, e->keys);
	if (b->n == 0)
		b->first = rec->seq;
	b->last = rec->seq;
	b->n++;
	return MMO_OK;
}

void vb_clear(struct vbatch *b)
{
	for (size_t i = 0; i < b->n; i++)
		mmo_event_free(b->ev[i].ev);
	b->n = 0;
	b->first = b->last = 0;
}

void vb_free(struct vbatch *b)
{
	vb_clear(b);
	free(b->ev);
	b->ev = NULL;
	b->cap = 0;
}

void vb_dead(struct vev *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->err, sizeof(e->err), fmt, ap);
	va_end(ap);
	e->state = VEV_DEAD;
	e->to_dlq = true;
	e->behind = 0;
}

/* The latest blocking seq of key among events [0, upto), or 0. */
static uint64_t blocker(const struct vbatch *b, size_t upto, const char *key)
{
	for (size_t i = upto; i-- > 0;) {
		const struct vev *o = &b->ev[i];

		if (o->state == VEV_APPLY)
			continue;
		for (size_t k = 0; k < o->nkeys; k++) {
			if (!strcmp(o->keys[k], key))
				return o->seq;
		}
	}
	return 0;
}

void vb_cascade(struct vbatch *b)
{
	/* Quadratic in the worst case, but only over batches that hold a
	 * refused event (rare), and bounded by the batch size. */
	bool any = false;

	for (size_t i = 0; i < b->n; i++) {
		struct vev *e = &b->ev[i];

		if (e->state != VEV_APPLY) {
			any = true;
			continue;
		}
		if (!any)
			continue;
		for (size_t k = 0; k < e->nkeys; k++) {
			uint64_t s = blocker(b, i, e->keys[k]);

			if (s) {
				e->state = VEV_PARKED;
				e->to_dlq = true;
				e->behind = s;
				snprintf(e->err, sizeof(e->err), "parked behind seq %llu",
				         (unsigned long long)s);
				break;
			}
		}
	}
}

int views_fmt_double(char *buf, size_t cap, double v)
{
	int n = snprintf(buf, cap, "%.15g", v);

	if (n > 0 && (size_t)n < cap && strtod(buf, NULL) == v)
		return n;
	return snprintf(buf, cap, "%.17g", v);
}

int views_view_id(const char *name)
{
	if (!name)
		return 0;
	if (!strcmp(name, "redis"))
		return VIEW_ID_REDIS;
	if (!strcmp(name, "mongo"))
		return VIEW_ID_MONGO;
	return 0;
}

const char *views_view_name(int id)
{
	return id == VIEW_ID_REDIS ? "redis" : id == VIEW_ID_MONGO ? "mongo" : "?";
}
