/* views_fx.h - what the views' integration tests share: a real log (served
 * over tcp on free ports, in DATA/log), a real redis-server, a generated game
 * whose expected view is computed here independently of projector/views, and
 * the checks that the Redis view equals it exactly. */
#ifndef MMO_VIEWS_FX_H
#define MMO_VIEWS_FX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "log/evlog.h"
#include "schemas/mmo_util.h"
#include "testsupport.h"
#include "projector/views/views.h"

#define FX_PLAYERS_MAX 64
#define FX_REGIONS 6

/* ------------------------------------------------------------ the model */

struct mplayer {
	char id[16];
	bool exists;
	char username[32];
	char region[24];
	double x, y, z;
	unsigned hp;
	bool online;
	uint64_t seq;
	uint64_t events; /* events folded into its hash */
};

enum opk { OP_REGISTER, OP_LOGIN, OP_SPAWN, OP_UPDATE, OP_COMBAT, OP_DEATH, OP_LOGOUT, OP_NPC,
           OP_STATS };

struct op {
	enum opk k;
	int p, q;
	double x, y, z;
	unsigned hp;
	char region[24], from[24];
};

struct gstate { /* what the generator believes (ahead of the model) */
	bool exists, online;
	char region[24];
};

struct model {
	struct mplayer p[FX_PLAYERS_MAX];
	struct gstate g[FX_PLAYERS_MAX];
	size_t n;
	uint64_t rng;
	uint64_t published[FX_REGIONS]; /* messages expected per region channel */
	uint64_t next_id;
	uint64_t combats;               /* combat.result events */
	int avoid;                      /* player kept out of combat (-1: none) */
};

static inline uint64_t fx_rand(struct model *m)
{
	uint64_t x = m->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	m->rng = x;
	return x;
}

static inline void fx_model_init(struct model *m, size_t players, uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->n = players;
	m->rng = seed ? seed : 88172645463325252ull;
	m->avoid = -1;
	for (size_t i = 0; i < players; i++)
		snprintf(m->p[i].id, sizeof(m->p[i].id), "p%zu", i);
}

static inline void fx_region_name(int r, char *buf, size_t cap)
{
	snprintf(buf, cap, "r_%d", r);
}

static inline int fx_region_index(const char *name)
{
	return name && name[0] == 'r' && name[1] == '_' ? atoi(name + 2) : -1;
}

/* What an op does to the view (the rules of docs/views.md), at seq. */
static inline void fx_model_apply(struct model *m, const struct op *o, uint64_t seq)
{
	struct mplayer *p = o->p >= 0 ? &m->p[o->p] : NULL, *q = o->q >= 0 ? &m->p[o->q] : NULL;
	int ri = fx_region_index(o->region), fi = fx_region_index(o->from);

	if (ri >= 0 && ri < FX_REGIONS)
		m->published[ri]++;
	if (o->k == OP_UPDATE && fi >= 0 && fi < FX_REGIONS && fi != ri)
		m->published[fi]++;
	switch (o->k) {
	case OP_REGISTER:
		if (p->exists)
			break;
		p->exists = true;
		snprintf(p->username, sizeof(p->username), "user-%s", p->id);
		p->region[0] = 0;
		p->x = p->y = p->z = 0;
		p->hp = 0;
		p->online = false;
		p->seq = seq;
		p->events++;
		break;
	case OP_SPAWN:
		snprintf(p->region, sizeof(p->region), "%s", o->region);
		p->x = o->x, p->y = o->y, p->z = o->z;
		p->hp = o->hp;
		p->online = true;
		p->exists = true;
		p->seq = seq;
		p->events++;
		break;
	case OP_UPDATE:
		snprintf(p->region, sizeof(p->region), "%s", o->region);
		p->x = o->x, p->y = o->y, p->z = o->z;
		p->exists = true;
		p->seq = seq;
		p->events++;
		break;
	case OP_COMBAT: /* p attacks q */
		m->combats++;
		q->hp = o->hp;
		q->seq = seq;
		q->events++;
		q->exists = true;
		p->seq = seq;
		p->events++;
		p->exists = true;
		break;
	case OP_DEATH:
		p->hp = 0;
		p->seq = seq;
		p->events++;
		break;
	case OP_LOGOUT:
		p->online = false;
		p->seq = seq;
		p->events++;
		break;
	default:
		break;
	}
}

