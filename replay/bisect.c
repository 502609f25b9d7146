/* bisect.c - the first seq at which a built-in invariant fails.
 *
 * State invariants hold or fail per player, and an event can only break
 * one for a player it touches. So: check the snapshots in seq order (each
 * is a whole state: cheap next to a replay), start from the last one where
 * the invariant holds, and replay up to the first one where it fails,
 * checking after every event only the players and entities it touched. The
 * first failure found is the first seq at which the invariant fails after
 * that snapshot. dead_action is about history, which a snapshot does not
 * keep, so it (and "all") replays from the start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replay_int.h"
#include "schemas/mmo_util.h"

struct bisect {
	const char *inv;
	const world *w;
	bool bad;
	char why[256];
};

static void check_id(const char *id, void *arg)
{
	struct bisect *b = arg;

	if (!b->bad && !world_invariant_holds(b->w, b->inv, id, b->why, sizeof(b->why)))
		b->bad = true;
}

static int after(const world *w, const Mmo__Event *ev, const struct world_logged *lg, void *arg)
{
	struct bisect *b = arg;

	b->w = w;
	replay_touched(ev, lg, check_id, b);
	if (!b->bad && (!strcmp(b->inv, "all") || !strcmp(b->inv, "dead_action")) &&
	    !world_invariant_holds(w, "dead_action", NULL, b->why, sizeof(b->why)))
		b->bad = true;
	return b->bad;
}

/* Is the snapshot from this log (its seq there and the record hash equal)? */
static bool from_this_log(evlog *log, const struct world_snapinfo *s)
{
	static const uint8_t zero[EVLOG_HASH_LEN];
	struct evlog_rec rec;
	evlog_iter *it;
	bool ok;

	if (evlog_iter_open(log, EVLOG_ALL, NULL, s->seq, &it))
		return false;
	ok = evlog_iter_next(it, &rec) == MMO_OK && rec.seq == s->seq &&
	     (!memcmp(s->log_hash, zero, EVLOG_HASH_LEN) ||
	      !memcmp(s->log_hash, rec.hash, EVLOG_HASH_LEN));
	evlog_iter_close(it);
	return ok;
}

/* The state to start from: the last snapshot <= *to where the invariant
 * holds; *to becomes the first one where it fails, if any. */
static int start_state(const struct replay_opts *o, const char *inv, uint64_t *to, world **out)
{
	struct world_snapinfo *s;
	world *good = NULL;
	size_t n = 0;
	int err;

	s = calloc(WORLD_SNAP_KEEP * 2, sizeof(*s));
	if (!s)
		return MMO_ENOMEM;
	err = world_snapdb_list(o->snaps, s, WORLD_SNAP_KEEP * 2, &n);
	for (size_t i = 0; !err && i < n && s[i].seq <= *to; i++) {
		world *w = NULL;

		if (!s[i].valid || !from_this_log(o->log, &s[i]) ||
		    world_snapdb_get(o->snaps, s[i].seq, &w))
			continue;
		if (!world_invariant_holds(w, inv, NULL, NULL, 0)) {
			*to = s[i].seq;
			world_free(w);
			break;
		}
		world_free(good);
		good = w;
	}
	free(s);
	if (err) {
		world_free(good);
		return err;
	}
	if (!good)
		return world_new(o->seed, out);
	*out = good;
	return MMO_OK;
}

/* "unknown invariant 'x' (hp_range, ..., all)": the names from the world. */
static void unknown(const char *inv, char *buf, size_t cap)
{
	size_t len;
	int n = snprintf(buf, cap, "unknown invariant '%.64s' (", inv ? inv : "");

	len = n > 0 && (size_t)n < cap ? (size_t)n : 0;
	for (size_t i = 0; world_invariant_at(i) && len < cap; i++) {
		n = snprintf(buf + len, cap - len, "%s, ", world_invariant_at(i));
		if (n > 0)
			len += (size_t)n;
	}
	if (len < cap)
		snprintf(buf + len, cap - len, "all)");
}

int replay_bisect(const struct replay_opts *o, const char *inv, struct replay_result *res)
{
	struct bisect b = {inv, NULL, false, ""};
	int64_t t0 = mmo_mono_us();
	world *w = NULL;
	uint64_t to;
	int err;

	if (!o || !o->log || !res)
		return MMO_EINVAL;
	memset(res, 0, sizeof(*res));
	if (!world_invariant_known(inv)) {
		unknown(inv, res->what, sizeof(res->what));
		return MMO_EINVAL;
	}
	err = evlog_head(o->log, &res->head, NULL);
	if (err)
		return err;
	to = o->to_seq && o->to_seq < res->head ? o->to_seq : res->head;
	if (o->snaps && strcmp(inv, "all") && strcmp(inv, "dead_action"))
		err = start_state(o, inv, &to, &w);
	else
		err = world_new(o->seed, &w);
	if (err)
		return err;
	res->start_seq = world_seq(w);
	struct replay_opts plain = *o;
	plain.verify = false;
	plain.timeline = NULL;
	err = replay_fold(&plain, w, to, after, &b, res);
	if (!err && b.bad) {
		res->bad_seq = world_seq(w);
		snprintf(res->what, sizeof(res->what), "%s", b.why);
	}
	res->seconds = (double)(mmo_mono_us() - t0) / 1e6;
	world_free(w);
	return err;
}
