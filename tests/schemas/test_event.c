/* test_event.c - the event model: the type table, ids, validation with its
 * exact codes and field names, bounded encode/decode and the JSON form.
 *
 * Validation cases are rows of one table (vcase): a type built valid by
 * build(), one mutation, and the exact code and field mmo_event_validate()
 * must report. Each row is its own named cmocka test.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "schemas/event.h"
#include "schemas/event_json.h"

#define NTYPES  17
#define ENC_BUF 4096 /* any event built here encodes far below this */

/* Strings of exact lengths, filled by fill_strings() before the tests run. */
static char text256[MMO_TEXT_MAX + 1];
static char text257[MMO_TEXT_MAX + 2];
static char id64[MMO_ID_MAX + 1];
static char id65[MMO_ID_MAX + 2];
static char reason64[MMO_ID_MAX + 1];
static char reason65[MMO_ID_MAX + 2];

static void fill(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
}

static int fill_strings(void **state)
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
static void build(struct mmo_ev *b, const char *type)
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

static void expect_valid(const Mmo__Event *ev)
{
	const char *field = "untouched";

	assert_int_equal(mmo_event_validate(ev, &field), MMO_OK);
	assert_string_equal(field, "untouched");
}

static void expect_invalid(const Mmo__Event *ev, int code, const char *name)
{
	const char *field = NULL;

	assert_int_equal(mmo_event_validate(ev, &field), code);
	assert_non_null(field);
	assert_string_equal(field, name);
}

/* ---- the type table and ids ---- */

static void type_table_lists_every_known_type_in_order(void **state)
{
	/* clang-format off */
	static const struct mmo_type_info want[NTYPES] = {
		{"player.register", MMO__EVENT__BODY_PLAYER_REGISTER, 1, true},
		{"player.login", MMO__EVENT__BODY_PLAYER_LOGIN, 1, true},
		{"player.logout", MMO__EVENT__BODY_PLAYER_LOGOUT, 1, true},
		{"player.move", MMO__EVENT__BODY_PLAYER_MOVE, 3, true},
		{"combat.attack", MMO__EVENT__BODY_COMBAT_ATTACK, 2, true},
		{"combat.defend", MMO__EVENT__BODY_COMBAT_DEFEND, 2, true},
		{"combat.result", MMO__EVENT__BODY_COMBAT_RESULT, 2, true},
		{"world.spawn", MMO__EVENT__BODY_WORLD_SPAWN, 3, false},
		{"world.despawn", MMO__EVENT__BODY_WORLD_DESPAWN, 3, false},
		{"world.update", MMO__EVENT__BODY_WORLD_UPDATE, 3, false},
		{"world.reject", MMO__EVENT__BODY_WORLD_REJECT, 3, false},
		{"security.login_failed", MMO__EVENT__BODY_SECURITY, 1, false},
		{"security.token_refused", MMO__EVENT__BODY_SECURITY, 1, false},
		{"security.forbidden", MMO__EVENT__BODY_SECURITY, 1, false},
		{"security.rate_limited", MMO__EVENT__BODY_SECURITY, 1, false},
		{"admin.action", MMO__EVENT__BODY_ADMIN_ACTION, 1, false},
		{"stats.update", MMO__EVENT__BODY_STATS_UPDATE, 4, false},
	};
	/* clang-format on */
	size_t i;

	(void)state;
	assert_int_equal(mmo_type_count(), NTYPES);
	for (i = 0; i < NTYPES; i++) {
		const struct mmo_type_info *t = mmo_type_at(i);

		assert_non_null(t);
		assert_string_equal(t->name, want[i].name);
		assert_int_equal(t->body, want[i].body);
		assert_int_equal(t->priority, want[i].priority);
		assert_int_equal(t->needs_player, want[i].needs_player);
		assert_ptr_equal(mmo_type_lookup(want[i].name), t);
	}
	assert_null(mmo_type_at(NTYPES));
	assert_null(mmo_type_at((size_t)-1));
}

static void type_lookup_refuses_unknown_case_changed_and_null_names(void **state)
{
	(void)state;
	assert_null(mmo_type_lookup("player.fly"));
	assert_null(mmo_type_lookup("Player.Move"));
	assert_null(mmo_type_lookup("player.move "));
	assert_null(mmo_type_lookup("security"));
	assert_null(mmo_type_lookup(""));
	assert_null(mmo_type_lookup(NULL));
}

static void id_of_64_bytes_is_valid_and_65_is_not(void **state)
{
	(void)state;
	assert_true(mmo_id_valid(id64));
	assert_false(mmo_id_valid(id65));
	assert_true(mmo_id_valid("a"));
}

static void id_accepts_exactly_its_alphabet(void **state)
{
	static const char *const bad[] = {
	    "",    "a b", "a/b", "a\\b", "a\"b", "a\nb", "\tab", "a\x7f", "caf\xc3\xa9",
	    "a+b", "a@b", "a#b", "a,b",  "a;b",  "a*b",  "{}",   "a=b",
	};
	size_t i;

	(void)state;
	assert_true(mmo_id_valid("AZaz09_.:-"));
	assert_true(mmo_id_valid("player:42.x-y_z"));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(mmo_id_valid(bad[i]));
	assert_false(mmo_id_valid(NULL));
}

static void priority_is_own_then_type_default_then_medium(void **state)
{
	struct mmo_ev b;
	unsigned p;

	(void)state;
	build(&b, "stats.update");
	assert_int_equal(mmo_event_priority(&b.ev), MMO_PRIO_LOW);
	for (p = 1; p <= 4; p++) {
		b.ev.priority = p;
		assert_int_equal(mmo_event_priority(&b.ev), p);
	}
	b.ev.priority = 5;
	assert_int_equal(mmo_event_priority(&b.ev), MMO_PRIO_LOW);
	b.ev.priority = 0;
	b.ev.type = "no.such.type";
	assert_int_equal(mmo_event_priority(&b.ev), MMO_PRIO_MEDIUM);
	b.ev.type = NULL;
	assert_int_equal(mmo_event_priority(&b.ev), MMO_PRIO_MEDIUM);
	assert_int_equal(mmo_event_priority(NULL), MMO_PRIO_MEDIUM);
}

/* ---- the builder ---- */

static void ev_init_refuses_unknown_type_and_null_builder(void **state)
{
	struct mmo_ev b;

	(void)state;
	assert_int_equal(mmo_ev_init(&b, "player.fly", "e", "p", "r"), MMO_EBADTYPE);
	assert_int_equal(mmo_ev_init(&b, NULL, "e", "p", "r"), MMO_EBADTYPE);
	assert_int_equal(mmo_ev_init(NULL, "player.move", "e", "p", "r"), MMO_EINVAL);
	mmo_ev_set_pos(NULL, 1, 2, 3);
}

