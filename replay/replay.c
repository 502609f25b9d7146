/* replay.c - rebuild the world's state from the log, optionally verifying
 * every decision and printing one player's timeline.
 *
 * The fold is the world's own (world.h): facts are applied at their seq, an
 * intent's outcomes are read back from the log by their derived ids and
 * applied with it, outcome records are skipped at their own seq. An intent
 * whose outcomes are not in the log yet (the world has not answered it)
 * stops the replay just before it: nothing after it can be known without
 * deciding it.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "event_json.h"
#include "mmo_util.h"
#include "replay_int.h"

#define PROGRESS_EVERY 4096         /* records between two looks at the clock */
#define ARENA_CAP      (512 * 1024) /* decoding one event of up to MMO_RECORD_MAX */

/* Records are decoded into one arena, reset per record: no malloc per
 * event on the replay's hot path. */
struct arena {
	uint8_t *buf;
	size_t used;
};

static void *arena_alloc(void *data, size_t size)
{
	struct arena *a = data;
	size_t off = (a->used + 15) & ~(size_t)15;

	if (off > ARENA_CAP || size > ARENA_CAP - off)
		return NULL;
	a->used = off + size;
	return a->buf + off;
}

static void arena_free(void *data, void *ptr)
{
	(void)data;
	(void)ptr;
}

static int decode(struct arena *a, const struct evlog_rec *rec, Mmo__Event **out)
{
	ProtobufCAllocator alloc = {arena_alloc, arena_free, a};
	Mmo__Event *ev;

	if (rec->event_len > MMO_RECORD_MAX)
		return MMO_ETOOBIG;
	a->used = 0;
	ev = mmo__event__unpack(&alloc, rec->event_len, rec->event);
	if (!ev)
		return MMO_EMALFORMED;
	ev->seq = rec->seq;
	ev->ts = rec->ts;
	*out = ev;
	return MMO_OK;
}

static const char *body_id(const Mmo__Event *ev, int which)
{
	switch (ev->body_case) {
	case MMO__EVENT__BODY_COMBAT_ATTACK: return which ? NULL : ev->combat_attack->defender_id;
	case MMO__EVENT__BODY_COMBAT_RESULT:
		return which ? ev->combat_result->defender_id : ev->combat_result->attacker_id;
	case MMO__EVENT__BODY_WORLD_SPAWN: return which ? NULL : ev->world_spawn->entity_id;
	case MMO__EVENT__BODY_WORLD_DESPAWN: return which ? NULL : ev->world_despawn->entity_id;
	case MMO__EVENT__BODY_WORLD_UPDATE: return which ? NULL : ev->world_update->entity_id;
	default: return NULL;
	}
}

static void touched1(const Mmo__Event *ev, void (*fn)(const char *, void *), void *arg)
{
	const char *id;

	if (ev->player_id && *ev->player_id)
		fn(ev->player_id, arg);
	for (int i = 0; i < 2; i++) {
		id = body_id(ev, i);
		if (id && *id)
			fn(id, arg);
	}
}

void replay_touched(const Mmo__Event *ev, const struct world_logged *lg,
                    void (*fn)(const char *id, void *arg), void *arg)
{
	touched1(ev, fn, arg);
	for (size_t i = 0; lg && i < lg->n; i++)
		touched1(lg->ev[i], fn, arg);
}

/* ---------------------------------------------------------------- verify */

