/* redis_view.c - the Redis view (hiredis).
 *
 * Keys (ARCHITECTURE.md, docs/views.md):
 *   mmo:player:{id}           hash: region_id x y z hp online seq username events
 *   mmo:region:{id}:players   set: the players online in the region
 *   mmo:region:{id}           channel: the JSON of every event of the region
 *   mmo:checkpoint:redis      the last seq applied
 *
 * One batch is two round trips, both pipelined:
 *   1. WATCH checkpoint + the batch's player keys; GET checkpoint; HMGET
 *      region_id online seq events of each player. The checkpoint must be the one
 *      expected (else the store was reset or moved: rewind). A player key of
 *      the wrong type refuses that player's event for good (dead-letter).
 *   2. WATCH + TYPE the region sets the batch touches; MULTI; the batch's
 *      writes, each player's part only if its stored seq is older (the seq
 *      guard); SET checkpoint; then, once the DLQ holds what was refused,
 *      EXEC. The watches make the reads of step 1 and the writes of step 2
 *      one atomic step: if anyone else touched those keys, EXEC does nothing
 *      and the batch is tried again.
 * A batch and its checkpoint are applied together or not at all, so a crash
 * anywhere cannot apply an event twice. Values are always separate argv
 * items, never formatted into a command string.
 */
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "schemas/event_json.h"
#include "schemas/mmo_hash.h"
#include "schemas/mmo_redis_url.h"
#include "schemas/mmo_util.h"
#include "views_int.h"

#define CK_KEY             "mmo:checkpoint:redis"
#define CONNECT_TIMEOUT_MS 1000
#define IO_TIMEOUT_MS      5000

/* ---------------------------------------------------------------- argv */

/* Commands built into one buffer: args as offsets (the buffer may grow),
 * resolved when sent. Reused from batch to batch. */
struct cmds {
	char *buf;
	size_t len, cap;
	size_t *off, *alen; /* per argument */
	size_t nargs, acap;
	size_t *cstart; /* per command: first argument */
	int *owner;     /* per command: event index, -1 none */
	size_t ncmds, ccap;
	char *out; /* scratch for sending: the protocol */
	size_t outcap;
	bool oom;
};

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 64;
	void *np;

	if (need <= *cap)
		return p;
	while (c < need)
		c *= 2;
	np = realloc(p, c * elem);
	if (np)
		*cap = c;
	return np;
}

static void cmds_reset(struct cmds *c)
{
	c->len = c->nargs = c->ncmds = 0;
	c->oom = false;
}

static void cmds_free(struct cmds *c)
{
	free(c->buf);
	free(c->off);
	free(c->alen);
	free(c->cstart);
	free(c->owner);
	free(c->out);
	memset(c, 0, sizeof(*c));
}

static void cmd_start(struct cmds *c, int owner)
{
	size_t cap = c->ccap;
	size_t *cs = grow(c->cstart, &cap, c->ncmds + 1, sizeof(size_t));
	int *ow;

	if (!cs) {
		c->oom = true;
		return;
	}
	c->cstart = cs;
	cap = c->ccap;
	ow = grow(c->owner, &cap, c->ncmds + 1, sizeof(int));
	if (!ow) {
		c->oom = true;
		return;
	}
	c->owner = ow;
	c->ccap = cap;
	c->cstart[c->ncmds] = c->nargs;
	c->owner[c->ncmds] = owner;
	c->ncmds++;
}

static void arg(struct cmds *c, const void *p, size_t n)
{
	size_t acap = c->acap, bcap = c->cap;
	size_t *off, *al;
	char *b;

	if (c->oom)
		return;
	off = grow(c->off, &acap, c->nargs + 1, sizeof(size_t));
	if (off)
		c->off = off;
	acap = c->acap;
	al = grow(c->alen, &acap, c->nargs + 1, sizeof(size_t));
	if (al)
		c->alen = al;
	b = grow(c->buf, &bcap, c->len + n + 1, 1);
	if (!off || !al || !b) {
		c->oom = true;
		return;
	}
	c->acap = acap;
	c->buf = b;
	c->cap = bcap;
	memcpy(c->buf + c->len, p, n);
	c->off[c->nargs] = c->len;
	c->alen[c->nargs] = n;
	c->nargs++;
	c->len += n;
}

static void args(struct cmds *c, const char *s)
{
	arg(c, s, strlen(s));
}

