/* test_be.c - big-endian puts and gets: exact bytes, round trips, and no
 * alignment needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_be.h"

static void puts_write_most_significant_byte_first(void **state)
{
	uint8_t b[9] = {0};

	(void)state;
	mmo_be16_put(b, 0x0102);
	assert_memory_equal(b, "\x01\x02", 2);
	mmo_be32_put(b, 0x01020304u);
	assert_memory_equal(b, "\x01\x02\x03\x04", 4);
	mmo_be64_put(b + 1, 0x0102030405060708ULL); /* unaligned */
	assert_memory_equal(b + 1, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
}

static void gets_read_back_what_puts_wrote(void **state)
{
	uint8_t b[9];

	(void)state;
	mmo_be16_put(b, 0xfffe);
	assert_int_equal(mmo_be16_get(b), 0xfffe);
	mmo_be32_put(b + 1, 0xdeadbeefu);
	assert_int_equal(mmo_be32_get(b + 1), 0xdeadbeefu);
	mmo_be64_put(b + 1, 0xfedcba9876543210ULL);
	assert_true(mmo_be64_get(b + 1) == 0xfedcba9876543210ULL);
	mmo_be64_put(b, 0);
	assert_true(mmo_be64_get(b) == 0);
	mmo_be64_put(b, UINT64_MAX);
	assert_true(mmo_be64_get(b) == UINT64_MAX);
}

static void keys_sort_bytewise_in_numeric_order(void **state)
{
	uint8_t a[8], b[8];

	(void)state;
	mmo_be64_put(a, 255);
	mmo_be64_put(b, 256);
	assert_true(memcmp(a, b, 8) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(puts_write_most_significant_byte_first),
	    cmocka_unit_test(gets_read_back_what_puts_wrote),
	    cmocka_unit_test(keys_sort_bytewise_in_numeric_order),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
