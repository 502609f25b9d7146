/* security.h - security events, aggregated per (type, source) and window. */
#ifndef MMO_GW_SECURITY_H
#define MMO_GW_SECURITY_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/gateway.h"

struct gw_sec;
int gw_sec_new(struct gw_sec **out);
void gw_sec_free(struct gw_sec *s);
/* Count one occurrence of a security event type ("security.login_failed")
 * from source; item (may be NULL) is remembered in the detail (a few). One
 * event per (type, source) and window goes to the log. */
void gw_sec_note(gw *g, const char *type, const char *source, const char *item);
/* Append the aggregates whose window ended (all of them if all). */
void gw_sec_flush(gw *g, int64_t now_us, bool all);

#endif
