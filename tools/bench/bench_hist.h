/* bench_hist.h - latency histograms of the benchmarks (internal to
 * tools/bench): log-linear buckets in µs (exact below 128, then 64 per
 * power of two), fixed size, mergeable, with the maximum kept. */
#ifndef MMO_BENCH_HIST_H
#define MMO_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_N   (2 * HIST_SUB + 48 * HIST_SUB)

struct bench_hist {
	uint64_t n, max;
	uint64_t b[HIST_N];
};

/* Count one value (µs; negative counts as 0). */
void bench_hist_add(struct bench_hist *h, int64_t v);
/* Add every count of from to to. */
void bench_hist_merge(struct bench_hist *to, const struct bench_hist *from);
/* The value at quantile q (0..1]: the upper edge of its bucket, at most the
 * maximum; 0 when empty. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);

#endif
