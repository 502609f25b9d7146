/* test_audit_query.c - evlog_query_*: every filter and combination returns
 * exactly the expected seqs, and the driving index is the selective one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log/evlog.h"
#include "gen.h"
#include "testsupport.h"

#define N 3000

static char dir[4096];
static struct gen_ev truth[N];
static evlog *lg;

static int setup(void **state)
{
	struct evlog_opts o = {0};
	char ldir[4200], msg[256];

	if (ts_tmpdir(dir, sizeof(dir)) || gen_log(dir, N, 3, truth))
		return -1;
	snprintf(ldir, sizeof(ldir), "%s/log", dir);
	o.dir = ldir;
	o.readonly = true;
	return evlog_open(&o, &lg, msg, sizeof(msg)) ? -1 : 0;
}

static int teardown(void **state)
{
	evlog_close(lg);
	ts_rmrf(dir);
	return 0;
}

static bool type_matches(const char *filter, const char *type)
{
	size_t n;

	if (!filter)
		return true;
	n = strlen(filter);
	return filter[n - 1] == '.' ? strncmp(type, filter, n) == 0 : strcmp(type, filter) == 0;
}

static bool matches(const struct evlog_query *q, const struct gen_ev *e)
{
	return (!q->player || !strcmp(q->player, e->player)) &&
	       (!q->region || !strcmp(q->region, e->region)) && type_matches(q->type, e->type) &&
	       (!q->from_seq || e->seq >= q->from_seq) && (!q->to_seq || e->seq <= q->to_seq) &&
	       (!q->since_set || e->ts >= q->since_us) && (!q->until_set || e->ts < q->until_us);
}

/* Run q and compare with the truth; returns the match count. */
static size_t check(const struct evlog_query *q, uint64_t *scanned, enum evlog_query_driver *d)
{
	evlog_query_it *it;
	struct evlog_rec rec;
	size_t want = 0, got = 0;
	int err;

	assert_int_equal(evlog_query_open(lg, q, &it), MMO_OK);
	while ((err = evlog_query_next(it, &rec)) == MMO_OK) {
		while (want < N && !matches(q, &truth[want]))
			want++;
		if (want == N || rec.seq != truth[want].seq) {
			fail_msg(
			    "player=%s type=%s region=%s seq %llu..%llu: got seq %llu, want %llu",
			    q->player ? q->player : "-", q->type ? q->type : "-",
			    q->region ? q->region : "-", (unsigned long long)q->from_seq,
			    (unsigned long long)q->to_seq, (unsigned long long)rec.seq,
			    want < N ? (unsigned long long)truth[want].seq : 0ULL);
		}
		assert_int_equal(rec.ts, truth[want].ts);
		want++;
		got++;
	}
	assert_int_equal(err, MMO_ENOTFOUND);
	while (want < N && !matches(q, &truth[want]))
		want++;
	if (want != N)
		fail_msg("player=%s type=%s region=%s: seq %llu missing from the result",
		         q->player ? q->player : "-", q->type ? q->type : "-",
		         q->region ? q->region : "-", (unsigned long long)truth[want].seq);
	if (scanned)
		*scanned = evlog_query_scanned(it);
	if (d)
		*d = evlog_query_driver(it, NULL);
	evlog_query_close(it);
	return got;
}

static size_t count(const struct evlog_query *q)
{
	size_t n = 0;

	for (size_t i = 0; i < N; i++)
		n += matches(q, &truth[i]);
	return n;
}

static void every_filter_combination_returns_exactly_the_expected_seqs(void **state)
{
	const char *players[] = {NULL, "p3", "p9"};
	const char *types[] = {NULL, "player.move", "combat.", "security.", "player.", "nosuch."};
	const char *regions[] = {NULL, "r2", "r9"};
	size_t total = 0;

	for (size_t a = 0; a < 3; a++)
		for (size_t b = 0; b < 6; b++)
			for (size_t c = 0; c < 3; c++)
				for (int s = 0; s < 2; s++)
					for (int t = 0; t < 2; t++) {
						struct evlog_query q = {.player = players[a],
						                        .type = types[b],
						                        .region = regions[c]};

						if (s) {
							q.from_seq = 500;
							q.to_seq = 2200;
						}
						if (t) {
							q.since_set = q.until_set = true;
							q.since_us = GEN_BASE_US + GEN_DAY_US +
							             3 * 3600000000LL;
							q.until_us = GEN_BASE_US + 2 * GEN_DAY_US +
							             5 * 3600000000LL;
						}
						total += check(&q, NULL, NULL);
					}
	assert_true(total > 1000); /* the combinations are not all empty */
}

static void a_player_query_reads_only_that_players_entries(void **state)
{
	struct evlog_query q = {.player = "p3"};
	enum evlog_query_driver d;
	uint64_t scanned;
	size_t n = check(&q, &scanned, &d);

	assert_int_equal(d, EVLOG_DRIVE_PLAYER);
	assert_int_equal(n, count(&q));
	assert_int_equal(scanned, n);
}

static void a_type_prefix_merges_the_matching_keys_in_seq_order(void **state)
{
	struct evlog_query q = {.type = "combat."};
	enum evlog_query_driver d;
	uint64_t scanned;
	size_t n = check(&q, &scanned, &d);

	assert_int_equal(d, EVLOG_DRIVE_TYPE);
	assert_int_equal(n, 3 * N / 12); /* attack, result, defend */
	assert_int_equal(scanned, n);
}

