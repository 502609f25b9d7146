/* metrics.c - the gateway's counters and their Prometheus rendering.
 *
 * Every counter is an atomic updated in place by the thread that sees the
 * event; rendering reads them without a lock (each value is exact, the set
 * is not a snapshot, as Prometheus expects of a scrape).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "schemas/mmo_prom.h"

static const int statuses[GW_STATUS_N] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 409,
                                          413, 415, 422, 429, 500, 503, 101, 0,   0,   0};

static const char *const route_names[GW_R_COUNT] = {
    "/api/auth/register",
    "/api/auth/login",
    "/api/auth/logout",
    "/api/players/move",
    "/api/combat/attack",
    "/api/players/{id}",
    "/api/regions/{id}/players",
    "/api/events",
    "/health",
    "/metrics",
    "/ws",
    "other",
};

static const char *const flow_names[GW_F_COUNT] = {"auth", "intent", "redis", "log", "ws", "http"};
static const char *const stage_names[GW_S_COUNT] = {"commit", "outcome", "delivery"};

int gw_metrics_status_at(int i)
{
	return i >= 0 && i < GW_STATUS_N ? statuses[i] : 0;
}

static size_t status_index(int status)
{
	for (size_t i = 0; i < GW_STATUS_N; i++) {
		if (statuses[i] == status)
			return i;
	}
	return GW_STATUS_N - 1; /* "other" (status 0 in the table) */
}

void gw_metrics_request(struct gw_metrics *m, enum gw_route r, int status, int64_t us)
{
	if ((unsigned)r >= GW_R_COUNT)
		r = GW_R_OTHER;
	atomic_fetch_add_explicit(&m->req[r][status_index(status)], 1, memory_order_relaxed);
	mmo_hist_observe(&m->req_lat[r], us);
	if (status >= 500)
		gw_metrics_error(m, GW_F_HTTP);
}

void gw_metrics_error(struct gw_metrics *m, enum gw_flow f)
{
	if ((unsigned)f < GW_F_COUNT)
		atomic_fetch_add_explicit(&m->errors[f], 1, memory_order_relaxed);
}

