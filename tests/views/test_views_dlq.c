/* test_views_dlq.c - the dead-letter queue. A player whose Redis key holds
 * the wrong type: its first event is dead-lettered with the store's reason,
 * its later events are parked behind it (documented policy: a player's
 * events are applied in order or not at all) while every other player's
 * events flow; `mmo dlq list` pages and counts; `mmo dlq drop` wants --yes;
 * after the key is fixed `mmo dlq retry` applies each event exactly once
 * (the per-player `events` counter is exact), a second retry does nothing,
 * and an entry for an event already in the store is retried harmlessly.
 * The same for a region set of the wrong type.
 */
#include <jansson.h>

#include "views_fx.h"
#include "projector/views/views_int.h"

static json_t *dlq_json(struct fx *f, const char *limit, const char *cursor)
{
	char out[700], *txt;
	json_error_t jerr;
	json_t *j;

	snprintf(out, sizeof(out), "%s/list.out", f->dir);
	char *args[] = {"dlq", "list", "--data", f->dir, "--view", "redis", "--format", "json",
	                "--limit", (char *)limit, cursor ? "--cursor" : NULL, (char *)cursor, NULL};
	assert_int_equal(fx_mmo(out, args), 0);
	txt = fx_slurp(out);
	assert_non_null(txt);
	j = json_loads(txt, 0, &jerr);
	if (!j)
		fail_msg("dlq list output is not JSON: %s", txt);
	free(txt);
	return j;
}

static uint64_t count_of(json_t *j, const char *kind)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(j, "counts"), i, c)
	{
		if (!strcmp(json_string_value(json_object_get(c, "kind")), kind))
			return (uint64_t)json_integer_value(json_object_get(c, "count"));
	}
	return 0;
}

static int retry(struct fx *f, const char *extra, char **text)
{
	char out[700];
	int rc;

	snprintf(out, sizeof(out), "%s/retry.out", f->dir);
	char *args[] = {"dlq",       "retry", "--data", f->dir, "--redis", f->redis_url, "--view",
	                "redis",     (char *)extra, NULL};
	rc = fx_mmo(out, args);
	*text = fx_slurp(out);
	return rc;
}

static void poisoned_player_is_parked_then_retried_once(void **state)
{
	struct fx f;
	redisContext *c;
	redisReply *r;
	json_t *j, *e;
	char *txt, out[700];
	uint64_t p5_events, total;

	(void)state;
	fx_start(&f, NULL);
	fx_model_init(&f.m, 20, 31);
	f.m.avoid = 5; /* p5 stays out of combat: its events concern it alone */
	c = fx_redis(&f);
	freeReplyObject(redisCommand(c, "SET mmo:player:p5 oops"));
	fx_views_start(&f, 64, 20, 300, 5);
	fx_append(&f, 1500, -1);
	assert_true(fx_wait_caught_up(&f, 30000));

	/* Everyone else is exact; p5's key is untouched. */
	fx_check_all(&f, 5);
	r = redisCommand(c, "GET mmo:player:p5");
	assert_string_equal(r->str, "oops");
	freeReplyObject(r);
	p5_events = f.m.p[5].events;
	assert_true(p5_events > 3);

	/* The first event of p5 is dead, the rest parked behind it. */
	j = dlq_json(&f, "10000", NULL);
	total = (uint64_t)json_integer_value(json_object_get(j, "total"));
	assert_int_equal(total, p5_events);
	assert_int_equal(count_of(j, "WRONGTYPE"), 1);
	assert_int_equal(count_of(j, "parked"), p5_events - 1);
	e = json_array_get(json_object_get(j, "entries"), 0);
	assert_string_equal(json_string_value(json_object_get(e, "status")), "dead");
	assert_non_null(strstr(json_string_value(json_object_get(e, "error")), "WRONGTYPE"));
	assert_int_equal(json_integer_value(json_object_get(e, "attempts")), 1);
	assert_string_equal(json_string_value(json_array_get(json_object_get(e, "players"), 0)),
	                    "p5");
	uint64_t dead_seq = (uint64_t)json_integer_value(json_object_get(e, "seq"));
	e = json_array_get(json_object_get(j, "entries"), 1);
	assert_string_equal(json_string_value(json_object_get(e, "status")), "parked");
	assert_true(json_integer_value(json_object_get(e, "behind")) >= (json_int_t)dead_seq);
	json_decref(j);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_dead_lettered_total"), 1);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_parked_total"), p5_events - 1);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_dlq_depth"), p5_events);

	/* Paging: three at a time, the cursor goes on after the last one. */
	j = dlq_json(&f, "3", NULL);
	assert_int_equal(json_array_size(json_object_get(j, "entries")), 3);
	const char *cur = json_string_value(json_object_get(j, "next_cursor"));
	assert_non_null(cur);
	char cursor[64];
	snprintf(cursor, sizeof(cursor), "%s", cur);
	uint64_t third = (uint64_t)json_integer_value(
	    json_object_get(json_array_get(json_object_get(j, "entries"), 2), "seq"));
	json_decref(j);
	j = dlq_json(&f, "3", cursor);
	assert_true((uint64_t)json_integer_value(json_object_get(
	                json_array_get(json_object_get(j, "entries"), 0), "seq")) > third);
	json_decref(j);

	/* Later events of p5 wait too; others still flow. */
	fx_append(&f, 40, 5);
	fx_append(&f, 200, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, 5);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_dlq_depth"), f.m.p[5].events);

	/* drop refuses without --yes; a dry run changes nothing. */
	snprintf(out, sizeof(out), "%s/drop.out", f.dir);
	char *drop[] = {"dlq", "drop", "--data", f.dir, "--view", "redis", NULL};
	assert_int_equal(fx_mmo(out, drop), 2);
	assert_int_equal(retry(&f, "--dry-run", &txt), 0);
	assert_non_null(strstr(txt, "would retry"));
	free(txt);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_dlq_depth"), f.m.p[5].events);

	/* Not fixed yet: refused again, attempts + 1, nothing applied. */
	assert_int_equal(retry(&f, NULL, &txt), 1);
	assert_non_null(strstr(txt, "refused again"));
	free(txt);
	j = dlq_json(&f, "1", NULL);
	e = json_array_get(json_object_get(j, "entries"), 0);
	assert_int_equal(json_integer_value(json_object_get(e, "attempts")), 2);
	json_decref(j);

	/* Fixed: every event of p5 applied once, in order. */
	freeReplyObject(redisCommand(c, "DEL mmo:player:p5"));
	assert_int_equal(retry(&f, NULL, &txt), 0);
	assert_non_null(strstr(txt, "0 refused again"));
	free(txt);
	fx_check_all(&f, -1);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_dlq_depth"), 0);

	/* Again: nothing to do. */
	assert_int_equal(retry(&f, NULL, &txt), 0);
	assert_non_null(strstr(txt, "0 tried"));
	free(txt);

	/* p5's new events are no longer held back. */
	fx_append(&f, 60, 5);
	fx_append(&f, 100, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_dlq_depth"), 0);
	redisFree(c);
	fx_stop(&f);
}

