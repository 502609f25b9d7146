/* health.c - /health: dependencies and thresholds, each change logged once.
 *
 * Once a second the housekeeping thread samples the counters into a ring
 * covering health_window_s seconds and evaluates:
 *   redis        PING answered
 *   log          the ingest answers a head request
 *   queue_depth  messages queued to WebSockets + requests waiting for an
 *                outcome <= health_queue_depth
 *   latency      p99 of intent -> outcome over the window <= health_latency_ms
 *   error_rate   5xx answers / answers over the window <= health_error_rate
 *                (judged from 20 answers on)
 *   views        the read views beside the gateway are connected with their
 *                breakers closed (through gw_opts.views_health)
 * A check that starts failing is logged once (WARN) and once more when it
 * clears (INFO). GET /health reports the last evaluation.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "schemas/mmo_util.h"

#define RING_MAX        601
#define ERR_MIN_SAMPLES 20

static const char *const names[GW_C_COUNT] = {"redis",   "log",        "queue_depth",
                                              "latency", "error_rate", "views"};

struct sample {
	uint64_t req, err;
	uint64_t lat[MMO_HIST_N];
};

struct gw_health {
	pthread_mutex_t mu;
	struct sample ring[RING_MAX];
	size_t next, count, len;
	bool failing[GW_C_COUNT];
	bool evaluated;
	double value[GW_C_COUNT];
	char detail[GW_C_COUNT][160];
};

int gw_health_new(gw *g, struct gw_health **out)
{
	struct gw_health *h = calloc(1, sizeof(*h));

	if (!h)
		return MMO_ENOMEM;
	pthread_mutex_init(&h->mu, NULL);
	h->len = (size_t)g->o.health_window_s + 1;
	if (h->len > RING_MAX)
		h->len = RING_MAX;
	*out = h;
	return MMO_OK;
}

void gw_health_free(struct gw_health *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* Answers and 5xx answers so far, without /health and /metrics (a probe
 * answered 503 must not keep the error rate up by itself). */
static void take(gw *g, struct sample *s)
{
	memset(s, 0, sizeof(*s));
	for (int r = 0; r < GW_R_COUNT; r++) {
		if (r == GW_R_HEALTH || r == GW_R_METRICS)
			continue;
		for (int i = 0; i < GW_STATUS_N; i++) {
			uint64_t v = atomic_load_explicit(&g->m.req[r][i], memory_order_relaxed);

			s->req += v;
			if (gw_metrics_status_at(i) >= 500)
				s->err += v;
		}
	}
	for (int i = 0; i < MMO_HIST_N; i++)
		s->lat[i] = atomic_load(&g->m.stage[GW_S_OUTCOME].b[i]);
}

static bool log_up(gw *g)
{
	uint64_t head;
	evlog_client *c;
	int err;

	if (!g->ingest[0])
		return false;
	if (evlog_client_open(g->o.zctx, g->ingest, 1000, &c))
		return false;
	err = evlog_client_head(c, &head);
	evlog_client_close(c);
	return err == MMO_OK;
}

static void set(struct gw_health *h, enum gw_check k, bool fail, double value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void set(struct gw_health *h, enum gw_check k, bool fail, double value, const char *fmt, ...)
{
	va_list ap;
	char detail[160];

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if (fail && (!h->failing[k] || !h->evaluated))
		mmo_logf(MMO_LOG_WARN, "gateway", "health: %s failing: %s", names[k], detail);
	else if (!fail && h->failing[k])
		mmo_logf(MMO_LOG_INFO, "gateway", "health: %s ok again: %s", names[k], detail);
	h->failing[k] = fail;
	h->value[k] = value;
	memcpy(h->detail[k], detail, sizeof(detail));
}

void gw_health_tick(gw *g, int64_t now_us)
{
	struct gw_health *h = g->health;
	const struct gw_opts *o = &g->o;
	bool redis = gw_redis_up(g->redis), log = log_up(g), views = true;
	char why[160] = "", vdetail[160] = "not in this process";
	struct sample now, *old;
	uint64_t lat[MMO_HIST_N], req, err;
	int64_t depth, p99;
	double rate;

	(void)now_us;
	if (o->views_health)
		views = o->views_health(o->views_health_arg, why, sizeof(why), vdetail,
		                        sizeof(vdetail));
	take(g, &now);
	pthread_mutex_lock(&h->mu);
	h->ring[h->next] = now;
	h->next = (h->next + 1) % h->len;
	if (h->count < h->len)
		h->count++;
	old = &h->ring[(h->next + h->len - h->count) % h->len];
	req = now.req - old->req;
	err = now.err - old->err;
	for (int i = 0; i < MMO_HIST_N; i++)
		lat[i] = now.lat[i] - old->lat[i];
	depth = atomic_load(&g->m.ws_queued) + atomic_load(&g->m.waiters);
	p99 = mmo_hist_quantile(lat, 0.99);
	rate = req ? (double)err / (double)req : 0;

	set(h, GW_C_REDIS, !redis, redis, "%s", redis ? "reachable" : "unreachable");
	set(h, GW_C_LOG, !log, log, "%s", log ? "reachable" : "unreachable");
	set(h, GW_C_QUEUE, depth > o->health_queue_depth, (double)depth, "%lld queued (max %d)",
	    (long long)depth, o->health_queue_depth);
	set(h, GW_C_LATENCY, p99 > (int64_t)o->health_latency_ms * 1000,
	    p99 == INT64_MAX ? 1e9 : (double)p99 / 1000.0, "p99 %s%g ms over %ds (max %d ms)",
	    p99 == INT64_MAX ? ">" : "", p99 == INT64_MAX ? 2500.0 : (double)p99 / 1000.0,
	    o->health_window_s, o->health_latency_ms);
	set(h, GW_C_ERRORS, req >= ERR_MIN_SAMPLES && rate > o->health_error_rate, rate,
	    "%llu of %llu answers failed over %ds (max %g%%)", (unsigned long long)err,
	    (unsigned long long)req, o->health_window_s, o->health_error_rate * 100);
	set(h, GW_C_VIEWS, !views, views, "%s", views ? vdetail : why);
	h->evaluated = true;
	pthread_mutex_unlock(&h->mu);
}

int gw_health_report(gw *g, json_t **out)
{
	struct gw_health *h = g->health;
	json_t *checks = json_object();
	bool bad = false;

	pthread_mutex_lock(&h->mu);
	for (int k = 0; k < GW_C_COUNT; k++) {
		json_object_set_new(checks, names[k],
		                    json_pack("{s:b,s:f,s:s}", "ok", !h->failing[k], "value",
		                              h->value[k], "detail", h->detail[k]));
		bad |= h->failing[k];
	}
	pthread_mutex_unlock(&h->mu);
	*out = json_pack("{s:s,s:o}", "status", bad ? "degraded" : "ok", "checks", checks);
	return bad ? 503 : 200;
}