static uint64_t ld(_Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

int gw_metrics_render(gw *g, char **out, size_t *len)
{
	struct gw_metrics *m = &g->m;
	enum { OWN_MAX = 1 << 20, EXTRA_MAX = 256 * 1024 };
	char *text = malloc(OWN_MAX + EXTRA_MAX), labels[128];
	struct mmo_prom b;

	if (!text)
		return MMO_ENOMEM;
	mmo_prom_init(&b, text, OWN_MAX + EXTRA_MAX);
	mmo_prom_printf(&b,
	                "# HELP mmo_gw_http_requests_total HTTP requests answered, by route and "
	                "status.\n# TYPE mmo_gw_http_requests_total counter\n");
	for (int r = 0; r < GW_R_COUNT; r++) {
		for (size_t s = 0; s < GW_STATUS_N; s++) {
			uint64_t v = ld(&m->req[r][s]);

			if (!v)
				continue;
			if (statuses[s])
				mmo_prom_printf(
				    &b,
				    "mmo_gw_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
				    route_names[r], statuses[s], (unsigned long long)v);
			else
				mmo_prom_printf(
				    &b,
				    "mmo_gw_http_requests_total{route=\"%s\",status=\"other\"} "
				    "%llu\n",
				    route_names[r], (unsigned long long)v);
		}
	}
	mmo_prom_printf(&b,
	                "# HELP mmo_gw_http_request_duration_seconds Time to answer, by route.\n"
	                "# TYPE mmo_gw_http_request_duration_seconds histogram\n");
	for (int r = 0; r < GW_R_COUNT; r++) {
		if (!ld(&m->req_lat[r].count))
			continue;
		snprintf(labels, sizeof(labels), "route=\"%s\"", route_names[r]);
		mmo_prom_hist(&b, "mmo_gw_http_request_duration_seconds", labels, &m->req_lat[r]);
	}
	mmo_prom_printf(&b, "# HELP mmo_gw_event_latency_seconds Intent received to committed, to "
	                    "outcome; event committed to delivered on a WebSocket.\n"
	                    "# TYPE mmo_gw_event_latency_seconds histogram\n");
	for (int s = 0; s < GW_S_COUNT; s++) {
		snprintf(labels, sizeof(labels), "stage=\"%s\"", stage_names[s]);
		mmo_prom_hist(&b, "mmo_gw_event_latency_seconds", labels, &m->stage[s]);
	}
	mmo_prom_printf(&b, "# HELP mmo_gw_redis_latency_seconds Redis command round trips.\n"
	                    "# TYPE mmo_gw_redis_latency_seconds histogram\n");
	mmo_prom_hist(&b, "mmo_gw_redis_latency_seconds", "", &m->redis_lat);
	mmo_prom_printf(
	    &b,
	    "# HELP mmo_gw_ws_connections Open WebSocket connections.\n"
	    "# TYPE mmo_gw_ws_connections gauge\nmmo_gw_ws_connections %lld\n"
	    "# HELP mmo_gw_ws_messages_sent_total Messages written to WebSockets.\n"
	    "# TYPE mmo_gw_ws_messages_sent_total counter\nmmo_gw_ws_messages_sent_total %llu\n"
	    "# HELP mmo_gw_ws_messages_dropped_total Low-priority messages dropped for slow "
	    "clients.\n# TYPE mmo_gw_ws_messages_dropped_total counter\n"
	    "mmo_gw_ws_messages_dropped_total %llu\n"
	    "# HELP mmo_gw_ws_disconnects_total WebSockets closed by the gateway, by reason.\n"
	    "# TYPE mmo_gw_ws_disconnects_total counter\n"
	    "mmo_gw_ws_disconnects_total{reason=\"slow_consumer\"} %llu\n"
	    "mmo_gw_ws_disconnects_total{reason=\"session_revoked\"} %llu\n"
	    "# HELP mmo_gw_ws_bad_messages_total Malformed client messages.\n"
	    "# TYPE mmo_gw_ws_bad_messages_total counter\nmmo_gw_ws_bad_messages_total %llu\n",
	    (long long)atomic_load(&m->ws_conns), (unsigned long long)ld(&m->ws_sent),
	    (unsigned long long)ld(&m->ws_dropped), (unsigned long long)ld(&m->ws_closed_slow),
	    (unsigned long long)ld(&m->ws_closed_revoked), (unsigned long long)ld(&m->ws_bad_msgs));
	mmo_prom_printf(
	    &b,
	    "# HELP mmo_gw_ws_messages_coalesced_total Positions replaced by a newer one of "
	    "the same player for a socket that fell behind.\n"
	    "# TYPE mmo_gw_ws_messages_coalesced_total counter\n"
	    "mmo_gw_ws_messages_coalesced_total %llu\n"
	    "# HELP mmo_gw_intents_decided_early_total Intents answered at the world's "
	    "decision, before the outcome's commit.\n"
	    "# TYPE mmo_gw_intents_decided_early_total counter\n"
	    "mmo_gw_intents_decided_early_total %llu\n",
	    (unsigned long long)ld(&m->ws_coalesced), (unsigned long long)ld(&m->decided_early));
	mmo_prom_printf(
	    &b,
	    "# HELP mmo_gw_session_checks_total Session checks of authenticated "
	    "requests, by where they were answered.\n"
	    "# TYPE mmo_gw_session_checks_total counter\n"
	    "mmo_gw_session_checks_total{source=\"cache\"} %llu\n"
	    "mmo_gw_session_checks_total{source=\"redis\"} %llu\n"
	    "# HELP mmo_gw_session_cache_live 1 while the session cache follows "
	    "Redis's keyspace notifications (else every check asks Redis).\n"
	    "# TYPE mmo_gw_session_cache_live gauge\n"
	    "mmo_gw_session_cache_live %lld\n"
	    "# HELP mmo_gw_rest_on_loop_total REST requests (plain moves and "
	    "attacks) served by the event loop instead of civetweb.\n"
	    "# TYPE mmo_gw_rest_on_loop_total counter\n"
	    "mmo_gw_rest_on_loop_total %llu\n"
	    "# HELP mmo_gw_intents_decided_before_ack_total Intents in flight on the event loop "
	    "whose decision came before the log's ack was read.\n"
	    "# TYPE mmo_gw_intents_decided_before_ack_total counter\n"
	    "mmo_gw_intents_decided_before_ack_total %llu\n"
	    "# HELP mmo_gw_connections_refused_total Connections refused at accept, by reason.\n"
	    "# TYPE mmo_gw_connections_refused_total counter\n"
	    "mmo_gw_connections_refused_total{reason=\"per_address\"} %llu\n"
	    "mmo_gw_connections_refused_total{reason=\"descriptors\"} %llu\n",
	    (unsigned long long)ld(&m->sess_hits), (unsigned long long)ld(&m->sess_misses),
	    (long long)atomic_load(&m->sess_live), (unsigned long long)ld(&m->rest_on_loop),
	    (unsigned long long)ld(&m->decided_before_ack),
	    (unsigned long long)ld(&m->conns_refused_addr),
	    (unsigned long long)ld(&m->conns_refused_fds));
	mmo_prom_printf(&b,
	                "# HELP mmo_gw_queue_depth Items waiting, by queue.\n"
	                "# TYPE mmo_gw_queue_depth gauge\n"
	                "mmo_gw_queue_depth{queue=\"ws_outbound\"} %lld\n"
	                "mmo_gw_queue_depth{queue=\"outcome_waiters\"} %lld\n",
	                (long long)atomic_load(&m->ws_queued), (long long)atomic_load(&m->waiters));
	mmo_prom_printf(&b, "# HELP mmo_gw_errors_total Errors, by flow.\n"
	                    "# TYPE mmo_gw_errors_total counter\n");
	for (int f = 0; f < GW_F_COUNT; f++)
		mmo_prom_printf(&b, "mmo_gw_errors_total{flow=\"%s\"} %llu\n", flow_names[f],
		                (unsigned long long)ld(&m->errors[f]));
	mmo_prom_printf(
	    &b,
	    "# HELP mmo_gw_login_failures_total Failed logins.\n"
	    "# TYPE mmo_gw_login_failures_total counter\nmmo_gw_login_failures_total %llu\n"
	    "# HELP mmo_gw_rate_limited_total Requests refused with 429.\n"
	    "# TYPE mmo_gw_rate_limited_total counter\nmmo_gw_rate_limited_total %llu\n"
	    "# HELP mmo_gw_outcome_timeouts_total Intents answered 202 (no outcome in time).\n"
	    "# TYPE mmo_gw_outcome_timeouts_total counter\nmmo_gw_outcome_timeouts_total %llu\n"
	    "# HELP mmo_gw_security_events_total Aggregated security events logged.\n"
	    "# TYPE mmo_gw_security_events_total counter\nmmo_gw_security_events_total %llu\n",
	    (unsigned long long)ld(&m->login_failed), (unsigned long long)ld(&m->rate_limited),
	    (unsigned long long)ld(&m->outcome_timeouts),
	    (unsigned long long)ld(&m->security_events));
	if (g->o.extra_metrics && !b.truncated) {
		char *extra = malloc(EXTRA_MAX);

		if (extra) {
			size_t n = g->o.extra_metrics(g->o.extra_metrics_arg, extra, EXTRA_MAX);

			if (n >= EXTRA_MAX)
				n = EXTRA_MAX - 1;
			extra[n] = 0;
			mmo_prom_printf(&b, "%s", extra);
			free(extra);
		}
	}
	if (b.truncated) {
		free(text);
		return MMO_ENOMEM;
	}
	*out = text;
	*len = b.len;
	return MMO_OK;
}