/* Build the event of op into buf; returns its length. */
static inline size_t fx_encode(struct model *m, const struct op *o, uint8_t *buf, size_t cap)
{
	struct mmo_ev b;
	char eid[48], user[32];
	const char *pid = o->p >= 0 ? m->p[o->p].id : "npc";
	size_t len = 0;

	snprintf(eid, sizeof(eid), "vt:%llu:%llu", (unsigned long long)m->rng,
	         (unsigned long long)++m->next_id);
	switch (o->k) {
	case OP_REGISTER:
		mmo_ev_init(&b, "player.register", eid, pid, NULL);
		snprintf(user, sizeof(user), "user-%s", pid);
		b.body.player_register.username = user;
		break;
	case OP_LOGIN:
		mmo_ev_init(&b, "player.login", eid, pid, o->region);
		b.body.player_login.session_id = "s1";
		break;
	case OP_SPAWN:
		mmo_ev_init(&b, "world.spawn", eid, pid, o->region);
		b.body.world_spawn.entity_id = (char *)pid;
		b.body.world_spawn.entity_type = "player";
		b.body.world_spawn.hp = o->hp;
		mmo_ev_set_pos(&b, o->x, o->y, o->z);
		break;
	case OP_UPDATE:
		mmo_ev_init(&b, "world.update", eid, pid, o->region);
		b.body.world_update.entity_id = (char *)pid;
		b.body.world_update.entity_type = "player";
		b.body.world_update.from_region_id = (char *)o->from;
		mmo_ev_set_pos(&b, o->x, o->y, o->z);
		break;
	case OP_COMBAT:
		mmo_ev_init(&b, "combat.result", eid, pid, o->region);
		b.body.combat_result.attacker_id = (char *)pid;
		b.body.combat_result.defender_id = m->p[o->q].id;
		b.body.combat_result.skill_id = "strike";
		b.body.combat_result.result = "hit";
		b.body.combat_result.damage = 7;
		b.body.combat_result.defender_hp = o->hp;
		break;
	case OP_DEATH:
	case OP_LOGOUT:
		mmo_ev_init(&b, "world.despawn", eid, pid, o->region);
		b.body.world_despawn.entity_id = (char *)pid;
		b.body.world_despawn.entity_type = "player";
		b.body.world_despawn.reason = o->k == OP_DEATH ? "death" : "logout";
		break;
	case OP_NPC:
		mmo_ev_init(&b, "world.spawn", eid, NULL, o->region);
		b.body.world_spawn.entity_id = "npc-1";
		b.body.world_spawn.entity_type = "npc";
		b.body.world_spawn.hp = 10;
		mmo_ev_set_pos(&b, o->x, o->y, o->z);
		break;
	case OP_STATS:
		mmo_ev_init(&b, "stats.update", eid, NULL, NULL);
		b.body.stats_update.name = "players_online";
		b.body.stats_update.value = 3;
		break;
	}
	assert_int_equal(mmo_event_encode(&b.ev, buf, cap, &len), MMO_OK);
	return len;
}

static inline double fx_coord(struct model *m)
{
	return (double)(fx_rand(m) % 100000) / 137.0;
}

/* The next op: the first events register every player; then a mix. The
 * generator reads the model (which may lag a request behind: it only needs
 * plausible choices). only >= 0 restricts the player. */
