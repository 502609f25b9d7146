/* test_views_redis.c - the Redis view against a real redis-server and a real
 * log: after a generated game every hash and region set equals the state
 * computed here, the checkpoint is the head, every event reaching a region
 * is published once on its channel, and `mmo views rebuild redis` refolds
 * the same view from seq 1 without touching other keys.
 */
#include "projector/views/views_int.h"
#include "views_fx.h"

/* Count the pub/sub messages per region channel, checking that their seqs
 * only go up (nothing twice, nothing out of order). */
struct sub {
	redisContext *c;
	uint64_t got[FX_REGIONS];
	uint64_t last[FX_REGIONS];
};

static void sub_open(struct fx *f, struct sub *s)
{
	redisReply *r;

	memset(s, 0, sizeof(*s));
	s->c = fx_redis(f);
	r = redisCommand(s->c, "PSUBSCRIBE mmo:region:*");
	assert_non_null(r);
	freeReplyObject(r);
}

/* Read messages until the model's counts are reached or timeout. */
static void sub_drain(struct fx *f, struct sub *s, int timeout_ms)
{
	struct timeval tv = {0, 200 * 1000};
	int64_t end = mmo_mono_us() + (int64_t)timeout_ms * 1000;

	redisSetTimeout(s->c, tv);
	for (;;) {
		bool done = true;
		void *rp = NULL;

		for (int i = 0; i < FX_REGIONS; i++)
			done &= s->got[i] >= f->m.published[i];
		if (done || mmo_mono_us() > end)
			break;
		if (redisGetReply(s->c, &rp) != REDIS_OK) {
			/* a timeout breaks the context: reconnect is not wanted here */
			break;
		}
		redisReply *r = rp;
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 &&
		    !strcmp(r->element[0]->str, "pmessage")) {
			const char *ch = r->element[2]->str + strlen("mmo:region:");
			int ri = fx_region_index(ch);
			const char *sq = strstr(r->element[3]->str, "\"seq\":");
			uint64_t seq = sq ? strtoull(sq + 6, NULL, 10) : 0;

			assert_true(ri >= 0 && ri < FX_REGIONS);
			if (seq <= s->last[ri])
				fail_msg("channel %s: seq %llu after %llu", ch,
				         (unsigned long long)seq, (unsigned long long)s->last[ri]);
			s->last[ri] = seq;
			s->got[ri]++;
		}
		freeReplyObject(r);
	}
	for (int i = 0; i < FX_REGIONS; i++) {
		if (s->got[i] != f->m.published[i])
			fail_msg("channel mmo:region:r_%d: %llu messages, expected %llu", i,
			         (unsigned long long)s->got[i],
			         (unsigned long long)f->m.published[i]);
	}
}

static void view_equals_generated_game(void **state)
{
	struct fx f;
	struct sub s;

	(void)state;
	fx_start(&f, NULL);
	fx_model_init(&f.m, 40, 7);
	sub_open(&f, &s);
	fx_views_start(&f, 128, 20, 500, 5);
	fx_append(&f, 3000, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1);
	sub_drain(&f, &s, 10000);
	redisFree(s.c);
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_checkpoint_seq"), fx_head(&f));
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_lag_events"), 0);
	assert_int_equal((int)fx_metric(&f, "mmo_views_breaker_state"), 0);
	assert_int_equal((int)fx_metric(&f, "mmo_views_dlq_depth"), 0);
	assert_true(fx_metric(&f, "mmo_views_events_applied_total") >= 3000);
	assert_true(views_runner_healthy(f.vr, NULL, 0));

	/* Stopped and started again: it goes on from its checkpoint. */
	fx_views_stop(&f);
	fx_append(&f, 500, -1);
	fx_views_start(&f, 64, 20, 500, 5);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1);
	assert_true(fx_metric(&f, "mmo_views_events_applied_total") <= 500);
	fx_stop(&f);
}