/* An entry whose event is already in the store (as after a retry that
 * crashed before removing it): the retry changes nothing and removes it. */
static void retry_of_applied_event_changes_nothing(void **state)
{
	struct fx f;
	views_dlq *q;
	struct vbatch b = {0};
	evlog_iter *it;
	struct evlog_rec rec;
	char *txt;

	(void)state;
	fx_start(&f, NULL);
	fx_model_init(&f.m, 10, 41);
	fx_views_start(&f, 64, 20, 300, 5);
	fx_append(&f, 400, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_views_stop(&f);

	/* Put seqs 5..9 (registrations and others, all applied) in the DLQ. */
	assert_int_equal(views_dlq_open(f.dir, false, &q, NULL, 0), MMO_OK);
	assert_int_equal(evlog_iter_open(f.log, EVLOG_ALL, NULL, 5, &it), MMO_OK);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(evlog_iter_next(it, &rec), MMO_OK);
		assert_int_equal(vb_add(&b, &rec), MMO_OK);
	}
	evlog_iter_close(it);
	for (size_t i = 0; i < b.n; i++)
		vb_dead(&b.ev[i], "test: injected");
	assert_int_equal(views_dlq_write(q, VIEW_ID_REDIS, &b, NULL, NULL), MMO_OK);
	assert_int_equal(views_dlq_depth(q, "redis"), 5);
	views_dlq_close(q);
	vb_free(&b);

	assert_int_equal(retry(&f, NULL, &txt), 0);
	assert_non_null(strstr(txt, "5 applied"));
	free(txt);
	/* The retry appended its admin.action event: let the projector fold it. */
	fx_views_start(&f, 64, 20, 300, 5);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1); /* counters unchanged: nothing applied twice */
	assert_int_equal(views_dlq_open(f.dir, true, &q, NULL, 0), MMO_OK);
	assert_int_equal(views_dlq_depth(q, "redis"), 0);
	views_dlq_close(q);
	fx_stop(&f);
}

static void poisoned_region_set(void **state)
{
	struct fx f;
	redisContext *c;
	json_t *j;
	char *txt;

	(void)state;
	fx_start(&f, NULL);
	fx_model_init(&f.m, 12, 51);
	c = fx_redis(&f);
	freeReplyObject(redisCommand(c, "SET mmo:region:r_2:players broken"));
	fx_views_start(&f, 64, 20, 300, 5);
	fx_append(&f, 800, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	j = dlq_json(&f, "10", NULL);
	assert_true(count_of(j, "WRONGTYPE") >= 1);
	json_decref(j);

	freeReplyObject(redisCommand(c, "DEL mmo:region:r_2:players"));
	assert_int_equal(retry(&f, NULL, &txt), 0);
	free(txt);
	fx_append(&f, 100, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_dlq_depth"), 0);
	redisFree(c);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(poisoned_player_is_parked_then_retried_once),
	    cmocka_unit_test(retry_of_applied_event_changes_nothing),
	    cmocka_unit_test(poisoned_region_set),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