static void ev_init_stores_null_ids_as_empty_and_links_the_body(void **state)
{
	struct mmo_ev b;
	size_t i;

	(void)state;
	for (i = 0; i < mmo_type_count(); i++) {
		const struct mmo_type_info *t = mmo_type_at(i);

		assert_int_equal(mmo_ev_init(&b, t->name, NULL, NULL, NULL), MMO_OK);
		assert_string_equal(b.ev.type, t->name);
		assert_string_equal(b.ev.event_id, "");
		assert_string_equal(b.ev.player_id, "");
		assert_string_equal(b.ev.region_id, "");
		assert_int_equal(b.ev.priority, 0);
		assert_int_equal(b.ev.seq, 0);
		assert_int_equal(b.ev.ts, 0);
		assert_int_equal(b.ev.cause_seq, 0);
		assert_int_equal(b.ev.body_case, t->body);
		/* every body pointer of the union is the same storage */
		assert_ptr_equal(b.ev.player_register, (void *)&b.body);
	}
	assert_int_equal(mmo_ev_init(&b, "player.move", "e", NULL, NULL), MMO_OK);
	assert_ptr_equal(b.ev.player_move->position, &b.pos);
	mmo_ev_set_pos(&b, 7, 8, 9);
	assert_true(b.ev.player_move->position->x == 7 && b.pos.y == 8 && b.pos.z == 9);
	assert_int_equal(mmo_ev_init(&b, "world.spawn", "e", NULL, NULL), MMO_OK);
	assert_ptr_equal(b.ev.world_spawn->position, &b.pos);
	assert_int_equal(mmo_ev_init(&b, "world.update", "e", NULL, NULL), MMO_OK);
	assert_ptr_equal(b.ev.world_update->position, &b.pos);
}

/* ---- every type: valid, and byte-exact through encode/decode ---- */

static void every_type_validates_and_round_trips_byte_exactly(void **state)
{
	uint8_t a[ENC_BUF], c[ENC_BUF];
	size_t i, alen, clen;

	(void)state;
	for (i = 0; i < mmo_type_count(); i++) {
		const struct mmo_type_info *t = mmo_type_at(i);
		Mmo__Event *d = NULL;
		struct mmo_ev b;

		build(&b, t->name);
		expect_valid(&b.ev);
		b.ev.seq = 1000 + i;
		b.ev.ts = 1700000000000000LL + (int64_t)i;
		b.ev.cause_seq = 999;
		b.ev.priority = t->priority;
		expect_valid(&b.ev);

		assert_int_equal(mmo_event_encode(&b.ev, a, sizeof(a), &alen), MMO_OK);
		assert_true(alen > 0);
		assert_int_equal(mmo_event_decode(a, alen, &d), MMO_OK);
		assert_non_null(d);
		expect_valid(d);
		assert_string_equal(d->event_id, "ev-1");
		assert_string_equal(d->type, t->name);
		assert_string_equal(d->player_id, "player-1");
		assert_string_equal(d->region_id, "region-1");
		assert_int_equal(d->seq, 1000 + i);
		assert_int_equal(d->ts, 1700000000000000LL + (int64_t)i);
		assert_int_equal(d->cause_seq, 999);
		assert_int_equal(d->priority, t->priority);
		assert_int_equal(d->body_case, t->body);

		assert_int_equal(mmo_event_encode(d, c, sizeof(c), &clen), MMO_OK);
		assert_int_equal(clen, alen);
		assert_memory_equal(a, c, alen);
		mmo_event_free(d);
	}
}

static void decoded_body_fields_equal_the_built_ones(void **state)
{
	uint8_t buf[ENC_BUF];
	Mmo__Event *d = NULL;
	struct mmo_ev b;
	size_t len;

	(void)state;
	build(&b, "combat.result");
	assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &len), MMO_OK);
	assert_int_equal(mmo_event_decode(buf, len, &d), MMO_OK);
	assert_string_equal(d->combat_result->attacker_id, "player-1");
	assert_string_equal(d->combat_result->defender_id, "player-2");
	assert_string_equal(d->combat_result->skill_id, "slash");
	assert_string_equal(d->combat_result->result, "hit");
	assert_int_equal(d->combat_result->damage, 12);
	assert_int_equal(d->combat_result->defender_hp, 88);
	mmo_event_free(d);

	d = NULL;
	build(&b, "world.update");
	assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &len), MMO_OK);
	assert_int_equal(mmo_event_decode(buf, len, &d), MMO_OK);
	assert_non_null(d->world_update->position);
	assert_true(d->world_update->position->x == 4 && d->world_update->position->y == 5 &&
	            d->world_update->position->z == 6);
	assert_string_equal(d->world_update->from_region_id, "region-0");
	mmo_event_free(d);
}

/* ---- validation: one row per rule ---- */

struct vcase {
	const char *type;
	void (*mutate)(struct mmo_ev *b);
	int code;
	const char *field; /* NULL for rows that must pass */
};

static void run_vcase(void **state)
{
	const struct vcase *c = *state;
	struct mmo_ev b;

	build(&b, c->type);
	if (c->mutate)
		c->mutate(&b);
	if (c->code == MMO_OK)
		expect_valid(&b.ev);
	else
		expect_invalid(&b.ev, c->code, c->field);
}

static void no_change(struct mmo_ev *b)
{
	(void)b;
}

static void event_id_empty(struct mmo_ev *b)
{
	b->ev.event_id = "";
}

static void event_id_null(struct mmo_ev *b)
{
	b->ev.event_id = NULL;
}

static void event_id_64(struct mmo_ev *b)
{
	b->ev.event_id = id64;
}

static void event_id_65(struct mmo_ev *b)
{
	b->ev.event_id = id65;
}

static void event_id_space(struct mmo_ev *b)
{
	b->ev.event_id = "ev 1";
}

static void type_empty(struct mmo_ev *b)
{
	b->ev.type = "";
}

static void type_null(struct mmo_ev *b)
{
	b->ev.type = NULL;
}

static void type_unknown(struct mmo_ev *b)
{
	b->ev.type = "player.fly";
}

static void type_attack(struct mmo_ev *b)
{
	b->ev.type = "combat.attack";
}

static void bad_id_and_bad_type(struct mmo_ev *b)
{
	b->ev.event_id = "a/b";
	b->ev.type = "player.fly";
	b->ev.priority = 9;
}

static void body_not_set(struct mmo_ev *b)
{
	b->ev.body_case = MMO__EVENT__BODY__NOT_SET;
}

static void body_pointer_null(struct mmo_ev *b)
{
	b->ev.player_move = NULL;
}

static void body_case_of_envelope_field(struct mmo_ev *b)
{
	b->ev.body_case = (Mmo__Event__BodyCase)2; /* the number of seq */
}

static void body_case_out_of_range(struct mmo_ev *b)
{
	b->ev.body_case = (Mmo__Event__BodyCase)9999;
}

static void envelope_descriptor_null(struct mmo_ev *b)
{
	b->ev.base.descriptor = NULL;
}

