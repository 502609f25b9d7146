/* test_views_unit.c - the views' pure parts: full-jitter backoff bounds,
 * breaker transitions, the parking rule, the DLQ's entries, counts, paging
 * and locks, Redis URLs, number formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "projector/views/views_int.h"
#include "testsupport.h"

static void backoff_is_full_jitter_within_bounds(void **state)
{
	struct views_backoff b;
	unsigned max_seen[8] = {0}, zero = 0;

	(void)state;
	views_backoff_init(&b, 50, 1000, 42);
	for (int i = 0; i < 20000; i++) {
		for (unsigned a = 0; a < 8; a++) {
			unsigned d = views_backoff_delay(&b, a);
			unsigned bound = 50u << a;

			if (bound > 1000)
				bound = 1000;
			assert_true(d <= bound);
			if (d > max_seen[a])
				max_seen[a] = d;
			zero += d == 0;
		}
	}
	/* the whole range is used: near the bound, and sometimes 0 */
	for (unsigned a = 0; a < 8; a++) {
		unsigned bound = 50u << a > 1000 ? 1000 : 50u << a;

		assert_true(max_seen[a] >= bound * 9 / 10);
	}
	assert_true(zero > 0);
	/* a huge attempt number is capped, not overflowed */
	assert_true(views_backoff_delay(&b, 1000) <= 1000);
}

static void breaker_opens_probes_and_closes(void **state)
{
	struct views_breaker br;
	unsigned wait = 0;
	int64_t now = 1000000;

	(void)state;
	views_breaker_init(&br, 3, 200);
	assert_true(views_breaker_allow(&br, now, &wait));
	views_breaker_failure(&br, now);
	views_breaker_failure(&br, now);
	assert_int_equal(br.state, VIEWS_BREAKER_CLOSED);
	views_breaker_failure(&br, now);
	assert_int_equal(br.state, VIEWS_BREAKER_OPEN);
	assert_int_equal(br.opened, 1);
	assert_false(views_breaker_allow(&br, now + 100 * 1000, &wait));
	assert_true(wait > 0 && wait <= 100);
	/* time up: one probe, half-open */
	assert_true(views_breaker_allow(&br, now + 200 * 1000, &wait));
	assert_int_equal(br.state, VIEWS_BREAKER_HALF_OPEN);
	/* the probe fails: open again at once */
	views_breaker_failure(&br, now + 200 * 1000);
	assert_int_equal(br.state, VIEWS_BREAKER_OPEN);
	assert_int_equal(br.opened, 2);
	assert_true(views_breaker_allow(&br, now + 400 * 1000, &wait));
	views_breaker_success(&br);
	assert_int_equal(br.state, VIEWS_BREAKER_CLOSED);
	assert_int_equal(br.closed, 1);
	assert_int_equal(br.failures, 0);
	/* a success resets the count */
	views_breaker_failure(&br, now);
	views_breaker_failure(&br, now);
	views_breaker_success(&br);
	views_breaker_failure(&br, now);
	assert_int_equal(br.state, VIEWS_BREAKER_CLOSED);
}

/* A batch of hand-made events: (seq, player keys). */
static void mk(struct vbatch *b, uint64_t seq, const char *k0, const char *k1)
{
	struct vev *e;

	if (b->n == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->ev = realloc(b->ev, b->cap * sizeof(*b->ev));
	}
	e = &b->ev[b->n++];
	memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->nkeys = (k0 != NULL) + (k1 != NULL);
	e->keys[0] = k0;
	e->keys[1] = k1;
	if (b->n == 1)
		b->first = seq;
	b->last = seq;
}

