/* test_views_fault.c - faults: redis-server killed (SIGKILL) mid-stream while
 * the game goes on, then started again on the same port; the projector
 * retries behind its breaker (open while the store is down, the view
 * unhealthy), and afterwards the view equals the game with no event lost or
 * applied twice (the per-player `events` counters are exact). The same when
 * the store comes back empty (the projector refolds from seq 1), and when the
 * projector itself is killed with SIGKILL, again and again.
 */
#include "views_fx.h"

#define AOF "appendonly yes\nappendfsync always"

static bool wait_metric(struct fx *f, const char *name, double want, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (fx_metric(f, name) == want)
			return true;
		usleep(20 * 1000);
	}
	return false;
}

static void outage(struct fx *f, const char *conf, size_t before, size_t during)
{
	char why[256];

	fx_append(f, before, -1);
	usleep(50 * 1000); /* let it be mid-stream */
	ts_stop(f->redis_pid, SIGKILL, 2000);
	f->redis_pid = -1;
	fx_append(f, during, -1);
	/* The breaker opens while the store is down; the view is unhealthy. */
	assert_true(wait_metric(f, "mmo_views_breaker_state", 1, 10000));
	assert_false(views_runner_healthy(f->vr, why, sizeof(why)));
	assert_non_null(strstr(why, "redis"));
	assert_int_equal((int)fx_metric(f, "mmo_views_up"), 0);
	assert_true(fx_metric(f, "mmo_views_lag_events") > 0);
	fx_append(f, during, -1);
	f->redis_pid = fx_redis_start_on(f->redis_dir, f->redis_port, conf);
	assert_true(f->redis_pid > 0);
}

static void store_killed_and_restarted(void **state)
{
	struct fx f;

	(void)state;
	fx_start(&f, AOF);
	fx_model_init(&f.m, 30, 21);
	fx_views_start(&f, 64, 20, 300, 3);
	outage(&f, AOF, 1500, 500);
	fx_append(&f, 500, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1);
	assert_true(fx_metric(&f, "mmo_views_breaker_opened_total") >= 1);
	assert_true(fx_metric(&f, "mmo_views_breaker_closed_total") >= 1);
	assert_true(wait_metric(&f, "mmo_views_breaker_state", 0, 1000));
	assert_true(fx_metric(&f, "mmo_views_retries_total") >= 3);
	assert_int_equal((int)fx_metric(&f, "mmo_views_up"), 1);
	assert_int_equal((int)fx_metric(&f, "mmo_views_dlq_depth"), 0);
	assert_true(views_runner_healthy(f.vr, NULL, 0));
	fx_stop(&f);
}

static void store_back_empty_is_refolded(void **state)
{
	struct fx f;

	(void)state;
	fx_start(&f, NULL); /* no persistence: it comes back empty */
	fx_model_init(&f.m, 30, 22);
	fx_views_start(&f, 64, 20, 300, 3);
	outage(&f, NULL, 1000, 300);
	fx_append(&f, 300, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1);
	assert_true(fx_metric(&f, "mmo_views_rewinds_total") >= 1);
	assert_true(fx_metric(&f, "mmo_views_breaker_closed_total") >= 1);
	fx_stop(&f);
}

static pid_t child_start(struct fx *f, const char *logf)
{
	char bin[700];
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s", CHILD_BIN);
	char *argv[] = {bin, f->dir, f->bus, f->redis_url, NULL};
	pid = ts_spawn(argv, logf);
	assert_true(pid > 0);
	return pid;
}

static void projector_killed(void **state)
{
	struct fx f;
	char logf[700];
	pid_t pid;

	(void)state;
	fx_start(&f, NULL);
	fx_model_init(&f.m, 25, 23);
	snprintf(logf, sizeof(logf), "%s/child.log", f.dir);
	for (int round = 0; round < 6; round++) {
		truncate(logf, 0);
		pid = child_start(&f, logf);
		assert_true(ts_wait_log(logf, "views-child ready", 10000));
		fx_append(&f, 400, -1);
		usleep((useconds_t)(fx_rand(&f.m) % 30000));
		ts_stop(pid, SIGKILL, 2000);
	}
	fx_append(&f, 200, -1);
	pid = child_start(&f, logf);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1);
	assert_int_equal(WEXITSTATUS(ts_stop(pid, SIGTERM, 10000)), 0);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(store_killed_and_restarted),
	    cmocka_unit_test(store_back_empty_is_refolded),
	    cmocka_unit_test(projector_killed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