static void body_descriptor_wrong(struct mmo_ev *b)
{
	b->body.player_move.base.descriptor = &mmo__combat_attack__descriptor;
}

static void position_descriptor_null(struct mmo_ev *b)
{
	b->pos.base.descriptor = NULL;
}

static void player_empty(struct mmo_ev *b)
{
	b->ev.player_id = "";
}

static void player_null(struct mmo_ev *b)
{
	b->ev.player_id = NULL;
}

static void player_slash(struct mmo_ev *b)
{
	b->ev.player_id = "x/y";
}

static void player_65(struct mmo_ev *b)
{
	b->ev.player_id = id65;
}

static void region_empty(struct mmo_ev *b)
{
	b->ev.region_id = "";
}

static void region_null(struct mmo_ev *b)
{
	b->ev.region_id = NULL;
}

static void region_65(struct mmo_ev *b)
{
	b->ev.region_id = id65;
}

static void region_newline(struct mmo_ev *b)
{
	b->ev.region_id = "r\n1";
}

static void priority_4(struct mmo_ev *b)
{
	b->ev.priority = 4;
}

static void priority_5(struct mmo_ev *b)
{
	b->ev.priority = 5;
}

static void priority_max(struct mmo_ev *b)
{
	b->ev.priority = UINT32_MAX;
}

static void seq_ts_set(struct mmo_ev *b)
{
	b->ev.seq = UINT64_MAX;
	b->ev.ts = -1;
	b->ev.cause_seq = 7;
}

static void move_no_position(struct mmo_ev *b)
{
	b->body.player_move.position = NULL;
}

static void pos_nan_x(struct mmo_ev *b)
{
	b->pos.x = NAN;
}

static void pos_inf_y(struct mmo_ev *b)
{
	b->pos.y = INFINITY;
}

static void pos_minus_inf_z(struct mmo_ev *b)
{
	b->pos.z = -INFINITY;
}

static void pos_huge_but_finite(struct mmo_ev *b)
{
	mmo_ev_set_pos(b, 1e308, -1e308, 4.9e-324);
}

static void attack_defender_empty(struct mmo_ev *b)
{
	b->body.combat_attack.defender_id = "";
}

static void attack_defender_null(struct mmo_ev *b)
{
	b->body.combat_attack.defender_id = NULL;
}

static void attack_defender_bad(struct mmo_ev *b)
{
	b->body.combat_attack.defender_id = "player 2";
}

static void attack_skill_empty(struct mmo_ev *b)
{
	b->body.combat_attack.skill_id = "";
}

static void attack_skill_65(struct mmo_ev *b)
{
	b->body.combat_attack.skill_id = id65;
}

static void defend_attacker_empty(struct mmo_ev *b)
{
	b->body.combat_defend.attacker_id = "";
	b->body.combat_defend.skill_id = NULL;
}

static void defend_attacker_bad(struct mmo_ev *b)
{
	b->body.combat_defend.attacker_id = "p?2";
}

static void result_attacker_empty(struct mmo_ev *b)
{
	b->body.combat_result.attacker_id = "";
}

static void result_defender_bad(struct mmo_ev *b)
{
	b->body.combat_result.defender_id = id65;
}

static void result_skill_bad(struct mmo_ev *b)
{
	b->body.combat_result.skill_id = "fire ball";
}

static void result_skill_empty(struct mmo_ev *b)
{
	b->body.combat_result.skill_id = "";
}

static void result_kill(struct mmo_ev *b)
{
	b->body.combat_result.result = "kill";
}

static void result_upper(struct mmo_ev *b)
{
	b->body.combat_result.result = "HIT";
}

static void result_empty(struct mmo_ev *b)
{
	b->body.combat_result.result = "";
}

static void result_null(struct mmo_ev *b)
{
	b->body.combat_result.result = NULL;
}

static void result_miss(struct mmo_ev *b)
{
	b->body.combat_result.result = "miss";
}

static void result_critical(struct mmo_ev *b)
{
	b->body.combat_result.result = "critical";
}

static void spawn_entity_empty(struct mmo_ev *b)
{
	b->body.world_spawn.entity_id = "";
}

static void spawn_no_position(struct mmo_ev *b)
{
	b->body.world_spawn.position = NULL;
}

static void spawn_entity_type_257(struct mmo_ev *b)
{
	b->body.world_spawn.entity_type = text257;
}

static void despawn_entity_empty(struct mmo_ev *b)
{
	b->body.world_despawn.entity_id = "";
}

static void despawn_reason_257(struct mmo_ev *b)
{
	b->body.world_despawn.reason = text257;
}

static void update_entity_bad(struct mmo_ev *b)
{
	b->body.world_update.entity_id = "npc#7";
}

static void update_no_position(struct mmo_ev *b)
{
	b->body.world_update.position = NULL;
}

static void update_from_region_bad(struct mmo_ev *b)
{
	b->body.world_update.from_region_id = "region 0";
}

static void update_from_region_empty(struct mmo_ev *b)
{
	b->body.world_update.from_region_id = "";
}

static void reject_reason_empty(struct mmo_ev *b)
{
	b->body.world_reject.reason = "";
}

static void reject_reason_upper(struct mmo_ev *b)
{
	b->body.world_reject.reason = "Out_Of_Bounds";
}

static void reject_reason_digit(struct mmo_ev *b)
{
	b->body.world_reject.reason = "error1";
}

static void reject_reason_dot(struct mmo_ev *b)
{
	b->body.world_reject.reason = "out.of.bounds";
}

static void reject_reason_64(struct mmo_ev *b)
{
	b->body.world_reject.reason = reason64;
}

static void reject_reason_65(struct mmo_ev *b)
{
	b->body.world_reject.reason = reason65;
}

static void reject_detail_256(struct mmo_ev *b)
{
	b->body.world_reject.detail = text256;
}

static void reject_detail_257(struct mmo_ev *b)
{
	b->body.world_reject.detail = text257;
}

static void security_kind_empty(struct mmo_ev *b)
{
	b->body.security.kind = "";
}

static void security_kind_257(struct mmo_ev *b)
{
	b->body.security.kind = text257;
}

static void security_source_257(struct mmo_ev *b)
{
	b->body.security.source = text257;
}

static void admin_command_empty(struct mmo_ev *b)
{
	b->body.admin_action.command = "";
}

static void admin_actor_257(struct mmo_ev *b)
{
	b->body.admin_action.actor = text257;
}

static void stats_name_null(struct mmo_ev *b)
{
	b->body.stats_update.name = NULL;
}

static void stats_value_nan(struct mmo_ev *b)
{
	b->body.stats_update.value = NAN;
}

static void stats_value_minus_inf(struct mmo_ev *b)
{
	b->body.stats_update.value = -INFINITY;
}

static void register_username_256(struct mmo_ev *b)
{
	b->body.player_register.username = text256;
}

static void register_username_257(struct mmo_ev *b)
{
	b->body.player_register.username = text257;
}