static void parking_follows_players(void **state)
{
	struct vbatch b = {0};

	(void)state;
	mk(&b, 1, "a", NULL);
	mk(&b, 2, "b", NULL);
	mk(&b, 3, "a", NULL);  /* behind 1 */
	mk(&b, 4, "c", "b");   /* c and b: b is fine */
	mk(&b, 5, "c", "a");   /* behind 3 (a) */
	mk(&b, 6, "c", NULL);  /* behind 5 (c is held now) */
	mk(&b, 7, NULL, NULL); /* no player: never waits */
	mk(&b, 8, "b", NULL);
	vb_dead(&b.ev[0], "refused");
	vb_cascade(&b);
	assert_int_equal(b.ev[0].state, VEV_DEAD);
	assert_int_equal(b.ev[1].state, VEV_APPLY);
	assert_int_equal(b.ev[2].state, VEV_PARKED);
	assert_int_equal(b.ev[2].behind, 1);
	assert_int_equal(b.ev[3].state, VEV_APPLY);
	assert_int_equal(b.ev[4].state, VEV_PARKED);
	assert_int_equal(b.ev[4].behind, 3);
	assert_int_equal(b.ev[5].state, VEV_PARKED);
	assert_int_equal(b.ev[5].behind, 5);
	assert_int_equal(b.ev[6].state, VEV_APPLY);
	assert_int_equal(b.ev[7].state, VEV_APPLY);
	assert_true(b.ev[2].to_dlq && b.ev[4].to_dlq && b.ev[5].to_dlq);
	/* idempotent */
	vb_cascade(&b);
	assert_int_equal(b.ev[7].state, VEV_APPLY);
	free(b.ev);
}

static void dlq_records_parks_pages_and_drops(void **state)
{
	char dir[512], msg[256];
	struct vbatch b = {0};
	struct views_dlq_entry e[8];
	struct views_dlq_cursor cur = {"", 0};
	views_dlq *q;
	uint64_t removed = 0;
	size_t n;
	bool more;

	(void)state;
	assert_int_equal(ts_tmpdir(dir, sizeof(dir)), 0);
	assert_int_equal(views_dlq_open(dir, true, &q, msg, sizeof(msg)), MMO_ENOTFOUND);
	assert_int_equal(views_dlq_open(dir, false, &q, msg, sizeof(msg)), MMO_OK);
	mk(&b, 10, "a", NULL);
	mk(&b, 11, "a", NULL);
	mk(&b, 12, "b", NULL);
	mk(&b, 13, "a", "c");
	vb_dead(&b.ev[0], "WRONGTYPE mmo:player:a");
	vb_cascade(&b);
	assert_int_equal(views_dlq_write(q, VIEW_ID_REDIS, &b, NULL, NULL), MMO_OK);
	assert_false(b.ev[0].to_dlq);
	assert_int_equal(views_dlq_depth(q, "redis"), 3);
	assert_int_equal(views_dlq_depth(q, "mongo"), 0);
	/* writing the same again adds nothing */
	b.ev[0].to_dlq = true;
	assert_int_equal(views_dlq_write(q, VIEW_ID_REDIS, &b, NULL, NULL), MMO_OK);
	assert_int_equal(views_dlq_depth(q, NULL), 3);

	/* the next batch: 13's players (a, c) are held; 12 already in; b free */
	for (size_t i = 0; i < b.n; i++)
		b.ev[i].ev = (Mmo__Event *)1; /* decoded, for prepare */
	mk(&b, 14, "c", NULL);
	b.ev[4].ev = (Mmo__Event *)1;
	mk(&b, 15, "b", NULL);
	b.ev[5].ev = (Mmo__Event *)1;
	assert_int_equal(views_dlq_prepare(q, VIEW_ID_REDIS, &b), MMO_OK);
	assert_int_equal(b.ev[0].state, VEV_INDLQ);
	assert_int_equal(b.ev[2].state, VEV_APPLY); /* 12 was never refused */
	assert_int_equal(b.ev[4].state, VEV_PARKED);
	assert_int_equal(b.ev[4].behind, 13);
	assert_int_equal(b.ev[5].state, VEV_APPLY);

	/* paging */
	assert_int_equal(views_dlq_list(q, "redis", &cur, e, 2, &n, &more), MMO_OK);
	assert_int_equal(n, 2);
	assert_true(more);
	assert_int_equal(e[0].seq, 10);
	assert_false(e[0].parked);
	assert_int_equal(e[0].attempts, 1);
	assert_string_equal(e[0].players[0], "a");
	assert_int_equal(e[1].seq, 11);
	assert_true(e[1].parked);
	assert_int_equal(e[1].behind, 10);
	snprintf(cur.view, sizeof(cur.view), "redis");
	cur.seq = 11;
	assert_int_equal(views_dlq_list(q, "redis", &cur, e, 8, &n, &more), MMO_OK);
	assert_int_equal(n, 1);
	assert_false(more);
	assert_int_equal(e[0].seq, 13);
	assert_int_equal(e[0].nplayers, 2);
	assert_int_equal(views_dlq_list(q, "mongo", NULL, e, 8, &n, &more), MMO_OK);
	assert_int_equal(n, 0);

	/* refused again, then removed */
	assert_int_equal(views_dlq_refused(q, VIEW_ID_REDIS, 11, "WRONGTYPE again"), MMO_OK);
	assert_int_equal(views_dlq_get(q, "redis", 11, &e[0]), MMO_OK);
	assert_false(e[0].parked);
	assert_int_equal(e[0].attempts, 1);
	assert_string_equal(e[0].error, "WRONGTYPE again");
	assert_int_equal(views_dlq_remove(q, VIEW_ID_REDIS, 10), MMO_OK);
	assert_int_equal(views_dlq_remove(q, VIEW_ID_REDIS, 10), MMO_ENOTFOUND);
	assert_int_equal(views_dlq_drop(q, "redis", 0, &removed), MMO_OK);
	assert_int_equal(removed, 2);
	assert_int_equal(views_dlq_depth(q, NULL), 0);
	/* nothing held any more */
	assert_int_equal(views_dlq_prepare(q, VIEW_ID_REDIS, &b), MMO_OK);
	for (size_t i = 0; i < b.n; i++)
		assert_int_equal(b.ev[i].state, VEV_APPLY);

	/* the locks */
	assert_int_equal(views_dlq_lock(q, VIEW_ID_REDIS), MMO_OK);
	views_dlq_unlock(q, VIEW_ID_REDIS);
	int err = 0, fd = views_run_lock(dir, "redis", &err);
	assert_true(fd >= 0);
	assert_int_equal(views_run_lock(dir, "redis", &err), -1);
	assert_int_equal(err, MMO_EBUSY);
	close(fd);
	fd = views_run_lock(dir, "redis", &err);
	assert_true(fd >= 0);
	close(fd);

	views_dlq_close(q);
	free(b.ev);
	ts_rmrf(dir);
}