static void argf(struct cmds *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argf(struct cmds *c, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	arg(c, tmp, n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void argd(struct cmds *c, double v)
{
	char tmp[40];
	int n = views_fmt_double(tmp, sizeof(tmp), v);

	arg(c, tmp, (size_t)n);
}

/* Decimal digits of u at the end of tmp[24]: where they start. */
static char *fmt_u(char *end, size_t u)
{
	do {
		*--end = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	return end;
}

/* Append commands [from, to) to the context's output buffer: the protocol
 * (RESP) written here in one reused buffer, handed over in one piece; the
 * same bytes redisAppendCommandArgv would produce for each command. */
static int cmds_send(struct cmds *c, redisContext *rc, size_t from, size_t to)
{
	size_t a_from, a_to, need, o = 0;
	char *out;

	if (c->oom)
		return MMO_ENOMEM;
	if (from >= to)
		return MMO_OK;
	a_from = c->cstart[from];
	a_to = to < c->ncmds ? c->cstart[to] : c->nargs;
	/* "*N\r\n" per command, "$L\r\n...\r\n" per argument (at most 20+3
	 * digits and signs each) */
	need = (to - from) * 24 + (a_to - a_from) * 26;
	for (size_t i = a_from; i < a_to; i++)
		need += c->alen[i];
	if (c->outcap < need) {
		out = realloc(c->out, need);
		if (!out)
			return MMO_ENOMEM;
		c->out = out;
		c->outcap = need;
	}
	out = c->out;
	for (size_t k = from; k < to; k++) {
		size_t a0 = c->cstart[k], a1 = k + 1 < c->ncmds ? c->cstart[k + 1] : c->nargs;
		char tmp[24], *d;

		d = fmt_u(tmp + sizeof(tmp), a1 - a0);
		out[o++] = '*';
		memcpy(out + o, d, (size_t)(tmp + sizeof(tmp) - d));
		o += (size_t)(tmp + sizeof(tmp) - d);
		out[o++] = '\r';
		out[o++] = '\n';
		for (size_t a = a0; a < a1; a++) {
			d = fmt_u(tmp + sizeof(tmp), c->alen[a]);
			out[o++] = '$';
			memcpy(out + o, d, (size_t)(tmp + sizeof(tmp) - d));
			o += (size_t)(tmp + sizeof(tmp) - d);
			out[o++] = '\r';
			out[o++] = '\n';
			memcpy(out + o, c->buf + c->off[a], c->alen[a]);
			o += c->alen[a];
			out[o++] = '\r';
			out[o++] = '\n';
		}
	}
	if (redisAppendFormattedCommand(rc, out, o) != REDIS_OK)
		return MMO_EUNAVAIL;
	return MMO_OK;
}

/* The first argument of command k (its name) and its second (a key). */
static bool cmd_key_is(const struct cmds *c, size_t k, const char *key)
{
	size_t a = c->cstart[k] + 1, end = k + 1 < c->ncmds ? c->cstart[k + 1] : c->nargs;

	return a < end && c->alen[a] == strlen(key) && !memcmp(c->buf + c->off[a], key, c->alen[a]);
}

/* ---------------------------------------------------------------- state */

struct pl {
	const char *id; /* points into an event of the batch */
	bool exists, online, poisoned, dead_marked;
	uint64_t seq, events;
	char region[MMO_ID_MAX + 1];
	/* as the batch changes it (phase 2) */
	bool s_exists, s_online;
	uint64_t s_seq, s_events;
	char s_region[MMO_ID_MAX + 1];
};

struct rg {
	char id[MMO_ID_MAX + 1];
	bool poisoned;
};

/* A string index: open addressing over positions in an array, rebuilt per
 * batch (no allocation once warm). */
struct sidx {
	uint32_t *slot; /* position + 1, 0 = empty */
	size_t cap;     /* power of two */
};

struct rview {
	struct view base;
	struct mmo_redis_url url;
	redisContext *c;
	struct cmds cmds;
	struct pl *pl;
	size_t npl, plcap;
	struct sidx plx;
	struct rg *rg;
	size_t nrg, rgcap;
	struct sidx rgx;
	redisReply **rep;
	size_t repcap;
	char *json;
	size_t jsoncap;
};

/* Ready for up to n entries. */
static int sidx_reset(struct sidx *x, size_t n)
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

static struct pl *pl_find(struct rview *rv, const char *id)
{
	uint32_t *sl = sidx_slot(&rv->plx, id, pl_name, rv);

	return *sl ? &rv->pl[*sl - 1] : NULL;
}

/* Add id (if new). The table holds at most the batch's keys: sized by
 * pl_reset. */
static int pl_add(struct rview *rv, const char *id)
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

static int pl_reset(struct rview *rv, size_t n)
{
	struct pl *p = grow(rv->pl, &rv->plcap, n ? n : 1, sizeof(*p));

	if (!p)
		return MMO_ENOMEM;
	rv->pl = p;
	rv->npl = 0;
	return sidx_reset(&rv->plx, n);
}

static struct rg *rg_get(struct rview *rv, const char *id)
{
	uint32_t *sl = sidx_slot(&rv->rgx, id, rg_name, rv);
	struct rg *r;

	if (*sl)
		return &rv->rg[*sl - 1];
	if (rv->nrg * 2 + 2 > rv->rgx.cap)
		return NULL; /* sized by build() for every region a batch can name */
	r = grow(rv->rg, &rv->rgcap, rv->nrg + 1, sizeof(*r));
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

/* ---------------------------------------------------------------- connection */

static void set_err(struct rview *rv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct rview *rv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rv->base.err, sizeof(rv->base.err), fmt, ap);
	va_end(ap);
}

static void r_disconnect(struct view *v)
{
	struct rview *rv = (struct rview *)v;

	if (rv->c)
		redisFree(rv->c);
	rv->c = NULL;
}

static redisReply *cmd_sync(struct rview *rv, int argc, const char **argv)
{
	size_t lens[8];

	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return redisCommandArgv(rv->c, argc, argv, lens);
}

static int r_connect(struct view *v)
{
	struct rview *rv = (struct rview *)v;
	struct timeval ct = {CONNECT_TIMEOUT_MS / 1000, (CONNECT_TIMEOUT_MS % 1000) * 1000};
	struct timeval io = {IO_TIMEOUT_MS / 1000, (IO_TIMEOUT_MS % 1000) * 1000};
	redisReply *r;

	if (rv->c)
		return MMO_OK;
	rv->c = redisConnectWithTimeout(rv->url.host, rv->url.port, ct);
	if (!rv->c || rv->c->err) {
		set_err(rv, "redis %s:%d: %s", rv->url.host, rv->url.port,
		        rv->c ? rv->c->errstr : "out of memory");
		r_disconnect(v);
		return MMO_EUNAVAIL;
	}
	redisSetTimeout(rv->c, io);
	redisEnableKeepAlive(rv->c);
	if (rv->url.password[0]) {
		/* mmo_redis_url.h: AUTH [user] password */
		const char *a[] = {"AUTH", rv->url.user, rv->url.password};
		const char *b[] = {"AUTH", rv->url.password};

		r = rv->url.user[0] ? cmd_sync(rv, 3, a) : cmd_sync(rv, 2, b);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			set_err(rv, "redis AUTH: %s", r ? r->str : rv->c->errstr);
			freeReplyObject(r);
			r_disconnect(v);
			return MMO_EUNAVAIL;
		}
		freeReplyObject(r);
	}
	if (rv->url.db) {
		char db[16];
		const char *a[] = {"SELECT", db};

		snprintf(db, sizeof(db), "%d", rv->url.db);
		r = cmd_sync(rv, 2, a);
		if (!r || r->type == REDIS_REPLY_ERROR) {
			set_err(rv, "redis SELECT: %s", r ? r->str : rv->c->errstr);
			freeReplyObject(r);
			r_disconnect(v);
			return MMO_EUNAVAIL;
		}
		freeReplyObject(r);
	}
	return MMO_OK;
}

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

/* A reply holding the checkpoint: MMO_OK or MMO_EUNAVAIL (err set). */
static int ck_from_reply(struct rview *rv, const redisReply *r, uint64_t *ck)
{
	if (!r) {
		set_err(rv, "redis: %s", rv->c ? rv->c->errstr : "no connection");
		return MMO_EUNAVAIL;
	}
	if (r->type == REDIS_REPLY_NIL) {
		*ck = 0;
		return MMO_OK;
	}
	if (r->type == REDIS_REPLY_STRING && parse_u64(r->str, r->len, ck))
		return MMO_OK;
	if (r->type == REDIS_REPLY_ERROR)
		set_err(rv, "redis GET " CK_KEY ": %s", r->str);
	else
		set_err(rv, "redis: " CK_KEY " is not a seq");
	return MMO_EUNAVAIL;
}

static int r_checkpoint(struct view *v, uint64_t *seq)
{
	struct rview *rv = (struct rview *)v;
	const char *a[] = {"GET", CK_KEY};
	redisReply *r;
	int err;

	if (!rv->c)
		return MMO_EUNAVAIL;
	r = cmd_sync(rv, 2, a);
	err = ck_from_reply(rv, r, seq);
	freeReplyObject(r);
	return err;
}

/* Read n replies into rv->rep. MMO_OK or MMO_EUNAVAIL (the connection
 * broke: the replies read so far are freed). */
static int read_replies(struct rview *rv, size_t n)
{
	redisReply **rep = grow(rv->rep, &rv->repcap, n, sizeof(*rep));

	if (!rep)
		return MMO_ENOMEM;
	rv->rep = rep;
	for (size_t i = 0; i < n; i++) {
		void *r = NULL;

		if (redisGetReply(rv->c, &r) != REDIS_OK || !r) {
			set_err(rv, "redis: %s",
			        rv->c->errstr[0] ? rv->c->errstr : "connection lost");
			for (size_t j = 0; j < i; j++)
				freeReplyObject(rv->rep[j]);
			return MMO_EUNAVAIL;
		}
		rv->rep[i] = r;
	}
	return MMO_OK;
}

static void free_replies(struct rview *rv, size_t n)
{
	for (size_t i = 0; i < n; i++)
		freeReplyObject(rv->rep[i]);
}

static bool is_wrongtype(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "WRONGTYPE", 9);
}

/* One command now, its reply dropped: for UNWATCH / DISCARD. */
static int simple(struct rview *rv, const char *cmd)
{
	const char *a[] = {cmd};
	redisReply *r = cmd_sync(rv, 1, a);

	if (!r) {
		set_err(rv, "redis: %s", rv->c->errstr);
		return MMO_EUNAVAIL;
	}
	freeReplyObject(r);
	return MMO_OK;
}

/* ---------------------------------------------------------------- the fold */

static void key_player(char *buf, size_t cap, const char *id)
{
	snprintf(buf, cap, "mmo:player:%s", id);
}

/* The region an event puts a player in: its own, else where it was. */
static const char *new_region(const Mmo__Event *ev, const struct pl *p)
{
	return ev->region_id && *ev->region_id ? ev->region_id : p->s_region;
}

/* Move p between region sets as its online state and region change. */
static int membership(struct rview *rv, struct cmds *c, int owner, struct pl *p, bool online,
                      const char *region)
{
	char key[MMO_ID_MAX + 32];
	bool was = p->s_online && p->s_region[0];
	bool now = online && region[0];

	if (was && (!now || strcmp(p->s_region, region))) {
		if (!rg_get(rv, p->s_region))
			return MMO_ENOMEM;
		snprintf(key, sizeof(key), "mmo:region:%s:players", p->s_region);
		cmd_start(c, owner);
		args(c, "SREM");
		args(c, key);
		args(c, p->id);
	}
	if (now) {
		if (!rg_get(rv, region))
			return MMO_ENOMEM;
		snprintf(key, sizeof(key), "mmo:region:%s:players", region);
		cmd_start(c, owner);
		args(c, "SADD");
		args(c, key);
		args(c, p->id);
	}
	return MMO_OK;
}

static void hset_start(struct cmds *c, int owner, const struct pl *p, uint64_t seq)
{
	char key[MMO_ID_MAX + 16];

	key_player(key, sizeof(key), p->id);
	cmd_start(c, owner);
	args(c, "HSET");
	args(c, key);
	args(c, "seq");
	argf(c, "%llu", (unsigned long long)seq);
}

/* The last field of a player's HSET: how many events its hash has folded
 * (read in step 1, so no HINCRBY is needed: the watch keeps it exact). */
static void count_event(struct cmds *c, struct pl *p)
{
	args(c, "events");
	argf(c, "%llu", (unsigned long long)++p->s_events);
}

static void set_pos(struct cmds *c, const Mmo__Vec3 *v)
{
	args(c, "x");
	argd(c, v ? v->x : 0);
	args(c, "y");
	argd(c, v ? v->y : 0);
	args(c, "z");
	argd(c, v ? v->z : 0);
}

static void publish(struct cmds *c, int owner, const char *region, const char *json, size_t len)
{
	char ch[MMO_ID_MAX + 16];

	snprintf(ch, sizeof(ch), "mmo:region:%s", region);
	cmd_start(c, owner);
	args(c, "PUBLISH");
	args(c, ch);
	arg(c, json, len);
}

/* The writes of one event (index i). *skipped: every player part was
 * already in the store (nothing written, nothing published). */
static int event_cmds(struct rview *rv, struct cmds *c, int i, const struct vev *e,
                      const char *json, size_t jlen, bool *skipped)
{
	const Mmo__Event *ev = e->ev;
	struct pl *p = NULL, *q = NULL;
	const char *region;
	int err = MMO_OK;

	*skipped = false;
	if (e->nkeys > 0) {
		bool any = false;

		for (size_t k = 0; k < e->nkeys; k++) {
			struct pl *x = pl_find(rv, e->keys[k]);

			if (x && x->s_seq < e->seq)
				any = true;
		}
		if (!any) {
			*skipped = true;
			return MMO_OK;
		}
		p = pl_find(rv, e->keys[0]);
		if (p && p->s_seq >= e->seq)
			p = NULL; /* that part is already in the store */
	}

	switch (ev->body_case) {
	case MMO__EVENT__BODY_PLAYER_REGISTER:
		if (!p || p->s_exists)
			break; /* the first registration stands */
		hset_start(c, i, p, e->seq);
		args(c, "username");
		args(c, ev->player_register && ev->player_register->username
		            ? ev->player_register->username
		            : "");
		args(c, "region_id");
		args(c, "");
		set_pos(c, NULL);
		args(c, "hp");
		args(c, "0");
		args(c, "online");
		args(c, "0");
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
		args(c, "region_id");
		args(c, region);
		set_pos(c, ev->world_spawn->position);
		args(c, "hp");
		argf(c, "%u", ev->world_spawn->hp);
		args(c, "online");
		args(c, "1");
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
		args(c, "region_id");
		args(c, region);
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
			args(c, "hp");
			args(c, "0");
		} else {
			args(c, "online");
			args(c, "0");
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
			args(c, "hp");
			argf(c, "%u", ev->combat_result->defender_hp);
			count_event(c, p);
			p->s_exists = true;
			p->s_seq = e->seq;
		}
		if (e->nkeys > 1 && (q = pl_find(rv, e->keys[1])) && q->s_seq < e->seq) {
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

/* ---------------------------------------------------------------- json */

/* The JSON of an event into rv->json: its length, or -1. */
static long render(struct rview *rv, const Mmo__Event *ev)
{
	return mmo_event_json_write(ev, &rv->json, &rv->jsoncap);
}

static void mark_player_dead(struct rview *rv, struct vbatch *b, struct pl *p, const char *why)
{
	(void)rv;
	if (p->dead_marked)
		return;
	for (size_t i = 0; i < b->n; i++) {
		struct vev *e = &b->ev[i];

		if (e->state != VEV_APPLY)
			continue;
		for (size_t k = 0; k < e->nkeys; k++) {
			if (!strcmp(e->keys[k], p->id)) {
				vb_dead(e, "%s", why);
				p->dead_marked = true;
				return;
			}
		}
	}
}

/* Phase 1: watch and read. */
static int read_players(struct rview *rv, struct vbatch *b, bool write_ck, uint64_t expect,
                        uint64_t *found)
{
	struct cmds *c = &rv->cmds;
	char key[MMO_ID_MAX + 16];
	size_t nq, r = 0;
	int err;

	if (pl_reset(rv, 2 * b->n))
		return MMO_ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		const struct vev *e = &b->ev[i];

		for (size_t k = 0; e->state == VEV_APPLY && k < e->nkeys; k++) {
			if (pl_add(rv, e->keys[k]))
				return MMO_ENOMEM;
		}
	}
	if (!write_ck && rv->npl == 0)
		return MMO_OK;
	cmds_reset(c);
	cmd_start(c, -1);
	args(c, "WATCH");
	if (write_ck)
		args(c, CK_KEY);
	for (size_t i = 0; i < rv->npl; i++) {
		key_player(key, sizeof(key), rv->pl[i].id);
		args(c, key);
	}
	if (write_ck) {
		cmd_start(c, -1);
		args(c, "GET");
		args(c, CK_KEY);
	}
	for (size_t i = 0; i < rv->npl; i++) {
		key_player(key, sizeof(key), rv->pl[i].id);
		cmd_start(c, -1);
		args(c, "HMGET");
		args(c, key);
		args(c, "region_id");
		args(c, "online");
		args(c, "seq");
		args(c, "events");
	}
	nq = c->ncmds;
	if ((err = cmds_send(c, rv->c, 0, nq)) || (err = read_replies(rv, nq)))
		return err == MMO_ENOMEM ? MMO_EUNAVAIL : err;
	err = MMO_OK;
	if (rv->rep[r]->type == REDIS_REPLY_ERROR) {
		set_err(rv, "redis WATCH: %s", rv->rep[r]->str);
		err = MMO_EUNAVAIL;
		goto out;
	}
	r++;
	if (write_ck) {
		uint64_t ck;

		if ((err = ck_from_reply(rv, rv->rep[r++], &ck)))
			goto out;
		if (ck != expect) {
			*found = ck;
			err = simple(rv, "UNWATCH");
			if (!err)
				err = MMO_EREWIND;
			goto out;
		}
	}
	for (size_t i = 0; i < rv->npl; i++, r++) {
		const redisReply *x = rv->rep[r];
		struct pl *p = &rv->pl[i];

		if (is_wrongtype(x)) {
			p->poisoned = true;
			continue;
		}
		if (x->type != REDIS_REPLY_ARRAY || x->elements != 4) {
			set_err(rv, "redis HMGET mmo:player:%s: %s", p->id,
			        x->type == REDIS_REPLY_ERROR ? x->str : "unexpected reply");
			err = MMO_EUNAVAIL;
			goto out;
		}
		if (x->element[0]->type == REDIS_REPLY_STRING)
			snprintf(p->region, sizeof(p->region), "%.*s", (int)x->element[0]->len,
			         x->element[0]->str);
		p->online = x->element[1]->type == REDIS_REPLY_STRING && x->element[1]->len == 1 &&
		            x->element[1]->str[0] == '1';
		if (x->element[2]->type == REDIS_REPLY_STRING) {
			p->exists = true;
			if (!parse_u64(x->element[2]->str, x->element[2]->len, &p->seq))
				p->seq = 0;
		}
		if (x->element[3]->type != REDIS_REPLY_STRING ||
		    !parse_u64(x->element[3]->str, x->element[3]->len, &p->events))
			p->events = 0;
	}
	for (size_t i = 0; i < rv->npl; i++) {
		if (rv->pl[i].poisoned) {
			char why[VIEWS_ERROR_MAX + 1];

			snprintf(why, sizeof(why),
			         "WRONGTYPE mmo:player:%s holds a value that is not a hash",
			         rv->pl[i].id);
			mark_player_dead(rv, b, &rv->pl[i], why);
		}
	}
	vb_cascade(b);
out:
	free_replies(rv, nq);
	return err;
}

/* Phase 2 once: build the writes of the applicable events. */
static int build(struct rview *rv, struct vbatch *b, bool write_ck, bool *again)
{
	struct cmds *c = &rv->cmds;

	*again = false;
	cmds_reset(c);
	rv->nrg = 0;
	/* at most two regions per event (from and to) */
	if (sidx_reset(&rv->rgx, 2 * b->n + 2))
		return MMO_ENOMEM;
	for (size_t i = 0; i < rv->npl; i++) {
		struct pl *p = &rv->pl[i];

		p->s_exists = p->exists;
		p->s_online = p->online;
		p->s_seq = p->seq;
		p->s_events = p->events;
		memcpy(p->s_region, p->region, sizeof(p->region));
	}
	for (size_t i = 0; i < b->n; i++) {
		struct vev *e = &b->ev[i];
		long jlen = 0;
		bool skipped;
		int err;

		if (e->state != VEV_APPLY)
			continue;
		if (e->ev->region_id && *e->ev->region_id) {
			jlen = render(rv, e->ev);
			if (jlen < 0) {
				vb_dead(e, "encode: cannot render the event as JSON");
				vb_cascade(b);
				*again = true;
				return MMO_OK;
			}
		}
		err = event_cmds(rv, c, (int)i, e, rv->json, (size_t)jlen, &skipped);
		if (err)
			return err;
	}
	if (write_ck) {
		cmd_start(c, -1);
		args(c, "SET");
		args(c, CK_KEY);
		argf(c, "%llu", (unsigned long long)b->last);
	}
	return c->oom ? MMO_ENOMEM : MMO_OK;
}

static int exec_batch(struct rview *rv, struct vbatch *b, bool write_ck)
{
	struct cmds *c = &rv->cmds;
	struct cmds pre = {0};
	size_t nq, r = 0, npre;
	int err;

	for (int round = 0;; round++) {
		bool again;

		if ((err = build(rv, b, write_ck, &again)))
			return err == MMO_ENOMEM ? MMO_EUNAVAIL : err;
		if (again) {
			if (round > (int)b->n + 2)
				return MMO_EUNAVAIL;
			continue;
		}
		/* WATCH and TYPE the region sets, MULTI, the writes. */
		cmds_reset(&pre);
		if (rv->nrg) {
			cmd_start(&pre, -1);
			args(&pre, "WATCH");
			for (size_t i = 0; i < rv->nrg; i++)
				argf(&pre, "mmo:region:%s:players", rv->rg[i].id);
			for (size_t i = 0; i < rv->nrg; i++) {
				cmd_start(&pre, -1);
				args(&pre, "TYPE");
				argf(&pre, "mmo:region:%s:players", rv->rg[i].id);
			}
		}
		cmd_start(&pre, -1);
		args(&pre, "MULTI");
		npre = pre.ncmds;
		nq = npre + c->ncmds;
		if ((err = cmds_send(&pre, rv->c, 0, npre)) ||
		    (err = cmds_send(c, rv->c, 0, c->ncmds)) || (err = read_replies(rv, nq))) {
			cmds_free(&pre);
			return err == MMO_ENOMEM ? MMO_EUNAVAIL : err;
		}
		bool bad_region = false, queue_err = false;

		r = 0;
		if (rv->nrg) {
			r++; /* WATCH */
			for (size_t i = 0; i < rv->nrg; i++, r++) {
				const redisReply *x = rv->rep[r];

				if (x->type == REDIS_REPLY_STATUS && strcmp(x->str, "set") &&
				    strcmp(x->str, "none")) {
					rv->rg[i].poisoned = true;
					bad_region = true;
				} else if (x->type == REDIS_REPLY_ERROR) {
					set_err(rv, "redis TYPE: %s", x->str);
					queue_err = true;
				}
			}
		}
		if (rv->rep[r]->type == REDIS_REPLY_ERROR) {
			set_err(rv, "redis MULTI: %s", rv->rep[r]->str);
			queue_err = true;
		}
		r++;
		for (size_t k = 0; k < c->ncmds; k++, r++) {
			if (rv->rep[r]->type == REDIS_REPLY_ERROR && !queue_err) {
				set_err(rv, "redis (queued): %s", rv->rep[r]->str);
				queue_err = true;
			}
		}
		free_replies(rv, nq);
		if (bad_region) {
			for (size_t i = 0; i < rv->nrg; i++) {
				char key[MMO_ID_MAX + 32];

				if (!rv->rg[i].poisoned)
					continue;
				snprintf(key, sizeof(key), "mmo:region:%s:players", rv->rg[i].id);
				for (size_t k = 0; k < c->ncmds; k++) {
					int o = c->owner[k];

					if (o >= 0 && b->ev[o].state == VEV_APPLY &&
					    cmd_key_is(c, k, key))
						vb_dead(
						    &b->ev[o],
						    "WRONGTYPE %s holds a value that is not a set",
						    key);
				}
			}
			vb_cascade(b);
		}
		if (queue_err) {
			simple(rv, "DISCARD");
			err = MMO_EUNAVAIL;
			break;
		}
		if (bad_region) {
			/* Record the refusals now, drop the transaction (and with it
			 * every watch) and let the core try the batch again: the
			 * refused events are then in the DLQ and left out. */
			if (b->hook && b->hook(b, b->hook_arg)) {
				simple(rv, "DISCARD");
				set_err(rv, "dlq: cannot record the refused events");
				err = MMO_EIO;
				break;
			}
			err = simple(rv, "DISCARD");
			if (!err) {
				set_err(rv, "redis: a region set has the wrong type: trying again");
				err = MMO_ERACE;
			}
			break;
		}
		/* What was refused is durable before the batch commits. */
		if (b->hook && (err = b->hook(b, b->hook_arg))) {
			simple(rv, "DISCARD");
			set_err(rv, "dlq: cannot record the refused events");
			err = MMO_EIO;
			break;
		}
		{
			const char *a[] = {"EXEC"};
			redisReply *x = cmd_sync(rv, 1, a);

			if (!x) {
				set_err(rv, "redis EXEC: %s", rv->c->errstr);
				err = MMO_EUNAVAIL;
				break;
			}
			if (x->type == REDIS_REPLY_NIL) {
				freeReplyObject(x);
				set_err(rv, "redis: a watched key changed: trying again");
				err = MMO_ERACE;
				break;
			}
			if (x->type != REDIS_REPLY_ARRAY) {
				set_err(rv, "redis EXEC: %s",
				        x->type == REDIS_REPLY_ERROR ? x->str : "unexpected reply");
				freeReplyObject(x);
				err = MMO_EUNAVAIL;
				break;
			}
			/* Errors inside EXEC cannot come from the types (watched);
			 * should one come anyway, its event is dead-lettered. */
			bool late = false;

			for (size_t k = 0; k < x->elements && k < c->ncmds; k++) {
				int o = c->owner[k];

				if (x->element[k]->type != REDIS_REPLY_ERROR || o < 0)
					continue;
				if (b->ev[o].state == VEV_APPLY) {
					vb_dead(&b->ev[o], "redis: %s", x->element[k]->str);
					late = true;
				}
			}
			freeReplyObject(x);
			if (late && b->hook && b->hook(b, b->hook_arg))
				mmo_logf(MMO_LOG_ERROR, "views",
				         "redis: could not record a refused event");
			err = MMO_OK;
		}
		break;
	}
	cmds_free(&pre);
	return err;
}

static int r_apply(struct view *v, struct vbatch *b, bool write_ck, uint64_t expect,
                   uint64_t *found)
{
	struct rview *rv = (struct rview *)v;
	int err;

	if (!rv->c) {
		set_err(rv, "redis: not connected");
		return MMO_EUNAVAIL;
	}
	err = read_players(rv, b, write_ck, expect, found);
	if (err)
		return err;
	return exec_batch(rv, b, write_ck);
}

/* ---------------------------------------------------------------- drop */

static int scan_delete(struct rview *rv, const char *pattern, uint64_t *done,
                       views_progress_fn *progress, void *arg)
{
	char cursor[32] = "0";

	do {
		const char *a[] = {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
		redisReply *r = cmd_sync(rv, 6, a), *keys;

		if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			set_err(rv, "redis SCAN: %s",
			        r && r->type == REDIS_REPLY_ERROR ? r->str
			        : r                               ? "unexpected reply"
			                                          : rv->c->errstr);
			freeReplyObject(r);
			return MMO_EUNAVAIL;
		}
		snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len,
		         r->element[0]->str);
		keys = r->element[1];
		if (keys->elements) {
			const char **av = malloc((keys->elements + 1) * sizeof(*av));
			size_t *al = malloc((keys->elements + 1) * sizeof(*al));
			redisReply *d;

			if (!av || !al) {
				free(av);
				free(al);
				freeReplyObject(r);
				return MMO_ENOMEM;
			}
			av[0] = "UNLINK";
			al[0] = 6;
			for (size_t i = 0; i < keys->elements; i++) {
				av[i + 1] = keys->element[i]->str;
				al[i + 1] = keys->element[i]->len;
			}
			d = redisCommandArgv(rv->c, (int)keys->elements + 1, av, al);
			free(av);
			free(al);
			if (!d || d->type == REDIS_REPLY_ERROR) {
				set_err(rv, "redis UNLINK: %s", d ? d->str : rv->c->errstr);
				freeReplyObject(d);
				freeReplyObject(r);
				return MMO_EUNAVAIL;
			}
			freeReplyObject(d);
			*done += keys->elements;
			if (progress)
				progress("drop", *done, 0, arg);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0"));
	return MMO_OK;
}

static int r_drop(struct view *v, views_progress_fn *progress, void *arg)
{
	struct rview *rv = (struct rview *)v;
	const char *a[] = {"DEL", CK_KEY};
	redisReply *r;
	uint64_t done = 0;
	int err;

	if (!rv->c)
		return MMO_EUNAVAIL;
	/* The checkpoint first: a reader of it never sees a half-dropped view
	 * claim to be current. */
	r = cmd_sync(rv, 2, a);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		set_err(rv, "redis DEL: %s", r ? r->str : rv->c->errstr);
		freeReplyObject(r);
		return MMO_EUNAVAIL;
	}
	freeReplyObject(r);
	if ((err = scan_delete(rv, "mmo:player:*", &done, progress, arg)))
		return err;
	return scan_delete(rv, "mmo:region:*:players", &done, progress, arg);
}

/* ---------------------------------------------------------------- setup */

static void r_free(struct view *v)
{
	struct rview *rv = (struct rview *)v;

	if (!rv)
		return;
	r_disconnect(v);
	cmds_free(&rv->cmds);
	free(rv->pl);
	free(rv->plx.slot);
	free(rv->rg);
	free(rv->rgx.slot);
	free(rv->rep);
	free(rv->json);
	free(rv);
}

static const struct view_ops redis_ops = {
    .name = "redis",
    .id = VIEW_ID_REDIS,
    .connect = r_connect,
    .disconnect = r_disconnect,
    .checkpoint = r_checkpoint,
    .apply = r_apply,
    .drop = r_drop,
    .free = r_free,
};

int redis_view_new(const char *url, struct view **out, char *errmsg, size_t errlen)
{
	struct rview *rv = calloc(1, sizeof(*rv));

	if (!rv)
		return MMO_ENOMEM;
	rv->base.ops = &redis_ops;
	if (mmo_redis_url_parse(url, &rv->url, errmsg, errlen)) {
		free(rv);
		return MMO_EINVAL;
	}
	*out = &rv->base;
	return MMO_OK;
}
