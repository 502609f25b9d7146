/* gen.c - a deterministic event log for the audit tests.
 *
 * Event i has type kinds[i % 12]; its player (when the type has one) is
 * "p1".."p7" and its region "r1".."r3" or none, by simple formulas, so
 * every filter and combination has a few hundred matches in a few thousand
 * events. */
#include <stdio.h>
#include <string.h>

#include "log/evlog.h"
#include "gen.h"

static const struct {
	const char *type;
	bool player, region;
} kinds[] = {
    {"player.login", true, true},   {"player.move", true, true},
    {"combat.attack", true, true},  {"combat.result", true, true},
    {"world.spawn", false, true},   {"security.login_failed", false, false},
    {"player.move", true, true},    {"admin.action", false, false},
    {"world.reject", true, true},   {"combat.defend", true, false},
    {"stats.update", false, false}, {"player.logout", true, true},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const results[] = {"hit", "miss", "critical"};

static int build(size_t i, struct gen_ev *t, uint8_t *buf, size_t cap, size_t *len)
{
	struct mmo_ev b;
	char id[32];
	const char *type = kinds[i % NKINDS].type;
	int err;

	memset(t, 0, sizeof(*t));
	t->type = type;
	if (kinds[i % NKINDS].player)
		snprintf(t->player, sizeof(t->player), "p%zu", (i * 5) % 7 + 1);
	if (kinds[i % NKINDS].region)
		snprintf(t->region, sizeof(t->region), "r%zu", (i / 5) % 3 + 1);
	snprintf(id, sizeof(id), "ev-%zu", i);
	err = mmo_ev_init(&b, type, id, t->player, t->region);
	if (err)
		return err;
	switch (b.ev.body_case) {
	case MMO__EVENT__BODY_PLAYER_LOGIN:
		b.body.player_login.session_id = "s-1";
		b.body.player_login.username = t->player;
		break;
	case MMO__EVENT__BODY_PLAYER_LOGOUT:
		b.body.player_logout.reason = "bye, \"friends\"";
		break;
	case MMO__EVENT__BODY_PLAYER_MOVE:
	case MMO__EVENT__BODY_WORLD_SPAWN:
		mmo_ev_set_pos(&b, (double)(i % 100), 2.5, -1);
		if (b.ev.body_case == MMO__EVENT__BODY_WORLD_SPAWN)
			b.body.world_spawn.entity_id = "npc-1";
		break;
	case MMO__EVENT__BODY_COMBAT_ATTACK:
		b.body.combat_attack.defender_id = "p9";
		b.body.combat_attack.skill_id = "slash";
		break;
	case MMO__EVENT__BODY_COMBAT_RESULT:
		snprintf(t->result, sizeof(t->result), "%s", results[(i / NKINDS) % 3]);
		b.body.combat_result.attacker_id = t->player;
		b.body.combat_result.defender_id = "p9";
		b.body.combat_result.result = t->result;
		b.body.combat_result.damage = 7;
		b.ev.cause_seq = i; /* the attack just before (seq i) */
		break;
	case MMO__EVENT__BODY_SECURITY:
		b.body.security.kind = "login_failed";
		b.body.security.source = (i / NKINDS) % 2 ? "10.0.0.2" : "10.0.0.1";
		b.body.security.count = 3;
		break;
	case MMO__EVENT__BODY_ADMIN_ACTION:
		b.body.admin_action.command = "user role";
		b.body.admin_action.actor = "ops<1>";
		b.body.admin_action.detail = "grant auditor to p1";
		break;
	case MMO__EVENT__BODY_WORLD_REJECT:
		b.body.world_reject.reason = "out_of_bounds";
		b.body.world_reject.detail = "x, y";
		break;
	case MMO__EVENT__BODY_STATS_UPDATE:
		b.body.stats_update.name = "online";
		b.body.stats_update.value = 3.5;
		break;
	default: break;
	}
	return mmo_event_encode(&b.ev, buf, cap, len);
}

int gen_log(const char *data_dir, size_t n, int days, struct gen_ev *truth)
{
	static uint8_t bufs[GEN_BATCH][1024];
	struct evlog_in in[GEN_BATCH];
	struct evlog_out out[GEN_BATCH];
	struct gen_ev t[GEN_BATCH];
	struct evlog_opts o = {0};
	char dir[4096], msg[256];
	size_t nbatches = (n + GEN_BATCH - 1) / GEN_BATCH;
	int64_t step = nbatches ? (int64_t)days * GEN_DAY_US / (int64_t)nbatches : 0;
	evlog *l;
	int err;

	snprintf(dir, sizeof(dir), "%s/log", data_dir);
	o.dir = dir;
	o.nosync = true;
	o.map_size = (size_t)1 << 30;
	err = evlog_open(&o, &l, msg, sizeof(msg));
	if (err) {
		fprintf(stderr, "gen_log: %s\n", msg);
		return err;
	}
	for (size_t b = 0; b < nbatches; b++) {
		size_t k = 0;

		for (size_t i = b * GEN_BATCH; i < n && k < GEN_BATCH; i++, k++) {
			memset(&in[k], 0, sizeof(in[k]));
			err = build(i, &t[k], bufs[k], sizeof(bufs[k]), &in[k].len);
			if (err)
				goto out;
			in[k].buf = bufs[k];
		}
		err = evlog_append(l, in, k, GEN_BASE_US + (int64_t)b * step + 1, out);
		if (err)
			goto out;
		for (size_t j = 0; j < k; j++) {
			if (out[j].err) {
				err = out[j].err;
				fprintf(stderr, "gen_log: event %zu refused: %s\n",
				        b * GEN_BATCH + j, mmo_strerror(err));
				goto out;
			}
			t[j].seq = out[j].seq;
			t[j].ts = out[j].ts;
			if (truth)
				truth[b * GEN_BATCH + j] = t[j];
		}
	}
	/* As the server's indexer would: the secondary indexes up to the head. */
	err = evlog_index_sync(l, 0, NULL);
out:
	evlog_close(l);
	return err;
}
