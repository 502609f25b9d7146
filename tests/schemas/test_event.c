/* test_event.c - the event model: the type table, ids, the builder, every
 * type through encode/decode byte for byte, and the bounds of decode and
 * encode. Validation is test_event_validate.c, JSON test_event_json.c;
 * what they share is event_fx.h.
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

		cmocka_unit_test(decode_refuses_empty_buffer_as_malformed),
		cmocka_unit_test(decode_refuses_garbage_as_malformed),
		cmocka_unit_test(decode_refuses_a_truncated_record_and_never_crashes_on_a_prefix),
		cmocka_unit_test(decode_refuses_more_than_record_max_as_too_big),
		cmocka_unit_test(decode_refuses_null_arguments),
		cmocka_unit_test(record_of_exactly_record_max_passes_and_one_more_byte_is_too_big),
		cmocka_unit_test(encode_refuses_a_buffer_one_byte_short),
		cmocka_unit_test(encode_refuses_null_arguments_and_broken_messages),
		cmocka_unit_test(null_strings_encode_as_empty),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, fill_strings, NULL);
}
