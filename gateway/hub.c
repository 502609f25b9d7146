/* hub.c - who gets which event: region subscriptions and a spatial grid per
 * region. Loop thread only: no locks.
 *
 *   regions  region id -> its subscribers, and those whose player's
 *            position is not known yet
 *   players  player id -> its sockets, and where the player stands (kept
 *            for every player whose position the bus showed, so a socket
 *            that opens later knows it at once)
 *   cells    (region, cx, cy) -> the subscribers of the region whose player
 *            stands in that cell; a cell is aoi_radius wide, so everything
 *            within the radius of a point is in its cell or the 8 around it
 *
 * A move costs the sockets in 9 cells, not the region's population:
 *   world.update of a player: the region's subscribers within aoi_radius
 *     (x, y) of the new position, plus those whose position is unknown;
 *   world.reject: only the rejected player's sockets (subscribed there);
 *   anything else: every subscriber of the region.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "schemas/mmo_hash.h"
#include "schemas/mmo_util.h"

struct cvec {
	struct rt_conn **v;
	size_t n, cap;
};

struct hub_region {
	char id[MMO_ID_MAX + 1];
	struct cvec subs, unpos;
	struct hub_region *next;
};

struct hub_cell {
	const struct hub_region *r;
	int64_t cx, cy;
	struct cvec v;
	struct hub_cell *next;
};

struct hub_player {
	char id[MMO_ID_MAX + 1];
	struct cvec v;
	bool known;
	double x, y;
	int64_t cx, cy;
	struct hub_player *next;
};

struct hub {
	gw *g;
	double cell;
	struct hub_region **rb;
	struct hub_player **pb;
	struct hub_cell **cb;
	size_t nrb, npb, ncb;
	struct cvec all;
};

static int cv_add(struct cvec *v, struct rt_conn *c)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		struct rt_conn **p = realloc(v->v, cap * sizeof(*p));

		if (!p)
			return MMO_ENOMEM;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n++] = c;
	return MMO_OK;
}

static void cv_del(struct cvec *v, struct rt_conn *c)
{
	for (size_t i = v->n; i-- > 0;) {
		if (v->v[i] == c) {
			v->v[i] = v->v[--v->n];
			return;
		}
	}
}

static uint64_t cell_hash(const struct hub_region *r, int64_t cx, int64_t cy)
{
	uint64_t h = (uint64_t)(uintptr_t)r * 0x9E3779B97F4A7C15ULL;

	h ^= (uint64_t)cx * 0xC2B2AE3D27D4EB4FULL;
	h ^= (uint64_t)cy * 0x165667B19E3779F9ULL;
	return h ^ (h >> 29);
}

static int64_t cell_of(const struct hub *h, double v)
{
	double c = floor(v / h->cell);

	if (!(c < 1e15))
		return (int64_t)1e15;
	if (c < -1e15)
		return (int64_t)-1e15;
	return (int64_t)c;
}

int hub_new(gw *g, struct hub **out)
{
	struct hub *h = calloc(1, sizeof(*h));

	if (!h)
		return MMO_ENOMEM;
	h->g = g;
	h->cell = g->o.aoi_radius;
	h->nrb = 1024;
	h->npb = 65536;
	h->ncb = 65536;
	h->rb = calloc(h->nrb, sizeof(*h->rb));
	h->pb = calloc(h->npb, sizeof(*h->pb));
	h->cb = calloc(h->ncb, sizeof(*h->cb));
	if (!h->rb || !h->pb || !h->cb) {
		hub_free(h);
		return MMO_ENOMEM;
	}
	*out = h;
	return MMO_OK;
}

void hub_free(struct hub *h)
{
	if (!h)
		return;
	for (size_t i = 0; h->rb && i < h->nrb; i++) {
		for (struct hub_region *r = h->rb[i], *n; r; r = n) {
			n = r->next;
			free(r->subs.v);
			free(r->unpos.v);
			free(r);
		}
	}
	for (size_t i = 0; h->pb && i < h->npb; i++) {
		for (struct hub_player *p = h->pb[i], *n; p; p = n) {
			n = p->next;
			free(p->v.v);
			free(p);
		}
	}
	for (size_t i = 0; h->cb && i < h->ncb; i++) {
		for (struct hub_cell *c = h->cb[i], *n; c; c = n) {
			n = c->next;
			free(c->v.v);
			free(c);
		}
	}
	free(h->rb);
	free(h->pb);
	free(h->cb);
	free(h->all.v);
	free(h);
}

/* ---------------------------------------------------------------- lookups */

