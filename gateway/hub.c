/* hub.c - who gets which event: region subscriptions, the area-of-interest
 * grid, the bus fan-out, and session re-checks of open sockets.
 *
 * Indexes (all under one mutex):
 *   regions  region id -> connections subscribed to it
 *   players  player id -> its connections (positions, rejections, logout)
 *   grid     cell "cx,cy" -> connections whose player stands in it; a cell
 *            is aoi_radius wide, so everything within the radius of a
 *            point lies in its cell or the 8 around it.
 *
 * The fan-out thread follows the bus with one subscription per region in
 * use (evlog_sub region mode: ZeroMQ topic filters, per-region gap
 * filling); subscriptions are added and removed by commands the socket
 * threads queue, applied by the fan-out thread (the subscriber is not
 * thread-safe). Each committed event of a region is rendered to JSON once
 * and queued to:
 *   world.update of a player (movement): the subscribers of its region
 *     within aoi_radius (x, y) of the new position, looked up in the grid,
 *     plus the subscribers whose own position is not known yet;
 *   world.reject: only the rejected player's sockets;
 *   anything else: every subscriber of the region.
 */
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schemas/event_json.h"
#include "gw_int.h"
#include "schemas/mmo_util.h"

#define POLL_MS         20
#define CHECK_FAILS_MAX 5

struct vec {
	struct ws_conn **v;
	size_t n, cap;
};

struct entry {
	char *key;
	struct vec v;
	size_t unpos; /* regions: subscribers without a known position */
	struct entry *next;
};

struct map {
	struct entry **b;
	size_t nb, n;
};

struct cmd {
	bool add;
	char region[MMO_ID_MAX + 1];
	uint64_t from;
	struct cmd *next;
};

struct gw_ws {
	gw *g;
	pthread_mutex_t mu;
	struct vec all;
	struct map regions, players, grid;
	double cell;

	pthread_t th;
	bool started;
	atomic_bool stop;
	evlog_sub *sub;
	size_t nsubs; /* fan-out thread only */
	pthread_mutex_t cmd_mu;
	struct cmd *cmds, **cmd_tail;
};

/* ---------------------------------------------------------------- containers */

static int vec_add(struct vec *v, struct ws_conn *c)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		struct ws_conn **p = realloc(v->v, cap * sizeof(*p));

		if (!p)
			return MMO_ENOMEM;
		v->v = p;
		v->cap = cap;
	}
	v->v[v->n++] = c;
	return MMO_OK;
}

