/* test_hash.c - FNV-1a 64: the published test vectors, the string and the
 * incremental forms agree, and the offset basis is the real one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_hash.h"

static void vectors_match_the_fnv_reference(void **state)
{
	(void)state;
	assert_true(mmo_fnv1a("", 0) == 0xcbf29ce484222325ULL);
	assert_true(mmo_fnv1a(NULL, 0) == MMO_FNV1A_INIT);
	assert_true(mmo_fnv1a("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(mmo_fnv1a("foobar", 6) == 0x85944171f73967e8ULL);
}

static void string_form_equals_the_byte_form(void **state)
{
	(void)state;
	assert_true(mmo_fnv1a_str("") == MMO_FNV1A_INIT);
	assert_true(mmo_fnv1a_str("foobar") == 0x85944171f73967e8ULL);
	/* the world's id map hashes entity ids with this exact value */
	assert_true(mmo_fnv1a_str("player-1") == 0x212e1ef85a029ab2ULL);
	assert_true(mmo_fnv1a_str("\xff\x80") == mmo_fnv1a("\xff\x80", 2));
}

static void more_continues_a_hash(void **state)
{
	(void)state;
	assert_true(mmo_fnv1a_more(mmo_fnv1a("foo", 3), "bar", 3) == 0x85944171f73967e8ULL);
	assert_true(mmo_fnv1a_more(MMO_FNV1A_INIT, "foobar", 6) == mmo_fnv1a("foobar", 6));
	assert_true(mmo_fnv1a_more(12345, "", 0) == 12345);
}

/* The copies this replaces started from 1469598103934665603 (a digit short
 * of the offset basis) everywhere but the world: one basis now. */
static void offset_basis_is_the_standard_one(void **state)
{
	(void)state;
	assert_true(MMO_FNV1A_INIT == 0xcbf29ce484222325ULL);
	assert_true(mmo_fnv1a("a", 1) != ((1469598103934665603ULL ^ 'a') * 1099511628211ULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(vectors_match_the_fnv_reference),
	    cmocka_unit_test(string_form_equals_the_byte_form),
	    cmocka_unit_test(more_continues_a_hash),
	    cmocka_unit_test(offset_basis_is_the_standard_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
