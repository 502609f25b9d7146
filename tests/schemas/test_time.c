/* test_time.c - the one timestamp parser is the strict one (the auditors'):
 * what the gateway's copy let through is refused, valid offsets convert
 * exactly; and the formatter writes UTC with microseconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_err.h"
#include "schemas/mmo_time.h"

static int64_t parsed(const char *s)
{
	int64_t us = -42;

	assert_int_equal(mmo_time_parse(s, &us), MMO_OK);
	return us;
}

static void refused(const char *s)
{
	int64_t us = -42;

	assert_int_equal(mmo_time_parse(s, &us), MMO_EINVAL);
	assert_true(us == -42);
}

static void utc_and_fractions_convert_exactly(void **state)
{
	(void)state;
	assert_true(parsed("2026-11-23T21:10:01.123456Z") == 1795468201123456LL);
	assert_true(parsed("2026-11-23t21:10:01.1234569z") == 1795468201123456LL);
	assert_true(parsed("2026-11-23 21:10:01Z") == 1795468201000000LL);
	assert_true(parsed("1970-01-01T00:00:00Z") == 0);
	assert_true(parsed("2024-02-29T00:00:00Z") == 1709164800000000LL);
	assert_true(parsed("9999-12-31T23:59:59Z") == 253402300799000000LL);
}

static void valid_offsets_convert_exactly(void **state)
{
	(void)state;
	assert_true(parsed("2026-11-23T23:10:01.5+02:00") == 1795468201500000LL);
	assert_true(parsed("2026-11-23T19:40:01-01:30") == 1795468201000000LL);
	assert_true(parsed("2026-11-24T20:59:01+23:49") == 1795468201000000LL);
	assert_true(parsed("2026-11-22T21:11:01-23:59") == 1795468201000000LL);
}

static void dates_and_epoch_milliseconds_are_accepted(void **state)
{
	(void)state;
	assert_true(parsed("2026-11-23") == 1795392000000000LL);
	assert_true(parsed("1795468201123") == 1795468201123000LL);
	assert_true(parsed("0") == 0);
	refused("1234567890123456"); /* 16 digits */
}

/* The gateway's parser accepted these. */
static void out_of_range_offsets_are_refused(void **state)
{
	(void)state;
	refused("2026-11-23T21:10:01+99:99");
	refused("2026-11-23T21:10:01+24:00");
	refused("2026-11-23T21:10:01-00:60");
	refused("2026-11-23T21:10:01+0100");
	refused("2026-11-23T21:10:01+01:00x");
}

static void instants_before_1970_are_refused(void **state)
{
	(void)state;
	refused("1969-12-31T23:59:59Z");
	refused("1970-01-01T00:30:00+01:00");
	refused("0999-01-01");
}

/* Both former parsers let timegm() roll these into the next month. */
static void impossible_calendar_dates_are_refused(void **state)
{
	(void)state;
	refused("2026-02-30T00:00:00Z");
	refused("2026-02-29");
	refused("2100-02-29T00:00:00Z");
	refused("2026-04-31T00:00:00Z");
	refused("2026-13-01T00:00:00Z");
	refused("2026-00-10");
	refused("2026-01-00");
	assert_true(parsed("2000-02-29") == 951782400000000LL);
}

static void malformed_text_is_refused(void **state)
{
	int64_t us;

	(void)state;
	assert_int_equal(mmo_time_parse(NULL, &us), MMO_EINVAL);
	refused("");
	refused("2026-11-23T");
	refused("2026-11-23T21:10:01");   /* no zone */
	refused("2026-11-23T21:10:01.Z"); /* empty fraction */
	refused("2026-11-23T24:00:00Z");
	refused("2026-11-23T21:60:00Z");
	refused("2026-11-23T21:10:61Z");
	refused("2026-1-23T21:10:01Z");
	refused("-1");
}

static void format_writes_utc_with_microseconds(void **state)
{
	char buf[MMO_TIME_LEN + 1];

	(void)state;
	assert_int_equal(mmo_time_format(1795468201123456LL, buf, sizeof(buf)), MMO_TIME_LEN);
	assert_string_equal(buf, "2026-11-23T21:10:01.123456Z");
	assert_int_equal(mmo_time_format(0, buf, sizeof(buf)), MMO_TIME_LEN);
	assert_string_equal(buf, "1970-01-01T00:00:00.000000Z");
	assert_int_equal(mmo_time_format(951782400000001LL, buf, sizeof(buf)), MMO_TIME_LEN);
	assert_string_equal(buf, "2000-02-29T00:00:00.000001Z");
	assert_int_equal(mmo_time_format(-1, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "-");
	assert_int_equal(mmo_time_format(0, buf, MMO_TIME_LEN), 0);
	assert_string_equal(buf, "");
}

static void format_and_parse_round_trip(void **state)
{
	char buf[64];
	int64_t v[] = {0, 1, 999999, 1709164800000000LL, 253402300799999999LL};

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(*v); i++) {
		assert_true(mmo_time_format(v[i], buf, sizeof(buf)) > 0);
		assert_true(parsed(buf) == v[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(utc_and_fractions_convert_exactly),
	    cmocka_unit_test(valid_offsets_convert_exactly),
	    cmocka_unit_test(dates_and_epoch_milliseconds_are_accepted),
	    cmocka_unit_test(out_of_range_offsets_are_refused),
	    cmocka_unit_test(instants_before_1970_are_refused),
	    cmocka_unit_test(impossible_calendar_dates_are_refused),
	    cmocka_unit_test(malformed_text_is_refused),
	    cmocka_unit_test(format_writes_utc_with_microseconds),
	    cmocka_unit_test(format_and_parse_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