static void register_username_null(struct mmo_ev *b)
{
	b->body.player_register.username = NULL;
}

static void login_session_257(struct mmo_ev *b)
{
	b->body.player_login.session_id = text257;
}

static void logout_reason_257(struct mmo_ev *b)
{
	b->body.player_logout.reason = text257;
}

/* A named cmocka test for one row; the compound literal lives as long as main(). */
/* clang-format off */
#define VCASE(name, type, mutate, code, field) \
	{#name, run_vcase, NULL, NULL, &(struct vcase){type, mutate, code, field}}
/* clang-format on */

/* ---- validation beyond single fields ---- */

static void validate_refuses_null_event_and_allows_null_field_pointer(void **state)
{
	const char *field = NULL;
	struct mmo_ev b;

	(void)state;
	assert_int_equal(mmo_event_validate(NULL, &field), MMO_EINVAL);
	assert_string_equal(field, "event");
	assert_int_equal(mmo_event_validate(NULL, NULL), MMO_EINVAL);
	build(&b, "player.move");
	b.ev.event_id = "";
	assert_int_equal(mmo_event_validate(&b.ev, NULL), MMO_EMISSING);
}

/* Every string of every body is either an id (EBADID past 64 bytes), a
 * reason or result (EINVAL) or capped text (ETOOBIG): none is unbounded.
 * Driven by the descriptors, so a field added to event.proto without a rule
 * in event.c fails here. */
static void every_body_string_is_bounded_and_named(void **state)
{
	size_t i, j;

	(void)state;
	for (i = 0; i < mmo_type_count(); i++) {
		const struct mmo_type_info *t = mmo_type_at(i);
		const ProtobufCFieldDescriptor *bf;
		const ProtobufCMessageDescriptor *d;
		struct mmo_ev b;

		bf = protobuf_c_message_descriptor_get_field(&mmo__event__descriptor, t->body);
		assert_non_null(bf);
		d = bf->descriptor;
		for (j = 0; j < d->n_fields; j++) {
			const ProtobufCFieldDescriptor *f = &d->fields[j];
			char want[128];
			const char *field = NULL;
			int err;

			if (f->type != PROTOBUF_C_TYPE_STRING)
				continue;
			build(&b, t->name);
			*(char **)((char *)&b.body + f->offset) = text257;
			err = mmo_event_validate(&b.ev, &field);
			snprintf(want, sizeof(want), "%s.%s", bf->name, f->name);
			if (err != MMO_ETOOBIG && err != MMO_EBADID && err != MMO_EINVAL)
				fail_msg("%s: %s of 257 bytes gave %d", t->name, want, err);
			assert_non_null(field);
			assert_string_equal(field, want);
		}
	}
}

/* Text fields are capped, so only unknown fields (kept from a decoded
 * record, or attached by hand as here) can push an event past the limit. */
static void validate_and_encode_refuse_an_event_over_record_max(void **state)
{
	static uint8_t pad[MMO_RECORD_MAX];
	ProtobufCMessageUnknownField uf = {
	    .tag = 100,
	    .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
	    .len = sizeof(pad),
	    .data = pad,
	};
	uint8_t out[ENC_BUF];
	size_t len = 12345;
	struct mmo_ev b;

	(void)state;
	build(&b, "stats.update");
	b.ev.base.n_unknown_fields = 1;
	b.ev.base.unknown_fields = &uf;
	expect_invalid(&b.ev, MMO_ETOOBIG, "event");
	assert_int_equal(mmo_event_encode(&b.ev, out, sizeof(out), &len), MMO_ETOOBIG);
	assert_int_equal(len, 12345);
}

/* ---- decode ---- */

static void encode_valid(const char *type, uint8_t *buf, size_t cap, size_t *len)
{
	struct mmo_ev b;

	build(&b, type);
	assert_int_equal(mmo_event_encode(&b.ev, buf, cap, len), MMO_OK);
}

static void expect_decode(const uint8_t *buf, size_t len, int code)
{
	Mmo__Event *sentinel = (Mmo__Event *)(uintptr_t)0x1;
	Mmo__Event *d = sentinel;

	assert_int_equal(mmo_event_decode(buf, len, &d), code);
	if (code == MMO_OK) {
		assert_non_null(d);
		mmo_event_free(d);
	} else {
		assert_ptr_equal(d, sentinel);
	}
}

static void decode_refuses_empty_buffer_as_malformed(void **state)
{
	static const uint8_t none[1];

	(void)state;
	expect_decode(none, 0, MMO_EMALFORMED);
	expect_decode(NULL, 0, MMO_EMALFORMED);
}

static void decode_refuses_garbage_as_malformed(void **state)
{
	static const uint8_t ff[] = {0xff, 0xff, 0xff, 0xff};
	static const uint8_t varint_too_long[] = {0x10, 0xff, 0xff, 0xff, 0xff, 0xff,
	                                          0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	static const uint8_t wrong_wire_type[] = {0x08, 0x01}; /* event_id as a varint */
	static const uint8_t string_past_end[] = {0x0a, 0x05, 'a'};
	static const uint8_t field_zero[] = {0x02, 0x00};
	static const uint8_t end_group[] = {0x0c};

	(void)state;
	expect_decode(ff, sizeof(ff), MMO_EMALFORMED);
	expect_decode(varint_too_long, sizeof(varint_too_long), MMO_EMALFORMED);
	expect_decode(wrong_wire_type, sizeof(wrong_wire_type), MMO_EMALFORMED);
	expect_decode(string_past_end, sizeof(string_past_end), MMO_EMALFORMED);
	expect_decode(field_zero, sizeof(field_zero), MMO_EMALFORMED);
	expect_decode(end_group, sizeof(end_group), MMO_EMALFORMED);
}

static void decode_refuses_a_truncated_record_and_never_crashes_on_a_prefix(void **state)
{
	uint8_t buf[ENC_BUF];
	size_t len, n;

	(void)state;
	encode_valid("combat.result", buf, sizeof(buf), &len);
	/* the record ends inside a string ("hit"), so one byte short cannot decode */
	expect_decode(buf, len - 1, MMO_EMALFORMED);
	for (n = 1; n < len; n++) {
		Mmo__Event *d = NULL;
		int err = mmo_event_decode(buf, n, &d);

		assert_true(err == MMO_OK || err == MMO_EMALFORMED);
		if (err == MMO_OK) {
			const char *field;

			(void)mmo_event_validate(d, &field);
			json_decref(mmo_event_to_json(d));
			mmo_event_free(d);
		}
	}
}

static void decode_refuses_more_than_record_max_as_too_big(void **state)
{
	uint8_t *big = calloc(1, MMO_RECORD_MAX + 1);

	(void)state;
	assert_non_null(big);
	expect_decode(big, MMO_RECORD_MAX + 1, MMO_ETOOBIG);
	expect_decode(big, SIZE_MAX, MMO_ETOOBIG);
	free(big);
}

static void decode_refuses_null_arguments(void **state)
{
	uint8_t buf[ENC_BUF];
	size_t len;

	(void)state;
	encode_valid("player.move", buf, sizeof(buf), &len);
	assert_int_equal(mmo_event_decode(buf, len, NULL), MMO_EINVAL);
	expect_decode(NULL, 5, MMO_EINVAL);
	mmo_event_free(NULL);
}

/* A valid record padded with an unknown field (number 100, length
 * prefixed) to total bytes. The length takes 3 varint bytes here. */
static uint8_t *padded_record(size_t total)
{
	uint8_t head[ENC_BUF];
	size_t hlen, pad;
	uint8_t *rec, *p;

	encode_valid("player.move", head, sizeof(head), &hlen);
	pad = total - hlen - 2 - 3;
	assert_true(pad >= (1u << 14) && pad < (1u << 21));
	rec = calloc(1, total);
	assert_non_null(rec);
	memcpy(rec, head, hlen);
	p = rec + hlen;
	*p++ = 0xa2; /* tag (100 << 3 | 2) as a varint */
	*p++ = 0x06;
	*p++ = (uint8_t)((pad & 0x7f) | 0x80);
	*p++ = (uint8_t)(((pad >> 7) & 0x7f) | 0x80);
	*p++ = (uint8_t)(pad >> 14);
	memset(p, 'x', pad);
	return rec;
}

static void record_of_exactly_record_max_passes_and_one_more_byte_is_too_big(void **state)
{
	uint8_t *rec = padded_record(MMO_RECORD_MAX);
	uint8_t *again = malloc(MMO_RECORD_MAX);
	Mmo__Event *d = NULL;
	size_t len = 0;

	(void)state;
	assert_non_null(again);
	assert_int_equal(mmo_event_decode(rec, MMO_RECORD_MAX, &d), MMO_OK);
	expect_valid(d);
	/* unknown fields survive: a newer writer's record re-encodes unchanged */
	assert_int_equal(mmo_event_encode(d, again, MMO_RECORD_MAX, &len), MMO_OK);
	assert_int_equal(len, MMO_RECORD_MAX);
	assert_memory_equal(rec, again, MMO_RECORD_MAX);
	assert_int_equal(mmo_event_encode(d, again, MMO_RECORD_MAX - 1, &len), MMO_ETOOBIG);
	mmo_event_free(d);
	free(rec);

	rec = padded_record(MMO_RECORD_MAX + 1);
	expect_decode(rec, MMO_RECORD_MAX + 1, MMO_ETOOBIG);
	free(rec);
	free(again);
}

/* ---- encode ---- */

static void encode_refuses_a_buffer_one_byte_short(void **state)
{
	uint8_t buf[ENC_BUF];
	size_t need, len = 777;
	struct mmo_ev b;

	(void)state;
	build(&b, "world.spawn");
	assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &need), MMO_OK);
	assert_int_equal(mmo_event_encode(&b.ev, buf, need - 1, &len), MMO_ETOOBIG);
	assert_int_equal(len, 777);
	assert_int_equal(mmo_event_encode(&b.ev, buf, 0, &len), MMO_ETOOBIG);
	assert_int_equal(mmo_event_encode(&b.ev, buf, need, &len), MMO_OK);
	assert_int_equal(len, need);
}

