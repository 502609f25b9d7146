/* health.h - GET /health: dependency checks and thresholds (health.c). */
#ifndef MMO_GW_HEALTH_H
#define MMO_GW_HEALTH_H

#include <jansson.h>
#include <stdint.h>

#include "gateway/gateway.h"

enum gw_check {
	GW_C_REDIS,
	GW_C_LOG,
	GW_C_QUEUE,
	GW_C_LATENCY,
	GW_C_ERRORS,
	GW_C_VIEWS,
	GW_C_COUNT
};

struct gw_health;
int gw_health_new(gw *g, struct gw_health **out);
void gw_health_free(struct gw_health *h);
/* Sample the counters (once a second, from the housekeeping thread) and
 * re-evaluate the thresholds; dependencies are checked live (probe). */
void gw_health_tick(gw *g, int64_t now_us);
/* GET /health body: 200 or 503; *out is a new reference. */
int gw_health_report(gw *g, json_t **out);

#endif