static void vec_del(struct vec *v, struct ws_conn *c)
{
	for (size_t i = 0; i < v->n; i++) {
		if (v->v[i] == c) {
			v->v[i] = v->v[--v->n];
			return;
		}
	}
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static int map_init(struct map *m, size_t nb)
{
	m->b = calloc(nb, sizeof(*m->b));
	m->nb = nb;
	m->n = 0;
	return m->b ? MMO_OK : MMO_ENOMEM;
}

static void map_free(struct map *m)
{
	for (size_t i = 0; i < m->nb && m->b; i++) {
		struct entry *e = m->b[i], *n;

		for (; e; e = n) {
			n = e->next;
			free(e->v.v);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
}

static struct entry *map_find(struct map *m, const char *key)
{
	struct entry *e = m->b[hash(key) % m->nb];

	for (; e; e = e->next) {
		if (!strcmp(e->key, key))
			return e;
	}
	return NULL;
}

static struct entry *map_get(struct map *m, const char *key)
{
	struct entry *e = map_find(m, key);
	size_t i;

	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = strdup(key);
	if (!e->key) {
		free(e);
		return NULL;
	}
	i = hash(key) % m->nb;
	e->next = m->b[i];
	m->b[i] = e;
	m->n++;
	return e;
}

/* Forget key's entry if nobody is in it any more. */
static void map_tidy(struct map *m, const char *key)
{
	struct entry **pp = &m->b[hash(key) % m->nb];

	for (; *pp; pp = &(*pp)->next) {
		struct entry *e = *pp;

		if (strcmp(e->key, key))
			continue;
		if (e->v.n == 0 && e->unpos == 0) {
			*pp = e->next;
			free(e->v.v);
			free(e->key);
			free(e);
			m->n--;
		}
		return;
	}
}

static void cell_key(char *buf, size_t cap, int64_t cx, int64_t cy)
{
	snprintf(buf, cap, "%lld,%lld", (long long)cx, (long long)cy);
}

static int64_t cell_of(const struct gw_ws *ws, double v)
{
	double c = floor(v / ws->cell);

	if (c > 1e15)
		return (int64_t)1e15;
	if (c < -1e15)
		return (int64_t)-1e15;
	return (int64_t)c;
}

/* ---------------------------------------------------------------- commands */

static void push_cmd(struct gw_ws *ws, bool add, const char *region, uint64_t from)
{
	struct cmd *c = calloc(1, sizeof(*c));

	if (!c)
		return;
	c->add = add;
	snprintf(c->region, sizeof(c->region), "%s", region);
	c->from = from;
	pthread_mutex_lock(&ws->cmd_mu);
	*ws->cmd_tail = c;
	ws->cmd_tail = &c->next;
	pthread_mutex_unlock(&ws->cmd_mu);
}

static void apply_cmds(struct gw_ws *ws)
{
	struct cmd *list;

	pthread_mutex_lock(&ws->cmd_mu);
	list = ws->cmds;
	ws->cmds = NULL;
	ws->cmd_tail = &ws->cmds;
	pthread_mutex_unlock(&ws->cmd_mu);
	while (list) {
		struct cmd *c = list;

		list = c->next;
		if (c->add) {
			if (evlog_sub_add_region(ws->sub, c->region, c->from) == MMO_OK)
				ws->nsubs++;
		} else if (evlog_sub_remove_region(ws->sub, c->region) == MMO_OK) {
			ws->nsubs--;
		}
		free(c);
	}
}

/* ---------------------------------------------------------------- positions */

static void grid_del(struct gw_ws *ws, struct ws_conn *c)
{
	char key[48];
	struct entry *e;

	cell_key(key, sizeof(key), c->cx, c->cy);
	e = map_find(&ws->grid, key);
	if (e) {
		vec_del(&e->v, c);
		map_tidy(&ws->grid, key);
	}
}

static void set_pos_locked(struct gw_ws *ws, struct ws_conn *c, double x, double y)
{
	int64_t cx = cell_of(ws, x), cy = cell_of(ws, y);
	char key[48];
	struct entry *e;

	if (!isfinite(x) || !isfinite(y))
		return;
	if (c->pos_known && cx == c->cx && cy == c->cy) {
		c->x = x;
		c->y = y;
		return;
	}
	cell_key(key, sizeof(key), cx, cy);
	e = map_get(&ws->grid, key);
	if (!e || vec_add(&e->v, c))
		return;
	if (c->pos_known) {
		grid_del(ws, c);
	} else {
		for (size_t i = 0; i < c->nregions; i++) {
			struct entry *r = map_find(&ws->regions, c->regions[i]);

			if (r && r->unpos)
				r->unpos--;
		}
	}
	c->pos_known = true;
	c->x = x;
	c->y = y;
	c->cx = cx;
	c->cy = cy;
}

void gw_hub_player_pos(gw *g, const char *player_id, double x, double y)
{
	struct gw_ws *ws = g->ws;
	struct entry *e;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->mu);
	e = map_find(&ws->players, player_id);
	for (size_t i = 0; e && i < e->v.n; i++)
		set_pos_locked(ws, e->v.v[i], x, y);
	pthread_mutex_unlock(&ws->mu);
}

/* ---------------------------------------------------------------- registration */

int gw_hub_register(gw *g, struct ws_conn *c)
{
	struct gw_ws *ws = g->ws;
	struct entry *e;
	int rc = MMO_ENOMEM;

	pthread_mutex_lock(&ws->mu);
	if (vec_add(&ws->all, c))
		goto out;
	e = map_get(&ws->players, c->auth.sub);
	if (!e || vec_add(&e->v, c)) {
		vec_del(&ws->all, c);
		goto out;
	}
	c->registered = true;
	gw_wsc_ref(c);
	rc = MMO_OK;
out:
	pthread_mutex_unlock(&ws->mu);
	return rc;
}

static void leave_region_locked(struct gw_ws *ws, struct ws_conn *c, const char *region)
{
	struct entry *e = map_find(&ws->regions, region);

	if (!e)
		return;
	vec_del(&e->v, c);
	if (!c->pos_known && e->unpos)
		e->unpos--;
	if (e->v.n == 0) {
		e->unpos = 0;
		push_cmd(ws, false, region, 0);
		map_tidy(&ws->regions, region);
	}
}

void gw_hub_unregister(gw *g, struct ws_conn *c)
{
	struct gw_ws *ws = g->ws;
	struct entry *e;

	pthread_mutex_lock(&ws->mu);
	if (!c->registered) {
		pthread_mutex_unlock(&ws->mu);
		return;
	}
	for (size_t i = 0; i < c->nregions; i++)
		leave_region_locked(ws, c, c->regions[i]);
	c->nregions = 0;
	if (c->pos_known)
		grid_del(ws, c);
	e = map_find(&ws->players, c->auth.sub);
	if (e) {
		vec_del(&e->v, c);
		map_tidy(&ws->players, c->auth.sub);
	}
	vec_del(&ws->all, c);
	c->registered = false;
	pthread_mutex_unlock(&ws->mu);
	gw_wsc_unref(c);
}

static bool subscribed(const struct ws_conn *c, const char *region)
{
	for (size_t i = 0; i < c->nregions; i++) {
		if (!strcmp(c->regions[i], region))
			return true;
	}
	return false;
}

int gw_hub_subscribe(gw *g, struct ws_conn *c, const char *region)
{
	struct gw_ws *ws = g->ws;
	struct entry *e;
	uint64_t head = 0;
	int rc = MMO_OK;

	/* Events after the head are the subscriber's; the region stream is
	 * filled from the log from there, so none committed after this point
	 * is missed even if the bus subscription takes a moment. */
	if (gw_log_head(g, &head))
		return MMO_EUNAVAIL;
	pthread_mutex_lock(&ws->mu);
	if (!c->registered || subscribed(c, region))
		goto out;
	if (c->nregions == GW_WS_REGIONS_MAX) {
		rc = MMO_EFULL;
		goto out;
	}
	e = map_get(&ws->regions, region);
	if (!e || vec_add(&e->v, c)) {
		rc = MMO_ENOMEM;
		goto out;
	}
	if (e->v.n == 1)
		push_cmd(ws, true, region, head + 1);
	if (!c->pos_known)
		e->unpos++;
	snprintf(c->regions[c->nregions++], MMO_ID_MAX + 1, "%s", region);
out:
	pthread_mutex_unlock(&ws->mu);
	return rc;
}

int gw_hub_unsubscribe(gw *g, struct ws_conn *c, const char *region)
{
	struct gw_ws *ws = g->ws;
	int rc = MMO_ENOTFOUND;

	pthread_mutex_lock(&ws->mu);
	for (size_t i = 0; i < c->nregions; i++) {
		if (strcmp(c->regions[i], region))
			continue;
		leave_region_locked(ws, c, region);
		memmove(c->regions[i], c->regions[c->nregions - 1], MMO_ID_MAX + 1);
		c->nregions--;
		rc = MMO_OK;
		break;
	}
	pthread_mutex_unlock(&ws->mu);
	return rc;
}

/* ---------------------------------------------------------------- fan-out */

static bool is_player_pos(const Mmo__Event *ev, const char **who, const Mmo__Vec3 **pos)
{
	if (ev->body_case == MMO__EVENT__BODY_WORLD_UPDATE && ev->world_update->position &&
	    ev->world_update->entity_type && !strcmp(ev->world_update->entity_type, "player")) {
		*who = ev->world_update->entity_id;
		*pos = ev->world_update->position;
		return true;
	}
	if (ev->body_case == MMO__EVENT__BODY_WORLD_SPAWN && ev->world_spawn->position &&
	    ev->world_spawn->entity_type && !strcmp(ev->world_spawn->entity_type, "player")) {
		*who = ev->world_spawn->entity_id;
		*pos = ev->world_spawn->position;
		return true;
	}
	return false;
}

static void deliver(struct gw_ws *ws, const Mmo__Event *ev, struct gw_msg *m)
{
	const char *region = ev->region_id, *who = NULL;
	const Mmo__Vec3 *pos = NULL;
	bool moved = is_player_pos(ev, &who, &pos);
	struct entry *e;

	pthread_mutex_lock(&ws->mu);
	if (moved && who) {
		struct entry *p = map_find(&ws->players, who);

		for (size_t i = 0; p && i < p->v.n; i++)
			set_pos_locked(ws, p->v.v[i], pos->x, pos->y);
	}
	e = map_find(&ws->regions, region);
	if (!e)
		goto out;
	if (ev->body_case == MMO__EVENT__BODY_WORLD_REJECT) {
		struct entry *p = map_find(&ws->players, ev->player_id ? ev->player_id : "");

		for (size_t i = 0; p && i < p->v.n; i++) {
			if (subscribed(p->v.v[i], region))
				gw_wsc_send(p->v.v[i], m);
		}
	} else if (moved && ev->body_case == MMO__EVENT__BODY_WORLD_UPDATE) {
		double r2 = ws->g->o.aoi_radius * ws->g->o.aoi_radius;
		int64_t cx = cell_of(ws, pos->x), cy = cell_of(ws, pos->y);

		for (int64_t dx = -1; dx <= 1; dx++) {
			for (int64_t dy = -1; dy <= 1; dy++) {
				char key[48];
				struct entry *cell;

				cell_key(key, sizeof(key), cx + dx, cy + dy);
				cell = map_find(&ws->grid, key);
				for (size_t i = 0; cell && i < cell->v.n; i++) {
					struct ws_conn *c = cell->v.v[i];
					double ddx = c->x - pos->x, ddy = c->y - pos->y;

					if (ddx * ddx + ddy * ddy <= r2 && subscribed(c, region))
						gw_wsc_send(c, m);
				}
			}
		}
		for (size_t i = 0; e->unpos && i < e->v.n; i++) {
			if (!e->v.v[i]->pos_known)
				gw_wsc_send(e->v.v[i], m);
		}
	} else {
		for (size_t i = 0; i < e->v.n; i++)
			gw_wsc_send(e->v.v[i], m);
	}
out:
	pthread_mutex_unlock(&ws->mu);
}

static int on_rec(const struct evlog_rec *rec, void *arg)
{
	struct gw_ws *ws = arg;
	Mmo__Event *ev;
	json_t *o;
	char *s;

	if (evlog_rec_decode(rec, &ev))
		return 0;
	if (!ev->region_id || !ev->region_id[0])
		goto out;
	o = mmo_event_to_json(ev);
	if (!o)
		goto out;
	json_object_set_new(o, "priority", json_integer(rec->priority));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s) {
		struct gw_msg *m = gw_msg_new(s, strlen(s), rec->priority, rec->ts);

		free(s);
		if (m) {
			deliver(ws, ev, m);
			gw_msg_unref(m);
		}
	}
out:
	mmo_event_free(ev);
	return 0;
}

static void *fan_main(void *arg)
{
	struct gw_ws *ws = arg;
	int64_t last_warn = 0;

	while (!atomic_load(&ws->stop)) {
		int err;

		apply_cmds(ws);
		if (!ws->nsubs) {
			struct timespec ts = {0, POLL_MS * 1000000L};

			nanosleep(&ts, NULL);
			continue;
		}
		err = evlog_sub_poll(ws->sub, POLL_MS, on_rec, ws, NULL);
		if (err == MMO_ECLOSED)
			break;
		if (err) {
			gw_metrics_error(ws->g, GW_F_WS);
			if (mmo_mono_us() - last_warn > 10000000) {
				mmo_logf(MMO_LOG_WARN, "gateway", "fan-out bus: %s",
				         mmo_errdesc(err));
				last_warn = mmo_mono_us();
			}
			struct timespec ts = {0, 100000000};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- sessions */

void gw_ws_close_session(gw *g, const char *jti, const char *reason)
{
	struct gw_ws *ws = g->ws;

	if (!ws)
		return;
	pthread_mutex_lock(&ws->mu);
	for (size_t i = 0; i < ws->all.n; i++) {
		struct ws_conn *c = ws->all.v[i];

		if (!strcmp(c->auth.jti, jti)) {
			atomic_fetch_add(&g->m.ws_closed_revoked, 1);
			gw_wsc_close(c, 1008, reason);
		}
	}
	pthread_mutex_unlock(&ws->mu);
}

void gw_ws_check_sessions(gw *g, int64_t now_us)
{
	struct gw_ws *ws = g->ws;
	struct ws_conn **cs = NULL;
	const char **jtis = NULL;
	struct redisReply **reps = NULL;
	int64_t now_s = now_us / 1000000;
	size_t n;
	bool ok;

	pthread_mutex_lock(&ws->mu);
	n = ws->all.n;
	if (n) {
		cs = malloc(n * sizeof(*cs));
		jtis = malloc(n * sizeof(*jtis));
		reps = calloc(n, sizeof(*reps));
	}
	if (!cs || !jtis || !reps) {
		pthread_mutex_unlock(&ws->mu);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		cs[i] = ws->all.v[i];
		jtis[i] = cs[i]->auth.jti; /* immutable after the upgrade */
		gw_wsc_ref(cs[i]);
	}
	pthread_mutex_unlock(&ws->mu);
	ok = gw_redis_pipe(g, "EXISTS mmo:session:%s", jtis, n, reps) == MMO_OK;
	for (size_t i = 0; i < n; i++) {
		struct ws_conn *c = cs[i];

		if (gw_wsc_stalled(c, mmo_mono_us())) {
			/* closed as a slow consumer */
		} else if (c->auth.exp <= now_s) {
			gw_wsc_close(c, 1008, "token expired");
		} else if (ok) {
			c->check_failures = 0;
			if (reps[i] && reps[i]->type == REDIS_REPLY_INTEGER &&
			    reps[i]->integer == 0) {
				atomic_fetch_add(&g->m.ws_closed_revoked, 1);
				gw_wsc_close(c, 1008, "session revoked");
			}
		} else if (++c->check_failures >= CHECK_FAILS_MAX) {
			/* Fail closed: a session that cannot be checked is not trusted
			 * for long. */
			gw_wsc_close(c, 1011, "session check unavailable");
		}
		freeReplyObject(reps[i]);
		gw_wsc_unref(c);
	}
out:
	free(cs);
	free(jtis);
	free(reps);
}

size_t gw_ws_count(gw *g)
{
	return (size_t)atomic_load(&g->m.ws_conns);
}

/* ---------------------------------------------------------------- lifecycle */

int gw_ws_start(gw *g, struct gw_ws **out, char *err, size_t errlen)
{
	struct gw_ws *ws = calloc(1, sizeof(*ws));
	struct evlog_sub_opts so = {0};
	static const char *const none[1] = {NULL};
	int rc;

	if (!ws)
		return MMO_ENOMEM;
	ws->g = g;
	ws->cell = g->o.aoi_radius;
	pthread_mutex_init(&ws->mu, NULL);
	pthread_mutex_init(&ws->cmd_mu, NULL);
	ws->cmd_tail = &ws->cmds;
	if (map_init(&ws->regions, 1024) || map_init(&ws->players, 4096) ||
	    map_init(&ws->grid, 4096)) {
		rc = MMO_ENOMEM;
		goto fail;
	}
	so.zctx = g->o.zctx;
	so.bus = g->bus;
	so.log = g->o.log;
	so.ingest = g->ingest;
	so.regions = none; /* region mode, no region yet */
	so.nregions = 0;
	so.from_seq = 1;
	rc = evlog_sub_open(&so, &ws->sub);
	if (rc) {
		snprintf(err, errlen, "cannot follow the bus at %s: %s", g->bus, mmo_errdesc(rc));
		goto fail;
	}
	if (pthread_create(&ws->th, NULL, fan_main, ws)) {
		snprintf(err, errlen, "cannot start the fan-out thread");
		rc = MMO_EIO;
		goto fail;
	}
	ws->started = true;
	*out = ws;
	return MMO_OK;
fail:
	gw_ws_free(ws);
	return rc;
}

void gw_ws_stop(struct gw_ws *ws)
{
	if (!ws)
		return;
	atomic_store(&ws->stop, true);
	if (ws->started) {
		pthread_join(ws->th, NULL);
		ws->started = false;
	}
	pthread_mutex_lock(&ws->mu);
	for (size_t i = 0; i < ws->all.n; i++)
		gw_wsc_close(ws->all.v[i], 1001, "server stopping");
	pthread_mutex_unlock(&ws->mu);
}

void gw_ws_free(struct gw_ws *ws)
{
	if (!ws)
		return;
	if (ws->started) {
		atomic_store(&ws->stop, true);
		pthread_join(ws->th, NULL);
	}
	apply_cmds(ws);
	evlog_sub_close(ws->sub);
	map_free(&ws->regions);
	map_free(&ws->players);
	map_free(&ws->grid);
	free(ws->all.v);
	pthread_mutex_destroy(&ws->mu);
	pthread_mutex_destroy(&ws->cmd_mu);
	free(ws);
}