static struct hub_region *region_find(struct hub *h, const char *id, bool make)
{
	struct hub_region **pp = &h->rb[mmo_fnv1a_str(id) % h->nrb], *r;

	for (r = *pp; r; r = r->next) {
		if (!strcmp(r->id, id))
			return r;
	}
	if (!make || !(r = calloc(1, sizeof(*r))))
		return NULL;
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->next = *pp;
	*pp = r;
	return r;
}

static void region_tidy(struct hub *h, struct hub_region *r)
{
	struct hub_region **pp = &h->rb[mmo_fnv1a_str(r->id) % h->nrb];

	if (r->subs.n || r->unpos.n)
		return;
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			free(r->subs.v);
			free(r->unpos.v);
			free(r);
			return;
		}
	}
}

static struct hub_player *player_find(struct hub *h, const char *id, bool make)
{
	struct hub_player **pp = &h->pb[mmo_fnv1a_str(id) % h->npb], *p;

	for (p = *pp; p; p = p->next) {
		if (!strcmp(p->id, id))
			return p;
	}
	if (!make || !(p = calloc(1, sizeof(*p))))
		return NULL;
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->next = *pp;
	*pp = p;
	return p;
}

static void player_tidy(struct hub *h, struct hub_player *p)
{
	struct hub_player **pp = &h->pb[mmo_fnv1a_str(p->id) % h->npb];

	if (p->v.n || p->known)
		return; /* a known position is kept for the player's next socket */
	for (; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			free(p->v.v);
			free(p);
			return;
		}
	}
}

