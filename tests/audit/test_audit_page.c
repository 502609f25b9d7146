/* test_audit_page.c - audit.h's paged query, the contract GET /api/events
 * relies on: pages of audit_query_json neither skip nor repeat, next_seq
 * and more say where the next page starts, records carry hash and only
 * the fields asked for, and bad filters are MMO_EINVAL. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gen.h"
#include "testsupport.h"
#include "tools/audit/audit.h"

#define N 500

static char dir[4096];
static struct gen_ev truth[N];
static evlog *lg;

static int setup(void **state)
{
	char msg[256];

	(void)state;
	if (ts_tmpdir(dir, sizeof(dir)) || gen_log(dir, N, 2, truth))
		return -1;
	return audit_open_log(dir, &lg, msg, sizeof(msg)) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	evlog_close(lg);
	ts_rmrf(dir);
	return 0;
}

static void pages_of_a_player_neither_skip_nor_repeat(void **state)
{
	struct audit_filter f = {.player = truth[0].player};
	struct audit_page page;
	uint64_t from = 0, want = 0, pages = 0;
	size_t i = 0;

	(void)state;
	assert_true(truth[0].player[0]);
	do {
		json_t *arr, *o;
		size_t k;

		assert_int_equal(audit_query_json(lg, &f, from, 7, 0, &arr, &page), MMO_OK);
		assert_true(json_array_size(arr) <= 7);
		assert_int_equal(page.rows, json_array_size(arr));
		json_array_foreach(arr, k, o)
		{
			while (i < N && strcmp(truth[i].player, f.player))
				i++;
			assert_true(i < N);
			assert_int_equal(json_integer_value(json_object_get(o, "seq")),
			                 truth[i].seq);
			assert_string_equal(json_string_value(json_object_get(o, "player_id")),
			                    f.player);
			assert_int_equal(strlen(json_string_value(json_object_get(o, "hash"))), 64);
			assert_null(json_object_get(o, "time"));
			assert_null(json_object_get(o, "record"));
			i++;
			want++;
		}
		json_decref(arr);
		assert_true(page.next_seq > from);
		from = page.next_seq;
		pages++;
	} while (page.more);
	while (i < N && strcmp(truth[i].player, f.player))
		i++;
	assert_int_equal(i, N);
	assert_true(pages > 1);
	assert_true(want > 7);
	assert_int_equal(page.next_seq, truth[N - 1].seq + 1);
}

static void a_page_ends_where_the_next_one_starts(void **state)
{
	struct audit_filter f = {0};
	struct audit_page page;
	json_t *arr;

	(void)state;
	assert_int_equal(audit_query_json(lg, &f, 10, 5, AUDIT_JSON_TIME, &arr, &page), MMO_OK);
	assert_int_equal(json_array_size(arr), 5);
	assert_true(page.more);
	assert_int_equal(page.next_seq, 15);
	assert_true(page.explained);
	assert_int_equal(page.driver, EVLOG_DRIVE_SEQ);
	assert_non_null(json_string_value(json_object_get(json_array_get(arr, 0), "time")));
	json_decref(arr);
}

static void a_cursor_past_to_seq_is_an_empty_last_page(void **state)
{
	struct audit_filter f = {.to_seq = 20};
	struct audit_page page;
	json_t *arr;

	(void)state;
	assert_int_equal(audit_query_json(lg, &f, 30, 5, 0, &arr, &page), MMO_OK);
	assert_int_equal(json_array_size(arr), 0);
	assert_false(page.more);
	assert_false(page.explained);
	assert_int_equal(page.next_seq, 21);
	json_decref(arr);
}

static int stop_at_third(void *arg, const struct evlog_rec *rec, bool *skip)
{
	int *n = arg;

	(void)rec;
	(void)skip;
	return ++*n == 3 ? MMO_EIO : MMO_OK;
}

static int skip_odd(void *arg, const struct evlog_rec *rec, bool *skip)
{
	(void)arg;
	*skip = rec->seq % 2;
	return MMO_OK;
}

static void the_callback_can_stop_or_skip_rows(void **state)
{
	struct audit_filter f = {0};
	struct audit_page page;
	int n = 0;

	(void)state;
	assert_int_equal(audit_query_page(lg, &f, 1, 0, stop_at_third, &n, &page), MMO_EIO);
	assert_int_equal(page.stop_seq, 3);
	assert_int_equal(audit_query_page(lg, &f, 1, 4, skip_odd, NULL, &page), MMO_OK);
	assert_int_equal(page.rows, 4);
	assert_int_equal(page.next_seq, 9);
}

static void bad_filters_are_refused(void **state)
{
	struct audit_filter f = {
	    .since_set = true, .since_us = 10, .until_set = true, .until_us = 5};
	struct audit_page page;
	json_t *arr = NULL;

	(void)state;
	assert_int_equal(audit_query_json(lg, &f, 0, 5, 0, &arr, &page), MMO_EINVAL);
	assert_null(arr);
	assert_int_equal(page.stop_seq, 0);
	assert_true(audit_type_filter_valid("combat."));
	assert_false(audit_type_filter_valid("Combat"));
	assert_false(audit_type_filter_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pages_of_a_player_neither_skip_nor_repeat),
	    cmocka_unit_test(a_page_ends_where_the_next_one_starts),
	    cmocka_unit_test(a_cursor_past_to_seq_is_an_empty_last_page),
	    cmocka_unit_test(the_callback_can_stop_or_skip_rows),
	    cmocka_unit_test(bad_filters_are_refused),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
