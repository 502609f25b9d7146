/* retry.c - exponential backoff with full jitter, and the circuit breaker.
 *
 * Backoff (the "full jitter" of AWS's note on backoff): the n-th retry waits
 * a uniform random time in [0, min(cap, base * 2^n)], so many projectors
 * retrying the same store spread out instead of arriving together.
 *
 * Breaker: closed (attempts go through) -> open after `threshold`
 * consecutive failures (no attempt for open_ms) -> half-open (one probe) ->
 * closed on success, open again on failure. A projector is one thread over
 * one ordered stream, so the probe is simply its next attempt.
 */
#include "views_int.h"

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

void views_backoff_init(struct views_backoff *b, unsigned base_ms, unsigned cap_ms,
                        uint64_t seed)
{
	b->base_ms = base_ms ? base_ms : 1;
	b->cap_ms = cap_ms >= b->base_ms ? cap_ms : b->base_ms;
	b->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

unsigned views_backoff_delay(struct views_backoff *b, unsigned attempt)
{
	uint64_t bound = b->base_ms;

	for (unsigned i = 0; i < attempt && bound < b->cap_ms; i++)
		bound *= 2;
	if (bound > b->cap_ms)
		bound = b->cap_ms;
	return (unsigned)(xorshift(&b->rng) % (bound + 1));
}

void views_breaker_init(struct views_breaker *br, unsigned threshold, unsigned open_ms)
{
	br->threshold = threshold ? threshold : 1;
	br->open_ms = open_ms;
	br->state = VIEWS_BREAKER_CLOSED;
	br->failures = 0;
	br->open_until_us = 0;
	br->opened = br->closed = 0;
}

bool views_breaker_allow(struct views_breaker *br, int64_t now_us, unsigned *wait_ms)
{
	if (br->state != VIEWS_BREAKER_OPEN)
		return true;
	if (now_us >= br->open_until_us) {
		br->state = VIEWS_BREAKER_HALF_OPEN;
		return true;
	}
	if (wait_ms)
		*wait_ms = (unsigned)((br->open_until_us - now_us + 999) / 1000);
	return false;
}

void views_breaker_success(struct views_breaker *br)
{
	if (br->state != VIEWS_BREAKER_CLOSED)
		br->closed++;
	br->state = VIEWS_BREAKER_CLOSED;
	br->failures = 0;
}

void views_breaker_failure(struct views_breaker *br, int64_t now_us)
{
	br->failures++;
	if (br->state == VIEWS_BREAKER_HALF_OPEN ||
	    (br->state == VIEWS_BREAKER_CLOSED && br->failures >= br->threshold)) {
		br->state = VIEWS_BREAKER_OPEN;
		br->open_until_us = now_us + (int64_t)br->open_ms * 1000;
		br->opened++;
	}
}