static struct hub_cell *cell_find(struct hub *h, const struct hub_region *r, int64_t cx, int64_t cy,
                                  bool make)
{
	struct hub_cell **pp = &h->cb[cell_hash(r, cx, cy) % h->ncb], *c;

	for (c = *pp; c; c = c->next) {
		if (c->r == r && c->cx == cx && c->cy == cy)
			return c;
	}
	if (!make || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->r = r;
	c->cx = cx;
	c->cy = cy;
	c->next = *pp;
	*pp = c;
	return c;
}

static void cell_leave(struct hub *h, struct hub_cell *cell, struct rt_conn *c)
{
	struct hub_cell **pp;

	cv_del(&cell->v, c);
	if (cell->v.n)
		return;
	for (pp = &h->cb[cell_hash(cell->r, cell->cx, cell->cy) % h->ncb]; *pp; pp = &(*pp)->next) {
		if (*pp == cell) {
			*pp = cell->next;
			free(cell->v.v);
			free(cell);
			return;
		}
	}
}

/* ---------------------------------------------------------------- membership */

/* Put c in the cell of its player's position in its i-th region. */
static void place(struct hub *h, struct rt_conn *c, size_t i)
{
	struct hub_player *p = c->pl;
	struct hub_cell *cell;

	if (!p->known)
		return;
	cell = cell_find(h, c->reg[i], p->cx, p->cy, true);
	if (cell && cv_add(&cell->v, c) == MMO_OK)
		c->cell[i] = cell;
}

int hub_register(struct hub *h, struct rt_conn *c)
{
	struct hub_player *p = player_find(h, c->auth.sub, true);

	if (!p || cv_add(&p->v, c)) {
		if (p)
			player_tidy(h, p);
		return MMO_ENOMEM;
	}
	if (cv_add(&h->all, c)) {
		cv_del(&p->v, c);
		player_tidy(h, p);
		return MMO_ENOMEM;
	}
	c->pl = p;
	return MMO_OK;
}

static void leave(struct hub *h, struct rt_conn *c, size_t i)
{
	struct hub_region *r = c->reg[i];

	if (c->cell[i])
		cell_leave(h, c->cell[i], c);
	cv_del(&r->subs, c);
	if (!c->pl->known)
		cv_del(&r->unpos, c);
	region_tidy(h, r);
	c->reg[i] = c->reg[c->nreg - 1];
	c->cell[i] = c->cell[c->nreg - 1];
	c->nreg--;
}

void hub_unregister(struct hub *h, struct rt_conn *c)
{
	if (!c->pl)
		return;
	while (c->nreg)
		leave(h, c, c->nreg - 1);
	cv_del(&c->pl->v, c);
	player_tidy(h, c->pl);
	c->pl = NULL;
	cv_del(&h->all, c);
}

int hub_subscribe(struct hub *h, struct rt_conn *c, const char *region)
{
	struct hub_region *r;

	for (size_t i = 0; i < c->nreg; i++) {
		if (!strcmp(c->reg[i]->id, region))
			return MMO_OK;
	}
	if (c->nreg == RT_REGIONS_MAX)
		return MMO_EFULL;
	r = region_find(h, region, true);
	if (!r)
		return MMO_ENOMEM;
	if (cv_add(&r->subs, c) || (!c->pl->known && cv_add(&r->unpos, c))) {
		cv_del(&r->subs, c);
		region_tidy(h, r);
		return MMO_ENOMEM;
	}
	c->reg[c->nreg] = r;
	c->cell[c->nreg] = NULL;
	c->nreg++;
	place(h, c, c->nreg - 1);
	return MMO_OK;
}

int hub_unsubscribe(struct hub *h, struct rt_conn *c, const char *region)
{
	for (size_t i = 0; i < c->nreg; i++) {
		if (!strcmp(c->reg[i]->id, region)) {
			leave(h, c, i);
			return MMO_OK;
		}
	}
	return MMO_ENOTFOUND;
}

bool hub_player_known(struct hub *h, const char *player)
{
	struct hub_player *p = player_find(h, player, false);

	return p && p->known;
}

void hub_player_pos(struct hub *h, const char *player, double x, double y)
{
	struct hub_player *p = isfinite(x) && isfinite(y) ? player_find(h, player, true) : NULL;
	int64_t cx, cy;
	bool was;

	if (!p || !isfinite(x) || !isfinite(y))
		return;
	cx = cell_of(h, x);
	cy = cell_of(h, y);
	was = p->known;
	p->x = x;
	p->y = y;
	if (was && cx == p->cx && cy == p->cy)
		return;
	p->known = true;
	p->cx = cx;
	p->cy = cy;
	for (size_t k = 0; k < p->v.n; k++) {
		struct rt_conn *c = p->v.v[k];

		for (size_t i = 0; i < c->nreg; i++) {
			if (c->cell[i]) {
				cell_leave(h, c->cell[i], c);
				c->cell[i] = NULL;
			}
			if (!was)
				cv_del(&c->reg[i]->unpos, c);
			place(h, c, i);
		}
	}
}

/* ---------------------------------------------------------------- fan-out */

void hub_deliver(struct hub *h, const struct rt_event_meta *meta, struct gw_msg *m)
{
	struct hub_region *r = region_find(h, meta->region, false);

	if (!r)
		return;
	if (meta->reject) {
		struct hub_player *p = player_find(h, meta->player, false);

		for (size_t k = 0; p && k < p->v.n; k++) {
			struct rt_conn *c = p->v.v[k];

			for (size_t i = 0; i < c->nreg; i++) {
				if (c->reg[i] == r) {
					rt_send(c, m);
					break;
				}
			}
		}
		return;
	}
	if (meta->aoi) {
		double rad = h->g->o.aoi_radius, r2 = rad * rad;
		int64_t cx = cell_of(h, meta->x), cy = cell_of(h, meta->y);

		for (int64_t dx = -1; dx <= 1; dx++) {
			for (int64_t dy = -1; dy <= 1; dy++) {
				struct hub_cell *cell = cell_find(h, r, cx + dx, cy + dy, false);

				for (size_t i = 0; cell && i < cell->v.n; i++) {
					struct rt_conn *c = cell->v.v[i];
					double ddx = c->pl->x - meta->x, ddy = c->pl->y - meta->y;

					if (ddx * ddx + ddy * ddy <= r2)
						rt_send(c, m);
				}
			}
		}
		for (size_t i = 0; i < r->unpos.n; i++)
			rt_send(r->unpos.v[i], m);
		return;
	}
	for (size_t i = 0; i < r->subs.n; i++)
		rt_send(r->subs.v[i], m);
}

void hub_each(struct hub *h, const char *jti, void (*fn)(struct rt_conn *c, void *arg), void *arg)
{
	/* fn may close the socket, which leaves the hub: walk a copy. */
	size_t n = h->all.n;
	struct rt_conn **v = n ? malloc(n * sizeof(*v)) : NULL;

	if (!v)
		return;
	memcpy(v, h->all.v, n * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		rt_conn_ref(v[i]);
	for (size_t i = 0; i < n; i++) {
		if (!jti || !strcmp(v[i]->auth.jti, jti))
			fn(v[i], arg);
		rt_conn_unref(v[i]);
	}
	free(v);
}

size_t hub_count(const struct hub *h)
{
	return h->all.n;
}
