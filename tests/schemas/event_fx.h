/* event_fx.h - what the event model's tests share: strings of exact
 * lengths, a valid event of every type, and the validation checks. */
#ifndef MMO_TEST_EVENT_FX_H
#define MMO_TEST_EVENT_FX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/event.h"

#define NTYPES  17
#define ENC_BUF 4096 /* any event built here encodes far below this */

/* Strings of exact lengths, filled by fill_strings() before the tests run. */
static __attribute__((unused)) char text256[MMO_TEXT_MAX + 1];
static __attribute__((unused)) char text257[MMO_TEXT_MAX + 2];
static __attribute__((unused)) char id64[MMO_ID_MAX + 1];
static __attribute__((unused)) char id65[MMO_ID_MAX + 2];
static __attribute__((unused)) char reason64[MMO_ID_MAX + 1];
static __attribute__((unused)) char reason65[MMO_ID_MAX + 2];

static inline void fill(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
}

static inline int fill_strings(void **state)
{
	(void)state;
	fill(text256, 't', MMO_TEXT_MAX);
	fill(text257, 't', MMO_TEXT_MAX + 1);
	fill(id64, 'i', MMO_ID_MAX);
	fill(id65, 'i', MMO_ID_MAX + 1);
	fill(reason64, 'r', MMO_ID_MAX);
	fill(reason65, 'r', MMO_ID_MAX + 1);
	return 0;
}

/* A valid event of type: every required body field set to something real. */
static inline void build(struct mmo_ev *b, const char *type)
{
	assert_int_equal(mmo_ev_init(b, type, "ev-1", "player-1", "region-1"), MMO_OK);
	switch (b->ev.body_case) {
	case MMO__EVENT__BODY_PLAYER_REGISTER: b->body.player_register.username = "alice"; break;
	case MMO__EVENT__BODY_PLAYER_LOGIN:
		b->body.player_login.session_id = "sess-1";
		b->body.player_login.username = "alice";
		break;
	case MMO__EVENT__BODY_PLAYER_LOGOUT:
		b->body.player_logout.session_id = "sess-1";
		b->body.player_logout.reason = "quit";
		break;
	case MMO__EVENT__BODY_PLAYER_MOVE: mmo_ev_set_pos(b, 1.5, -2.25, 3.0); break;
	case MMO__EVENT__BODY_COMBAT_ATTACK:
		b->body.combat_attack.defender_id = "player-2";
		b->body.combat_attack.skill_id = "slash";
		break;
	case MMO__EVENT__BODY_COMBAT_DEFEND:
		b->body.combat_defend.attacker_id = "player-2";
		b->body.combat_defend.skill_id = "parry";
		break;
	case MMO__EVENT__BODY_COMBAT_RESULT:
		b->body.combat_result.attacker_id = "player-1";
		b->body.combat_result.defender_id = "player-2";
		b->body.combat_result.skill_id = "slash";
		b->body.combat_result.result = "hit";
		b->body.combat_result.damage = 12;
		b->body.combat_result.defender_hp = 88;
		break;
	case MMO__EVENT__BODY_WORLD_SPAWN:
		b->body.world_spawn.entity_id = "npc-7";
		b->body.world_spawn.entity_type = "wolf";
		b->body.world_spawn.hp = 100;
		mmo_ev_set_pos(b, 10, 20, 0);
		break;
	case MMO__EVENT__BODY_WORLD_DESPAWN:
		b->body.world_despawn.entity_id = "npc-7";
		b->body.world_despawn.entity_type = "wolf";
		b->body.world_despawn.reason = "killed";
		break;
	case MMO__EVENT__BODY_WORLD_UPDATE:
		b->body.world_update.entity_id = "player-1";
		b->body.world_update.entity_type = "player";
		b->body.world_update.from_region_id = "region-0";
		mmo_ev_set_pos(b, 4, 5, 6);
		break;
	case MMO__EVENT__BODY_WORLD_REJECT:
		b->body.world_reject.reason = "out_of_bounds";
		b->body.world_reject.detail = "x beyond 1000";
		break;
	case MMO__EVENT__BODY_SECURITY:
		b->body.security.kind = "login_failed";
		b->body.security.source = "10.0.0.1";
		b->body.security.count = 5;
		b->body.security.window_start_us = 1700000000000000LL;
		b->body.security.detail = "bad password";
		break;
	case MMO__EVENT__BODY_ADMIN_ACTION:
		b->body.admin_action.command = "ban player-9";
		b->body.admin_action.actor = "root";
		b->body.admin_action.detail = "cheating";
		break;
	case MMO__EVENT__BODY_STATS_UPDATE:
		b->body.stats_update.name = "players_online";
		b->body.stats_update.value = 42.5;
		break;
	default: fail_msg("no builder for body case %d", (int)b->ev.body_case);
	}
}

static inline void expect_valid(const Mmo__Event *ev)
{
	const char *field = "untouched";

	assert_int_equal(mmo_event_validate(ev, &field), MMO_OK);
	assert_string_equal(field, "untouched");
}

static inline void expect_invalid(const Mmo__Event *ev, int code, const char *name)
{
	const char *field = NULL;

	assert_int_equal(mmo_event_validate(ev, &field), code);
	assert_non_null(field);
	assert_string_equal(field, name);
}

#endif