static inline void fx_next_op(struct model *m, struct op *o, int only)
{
	uint64_t r = fx_rand(m) % 100;
	int p = only >= 0 ? only : (int)(fx_rand(m) % m->n);
	struct gstate *pl = &m->g[p];

	memset(o, 0, sizeof(*o));
	o->p = p;
	o->q = -1;
	if (!pl->exists) {
		o->k = OP_REGISTER;
		pl->exists = true;
		return;
	}
	fx_region_name((int)(fx_rand(m) % FX_REGIONS), o->region, sizeof(o->region));
	o->x = fx_coord(m);
	o->y = fx_coord(m);
	o->z = fx_coord(m) / 100;
	if (!pl->online) {
		o->k = r < 20 ? OP_LOGIN : OP_SPAWN;
		o->hp = 100;
		if (o->k == OP_SPAWN) {
			pl->online = true;
			snprintf(pl->region, sizeof(pl->region), "%s", o->region);
		}
		return;
	}
	if (r < 45) {
		o->k = OP_UPDATE;
		snprintf(o->from, sizeof(o->from), "%s", pl->region);
		if (r < 25) /* stay in the region */
			snprintf(o->region, sizeof(o->region), "%s", pl->region);
		snprintf(pl->region, sizeof(pl->region), "%s", o->region);
	} else if (r < 70 && only < 0) {
		int q = (int)(fx_rand(m) % m->n);

		if (q == p || q == m->avoid || p == m->avoid || !m->g[q].exists) {
			o->k = OP_STATS;
			o->region[0] = 0;
			return;
		}
		o->k = OP_COMBAT;
		o->q = q;
		o->hp = (unsigned)(fx_rand(m) % 100);
		snprintf(o->region, sizeof(o->region), "%s", pl->region);
	} else if (r < 78) {
		o->k = OP_DEATH;
		snprintf(o->region, sizeof(o->region), "%s", pl->region);
	} else if (r < 88) {
		o->k = OP_LOGOUT;
		snprintf(o->region, sizeof(o->region), "%s", pl->region);
		pl->online = false;
	} else if (r < 94) {
		o->k = OP_NPC;
		o->p = -1;
	} else {
		o->k = OP_STATS;
		o->region[0] = 0;
	}
}

/* ------------------------------------------------------------ the fixture */

struct fx {
	char dir[512];       /* DATA */
	char logdir[600];
	char redis_dir[600];
	char ingest[96], bus[96];
	char redis_url[96];
	int redis_port;
	pid_t redis_pid;
	evlog *log;
	void *ctx;
	evlog_server *srv;
	evlog_client *c;
	views_runner *vr;
	struct model m;
};

/* Start redis-server on port (0: a free one) with its data in dir. */
static inline pid_t fx_redis_start_on(const char *dir, int port, const char *extra)
{
	char conf[700], logf[700];
	FILE *f;
	pid_t pid;

	snprintf(conf, sizeof(conf), "%s/redis.conf", dir);
	snprintf(logf, sizeof(logf), "%s/redis.log", dir);
	f = fopen(conf, "w");
	if (!f)
		return -1;
	fprintf(f, "port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\ndaemonize no\n%s\n", port, dir,
	        extra ? extra : "appendonly no");
	fclose(f);
	truncate(logf, 0);
	char *argv[] = {"/usr/bin/redis-server", conf, NULL};
	pid = ts_spawn(argv, logf);
	if (pid > 0 && !ts_wait_log(logf, "Ready to accept connections", 15000)) {
		ts_stop(pid, SIGKILL, 1000);
		return -1;
	}
	return pid;
}

