/* test_arena.c - decoding into the arena: the event reads back, the arena is
 * reset per decode, and what the log and replay copies disagreed on (an
 * empty record) is one answer: malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_arena.h"
#include "schemas/mmo_err.h"

static size_t encode(uint8_t *buf, size_t cap, const char *id)
{
	struct mmo_ev b;
	size_t len = 0;

	assert_int_equal(mmo_ev_init(&b, "player.move", id, "p1", "r1"), MMO_OK);
	mmo_ev_set_pos(&b, 1.5, -2, 3);
	assert_int_equal(mmo_event_encode(&b.ev, buf, cap, &len), MMO_OK);
	return len;
}

static void decoded_event_reads_back(void **state)
{
	struct mmo_arena a;
	uint8_t buf[512];
	size_t len = encode(buf, sizeof(buf), "e-1"), used;
	Mmo__Event *ev = NULL;

	(void)state;
	assert_int_equal(mmo_arena_init(&a, 0), MMO_OK);
	assert_int_equal(a.cap, MMO_ARENA_CAP);
	assert_int_equal(mmo_event_decode_arena(&a, buf, len, &ev), MMO_OK);
	assert_string_equal(ev->event_id, "e-1");
	assert_string_equal(ev->type, "player.move");
	assert_string_equal(ev->player_id, "p1");
	assert_true(ev->player_move->position->x == 1.5);
	used = a.used;
	assert_true(used > 0);
	assert_true((uint8_t *)ev >= a.buf && (uint8_t *)ev < a.buf + a.cap);
	/* the next decode starts over: the same space, not more */
	len = encode(buf, sizeof(buf), "e-2");
	assert_int_equal(mmo_event_decode_arena(&a, buf, len, &ev), MMO_OK);
	assert_string_equal(ev->event_id, "e-2");
	assert_int_equal(a.used, used);
	mmo_arena_release(&a);
	assert_null(a.buf);
	mmo_arena_release(&a); /* twice is harmless */
}

/* replay/replay.c decoded 0 bytes as an all-default event; the log refused. */
static void empty_record_is_malformed(void **state)
{
	struct mmo_arena a;
	uint8_t buf[1] = {0};
	Mmo__Event *ev = (Mmo__Event *)0x1;

	(void)state;
	assert_int_equal(mmo_arena_init(&a, 4096), MMO_OK);
	assert_int_equal(mmo_event_decode_arena(&a, buf, 0, &ev), MMO_EMALFORMED);
	assert_ptr_equal(ev, (Mmo__Event *)0x1);
	mmo_arena_release(&a);
}

static void garbage_and_oversize_are_refused(void **state)
{
	static uint8_t big[MMO_RECORD_MAX + 1];
	struct mmo_arena a;
	uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff};
	Mmo__Event *ev = NULL;

	(void)state;
	assert_int_equal(mmo_arena_init(&a, 0), MMO_OK);
	assert_int_equal(mmo_event_decode_arena(&a, junk, sizeof(junk), &ev), MMO_EMALFORMED);
	assert_int_equal(mmo_event_decode_arena(&a, big, sizeof(big), &ev), MMO_ETOOBIG);
	assert_null(ev);
	mmo_arena_release(&a);
}

static void event_larger_than_the_arena_is_malformed(void **state)
{
	struct mmo_arena a;
	uint8_t buf[512];
	size_t len = encode(buf, sizeof(buf), "e-1");
	Mmo__Event *ev = NULL;

	(void)state;
	assert_int_equal(mmo_arena_init(&a, 64), MMO_OK);
	assert_int_equal(mmo_event_decode_arena(&a, buf, len, &ev), MMO_EMALFORMED);
	assert_null(ev);
	mmo_arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(decoded_event_reads_back),
	    cmocka_unit_test(empty_record_is_malformed),
	    cmocka_unit_test(garbage_and_oversize_are_refused),
	    cmocka_unit_test(event_larger_than_the_arena_is_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
