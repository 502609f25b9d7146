/* test_sha256.c - SHA-256: FIPS 180-2 vectors, one shot equals streaming in
 * pieces, lowercase hex. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_err.h"
#include "schemas/mmo_sha256.h"

static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
static const char empty_hex[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static void one_shot_matches_the_fips_vectors(void **state)
{
	uint8_t d[MMO_SHA256_LEN];
	char hex[2 * MMO_SHA256_LEN + 1];

	(void)state;
	assert_int_equal(mmo_sha256("abc", 3, d), MMO_OK);
	mmo_sha256_hex(d, hex);
	assert_string_equal(hex, abc_hex);
	assert_int_equal(mmo_sha256(NULL, 0, d), MMO_OK);
	mmo_sha256_hex(d, hex);
	assert_string_equal(hex, empty_hex);
}

static void streaming_in_pieces_equals_one_shot(void **state)
{
	static uint8_t big[1000];
	struct mmo_sha256 s;
	uint8_t d[MMO_SHA256_LEN];
	char hex[2 * MMO_SHA256_LEN + 1];

	(void)state;
	memset(big, 'a', sizeof(big));
	assert_int_equal(mmo_sha256_init(&s), MMO_OK);
	mmo_sha256_update(&s, big, 1);
	mmo_sha256_update(&s, NULL, 0);
	mmo_sha256_update(&s, big + 1, 998);
	mmo_sha256_update(&s, big + 999, 1);
	mmo_sha256_final(&s, d);
	assert_null(s.ctx);
	mmo_sha256_hex(d, hex);
	assert_string_equal(hex,
	                    "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
	assert_int_equal(mmo_sha256_init(&s), MMO_OK);
	mmo_sha256_update(&s, "ab", 2);
	mmo_sha256_update(&s, "c", 1);
	mmo_sha256_final(&s, d);
	mmo_sha256_hex(d, hex);
	assert_string_equal(hex, abc_hex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(one_shot_matches_the_fips_vectors),
	    cmocka_unit_test(streaming_in_pieces_equals_one_shot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
