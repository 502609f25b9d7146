/* follow.c - the gateway's one bus follower.
 *
 * One thread follows the whole bus (evlog_sub: in seq order, gaps filled
 * from the log) from the head at start, decodes each event once (into an
 * arena: no allocation per event) and:
 *   - an outcome (cause_seq != 0) goes to the requests waiting for it
 *     (gw_outcome_post: they may have been answered already by the world's
 *     decision in this process; then this only records the seq);
 *   - an event with a region is rendered once, straight into the WebSocket
 *     frame every socket it goes to shares, and posted to the event loop
 *     with what the hub needs to route it (region, player, position).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt.h"
#include "schemas/event_json.h"
#include "schemas/mmo_arena.h"
#include "schemas/mmo_hash.h"
#include "schemas/mmo_util.h"

#define POLL_MS 50

struct follower {
	gw *g;
	pthread_t th;
	bool started;
	atomic_bool stop;
	evlog_sub *sub;
	struct mmo_arena arena; /* each event decodes here: no malloc per event */
	char *json;             /* the render buffer, reused */
	size_t jcap;
};

static bool player_pos(const Mmo__Event *ev, const char **who, const Mmo__Vec3 **pos)
{
	if (ev->body_case == MMO__EVENT__BODY_WORLD_UPDATE && ev->world_update->position &&
	    ev->world_update->entity_id && ev->world_update->entity_type &&
	    !strcmp(ev->world_update->entity_type, "player")) {
		*who = ev->world_update->entity_id;
		*pos = ev->world_update->position;
		return true;
	}
	if (ev->body_case == MMO__EVENT__BODY_WORLD_SPAWN && ev->world_spawn->position &&
	    ev->world_spawn->entity_id && ev->world_spawn->entity_type &&
	    !strcmp(ev->world_spawn->entity_type, "player")) {
		*who = ev->world_spawn->entity_id;
		*pos = ev->world_spawn->position;
		return true;
	}
	return false;
}

static int on_rec(const struct evlog_rec *rec, void *arg)
{
	struct follower *f = arg;
	gw *g = f->g;
	struct gw_outcome o;
	struct rt_item *it;
	const char *who = NULL;
	const Mmo__Vec3 *pos = NULL;
	Mmo__Event *ev;
	long n;

	if (mmo_event_decode_arena(&f->arena, rec->event, rec->event_len, &ev))
		return 0;
	ev->seq = rec->seq;
	ev->ts = rec->ts;
	if (ev->cause_seq && gw_outcome_of(ev, rec->seq, &o))
		gw_outcome_post(g, &o);
	if (!ev->region_id || !ev->region_id[0] || !g->rt)
		goto out;
	n = mmo_event_json_write(ev, &f->json, &f->jcap);
	it = n > 0 ? rt_item_new(RT_I_EVENT) : NULL;
	if (!it)
		goto out;
	it->msg = gw_msg_text(f->json, (size_t)n, rec->priority, rec->ts);
	if (!it->msg) {
		rt_item_free(it);
		goto out;
	}
	snprintf(it->meta.region, sizeof(it->meta.region), "%s", ev->region_id);
	if (player_pos(ev, &who, &pos) && who) {
		snprintf(it->meta.player, sizeof(it->meta.player), "%s", who);
		it->meta.moved = true;
		it->meta.x = pos->x;
		it->meta.y = pos->y;
		if (ev->body_case == MMO__EVENT__BODY_WORLD_UPDATE) {
			it->meta.aoi = true;
			/* Behind sockets keep one position per player. */
			it->msg->ckey = mmo_fnv1a_str(who) | 1; /* never 0 */
		}
	} else if (ev->body_case == MMO__EVENT__BODY_WORLD_REJECT) {
		it->meta.reject = true;
		snprintf(it->meta.player, sizeof(it->meta.player), "%s",
		         ev->player_id ? ev->player_id : "");
	}
	rt_post(g->rt, it);
out:
	return 0;
}

static int open_sub(struct follower *f)
{
	gw *g = f->g;
	struct evlog_sub_opts so = {0};
	uint64_t head = 0;
	int rc = gw_log_head(g, &head);

	if (rc)
		return rc;
	so.zctx = g->o.zctx;
	so.bus = g->bus;
	so.log = g->o.log;
	so.ingest = g->ingest;
	so.from_seq = head + 1;
	so.role = "gateway";
	return evlog_sub_open(&so, &f->sub);
}

static void *follow_main(void *arg)
{
	struct follower *f = arg;
	int64_t last_warn = 0;

	mmo_thread_name("gw-follow");
	while (!atomic_load(&f->stop)) {
		int err = f->sub ? evlog_sub_poll(f->sub, POLL_MS, on_rec, f, NULL) : open_sub(f);

		if (err == MMO_ECLOSED)
			break;
		if (err) {
			gw_metrics_error(&f->g->m, GW_F_LOG);
			if (mmo_mono_us() - last_warn > 10000000) {
				mmo_logf(MMO_LOG_WARN, "gateway", "bus: %s", mmo_errdesc(err));
				last_warn = mmo_mono_us();
			}
			struct timespec ts = {0, 100000000};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int follower_start(gw *g, struct follower **out, char *err, size_t errlen)
{
	struct follower *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		return MMO_ENOMEM;
	f->g = g;
	if (mmo_arena_init(&f->arena, 0)) {
		free(f);
		return MMO_ENOMEM;
	}
	rc = open_sub(f);
	if (rc)
		mmo_logf(MMO_LOG_WARN, "gateway", "log at %s not reachable yet (%s): retrying",
		         g->ingest, mmo_errdesc(rc));
	if (pthread_create(&f->th, NULL, follow_main, f)) {
		snprintf(err, errlen, "cannot start the bus follower");
		evlog_sub_close(f->sub);
		mmo_arena_release(&f->arena);
		free(f);
		return MMO_EIO;
	}
	f->started = true;
	*out = f;
	return MMO_OK;
}

void follower_stop(struct follower *f)
{
	if (!f)
		return;
	atomic_store(&f->stop, true);
	if (f->started)
		pthread_join(f->th, NULL);
	evlog_sub_close(f->sub);
	mmo_arena_release(&f->arena);
	free(f->json);
	free(f);
}
