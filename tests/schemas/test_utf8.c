/* test_utf8.c - the one UTF-8 validator: surrogates, overlong forms, code
 * points past U+10FFFF and truncated sequences are refused, by both the
 * NUL-terminated step (mmo_utf8_len) and the length form (mmo_utf8_valid). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_utf8.h"

#define VALID(s) mmo_utf8_valid(s, sizeof(s) - 1)
#define LEN(s)   mmo_utf8_len((const unsigned char *)(s))

static void well_formed_sequences_pass(void **state)
{
	(void)state;
	assert_int_equal(LEN("a"), 1);
	assert_int_equal(LEN("\xc2\x80"), 2);         /* U+0080 */
	assert_int_equal(LEN("\xdf\xbf"), 2);         /* U+07FF */
	assert_int_equal(LEN("\xe0\xa0\x80"), 3);     /* U+0800 */
	assert_int_equal(LEN("\xed\x9f\xbf"), 3);     /* U+D7FF */
	assert_int_equal(LEN("\xee\x80\x80"), 3);     /* U+E000 */
	assert_int_equal(LEN("\xef\xbf\xbd"), 3);     /* U+FFFD */
	assert_int_equal(LEN("\xf0\x90\x80\x80"), 4); /* U+10000 */
	assert_int_equal(LEN("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF */
	assert_true(VALID("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"));
	assert_true(VALID("a\0b")); /* U+0000 is a character */
	assert_true(mmo_utf8_valid(NULL, 0));
}

static void surrogates_are_refused(void **state)
{
	(void)state;
	assert_int_equal(LEN("\xed\xa0\x80"), 0); /* U+D800 */
	assert_int_equal(LEN("\xed\xbf\xbf"), 0); /* U+DFFF */
	assert_false(VALID("\xed\xa0\x80"));
	assert_false(VALID("ok\xed\xb2\x80"));
}

static void overlong_forms_are_refused(void **state)
{
	(void)state;
	assert_int_equal(LEN("\xc0\x80"), 0);         /* NUL in 2 */
	assert_int_equal(LEN("\xc1\xbf"), 0);         /* U+007F in 2 */
	assert_int_equal(LEN("\xe0\x80\x80"), 0);     /* in 3 */
	assert_int_equal(LEN("\xe0\x9f\xbf"), 0);     /* U+07FF in 3 */
	assert_int_equal(LEN("\xf0\x80\x80\x80"), 0); /* in 4 */
	assert_int_equal(LEN("\xf0\x8f\xbf\xbf"), 0); /* U+FFFF in 4 */
	assert_false(VALID("\xc0\x80"));
	assert_false(VALID("\xc1\xbf"));
	assert_false(VALID("\xe0\x9f\xbf"));
	assert_false(VALID("\xf0\x8f\xbf\xbf"));
}

static void code_points_past_10ffff_are_refused(void **state)
{
	(void)state;
	assert_int_equal(LEN("\xf4\x90\x80\x80"), 0); /* U+110000 */
	assert_int_equal(LEN("\xf5\x80\x80\x80"), 0);
	assert_int_equal(LEN("\xff"), 0);
	assert_false(VALID("\xf4\x90\x80\x80"));
	assert_false(VALID("\xf7\xbf\xbf\xbf"));
	assert_false(VALID("\xf8\x88\x80\x80\x80"));
}

static void truncated_sequences_are_refused(void **state)
{
	(void)state;
	assert_int_equal(LEN("\xc3"), 0);
	assert_int_equal(LEN("\xe2\x82"), 0);
	assert_int_equal(LEN("\xf0\x9f\x98"), 0);
	assert_false(VALID("\xc3"));
	assert_false(VALID("ab\xe2\x82"));
	assert_false(VALID("\xf0\x9f\x98"));
	assert_false(mmo_utf8_valid("\xe2\x82\xac", 2)); /* cut by the length */
	assert_false(VALID("\x80"));                     /* continuation alone */
	assert_false(VALID("\xc3\x28"));                 /* not a continuation */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(well_formed_sequences_pass),
	    cmocka_unit_test(surrogates_are_refused),
	    cmocka_unit_test(overlong_forms_are_refused),
	    cmocka_unit_test(code_points_past_10ffff_are_refused),
	    cmocka_unit_test(truncated_sequences_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