/* The first key whose value differs between two JSON objects. */
static const char *first_diff(json_t *a, json_t *b, char *va, char *vb, size_t cap)
{
	const char *keys[64];
	size_t n = 0;
	const char *k;
	json_t *v;

	json_object_foreach(a, k, v)
	{
		if (n < 64)
			keys[n++] = k;
	}
	json_object_foreach(b, k, v)
	{
		if (n < 64 && !json_object_get(a, k))
			keys[n++] = k;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *x = json_object_get(a, keys[i]), *y = json_object_get(b, keys[i]);
		char *sx, *sy;

		if (!strcmp(keys[i], "seq") || !strcmp(keys[i], "ts"))
			continue;
		if (x && y && json_equal(x, y))
			continue;
		sx = x ? json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		sy = y ? json_dumps(y, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		snprintf(va, cap, "%s", sx ? sx : "(absent)");
		snprintf(vb, cap, "%s", sy ? sy : "(absent)");
		free(sx);
		free(sy);
		return keys[i];
	}
	return NULL;
}

static void names(const Mmo__Event *const *ev, size_t n, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = 0;
	for (size_t i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", ev[i]->type);
	if (!n)
		snprintf(buf, cap, "none");
}

/* Compare the rules' outcomes with the log's. Returns true if they agree,
 * else fills res. */
static bool same_outcomes(const Mmo__Event *in, const struct world_outcome *out,
                          struct world_logged *lg, struct replay_result *res)
{
	uint8_t a[MMO_RECORD_MAX], b[MMO_RECORD_MAX];
	const Mmo__Event *mine[WORLD_OUTCOME_MAX];
	char na[160], nb[160];

	for (size_t i = 0; i < out->n; i++)
		mine[i] = &out->ev[i].b.ev;
	if (out->n != lg->n) {
		names(mine, out->n, na, sizeof(na));
		names((const Mmo__Event *const *)lg->ev, lg->n, nb, sizeof(nb));
		res->diverged = true;
		res->bad_seq = in->seq;
		snprintf(res->what, sizeof(res->what),
		         "seq %llu (%s by %s): expected %zu outcomes (%s) from the rules, the log "
		         "has %zu (%s)",
		         (unsigned long long)in->seq, in->type, in->player_id, out->n, na, lg->n,
		         nb);
		return false;
	}
	for (size_t i = 0; i < out->n; i++) {
		size_t la = 0, lb = 0;
		uint64_t seq = lg->ev[i]->seq;
		int64_t ts = lg->ev[i]->ts;
		bool same;

		/* The log's copy carries its seq and ts; the bytes sent had none. */
		lg->ev[i]->seq = 0;
		lg->ev[i]->ts = 0;
		same = !mmo_event_encode(mine[i], a, sizeof(a), &la) &&
		       !mmo_event_encode(lg->ev[i], b, sizeof(b), &lb) && la == lb &&
		       !memcmp(a, b, la);
		lg->ev[i]->seq = seq;
		lg->ev[i]->ts = ts;
		if (same)
			continue;

		json_t *ja = mmo_event_to_json(mine[i]), *jb = mmo_event_to_json(lg->ev[i]);
		char va[256] = "?", vb[256] = "?";
		const char *key = ja && jb ? first_diff(ja, jb, va, vb, sizeof(va)) : NULL;

		res->diverged = true;
		res->bad_seq = in->seq;
		snprintf(res->what, sizeof(res->what),
		         "seq %llu (%s by %s): outcome %s (log seq %llu) field %s: expected %s "
		         "from the rules, actual %s in the log",
		         (unsigned long long)in->seq, in->type, in->player_id, out->ev[i].event_id,
		         (unsigned long long)lg->seq[i], key ? key : "(encoding)", va, vb);
		json_decref(ja);
		json_decref(jb);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- engine */

struct engine {
	const struct replay_opts *o;
	struct replay_result *res;
	struct world_snapinfo *snaps; /* --verify: to check, in seq order */
	size_t nsnaps, next_snap;
	bool touch; /* timeline: the current event touches o->player */
};

static void timeline_touch(const char *id, void *arg)
{
	struct engine *e = arg;

	if (!strcmp(id, e->o->player))
		e->touch = true;
}

static void timeline(struct engine *e, const world *w, const Mmo__Event *ev,
                     const struct world_logged *lg)
{
	char *player = NULL, *s;
	size_t len;

	e->touch = false;
	replay_touched(ev, lg, timeline_touch, e);
	if (!e->touch)
		return;
	fprintf(e->o->timeline, "{\"seq\":%llu,\"event\":", (unsigned long long)ev->seq);
	json_t *j = mmo_event_to_json(ev);
	s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	fputs(s ? s : "null", e->o->timeline);
	free(s);
	json_decref(j);
	fputs(",\"outcomes\":[", e->o->timeline);
	for (size_t i = 0; lg && i < lg->n; i++) {
		j = mmo_event_to_json(lg->ev[i]);
		s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		fprintf(e->o->timeline, "%s%s", i ? "," : "", s ? s : "null");
		free(s);
		json_decref(j);
	}
	fputs("],\"player\":", e->o->timeline);
	if (world_player_json(w, e->o->player, &player, &len) == MMO_OK)
		fwrite(player, 1, len, e->o->timeline);
	else
		fputs("null", e->o->timeline);
	free(player);
	fputs("}\n", e->o->timeline);
}

/* --verify: the state hash at each snapshot's seq must be the snapshot's. */
static void check_snapshots(struct engine *e, const world *w)
{
	while (e->next_snap < e->nsnaps && e->snaps[e->next_snap].seq <= world_seq(w) &&
	       !e->res->diverged) {
		const struct world_snapinfo *s = &e->snaps[e->next_snap++];
		uint8_t h[WORLD_HASH_LEN];
		char hx[2 * WORLD_HASH_LEN + 1], sx[2 * WORLD_HASH_LEN + 1];

		if (s->seq != world_seq(w))
			continue; /* inside a skipped range: cannot happen in seq order */
		e->res->snapshots_checked++;
		if (!s->valid) {
			e->res->diverged = true;
			e->res->bad_seq = s->seq;
			snprintf(e->res->what, sizeof(e->res->what),
			         "snapshot at seq %llu is corrupt: its bytes do not match its hash",
			         (unsigned long long)s->seq);
			return;
		}
		if (world_hash(w, h) || memcmp(h, s->hash, WORLD_HASH_LEN)) {
			world_hash_hex(h, hx);
			world_hash_hex(s->hash, sx);
			e->res->diverged = true;
			e->res->bad_seq = s->seq;
			snprintf(
			    e->res->what, sizeof(e->res->what),
			    "snapshot at seq %llu: state hash %s in the snapshot, %s by replay",
			    (unsigned long long)s->seq, sx, hx);
		}
	}
}

/* --verify after the replay stopped at an unanswered intent: nothing after
 * it may have been answered (the world answers in order). */
static int check_tail(const struct replay_opts *o, uint64_t pending, uint64_t to,
                      struct replay_result *res)
{
	struct evlog_rec rec;
	evlog_iter *it;
	int err = evlog_iter_open(o->log, EVLOG_ALL, NULL, pending + 1, &it);

	if (err)
		return err;
	while ((err = evlog_iter_next(it, &rec)) == MMO_OK && rec.seq <= to) {
		Mmo__Event *ev;

		if (evlog_rec_decode(&rec, &ev))
			continue;
		if (world_kind(ev) == WORLD_OUTCOME && ev->cause_seq > pending) {
			res->diverged = true;
			res->bad_seq = pending;
			snprintf(
			    res->what, sizeof(res->what),
			    "seq %llu: intent has no outcome in the log, but seq %llu answers the "
			    "later intent at seq %llu",
			    (unsigned long long)pending, (unsigned long long)rec.seq,
			    (unsigned long long)ev->cause_seq);
			mmo_event_free(ev);
			break;
		}
		mmo_event_free(ev);
	}
	evlog_iter_close(it);
	return err == MMO_ENOTFOUND || err == MMO_OK ? MMO_OK : err;
}

/* Is ev an outcome the world wrote ("w:<cause>:<k>")? */
static bool world_written(const Mmo__Event *ev)
{
	char want[MMO_ID_MAX + 1];
	int n = snprintf(want, sizeof(want), "w:%llu:", (unsigned long long)ev->cause_seq);

	return ev->event_id && !strncmp(ev->event_id, want, (size_t)n);
}

int replay_fold(const struct replay_opts *o, world *w, uint64_t to, replay_after_fn *after,
                void *arg, struct replay_result *res)
{
	struct engine e = {o, res, NULL, 0, 0, false};
	struct world_logged lg = {0};
	struct world_outcome out;
	struct evlog_rec rec;
	struct arena arena = {malloc(ARENA_CAP), 0};
	evlog_iter *it = NULL;
	int64_t t0 = mmo_mono_us(), last = t0;
	uint64_t from = world_seq(w) + 1, n = 0;
	int err;

	if (!arena.buf)
		return MMO_ENOMEM;
	if (o->verify && o->snaps) {
		size_t cnt = 0;

		e.snaps = calloc(WORLD_SNAP_KEEP * 2, sizeof(*e.snaps));
		if (!e.snaps) {
			err = MMO_ENOMEM;
			goto out;
		}
		err = world_snapdb_list(o->snaps, e.snaps, WORLD_SNAP_KEEP * 2, &cnt);
		if (err)
			goto out;
		e.nsnaps = cnt;
		while (e.next_snap < e.nsnaps && e.snaps[e.next_snap].seq < from)
			e.next_snap++;
	}
	err = evlog_iter_open(o->log, EVLOG_ALL, NULL, from, &it);
	if (err)
		goto out;
	while (!res->diverged && (err = evlog_iter_next(it, &rec)) == MMO_OK && rec.seq <= to) {
		Mmo__Event *ev = NULL;
		bool intent = false;
		int stop = 0;

		res->records++;
		err = decode(&arena, &rec, &ev);
		if (err) {
			snprintf(res->what, sizeof(res->what), "seq %llu does not decode: %s",
			         (unsigned long long)rec.seq, mmo_errdesc(err));
			res->bad_seq = rec.seq;
			err = MMO_ECORRUPT;
			break;
		}
		switch (world_kind(ev)) {
		case WORLD_FACT: world_apply_fact(w, ev); break;
		case WORLD_INTENT:
			err = world_logged_get(o->log, rec.seq, &lg);
			if (err) {
				snprintf(res->what, sizeof(res->what),
				         "seq %llu: its outcomes cannot be read back: %s",
				         (unsigned long long)rec.seq, mmo_errdesc(err));
				res->bad_seq = rec.seq;
				if (o->verify) {
					res->diverged = true;
					err = MMO_OK;
				}
				stop = 1;
				break;
			}
			if (!lg.n) {
				res->pending_seq = rec.seq;
				stop = 1;
				break;
			}
			if (o->verify &&
			    (world_decide(w, ev, &out) || !same_outcomes(ev, &out, &lg, res))) {
				if (!res->diverged) {
					res->diverged = true;
					res->bad_seq = rec.seq;
					snprintf(res->what, sizeof(res->what),
					         "seq %llu: the rules cannot decide this intent",
					         (unsigned long long)rec.seq);
				}
			}
			for (size_t i = 0; i < lg.n; i++)
				world_apply_outcome(w, lg.ev[i], ev);
			res->intents++;
			intent = true;
			break;
		case WORLD_OUTCOME:
			if (o->verify && !world_written(ev)) {
				res->diverged = true;
				res->bad_seq = rec.seq;
				snprintf(
				    res->what, sizeof(res->what),
				    "seq %llu: outcome %s of seq %llu was not written by the world "
				    "(ids are w:<cause>:<k>); the fold ignores it",
				    (unsigned long long)rec.seq, ev->event_id,
				    (unsigned long long)ev->cause_seq);
			}
			break;
		default: break;
		}
		if (stop || err) {
			world_logged_free(&lg);
			break;
		}
		world_set_seq(w, rec.seq);
		if (o->player && o->timeline && world_kind(ev) != WORLD_OUTCOME)
			timeline(&e, w, ev, intent ? &lg : NULL);
		if (e.nsnaps)
			check_snapshots(&e, w);
		if (after)
			stop = after(w, ev, intent ? &lg : NULL, arg);
		world_logged_free(&lg);
		if (stop)
			break;
		if (o->progress && ++n % PROGRESS_EVERY == 0) {
			int64_t now = mmo_mono_us();

			if (now - last >= 1000000) {
				double rate =
				    (double)(rec.seq - from + 1) * 1e6 / (double)(now - t0);

				o->progress(rec.seq - from + 1, to - from + 1, rate,
				            o->progress_arg);
				last = now;
			}
		}
	}
	if (err == MMO_ENOTFOUND)
		err = MMO_OK;
	if (!err && o->verify && res->pending_seq && !res->diverged)
		err = check_tail(o, res->pending_seq, to, res);
out:
	evlog_iter_close(it);
	free(e.snaps);
	free(arena.buf);
	res->seq = world_seq(w);
	return err;
}

int replay_run(const struct replay_opts *o, world **out, struct replay_result *res)
{
	int64_t t0 = mmo_mono_us();
	world *w = NULL;
	uint64_t to;
	int err;

	if (!o || !o->log || !res)
		return MMO_EINVAL;
	memset(res, 0, sizeof(*res));
	err = evlog_head(o->log, &res->head, NULL);
	if (err)
		return err;
	to = o->to_seq && o->to_seq < res->head ? o->to_seq : res->head;
	err = MMO_ENOTFOUND;
	if (o->from_snapshot && o->snaps && to > 0)
		err = world_snapdb_load(o->snaps, o->log, to, &w, NULL);
	if (err == MMO_ENOTFOUND)
		err = world_new(o->seed, &w);
	if (err)
		return err;
	res->start_seq = world_seq(w);
	err = replay_fold(o, w, to, NULL, NULL, res);
	res->seconds = (double)(mmo_mono_us() - t0) / 1e6;
	if (err || !out)
		world_free(w);
	else
		*out = w;
	return err;
}
