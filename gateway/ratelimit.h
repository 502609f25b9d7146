/* ratelimit.h - token buckets keyed by string (a leaf). */
#ifndef MMO_GW_RATELIMIT_H
#define MMO_GW_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gw_rl;
int gw_rl_new(size_t cap, struct gw_rl **out);
void gw_rl_free(struct gw_rl *t);
/* Token bucket of key: refills rate tokens/s up to burst. take: consume n
 * tokens if there are that many and return true; else false with
 * *retry_us (may be NULL) the time until there will be. n = 0 only checks
 * for one token. */
bool gw_rl_take(struct gw_rl *t, const char *key, double rate, double burst, double n,
                int64_t now_us, int64_t *retry_us);
/* Forget the buckets that are full again (idle keys). */
void gw_rl_purge(struct gw_rl *t, int64_t now_us);

#endif
