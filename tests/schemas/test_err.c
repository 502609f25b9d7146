/* test_err.c - one error space: every code has a distinct stable name and a
 * description, including those the views used to return as negative
 * sentinels (rewind, race); anything else is "unknown". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_err.h"

static void every_code_has_a_distinct_name(void **state)
{
	(void)state;
	for (int i = 0; i < MMO_ERR_COUNT; i++) {
		assert_string_not_equal(mmo_strerror(i), "unknown");
		assert_string_not_equal(mmo_errdesc(i), "unknown error");
		for (int j = 0; j < i; j++)
			assert_string_not_equal(mmo_strerror(i), mmo_strerror(j));
	}
}

static void wire_values_never_move(void **state)
{
	(void)state;
	assert_int_equal(MMO_OK, 0);
	assert_int_equal(MMO_EUNAVAIL, 20);
	assert_int_equal(MMO_EREWIND, 21);
	assert_int_equal(MMO_ERACE, 22);
	assert_string_equal(mmo_strerror(MMO_EREWIND), "rewind");
	assert_string_equal(mmo_strerror(MMO_ERACE), "race");
}

static void values_outside_are_unknown(void **state)
{
	(void)state;
	assert_string_equal(mmo_strerror(-2), "unknown");
	assert_string_equal(mmo_strerror(-3), "unknown");
	assert_string_equal(mmo_strerror(MMO_ERR_COUNT), "unknown");
	assert_string_equal(mmo_errdesc(1000), "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_code_has_a_distinct_name),
	    cmocka_unit_test(wire_values_never_move),
	    cmocka_unit_test(values_outside_are_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
