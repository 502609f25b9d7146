/* bench.c - the Redis projector's apply rate against its peer limit, in one
 * run on one server: the same number of pipelined HSETs sent by a bare
 * hiredis loop (views_bench_redis(), what `mmo bench views` prints).
 *
 * It lives here, behind views.h, because it drives the view's internals
 * (a synthetic struct vbatch through vcore_apply, the view's own batch
 * writer): tools/bench/bench_views.c only starts a redis-server, calls it
 * and prints, and needs no internal header. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schemas/mmo_redis_url.h"
#include "schemas/mmo_util.h"
#include "views_int.h"

#define BENCH_PLAYERS 1000
#define BENCH_REGIONS 16

/* n synthetic events as records: each of 1000 players spawns once, then
 * moves (world.update); one move in 8 crosses into the next region. */
static int make_batch(struct vbatch *b, uint64_t first, size_t n)
{
	uint8_t buf[512];

	for (size_t i = 0; i < n; i++) {
		uint64_t seq = first + i, p = seq % BENCH_PLAYERS, m = (seq - 1) / BENCH_PLAYERS;
		struct mmo_ev e;
		struct evlog_rec rec = {0};
		char eid[32], pid[16], region[16], from[16];
		size_t len;
		int err;

		snprintf(eid, sizeof(eid), "b:%llu", (unsigned long long)seq);
		snprintf(pid, sizeof(pid), "bp%llu", (unsigned long long)p);
		snprintf(region, sizeof(region), "br%llu",
		         (unsigned long long)((p + m / 8) % BENCH_REGIONS));
		snprintf(from, sizeof(from), "br%llu",
		         (unsigned long long)((p + (m ? m - 1 : 0) / 8) % BENCH_REGIONS));
		if (m == 0) {
			mmo_ev_init(&e, "world.spawn", eid, pid, region);
			e.body.world_spawn.entity_id = pid;
			e.body.world_spawn.entity_type = "player";
			e.body.world_spawn.hp = 100;
		} else {
			mmo_ev_init(&e, "world.update", eid, pid, region);
			e.body.world_update.entity_id = pid;
			e.body.world_update.entity_type = "player";
			e.body.world_update.from_region_id = from;
		}
		mmo_ev_set_pos(&e, (double)(seq % 1000) / 7.0, (double)(seq % 777) / 3.0, 1.5);
		if ((err = mmo_event_encode(&e.ev, buf, sizeof(buf), &len)))
			return err;
		rec.seq = seq;
		rec.ts = mmo_now_us();
		rec.event = buf;
		rec.event_len = len;
		if ((err = vb_add(b, &rec)))
			return err;
	}
	return MMO_OK;
}

static int raw_pipeline(const struct mmo_redis_url *u, size_t n, size_t batch, double *per_s,
                        char *errmsg, size_t errlen)
{
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectWithTimeout(u->host, u->port, tv);
	int64_t t0;
	int err = MMO_OK;

	if (!c || c->err) {
		snprintf(errmsg, errlen, "redis: %s", c ? c->errstr : "out of memory");
		redisFree(c);
		return MMO_EUNAVAIL;
	}
	if (u->password[0] && u->user[0])
		freeReplyObject(redisCommand(c, "AUTH %s %s", u->user, u->password));
	else if (u->password[0])
		freeReplyObject(redisCommand(c, "AUTH %s", u->password));
	if (u->db)
		freeReplyObject(redisCommand(c, "SELECT %d", u->db));
	t0 = mmo_mono_us();
	for (size_t done = 0; done < n && !err;) {
		size_t k = n - done < batch ? n - done : batch;

		for (size_t i = 0; i < k; i++) {
			char key[32], val[32];
			const char *argv[4] = {"HSET", key, "x", val};
			size_t lens[4];

			snprintf(key, sizeof(key), "mmo:bench:raw:%zu", (done + i) % BENCH_PLAYERS);
			snprintf(val, sizeof(val), "%zu", done + i);
			lens[0] = 4;
			lens[1] = strlen(key);
			lens[2] = 1;
			lens[3] = strlen(val);
			redisAppendCommandArgv(c, 4, argv, lens);
		}
		for (size_t i = 0; i < k; i++) {
			void *r = NULL;

			if (redisGetReply(c, &r) != REDIS_OK) {
				snprintf(errmsg, errlen, "redis: %s", c->errstr);
				err = MMO_EUNAVAIL;
				break;
			}
			freeReplyObject(r);
		}
		done += k;
	}
	*per_s = (double)n / ((double)(mmo_mono_us() - t0) / 1e6);
	for (size_t i = 0; i < BENCH_PLAYERS && !err; i++)
		freeReplyObject(redisCommand(c, "DEL mmo:bench:raw:%zu", i));
	redisFree(c);
	return err;
}

int views_bench_redis(const char *redis_url, size_t n, size_t batch, double *views_per_s,
                      double *raw_per_s, char *errmsg, size_t errlen)
{
	struct vcore_opts co = {20, 1000, 3, 1000};
	struct vbatch b = {0};
	struct vcore core;
	struct view *v = NULL;
	struct mmo_redis_url u;
	int err;
	uint64_t found = 0, seq = 1;
	int64_t t0, spent = 0;

	if (!n || !views_per_s || !raw_per_s)
		return MMO_EINVAL;
	if (!batch)
		batch = VIEWS_BATCH_DEFAULT;
	if ((err = mmo_redis_url_parse(redis_url, &u, errmsg, errlen)) ||
	    (err = redis_view_new(redis_url, &v, errmsg, errlen)))
		return err;
	if (v->ops->connect(v) || v->ops->drop(v, NULL, NULL)) {
		snprintf(errmsg, errlen, "%s", v->err);
		v->ops->free(v);
		return MMO_EUNAVAIL;
	}
	vcore_init(&core, v, NULL, &co);
	core.connected = true;
	while (seq <= n) {
		size_t k = n - seq + 1 < batch ? n - seq + 1 : batch;

		if ((err = make_batch(&b, seq, k)))
			break;
		t0 = mmo_mono_us();
		err = vcore_apply(&core, &b, true, true, &found);
		spent += mmo_mono_us() - t0;
		if (err) {
			snprintf(errmsg, errlen, "%s", v->err[0] ? v->err : mmo_strerror(err));
			break;
		}
		seq += k;
		vb_clear(&b);
	}
	vb_free(&b);
	if (!err) {
		*views_per_s = (double)n / ((double)spent / 1e6);
		err = raw_pipeline(&u, n, batch, raw_per_s, errmsg, errlen);
	}
	v->ops->drop(v, NULL, NULL);
	vcore_destroy(&core);
	v->ops->free(v);
	return err;
}
