/* test_event_validate.c - validation with its exact codes and field names.
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

#include "event_fx.h"
#include "schemas/event.h"

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

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
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
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, fill_strings, NULL);
}