static void the_most_selective_filter_drives(void **state)
{
	struct evlog_query narrow = {.player = "p3", .from_seq = 100, .to_seq = 110};
	struct evlog_query both = {.player = "p3", .type = "security."};
	struct evlog_query rare = {.player = "p3", .type = "admin.action", .region = "r1"};
	enum evlog_query_driver d;
	uint64_t scanned;

	check(&narrow, &scanned, &d);
	assert_int_equal(d, EVLOG_DRIVE_SEQ);
	assert_int_equal(scanned, 11);
	/* security events have no player: p3 (~3000/7 entries) vs 250 security */
	assert_int_equal(check(&both, &scanned, &d), 0);
	assert_int_equal(d, EVLOG_DRIVE_TYPE);
	assert_int_equal(scanned, N / 12);
	/* admin.action has no player and no region */
	assert_int_equal(check(&rare, &scanned, &d), 0);
}

static void a_time_window_is_a_seq_range_with_exact_bounds(void **state)
{
	/* Bounds on a batch's own ts: since is inclusive, until exclusive. */
	struct evlog_query q = {.since_set = true,
	                        .since_us = truth[500].ts,
	                        .until_set = true,
	                        .until_us = truth[1200].ts};
	enum evlog_query_driver d;
	uint64_t scanned, lo, hi;

	assert_int_equal(check(&q, &scanned, &d), 700);
	assert_int_equal(d, EVLOG_DRIVE_SEQ);
	assert_int_equal(scanned, 700);
	assert_int_equal(evlog_time_to_seq(lg, truth[500].ts, truth[1200].ts, &lo, &hi), MMO_OK);
	assert_int_equal(lo, 501);
	assert_int_equal(hi, 1200);
	assert_int_equal(evlog_time_to_seq(lg, 0, GEN_BASE_US, &lo, &hi), MMO_ENOTFOUND);
	assert_int_equal(evlog_time_to_seq(lg, GEN_BASE_US + 10 * GEN_DAY_US,
	                                   GEN_BASE_US + 11 * GEN_DAY_US, &lo, &hi),
	                 MMO_ENOTFOUND);
	/* only since, only until */
	q.until_set = false;
	assert_int_equal(check(&q, NULL, NULL), N - 500);
	q.until_set = true;
	q.since_set = false;
	assert_int_equal(check(&q, NULL, NULL), 1200);
}

static void paging_by_from_seq_neither_skips_nor_repeats(void **state)
{
	struct evlog_query q = {.type = "player.", .region = "r2"};
	size_t want = count(&q), got = 0;
	uint64_t last = 0, next = 1;

	for (;;) {
		evlog_query_it *it;
		struct evlog_rec rec;
		int k = 0, err;

		q.from_seq = next;
		assert_int_equal(evlog_query_open(lg, &q, &it), MMO_OK);
		while (k < 13 && (err = evlog_query_next(it, &rec)) == MMO_OK) {
			assert_true(rec.seq > last);
			last = rec.seq;
			got++;
			k++;
		}
		evlog_query_close(it);
		if (k < 13)
			break;
		next = last + 1;
	}
	assert_int_equal(got, want);
}

static void bad_filters_are_refused(void **state)
{
	struct evlog_query q = {.from_seq = 10, .to_seq = 5};
	struct evlog_query t = {
	    .since_set = true, .since_us = 10, .until_set = true, .until_us = 5};
	char longid[MMO_ID_MAX + 8];
	struct evlog_query l = {.player = longid};
	evlog_query_it *it;

	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	assert_int_equal(evlog_query_open(lg, &q, &it), MMO_EINVAL);
	assert_int_equal(evlog_query_open(lg, &t, &it), MMO_EINVAL);
	assert_int_equal(evlog_query_open(lg, &l, &it), MMO_EINVAL);
}

static void an_empty_log_has_no_matches(void **state)
{
	char d[4096], ld[4200], msg[256];
	struct evlog_opts o = {0};
	struct evlog_query q = {.player = "p1"}, all = {0};
	struct evlog_rec rec;
	evlog_query_it *it;
	evlog *l;

	assert_int_equal(ts_tmpdir(d, sizeof(d)), 0);
	snprintf(ld, sizeof(ld), "%s/log", d);
	o.dir = ld;
	assert_int_equal(evlog_open(&o, &l, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(evlog_query_open(l, &q, &it), MMO_OK);
	assert_int_equal(evlog_query_next(it, &rec), MMO_ENOTFOUND);
	evlog_query_close(it);
	assert_int_equal(evlog_query_open(l, &all, &it), MMO_OK);
	assert_int_equal(evlog_query_next(it, &rec), MMO_ENOTFOUND);
	assert_int_equal(evlog_query_head(it), 0);
	evlog_query_close(it);
	evlog_close(l);
	ts_rmrf(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_filter_combination_returns_exactly_the_expected_seqs),
	    cmocka_unit_test(a_player_query_reads_only_that_players_entries),
	    cmocka_unit_test(a_type_prefix_merges_the_matching_keys_in_seq_order),
	    cmocka_unit_test(the_most_selective_filter_drives),
	    cmocka_unit_test(a_time_window_is_a_seq_range_with_exact_bounds),
	    cmocka_unit_test(paging_by_from_seq_neither_skips_nor_repeats),
	    cmocka_unit_test(bad_filters_are_refused),
	    cmocka_unit_test(an_empty_log_has_no_matches),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
