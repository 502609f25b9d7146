/* bench_hist.c - the benchmarks' latency histograms (bench_hist.h). */
#include "bench_hist.h"

/* Log-linear buckets: exact below 128 µs, then 64 per power of two (at most
 * 1.6 % wide). Fixed size: recording never allocates. */

static unsigned hist_index(uint64_t v)
{
	unsigned e, i;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= 7 */
	i = 2 * HIST_SUB + (e - 7) * HIST_SUB + (unsigned)((v >> (e - 6)) & (HIST_SUB - 1));
	return i < HIST_N ? i : HIST_N - 1;
}

/* The largest value of bucket i. */
static uint64_t hist_upper(unsigned i)
{
	unsigned e, sub;

	if (i < 2 * HIST_SUB)
		return i;
	e = (i - 2 * HIST_SUB) / HIST_SUB + 7;
	sub = (i - 2 * HIST_SUB) % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub + 1) << (e - 6)) - 1;
}

void bench_hist_add(struct bench_hist *h, int64_t v)
{
	uint64_t u = v > 0 ? (uint64_t)v : 0;

	h->b[hist_index(u)]++;
	h->n++;
	if (u > h->max)
		h->max = u;
}

void bench_hist_merge(struct bench_hist *to, const struct bench_hist *from)
{
	for (unsigned i = 0; i < HIST_N; i++)
		to->b[i] += from->b[i];
	to->n += from->n;
	if (from->max > to->max)
		to->max = from->max;
}

/* The value at quantile q (0..1]: the upper edge of its bucket, at most the max. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999), cum = 0;

	if (!h->n)
		return 0;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < HIST_N; i++) {
		cum += h->b[i];
		if (cum >= rank)
			return hist_upper(i) < h->max ? hist_upper(i) : h->max;
	}
	return h->max;
}
