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
 *
 * Files: this one holds the connection and the round trips; redis_cmds.c
 * what each event writes; resp.c the command buffer.
 */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "redis_int.h"
#include "schemas/event_json.h"
#include "schemas/mmo_util.h"

#define CK_KEY             "mmo:checkpoint:redis"
#define CONNECT_TIMEOUT_MS 1000
#define IO_TIMEOUT_MS      5000

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
	redisReply **rep = views_grow(rv->rep, &rv->repcap, n, sizeof(*rep));

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
	struct resp *c = &rv->cmds;
	char key[MMO_ID_MAX + 16];
	size_t nq, r = 0;
	int err;

	if (rv_pl_reset(rv, 2 * b->n))
		return MMO_ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		const struct vev *e = &b->ev[i];

		for (size_t k = 0; e->state == VEV_APPLY && k < e->nkeys; k++) {
			if (rv_pl_add(rv, e->keys[k]))
				return MMO_ENOMEM;
		}
	}
	if (!write_ck && rv->npl == 0)
		return MMO_OK;
	resp_reset(c);
	resp_cmd(c, -1);
	resp_args(c, "WATCH");
	if (write_ck)
		resp_args(c, CK_KEY);
	for (size_t i = 0; i < rv->npl; i++) {
		rv_key_player(key, sizeof(key), rv->pl[i].id);
		resp_args(c, key);
	}
	if (write_ck) {
		resp_cmd(c, -1);
		resp_args(c, "GET");
		resp_args(c, CK_KEY);
	}
	for (size_t i = 0; i < rv->npl; i++) {
		rv_key_player(key, sizeof(key), rv->pl[i].id);
		resp_cmd(c, -1);
		resp_args(c, "HMGET");
		resp_args(c, key);
		resp_args(c, "region_id");
		resp_args(c, "online");
		resp_args(c, "seq");
		resp_args(c, "events");
	}
	nq = c->ncmds;
	if ((err = resp_send(c, rv->c, 0, nq)) || (err = read_replies(rv, nq)))
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
	struct resp *c = &rv->cmds;

	*again = false;
	resp_reset(c);
	rv->nrg = 0;
	/* at most two regions per event (from and to) */
	if (rv_sidx_reset(&rv->rgx, 2 * b->n + 2))
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
		err = rv_event_cmds(rv, c, (int)i, e, rv->json, (size_t)jlen, &skipped);
		if (err)
			return err;
	}
	if (write_ck) {
		resp_cmd(c, -1);
		resp_args(c, "SET");
		resp_args(c, CK_KEY);
		resp_argf(c, "%llu", (unsigned long long)b->last);
	}
	return c->oom ? MMO_ENOMEM : MMO_OK;
}

static int exec_batch(struct rview *rv, struct vbatch *b, bool write_ck)
{
	struct resp *c = &rv->cmds;
	struct resp pre = {0};
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
		resp_reset(&pre);
		if (rv->nrg) {
			resp_cmd(&pre, -1);
			resp_args(&pre, "WATCH");
			for (size_t i = 0; i < rv->nrg; i++)
				resp_argf(&pre, "mmo:region:%s:players", rv->rg[i].id);
			for (size_t i = 0; i < rv->nrg; i++) {
				resp_cmd(&pre, -1);
				resp_args(&pre, "TYPE");
				resp_argf(&pre, "mmo:region:%s:players", rv->rg[i].id);
			}
		}
		resp_cmd(&pre, -1);
		resp_args(&pre, "MULTI");
		npre = pre.ncmds;
		nq = npre + c->ncmds;
		if ((err = resp_send(&pre, rv->c, 0, npre)) ||
		    (err = resp_send(c, rv->c, 0, c->ncmds)) || (err = read_replies(rv, nq))) {
			resp_free(&pre);
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
					    resp_key_is(c, k, key))
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
	resp_free(&pre);
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
	resp_free(&rv->cmds);
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
