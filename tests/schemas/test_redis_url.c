/* test_redis_url.c - every form of a Redis URL, bad ports and databases, and
 * the user (the views' parser dropped it, the gateway's kept it: kept). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_err.h"
#include "schemas/mmo_redis_url.h"

static struct mmo_redis_url u;

static void ok(const char *url)
{
	char err[128] = "";

	memset(&u, 0x5a, sizeof(u));
	assert_int_equal(mmo_redis_url_parse(url, &u, err, sizeof(err)), MMO_OK);
	assert_string_equal(err, "");
}

static void bad(const char *url, const char *reason)
{
	struct mmo_redis_url v = {.port = -7};
	char err[256] = "";

	assert_int_equal(mmo_redis_url_parse(url, &v, err, sizeof(err)), MMO_EINVAL);
	assert_int_equal(v.port, -7); /* untouched */
	assert_non_null(strstr(err, reason));
}

static void host_alone_takes_the_defaults(void **state)
{
	(void)state;
	ok("redis://cache");
	assert_string_equal(u.host, "cache");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 0);
	assert_string_equal(u.user, "");
	assert_string_equal(u.password, "");
}

static void port_and_db_are_read(void **state)
{
	(void)state;
	ok("redis://127.0.0.1:6380/2");
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 2);
	ok("redis://h/15");
	assert_int_equal(u.port, 6379);
	assert_int_equal(u.db, 15);
	ok("redis://h:1/");
	assert_int_equal(u.port, 1);
	assert_int_equal(u.db, 0);
	ok("redis://h:65535/1000");
	assert_int_equal(u.port, 65535);
	assert_int_equal(u.db, 1000);
}

static void password_alone_is_read(void **state)
{
	(void)state;
	ok("redis://:s3cret@cache");
	assert_string_equal(u.host, "cache");
	assert_string_equal(u.user, "");
	assert_string_equal(u.password, "s3cret");
	ok("redis://s3cret@cache:7000");
	assert_string_equal(u.user, "");
	assert_string_equal(u.password, "s3cret");
	assert_int_equal(u.port, 7000);
}

static void user_and_password_are_both_kept(void **state)
{
	(void)state;
	ok("redis://alice:s3cret@cache:6380/3");
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.password, "s3cret");
	assert_string_equal(u.host, "cache");
	assert_int_equal(u.port, 6380);
	assert_int_equal(u.db, 3);
}

static void user_and_password_are_percent_decoded(void **state)
{
	(void)state;
	ok("redis://al%69ce:p%40ss%3Aw%2fd@cache");
	assert_string_equal(u.user, "alice");
	assert_string_equal(u.password, "p@ss:w/d");
	ok("redis://:a@b@cache"); /* a raw '@' in the password: the last one ends it */
	assert_string_equal(u.password, "a@b");
	assert_string_equal(u.host, "cache");
	bad("redis://:%zz@cache", "password");
	bad("redis://:%4@cache", "password");
	bad("redis://:%00@cache", "password");
}

static void scheme_may_be_left_out_but_no_other(void **state)
{
	(void)state;
	ok("localhost:7000");
	assert_string_equal(u.host, "localhost");
	assert_int_equal(u.port, 7000);
	bad("http://x", "redis://");
	bad("rediss://x", "redis://");
}

static void bad_ports_are_refused(void **state)
{
	(void)state;
	bad("redis://h:99999", "port");
	bad("redis://h:0", "port");
	bad("redis://h:", "port");
	bad("redis://h:-1", "port");
	bad("redis://h:12ab", "port");
	bad("redis://h:+80", "port");
	bad("redis://h:99999999999", "port");
}

static void bad_databases_are_refused(void **state)
{
	(void)state;
	bad("redis://h/1001", "database");
	bad("redis://h/-1", "database");
	bad("redis://h/x", "database");
	bad("redis://h/1/2", "database");
}

/* The gateway's parser read an empty host as 127.0.0.1; the views refused. */
static void empty_host_is_refused(void **state)
{
	(void)state;
	bad("redis://:7", "host");
	bad("redis://", "host");
	bad("redis://:pw@/2", "host");
	bad("", "empty");
	assert_int_equal(mmo_redis_url_parse(NULL, &u, NULL, 0), MMO_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(host_alone_takes_the_defaults),
	    cmocka_unit_test(port_and_db_are_read),
	    cmocka_unit_test(password_alone_is_read),
	    cmocka_unit_test(user_and_password_are_both_kept),
	    cmocka_unit_test(user_and_password_are_percent_decoded),
	    cmocka_unit_test(scheme_may_be_left_out_but_no_other),
	    cmocka_unit_test(bad_ports_are_refused),
	    cmocka_unit_test(bad_databases_are_refused),
	    cmocka_unit_test(empty_host_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