static void rebuild_refolds_from_seq_one(void **state)
{
	struct fx f;
	char out[700], port[16], *txt;
	redisContext *c;
	redisReply *r;

	(void)state;
	fx_start(&f, NULL);
	fx_model_init(&f.m, 20, 11);
	fx_views_start(&f, 100, 20, 500, 5);
	fx_append(&f, 1500, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	snprintf(out, sizeof(out), "%s/cli.out", f.dir);
	snprintf(port, sizeof(port), "%d", f.redis_port);

	/* Refused while the projector runs. */
	char *busy[] = {"views", "rebuild", "redis", "--data", f.dir, "--redis", f.redis_url, NULL};
	assert_int_equal(fx_mmo(out, busy), 1);
	txt = fx_slurp(out);
	assert_non_null(strstr(txt, "stop its views role"));
	free(txt);
	fx_views_stop(&f);

	/* Damage the view, add keys that are not the view's. */
	c = fx_redis(&f);
	freeReplyObject(redisCommand(c, "HSET mmo:player:p3 hp 12345 events 999"));
	freeReplyObject(redisCommand(c, "SADD mmo:region:r_1:players ghost"));
	freeReplyObject(redisCommand(c, "SET mmo:session:abc alive"));
	freeReplyObject(redisCommand(c, "SET other:key kept"));
	freeReplyObject(redisCommand(c, "HSET mmo:player:ghost hp 1 seq 1"));

	char *args[] = {"views",   "rebuild",   "redis",   "--data", f.dir,
	                "--redis", f.redis_url, "--batch", "200",    NULL};
	assert_int_equal(fx_mmo(out, args), 0);
	txt = fx_slurp(out);
	assert_non_null(strstr(txt, "rebuild redis: dropping"));
	assert_non_null(strstr(txt, "(100%)"));
	free(txt);
	fx_check_all(&f, -1);
	r = redisCommand(c, "EXISTS mmo:player:ghost");
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	r = redisCommand(c, "GET mmo:session:abc");
	assert_string_equal(r->str, "alive");
	freeReplyObject(r);
	r = redisCommand(c, "GET other:key");
	assert_string_equal(r->str, "kept");
	freeReplyObject(r);
	redisFree(c);

	/* The projector goes on from the rebuilt checkpoint. */
	fx_views_start(&f, 100, 20, 500, 5);
	fx_append(&f, 300, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	fx_check_all(&f, -1);
	fx_stop(&f);
}

/* A second projector of the same view and data folder is refused. */
static void one_projector_per_view(void **state)
{
	struct fx f;
	struct views_opts o = {0};
	views_runner *second = NULL;
	char msg[256] = "";

	(void)state;
	fx_start(&f, NULL);
	fx_views_start(&f, 0, 0, 0, 0);
	o.log = f.log;
	o.zctx = f.ctx;
	o.bus = f.bus;
	o.data_dir = f.dir;
	o.redis_url = f.redis_url;
	assert_int_equal(views_runner_start(&o, &second, msg, sizeof(msg)), MMO_EBUSY);
	assert_non_null(strstr(msg, "another projector"));
	o.redis_url = NULL;
	assert_int_equal(views_runner_start(&o, &second, msg, sizeof(msg)), MMO_EINVAL);
	fx_stop(&f);
}

/* The benchmark's two rates are measured in one run (the ratio is printed;
 * the target of docs/views.md is not asserted on a shared machine). */
static void bench_measures_both_rates(void **state)
{
	struct fx f;
	double views = 0, raw = 0;
	char msg[256] = "";

	(void)state;
	fx_start(&f, NULL);
	assert_int_equal(views_bench_redis(f.redis_url, 20000, 512, &views, &raw, msg, sizeof(msg)),
	                 MMO_OK);
	assert_true(views > 0 && raw > 0);
	print_message("views redis_events_per_s=%.0f raw_pipeline_per_s=%.0f ratio_vs_raw=%.2f\n",
	              views, raw, views / raw);
	fx_stop(&f);
}

/* The apply latency is the one latency histogram (schemas/mmo_prom.h): the
 * gateway's buckets, 250 µs .. 2.5 s; the views had powers of two from 64 µs. */
static void apply_latency_has_the_shared_buckets(void **state)
{
	static char buf[65536];
	struct fx f;
	const char *p;

	(void)state;
	fx_start(&f, NULL);
	fx_model_init(&f.m, 10, 3);
	fx_views_start(&f, 64, 20, 500, 5);
	fx_append(&f, 300, -1);
	assert_true(fx_wait_caught_up(&f, 30000));
	views_runner_metrics(f.vr, buf, sizeof(buf));
	assert_non_null(strstr(buf, "# TYPE mmo_views_apply_seconds histogram\n"));
	assert_non_null(
	    strstr(buf, "\nmmo_views_apply_seconds_bucket{view=\"redis\",le=\"0.00025\"} "));
	assert_non_null(
	    strstr(buf, "\nmmo_views_apply_seconds_bucket{view=\"redis\",le=\"2.5\"} "));
	assert_null(strstr(buf, "le=\"6.4e-05\""));
	p = strstr(buf, "\nmmo_views_apply_seconds_bucket{view=\"redis\",le=\"+Inf\"} ");
	assert_non_null(p);
	assert_int_equal(strtoull(strchr(p, '}') + 2, NULL, 10),
	                 (uint64_t)fx_metric(&f, "mmo_views_apply_seconds_count"));
	assert_int_equal((uint64_t)fx_metric(&f, "mmo_views_apply_seconds_count"),
	                 (uint64_t)fx_metric(&f, "mmo_views_batches_total"));
	fx_stop(&f);
}

/* A URL with a user authenticates as that user (AUTH user password): the
 * view's former parser dropped the user and sent AUTH password, which an
 * ACL-only server refuses. */
static void url_user_authenticates_as_that_user(void **state)
{
	struct fx f;
	struct view *v = NULL;
	char url[128], msg[256] = "";
	uint64_t ck = 1;

	(void)state;
	fx_start(&f, "appendonly no\nuser default off\nuser alice on >s3cret ~* &* +@all");
	snprintf(url, sizeof(url), "redis://alice:s3cret@127.0.0.1:%d", f.redis_port);
	assert_int_equal(redis_view_new(url, &v, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(v->ops->connect(v), MMO_OK);
	assert_int_equal(v->ops->checkpoint(v, &ck), MMO_OK);
	assert_int_equal(ck, 0);
	v->ops->free(v);
	/* the password alone is for the default user, who is off here */
	snprintf(url, sizeof(url), "redis://:s3cret@127.0.0.1:%d", f.redis_port);
	assert_int_equal(redis_view_new(url, &v, msg, sizeof(msg)), MMO_OK);
	assert_int_equal(v->ops->connect(v), MMO_EUNAVAIL);
	assert_non_null(strstr(v->err, "AUTH"));
	v->ops->free(v);
	fx_stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(view_equals_generated_game),
	    cmocka_unit_test(rebuild_refolds_from_seq_one),
	    cmocka_unit_test(one_projector_per_view),
	    cmocka_unit_test(bench_measures_both_rates),
	    cmocka_unit_test(url_user_authenticates_as_that_user),
	    cmocka_unit_test(apply_latency_has_the_shared_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
