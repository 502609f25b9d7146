/* replay.c - rebuild the world's state from the log, optionally verifying
 * every decision and printing one player's timeline.
 *
 * The fold is the world's own (world.h): facts are applied at their seq, an
 * intent's outcomes are read back from the log (by a look-ahead cursor, else
 * by their derived ids: the same answer, see "look-ahead" below) and applied
 * with it, outcome records are skipped at their own seq. An intent
 * whose outcomes are not in the log yet (the world has not answered it)
 * stops the replay just before it: nothing after it can be known without
 * deciding it.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "replay_int.h"
#include "schemas/event_json.h"
#include "schemas/mmo_arena.h"
#include "schemas/mmo_util.h"

#define PROGRESS_EVERY 4096 /* records between two looks at the clock */

/* Records are decoded into one arena, reset per record: no malloc per
 * event on the replay's hot path. The envelope's seq and ts are the log's. */
static int decode(struct mmo_arena *a, const struct evlog_rec *rec, Mmo__Event **out)
{
	Mmo__Event *ev;
	int err = mmo_event_decode_arena(a, rec->event, rec->event_len, &ev);

	if (err)
		return err;
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

/* ------------------------------------------------------------ look-ahead
 *
 * The world appends the outcomes of an intent C ("w:C:0", "w:C:1", ...) in
 * one request, so they are contiguous in the log, after C, and the outcomes
 * of successive intents come in cause order. A second cursor running ahead
 * of the fold finds them by reading event ids straight from the encoded
 * records (no decode), decodes only the outcomes, once, into reused arenas.
 * Whatever it cannot prove, it leaves to world_logged_get() (by id), so the
 * result is always the one the by-id lookup gives:
 *   - w:C:0 not found ahead within LA_SCAN_MAX records (or a later intent's
 *     outcome first): by id;
 *   - a run w:C:0..w:C:n-1 with n < WORLD_OUTCOME_MAX: w:C:n is looked up by
 *     id and must be absent (ids are unique in the log), else by id;
 *   - an outcome that does not decode or is not an outcome of C: by id
 *     (which reports the error exactly as before).
 * The fold skips, without decoding, the outcome records the look-ahead
 * already validated when they come up at their own seq. */

#define LA_SCAN_MAX (1u << 16) /* records read ahead looking for w:C:0 */
_Static_assert(WORLD_OUTCOME_MAX <= 10, "outcome ids w:C:k have one digit k");
#define LA_DONE_MAX (1u << 15) /* outcome seqs the fold may skip (ring) */

struct lookahead {
	evlog *log;
	evlog_iter *it;
	struct evlog_rec rec; /* the peeked record, if have */
	bool have, end;
	uint64_t next; /* the seq the cursor is at (first not consumed) */
	struct mmo_arena ar[WORLD_OUTCOME_MAX];
	uint64_t *done; /* ring of validated outcome seqs, increasing */
	size_t dhead, dn;
	uint64_t dlast;
};

/* The event_id of an encoded Event (field 1), without decoding it. */
static bool peek_id(const uint8_t *p, size_t len, const uint8_t **id, size_t *idlen)
{
	size_t i = 0;

	*id = NULL;
	*idlen = 0;
	while (i < len) {
		uint64_t key = 0, v = 0;
		int sh = 0;

		do {
			if (i >= len || sh > 63)
				return false;
			key |= (uint64_t)(p[i] & 0x7f) << sh;
			sh += 7;
		} while (p[i++] & 0x80);
		switch (key & 7) {
		case 0:
			do {
				if (i >= len)
					return false;
			} while (p[i++] & 0x80);
			break;
		case 1:
			if (len - i < 8)
				return false;
			i += 8;
			break;
		case 5:
			if (len - i < 4)
				return false;
			i += 4;
			break;
		case 2:
			sh = 0;
			do {
				if (i >= len || sh > 63)
					return false;
				v |= (uint64_t)(p[i] & 0x7f) << sh;
				sh += 7;
			} while (p[i++] & 0x80);
			if (v > len - i)
				return false;
			if (key >> 3 == 1) {
				/* The first one: a later duplicate (not what encoders
				 * write) is caught by la_find()'s check of the decoded
				 * id, and only sends the intent to the by-id lookup. */
				*id = p + i;
				*idlen = (size_t)v;
				return true;
			}
			i += (size_t)v;
			break;
		default: return false;
		}
	}
	return true;
}

static int la_open(struct lookahead *la, evlog *log, uint64_t from)
{
	memset(la, 0, sizeof(*la));
	la->log = log;
	la->next = from;
	for (size_t k = 0; k < WORLD_OUTCOME_MAX; k++) {
		if (mmo_arena_init(&la->ar[k], 0))
			return MMO_ENOMEM;
	}
	la->done = malloc(LA_DONE_MAX * sizeof(*la->done));
	if (!la->done)
		return MMO_ENOMEM;
	return evlog_iter_open(log, EVLOG_ALL, NULL, from, &la->it);
}

static void la_close(struct lookahead *la)
{
	evlog_iter_close(la->it);
	la->it = NULL;
	for (size_t k = 0; k < WORLD_OUTCOME_MAX; k++)
		mmo_arena_release(&la->ar[k]);
	free(la->done);
}

/* The record at the cursor: MMO_OK, MMO_ENOTFOUND at the end. */
static int la_peek(struct lookahead *la, struct evlog_rec **rec)
{
	int err;

	if (!la->have) {
		if (la->end)
			return MMO_ENOTFOUND;
		err = evlog_iter_next(la->it, &la->rec);
		if (err == MMO_ENOTFOUND)
			la->end = true;
		if (err)
			return err;
		la->have = true;
	}
	*rec = &la->rec;
	return MMO_OK;
}

static void la_consume(struct lookahead *la)
{
	la->next = la->rec.seq + 1;
	la->have = false;
}

/* Put the cursor back at seq (after a search that failed). */
static int la_rewind(struct lookahead *la, uint64_t seq)
{
	evlog_iter_close(la->it);
	la->it = NULL;
	la->have = la->end = false;
	la->next = seq;
	return evlog_iter_open(la->log, EVLOG_ALL, NULL, seq, &la->it);
}

/* "w:<C>:" as a string; the id of outcome k is it followed by k. */
static size_t la_prefix(char *buf, uint64_t cause)
{
	char d[24];
	size_t n = 0, len = 0;

	do {
		d[n++] = (char)('0' + cause % 10);
		cause /= 10;
	} while (cause);
	buf[len++] = 'w';
	buf[len++] = ':';
	while (n)
		buf[len++] = d[--n];
	buf[len++] = ':';
	buf[len] = 0;
	return len;
}

static bool is_outcome_id(const uint8_t *id, size_t idlen, const char *pre, size_t plen, size_t k)
{
	return idlen == plen + 1 && !memcmp(id, pre, plen) && id[plen] == (uint8_t)('0' + k);
}

/* Is id "w:<X>:..." with X > cause (a later intent's outcome)? */
static bool later_outcome(const uint8_t *id, size_t idlen, uint64_t cause)
{
	uint64_t x = 0;
	size_t i = 2;

	if (idlen < 4 || id[0] != 'w' || id[1] != ':')
		return false;
	for (; i < idlen && id[i] >= '0' && id[i] <= '9' && i < 22; i++)
		x = x * 10 + (uint64_t)(id[i] - '0');
	return i > 2 && i < idlen && id[i] == ':' && x > cause;
}

/* The outcomes of intent `cause` into lg, decoded in the look-ahead's
 * arenas. MMO_ENOTFOUND: not proven here, ask world_logged_get(). */
static int la_find(struct lookahead *la, uint64_t cause, struct world_logged *lg)
{
	char pre[32], id[34];
	size_t plen = la_prefix(pre, cause);
	struct evlog_rec *rec;
	const uint8_t *rid;
	size_t ridlen, scanned = 0;
	uint64_t start = la->next, seq;
	int err;

	lg->n = 0;
	/* w:C:0, ahead. */
	for (;;) {
		err = la_peek(la, &rec);
		if (err)
			goto miss;
		if (rec->seq <= cause) {
			la_consume(la);
			continue;
		}
		if (!peek_id(rec->event, rec->event_len, &rid, &ridlen))
			goto miss;
		if (is_outcome_id(rid, ridlen, pre, plen, 0))
			break;
		if (later_outcome(rid, ridlen, cause) || ++scanned > LA_SCAN_MAX)
			goto miss;
		la_consume(la);
	}
	/* The run w:C:0, w:C:1, ... */
	for (size_t k = 0; k < WORLD_OUTCOME_MAX; k++) {
		Mmo__Event *ev;

		if (k) {
			err = la_peek(la, &rec);
			if (err == MMO_ENOTFOUND)
				break;
			if (err)
				goto miss;
			if (!peek_id(rec->event, rec->event_len, &rid, &ridlen) ||
			    !is_outcome_id(rid, ridlen, pre, plen, k))
				break;
		}
		if (decode(&la->ar[k], rec, &ev) || world_kind(ev) != WORLD_OUTCOME ||
		    ev->cause_seq != cause || !ev->event_id ||
		    !is_outcome_id((const uint8_t *)ev->event_id, strlen(ev->event_id), pre, plen,
		                   k))
			goto miss;
		lg->seq[lg->n] = rec->seq;
		lg->ev[lg->n++] = ev;
		la_consume(la);
	}
	/* No w:C:n anywhere else. */
	if (lg->n < WORLD_OUTCOME_MAX) {
		memcpy(id, pre, plen);
		id[plen] = (char)('0' + lg->n);
		id[plen + 1] = 0;
		err = evlog_find_id(la->log, id, &seq);
		if (err != MMO_ENOTFOUND) {
			lg->n = 0;
			return MMO_ENOTFOUND; /* found elsewhere, or an error: by id */
		}
	}
	/* The fold may skip these at their own seq. */
	for (size_t k = 0; k < lg->n; k++) {
		if (la->dn == LA_DONE_MAX || lg->seq[k] <= la->dlast)
			break;
		la->done[(la->dhead + la->dn++) % LA_DONE_MAX] = lg->seq[k];
		la->dlast = lg->seq[k];
	}
	return MMO_OK;
miss:
	lg->n = 0;
	err = la_rewind(la, start);
	return err ? err : MMO_ENOTFOUND;
}

/* Was seq validated as an outcome by the look-ahead? (Called in seq order.) */
static bool la_done(struct lookahead *la, uint64_t seq)
{
	while (la->dn && la->done[la->dhead] < seq) {
		la->dhead = (la->dhead + 1) % LA_DONE_MAX;
		la->dn--;
	}
	if (la->dn && la->done[la->dhead] == seq) {
		la->dhead = (la->dhead + 1) % LA_DONE_MAX;
		la->dn--;
		return true;
	}
	return false;
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

/* Outcomes from world_logged_get() are the heap's, the look-ahead's its own. */
static void logged_release(struct world_logged *lg, bool heap)
{
	if (heap)
		world_logged_free(lg);
	else
		lg->n = 0;
}

static void progress(const struct replay_opts *o, uint64_t *n, int64_t t0, int64_t *last,
                     uint64_t from, uint64_t to, uint64_t seq)
{
	if (o->progress && ++*n % PROGRESS_EVERY == 0) {
		int64_t now = mmo_mono_us();

		if (now - *last >= 1000000) {
			double rate = (double)(seq - from + 1) * 1e6 / (double)(now - t0);

			o->progress(seq - from + 1, to - from + 1, rate, o->progress_arg);
			*last = now;
		}
	}
}

int replay_fold(const struct replay_opts *o, world *w, uint64_t to, replay_after_fn *after,
                void *arg, struct replay_result *res)
{
	struct engine e = {o, res, NULL, 0, 0, false};
	struct world_logged lg = {0};
	struct world_outcome out;
	struct evlog_rec rec;
	struct mmo_arena arena;
	struct lookahead la = {0};
	bool lg_heap = false;
	evlog_iter *it = NULL;
	int64_t t0 = mmo_mono_us(), last = t0;
	uint64_t from = world_seq(w) + 1, n = 0;
	int err;

	if (mmo_arena_init(&arena, 0))
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
	err = la_open(&la, o->log, from);
	if (!err)
		err = evlog_iter_open(o->log, EVLOG_ALL, NULL, from, &it);
	if (err)
		goto out;
	while (!res->diverged && (err = evlog_iter_next(it, &rec)) == MMO_OK && rec.seq <= to) {
		Mmo__Event *ev = NULL;
		bool intent = false;
		int stop = 0;

		res->records++;
		if (!after && la_done(&la, rec.seq)) {
			/* An outcome the look-ahead decoded and checked already
			 * (world-written, of its cause): skipped at its seq. */
			world_set_seq(w, rec.seq);
			if (e.nsnaps)
				check_snapshots(&e, w);
			progress(o, &n, t0, &last, from, to, rec.seq);
			continue;
		}
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
			lg_heap = false;
			err = la_find(&la, rec.seq, &lg);
			if (err == MMO_ENOTFOUND) {
				lg_heap = true;
				err = world_logged_get(o->log, rec.seq, &lg);
			}
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
			logged_release(&lg, lg_heap);
			break;
		}
		world_set_seq(w, rec.seq);
		if (o->player && o->timeline && world_kind(ev) != WORLD_OUTCOME)
			timeline(&e, w, ev, intent ? &lg : NULL);
		if (e.nsnaps)
			check_snapshots(&e, w);
		if (after)
			stop = after(w, ev, intent ? &lg : NULL, arg);
		logged_release(&lg, lg_heap);
		if (stop)
			break;
		progress(o, &n, t0, &last, from, to, rec.seq);
	}
	if (err == MMO_ENOTFOUND)
		err = MMO_OK;
	if (!err && o->verify && res->pending_seq && !res->diverged)
		err = check_tail(o, res->pending_seq, to, res);
out:
	evlog_iter_close(it);
	la_close(&la);
	free(e.snaps);
	mmo_arena_release(&arena);
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