static inline void fx_start(struct fx *f, const char *redis_extra)
{
	struct evlog_opts lo = {0};
	struct evlog_server_opts so = {0};
	char msg[256] = "";

	memset(f, 0, sizeof(*f));
	assert_int_equal(ts_tmpdir(f->dir, sizeof(f->dir)), 0);
	snprintf(f->logdir, sizeof(f->logdir), "%s/log", f->dir);
	snprintf(f->redis_dir, sizeof(f->redis_dir), "%s/redis", f->dir);
	mkdir(f->redis_dir, 0750);
	f->redis_port = ts_free_port();
	f->redis_pid = fx_redis_start_on(f->redis_dir, f->redis_port, redis_extra);
	if (f->redis_pid <= 0)
		fail_msg("cannot start redis-server");
	snprintf(f->redis_url, sizeof(f->redis_url), "redis://127.0.0.1:%d", f->redis_port);
	lo.dir = f->logdir;
	lo.nosync = true;
	assert_int_equal(evlog_open(&lo, &f->log, msg, sizeof(msg)), MMO_OK);
	snprintf(f->ingest, sizeof(f->ingest), "tcp://127.0.0.1:%d", ts_free_port());
	snprintf(f->bus, sizeof(f->bus), "tcp://127.0.0.1:%d", ts_free_port());
	f->ctx = zmq_ctx_new();
	so.log = f->log;
	so.zctx = f->ctx;
	so.ingest = f->ingest;
	so.bus = f->bus;
	assert_int_equal(evlog_server_start(&so, &f->srv, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(evlog_client_open(f->ctx, f->ingest, 10000, &f->c), MMO_OK);
}

static inline void fx_views_start(struct fx *f, size_t batch, unsigned base_ms, unsigned cap_ms,
                                  unsigned threshold)
{
	struct views_opts o = {0};
	char msg[256] = "";

	o.log = f->log;
	o.zctx = f->ctx;
	o.bus = f->bus;
	o.data_dir = f->dir;
	o.redis_url = f->redis_url;
	o.batch_max = batch;
	o.backoff_base_ms = base_ms;
	o.backoff_cap_ms = cap_ms;
	o.breaker_threshold = threshold;
	if (views_runner_start(&o, &f->vr, msg, sizeof(msg)) != MMO_OK)
		fail_msg("views_runner_start: %s", msg);
}

static inline void fx_views_stop(struct fx *f)
{
	views_runner_stop(f->vr);
	f->vr = NULL;
}

static inline void fx_stop(struct fx *f)
{
	fx_views_stop(f);
	evlog_client_close(f->c);
	evlog_server_stop(f->srv);
	evlog_close(f->log);
	zmq_ctx_term(f->ctx);
	ts_stop(f->redis_pid, SIGKILL, 2000);
	if (!getenv("MMO_KEEP_TMP"))
		ts_rmrf(f->dir);
}

/* Generate and append n events (requests of up to 64), folding each into
 * the model with the seq the log gave it. only >= 0: all of that player. */
static inline void fx_append(struct fx *f, size_t n, int only)
{
	static uint8_t bufs[64][1024];
	struct evlog_in in[64];
	struct op ops[64];
	uint64_t seqs[64];
	int errs[64];

	while (n > 0) {
		size_t k = n < 64 ? n : 64;

		for (size_t i = 0; i < k; i++) {
			fx_next_op(&f->m, &ops[i], only);
			in[i].buf = bufs[i];
			in[i].len = fx_encode(&f->m, &ops[i], bufs[i], sizeof(bufs[i]));
			in[i].priority = 0;
		}
		int rc = MMO_ETIMEOUT;

		for (int t = 0; t < 20 && rc != MMO_OK; t++) {
			rc = evlog_client_append(f->c, in, k, seqs, errs);
			if (rc == MMO_EBUSY)
				usleep(20000);
		}
		assert_int_equal(rc, MMO_OK);
		for (size_t i = 0; i < k; i++) {
			if (errs[i])
				fail_msg("event %zu refused: %s", i, mmo_strerror(errs[i]));
			fx_model_apply(&f->m, &ops[i], seqs[i]);
		}
		n -= k;
	}
}

static inline uint64_t fx_head(struct fx *f)
{
	uint64_t h = 0;

	assert_int_equal(evlog_head(f->log, &h, NULL), MMO_OK);
	return h;
}

static inline redisContext *fx_redis(struct fx *f)
{
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", f->redis_port, tv);

	assert_non_null(c);
	if (c->err)
		fail_msg("redis connect: %s", c->errstr);
	return c;
}

static inline uint64_t fx_checkpoint(redisContext *c)
{
	redisReply *r = redisCommand(c, "GET mmo:checkpoint:redis");
	uint64_t v = 0;

	if (r && r->type == REDIS_REPLY_STRING)
		v = strtoull(r->str, NULL, 10);
	freeReplyObject(r);
	return v;
}

/* Wait until the Redis checkpoint reaches the head. */
static inline bool fx_wait_caught_up(struct fx *f, int timeout_ms)
{
	uint64_t head = fx_head(f);

	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		struct timeval tv = {1, 0};
		redisContext *c = redisConnectWithTimeout("127.0.0.1", f->redis_port, tv);
		uint64_t ck = 0;

		if (c && !c->err)
			ck = fx_checkpoint(c);
		if (c)
			redisFree(c);
		if (ck == head)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static inline const char *hget(const redisReply *h, const char *field)
{
	for (size_t i = 0; h && i + 1 < h->elements; i += 2) {
		if (!strcmp(h->element[i]->str, field))
			return h->element[i + 1]->str;
	}
	return NULL;
}

static inline bool fx_set_has(const redisReply *s, const char *m)
{
	for (size_t i = 0; s && i < s->elements; i++) {
		if (!strcmp(s->element[i]->str, m))
			return true;
	}
	return false;
}

/* One player's hash equals the model. skip >= 0: that player is not checked. */
static inline void fx_check_player(redisContext *c, const struct mplayer *p)
{
	redisReply *h = redisCommand(c, "HGETALL mmo:player:%s", p->id);
	const char *v;

	assert_non_null(h);
	if (!p->exists) {
		assert_int_equal(h->elements, 0);
		freeReplyObject(h);
		return;
	}
	if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
		fail_msg("mmo:player:%s is missing", p->id);
#define EXPECT_STR(field, want)                                                                  \
	do {                                                                                         \
		v = hget(h, field);                                                                      \
		if (!v || strcmp(v, want))                                                               \
			fail_msg("mmo:player:%s %s = %s, expected %s", p->id, field, v ? v : "(none)",       \
			         want);                                                                      \
	} while (0)
	char num[64];

	EXPECT_STR("username", p->username);
	EXPECT_STR("region_id", p->region);
	snprintf(num, sizeof(num), "%u", p->hp);
	EXPECT_STR("hp", num);
	EXPECT_STR("online", p->online ? "1" : "0");
	snprintf(num, sizeof(num), "%llu", (unsigned long long)p->seq);
	EXPECT_STR("seq", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)p->events);
	EXPECT_STR("events", num);
#undef EXPECT_STR
	const double want[3] = {p->x, p->y, p->z};
	const char *names[3] = {"x", "y", "z"};
	for (int i = 0; i < 3; i++) {
		v = hget(h, names[i]);
		if (!v || strtod(v, NULL) != want[i])
			fail_msg("mmo:player:%s %s = %s, expected %.17g", p->id, names[i], v ? v : "(none)",
			         want[i]);
	}
	freeReplyObject(h);
}

/* Every hash and region set equals the model, and the checkpoint is the
 * head. skip >= 0: that player is left out. */
static inline void fx_check_all(struct fx *f, int skip)
{
	redisContext *c;

	/* Operator commands (mmo dlq retry) append an admin.action event of
	 * their own: a running projector folds it shortly after. */
	(void)fx_wait_caught_up(f, 10000);
	c = fx_redis(f);
	assert_int_equal(fx_checkpoint(c), fx_head(f));
	for (size_t i = 0; i < f->m.n; i++) {
		if ((int)i != skip)
			fx_check_player(c, &f->m.p[i]);
	}
	for (int r = 0; r < FX_REGIONS; r++) {
		char region[24];
		redisReply *s;
		size_t want = 0;

		fx_region_name(r, region, sizeof(region));
		s = redisCommand(c, "SMEMBERS mmo:region:%s:players", region);
		assert_non_null(s);
		for (size_t i = 0; i < f->m.n; i++) {
			const struct mplayer *p = &f->m.p[i];
			bool in = p->online && !strcmp(p->region, region);

			if ((int)i == skip) {
				continue;
			}
			want += in;
			if (in != fx_set_has(s, p->id))
				fail_msg("mmo:region:%s:players %s %s", region, in ? "lacks" : "has", p->id);
		}
		if (skip < 0 && s->elements != want)
			fail_msg("mmo:region:%s:players has %zu members, expected %zu", region, s->elements,
			         want);
		freeReplyObject(s);
	}
	redisFree(c);
}

/* A metric's value from views_runner_metrics for one view. */
static inline double fx_metric_v(struct fx *f, const char *view, const char *name)
{
	static char buf[65536];
	char needle[128];
	const char *p;

	views_runner_metrics(f->vr, buf, sizeof(buf));
	snprintf(needle, sizeof(needle), "\n%s{view=\"%s\"} ", name, view);
	p = strstr(buf, needle);
	if (!p)
		fail_msg("metric %s missing", name);
	return strtod(p + strlen(needle), NULL);
}

static inline double fx_metric(struct fx *f, const char *name)
{
	return fx_metric_v(f, "redis", name);
}

/* Run `mmo` with args; returns its exit status; its output goes to out. */
static inline int fx_mmo(const char *out, char *const args[])
{
	char *argv[32];
	size_t n = 0;
	int st;
	pid_t pid;

	argv[n++] = (char *)ts_mmo_bin();
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (out)
		truncate(out, 0);
	pid = ts_spawn(argv, out);
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline char *fx_slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

#endif
