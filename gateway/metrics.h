/* metrics.h - the gateway's counters and latency histograms (a leaf: no gateway
 * state; gw_metrics_render in gw.h composes them). */
#ifndef MMO_GW_METRICS_H
#define MMO_GW_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "schemas/mmo_prom.h" /* the latency histograms */

enum gw_route {
	GW_R_REGISTER,
	GW_R_LOGIN,
	GW_R_LOGOUT,
	GW_R_MOVE,
	GW_R_ATTACK,
	GW_R_PLAYER,
	GW_R_REGION,
	GW_R_EVENTS,
	GW_R_HEALTH,
	GW_R_METRICS,
	GW_R_WS,
	GW_R_OTHER,
	GW_R_COUNT
};

enum gw_flow { GW_F_AUTH, GW_F_INTENT, GW_F_REDIS, GW_F_LOG, GW_F_WS, GW_F_HTTP, GW_F_COUNT };

/* Stages of an event's life seen by the gateway. */
enum gw_stage {
	GW_S_COMMIT,   /* intent received -> acked by the log */
	GW_S_OUTCOME,  /* intent received -> outcome seen on the bus */
	GW_S_DELIVERY, /* event committed (its ts) -> written to a WebSocket */
	GW_S_COUNT
};

#define GW_STATUS_N 20

struct gw_metrics {
	_Atomic uint64_t req[GW_R_COUNT][GW_STATUS_N];
	struct mmo_hist req_lat[GW_R_COUNT];
	struct mmo_hist stage[GW_S_COUNT];
	struct mmo_hist redis_lat;
	_Atomic int64_t ws_conns;
	_Atomic int64_t ws_queued; /* messages in all WebSocket queues */
	_Atomic int64_t waiters;   /* requests waiting for an outcome */
	_Atomic uint64_t ws_sent, ws_dropped, ws_coalesced, ws_closed_slow, ws_closed_revoked,
	    ws_bad_msgs;
	_Atomic uint64_t errors[GW_F_COUNT];
	_Atomic uint64_t login_failed, rate_limited, outcome_timeouts, security_events;
	_Atomic uint64_t decided_early;          /* intents answered at the world's decision */
	_Atomic uint64_t sess_hits, sess_misses; /* session checks answered by the cache or not */
	_Atomic uint64_t rest_on_loop;           /* REST requests served by the event loop */
	_Atomic uint64_t decided_before_ack; /* loop intents decided before their ack was read */
	_Atomic uint64_t conns_refused_addr; /* connections over conns_per_addr */
	_Atomic uint64_t conns_refused_fds;  /* refused for want of descriptors */
	_Atomic int64_t sess_live;           /* 1 while the session cache is in use */
};

void gw_metrics_request(struct gw_metrics *m, enum gw_route r, int status, int64_t us);
void gw_metrics_error(struct gw_metrics *m, enum gw_flow f);
/* The status code counted in column i of req[][] (0: other). */
int gw_metrics_status_at(int i);

#endif
