/* game.h - a generated game played on a real log by the pure fold, driven
 * the way the runner drives it: intents are appended, then the world folds
 * the new records in seq order and appends their outcomes in one batch.
 * Include after cmocka.h. */
#ifndef MMO_GAME_H
#define MMO_GAME_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/evlog.h"
#include "testsupport.h"
#include "projector/world/world.h"

#define MS       1000LL
#define NPLAYERS 2000
#define NACTIONS 40000
#define BATCH    50

struct game {
	char dir[256];
	evlog *log;
	world *w;
	world_snapdb *db;
	int64_t ts;
	uint64_t rng;
	uint64_t eid;
	uint8_t *buf;
	size_t used;
	struct evlog_in in[4096];
	struct evlog_out out[4096];
	size_t n;
	uint64_t conflicts;
};

#define BUF_CAP (4096 * 1024)

static inline unsigned rnd(struct game *g)
{
	g->rng = g->rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(g->rng >> 33);
}

static inline void queue(struct game *g, const Mmo__Event *ev)
{
	size_t len;

	assert_int_equal(mmo_event_encode(ev, g->buf + g->used, BUF_CAP - g->used, &len), MMO_OK);
	g->in[g->n].buf = g->buf + g->used;
	g->in[g->n].len = len;
	g->in[g->n].priority = 0;
	g->used += len;
	g->n++;
}

/* Append what is queued, at the game's clock. */
static inline void commit(struct game *g)
{
	if (!g->n)
		return;
	assert_int_equal(evlog_append(g->log, g->in, g->n, g->ts, g->out), MMO_OK);
	for (size_t i = 0; i < g->n; i++) {
		if (g->out[i].err == MMO_ECONFLICT)
			g->conflicts++;
		else if (g->out[i].err)
			fail_msg("append %zu: %s", i, mmo_strerror(g->out[i].err));
	}
	g->n = 0;
	g->used = 0;
}

/* The world's pass: fold every new record, append the outcomes. */
static inline void world_pass(struct game *g)
{
	uint64_t head;

	for (;;) {
		struct evlog_rec rec;
		evlog_iter *it;

		evlog_head(g->log, &head, NULL);
		if (world_seq(g->w) >= head)
			return;
		assert_int_equal(evlog_iter_open(g->log, EVLOG_ALL, NULL, world_seq(g->w) + 1, &it),
		                 MMO_OK);
		while (evlog_iter_next(it, &rec) == MMO_OK) {
			struct world_outcome out;
			Mmo__Event *ev;

			assert_int_equal(evlog_rec_decode(&rec, &ev), MMO_OK);
			assert_int_equal(world_step(g->w, ev, &out), MMO_OK);
			for (size_t i = 0; i < out.n; i++)
				queue(g, &out.ev[i].b.ev);
			mmo_event_free(ev);
		}
		evlog_iter_close(it);
		commit(g);
	}
}

static inline void intent(struct game *g, const char *type, unsigned p, struct mmo_ev *b)
{
	static char pid[16], eid[32];

	snprintf(pid, sizeof(pid), "p%u", p);
	snprintf(eid, sizeof(eid), "g:%llu", (unsigned long long)++g->eid);
	mmo_ev_init(b, type, eid, pid, NULL);
}

/* One random action of a random player. */
static inline void act(struct game *g)
{
	static const char *skills[] = {"punch", "slash", "fireball", "slash"};
	static char def[16];
	struct mmo_ev b;
	unsigned r = rnd(g), p = (r >> 4) % NPLAYERS;
	struct world_player pl;

	switch (r % 16) {
	case 0: intent(g, "player.login", p, &b); break;
	case 1: intent(g, (r >> 20) % 4 ? "player.login" : "player.logout", p, &b); break;
	case 2:
	case 3:
	case 4:
	case 5:
	case 6:
	case 7:
		intent(g, "player.move", p, &b);
		if (world_player_get(g->w, b.ev.player_id, &pl))
			pl.pos = world_rules()->spawn;
		mmo_ev_set_pos(&b, pl.pos.x + (double)(rnd(g) % 7) - 3,
		               pl.pos.y + (double)(rnd(g) % 7) - 3, pl.pos.z);
		break;
	default:
		intent(g, "combat.attack", p, &b);
		/* A neighbour by id: often near, since everyone starts at spawn. */
		snprintf(def, sizeof(def), "p%u", (p + 1 + (rnd(g) % 3)) % NPLAYERS);
		b.body.combat_attack.defender_id = def;
		b.body.combat_attack.skill_id = (char *)skills[(r >> 24) % 4];
		break;
	}
	queue(g, &b.ev);
}

static inline uint64_t head_of(evlog *log)
{
	uint64_t h = 0;

	evlog_head(log, &h, NULL);
	return h;
}

static inline void snapshot(struct game *g)
{
	struct evlog_rec rec;
	evlog_iter *it;

	assert_int_equal(evlog_iter_open(g->log, EVLOG_ALL, NULL, world_seq(g->w), &it), MMO_OK);
	assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
	assert_int_equal(rec.seq, world_seq(g->w));
	assert_int_equal(world_snapdb_put(g->db, g->w, rec.hash), MMO_OK);
	evlog_iter_close(it);
}

static inline struct game *game_new(uint64_t seed)
{
	struct game *g = calloc(1, sizeof(*g));
	struct evlog_opts o = {0};
	char path[300], msg[256];

	assert_non_null(g);
	g->buf = malloc(BUF_CAP);
	assert_int_equal(ts_tmpdir(g->dir, sizeof(g->dir)), 0);
	snprintf(path, sizeof(path), "%s/log", g->dir);
	o.dir = path;
	o.nosync = true;
	o.map_size = (size_t)1 << 30;
	assert_int_equal(evlog_open(&o, &g->log, msg, sizeof(msg)), MMO_OK);
	snprintf(path, sizeof(path), "%s/world", g->dir);
	assert_int_equal(world_snapdb_open(path, false, &g->db, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(world_snapdb_set_seed(g->db, seed), MMO_OK);
	assert_int_equal(world_new(seed, &g->w), MMO_OK);
	g->ts = 1700000000LL * 1000000;
	g->rng = seed;
	return g;
}

static inline void game_free(struct game *g)
{
	world_free(g->w);
	world_snapdb_close(g->db);
	evlog_close(g->log);
	ts_rmrf(g->dir);
	free(g->buf);
	free(g);
}

static inline void game_register_all(struct game *g)
{
	struct mmo_ev b;
	char name[16];

	for (unsigned p = 0; p < NPLAYERS; p++) {
		intent(g, "player.register", p, &b);
		snprintf(name, sizeof(name), "user%u", p);
		b.body.player_register.username = name;
		queue(g, &b.ev);
		if (g->n == 1000)
			commit(g);
	}
	commit(g);
}

/* Play n actions in batches, a world pass after each. */
static inline void game_play(struct game *g, unsigned n, unsigned snap_every_batches)
{
	for (unsigned i = 0, batch = 0; i < n; i += BATCH, batch++) {
		for (unsigned k = 0; k < BATCH; k++)
			act(g);
		g->ts += (int64_t)(20 + rnd(g) % 400) * MS;
		commit(g);
		world_pass(g);
		if (snap_every_batches && batch % snap_every_batches == snap_every_batches - 1)
			snapshot(g);
	}
}

#endif