/* The Redis view reads its URL with the one parser (schemas/mmo_redis_url.h,
 * whose own tests hold every form): what it accepts opens, what it refuses
 * is EINVAL with the parser's reason. */
static void redis_view_takes_the_one_url_parser(void **state)
{
	const char *good[] = {"redis://127.0.0.1:6380/2", "redis://:s3cret@cache",
	                      "redis://alice:s3cret@cache:7000", "localhost:7000"};
	const char *badurl[] = {"http://x", "redis://h:99999", "redis://:7", "", NULL};
	const char *reason[] = {"redis://", "port", "host", "empty", "empty"};
	struct view *v;
	char msg[256];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++) {
		v = NULL;
		assert_int_equal(redis_view_new(good[i], &v, msg, sizeof(msg)), MMO_OK);
		v->ops->free(v);
	}
	for (size_t i = 0; i < sizeof(badurl) / sizeof(*badurl); i++) {
		v = NULL;
		msg[0] = 0;
		assert_int_equal(redis_view_new(badurl[i], &v, msg, sizeof(msg)), MMO_EINVAL);
		assert_null(v);
		assert_non_null(strstr(msg, reason[i]));
	}
}

static void doubles_read_back_exactly(void **state)
{
	const double v[] = {0, 1.5, 0.1, 1.0 / 3, 123456.789, -2.5e-300, 1e300, 729.92700729927003};
	char buf[40];

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		views_fmt_double(buf, sizeof(buf), v[i]);
		assert_true(strtod(buf, NULL) == v[i]);
	}
	views_fmt_double(buf, sizeof(buf), 0.1);
	assert_string_equal(buf, "0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(backoff_is_full_jitter_within_bounds),
	    cmocka_unit_test(breaker_opens_probes_and_closes),
	    cmocka_unit_test(parking_follows_players),
	    cmocka_unit_test(dlq_records_parks_pages_and_drops),
	    cmocka_unit_test(redis_view_takes_the_one_url_parser),
	    cmocka_unit_test(doubles_read_back_exactly),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