static void encode_refuses_null_arguments_and_broken_messages(void **state)
{
	uint8_t buf[ENC_BUF];
	struct mmo_ev b;
	size_t len;

	(void)state;
	build(&b, "player.move");
	assert_int_equal(mmo_event_encode(NULL, buf, sizeof(buf), &len), MMO_EINVAL);
	assert_int_equal(mmo_event_encode(&b.ev, NULL, sizeof(buf), &len), MMO_EINVAL);
	assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), NULL), MMO_EINVAL);
	b.pos.base.descriptor = NULL;
	assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &len), MMO_EINVAL);
	build(&b, "player.move");
	b.ev.base.descriptor = &mmo__vec3__descriptor;
	assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &len), MMO_EINVAL);
}

/* protobuf-c sets unset strings to its empty string, but hand-built events
 * may hold NULL: they encode as absent and decode as "". */
static void null_strings_encode_as_empty(void **state)
{
	uint8_t buf[ENC_BUF];
	Mmo__Event *d = NULL;
	struct mmo_ev b;
	size_t len;

	(void)state;
	build(&b, "admin.action");
	b.ev.player_id = NULL;
	b.ev.region_id = NULL;
	b.body.admin_action.actor = NULL;
	b.body.admin_action.detail = NULL;
	expect_valid(&b.ev);
	assert_int_equal(mmo_event_encode(&b.ev, buf, sizeof(buf), &len), MMO_OK);
	assert_int_equal(mmo_event_decode(buf, len, &d), MMO_OK);
	assert_string_equal(d->player_id, "");
	assert_string_equal(d->admin_action->actor, "");
	assert_string_equal(d->admin_action->command, "ban player-9");
	mmo_event_free(d);
}

/* ---- JSON ---- */

static void json_has_exactly_the_envelope_and_body_fields(void **state)
{
	struct mmo_ev b;
	json_t *j;

	(void)state;
	build(&b, "combat.result");
	b.ev.seq = 42;
	b.ev.ts = 1700000000123456LL;
	b.ev.cause_seq = 41;
	j = mmo_event_to_json(&b.ev);
	assert_non_null(j);
	assert_int_equal(json_object_size(j), 14);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
	assert_int_equal(json_integer_value(json_object_get(j, "ts")), 1700000000123456LL);
	assert_string_equal(json_string_value(json_object_get(j, "event_id")), "ev-1");
	assert_string_equal(json_string_value(json_object_get(j, "type")), "combat.result");
	assert_int_equal(json_integer_value(json_object_get(j, "priority")), 2);
	assert_string_equal(json_string_value(json_object_get(j, "player_id")), "player-1");
	assert_string_equal(json_string_value(json_object_get(j, "region_id")), "region-1");
	assert_int_equal(json_integer_value(json_object_get(j, "cause_seq")), 41);
	assert_string_equal(json_string_value(json_object_get(j, "attacker_id")), "player-1");
	assert_string_equal(json_string_value(json_object_get(j, "defender_id")), "player-2");
	assert_string_equal(json_string_value(json_object_get(j, "skill_id")), "slash");
	assert_string_equal(json_string_value(json_object_get(j, "result")), "hit");
	assert_true(json_is_integer(json_object_get(j, "damage")));
	assert_int_equal(json_integer_value(json_object_get(j, "damage")), 12);
	assert_int_equal(json_integer_value(json_object_get(j, "defender_hp")), 88);
	json_decref(j);
}

