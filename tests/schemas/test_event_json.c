/* test_event_json.c - the JSON form of an event (jansson): exactly the
 * envelope and body fields, omissions, types, non-finite numbers, escapes
 * and invalid UTF-8.
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

#include "event_fx.h"
#include "schemas/event.h"
#include "schemas/event_json.h"

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
