/* bench_hist.c - log-linear latency histograms: exact below 128 µs, then
 * 64 buckets per power of two (under 1.6% error), 40 powers. */
#include <math.h>
#include <stdint.h>

#include "bench_hist.h"

static unsigned hist_idx(uint64_t v)
{
	unsigned e = 0;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	while ((v >> e) >= 2 * HIST_SUB)
		e++;
	if (e >= 40)
		return HIST_N - 1;
	return 2 * HIST_SUB + (e - 1) * HIST_SUB + (unsigned)((v >> e) - HIST_SUB);
}

static uint64_t hist_low(unsigned i)
{
	unsigned e;

	if (i < 2 * HIST_SUB)
		return i;
	e = (i - 2 * HIST_SUB) / HIST_SUB + 1;
	return ((uint64_t)HIST_SUB + (i - 2 * HIST_SUB) % HIST_SUB) << e;
}

void bench_hist_add(struct hist *h, uint64_t v)
{
	h->n++;
	h->b[hist_idx(v)]++;
}

void bench_hist_merge(struct hist *to, const struct hist *from)
{
	to->n += from->n;
	for (unsigned i = 0; i < HIST_N; i++)
		to->b[i] += from->b[i];
}

uint64_t bench_hist_pct(const struct hist *h, double p)
{
	uint64_t want = (uint64_t)ceil((double)h->n * p), seen = 0;

	if (!h->n)
		return 0;
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		seen += h->b[i];
		if (seen >= want)
			return hist_low(i);
	}
	return hist_low(HIST_N - 1);
}