static void json_omits_empty_strings_and_zero_cause_seq(void **state)
{
	struct mmo_ev b;
	json_t *j, *pos;

	(void)state;
	build(&b, "world.spawn");
	b.ev.player_id = "";
	b.ev.region_id = NULL;
	b.body.world_spawn.entity_type = "";
	j = mmo_event_to_json(&b.ev);
	assert_non_null(j);
	/* seq, ts, event_id, type, priority, entity_id, position, hp */
	assert_int_equal(json_object_size(j), 8);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "ts")), 0);
	assert_int_equal(json_integer_value(json_object_get(j, "priority")), 3);
	assert_null(json_object_get(j, "player_id"));
	assert_null(json_object_get(j, "region_id"));
	assert_null(json_object_get(j, "cause_seq"));
	assert_null(json_object_get(j, "entity_type"));
	assert_string_equal(json_string_value(json_object_get(j, "entity_id")), "npc-7");
	assert_int_equal(json_integer_value(json_object_get(j, "hp")), 100);
	pos = json_object_get(j, "position");
	assert_true(json_is_object(pos));
	assert_int_equal(json_object_size(pos), 3);
	assert_true(json_is_real(json_object_get(pos, "x")));
	assert_true(json_real_value(json_object_get(pos, "x")) == 10.0);
	assert_true(json_real_value(json_object_get(pos, "y")) == 20.0);
	assert_true(json_real_value(json_object_get(pos, "z")) == 0.0);
	json_decref(j);

	/* event_id and type stay even when empty: readers rely on the keys */
	build(&b, "world.spawn");
	b.ev.event_id = NULL;
	b.body.world_spawn.position = NULL;
	j = mmo_event_to_json(&b.ev);
	assert_string_equal(json_string_value(json_object_get(j, "event_id")), "");
	assert_null(json_object_get(j, "position"));
	json_decref(j);
}

static void json_renders_security_and_stats_fields_with_their_types(void **state)
{
	struct mmo_ev b;
	json_t *j;

	(void)state;
	build(&b, "security.rate_limited");
	b.ev.priority = 0;
	j = mmo_event_to_json(&b.ev);
	assert_int_equal(json_integer_value(json_object_get(j, "priority")), 1);
	assert_string_equal(json_string_value(json_object_get(j, "kind")), "login_failed");
	assert_string_equal(json_string_value(json_object_get(j, "source")), "10.0.0.1");
	assert_int_equal(json_integer_value(json_object_get(j, "count")), 5);
	assert_int_equal(json_integer_value(json_object_get(j, "window_start_us")),
	                 1700000000000000LL);
	assert_string_equal(json_string_value(json_object_get(j, "detail")), "bad password");
	json_decref(j);

	build(&b, "stats.update");
	b.ev.priority = 2;
	b.ev.seq = (1ULL << 53) + 1; /* beyond a double's exact range */
	j = mmo_event_to_json(&b.ev);
	assert_int_equal(json_integer_value(json_object_get(j, "priority")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), (1LL << 53) + 1);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "players_online");
	assert_true(json_real_value(json_object_get(j, "value")) == 42.5);
	json_decref(j);
}

static void json_renders_non_finite_numbers_as_null(void **state)
{
	struct mmo_ev b;
	json_t *j, *pos;
	char *text;

	(void)state;
	build(&b, "player.move");
	mmo_ev_set_pos(&b, NAN, INFINITY, -INFINITY);
	j = mmo_event_to_json(&b.ev);
	assert_non_null(j);
	pos = json_object_get(j, "position");
	assert_true(json_is_null(json_object_get(pos, "x")));
	assert_true(json_is_null(json_object_get(pos, "y")));
	assert_true(json_is_null(json_object_get(pos, "z")));
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"position\":{\"x\":null,\"y\":null,\"z\":null}"));
	free(text);
	json_decref(j);

	build(&b, "stats.update");
	b.body.stats_update.value = -INFINITY;
	j = mmo_event_to_json(&b.ev);
	assert_true(json_is_null(json_object_get(j, "value")));
	json_decref(j);
}

static void json_string_with_quotes_and_control_chars_round_trips(void **state)
{
	static const char nasty[] =
	    "he said \"hi\" \\ back\n\ttab \x01\x1f\x7f </script> caf\xc3\xa9";
	struct mmo_ev b;
	json_t *j, *back;
	char *text;

	(void)state;
	build(&b, "world.reject");
	b.body.world_reject.detail = (char *)nasty;
	j = mmo_event_to_json(&b.ev);
	assert_non_null(j);
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(text);
	assert_null(strchr(text, '\n'));
	back = json_loads(text, 0, NULL);
	assert_non_null(back);
	assert_string_equal(json_string_value(json_object_get(back, "detail")), nasty);
	assert_true(json_equal(j, back));
	json_decref(back);
	free(text);
	json_decref(j);
}

static void json_replaces_invalid_utf8_instead_of_dropping_the_event(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"a\xff", "a\xef\xbf\xbd"},
	    {"\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* truncated sequence */
	    {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong "/" */
	    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
	    {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	    {"ok \xf0\x9f\x98\x80\xff", "ok \xf0\x9f\x98\x80\xef\xbf\xbd"},
	};
	struct mmo_ev b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j;

		build(&b, "player.register");
		b.body.player_register.username = (char *)cases[i].in;
		j = mmo_event_to_json(&b.ev);
		assert_non_null(j);
		assert_string_equal(json_string_value(json_object_get(j, "username")),
		                    cases[i].out);
		json_decref(j);
	}
}

static void json_body_refuses_null_event_and_non_object(void **state)
{
	struct mmo_ev b;
	json_t *arr = json_array(), *obj = json_object();

	(void)state;
	build(&b, "combat.attack");
	assert_int_equal(mmo_event_body_to_json(&b.ev, arr), MMO_EINVAL);
	assert_int_equal(mmo_event_body_to_json(&b.ev, NULL), MMO_EINVAL);
	assert_int_equal(mmo_event_body_to_json(NULL, obj), MMO_EINVAL);
	assert_null(mmo_event_to_json(NULL));
	assert_int_equal(mmo_event_body_to_json(&b.ev, obj), MMO_OK);
	assert_int_equal(json_object_size(obj), 2);
	assert_string_equal(json_string_value(json_object_get(obj, "defender_id")), "player-2");
	assert_string_equal(json_string_value(json_object_get(obj, "skill_id")), "slash");
	json_decref(arr);
	json_decref(obj);
}

