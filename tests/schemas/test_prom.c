/* test_prom.c - the latency histogram (the gateway's bounds and quantile)
 * and the bounded Prometheus text writer, to the byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "schemas/mmo_prom.h"

static void observations_land_in_their_bucket(void **state)
{
	struct mmo_hist h = {0};

	(void)state;
	mmo_hist_observe(&h, -5);  /* counts as 0 */
	mmo_hist_observe(&h, 250); /* on a bound: that bucket */
	mmo_hist_observe(&h, 251);
	mmo_hist_observe(&h, 2500000);
	mmo_hist_observe(&h, 2500001); /* +Inf */
	assert_int_equal(h.b[0], 2);
	assert_int_equal(h.b[1], 1);
	assert_int_equal(h.b[12], 1);
	assert_int_equal(h.b[13], 1);
	assert_int_equal(h.count, 5);
	assert_int_equal(h.sum_us, 250 + 251 + 2500000 + 2500001);
	assert_int_equal(mmo_hist_bounds_us[0], 250);
	assert_int_equal(mmo_hist_bounds_us[MMO_HIST_N - 2], 2500000);
}

static void quantile_is_the_upper_bound_of_its_bucket(void **state)
{
	uint64_t b[MMO_HIST_N] = {0};

	(void)state;
	assert_int_equal(mmo_hist_quantile(b, 0.5), 0);
	b[0] = 1;
	b[1] = 1;
	b[13] = 1;
	assert_int_equal(mmo_hist_quantile(b, 0.0), 250); /* at least one */
	assert_int_equal(mmo_hist_quantile(b, 0.5), 250);
	assert_int_equal(mmo_hist_quantile(b, 0.99), 500);
	assert_true(mmo_hist_quantile(b, 1.0) == INT64_MAX);
	memset(b, 0, sizeof(b));
	b[5] = 100;
	assert_int_equal(mmo_hist_quantile(b, 0.999), 10000);
}

static void histogram_renders_cumulative_seconds(void **state)
{
	struct mmo_hist h = {0};
	char buf[4096];
	struct mmo_prom p;

	(void)state;
	mmo_hist_observe(&h, 100);
	mmo_hist_observe(&h, 300);
	mmo_hist_observe(&h, 3000000);
	mmo_prom_init(&p, buf, sizeof(buf));
	mmo_prom_head(&p, "x_seconds", "histogram", "Time.");
	mmo_prom_hist(&p, "x_seconds", "route=\"/a\"", &h);
	mmo_prom_hist(&p, "y_seconds", "", &(struct mmo_hist){0});
	assert_false(p.truncated);
	assert_int_equal(p.len, strlen(buf));
	assert_string_equal(buf, "# HELP x_seconds Time.\n"
	                         "# TYPE x_seconds histogram\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.00025\"} 1\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.0005\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.001\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.0025\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.005\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.01\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.025\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.05\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.25\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"0.5\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"1\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"2.5\"} 2\n"
	                         "x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 3\n"
	                         "x_seconds_sum{route=\"/a\"} 3.000400\n"
	                         "x_seconds_count{route=\"/a\"} 3\n"
	                         "y_seconds_bucket{le=\"0.00025\"} 0\n"
	                         "y_seconds_bucket{le=\"0.0005\"} 0\n"
	                         "y_seconds_bucket{le=\"0.001\"} 0\n"
	                         "y_seconds_bucket{le=\"0.0025\"} 0\n"
	                         "y_seconds_bucket{le=\"0.005\"} 0\n"
	                         "y_seconds_bucket{le=\"0.01\"} 0\n"
	                         "y_seconds_bucket{le=\"0.025\"} 0\n"
	                         "y_seconds_bucket{le=\"0.05\"} 0\n"
	                         "y_seconds_bucket{le=\"0.1\"} 0\n"
	                         "y_seconds_bucket{le=\"0.25\"} 0\n"
	                         "y_seconds_bucket{le=\"0.5\"} 0\n"
	                         "y_seconds_bucket{le=\"1\"} 0\n"
	                         "y_seconds_bucket{le=\"2.5\"} 0\n"
	                         "y_seconds_bucket{le=\"+Inf\"} 0\n"
	                         "y_seconds_sum 0.000000\n"
	                         "y_seconds_count 0\n");
}

static void writer_keeps_only_whole_writes(void **state)
{
	char buf[10];
	struct mmo_prom p;

	(void)state;
	mmo_prom_init(&p, buf, sizeof(buf));
	mmo_prom_printf(&p, "%s", "12345");
	assert_int_equal(p.len, 5);
	mmo_prom_printf(&p, "%d", 6789); /* 9 bytes + NUL: fits exactly */
	assert_int_equal(p.len, 9);
	assert_false(p.truncated);
	mmo_prom_printf(&p, "x");
	assert_true(p.truncated);
	assert_int_equal(p.len, 9);
	assert_string_equal(buf, "123456789");
	mmo_prom_init(&p, buf, sizeof(buf));
	mmo_prom_printf(&p, "abc");
	mmo_prom_printf(&p, "defghijk"); /* would not fit whole: dropped */
	mmo_prom_printf(&p, "z");        /* and nothing after it */
	assert_true(p.truncated);
	assert_string_equal(buf, "abc");
	assert_int_equal(p.len, 3);
}

static void zero_capacity_writes_nothing(void **state)
{
	struct mmo_prom p;

	(void)state;
	mmo_prom_init(&p, NULL, 0);
	mmo_prom_head(&p, "a", "gauge", "b");
	assert_true(p.truncated);
	assert_int_equal(p.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(observations_land_in_their_bucket),
	    cmocka_unit_test(quantile_is_the_upper_bound_of_its_bucket),
	    cmocka_unit_test(histogram_renders_cumulative_seconds),
	    cmocka_unit_test(writer_keeps_only_whole_writes),
	    cmocka_unit_test(zero_capacity_writes_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