static void json_of_an_event_without_a_usable_body_has_only_the_envelope(void **state)
{
	struct mmo_ev b;
	json_t *j;

	(void)state;
	build(&b, "player.move");
	b.ev.body_case = MMO__EVENT__BODY__NOT_SET;
	j = mmo_event_to_json(&b.ev);
	assert_int_equal(json_object_size(j), 7);
	json_decref(j);
	build(&b, "player.move");
	b.ev.body_case = (Mmo__Event__BodyCase)2;
	j = mmo_event_to_json(&b.ev);
	assert_int_equal(json_object_size(j), 7);
	json_decref(j);
	build(&b, "player.move");
	b.ev.player_move = NULL;
	j = mmo_event_to_json(&b.ev);
	assert_int_equal(json_object_size(j), 7);
	json_decref(j);
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(type_table_lists_every_known_type_in_order),
		cmocka_unit_test(type_lookup_refuses_unknown_case_changed_and_null_names),
		cmocka_unit_test(id_of_64_bytes_is_valid_and_65_is_not),
		cmocka_unit_test(id_accepts_exactly_its_alphabet),
		cmocka_unit_test(priority_is_own_then_type_default_then_medium),
		cmocka_unit_test(ev_init_refuses_unknown_type_and_null_builder),
		cmocka_unit_test(ev_init_stores_null_ids_as_empty_and_links_the_body),
		cmocka_unit_test(every_type_validates_and_round_trips_byte_exactly),
		cmocka_unit_test(decoded_body_fields_equal_the_built_ones),

		VCASE(accepts_event_id_of_64_bytes, "player.move", event_id_64, MMO_OK, NULL),
		VCASE(rejects_empty_event_id, "player.move", event_id_empty, MMO_EMISSING, "event_id"),
		VCASE(rejects_null_event_id, "player.move", event_id_null, MMO_EMISSING, "event_id"),
		VCASE(rejects_event_id_of_65_bytes, "player.move", event_id_65, MMO_EBADID, "event_id"),
		VCASE(rejects_event_id_with_a_space, "player.move", event_id_space, MMO_EBADID,
		      "event_id"),
		VCASE(reports_the_first_problem_in_field_order, "player.move", bad_id_and_bad_type,
		      MMO_EBADID, "event_id"),
		VCASE(rejects_empty_type, "player.move", type_empty, MMO_EMISSING, "type"),
		VCASE(rejects_null_type, "player.move", type_null, MMO_EMISSING, "type"),
		VCASE(rejects_unknown_type, "player.move", type_unknown, MMO_EBADTYPE, "type"),
		VCASE(rejects_body_of_another_type, "player.move", type_attack, MMO_EBADTYPE, "body"),
		VCASE(rejects_missing_body, "player.move", body_not_set, MMO_EMISSING, "body"),
		VCASE(rejects_null_body_pointer, "player.move", body_pointer_null, MMO_EMISSING,
		      "body"),
		VCASE(rejects_body_case_of_an_envelope_field, "player.move",
		      body_case_of_envelope_field, MMO_EBADTYPE, "body"),
		VCASE(rejects_body_case_out_of_range, "player.move", body_case_out_of_range,
		      MMO_EBADTYPE, "body"),
		VCASE(rejects_envelope_without_descriptor, "player.move", envelope_descriptor_null,
		      MMO_EINVAL, "event"),
		VCASE(rejects_body_with_wrong_descriptor, "player.move", body_descriptor_wrong,
		      MMO_EINVAL, "event"),
		VCASE(rejects_position_without_descriptor, "world.update", position_descriptor_null,
		      MMO_EINVAL, "event"),
		VCASE(rejects_empty_player_for_player_type, "player.move", player_empty, MMO_EMISSING,
		      "player_id"),
		VCASE(rejects_null_player_for_player_type, "combat.result", player_null, MMO_EMISSING,
		      "player_id"),
		VCASE(rejects_player_id_with_a_slash, "player.login", player_slash, MMO_EBADID,
		      "player_id"),
		VCASE(rejects_player_id_of_65_bytes_on_world_type, "world.spawn", player_65, MMO_EBADID,
		      "player_id"),
		VCASE(accepts_world_type_without_player, "world.spawn", player_null, MMO_OK, NULL),
		VCASE(accepts_security_type_without_player, "security.forbidden", player_empty, MMO_OK,
		      NULL),
		VCASE(accepts_empty_region, "player.move", region_empty, MMO_OK, NULL),
		VCASE(accepts_null_region, "player.move", region_null, MMO_OK, NULL),
		VCASE(rejects_region_id_of_65_bytes, "player.move", region_65, MMO_EBADID, "region_id"),
		VCASE(rejects_region_id_with_a_newline, "world.despawn", region_newline, MMO_EBADID,
		      "region_id"),
		VCASE(accepts_priority_4, "player.move", priority_4, MMO_OK, NULL),
		VCASE(rejects_priority_5, "player.move", priority_5, MMO_EPRIORITY, "priority"),
		VCASE(rejects_priority_uint32_max, "admin.action", priority_max, MMO_EPRIORITY,
		      "priority"),
		VCASE(ignores_seq_ts_and_cause_seq, "player.logout", seq_ts_set, MMO_OK, NULL),
		VCASE(rejects_move_without_position, "player.move", move_no_position, MMO_EMISSING,
		      "player_move.position"),
		VCASE(rejects_move_to_nan_x, "player.move", pos_nan_x, MMO_ENONFINITE,
		      "player_move.position.x"),
		VCASE(rejects_move_to_infinite_y, "player.move", pos_inf_y, MMO_ENONFINITE,
		      "player_move.position.y"),
		VCASE(rejects_move_to_minus_infinite_z, "player.move", pos_minus_inf_z, MMO_ENONFINITE,
		      "player_move.position.z"),
		VCASE(accepts_move_to_huge_finite_coordinates, "player.move", pos_huge_but_finite,
		      MMO_OK, NULL),
		VCASE(rejects_attack_without_defender, "combat.attack", attack_defender_empty,
		      MMO_EMISSING, "combat_attack.defender_id"),
		VCASE(rejects_attack_with_null_defender, "combat.attack", attack_defender_null,
		      MMO_EMISSING, "combat_attack.defender_id"),
		VCASE(rejects_attack_with_bad_defender, "combat.attack", attack_defender_bad,
		      MMO_EBADID, "combat_attack.defender_id"),
		VCASE(rejects_attack_without_skill, "combat.attack", attack_skill_empty, MMO_EMISSING,
		      "combat_attack.skill_id"),
		VCASE(rejects_attack_with_skill_of_65_bytes, "combat.attack", attack_skill_65,
		      MMO_EBADID, "combat_attack.skill_id"),
		VCASE(accepts_defend_without_attacker_or_skill, "combat.defend", defend_attacker_empty,
		      MMO_OK, NULL),
		VCASE(rejects_defend_with_bad_attacker, "combat.defend", defend_attacker_bad,
		      MMO_EBADID, "combat_defend.attacker_id"),
		VCASE(rejects_result_without_attacker, "combat.result", result_attacker_empty,
		      MMO_EMISSING, "combat_result.attacker_id"),
		VCASE(rejects_result_with_defender_of_65_bytes, "combat.result", result_defender_bad,
		      MMO_EBADID, "combat_result.defender_id"),
		VCASE(rejects_result_with_bad_skill, "combat.result", result_skill_bad, MMO_EBADID,
		      "combat_result.skill_id"),
		VCASE(accepts_result_without_skill, "combat.result", result_skill_empty, MMO_OK, NULL),
		VCASE(rejects_result_kill, "combat.result", result_kill, MMO_EINVAL,
		      "combat_result.result"),
		VCASE(rejects_result_in_upper_case, "combat.result", result_upper, MMO_EINVAL,
		      "combat_result.result"),
		VCASE(rejects_empty_result, "combat.result", result_empty, MMO_EINVAL,
		      "combat_result.result"),
		VCASE(rejects_null_result, "combat.result", result_null, MMO_EINVAL,
		      "combat_result.result"),
		VCASE(accepts_result_miss, "combat.result", result_miss, MMO_OK, NULL),
		VCASE(accepts_result_critical, "combat.result", result_critical, MMO_OK, NULL),
		VCASE(rejects_spawn_without_entity, "world.spawn", spawn_entity_empty, MMO_EMISSING,
		      "world_spawn.entity_id"),
		VCASE(accepts_spawn_without_position, "world.spawn", spawn_no_position, MMO_OK, NULL),
		VCASE(rejects_spawn_at_nan_x, "world.spawn", pos_nan_x, MMO_ENONFINITE,
		      "world_spawn.position.x"),
		VCASE(rejects_spawn_with_entity_type_of_257_bytes, "world.spawn", spawn_entity_type_257,
		      MMO_ETOOBIG, "world_spawn.entity_type"),
		VCASE(rejects_despawn_without_entity, "world.despawn", despawn_entity_empty,
		      MMO_EMISSING, "world_despawn.entity_id"),
		VCASE(rejects_despawn_with_reason_of_257_bytes, "world.despawn", despawn_reason_257,
		      MMO_ETOOBIG, "world_despawn.reason"),
		VCASE(rejects_update_with_bad_entity, "world.update", update_entity_bad, MMO_EBADID,
		      "world_update.entity_id"),
		VCASE(accepts_update_without_position, "world.update", update_no_position, MMO_OK,
		      NULL),
		VCASE(rejects_update_to_minus_infinite_z, "world.update", pos_minus_inf_z,
		      MMO_ENONFINITE, "world_update.position.z"),
		VCASE(rejects_update_with_bad_from_region, "world.update", update_from_region_bad,
		      MMO_EBADID, "world_update.from_region_id"),
		VCASE(accepts_update_without_from_region, "world.update", update_from_region_empty,
		      MMO_OK, NULL),
		VCASE(rejects_reject_without_reason, "world.reject", reject_reason_empty, MMO_EMISSING,
		      "world_reject.reason"),
		VCASE(rejects_reason_in_upper_case, "world.reject", reject_reason_upper, MMO_EINVAL,
		      "world_reject.reason"),
		VCASE(rejects_reason_with_a_digit, "world.reject", reject_reason_digit, MMO_EINVAL,
		      "world_reject.reason"),
		VCASE(rejects_reason_with_a_dot, "world.reject", reject_reason_dot, MMO_EINVAL,
		      "world_reject.reason"),
		VCASE(accepts_reason_of_64_bytes, "world.reject", reject_reason_64, MMO_OK, NULL),
		VCASE(rejects_reason_of_65_bytes, "world.reject", reject_reason_65, MMO_EINVAL,
		      "world_reject.reason"),
		VCASE(accepts_detail_of_256_bytes, "world.reject", reject_detail_256, MMO_OK, NULL),
		VCASE(rejects_detail_of_257_bytes, "world.reject", reject_detail_257, MMO_ETOOBIG,
		      "world_reject.detail"),
		VCASE(rejects_security_without_kind, "security.login_failed", security_kind_empty,
		      MMO_EMISSING, "security.kind"),
		VCASE(rejects_security_kind_of_257_bytes, "security.token_refused", security_kind_257,
		      MMO_ETOOBIG, "security.kind"),
		VCASE(rejects_security_source_of_257_bytes, "security.rate_limited",
		      security_source_257, MMO_ETOOBIG, "security.source"),
		VCASE(rejects_admin_action_without_command, "admin.action", admin_command_empty,
		      MMO_EMISSING, "admin_action.command"),
		VCASE(rejects_admin_actor_of_257_bytes, "admin.action", admin_actor_257, MMO_ETOOBIG,
		      "admin_action.actor"),
		VCASE(rejects_stats_without_name, "stats.update", stats_name_null, MMO_EMISSING,
		      "stats_update.name"),
		VCASE(rejects_stats_value_nan, "stats.update", stats_value_nan, MMO_ENONFINITE,
		      "stats_update.value"),
		VCASE(rejects_stats_value_minus_infinite, "stats.update", stats_value_minus_inf,
		      MMO_ENONFINITE, "stats_update.value"),
		VCASE(accepts_username_of_256_bytes, "player.register", register_username_256, MMO_OK,
		      NULL),
		VCASE(rejects_username_of_257_bytes, "player.register", register_username_257,
		      MMO_ETOOBIG, "player_register.username"),
		VCASE(accepts_null_username, "player.register", register_username_null, MMO_OK, NULL),
		VCASE(rejects_session_id_of_257_bytes, "player.login", login_session_257, MMO_ETOOBIG,
		      "player_login.session_id"),
		VCASE(rejects_logout_reason_of_257_bytes, "player.logout", logout_reason_257,
		      MMO_ETOOBIG, "player_logout.reason"),
		VCASE(accepts_every_builder_default, "combat.defend", no_change, MMO_OK, NULL),

		cmocka_unit_test(validate_refuses_null_event_and_allows_null_field_pointer),
		cmocka_unit_test(every_body_string_is_bounded_and_named),
		cmocka_unit_test(validate_and_encode_refuse_an_event_over_record_max),
		cmocka_unit_test(decode_refuses_empty_buffer_as_malformed),
		cmocka_unit_test(decode_refuses_garbage_as_malformed),
		cmocka_unit_test(decode_refuses_a_truncated_record_and_never_crashes_on_a_prefix),
		cmocka_unit_test(decode_refuses_more_than_record_max_as_too_big),
		cmocka_unit_test(decode_refuses_null_arguments),
		cmocka_unit_test(record_of_exactly_record_max_passes_and_one_more_byte_is_too_big),
		cmocka_unit_test(encode_refuses_a_buffer_one_byte_short),
		cmocka_unit_test(encode_refuses_null_arguments_and_broken_messages),
		cmocka_unit_test(null_strings_encode_as_empty),
		cmocka_unit_test(json_has_exactly_the_envelope_and_body_fields),
		cmocka_unit_test(json_omits_empty_strings_and_zero_cause_seq),
		cmocka_unit_test(json_renders_security_and_stats_fields_with_their_types),
		cmocka_unit_test(json_renders_non_finite_numbers_as_null),
		cmocka_unit_test(json_string_with_quotes_and_control_chars_round_trips),
		cmocka_unit_test(json_replaces_invalid_utf8_instead_of_dropping_the_event),
		cmocka_unit_test(json_body_refuses_null_event_and_non_object),
		cmocka_unit_test(json_of_an_event_without_a_usable_body_has_only_the_envelope),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, fill_strings, NULL);
}
